/* The entry points that tie the part tree to its users: the summary
   stored at delivery (ENVELOPE, BODY, BODYSTRUCTURE and sort/search
   fields), IMAP section addressing (RFC 9051 6.4.5) and text extraction
   for SEARCH BODY/TEXT. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"
#include "mime/mime_int.h"

/* Bounds of the stored strings; a message beyond them is degraded by the
   writers, never rejected. */
#define MIME_INFO_STRUCT_MAX_BYTES (16 * 1024 * 1024)
#define MIME_INFO_FIELD_MAX_BYTES (64 * 1024)

static char *
mime_info_header_dup(const uint8_t *hdr, size_t len, const char *name)
{
	struct buf b;

	buf_init(&b, MIME_INFO_FIELD_MAX_BYTES);
	if (mime_header_get(hdr, len, name, &b) == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

static char *
mime_info_subject(const uint8_t *hdr, size_t len)
{
	char *raw = mime_info_header_dup(hdr, len, "Subject");
	struct buf b;

	buf_init(&b, MIME_INFO_FIELD_MAX_BYTES);
	if (raw != NULL)
		mime_decode_words(&b, raw, strlen(raw));
	free(raw);
	return buf_steal(&b, NULL);
}

/* First From mailbox as lowercase "local@domain", or "". */
static char *
mime_info_from(const uint8_t *hdr, size_t len)
{
	char *raw = mime_info_header_dup(hdr, len, "From");
	struct mime_address_list list = { 0 };
	struct buf b;

	buf_init(&b, MIME_INFO_FIELD_MAX_BYTES);
	if (raw != NULL)
		mime_address_parse(raw, strlen(raw), &list);
	for (size_t i = 0; i < list.count; i++) {
		const struct mime_address *a = &list.addrs[i];
		if (a->kind != MIME_ADDRESS_MAILBOX || a->mailbox == NULL ||
		    a->domain == NULL)
			continue;
		buf_printf(&b, "%s@%s", a->mailbox, a->domain);
		break;
	}
	for (size_t i = 0; i < b.len; i++)
		b.data[i] = (uint8_t)tolower(b.data[i]);
	mime_address_list_free(&list);
	free(raw);
	return buf_steal(&b, NULL);
}

static int64_t
mime_info_date(const uint8_t *hdr, size_t len)
{
	char *raw = mime_info_header_dup(hdr, len, "Date");
	int64_t t = -1;

	if (raw != NULL && mime_date_parse(raw, strlen(raw), &t) < 0)
		t = -1;
	free(raw);
	return t;
}

int
mime_info_parse(const uint8_t *msg, size_t len, struct mime_info *info_r)
{
	struct mime_tree tree;
	const struct mime_part *root;
	const uint8_t *hdr;
	struct buf env, bs, body;
	int ret = 0;

	memset(info_r, 0, sizeof(*info_r));
	mime_tree_parse(&tree, msg, len);
	root = tree.root;
	hdr = msg + root->hdr_off;
	buf_init(&env, MIME_INFO_STRUCT_MAX_BYTES);
	buf_init(&bs, MIME_INFO_STRUCT_MAX_BYTES);
	buf_init(&body, MIME_INFO_STRUCT_MAX_BYTES);
	if (mime_imap_envelope(&env, hdr, root->hdr_len) < 0 ||
	    mime_imap_bodystructure(&bs, &tree, root, true) < 0 ||
	    mime_imap_bodystructure(&body, &tree, root, false) < 0)
		ret = -1;
	if (ret == 0) {
		info_r->envelope = buf_steal(&env, NULL);
		info_r->bodystructure = buf_steal(&bs, NULL);
		info_r->body = buf_steal(&body, NULL);
		info_r->message_id = mime_info_header_dup(hdr, root->hdr_len,
							  "Message-ID");
		info_r->subject = mime_info_subject(hdr, root->hdr_len);
		info_r->from = mime_info_from(hdr, root->hdr_len);
		info_r->date = mime_info_date(hdr, root->hdr_len);
		info_r->header_len = root->hdr_len;
		info_r->lines = mime_part_count_lines(msg, 0, len);
		mime_sort_keys_parse(hdr, root->hdr_len, &info_r->sort);
	}
	buf_free(&env);
	buf_free(&bs);
	buf_free(&body);
	mime_tree_free(&tree);
	return ret;
}

void
mime_info_free(struct mime_info *info)
{
	free(info->envelope);
	free(info->bodystructure);
	free(info->body);
	free(info->message_id);
	free(info->subject);
	free(info->from);
	mime_sort_keys_free(&info->sort);
	memset(info, 0, sizeof(*info));
}

/* ---- sections ---- */

static const struct mime_part *
mime_child(const struct mime_part *p, uint32_t n)
{
	const struct mime_part *c = p->children;

	for (uint32_t i = 1; c != NULL && i < n; i++)
		c = c->next;
	return c;
}

static void
mime_section_fill(const struct mime_part *p, struct mime_section *sec)
{
	sec->mime_off = p->hdr_off;
	sec->mime_len = p->hdr_len;
	sec->body_off = p->body_off;
	sec->body_len = p->body_len;
	sec->is_multipart = p->kind == MIME_PART_MULTIPART;
	sec->is_message_rfc822 = p->kind == MIME_PART_MESSAGE;
	if (p->kind == MIME_PART_MESSAGE && p->children != NULL) {
		const struct mime_part *inner = p->children;
		sec->header_off = inner->hdr_off;
		sec->header_len = inner->hdr_len;
		sec->text_off = inner->body_off;
		sec->text_len = inner->body_len;
		sec->has_message = true;
	}
	if (p->cte != NULL && strlen(p->cte) < sizeof(sec->content_transfer_encoding))
		memcpy(sec->content_transfer_encoding, p->cte, strlen(p->cte) + 1);
	else if (p->cte != NULL)
		memcpy(sec->content_transfer_encoding, "x-unknown", 10);
	else
		memcpy(sec->content_transfer_encoding, "7bit", 5);
}

int
mime_section_find(const uint8_t *msg, size_t len, const uint32_t *path,
		  size_t depth, struct mime_section *sec_r)
{
	struct mime_tree tree;
	const struct mime_part *cur;
	bool at_message = true; /* cur is a (possibly encapsulated) message */
	int found = 1;

	memset(sec_r, 0, sizeof(*sec_r));
	mime_tree_parse(&tree, msg, len);
	cur = tree.root;
	for (size_t i = 0; i < depth && found; i++) {
		uint32_t n = path[i];
		const struct mime_part *next = NULL;

		if (n == 0) {
			found = 0;
			break;
		}
		if (!at_message && cur->kind == MIME_PART_MESSAGE) {
			/* Numbering continues inside the encapsulated message. */
			cur = cur->children;
			at_message = true;
			if (cur == NULL) {
				found = 0;
				break;
			}
		}
		if (cur->kind == MIME_PART_MULTIPART)
			next = mime_child(cur, n);
		else if (at_message && n == 1)
			next = cur; /* a non-multipart message is its own part 1 */
		at_message = false;
		cur = next;
		if (cur == NULL)
			found = 0;
	}
	if (found && depth == 0) {
		sec_r->mime_off = sec_r->header_off = cur->hdr_off;
		sec_r->mime_len = sec_r->header_len = cur->hdr_len;
		sec_r->body_off = sec_r->text_off = cur->body_off;
		sec_r->body_len = sec_r->text_len = cur->body_len;
		sec_r->has_message = true;
		sec_r->is_multipart = cur->kind == MIME_PART_MULTIPART;
		memcpy(sec_r->content_transfer_encoding, "7bit", 5);
	} else if (found) {
		mime_section_fill(cur, sec_r);
	}
	mime_tree_free(&tree);
	return found;
}

/* ---- text extraction ---- */

/* Append HTML as text: tags dropped, a few entities decoded. */
static void
mime_html_to_text(struct buf *out, const uint8_t *p, size_t len)
{
	bool in_tag = false;

	for (size_t i = 0; i < len; i++) {
		if (in_tag) {
			if (p[i] == '>') {
				in_tag = false;
				buf_append_byte(out, ' ');
			}
			continue;
		}
		if (p[i] == '<') {
			in_tag = true;
			continue;
		}
		if (p[i] == '&') {
			static const struct { const char *e; char c; } ents[] = {
				{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
				{ "&quot;", '"' }, { "&nbsp;", ' ' }, { "&#39;", '\'' },
			};
			bool done = false;
			for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].e);
				if (len - i >= el && strncasecmp((const char *)p + i, ents[k].e, el) == 0) {
					buf_append_byte(out, (uint8_t)ents[k].c);
					i += el - 1;
					done = true;
					break;
				}
			}
			if (done)
				continue;
		}
		if (buf_append_byte(out, p[i]) < 0)
			return;
	}
}

