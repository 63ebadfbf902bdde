/* The IMAP command parser: incremental and pure (no I/O, no logging), so
   it is unit-tested and fuzzed on its own (Dovecot's imap-parser in
   spirit, our own code).
   RFC 9051 section 4 and the section 9 grammar: tag, command name, atoms
   (with "[...]" sections kept whole, as FETCH needs), quoted strings,
   literals "{n}", parenthesised lists up to IMAP_LIST_DEPTH_MAX deep;
   RFC 7888 non-synchronising literals "{n+}"; RFC 3516 literal8 "~{n}";
   RFC 6855 4 APPEND "UTF8 (~{n})", streamed like a plain APPEND literal.
   Security: every line segment, literal and the whole command are
   bounded; a rejected line is skipped including a non-synchronising
   literal it announced, so the connection stays usable. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/xalloc.h"

enum imap_pstate {
	PS_TAG,
	PS_ARGS,
	PS_LITERAL,
	PS_STREAM,
	PS_DISCARD_LINE,
	PS_DISCARD_LIT,
	PS_DONE,
};

enum imap_seg_res {
	SEG_DONE,
	SEG_LITERAL,
	SEG_ERROR,
};

struct imap_parser_level {
	struct imap_arg *args;
	size_t count, cap;
};

#define IMAP_PARSER_TAIL 32

struct imap_parser {
	size_t max_line, max_literal, max_total;
	struct arena *arena;
	enum imap_pstate state;
	size_t total;
	char *tag, *name;
	struct imap_parser_level stack[IMAP_LIST_DEPTH_MAX + 1];
	size_t depth;
	bool need_sep;
	bool is_append;
	bool utf8_close; /* APPEND UTF8 (~{n}...): ')' still to come */
	uint64_t lit_size, lit_got;
	bool lit_sync, lit8;
	char *lit_buf;
	uint64_t skip;
	char tail[IMAP_PARSER_TAIL];
	size_t tail_len;
	const char *error;
	enum imap_parse_err code;
};

struct imap_parser *
imap_parser_new(size_t max_line, size_t max_literal, size_t max_total)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->max_line = max_line;
	p->max_literal = max_literal;
	p->max_total = max_total;
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	xfree(pp);
}

void
imap_parser_begin(struct imap_parser *p, struct arena *arena)
{
	bool discarding = p->state == PS_DISCARD_LINE ||
			  p->state == PS_DISCARD_LIT;

	/* A command that ended while its APPEND literal was announced but
	   not read: a synchronising literal was never sent (we did not say
	   "+"), a non-synchronising one is on its way and is skipped. */
	if (p->state == PS_STREAM) {
		if (p->lit_sync) {
			p->state = PS_TAG;
		} else {
			p->skip = p->lit_size;
			p->tail_len = 0;
			p->state = PS_DISCARD_LIT;
			discarding = true;
		}
	}
	p->arena = arena;
	p->total = 0;
	p->tag = p->name = NULL;
	memset(p->stack, 0, sizeof(p->stack));
	p->depth = 0;
	p->need_sep = false;
	p->is_append = false;
	p->utf8_close = false;
	p->lit_size = p->lit_got = 0;
	p->lit_buf = NULL;
	p->error = NULL;
	p->code = IMAP_PERR_NONE;
	if (!discarding)
		p->state = PS_TAG;
}

bool
imap_parser_in_stream(const struct imap_parser *p)
{
	return p->state == PS_STREAM;
}

bool
imap_parser_at_start(const struct imap_parser *p)
{
	return p->state == PS_TAG;
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	return p->tag;
}

const char *
imap_parser_name(const struct imap_parser *p)
{
	return p->name;
}

struct imap_arg *
imap_parser_args(const struct imap_parser *p, size_t *count_r)
{
	*count_r = p->stack[0].count;
	return p->stack[0].args;
}

const char *
imap_parser_error(const struct imap_parser *p, enum imap_parse_err *code_r)
{
	if (code_r != NULL)
		*code_r = p->code;
	return p->error;
}

uint64_t
imap_parser_literal_size(const struct imap_parser *p)
{
	return p->lit_size;
}

bool
imap_parser_literal_sync(const struct imap_parser *p)
{
	return p->lit_sync;
}

