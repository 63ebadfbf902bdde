/* ternctl command table matching: each row's pattern ("account add ADDRESS
   [--plan P] [--password-stdin]") is both its help text and its grammar,
   in the spirit of OpenSMTPD smtpctl's parser and Dovecot doveadm's
   command structs. Options may appear anywhere after the command words,
   as "--name value" or "--name=value"; "--" ends options. Everything here
   reads argv only (the operator's own input), but still bounds counts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "ternctl/ternctl.h"

static void
ternctl_cmd_tok_name(struct ternctl_tok *tok, const char *p, size_t len)
{
	if (len == 0 || len >= sizeof(tok->name))
		panic("ternctl: bad pattern token '%.*s'", (int)len, p);
	memcpy(tok->name, p, len);
	tok->name[len] = '\0';
}

/* Split a table pattern into tokens. Patterns are compile-time constants,
   so a malformed one is a bug. */
static size_t
ternctl_cmd_tokens(const char *pattern, struct ternctl_tok *toks)
{
	const char *p = pattern;
	size_t n = 0;

	while (*p != '\0') {
		size_t len = strcspn(p, " ");
		struct ternctl_tok *tok = &toks[n];

		if (n == TERNCTL_TOKENS_MAX)
			panic("ternctl: pattern too long: %s", pattern);
		tok->required = p[0] != '[';
		if (strncmp(p, "[--", 3) == 0 && p[len - 1] != ']') {
			/* "[--plan P]": the value name is the next word */
			tok->kind = TERNCTL_TOK_OPTION;
			ternctl_cmd_tok_name(tok, p + 3, len - 3);
			p += len + 1;
			len = strcspn(p, " ");
		} else if (strncmp(p, "[--", 3) == 0) {
			tok->kind = TERNCTL_TOK_FLAG;
			ternctl_cmd_tok_name(tok, p + 3, len - 4);
		} else if (strncmp(p, "--", 2) == 0) {
			tok->kind = TERNCTL_TOK_FLAG;
			ternctl_cmd_tok_name(tok, p + 2, len - 2);
		} else if (p[0] == '[') {
			tok->kind = TERNCTL_TOK_OPTARG;
			ternctl_cmd_tok_name(tok, p + 1, len - 2);
		} else if (len > 3 && strncmp(p + len - 3, "...", 3) == 0) {
			tok->kind = TERNCTL_TOK_REST;
			ternctl_cmd_tok_name(tok, p, len - 3);
		} else {
			tok->kind = p[0] >= 'A' && p[0] <= 'Z' ?
				TERNCTL_TOK_ARG : TERNCTL_TOK_WORD;
			ternctl_cmd_tok_name(tok, p, len);
		}
		n++;
		p += len;
		while (*p == ' ')
			p++;
	}
	return n;
}

/* Number of leading literal words of a row. */
static size_t
ternctl_cmd_words(const struct ternctl_tok *toks, size_t count)
{
	size_t i = 0;

	while (i < count && toks[i].kind == TERNCTL_TOK_WORD)
		i++;
	return i;
}

const struct ternctl_cmd *
ternctl_cmd_find(const struct ternctl_cmd *table, int argc, char **argv)
{
	struct ternctl_tok toks[TERNCTL_TOKENS_MAX];

	for (const struct ternctl_cmd *c = table; c->pattern != NULL; c++) {
		size_t n = ternctl_cmd_tokens(c->pattern, toks);
		size_t words = ternctl_cmd_words(toks, n);
		size_t i;

		if (words > (size_t)argc)
			continue;
		for (i = 0; i < words; i++) {
			if (strcmp(toks[i].name, argv[i]) != 0)
				break;
		}
		if (i == words)
			return c;
	}
	return NULL;
}

bool
ternctl_cmd_noun_known(const struct ternctl_cmd *table, const char *noun)
{
	size_t len = strlen(noun);

	for (const struct ternctl_cmd *c = table; c->pattern != NULL; c++) {
		if (strncmp(c->pattern, noun, len) == 0 &&
		    (c->pattern[len] == ' ' || c->pattern[len] == '\0'))
			return true;
	}
	return false;
}