static int
mime_extract_part(const struct mime_tree *tree, const struct mime_part *p,
		  struct buf *out)
{
	struct buf decoded, utf8;
	const char *charset;

	if (p->ct.type == NULL || strcmp(p->ct.type, "text") != 0)
		return 0;
	buf_init(&decoded, out->max);
	buf_init(&utf8, out->max);
	if (mime_decode_body(&decoded, p->cte != NULL ? p->cte : "",
			     tree->msg + p->body_off, p->body_len) < 0 &&
	    !mime_cte_known(p->cte != NULL ? p->cte : "")) {
		buf_reset(&decoded);
		buf_append(&decoded, tree->msg + p->body_off, p->body_len);
	}
	charset = mime_ctype_param(&p->ct, "charset");
	mime_charset_to_utf8(&utf8, charset != NULL ? charset : "us-ascii",
			     decoded.data, decoded.len);
	if (p->ct.subtype != NULL && strcmp(p->ct.subtype, "html") == 0) {
		struct buf text;
		buf_init(&text, out->max);
		mime_html_to_text(&text, utf8.data, utf8.len);
		mime_charset_append_cut(out, text.data, text.len);
		buf_free(&text);
	} else {
		mime_charset_append_cut(out, utf8.data, utf8.len);
	}
	buf_append_byte(out, '\n');
	buf_free(&decoded);
	buf_free(&utf8);
	return out->len >= out->max ? -1 : 0;
}