void
imap_parser_stream_done(struct imap_parser *p)
{
	if (p->state == PS_STREAM) {
		p->state = PS_ARGS;
		p->need_sep = true;
	}
}

void
imap_parser_stream_abort(struct imap_parser *p, bool skip_literal)
{
	if (p->state != PS_STREAM)
		return;
	if (skip_literal) {
		p->skip = p->lit_size;
		p->tail_len = 0;
		p->state = PS_DISCARD_LIT;
	} else {
		p->state = PS_TAG;
	}
}

static void
imap_parser_fail(struct imap_parser *p, enum imap_parse_err code,
		 const char *error)
{
	if (p->error != NULL)
		return;
	p->code = code;
	p->error = error;
}

/* ---- arguments ---- */

static struct imap_arg *
imap_parser_add(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_parser_level *lv = &p->stack[p->depth];
	struct imap_arg *a;

	if (lv->count == lv->cap) {
		size_t cap = lv->cap == 0 ? 8 : lv->cap * 2;
		struct imap_arg *n;

		n = arena_alloc(p->arena, cap * sizeof(*n));
		if (lv->count > 0)
			memcpy(n, lv->args, lv->count * sizeof(*n));
		lv->args = n;
		lv->cap = cap;
	}
	a = &lv->args[lv->count++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	return a;
}

static bool
imap_parser_list_open(struct imap_parser *p)
{
	if (p->depth >= IMAP_LIST_DEPTH_MAX) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX, "Too deep list nesting");
		return false;
	}
	imap_parser_add(p, IMAP_ARG_LIST);
	p->depth++;
	memset(&p->stack[p->depth], 0, sizeof(p->stack[p->depth]));
	return true;
}

static bool
imap_parser_list_close(struct imap_parser *p)
{
	struct imap_parser_level *child, *parent;
	struct imap_arg *list;

	if (p->depth == 0) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX, "Unexpected ')'");
		return false;
	}
	child = &p->stack[p->depth];
	parent = &p->stack[p->depth - 1];
	list = &parent->args[parent->count - 1];
	list->list = child->args;
	list->count = child->count;
	p->depth--;
	return true;
}

/* ---- tokens of one line segment ---- */

static bool
imap_tag_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\+", c) == NULL;
}

static size_t
imap_parse_tag(struct imap_parser *p, const char *s, size_t n)
{
	size_t i = 0, j;

	while (i < n && s[i] != ' ')
		i++;
	if (i == 0 || i > IMAP_TAG_MAX_BYTES) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX, "Invalid tag");
		return 0;
	}
	for (j = 0; j < i; j++) {
		if (!imap_tag_char((unsigned char)s[j])) {
			imap_parser_fail(p, IMAP_PERR_SYNTAX, "Invalid tag");
			return 0;
		}
	}
	p->tag = arena_strndup(p->arena, s, i);
	if (i == n) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX, "Missing command");
		return 0;
	}
	return i + 1;
}

static size_t
imap_parse_name(struct imap_parser *p, const char *s, size_t n)
{
	size_t i = 0, j;
	char *name;

	while (i < n && s[i] != ' ')
		i++;
	if (i == 0 || i > IMAP_NAME_MAX_BYTES) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX, "Invalid command name");
		return 0;
	}
	name = arena_alloc(p->arena, i + 1);
	for (j = 0; j < i; j++) {
		char c = s[j];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.')) {
			imap_parser_fail(p, IMAP_PERR_SYNTAX,
					 "Invalid command name");
			return 0;
		}
		name[j] = c;
	}
	name[i] = '\0';
	p->name = name;
	p->is_append = strcmp(name, "APPEND") == 0;
	p->need_sep = true;
	return i;
}

/* Does the atom s[0..len) name a fetch-att with a section, whose
   "[...]" may hold spaces and parentheses? */
static bool
imap_atom_takes_section(const char *s, size_t len)
{
	static const char *const names[] = {
		"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
	};

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (strlen(names[k]) == len &&
		    strncasecmp(s, names[k], len) == 0)
			return true;
	}
	return false;
}