static int
ternctl_cmd_bad(const struct ternctl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
ternctl_cmd_bad(const struct ternctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ternctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: ternctl %s\n", cmd->pattern);
	return TERNCTL_EXIT_USAGE;
}

static int
ternctl_cmd_find_opt(const struct ternctl_args *a, const char *name,
		     size_t len)
{
	for (size_t i = 0; i < a->tok_count; i++) {
		const struct ternctl_tok *tok = &a->toks[i];

		if ((tok->kind == TERNCTL_TOK_FLAG ||
		     tok->kind == TERNCTL_TOK_OPTION) &&
		    strlen(tok->name) == len &&
		    strncmp(tok->name, name, len) == 0)
			return (int)i;
	}
	return -1;
}

/* Handle argv[*i], an option. */
static int
ternctl_cmd_option(const struct ternctl_cmd *cmd, struct ternctl_args *a,
		   int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
	int idx = ternctl_cmd_find_opt(a, name, len);

	if (idx < 0 || arg[1] != '-')
		return ternctl_cmd_bad(cmd, "unknown option %s", arg);
	if (a->values[idx] != NULL)
		return ternctl_cmd_bad(cmd, "option %s given twice", arg);
	if (a->toks[idx].kind == TERNCTL_TOK_FLAG) {
		if (eq != NULL)
			return ternctl_cmd_bad(cmd, "option %s takes no value",
					       arg);
		a->values[idx] = "";
	} else if (eq != NULL) {
		a->values[idx] = eq + 1;
	} else if (*i + 1 < argc) {
		a->values[idx] = argv[++*i];
	} else {
		return ternctl_cmd_bad(cmd, "option %s needs a value", arg);
	}
	return TERNCTL_EXIT_OK;
}

/* Check the positional count and required options against the pattern. */
static int
ternctl_cmd_check(const struct ternctl_cmd *cmd, const struct ternctl_args *a)
{
	size_t min = 0, max = 0;

	for (size_t i = 0; i < a->tok_count; i++) {
		const struct ternctl_tok *tok = &a->toks[i];

		switch (tok->kind) {
		case TERNCTL_TOK_ARG:
			min++;
			max++;
			break;
		case TERNCTL_TOK_OPTARG:
			max++;
			break;
		case TERNCTL_TOK_REST:
			min++;
			max = (size_t)-1;
			break;
		case TERNCTL_TOK_FLAG:
		case TERNCTL_TOK_OPTION:
			if (tok->required && a->values[i] == NULL)
				return ternctl_cmd_bad(cmd, "--%s is required",
						       tok->name);
			break;
		case TERNCTL_TOK_WORD:
			break;
		}
	}
	if (a->pos_count < min)
		return ternctl_cmd_bad(cmd, "missing argument");
	if (a->pos_count > max)
		return ternctl_cmd_bad(cmd, "unexpected argument '%s'",
				       a->pos[max]);
	return TERNCTL_EXIT_OK;
}

int
ternctl_cmd_parse(const struct ternctl_cmd *cmd, int argc, char **argv,
		  struct ternctl_args *args_r)
{
	struct ternctl_args *a = args_r;
	bool options = true;
	int ret;

	memset(a, 0, sizeof(*a));
	a->tok_count = ternctl_cmd_tokens(cmd->pattern, a->toks);
	a->pos = xcalloc((size_t)argc + 1, sizeof(*a->pos));
	for (int i = (int)ternctl_cmd_words(a->toks, a->tok_count); i < argc;
	     i++) {
		const char *arg = argv[i];

		if (options && strcmp(arg, "--") == 0) {
			options = false;
		} else if (options && arg[0] == '-' && arg[1] != '\0') {
			ret = ternctl_cmd_option(cmd, a, argc, argv, &i);
			if (ret != TERNCTL_EXIT_OK)
				return ret;
		} else {
			a->pos[a->pos_count++] = arg;
		}
	}
	return ternctl_cmd_check(cmd, a);
}

void
ternctl_cmd_args_free(struct ternctl_args *args)
{
	free(args->pos);
	args->pos = NULL;
}

const char *
ternctl_args_opt(const struct ternctl_args *a, const char *name)
{
	int idx = ternctl_cmd_find_opt(a, name, strlen(name));

	if (idx < 0)
		panic("ternctl: no option --%s in this pattern", name);
	return a->values[idx];
}

bool
ternctl_args_flag(const struct ternctl_args *a, const char *name)
{
	return ternctl_args_opt(a, name) != NULL;
}

void
ternctl_cmd_help(const struct ternctl_cmd *table, const char *noun,
		 bool to_stderr)
{
	FILE *out = to_stderr ? stderr : stdout;
	size_t len = noun != NULL ? strlen(noun) : 0;

	fprintf(out, "usage: ternctl [-c CONFIG | -d DATADIR] COMMAND\n\n"
		     "commands:\n");
	for (const struct ternctl_cmd *c = table; c->pattern != NULL; c++) {
		if (noun != NULL && (strncmp(c->pattern, noun, len) != 0 ||
				     c->pattern[len] != ' '))
			continue;
		fprintf(out, "  %s\n        %s\n", c->pattern, c->help);
	}
	if (noun == NULL)
		fprintf(out, "\n-c CONFIG  read data_dir from CONFIG "
			     "(default " TERNCTL_CONFIG_DEFAULT ")\n"
			     "-d DATADIR use the data directory DATADIR "
			     "directly\n");
}