static int
mime_extract_walk(const struct mime_tree *tree, const struct mime_part *p,
		  struct buf *out)
{
	for (; p != NULL; p = p->next) {
		if (p->kind == MIME_PART_LEAF) {
			if (mime_extract_part(tree, p, out) < 0)
				return -1;
		} else if (p->children != NULL &&
			   mime_extract_walk(tree, p->children, out) < 0) {
			return -1;
		}
	}
	return 0;
}

/* The decoded header of p, then "\n", appended to out; then those of
   the parts below it, in part order. */
static int
mime_extract_headers_walk(const struct mime_tree *tree,
			  const struct mime_part *p, struct buf *out)
{
	struct buf dec;
	int r;

	for (; p != NULL; p = p->next) {
		buf_init(&dec, p->hdr_len * 2 + 64);
		(void)mime_decode_words(&dec, (const char *)tree->msg + p->hdr_off,
					p->hdr_len);
		r = mime_charset_append_cut(out, dec.data, dec.len);
		buf_free(&dec);
		if (r < 0 || mime_charset_append_cut(out, "\n", 1) < 0)
			return -1;
		if (p->children != NULL &&
		    mime_extract_headers_walk(tree, p->children, out) < 0)
			return -1;
	}
	return 0;
}

int
mime_extract_headers(const uint8_t *msg, size_t len, struct buf *out)
{
	struct mime_tree tree;

	mime_tree_parse(&tree, msg, len);
	(void)mime_extract_headers_walk(&tree, tree.root, out);
	mime_tree_free(&tree);
	return 0;
}

size_t
mime_search_header_len(const uint8_t *msg, size_t len)
{
	struct mime_section sec;

	if (mime_section_find(msg, len, NULL, 0, &sec) == 1)
		return sec.header_len;
	return len;
}

/* The address of a, "mailbox@domain" ("mailbox" without a domain). */
static void
mime_search_addr_spec(struct buf *out, const struct mime_address *a)
{
	if (a->mailbox != NULL)
		(void)buf_append_str(out, a->mailbox);
	if (a->domain != NULL && a->domain[0] != '\0') {
		(void)buf_append_byte(out, '@');
		(void)buf_append_str(out, a->domain);
	}
}

