/* IMAP renderings of a parsed message: strings (RFC 9051 4.3, RFC 3501
   4.3 quoted vs literal), ENVELOPE (RFC 9051 7.5.2 / RFC 3501 7.4.2:
   raw unfolded header text, Sender and Reply-To defaulting to From), and
   BODY / BODYSTRUCTURE (same sections: basic, text, message/rfc822 and
   multipart forms, with extension data md5/params, disposition,
   language, location).
   Type, subtype, encoding, parameter names and disposition types are
   upper-cased; a text part without charset gets ("CHARSET" "us-ascii").
   Security: all output goes through a bounded struct buf. */
#include <stdio.h>
#include <string.h>

#include "mime/mime_int.h"

static bool
mime_imap_quotable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			return false;
	}
	return true;
}

int
mime_imap_string(struct buf *out, const char *s, size_t len)
{
	if (s == NULL)
		return buf_append_str(out, "NIL");
	if (!mime_imap_quotable(s, len)) {
		if (buf_printf(out, "{%zu}\r\n", len) < 0)
			return -1;
		return buf_append(out, s, len);
	}
	if (buf_append_byte(out, '"') < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if ((s[i] == '"' || s[i] == '\\') &&
		    buf_append_byte(out, '\\') < 0)
			return -1;
		if (buf_append_byte(out, (uint8_t)s[i]) < 0)
			return -1;
	}
	return buf_append_byte(out, '"');
}

static int
mime_imap_nstring(struct buf *out, const char *s)
{
	return mime_imap_string(out, s, s == NULL ? 0 : strlen(s));
}

