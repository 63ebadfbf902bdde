/* Lexical tokens of structured header fields: CFWS and comments, atoms,
   quoted strings (RFC 5322 3.2.1-3.2.5, RFC 6532 3.2 for 8-bit text) and
   RFC 2045 5.1 tokens.
   Security: every scan stops at lx->end; comment nesting is bounded by
   MIME_COMMENT_DEPTH_MAX; text copied out is cut at the buffer's max. */
#include <string.h>

#include "mime/mime_int.h"

void
mime_lex_init(struct mime_lex *lx, const char *p, size_t len)
{
	lx->p = p;
	lx->end = p + len;
	lx->last_comment = NULL;
}

bool
mime_lex_eof(const struct mime_lex *lx)
{
	return lx->p >= lx->end;
}

int
mime_lex_peek(const struct mime_lex *lx)
{
	return lx->p < lx->end ? (unsigned char)*lx->p : -1;
}

static void
mime_lex_put(struct buf *out, char c)
{
	if (out != NULL)
		(void)buf_append_byte(out, (uint8_t)c);
}

/* At '(': skip the comment, recording its text (without the outer
   parentheses) when lx->last_comment is set. */
static void
mime_lex_comment(struct mime_lex *lx)
{
	struct buf *out = lx->last_comment;
	unsigned int depth = 0;

	if (out != NULL)
		buf_reset(out);
	while (lx->p < lx->end) {
		char c = *lx->p++;

		if (c == '\\' && lx->p < lx->end) {
			mime_lex_put(out, *lx->p++);
			continue;
		}
		if (c == '(') {
			if (++depth > MIME_COMMENT_DEPTH_MAX)
				break;
			if (depth == 1)
				continue;
		} else if (c == ')') {
			if (--depth == 0)
				return;
		}
		if (c != '\r' && c != '\n')
			mime_lex_put(out, c);
	}
	/* unterminated or too deep: nothing after it can be trusted */
	lx->p = lx->end;
}

void
mime_lex_skip_cfws(struct mime_lex *lx)
{
	while (lx->p < lx->end) {
		char c = *lx->p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			lx->p++;
		else if (c == '(')
			mime_lex_comment(lx);
		else
			break;
	}
}

void
mime_lex_quoted(struct mime_lex *lx, struct buf *out)
{
	lx->p++; /* '"' */
	while (lx->p < lx->end) {
		char c = *lx->p++;

		if (c == '"')
			return;
		if (c == '\\' && lx->p < lx->end)
			c = *lx->p++;
		else if (c == '\r' || c == '\n')
			continue; /* folding inside the string */
		mime_lex_put(out, c);
	}
}

bool
mime_lex_is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true; /* RFC 6532 UTF8-non-ascii, and raw 8-bit */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

size_t
mime_lex_atom(struct mime_lex *lx, struct buf *out)
{
	const char *start = lx->p;

	while (lx->p < lx->end && mime_lex_is_atext((unsigned char)*lx->p))
		mime_lex_put(out, *lx->p++);
	return (size_t)(lx->p - start);
}

static bool
mime_lex_is_token(unsigned char c, bool allow_8bit)
{
	if (c >= 0x80)
		return allow_8bit;
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

size_t
mime_lex_token(struct mime_lex *lx, struct buf *out, bool allow_8bit)
{
	const char *start = lx->p;

	while (lx->p < lx->end &&
	       mime_lex_is_token((unsigned char)*lx->p, allow_8bit))
		mime_lex_put(out, *lx->p++);
	return (size_t)(lx->p - start);
}

void
mime_lex_skip_element(struct mime_lex *lx, bool stop_semicolon)
{
	bool in_angle = false;

	while (lx->p < lx->end) {
		char c = *lx->p;

		if (c == '"') {
			mime_lex_quoted(lx, NULL);
		} else if (c == '(') {
			struct buf *save = lx->last_comment;

			lx->last_comment = NULL;
			mime_lex_comment(lx);
			lx->last_comment = save;
		} else if (c == '<') {
			in_angle = true;
			lx->p++;
		} else if (c == '>') {
			in_angle = false;
			lx->p++;
		} else if (!in_angle &&
			   (c == ',' || (stop_semicolon && c == ';'))) {
			return;
		} else {
			lx->p++;
		}
	}
}
