#ifndef TERN_TERNCTL_H
#define TERN_TERNCTL_H
/* ternctl internals: the command table types, the argument parser that
   matches argv against a row's pattern, and small helpers shared by the
   per-noun files (ternctl_domain.c, ternctl_account.c, ...).

   Exit codes: TERNCTL_EXIT_OK, TERNCTL_EXIT_FAIL (the command ran and
   failed: unknown domain, duplicate account, store error) and
   TERNCTL_EXIT_USAGE (the command line itself is wrong: unknown command,
   missing or extra argument, malformed address or number). Handlers
   return one of them; they print their own messages. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct store;

#define TERNCTL_EXIT_OK 0
#define TERNCTL_EXIT_FAIL 1
#define TERNCTL_EXIT_USAGE 2

#define TERNCTL_CONFIG_DEFAULT "/etc/tern/tern.conf"
/* Plan given to new accounts without --plan (one of the store's built-in
   plans). */
#define TERNCTL_PLAN_DEFAULT "standard"
/* Longest line read from stdin for a password or an imported hash. */
#define TERNCTL_STDIN_LINE_MAX_BYTES 4096
/* Longest token name in a pattern ("password-stdin"). */
#define TERNCTL_TOKEN_NAME_MAX 32
/* Most tokens in one pattern. */
#define TERNCTL_TOKENS_MAX 12

/* Everything a handler needs. datadir and store are set before a handler
   flagged TERNCTL_F_STORE runs; cfg before one flagged TERNCTL_F_CONFIG
   (and whenever the data directory came from the config). Once the
   store is open the working directory is the data directory: datadir is
   for messages, files are reached through store_datadir() ("."). */
struct ternctl {
	const char *config_path; /* -c, or TERNCTL_CONFIG_DEFAULT */
	bool config_given;	 /* -c was on the command line */
	const char *datadir;	 /* -d, or the config's data_dir */
	struct cfg *cfg;	 /* owned; NULL when not loaded */
	struct store *store;	 /* owned; NULL when not opened */
};

enum ternctl_tok_kind {
	TERNCTL_TOK_WORD,     /* "account": must match literally */
	TERNCTL_TOK_ARG,      /* "ADDRESS": required positional */
	TERNCTL_TOK_OPTARG,   /* "[DOMAIN]": optional positional */
	TERNCTL_TOK_REST,     /* "TARGET...": one or more positionals */
	TERNCTL_TOK_FLAG,     /* "[--password-stdin]" or "--hash-stdin" */
	TERNCTL_TOK_OPTION,   /* "[--plan P]": option with a value */
};

struct ternctl_tok {
	enum ternctl_tok_kind kind;
	char name[TERNCTL_TOKEN_NAME_MAX]; /* word, ARG name or option name */
	bool required;			   /* flags/options without [] */
};

/* The parsed command line of one command. pos points into argv. */
struct ternctl_args {
	const char **pos; /* positionals in order; xmalloc'd array */
	size_t pos_count;
	struct ternctl_tok toks[TERNCTL_TOKENS_MAX];
	size_t tok_count;
	/* per token: option value, "" for a flag that is set, else NULL */
	const char *values[TERNCTL_TOKENS_MAX];
};

typedef int ternctl_run_fn(struct ternctl *t, const struct ternctl_args *a);

enum ternctl_cmd_flags {
	TERNCTL_F_STORE = 1 << 0,  /* open the store first */
	TERNCTL_F_CREATE = 1 << 1, /* ... creating the data dir if missing */
	TERNCTL_F_CONFIG = 1 << 2, /* load the config file first */
};

/* One row of the command table. pattern is the syntax shown in help:
   lowercase words, UPPER arguments, [OPTIONAL], REST..., [--flag] and
   [--option VALUE]. */
struct ternctl_cmd {
	const char *pattern;
	unsigned int flags;
	ternctl_run_fn *run;
	const char *help;
};

/* ---- ternctl_cmd.c: pattern matching ---- */

/* The row whose leading words match argv, or NULL. */
const struct ternctl_cmd *ternctl_cmd_find(const struct ternctl_cmd *table,
					   int argc, char **argv);
/* Parse argv (the whole command, words included) against cmd's pattern.
   TERNCTL_EXIT_OK, or prints a usage error and returns
   TERNCTL_EXIT_USAGE. Release with ternctl_cmd_args_free(). */
int ternctl_cmd_parse(const struct ternctl_cmd *cmd, int argc, char **argv,
		      struct ternctl_args *args_r);
void ternctl_cmd_args_free(struct ternctl_args *args);
/* Print rows (all, or those whose first word is noun) with their help. */
void ternctl_cmd_help(const struct ternctl_cmd *table, const char *noun,
		      bool to_stderr);
/* True when some row starts with the word noun. */
bool ternctl_cmd_noun_known(const struct ternctl_cmd *table,
			    const char *noun);

