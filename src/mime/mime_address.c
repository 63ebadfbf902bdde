/* Address lists: RFC 5322 3.4 (address, mailbox, group, angle-addr,
   addr-spec), 4.4 (obsolete routes, empty list elements, CFWS between
   local-part words), and the IMAP envelope address form of RFC 9051
   7.5.2 / RFC 3501 7.4.2 (group markers, NIL host).
   Nothing is decoded: RFC 2047 words stay as they are (ENVELOPE is raw).
   Security: the parser never fails; broken elements are skipped to the
   next top-level ','; the entry count is bounded by MIME_ADDRESSES_MAX,
   all copied text by MIME_HEADER_VALUE_MAX_BYTES. */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mime/mime_int.h"

/* How envelopes show parts an address lacks (UW-IMAP's convention, which
   clients recognise; a NIL host would mean a group marker). */
#define MIME_ADDRESS_MISSING_HOST ".MISSING-HOST-NAME."
#define MIME_ADDRESS_MISSING_MAILBOX "MISSING_MAILBOX"

struct mime_address_parser {
	struct mime_lex lx;
	struct buf comment;
	struct buf name, route, mailbox, domain;
	struct mime_address_list *list;
	size_t cap;
};

/* Append an entry; false when the list is full. Mailboxes and group
   starts keep one slot free so that a group end always fits. */
static bool
mime_address_add(struct mime_address_parser *ctx,
		 const struct mime_address *a)
{
	struct mime_address_list *l = ctx->list;
	size_t need = a->kind == MIME_ADDRESS_GROUP_END ? 1 : 2;

	if (l->count > MIME_ADDRESSES_MAX - need)
		return false;
	if (l->count == ctx->cap) {
		ctx->cap = ctx->cap == 0 ? 4 : ctx->cap * 2;
		l->addrs = xreallocarray(l->addrs, ctx->cap, sizeof(*a));
	}
	l->addrs[l->count++] = *a;
	return true;
}

static char *
mime_address_dup_nonempty(const struct buf *b)
{
	return b->len == 0 ? NULL : xstrndup(buf_cstr(b), b->len);
}

/* Append one word of a phrase: a space first when white space or a
   comment separated it from the previous word. */
static bool
mime_address_phrase_word(struct mime_address_parser *ctx, struct buf *out,
			 bool gap)
{
	struct mime_lex *lx = &ctx->lx;
	int c = mime_lex_peek(lx);

	if (c != '"' && c != '.' && (c < 0 || !mime_lex_is_atext((uint8_t)c)))
		return false;
	if (gap && out->len > 0)
		(void)buf_append_byte(out, ' ');
	if (c == '"') {
		mime_lex_quoted(lx, out);
	} else if (c == '.') {
		(void)buf_append_byte(out, '.');
		lx->p++;
	} else {
		(void)mime_lex_atom(lx, out);
	}
	return true;
}

/* phrase = 1*word / obs-phrase (words and '.'). Returns the number of
   words read; trailing CFWS is consumed. */
static size_t
mime_address_phrase(struct mime_address_parser *ctx, struct buf *out)
{
	size_t n = 0;

	buf_reset(out);
	for (;;) {
		const char *before = ctx->lx.p;

		mime_lex_skip_cfws(&ctx->lx);
		if (!mime_address_phrase_word(ctx, out, ctx->lx.p != before))
			return n;
		n++;
	}
}

/* local-part = dot-atom / quoted-string / obs-local-part: words joined
   by '.', CFWS around them dropped. Returns words read. */
static size_t
mime_address_local_part(struct mime_address_parser *ctx, struct buf *out)
{
	struct mime_lex *lx = &ctx->lx;
	bool want_word = true;
	size_t n = 0;

	buf_reset(out);
	for (;;) {
		int c;

		mime_lex_skip_cfws(lx);
		c = mime_lex_peek(lx);
		if (c == '.') {
			(void)buf_append_byte(out, '.');
			lx->p++;
			want_word = true;
		} else if (want_word && c == '"') {
			mime_lex_quoted(lx, out);
			want_word = false;
			n++;
		} else if (want_word && c >= 0 &&
			   mime_lex_is_atext((uint8_t)c)) {
			(void)mime_lex_atom(lx, out);
			want_word = false;
			n++;
		} else {
			return n;
		}
	}
}

/* domain = dot-atom / domain-literal / obs-domain. */
static void
mime_address_domain(struct mime_address_parser *ctx, struct buf *out)
{
	struct mime_lex *lx = &ctx->lx;

	buf_reset(out);
	mime_lex_skip_cfws(lx);
	if (mime_lex_peek(lx) == '[') {
		while (lx->p < lx->end) {
			char c = *lx->p++;

			if (c != '\r' && c != '\n')
				(void)buf_append_byte(out, (uint8_t)c);
			if (c == ']')
				break;
		}
		mime_lex_skip_cfws(lx);
		return;
	}
	for (;;) {
		(void)mime_lex_atom(lx, out);
		mime_lex_skip_cfws(lx);
		if (mime_lex_peek(lx) != '.')
			return;
		(void)buf_append_byte(out, '.');
		lx->p++;
		mime_lex_skip_cfws(lx);
	}
}

