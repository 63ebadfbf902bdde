/* The MIME part tree of one message: header/body split (RFC 5322 2.1),
   Content-* fields (RFC 2045 5, 6; RFC 2183; RFC 3282; RFC 2557 4),
   multipart delimiters, preamble and epilogue (RFC 2046 5.1.1), the
   multipart/digest default type (RFC 2046 5.1.5) and encapsulated
   messages (RFC 2046 5.2.1, RFC 6532 3.7 message/global).
   Broken input degrades like RFC 2045 5.2 says: an invalid Content-Type,
   a multipart without usable boundary or without any part, or nesting
   past MIME_DEPTH_MAX becomes text/plain. A delimiter line of any
   enclosing multipart ends a part, even inside its header. Every scan is
   bounded by the message length; recursion by MIME_DEPTH_MAX. */
#include <string.h>

#include "lib/xalloc.h"
#include "mime/mime_int.h"

/* Where a scan for a delimiter line stopped. */
struct mime_scan {
	size_t content_end; /* end of the bytes before the delimiter's CRLF */
	size_t next;        /* first byte after the delimiter line */
	int level;          /* matching boundary index, -1 = end of input */
	bool close;         /* close-delimiter "--b--" */
};

struct mime_parser {
	struct mime_tree *tree;
	const uint8_t *msg;
	size_t len;
	const char *bnd[MIME_DEPTH_MAX + 1];
	size_t bnd_len[MIME_DEPTH_MAX + 1];
};

static size_t
mime_part_line_end(const struct mime_parser *ctx, size_t pos)
{
	const uint8_t *lf = memchr(ctx->msg + pos, '\n', ctx->len - pos);

	return lf == NULL ? ctx->len : (size_t)(lf - ctx->msg) + 1;
}

/* After "--boundary": optional "--", transport padding, line end. */
static bool
mime_part_delim_tail(const struct mime_parser *ctx, size_t q, bool *close_r)
{
	const uint8_t *m = ctx->msg;

	*close_r = false;
	if (ctx->len - q >= 2 && m[q] == '-' && m[q + 1] == '-') {
		*close_r = true;
		q += 2;
	}
	while (q < ctx->len && (m[q] == ' ' || m[q] == '\t'))
		q++;
	if (q < ctx->len && m[q] == '\r')
		q++;
	return q == ctx->len || m[q] == '\n';
}

/* Index of the innermost of bnd[0..n) whose delimiter is the line at
   ls, or -1. */
static int
mime_part_match(const struct mime_parser *ctx, size_t ls, size_t n,
		bool *close_r)
{
	size_t left = ctx->len - ls;

	if (n == 0 || left < 2 || ctx->msg[ls] != '-' ||
	    ctx->msg[ls + 1] != '-')
		return -1;
	for (size_t i = n; i-- > 0;) {
		size_t blen = ctx->bnd_len[i];

		if (left - 2 < blen ||
		    memcmp(ctx->msg + ls + 2, ctx->bnd[i], blen) != 0)
			continue;
		if (mime_part_delim_tail(ctx, ls + 2 + blen, close_r))
			return (int)i;
	}
	return -1;
}

/* Fill r for a delimiter at line ls. RFC 2046 5.1.1: the CRLF before
   the delimiter belongs to it, unless that CRLF is below floor. */
static void
mime_part_scan_hit(const struct mime_parser *ctx, size_t ls, size_t floor,
		   int level, bool close, struct mime_scan *r)
{
	size_t end = ls;

	if (end > floor && ctx->msg[end - 1] == '\n') {
		end--;
		if (end > floor && ctx->msg[end - 1] == '\r')
			end--;
	}
	r->content_end = end;
	r->next = mime_part_line_end(ctx, ls);
	r->level = level;
	r->close = close;
}

/* Find the first delimiter line of bnd[0..n) at or after line start
   pos. */
static void
mime_part_scan(const struct mime_parser *ctx, size_t pos, size_t floor,
	       size_t n, struct mime_scan *r)
{
	for (size_t ls = pos; n > 0 && ls < ctx->len;
	     ls = mime_part_line_end(ctx, ls)) {
		bool close;
		int level = mime_part_match(ctx, ls, n, &close);

		if (level >= 0) {
			mime_part_scan_hit(ctx, ls, floor, level, close, r);
			return;
		}
	}
	r->content_end = r->next = ctx->len;
	r->level = -1;
	r->close = false;
}

static bool
mime_part_line_is_empty(const struct mime_parser *ctx, size_t ls)
{
	return ctx->msg[ls] == '\n' ||
	       (ctx->msg[ls] == '\r' && ls + 1 < ctx->len &&
		ctx->msg[ls + 1] == '\n');
}

/* Split off the header at pos. Returns true when a delimiter line ended
   it (then *r describes that delimiter and the body is empty). */
