/* Content-Type (RFC 2045 5.1) and Content-Disposition (RFC 2183 2)
   values: type "/" subtype *(";" attribute "=" value), with CFWS allowed
   between tokens (RFC 2045 5.1 permits comments). RFC 2231 parameters
   are kept as written ("name*0*"), as IMAP reports them.
   Security: at most MIME_PARAMS_MAX parameters are kept; text is cut at
   MIME_HEADER_VALUE_MAX_BYTES; a syntax error ends the parameter list. */
#include <string.h>

#include "mime/mime_int.h"

static char *
mime_ctype_lower_dup(struct arena *a, const struct buf *b)
{
	char *s = arena_strndup(a, buf_cstr(b), b->len);

	for (char *p = s; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	return s;
}

/* One ";" attribute "=" value. 1 read, 0 end of list (or error). */
static int
mime_ctype_param_next(struct mime_lex *lx, struct buf *name,
		      struct buf *value)
{
	for (;;) {
		mime_lex_skip_cfws(lx);
		if (mime_lex_peek(lx) != ';')
			return 0;
		lx->p++;
		mime_lex_skip_cfws(lx);
		if (mime_lex_peek(lx) != ';')
			break; /* tolerate empty ";;" elements */
	}
	buf_reset(name);
	buf_reset(value);
	if (mime_lex_token(lx, name, false) == 0)
		return 0;
	mime_lex_skip_cfws(lx);
	if (mime_lex_peek(lx) != '=')
		return 0;
	lx->p++;
	mime_lex_skip_cfws(lx);
	if (mime_lex_peek(lx) == '"')
		mime_lex_quoted(lx, value);
	else
		(void)mime_lex_token(lx, value, true);
	return 1;
}

static void
mime_ctype_params(struct arena *a, struct mime_lex *lx,
		  struct mime_ctype *ct)
{
	struct mime_param params[MIME_PARAMS_MAX];
	struct buf name, value;
	size_t n = 0;

	buf_init(&name, MIME_HEADER_VALUE_MAX_BYTES);
	buf_init(&value, MIME_HEADER_VALUE_MAX_BYTES);
	while (n < MIME_PARAMS_MAX &&
	       mime_ctype_param_next(lx, &name, &value) > 0) {
		params[n].name = arena_strndup(a, buf_cstr(&name), name.len);
		params[n].value = arena_strndup(a, buf_cstr(&value),
						value.len);
		n++;
	}
	buf_free(&name);
	buf_free(&value);
	ct->n_params = n;
	if (n > 0) {
		ct->params = arena_alloc(a, n * sizeof(params[0]));
		memcpy(ct->params, params, n * sizeof(params[0]));
	}
}

int
mime_ctype_parse(struct arena *a, const char *v, size_t len,
		 bool want_subtype, struct mime_ctype *ct_r)
{
	struct mime_lex lx;
	struct buf tok;
	int ret = -1;

	memset(ct_r, 0, sizeof(*ct_r));
	buf_init(&tok, MIME_HEADER_VALUE_MAX_BYTES);
	mime_lex_init(&lx, v, len);
	mime_lex_skip_cfws(&lx);
	if (mime_lex_token(&lx, &tok, false) == 0)
		goto out;
	ct_r->type = mime_ctype_lower_dup(a, &tok);
	if (want_subtype) {
		mime_lex_skip_cfws(&lx);
		if (mime_lex_peek(&lx) != '/')
			goto out;
		lx.p++;
		mime_lex_skip_cfws(&lx);
		buf_reset(&tok);
		if (mime_lex_token(&lx, &tok, false) == 0)
			goto out;
		ct_r->subtype = mime_ctype_lower_dup(a, &tok);
	}
	mime_ctype_params(a, &lx, ct_r);
	ret = 0;
out:
	buf_free(&tok);
	if (ret < 0)
		memset(ct_r, 0, sizeof(*ct_r));
	return ret;
}

const char *
mime_ctype_param(const struct mime_ctype *ct, const char *name)
{
	for (size_t i = 0; i < ct->n_params; i++) {
		if (strcasecmp(ct->params[i].name, name) == 0)
			return ct->params[i].value;
	}
	return NULL;
}
