#ifndef TERN_MIME_INT_H
#define TERN_MIME_INT_H
/* Private to src/mime/: the header field iterator, the RFC 5322 lexer,
   Content-Type parsing, the part tree and the IMAP writers. Never include
   from outside this folder. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/strview.h"
#include "mime/mime.h"

/* ---- mime_header.c: header fields ---- */

/* One field of a header block; offsets are relative to the block. */
struct mime_field {
	size_t off;       /* first byte of the field's first line */
	size_t len;       /* raw bytes, continuations and final line end */
	size_t name_len;  /* name at off, trailing white space excluded */
	size_t value_off; /* first byte after ':' */
	size_t value_end; /* end of value, final line end excluded */
	bool has_eol;     /* the last line ends in LF */
};

struct mime_header_iter {
	const uint8_t *hdr;
	size_t len, pos;
};

void mime_header_iter_init(struct mime_header_iter *it, const uint8_t *hdr,
			   size_t len);
/* 1 and *f_r filled, or 0 at the empty line / end of the block. Lines
   without ':' and stray continuation lines are skipped. */
int mime_header_iter_next(struct mime_header_iter *it,
			  struct mime_field *f_r);
/* Case-insensitive comparison of the field name with name. */
bool mime_header_field_is(const uint8_t *hdr, const struct mime_field *f,
			  const char *name);
/* Append the unfolded, trimmed value of f to out; cut at out->max
   (then -1, out holds the prefix), else 0. */
int mime_header_unfold(const uint8_t *hdr, const struct mime_field *f,
		       struct buf *out);
/* Unfolded value of f as an arena string (cut at
   MIME_HEADER_VALUE_MAX_BYTES). */
char *mime_header_value_dup(struct arena *a, const uint8_t *hdr,
			    const struct mime_field *f);

/* ---- mime_lex.c: RFC 5322 3.2 lexical tokens ---- */

struct mime_lex {
	const char *p, *end;
	/* Text of the last comment skipped, when non-NULL. */
	struct buf *last_comment;
};

void mime_lex_init(struct mime_lex *lx, const char *p, size_t len);
bool mime_lex_eof(const struct mime_lex *lx);
/* Next byte, or -1 at the end. */
int mime_lex_peek(const struct mime_lex *lx);
/* Skip white space, line ends and (nested) comments. A comment deeper
   than MIME_COMMENT_DEPTH_MAX or unterminated ends the input. */
void mime_lex_skip_cfws(struct mime_lex *lx);
/* Quoted string at '"': append its unescaped contents to out (cut at
   out->max); an unterminated string runs to the end. */
void mime_lex_quoted(struct mime_lex *lx, struct buf *out);
/* RFC 5322 atext, plus bytes >= 0x80 (RFC 6532). */
bool mime_lex_is_atext(unsigned char c);
/* RFC 5322 atext run (plus bytes >= 0x80) appended to out; returns the
   number of bytes read. */
size_t mime_lex_atom(struct mime_lex *lx, struct buf *out);
/* RFC 2045 token (not tspecials, SP or CTL; bytes >= 0x80 allowed when
   allow_8bit). Returns bytes read. */
size_t mime_lex_token(struct mime_lex *lx, struct buf *out, bool allow_8bit);
/* Skip to the next ',' (or ';' when stop_semicolon) outside quotes,
   comments and angle brackets; the separator is not consumed. */
void mime_lex_skip_element(struct mime_lex *lx, bool stop_semicolon);

/* ---- mime_ctype.c: Content-Type / Content-Disposition (RFC 2045 5.1,
   RFC 2183) ---- */

struct mime_param {
	char *name;  /* as written */
	char *value; /* quoting removed */
};

struct mime_ctype {
	char *type, *subtype; /* lowercase; subtype NULL for dispositions */
	struct mime_param *params; /* as written (IMAP reports these) */
	size_t n_params;
	/* RFC 2231 values put together and %-decoded ("boundary*0*=..."
	   gives "boundary"), for lookups by mime_ctype_param() only */
	struct mime_param *joined;
	size_t n_joined;
};

/* 0, or -1 when the type (or type/subtype when want_subtype) is not
   valid; then *ct_r is zeroed. Parameters after a syntax error are
   dropped. Allocations in a. */
int mime_ctype_parse(struct arena *a, const char *v, size_t len,
		     bool want_subtype, struct mime_ctype *ct_r);
/* Value of the first parameter named name (case-insensitive), or NULL. */
/* The value of parameter name: as written, else its RFC 2231 form
   joined and decoded (charset and language dropped). NULL if absent. */
const char *mime_ctype_param(const struct mime_ctype *ct, const char *name);

/* ---- mime_part.c: the part tree (RFC 2046 5.1, 5.2) ---- */

enum mime_part_kind {
	MIME_PART_LEAF,
	MIME_PART_MULTIPART,
	MIME_PART_MESSAGE, /* message/rfc822 or message/global */
};

struct mime_part {
	size_t hdr_off, hdr_len;   /* MIME header incl. the empty line */
	size_t body_off, body_len;
	enum mime_part_kind kind;
	struct mime_ctype ct;      /* effective type after fallbacks */
	bool ct_fallback;          /* type was missing, invalid or broken */
	struct mime_ctype disp;    /* disp.type NULL when absent/invalid */
	char *cte;                 /* lowercase, NULL when absent */
	char *id, *description, *md5, *location, *language;
	struct mime_part *parent, *children, *next;
	/* MIME_PART_MESSAGE: children is the encapsulated message's root. */
};

struct mime_tree {
	const uint8_t *msg;
	size_t len;
	struct arena *arena;
	struct mime_part *root;
	size_t n_parts;
};

/* Parse msg into a tree allocated in a new arena. Never fails. */
void mime_tree_parse(struct mime_tree *tree, const uint8_t *msg, size_t len);
void mime_tree_free(struct mime_tree *tree);
/* Lines of msg[off..off+len) (LF count, +1 for a final partial line). */
uint32_t mime_part_count_lines(const uint8_t *msg, size_t off, size_t len);

/* ---- mime_imap.c: IMAP writers (RFC 9051 7.5.2) ---- */

/* Append ENVELOPE of the header block hdr[0..len). 0 or -1 (out full). */
int mime_imap_envelope(struct buf *out, const uint8_t *hdr, size_t len);
/* Append BODYSTRUCTURE (ext) or BODY (!ext) of part. 0 or -1. */
int mime_imap_bodystructure(struct buf *out, const struct mime_tree *tree,
			    const struct mime_part *part, bool ext);

/* ---- mime_charset.c ---- */

/* Append in converted from charset to UTF-8 (invalid sequences become
   U+FFFD). An unknown charset copies the bytes. 0, or -1 when out->max
   is exceeded (out keeps what fit). */
int mime_charset_to_utf8(struct buf *out, const char *charset,
			 const uint8_t *in, size_t len);
/* Append as much of in as fits in out (not splitting a UTF-8 sequence);
   0 when all fit, -1 when cut. */
int mime_charset_append_cut(struct buf *out, const void *in, size_t len);

#endif