/* An atom; after a fetch-att name, "[...]" may hold spaces and
   parentheses (FETCH sections). Anywhere else '[' and ']' are atom
   characters like others (RFC 9051 ATOM-CHAR, ASTRING-CHAR): a mailbox
   may be called "a[b". */
static size_t
imap_parse_atom(struct imap_parser *p, const char *s, size_t n)
{
	size_t i = 0, brackets = 0;
	struct imap_arg *a;

	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (brackets == 0 && (c == ' ' || c == '(' || c == ')'))
			break;
		if (c < 0x20 || c == 0x7f) {
			imap_parser_fail(p, IMAP_PERR_SYNTAX,
					 "Control character in atom");
			return 0;
		}
		if (c == '[' &&
		    (brackets > 0 || imap_atom_takes_section(s, i))) {
			if (++brackets > IMAP_BRACKET_DEPTH_MAX) {
				imap_parser_fail(p, IMAP_PERR_SYNTAX,
						 "Too many '['");
				return 0;
			}
		} else if (c == ']' && brackets > 0) {
			brackets--;
		} else if (brackets == 0 && (c == '"' || c == '{')) {
			imap_parser_fail(p, IMAP_PERR_SYNTAX,
					 "Unexpected character in atom");
			return 0;
		}
	}
	if (brackets > 0) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX, "Missing ']'");
		return 0;
	}
	a = imap_parser_add(p, IMAP_ARG_ATOM);
	a->str = arena_strndup(p->arena, s, i);
	a->len = i;
	return i;
}

static size_t
imap_parse_quoted(struct imap_parser *p, const char *s, size_t n)
{
	char *out = arena_alloc(p->arena, n);
	size_t i = 1, o = 0;
	struct imap_arg *a;

	while (i < n) {
		char c = s[i];

		if (c == '"')
			break;
		if (c == '\\') {
			if (i + 1 >= n || (s[i + 1] != '"' && s[i + 1] != '\\')) {
				imap_parser_fail(p, IMAP_PERR_SYNTAX,
						 "Bad escape in quoted string");
				return 0;
			}
			c = s[i + 1];
			i++;
		} else if (c == '\0' || c == '\r' || c == '\n') {
			imap_parser_fail(p, IMAP_PERR_SYNTAX,
					 "Invalid character in quoted string");
			return 0;
		}
		out[o++] = c;
		i++;
	}
	if (i >= n) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX,
				 "Missing '\"' in quoted string");
		return 0;
	}
	out[o] = '\0';
	a = imap_parser_add(p, IMAP_ARG_QUOTED);
	a->str = out;
	a->len = o;
	return i + 1;
}

/* "{123}", "{123+}", "~{123}" ending exactly at s[n]. 1 ok, 0 not a
   literal marker, -1 a marker with a bad size. */
static int
imap_literal_marker(const char *s, size_t n, size_t start, uint64_t *size_r,
		    bool *sync_r, bool *lit8_r)
{
	size_t i = start, d;
	uint64_t size;

	*lit8_r = false;
	if (i < n && s[i] == '~') {
		*lit8_r = true;
		i++;
	}
	if (i >= n || s[i] != '{' || n == 0 || s[n - 1] != '}')
		return 0;
	i++;
	d = n - 1;
	*sync_r = true;
	if (d > i && s[d - 1] == '+') {
		*sync_r = false;
		d--;
	}
	if (d == i || d - i > 20)
		return -1;
	if (parse_u64(sv_make(s + i, d - i), UINT64_MAX, &size) < 0)
		return -1;
	*size_r = size;
	return 1;
}

/* The marker at the end of a rejected line, if any: the bytes of a
   non-synchronising literal follow whatever we answer. */
static int
imap_literal_tail(const char *s, size_t n, uint64_t *skip_r)
{
	size_t i;
	uint64_t size;
	bool sync, lit8;
	int r;

	*skip_r = 0;
	if (n == 0 || s[n - 1] != '}')
		return 0;
	for (i = n - 1; i > 0 && s[i - 1] != '{'; i--) {
		if (n - i > 24)
			return 0;
	}
	if (i == 0)
		return 0;
	i--;
	if (i > 0 && s[i - 1] == '~')
		i--;
	r = imap_literal_marker(s, n, i, &size, &sync, &lit8);
	if (r == 0 || (r > 0 && sync))
		return 0;
	if (r < 0) {
		/* sync markers with bad sizes need no skipping */
		return s[n - 2] == '+' ? -1 : 0;
	}
	if (size > IMAP_LITERAL_SKIP_MAX_BYTES)
		return -1;
	*skip_r = size;
	return 1;
}