/* addr-spec = local-part "@" domain; a missing "@domain" is reported
   through a NULL domain. */
static void
mime_address_addr_spec(struct mime_address_parser *ctx, bool *has_domain_r)
{
	(void)mime_address_local_part(ctx, &ctx->mailbox);
	buf_reset(&ctx->domain);
	*has_domain_r = false;
	if (mime_lex_peek(&ctx->lx) == '@') {
		ctx->lx.p++;
		mime_address_domain(ctx, &ctx->domain);
		*has_domain_r = true;
	}
}

/* obs-route = obs-domain-list ":" with obs-domain-list =
   *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain]). At '@'. Returns
   false when the ':' is missing. */
static bool
mime_address_route(struct mime_address_parser *ctx)
{
	struct mime_lex *lx = &ctx->lx;
	struct buf dom;

	buf_init(&dom, MIME_HEADER_VALUE_MAX_BYTES);
	buf_reset(&ctx->route);
	while (mime_lex_peek(lx) == '@') {
		lx->p++;
		mime_address_domain(ctx, &dom);
		if (ctx->route.len > 0)
			(void)buf_append_byte(&ctx->route, ',');
		(void)buf_append_byte(&ctx->route, '@');
		(void)buf_append(&ctx->route, dom.data, dom.len);
		while (mime_lex_peek(lx) == ',') {
			lx->p++;
			mime_lex_skip_cfws(lx);
		}
	}
	buf_free(&dom);
	if (mime_lex_peek(lx) != ':')
		return false;
	lx->p++;
	return true;
}

/* angle-addr = "<" [obs-route] addr-spec ">", at '<'. Returns false on
   broken syntax (fields keep what was read). */
static bool
mime_address_angle(struct mime_address_parser *ctx, bool *has_domain_r)
{
	struct mime_lex *lx = &ctx->lx;
	bool ok = true;

	lx->p++;
	mime_lex_skip_cfws(lx);
	buf_reset(&ctx->route);
	if (mime_lex_peek(lx) == '@' && !mime_address_route(ctx))
		ok = false;
	mime_address_addr_spec(ctx, has_domain_r);
	if (mime_lex_peek(lx) != '>')
		return false;
	lx->p++;
	return ok;
}

/* Emit the mailbox parsed into ctx's buffers. */
static void
mime_address_emit_mailbox(struct mime_address_parser *ctx, bool has_domain,
			  bool invalid)
{
	struct mime_address a = { .kind = MIME_ADDRESS_MAILBOX };

	if (ctx->mailbox.len == 0 && !has_domain && ctx->name.len == 0)
		return; /* nothing there at all */
	a.name = mime_address_dup_nonempty(&ctx->name);
	a.route = mime_address_dup_nonempty(&ctx->route);
	a.mailbox = mime_address_dup_nonempty(&ctx->mailbox);
	a.domain = has_domain ? xstrndup(buf_cstr(&ctx->domain),
					 ctx->domain.len) : NULL;
	a.invalid = invalid || !has_domain || ctx->domain.len == 0 ||
		    a.mailbox == NULL;
	if (!mime_address_add(ctx, &a)) {
		free(a.name);
		free(a.route);
		free(a.mailbox);
		free(a.domain);
	}
}

/* mailbox = name-addr / addr-spec. Stops before the separator; returns
   false when the element had trailing garbage (the caller skips it). */
static bool
mime_address_mailbox(struct mime_address_parser *ctx, bool in_group)
{
	struct mime_lex *lx = &ctx->lx;
	const char *start = lx->p;
	bool has_domain = false, ok = true;
	int c;

	buf_reset(&ctx->comment);
	buf_reset(&ctx->route);
	(void)mime_address_phrase(ctx, &ctx->name);
	if (mime_lex_peek(lx) == '<') {
		ok = mime_address_angle(ctx, &has_domain);
	} else {
		lx->p = start;
		buf_reset(&ctx->comment);
		buf_reset(&ctx->name);
		mime_address_addr_spec(ctx, &has_domain);
		/* "user@host (Real Name)": the comment names the user */
		mime_lex_skip_cfws(lx);
		if (ctx->comment.len > 0)
			(void)buf_append(&ctx->name, ctx->comment.data,
					 ctx->comment.len);
	}
	mime_lex_skip_cfws(lx);
	c = mime_lex_peek(lx);
	if (c != -1 && c != ',' && !(in_group && c == ';'))
		ok = false;
	mime_address_emit_mailbox(ctx, has_domain, !ok);
	return ok;
}