static bool
mime_part_header(const struct mime_parser *ctx, struct mime_part *part,
		 size_t pos, size_t n, struct mime_scan *r)
{
	part->hdr_off = pos;
	for (size_t ls = pos; ls < ctx->len;) {
		size_t le = mime_part_line_end(ctx, ls);
		bool close;
		int level;

		if (mime_part_line_is_empty(ctx, ls)) {
			part->hdr_len = le - pos;
			part->body_off = le;
			return false;
		}
		level = mime_part_match(ctx, ls, n, &close);
		if (level >= 0) {
			part->hdr_len = ls - pos;
			part->body_off = ls;
			mime_part_scan_hit(ctx, ls, ls, level, close, r);
			return true;
		}
		ls = le;
	}
	part->hdr_len = ctx->len - pos;
	part->body_off = ctx->len;
	return false;
}

/* First token of a Content-Transfer-Encoding value, lowercased. */
static char *
mime_part_cte(struct arena *a, const char *v)
{
	struct mime_ctype ct;

	if (mime_ctype_parse(a, v, strlen(v), false, &ct) < 0)
		return NULL;
	return ct.type;
}

static void
mime_part_field(struct arena *a, struct mime_part *part, const uint8_t *hdr,
		const struct mime_field *f, bool *have_ct)
{
	char *v;

	if (f->name_len < 8 ||
	    strncasecmp((const char *)hdr + f->off, "content-", 8) != 0)
		return;
	v = mime_header_value_dup(a, hdr, f);
	if (mime_header_field_is(hdr, f, "content-type") && !*have_ct) {
		*have_ct = true;
		if (mime_ctype_parse(a, v, strlen(v), true, &part->ct) < 0)
			part->ct_fallback = true;
	} else if (mime_header_field_is(hdr, f, "content-transfer-encoding")) {
		if (part->cte == NULL)
			part->cte = mime_part_cte(a, v);
	} else if (mime_header_field_is(hdr, f, "content-disposition")) {
		if (part->disp.type == NULL)
			(void)mime_ctype_parse(a, v, strlen(v), false,
					       &part->disp);
	} else if (mime_header_field_is(hdr, f, "content-id")) {
		if (part->id == NULL)
			part->id = v;
	} else if (mime_header_field_is(hdr, f, "content-description")) {
		if (part->description == NULL)
			part->description = v;
	} else if (mime_header_field_is(hdr, f, "content-md5")) {
		if (part->md5 == NULL)
			part->md5 = v;
	} else if (mime_header_field_is(hdr, f, "content-location")) {
		if (part->location == NULL)
			part->location = v;
	} else if (mime_header_field_is(hdr, f, "content-language")) {
		if (part->language == NULL)
			part->language = v;
	}
}

static void
mime_part_set_type(struct mime_part *part, const char *type,
		   const char *subtype, bool fallback)
{
	memset(&part->ct, 0, sizeof(part->ct));
	part->ct.type = (char *)type;
	part->ct.subtype = (char *)subtype;
	part->ct_fallback = fallback;
	part->kind = MIME_PART_LEAF;
}

static bool
mime_part_parent_is_digest(const struct mime_part *parent)
{
	return parent != NULL && parent->kind == MIME_PART_MULTIPART &&
	       strcmp(parent->ct.subtype, "digest") == 0;
}

/* Read the Content-* fields and settle the effective type and kind. */
static void
mime_part_fields(struct mime_parser *ctx, struct mime_part *part)
{
	const uint8_t *hdr = ctx->msg + part->hdr_off;
	struct mime_header_iter it;
	struct mime_field f;
	bool have_ct = false;

	mime_header_iter_init(&it, hdr, part->hdr_len);
	while (mime_header_iter_next(&it, &f) > 0)
		mime_part_field(ctx->tree->arena, part, hdr, &f, &have_ct);
	if (part->ct_fallback) {
		/* RFC 2045 5.2: invalid Content-Type means text/plain */
		mime_part_set_type(part, "text", "plain", true);
	} else if (!have_ct) {
		if (mime_part_parent_is_digest(part->parent))
			mime_part_set_type(part, "message", "rfc822", false);
		else
			mime_part_set_type(part, "text", "plain", true);
	}
	if (strcmp(part->ct.type, "multipart") == 0)
		part->kind = MIME_PART_MULTIPART;
	else if (strcmp(part->ct.type, "message") == 0 &&
		 (strcmp(part->ct.subtype, "rfc822") == 0 ||
		  strcmp(part->ct.subtype, "global") == 0))
		part->kind = MIME_PART_MESSAGE;
	else
		part->kind = MIME_PART_LEAF;
}

static struct mime_part *
mime_part_parse(struct mime_parser *ctx, size_t pos, size_t n,
		unsigned int depth, struct mime_part *parent,
		struct mime_scan *r);

static void
mime_part_leaf(struct mime_parser *ctx, struct mime_part *part, size_t n,
	       struct mime_scan *r)
{
	mime_part_scan(ctx, part->body_off, part->body_off, n, r);
	part->body_len = r->content_end - part->body_off;
}