static enum imap_seg_res
imap_parse_literal(struct imap_parser *p, const char *s, size_t n,
		   size_t i)
{
	int r = imap_literal_marker(s, n, i, &p->lit_size, &p->lit_sync,
				    &p->lit8);

	if (r == 0) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX,
				 "Literal must end the line");
		return SEG_ERROR;
	}
	if (r < 0) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX, "Invalid literal size");
		return SEG_ERROR;
	}
	p->lit_got = 0;
	return SEG_LITERAL;
}

static enum imap_seg_res
imap_parse_args(struct imap_parser *p, const char *s, size_t n, size_t i)
{
	size_t used;

	while (i < n) {
		char c = s[i];

		if (p->need_sep && p->utf8_close) {
			if (c != ')') {
				imap_parser_fail(p, IMAP_PERR_SYNTAX,
						 "Missing ')' after UTF8 data");
				return SEG_ERROR;
			}
			p->utf8_close = false;
			i++;
			continue;
		}
		if (p->need_sep) {
			if (c == ')') {
				if (!imap_parser_list_close(p))
					return SEG_ERROR;
				i++;
				continue;
			}
			if (c != ' ') {
				imap_parser_fail(p, IMAP_PERR_SYNTAX,
						 "Missing space");
				return SEG_ERROR;
			}
			p->need_sep = false;
			i++;
			/* Tolerate one trailing space (old clients). */
			if (i == n && p->depth == 0)
				return SEG_DONE;
			continue;
		}
		switch (c) {
		case ' ':
			imap_parser_fail(p, IMAP_PERR_SYNTAX,
					 "Unexpected space");
			return SEG_ERROR;
		case '(':
			if (!imap_parser_list_open(p))
				return SEG_ERROR;
			i++;
			continue;
		case ')':
			/* "()" and "(a )" */
			if (!imap_parser_list_close(p))
				return SEG_ERROR;
			p->need_sep = true;
			i++;
			continue;
		case '"':
			used = imap_parse_quoted(p, s + i, n - i);
			break;
		case '{':
			return imap_parse_literal(p, s, n, i);
		case '~':
			if (i + 1 < n && s[i + 1] == '{')
				return imap_parse_literal(p, s, n, i);
			used = imap_parse_atom(p, s + i, n - i);
			break;
		default:
			used = imap_parse_atom(p, s + i, n - i);
			break;
		}
		if (used == 0)
			return SEG_ERROR;
		i += used;
		p->need_sep = true;
	}
	return SEG_DONE;
}

static enum imap_seg_res
imap_parse_segment(struct imap_parser *p, const char *s, size_t n)
{
	size_t i = 0, used;

	if (p->state == PS_TAG) {
		used = imap_parse_tag(p, s, n);
		if (used == 0)
			return SEG_ERROR;
		i = used;
		used = imap_parse_name(p, s + i, n - i);
		if (used == 0)
			return SEG_ERROR;
		i += used;
		p->state = PS_ARGS;
	}
	return imap_parse_args(p, s, n, i);
}

/* ---- the byte-level state machine ---- */

static void
imap_parser_tail_add(struct imap_parser *p, const uint8_t *d, size_t n)
{
	if (n >= IMAP_PARSER_TAIL) {
		memcpy(p->tail, d + n - IMAP_PARSER_TAIL, IMAP_PARSER_TAIL);
		p->tail_len = IMAP_PARSER_TAIL;
		return;
	}
	if (p->tail_len + n > IMAP_PARSER_TAIL) {
		size_t drop = p->tail_len + n - IMAP_PARSER_TAIL;

		memmove(p->tail, p->tail + drop, p->tail_len - drop);
		p->tail_len -= drop;
	}
	memcpy(p->tail + p->tail_len, d, n);
	p->tail_len += n;
}