/* group = display-name ":" [group-list] ";" [CFWS], after the ':'. */
static void
mime_address_group(struct mime_address_parser *ctx)
{
	struct mime_lex *lx = &ctx->lx;
	struct mime_address start = { .kind = MIME_ADDRESS_GROUP_START };
	struct mime_address end = { .kind = MIME_ADDRESS_GROUP_END };

	start.mailbox = xstrndup(buf_cstr(&ctx->name), ctx->name.len);
	if (!mime_address_add(ctx, &start)) {
		free(start.mailbox);
		lx->p = lx->end;
		return;
	}
	for (;;) {
		int c;

		mime_lex_skip_cfws(lx);
		c = mime_lex_peek(lx);
		if (c == -1) {
			end.invalid = true; /* obs: missing ';' */
			break;
		}
		if (c == ';') {
			lx->p++;
			break;
		}
		if (c == ',') {
			lx->p++;
			continue;
		}
		if (!mime_address_mailbox(ctx, true))
			mime_lex_skip_element(lx, true);
	}
	(void)mime_address_add(ctx, &end);
}

/* address = mailbox / group */
static void
mime_address_one(struct mime_address_parser *ctx)
{
	struct mime_lex *lx = &ctx->lx;
	const char *start = lx->p;

	(void)mime_address_phrase(ctx, &ctx->name);
	if (mime_lex_peek(lx) == ':') {
		lx->p++;
		mime_address_group(ctx);
		return;
	}
	lx->p = start;
	if (!mime_address_mailbox(ctx, false))
		mime_lex_skip_element(lx, false);
}

int
mime_address_parse(const char *in, size_t len,
		   struct mime_address_list *list_r)
{
	struct mime_address_parser ctx;

	memset(&ctx, 0, sizeof(ctx));
	list_r->addrs = NULL;
	list_r->count = 0;
	ctx.list = list_r;
	mime_lex_init(&ctx.lx, in, len);
	buf_init(&ctx.comment, MIME_HEADER_VALUE_MAX_BYTES);
	buf_init(&ctx.name, MIME_HEADER_VALUE_MAX_BYTES);
	buf_init(&ctx.route, MIME_HEADER_VALUE_MAX_BYTES);
	buf_init(&ctx.mailbox, MIME_HEADER_VALUE_MAX_BYTES);
	buf_init(&ctx.domain, MIME_HEADER_VALUE_MAX_BYTES);
	ctx.lx.last_comment = &ctx.comment;
	for (;;) {
		mime_lex_skip_cfws(&ctx.lx);
		if (mime_lex_eof(&ctx.lx))
			break;
		if (mime_lex_peek(&ctx.lx) == ',') {
			ctx.lx.p++;
			continue;
		}
		mime_address_one(&ctx);
		mime_lex_skip_cfws(&ctx.lx);
		if (!mime_lex_eof(&ctx.lx) && mime_lex_peek(&ctx.lx) != ',')
			mime_lex_skip_element(&ctx.lx, false);
	}
	buf_free(&ctx.comment);
	buf_free(&ctx.name);
	buf_free(&ctx.route);
	buf_free(&ctx.mailbox);
	buf_free(&ctx.domain);
	return 0;
}

void
mime_address_list_free(struct mime_address_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		struct mime_address *a = &list->addrs[i];

		free(a->name);
		free(a->route);
		free(a->mailbox);
		free(a->domain);
	}
	free(list->addrs);
	list->addrs = NULL;
	list->count = 0;
}

static int
mime_address_nstring(struct buf *out, const char *s)
{
	return mime_imap_string(out, s, s == NULL ? 0 : strlen(s));
}

/* One "(name adl mailbox host)". */
static int
mime_address_write_one(struct buf *out, const struct mime_address *a)
{
	const char *mailbox = a->mailbox, *host = a->domain;

	if (a->kind == MIME_ADDRESS_GROUP_END)
		return buf_append_str(out, "(NIL NIL NIL NIL)");
	if (a->kind == MIME_ADDRESS_GROUP_START) {
		if (buf_append_str(out, "(NIL NIL ") < 0 ||
		    mime_address_nstring(out, a->mailbox == NULL ? "" :
					 a->mailbox) < 0)
			return -1;
		return buf_append_str(out, " NIL)");
	}
	if (mailbox == NULL)
		mailbox = MIME_ADDRESS_MISSING_MAILBOX;
	if (host == NULL || host[0] == '\0')
		host = MIME_ADDRESS_MISSING_HOST;
	if (buf_append_byte(out, '(') < 0 ||
	    mime_address_nstring(out, a->name) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_address_nstring(out, a->route) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_address_nstring(out, mailbox) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_address_nstring(out, host) < 0)
		return -1;
	return buf_append_byte(out, ')');
}

int
mime_address_list_write_imap(struct buf *out,
			     const struct mime_address_list *list)
{
	if (list->count == 0)
		return buf_append_str(out, "NIL");
	if (buf_append_byte(out, '(') < 0)
		return -1;
	for (size_t i = 0; i < list->count; i++) {
		if (mime_address_write_one(out, &list->addrs[i]) < 0)
			return -1;
	}
	return buf_append_byte(out, ')');
}