/* The address list raw[0..len) as ENVELOPE holds it, written out:
   "name <mailbox@domain>" (decoded name; "mailbox@domain" without one)
   separated by ", ", a group as "name: ...;". Comments, quoting and
   folding white space are gone. Fields the parser could not read
   completely (an invalid element, nothing found, too many addresses)
   get their decoded text too, after a "\n", so nothing in them is
   lost to SEARCH. */
static void
mime_search_addresses(const char *raw, size_t len, struct buf *out)
{
	struct mime_address_list list;
	enum mime_address_kind prev = MIME_ADDRESS_GROUP_END;
	bool whole = false, first = true;
	size_t i;

	(void)mime_address_parse(raw, len, &list);
	whole = list.count == 0 || list.count >= MIME_ADDRESSES_MAX;
	for (i = 0; i < list.count; i++) {
		const struct mime_address *a = &list.addrs[i];

		whole = whole || a->invalid;
		if (a->kind == MIME_ADDRESS_GROUP_END) {
			(void)buf_append_byte(out, ';');
			prev = a->kind;
			continue;
		}
		if (prev == MIME_ADDRESS_GROUP_START)
			(void)buf_append_byte(out, ' ');
		else if (!first)
			(void)buf_append_str(out, ", ");
		first = false;
		prev = a->kind;
		if (a->kind == MIME_ADDRESS_GROUP_START) {
			if (a->mailbox != NULL)
				(void)mime_decode_words(out, a->mailbox,
							strlen(a->mailbox));
			(void)buf_append_byte(out, ':');
		} else if (a->name != NULL && a->name[0] != '\0') {
			(void)mime_decode_words(out, a->name, strlen(a->name));
			(void)buf_append_str(out, " <");
			mime_search_addr_spec(out, a);
			(void)buf_append_byte(out, '>');
		} else {
			mime_search_addr_spec(out, a);
		}
	}
	mime_address_list_free(&list);
	if (whole) {
		if (out->len > 0)
			(void)buf_append_byte(out, '\n');
		(void)mime_decode_words(out, raw, len);
	}
}

static bool
mime_search_is_address(const char *name)
{
	return strcasecmp(name, "From") == 0 || strcasecmp(name, "To") == 0 ||
	       strcasecmp(name, "Cc") == 0 || strcasecmp(name, "Bcc") == 0;
}

int
mime_search_field(const uint8_t *hdr, size_t hdr_len, const char *name,
		  struct buf *out)
{
	struct buf raw;
	int r;

	buf_init(&raw, MIME_SEARCH_FIELD_RAW_MAX_BYTES);
	r = mime_header_get(hdr, hdr_len, name, &raw);
	if (r != 0 && mime_search_is_address(name))
		mime_search_addresses(buf_cstr(&raw), raw.len, out);
	else if (r != 0)
		(void)mime_decode_words(out, (const char *)raw.data, raw.len);
	buf_free(&raw);
	return r != 0;
}

int
mime_search_field_each(const uint8_t *hdr, size_t hdr_len, const char *name,
		       bool (*fn)(void *ctx, const struct buf *value),
		       void *ctx)
{
	struct mime_header_iter it;
	struct mime_field f;
	struct buf raw, dec;
	bool hit = false;

	buf_init(&raw, MIME_SEARCH_FIELD_RAW_MAX_BYTES);
	buf_init(&dec, MIME_SEARCH_FIELD_MAX_BYTES);
	mime_header_iter_init(&it, hdr, hdr_len);
	while (!hit && mime_header_iter_next(&it, &f) > 0) {
		if (!mime_header_field_is(hdr, &f, name))
			continue;
		buf_reset(&raw);
		buf_reset(&dec);
		/* a cut value is compared as far as it goes, as in
		   mime_search_field */
		(void)mime_header_unfold(hdr, &f, &raw);
		(void)mime_decode_words(&dec, (const char *)raw.data,
					raw.len);
		hit = fn(ctx, &dec);
	}
	buf_free(&dec);
	buf_free(&raw);
	return hit ? 1 : 0;
}

int
mime_extract_text(const uint8_t *msg, size_t len, struct buf *out)
{
	struct mime_tree tree;

	mime_tree_parse(&tree, msg, len);
	mime_extract_walk(&tree, tree.root, out);
	mime_tree_free(&tree);
	return 0;
}