/* An IMAP string of s upper-cased. */
static int
mime_imap_upper(struct buf *out, const char *s)
{
	char tmp[256];
	size_t n = strlen(s);

	if (n >= sizeof(tmp))
		return mime_imap_string(out, s, n);
	for (size_t i = 0; i <= n; i++)
		tmp[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
	return mime_imap_string(out, tmp, n);
}

/* ---- ENVELOPE ---- */

enum {
	ENV_DATE, ENV_SUBJECT, ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO,
	ENV_CC, ENV_BCC, ENV_IN_REPLY_TO, ENV_MESSAGE_ID, ENV_COUNT
};

static const char *const mime_imap_env_fields[ENV_COUNT] = {
	"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
	"in-reply-to", "message-id",
};

static bool
mime_imap_env_is_address(int i)
{
	return i >= ENV_FROM && i <= ENV_BCC;
}

/* First value of each envelope field (unfolded), NULL when absent. */
static void
mime_imap_env_collect(const uint8_t *hdr, size_t len, struct buf *vals,
		      bool *present)
{
	struct mime_header_iter it;
	struct mime_field f;

	for (int i = 0; i < ENV_COUNT; i++) {
		buf_init(&vals[i], MIME_HEADER_VALUE_MAX_BYTES);
		present[i] = false;
	}
	mime_header_iter_init(&it, hdr, len);
	while (mime_header_iter_next(&it, &f) > 0) {
		for (int i = 0; i < ENV_COUNT; i++) {
			if (present[i] ||
			    !mime_header_field_is(hdr, &f,
						  mime_imap_env_fields[i]))
				continue;
			present[i] = true;
			(void)mime_header_unfold(hdr, &f, &vals[i]);
		}
	}
}

static int
mime_imap_env_write(struct buf *out, struct buf *vals, const bool *present)
{
	struct mime_address_list lists[ENV_COUNT];
	int ret = 0;

	memset(lists, 0, sizeof(lists));
	for (int i = ENV_FROM; i <= ENV_BCC; i++) {
		if (present[i])
			(void)mime_address_parse(buf_cstr(&vals[i]),
						 vals[i].len, &lists[i]);
	}
	/* RFC 3501 7.4.2: absent or empty Sender/Reply-To take From */
	if (buf_append_byte(out, '(') < 0)
		return -1;
	for (int i = 0; i < ENV_COUNT && ret == 0; i++) {
		const struct mime_address_list *l = &lists[i];

		if (i > 0 && buf_append_byte(out, ' ') < 0)
			ret = -1;
		else if (!mime_imap_env_is_address(i))
			ret = mime_imap_string(out, present[i] ?
					       buf_cstr(&vals[i]) : NULL,
					       vals[i].len);
		else
			ret = mime_address_list_write_imap(out,
				(i == ENV_SENDER || i == ENV_REPLY_TO) &&
				l->count == 0 ? &lists[ENV_FROM] : l);
	}
	for (int i = 0; i < ENV_COUNT; i++)
		mime_address_list_free(&lists[i]);
	if (ret < 0)
		return -1;
	return buf_append_byte(out, ')');
}

int
mime_imap_envelope(struct buf *out, const uint8_t *hdr, size_t len)
{
	struct buf vals[ENV_COUNT];
	bool present[ENV_COUNT];
	int ret;

	mime_imap_env_collect(hdr, len, vals, present);
	ret = mime_imap_env_write(out, vals, present);
	for (int i = 0; i < ENV_COUNT; i++)
		buf_free(&vals[i]);
	return ret;
}

/* ---- BODY / BODYSTRUCTURE ---- */

/* ("NAME" "value" ...) or NIL; default_charset adds CHARSET when the
   list lacks one. */
static int
mime_imap_params(struct buf *out, const struct mime_ctype *ct,
		 bool default_charset)
{
	bool add_cs = default_charset &&
		      mime_ctype_param(ct, "charset") == NULL;

	if (ct->n_params == 0 && !add_cs)
		return buf_append_str(out, "NIL");
	if (buf_append_byte(out, '(') < 0)
		return -1;
	for (size_t i = 0; i < ct->n_params; i++) {
		if ((i > 0 && buf_append_byte(out, ' ') < 0) ||
		    mime_imap_upper(out, ct->params[i].name) < 0 ||
		    buf_append_byte(out, ' ') < 0 ||
		    mime_imap_nstring(out, ct->params[i].value) < 0)
			return -1;
	}
	if (add_cs && buf_append_str(out, ct->n_params > 0 ?
				     " \"CHARSET\" \"us-ascii\"" :
				     "\"CHARSET\" \"us-ascii\"") < 0)
		return -1;
	return buf_append_byte(out, ')');
}

/* body-fld-dsp = "(" string SP body-fld-param ")" / NIL */
static int
mime_imap_disposition(struct buf *out, const struct mime_part *part)
{
	if (part->disp.type == NULL)
		return buf_append_str(out, "NIL");
	if (buf_append_byte(out, '(') < 0 ||
	    mime_imap_upper(out, part->disp.type) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_imap_params(out, &part->disp, false) < 0)
		return -1;
	return buf_append_byte(out, ')');
}

/* body-fld-lang = nstring / "(" string *(SP string) ")" from the
   comma-separated Content-Language (RFC 3282). */
static int
mime_imap_language(struct buf *out, const char *lang)
{
	struct strview v, tags[MIME_PARAMS_MAX];
	size_t n = 0;

	if (lang == NULL)
		return buf_append_str(out, "NIL");
	v = sv_from_cstr(lang);
	while (v.len > 0 && n < MIME_PARAMS_MAX) {
		struct strview t = sv_trim(sv_split(&v, ','));

		if (t.len > 0)
			tags[n++] = t;
	}
	if (n == 0)
		return buf_append_str(out, "NIL");
	if (n == 1)
		return mime_imap_string(out, tags[0].p, tags[0].len);
	if (buf_append_byte(out, '(') < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((i > 0 && buf_append_byte(out, ' ') < 0) ||
		    mime_imap_string(out, tags[i].p, tags[i].len) < 0)
			return -1;
	}
	return buf_append_byte(out, ')');
}

/* SP body-fld-dsp SP body-fld-lang SP body-fld-loc */
static int
mime_imap_ext_common(struct buf *out, const struct mime_part *part)
{
	if (buf_append_byte(out, ' ') < 0 ||
	    mime_imap_disposition(out, part) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_imap_language(out, part->language) < 0 ||
	    buf_append_byte(out, ' ') < 0)
		return -1;
	return mime_imap_nstring(out, part->location);
}

static int
mime_imap_part(struct buf *out, const struct mime_tree *tree,
	       const struct mime_part *part, bool ext, unsigned int depth);

static int
mime_imap_multipart(struct buf *out, const struct mime_tree *tree,
		    const struct mime_part *part, bool ext,
		    unsigned int depth)
{
	for (const struct mime_part *c = part->children; c != NULL;
	     c = c->next) {
		if (mime_imap_part(out, tree, c, ext, depth + 1) < 0)
			return -1;
	}
	if (buf_append_byte(out, ' ') < 0 ||
	    mime_imap_upper(out, part->ct.subtype) < 0)
		return -1;
	if (!ext)
		return 0;
	if (buf_append_byte(out, ' ') < 0 ||
	    mime_imap_params(out, &part->ct, false) < 0)
		return -1;
	return mime_imap_ext_common(out, part);
}

/* type subtype params id description encoding size */
static int
mime_imap_basic_fields(struct buf *out, const struct mime_part *part)
{
	bool is_text = strcmp(part->ct.type, "text") == 0;

	if (mime_imap_upper(out, part->ct.type) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_imap_upper(out, part->ct.subtype) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_imap_params(out, &part->ct, is_text) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_imap_nstring(out, part->id) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_imap_nstring(out, part->description) < 0 ||
	    buf_append_byte(out, ' ') < 0 ||
	    mime_imap_upper(out, part->cte != NULL ? part->cte : "7bit") < 0)
		return -1;
	return buf_printf(out, " %zu", part->body_len);
}

static int
mime_imap_single(struct buf *out, const struct mime_tree *tree,
		 const struct mime_part *part, bool ext, unsigned int depth)
{
	uint32_t lines = 0;

	if (mime_imap_basic_fields(out, part) < 0)
		return -1;
	if (part->kind != MIME_PART_LEAF ||
	    strcmp(part->ct.type, "text") == 0)
		lines = mime_part_count_lines(tree->msg, part->body_off,
					      part->body_len);
	if (part->kind == MIME_PART_MESSAGE) {
		const struct mime_part *m = part->children;

		if (buf_append_byte(out, ' ') < 0 ||
		    mime_imap_envelope(out, tree->msg + m->hdr_off,
				       m->hdr_len) < 0 ||
		    buf_append_byte(out, ' ') < 0 ||
		    mime_imap_part(out, tree, m, ext, depth + 1) < 0)
			return -1;
	}
	if ((part->kind != MIME_PART_LEAF ||
	     strcmp(part->ct.type, "text") == 0) &&
	    buf_printf(out, " %u", lines) < 0)
		return -1;
	if (!ext)
		return 0;
	if (buf_append_byte(out, ' ') < 0 ||
	    mime_imap_nstring(out, part->md5) < 0)
		return -1;
	return mime_imap_ext_common(out, part);
}

static int
mime_imap_part(struct buf *out, const struct mime_tree *tree,
	       const struct mime_part *part, bool ext, unsigned int depth)
{
	int ret;

	if (buf_append_byte(out, '(') < 0)
		return -1;
	if (part->kind == MIME_PART_MULTIPART)
		ret = mime_imap_multipart(out, tree, part, ext, depth);
	else
		ret = mime_imap_single(out, tree, part, ext, depth);
	if (ret < 0)
		return -1;
	return buf_append_byte(out, ')');
}

int
mime_imap_bodystructure(struct buf *out, const struct mime_tree *tree,
			const struct mime_part *part, bool ext)
{
	return mime_imap_part(out, tree, part, ext, 0);
}
