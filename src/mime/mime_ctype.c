/* Content-Type (RFC 2045 5.1) and Content-Disposition (RFC 2183 2)
   values: type "/" subtype *(";" attribute "=" value), with CFWS allowed
   between tokens (RFC 2045 5.1 permits comments). RFC 2231 parameters
   are kept as written ("name*0*"), as IMAP reports them; lookups (the
   boundary, the charset) also see them joined and %-decoded.
   Security: at most MIME_PARAMS_MAX parameters are kept; text is cut at
   MIME_HEADER_VALUE_MAX_BYTES; a syntax error ends the parameter list. */
#include <stdlib.h>
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

/* ---- RFC 2231: name*=charset'lang'%xx, name*0=..., name*1*=... ---- */

static int
mime_ctype_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Append value, %-decoded when extended; the first extended segment
   starts with charset'language' (RFC 2231 4), which is dropped. */
static void
mime_ctype_2231_segment(struct buf *out, const char *v, bool extended,
			bool first)
{
	const char *q;

	if (!extended) {
		(void)buf_append_str(out, v);
		return;
	}
	if (first && (q = strchr(v, '\'')) != NULL &&
	    strchr(q + 1, '\'') != NULL)
		v = strchr(q + 1, '\'') + 1;
	for (; *v != '\0'; v++) {
		int hi, lo;

		if (*v == '%' && (hi = mime_ctype_hex(v[1])) >= 0 &&
		    (lo = mime_ctype_hex(v[2])) >= 0) {
			(void)buf_append_byte(out, (uint8_t)(hi * 16 + lo));
			v += 2;
		} else {
			(void)buf_append_byte(out, (uint8_t)*v);
		}
	}
}

/* The parameter "base*" or "base*<index>" / "base*<index>*": its value,
   and whether it is %-encoded. NULL when absent. */
static const char *
mime_ctype_2231_find(const struct mime_ctype *ct, const char *base,
		     size_t blen, long index, bool *extended_r)
{
	for (size_t i = 0; i < ct->n_params; i++) {
		const char *nm = ct->params[i].name, *rest;
		char *end;
		long k;

		if (strncasecmp(nm, base, blen) != 0 || nm[blen] != '*')
			continue;
		rest = nm + blen + 1;
		if (index < 0) {
			if (*rest != '\0')
				continue;
			*extended_r = true;
			return ct->params[i].value;
		}
		if (*rest < '0' || *rest > '9')
			continue;
		k = strtol(rest, &end, 10);
		if (k != index || (*end != '\0' && strcmp(end, "*") != 0))
			continue;
		*extended_r = *end == '*';
		return ct->params[i].value;
	}
	return NULL;
}

/* The joined value of base (segments 0, 1, ... until one is missing,
   or the single "base*"), or false when base has no RFC 2231 form. */
static bool
mime_ctype_2231_value(const struct mime_ctype *ct, const char *base,
		      size_t blen, struct buf *out)
{
	const char *v;
	bool ext;
	long i;

	v = mime_ctype_2231_find(ct, base, blen, -1, &ext);
	if (v != NULL) {
		mime_ctype_2231_segment(out, v, true, true);
		return true;
	}
	for (i = 0; i < MIME_PARAMS_MAX; i++) {
		v = mime_ctype_2231_find(ct, base, blen, i, &ext);
		if (v == NULL)
			break;
		mime_ctype_2231_segment(out, v, ext, i == 0);
	}
	return i > 0;
}

static bool
mime_ctype_joined_has(const struct mime_param *joined, size_t n,
		      const char *base, size_t blen)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(joined[i].name) == blen &&
		    strncasecmp(joined[i].name, base, blen) == 0)
			return true;
	}
	return false;
}

static void
mime_ctype_join_2231(struct arena *a, struct mime_ctype *ct)
{
	struct mime_param joined[MIME_PARAMS_MAX];
	struct buf value;
	size_t n = 0;

	buf_init(&value, MIME_HEADER_VALUE_MAX_BYTES);
	for (size_t i = 0; i < ct->n_params; i++) {
		const char *nm = ct->params[i].name;
		const char *star = strchr(nm, '*');
		size_t blen = star != NULL ? (size_t)(star - nm) : 0;

		if (blen == 0 || mime_ctype_joined_has(joined, n, nm, blen))
			continue;
		buf_reset(&value);
		if (!mime_ctype_2231_value(ct, nm, blen, &value))
			continue;
		joined[n].name = arena_strndup(a, nm, blen);
		joined[n].value = arena_strndup(a, buf_cstr(&value), value.len);
		n++;
	}
	buf_free(&value);
	ct->n_joined = n;
	if (n > 0) {
		ct->joined = arena_alloc(a, n * sizeof(joined[0]));
		memcpy(ct->joined, joined, n * sizeof(joined[0]));
	}
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
	mime_ctype_join_2231(a, ct);
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
	for (size_t i = 0; i < ct->n_joined; i++) {
		if (strcasecmp(ct->joined[i].name, name) == 0)
			return ct->joined[i].value;
	}
	return NULL;
}