/* After a rejected segment: skip the literal it announced, if any. */
static void
imap_parser_after_error(struct imap_parser *p, const char *s, size_t n)
{
	uint64_t skip;
	int r = imap_literal_tail(s, n, &skip);

	if (r < 0) {
		p->code = IMAP_PERR_FATAL;
		p->state = PS_TAG;
	} else if (r > 0) {
		p->skip = skip;
		p->tail_len = 0;
		p->state = PS_DISCARD_LIT;
	} else {
		p->state = PS_TAG;
	}
}

static enum imap_parse_res
imap_parser_discard(struct imap_parser *p, const uint8_t *d, size_t len,
		    size_t *pos)
{
	const uint8_t *lf;
	size_t n;

	if (p->state == PS_DISCARD_LIT) {
		n = len - *pos;
		if (n > p->skip)
			n = (size_t)p->skip;
		*pos += n;
		p->skip -= n;
		if (p->skip > 0)
			return IMAP_PARSE_MORE;
		p->state = PS_DISCARD_LINE;
		p->tail_len = 0;
	}
	lf = memchr(d + *pos, '\n', len - *pos);
	if (lf == NULL) {
		imap_parser_tail_add(p, d + *pos, len - *pos);
		*pos = len;
		return IMAP_PARSE_MORE;
	}
	n = (size_t)(lf - (d + *pos));
	imap_parser_tail_add(p, d + *pos, n);
	*pos += n + 1;
	n = p->tail_len;
	if (n > 0 && p->tail[n - 1] == '\r')
		n--;
	imap_parser_after_error(p, p->tail, n);
	if (p->code == IMAP_PERR_FATAL) {
		p->error = "Invalid literal size";
		return IMAP_PARSE_ERROR;
	}
	return IMAP_PARSE_MORE;
}

/* APPEND's "UTF8 (~{n}" (RFC 6855 4): the open list and the UTF8 atom
   are dropped, the literal streams as a top-level argument marked
   utf8_data, and the closing ')' is consumed after it. */
static bool
imap_parser_utf8_append(struct imap_parser *p)
{
	struct imap_parser_level *top = &p->stack[0];

	if (!p->is_append || p->depth != 1 || p->stack[1].count != 0 ||
	    !p->lit8 || top->count < 3 ||
	    !imap_arg_is_atom(&top->args[top->count - 2], "UTF8"))
		return false;
	top->count -= 2;
	p->depth = 0;
	p->utf8_close = true;
	return true;
}

static enum imap_parse_res
imap_parser_literal_start(struct imap_parser *p)
{
	bool utf8 = imap_parser_utf8_append(p);

	if (p->is_append && p->depth == 0 && p->stack[0].count >= 1) {
		struct imap_arg *a = imap_parser_add(p, IMAP_ARG_STREAM);

		a->stream_size = p->lit_size;
		a->literal8 = p->lit8;
		a->utf8_data = utf8;
		p->state = PS_STREAM;
		return IMAP_PARSE_STREAM;
	}
	if (p->lit_size > p->max_literal ||
	    p->lit_size > p->max_total - p->total) {
		imap_parser_fail(p, IMAP_PERR_TOOBIG, "Literal too big");
		if (p->lit_sync) {
			p->state = PS_TAG;
		} else if (p->lit_size > IMAP_LITERAL_SKIP_MAX_BYTES) {
			p->code = IMAP_PERR_FATAL;
			p->state = PS_TAG;
		} else {
			p->skip = p->lit_size;
			p->tail_len = 0;
			p->state = PS_DISCARD_LIT;
		}
		return IMAP_PARSE_ERROR;
	}
	p->total += (size_t)p->lit_size;
	p->lit_buf = arena_alloc(p->arena, (size_t)p->lit_size + 1);
	p->state = PS_LITERAL;
	return p->lit_sync ? IMAP_PARSE_CONT : IMAP_PARSE_MORE;
}