/* RFC 2046 5.1.1: preamble, body parts between delimiters, close
   delimiter, epilogue. Unterminated multiparts end where an enclosing
   delimiter or the message ends. */
static void
mime_part_multipart(struct mime_parser *ctx, struct mime_part *part,
		    size_t n, unsigned int depth, struct mime_scan *r)
{
	struct mime_part **tail = &part->children;
	struct mime_scan s;

	mime_part_scan(ctx, part->body_off, part->body_off, n + 1, &s);
	while (s.level == (int)n && !s.close) {
		struct mime_part *child;

		if (ctx->tree->n_parts >= MIME_PARTS_MAX) {
			/* XXX: parts past the limit stay unreported */
			mime_part_scan(ctx, s.next, s.next, n + 1, &s);
			continue;
		}
		child = mime_part_parse(ctx, s.next, n + 1, depth + 1, part,
					&s);
		*tail = child;
		tail = &child->next;
	}
	if (s.level == (int)n) /* epilogue up to an enclosing delimiter */
		mime_part_scan(ctx, s.next, part->body_off, n, &s);
	part->body_len = s.content_end - part->body_off;
	if (part->children == NULL)
		mime_part_set_type(part, "text", "plain", true);
	*r = s;
}

static bool
mime_part_cte_is_identity(const char *cte)
{
	return cte == NULL || strcmp(cte, "7bit") == 0 ||
	       strcmp(cte, "8bit") == 0 || strcmp(cte, "binary") == 0;
}

static void
mime_part_body(struct mime_parser *ctx, struct mime_part *part, size_t n,
	       unsigned int depth, struct mime_scan *r)
{
	const char *boundary;

	if (part->kind == MIME_PART_MULTIPART) {
		boundary = mime_ctype_param(&part->ct, "boundary");
		if (boundary == NULL || boundary[0] == '\0' ||
		    strlen(boundary) > MIME_BOUNDARY_MAX_BYTES ||
		    depth >= MIME_DEPTH_MAX || n > MIME_DEPTH_MAX) {
			mime_part_set_type(part, "text", "plain", true);
		} else {
			ctx->bnd[n] = boundary;
			ctx->bnd_len[n] = strlen(boundary);
			mime_part_multipart(ctx, part, n, depth, r);
			return;
		}
	} else if (part->kind == MIME_PART_MESSAGE) {
		/* RFC 2046 5.2.1: only 7bit, 8bit or binary encodings */
		if (depth >= MIME_DEPTH_MAX ||
		    ctx->tree->n_parts >= MIME_PARTS_MAX ||
		    !mime_part_cte_is_identity(part->cte)) {
			mime_part_set_type(part, "application",
					   "octet-stream", true);
		} else {
			part->children = mime_part_parse(ctx, part->body_off,
							 n, depth + 1, part,
							 r);
			part->body_len = r->content_end - part->body_off;
			return;
		}
	}
	mime_part_leaf(ctx, part, n, r);
}

/* Parse the part whose header starts at pos, inside n enclosing
   multiparts. *r: the delimiter (or end of input) that ended it. */
static struct mime_part *
mime_part_parse(struct mime_parser *ctx, size_t pos, size_t n,
		unsigned int depth, struct mime_part *parent,
		struct mime_scan *r)
{
	struct mime_part *part = arena_zalloc(ctx->tree->arena,
					      sizeof(*part));

	ctx->tree->n_parts++;
	part->parent = parent;
	if (mime_part_header(ctx, part, pos, n, r)) {
		mime_part_fields(ctx, part);
		if (part->kind != MIME_PART_LEAF)
			mime_part_set_type(part, "text", "plain", true);
		part->body_len = 0;
		return part;
	}
	mime_part_fields(ctx, part);
	mime_part_body(ctx, part, n, depth, r);
	return part;
}

void
mime_tree_parse(struct mime_tree *tree, const uint8_t *msg, size_t len)
{
	struct mime_parser ctx;
	struct mime_scan r;

	memset(tree, 0, sizeof(*tree));
	tree->msg = msg;
	tree->len = len;
	tree->arena = arena_new("mime", 16 * 1024);
	memset(&ctx, 0, sizeof(ctx));
	ctx.tree = tree;
	ctx.msg = msg;
	ctx.len = len;
	tree->root = mime_part_parse(&ctx, 0, 0, 0, NULL, &r);
}

void
mime_tree_free(struct mime_tree *tree)
{
	if (tree->arena != NULL)
		arena_free(&tree->arena);
	tree->root = NULL;
}

uint32_t
mime_part_count_lines(const uint8_t *msg, size_t off, size_t len)
{
	const uint8_t *p = msg + off, *end = msg + off + len;
	uint64_t n = 0;

	if (len == 0)
		return 0;
	while (p < end) {
		const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));

		if (lf == NULL)
			break;
		n++;
		p = lf + 1;
	}
	if (msg[off + len - 1] != '\n')
		n++;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}