/* Value of option --name ("" for a set flag), or NULL when absent. */
const char *ternctl_args_opt(const struct ternctl_args *a, const char *name);
bool ternctl_args_flag(const struct ternctl_args *a, const char *name);

/* ---- ternctl_util.c ---- */

/* Print "ternctl: <message>" to stderr; return TERNCTL_EXIT_FAIL. */
int ternctl_util_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* The same, returning TERNCTL_EXIT_USAGE. */
int ternctl_util_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* Report a failed store call (ret < 0) with what was being done. */
int ternctl_util_store_fail(struct ternctl *t, int ret, const char *what);
/* Validate a domain name (ASCII letters, digits, '-' in labels of 1-63
   bytes, 253 bytes in all). 0, or -1 with a static reason. */
int ternctl_util_domain_check(const char *domain, const char **why_r);
/* Normalise and validate "local@domain" (or "@domain" when catchall_ok).
   Returns an xmalloc'd lowercase address, or NULL after printing a usage
   error. */
char *ternctl_util_address(const char *arg, bool catchall_ok);
/* The domain part of a normalised address (points into it). */
const char *ternctl_util_address_domain(const char *address);
/* Fails with "unknown domain ..." unless the domain exists. */
int ternctl_util_need_domain(struct ternctl *t, const char *domain);
/* Read one line from stdin without its line end into an xmalloc'd,
   NUL-terminated string. NULL (after printing why) on EOF without data,
   a NUL byte, or a line over TERNCTL_STDIN_LINE_MAX_BYTES. */
char *ternctl_util_read_line(const char *what);
/* A new password: one line from stdin when from_stdin or stdin is not a
   terminal, else prompted twice without echo. xmalloc'd; free it with
   ternctl_util_secret_free(). NULL after printing why. */
char *ternctl_util_read_password(bool from_stdin);
/* Wipe and free a secret string; NULL is fine. */
void ternctl_util_secret_free(char **secret);
/* "0 B", "10 GiB", "25 GB", "1.5 MiB" into out. Returns out. */
const char *ternctl_util_bytes(uint64_t n, char *out, size_t size);
/* "unlimited" for 0, else the bytes form. */
const char *ternctl_util_limit_bytes(uint64_t n, char *out, size_t size);
/* "unlimited" for 0, else the number. */
const char *ternctl_util_limit_count(uint64_t n, char *out, size_t size);
/* "2025-11-23 14:05:00 UTC" */
const char *ternctl_util_time(int64_t t, char *out, size_t size);
/* "3d 4h", "5m 10s", "12s" for a duration in seconds. */
const char *ternctl_util_duration(int64_t secs, char *out, size_t size);

/* ---- handlers, one file per noun ---- */
int ternctl_domain_add(struct ternctl *t, const struct ternctl_args *a);
int ternctl_domain_save_sent(struct ternctl *t, const struct ternctl_args *a);
int ternctl_domain_del(struct ternctl *t, const struct ternctl_args *a);
int ternctl_domain_list(struct ternctl *t, const struct ternctl_args *a);

int ternctl_account_add(struct ternctl *t, const struct ternctl_args *a);
int ternctl_account_passwd(struct ternctl *t, const struct ternctl_args *a);
int ternctl_account_plan(struct ternctl *t, const struct ternctl_args *a);
int ternctl_account_del(struct ternctl *t, const struct ternctl_args *a);
int ternctl_account_list(struct ternctl *t, const struct ternctl_args *a);
int ternctl_account_show(struct ternctl *t, const struct ternctl_args *a);
int ternctl_account_import(struct ternctl *t, const struct ternctl_args *a);

int ternctl_alias_add(struct ternctl *t, const struct ternctl_args *a);
int ternctl_alias_del(struct ternctl *t, const struct ternctl_args *a);
int ternctl_alias_list(struct ternctl *t, const struct ternctl_args *a);

int ternctl_plan_list(struct ternctl *t, const struct ternctl_args *a);
/* Insert or update the config's plans in the store when they differ. */
int ternctl_plan_sync(struct ternctl *t);

int ternctl_queue_list(struct ternctl *t, const struct ternctl_args *a);
int ternctl_queue_show(struct ternctl *t, const struct ternctl_args *a);
int ternctl_queue_delete(struct ternctl *t, const struct ternctl_args *a);
int ternctl_queue_retry(struct ternctl *t, const struct ternctl_args *a);
int ternctl_queue_flush(struct ternctl *t, const struct ternctl_args *a);

int ternctl_dkim_generate(struct ternctl *t, const struct ternctl_args *a);
int ternctl_dkim_show(struct ternctl *t, const struct ternctl_args *a);
int ternctl_dkim_list(struct ternctl *t, const struct ternctl_args *a);

int ternctl_status_show(struct ternctl *t, const struct ternctl_args *a);

int ternctl_config_show(struct ternctl *t, const struct ternctl_args *a);
int ternctl_config_check(struct ternctl *t, const struct ternctl_args *a);

#endif