static bool
imap_parser_literal_read(struct imap_parser *p, const uint8_t *d,
			 size_t len, size_t *pos)
{
	size_t n = len - *pos;
	struct imap_arg *a;

	if (n > p->lit_size - p->lit_got)
		n = (size_t)(p->lit_size - p->lit_got);
	memcpy(p->lit_buf + p->lit_got, d + *pos, n);
	p->lit_got += n;
	*pos += n;
	if (p->lit_got < p->lit_size)
		return false;
	p->lit_buf[p->lit_size] = '\0';
	a = imap_parser_add(p, IMAP_ARG_LITERAL);
	a->str = p->lit_buf;
	a->len = (size_t)p->lit_size;
	a->literal8 = p->lit8;
	p->lit_buf = NULL;
	p->state = PS_ARGS;
	p->need_sep = true;
	return true;
}

/* One line segment (up to LF) in PS_TAG / PS_ARGS. */
static enum imap_parse_res
imap_parser_line(struct imap_parser *p, const uint8_t *d, size_t len,
		 size_t *pos)
{
	size_t avail = len - *pos, n, seg;
	const uint8_t *lf;
	const char *s = (const char *)d + *pos;
	enum imap_seg_res r;

	lf = memchr(d + *pos, '\n', avail > p->max_line + 2 ?
				    p->max_line + 2 : avail);
	if (lf == NULL) {
		if (avail <= p->max_line + 1)
			return IMAP_PARSE_MORE;
		/* The discard state skips to the LF on the next feed. */
		imap_parser_fail(p, IMAP_PERR_LINE_TOO_LONG, "Line too long");
		p->tail_len = 0;
		p->state = PS_DISCARD_LINE;
		return IMAP_PARSE_ERROR;
	}
	seg = (size_t)(lf - (d + *pos)) + 1;
	n = seg - 1;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	*pos += seg;
	if (p->state == PS_TAG && n == 0)
		return IMAP_PARSE_MORE; /* empty line: ignored */
	if (seg > p->max_total - p->total) {
		imap_parser_fail(p, IMAP_PERR_TOOBIG, "Command too long");
		imap_parser_after_error(p, s, n);
		return IMAP_PARSE_ERROR;
	}
	p->total += seg;
	r = imap_parse_segment(p, s, n);
	if (r == SEG_ERROR) {
		imap_parser_after_error(p, s, n);
		return IMAP_PARSE_ERROR;
	}
	if (r == SEG_LITERAL)
		return imap_parser_literal_start(p);
	if (p->depth > 0 || p->utf8_close) {
		imap_parser_fail(p, IMAP_PERR_SYNTAX, "Missing ')'");
		p->state = PS_TAG;
		return IMAP_PARSE_ERROR;
	}
	p->state = PS_DONE;
	return IMAP_PARSE_CMD;
}

enum imap_parse_res
imap_parser_feed(struct imap_parser *p, const uint8_t *data, size_t len,
		 size_t *consumed_r)
{
	enum imap_parse_res res = IMAP_PARSE_MORE;
	size_t pos = 0, before;
	bool lit_done;

	for (;;) {
		before = pos;
		lit_done = false; /* a literal of 0 bytes ends consuming none */
		switch (p->state) {
		case PS_DISCARD_LIT:
		case PS_DISCARD_LINE:
			res = imap_parser_discard(p, data, len, &pos);
			break;
		case PS_TAG:
		case PS_ARGS:
			res = imap_parser_line(p, data, len, &pos);
			break;
		case PS_LITERAL:
			lit_done = imap_parser_literal_read(p, data, len, &pos);
			res = IMAP_PARSE_MORE;
			break;
		case PS_STREAM:
			res = IMAP_PARSE_STREAM;
			goto out;
		case PS_DONE:
			res = IMAP_PARSE_CMD;
			goto out;
		}
		if (res != IMAP_PARSE_MORE || (pos == before && !lit_done) ||
		    pos == len)
			break;
	}
out:
	*consumed_r = pos;
	return res;
}

/* ---- argument helpers ---- */

bool
imap_arg_is_atom(const struct imap_arg *a, const char *name)
{
	return a->type == IMAP_ARG_ATOM && strcasecmp(a->str, name) == 0;
}

bool
imap_arg_is_string(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL;
}

bool
imap_arg_is_astring(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM || imap_arg_is_string(a);
}

bool
imap_arg_is_nil(const struct imap_arg *a)
{
	return imap_arg_is_atom(a, "NIL");
}
