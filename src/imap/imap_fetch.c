/* FETCH and UID FETCH (RFC 9051 6.4.5, 7.5.2; RFC 3501 6.4.5 for the
   RFC822* items; RFC 3516 BINARY[], BINARY.PEEK[], BINARY.SIZE[]).
   ENVELOPE, BODY and BODYSTRUCTURE come from the structure stored at
   delivery (store_msg_meta), never from a new parse. BODY[section]
   <partial> is cut out of the mmapped blob with mime_section_find() and
   streamed in IMAP_FETCH_SLICE_BYTES slices whenever output is pending,
   resuming from on_drained, so a 50 MB body never sits in memory.
   A non-PEEK body fetch sets \Seen first and reports FLAGS with it.
   Messages expunged by another session but still numbered in this view
   (RFC 9051 7.5.1) are skipped, and the reply says OK [EXPUNGEISSUED]
   (RFC 5530 3), as Dovecot does. BINARY of a part whose
   Content-Transfer-Encoding we cannot decode answers NO [UNKNOWN-CTE]
   (RFC 3516 4.2). MODSEQ and the CHANGEDSINCE modifier (RFC 7162 3.1.4,
   with VANISHED 3.2.6, in imap_condstore.c), EMAILID and THREADID (RFC
   8474 5; THREADID is NIL: no threads are kept), SAVEDATE (RFC 8514 4)
   and PREVIEW (RFC 8970 3, computed from the message each time; LAZY is
   accepted and changes nothing). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store.h"

#define IMAP_FETCH_FIELDS_MAX 200
#define IMAP_FETCH_BODIES_MAX 100
/* FETCHes of at most this many messages try the worker's message cache
   first; longer ones read one range from the store anyway. */
#define IMAP_FETCH_CACHED_MAX 64

enum imap_fetch_item {
	IMAP_FETCH_UID = 1u << 0,
	IMAP_FETCH_FLAGS = 1u << 1,
	IMAP_FETCH_INTERNALDATE = 1u << 2,
	IMAP_FETCH_SIZE = 1u << 3,
	IMAP_FETCH_ENVELOPE = 1u << 4,
	IMAP_FETCH_BODY = 1u << 5,
	IMAP_FETCH_BODYSTRUCTURE = 1u << 6,
	IMAP_FETCH_MODSEQ = 1u << 7,
	IMAP_FETCH_EMAILID = 1u << 8,
	IMAP_FETCH_THREADID = 1u << 9,
	IMAP_FETCH_SAVEDATE = 1u << 10,
	IMAP_FETCH_PREVIEW = 1u << 11,
};

enum imap_section_kind {
	IMAP_SEC_ALL,
	IMAP_SEC_HEADER,
	IMAP_SEC_FIELDS,
	IMAP_SEC_FIELDS_NOT,
	IMAP_SEC_TEXT,
	IMAP_SEC_MIME,
};

struct imap_fetch_body {
	const char *resp; /* "BODY[1.HEADER]", "RFC822", "BINARY[2]" */
	bool binary, size_only, peek;
	uint32_t path[MIME_DEPTH_MAX];
	size_t depth;
	enum imap_section_kind kind;
	const char **fields;
	size_t nfields;
	bool partial;
	uint64_t p_off, p_len;
};

struct imap_fetch {
	unsigned items;
	struct imap_fetch_body *bodies;
	size_t nbodies;
	bool set_seen, need_msg, need_meta, need_map;
};

struct imap_fetch_ctx {
	struct imap_fetch *f;
	size_t *idx, n, pos;
	bool *with_flags; /* \Seen was set implicitly */
	struct imap_flag_job *seen; /* that write, or NULL */
	struct store_msg *msgs;
	size_t nmsgs;
	bool from_cache; /* msgs came from imap_msg_cache, not the store */
	/* the current message */
	size_t step;
	struct store_msg *msg;
	struct store_map map;
	bool mapped, map_failed;
	struct store_msg_meta meta;
	bool have_meta;
	bool first;
	const uint8_t *lit;
	size_t lit_len, lit_off;
	bool failed;
	bool skipped_expunged; /* EXPUNGEISSUED (RFC 5530) */
	bool unknown_cte;      /* BINARY of a CTE we cannot decode */
	/* decoded (BINARY) or filtered (HEADER.FIELDS) bytes, streamed
	   like the mapped ones and freed with the message */
	struct buf owned;
	/* a non-BINARY literal with NUL bytes, rewritten (see below) */
	struct buf nonul;
};

/* ---- parsing the items ---- */

static bool
imap_fetch_header_list(struct arena *a, const char *s, size_t len,
		       struct imap_fetch_body *b)
{
	size_t i = 0, start;

	if (len < 2 || s[0] != '(' || s[len - 1] != ')')
		return false;
	b->fields = arena_alloc(a, IMAP_FETCH_FIELDS_MAX * sizeof(char *));
	i = 1;
	while (i < len - 1) {
		if (s[i] == ' ' && b->nfields > 0)
			i++;
		start = i;
		if (s[i] == '"') {
			start = ++i;
			while (i < len - 1 && s[i] != '"')
				i++;
			if (i >= len - 1)
				return false;
		} else {
			while (i < len - 1 && s[i] != ' ')
				i++;
		}
		if (i == start || b->nfields >= IMAP_FETCH_FIELDS_MAX)
			return false;
		{
			char *f = arena_strndup(a, s + start, i - start);
			char *p;

			for (p = f; *p != '\0'; p++) {
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
				if ((unsigned char)*p <= 0x20 || *p == ':' ||
				    (unsigned char)*p >= 0x7f)
					return false;
			}
			b->fields[b->nfields++] = f;
		}
		if (s[i] == '"')
			i++;
	}
	return b->nfields > 0;
}

/* section-spec between the brackets; fills b and appends its normal
   form to norm. */
static bool
imap_fetch_section(struct arena *a, const char *s, size_t len,
		   struct imap_fetch_body *b, struct buf *norm)
{
	size_t i = 0;
	uint32_t n;

	b->kind = IMAP_SEC_ALL;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		size_t st = i;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (parse_u32(sv_make(s + st, i - st), UINT32_MAX, &n) < 0 ||
		    n == 0 || b->depth >= MIME_DEPTH_MAX)
			return false;
		b->path[b->depth++] = n;
		(void)buf_printf(norm, "%s%u", b->depth > 1 ? "." : "", n);
		if (i == len)
			return true;
		if (s[i] != '.')
			return false;
		i++;
		if (i == len)
			return false;
	}
	if (i == len)
		return true;
	if (b->binary)
		return false;
	if (b->depth > 0)
		(void)buf_append_byte(norm, '.');
	s += i;
	len -= i;
	if (len == 6 && strncasecmp(s, "HEADER", 6) == 0) {
		b->kind = IMAP_SEC_HEADER;
		(void)buf_append_str(norm, "HEADER");
	} else if (len == 4 && strncasecmp(s, "TEXT", 4) == 0) {
		b->kind = IMAP_SEC_TEXT;
		(void)buf_append_str(norm, "TEXT");
	} else if (len == 4 && strncasecmp(s, "MIME", 4) == 0 &&
		   b->depth > 0) {
		b->kind = IMAP_SEC_MIME;
		(void)buf_append_str(norm, "MIME");
	} else if (len > 18 && strncasecmp(s, "HEADER.FIELDS.NOT ", 18) == 0) {
		b->kind = IMAP_SEC_FIELDS_NOT;
		if (!imap_fetch_header_list(a, s + 18, len - 18, b))
			return false;
		(void)buf_append_str(norm, "HEADER.FIELDS.NOT (");
	} else if (len > 14 && strncasecmp(s, "HEADER.FIELDS ", 14) == 0) {
		b->kind = IMAP_SEC_FIELDS;
		if (!imap_fetch_header_list(a, s + 14, len - 14, b))
			return false;
		(void)buf_append_str(norm, "HEADER.FIELDS (");
	} else {
		return false;
	}
	if (b->kind == IMAP_SEC_FIELDS || b->kind == IMAP_SEC_FIELDS_NOT) {
		for (i = 0; i < b->nfields; i++)
			(void)buf_printf(norm, "%s%s", i > 0 ? " " : "",
					 b->fields[i]);
		(void)buf_append_byte(norm, ')');
	}
	return true;
}

static bool
imap_fetch_partial(const char *s, struct imap_fetch_body *b)
{
	const char *dot, *end;

	if (*s == '\0')
		return true;
	end = s + strlen(s) - 1;
	if (*s != '<' || *end != '>' || (dot = strchr(s, '.')) == NULL ||
	    dot > end)
		return false;
	if (parse_u64(sv_make(s + 1, (size_t)(dot - s - 1)), UINT32_MAX,
		      &b->p_off) < 0 ||
	    parse_u64(sv_make(dot + 1, (size_t)(end - dot - 1)), UINT32_MAX,
		      &b->p_len) < 0 ||
	    b->p_len == 0)
		return false;
	b->partial = true;
	return true;
}

static bool
imap_fetch_body_att(struct arena *a, struct imap_fetch *f, const char *att)
{
	static const struct {
		const char *prefix, *resp;
		bool binary, peek, size_only;
	} kinds[] = {
		{ "BODY.PEEK[", "BODY", false, true, false },
		{ "BODY[", "BODY", false, false, false },
		{ "BINARY.PEEK[", "BINARY", true, true, false },
		{ "BINARY.SIZE[", "BINARY.SIZE", true, true, true },
		{ "BINARY[", "BINARY", true, false, false },
	};
	struct imap_fetch_body *b;
	const char *sec, *close;
	struct buf norm;
	size_t k;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (strncasecmp(att, kinds[k].prefix,
				strlen(kinds[k].prefix)) == 0)
			break;
	}
	if (k == sizeof(kinds) / sizeof(kinds[0]) ||
	    f->nbodies >= IMAP_FETCH_BODIES_MAX)
		return false;
	b = &f->bodies[f->nbodies];
	memset(b, 0, sizeof(*b));
	b->binary = kinds[k].binary;
	b->peek = kinds[k].peek;
	b->size_only = kinds[k].size_only;
	sec = att + strlen(kinds[k].prefix);
	close = strrchr(sec, ']');
	if (close == NULL)
		return false;
	buf_init(&norm, 64 * 1024);
	(void)buf_printf(&norm, "%s[", kinds[k].resp);
	if (!imap_fetch_section(a, sec, (size_t)(close - sec), b, &norm) ||
	    !imap_fetch_partial(close + 1, b) ||
	    (b->size_only && b->partial)) {
		buf_free(&norm);
		return false;
	}
	(void)buf_append_byte(&norm, ']');
	if (b->partial)
		(void)buf_printf(&norm, "<%llu>",
				 (unsigned long long)b->p_off);
	b->resp = arena_strndup(a, buf_cstr(&norm), norm.len);
	buf_free(&norm);
	f->nbodies++;
	if (!b->peek)
		f->set_seen = true;
	f->need_map = true;
	return true;
}

static bool
imap_fetch_rfc822(struct arena *a, struct imap_fetch *f, const char *att)
{
	struct imap_fetch_body *b;
	enum imap_section_kind kind;
	bool peek = false;

	if (strcasecmp(att, "RFC822") == 0)
		kind = IMAP_SEC_ALL;
	else if (strcasecmp(att, "RFC822.HEADER") == 0) {
		kind = IMAP_SEC_HEADER;
		peek = true;
	} else if (strcasecmp(att, "RFC822.TEXT") == 0)
		kind = IMAP_SEC_TEXT;
	else
		return false;
	if (f->nbodies >= IMAP_FETCH_BODIES_MAX)
		return false;
	b = &f->bodies[f->nbodies++];
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->peek = peek;
	b->resp = arena_strdup(a, att);
	{
		char *p;

		for (p = (char *)b->resp; *p != '\0'; p++) {
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		}
	}
	if (!peek)
		f->set_seen = true;
	f->need_map = true;
	return true;
}

static bool
imap_fetch_att(struct arena *a, struct imap_fetch *f,
	       const struct imap_arg *arg, bool macros)
{
	static const struct {
		const char *name;
		unsigned items;
	} simple[] = {
		{ "UID", IMAP_FETCH_UID },
		{ "FLAGS", IMAP_FETCH_FLAGS },
		{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
		{ "RFC822.SIZE", IMAP_FETCH_SIZE },
		{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
		{ "BODY", IMAP_FETCH_BODY },
		{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
		{ "FAST", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE |
				  IMAP_FETCH_SIZE },
		{ "ALL", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE |
				 IMAP_FETCH_SIZE | IMAP_FETCH_ENVELOPE },
		{ "FULL", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE |
				  IMAP_FETCH_SIZE | IMAP_FETCH_ENVELOPE |
				  IMAP_FETCH_BODY },
	};
	static const struct {
		const char *name;
		unsigned items;
	} ext[] = {
		{ "MODSEQ", IMAP_FETCH_MODSEQ },
		{ "EMAILID", IMAP_FETCH_EMAILID },
		{ "THREADID", IMAP_FETCH_THREADID },
		{ "SAVEDATE", IMAP_FETCH_SAVEDATE },
		{ "PREVIEW", IMAP_FETCH_PREVIEW },
	};
	size_t i;

	if (arg->type != IMAP_ARG_ATOM)
		return false;
	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		if (strcasecmp(arg->str, ext[i].name) == 0) {
			f->items |= ext[i].items;
			return true;
		}
	}
	for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcasecmp(arg->str, simple[i].name) == 0) {
			if (i >= 7 && !macros)
				return false;
			f->items |= simple[i].items;
			return true;
		}
	}
	if (imap_fetch_rfc822(a, f, arg->str))
		return true;
	return imap_fetch_body_att(a, f, arg->str);
}

/* RFC 8970 3: "PREVIEW (LAZY)"; we always compute the preview. */
static bool
imap_fetch_preview_mods(const struct imap_arg *list)
{
	size_t i;

	for (i = 0; i < list->count; i++) {
		if (!imap_arg_is_atom(&list->list[i], "LAZY"))
			return false;
	}
	return list->count > 0;
}

static struct imap_fetch *
imap_fetch_parse(struct arena *a, const struct imap_arg *arg)
{
	struct imap_fetch *f = arena_zalloc(a, sizeof(*f));
	size_t i;

	f->bodies = arena_alloc(a, IMAP_FETCH_BODIES_MAX * sizeof(*f->bodies));
	if (arg->type == IMAP_ARG_LIST) {
		if (arg->count == 0)
			return NULL;
		for (i = 0; i < arg->count; i++) {
			if (!imap_fetch_att(a, f, &arg->list[i], false))
				return NULL;
			if (imap_arg_is_atom(&arg->list[i], "PREVIEW") &&
			    i + 1 < arg->count &&
			    arg->list[i + 1].type == IMAP_ARG_LIST &&
			    !imap_fetch_preview_mods(&arg->list[++i]))
				return NULL;
		}
	} else if (!imap_fetch_att(a, f, arg, true)) {
		return NULL;
	}
	f->need_meta = (f->items & (IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODY |
				    IMAP_FETCH_BODYSTRUCTURE)) != 0;
	if (f->items & IMAP_FETCH_PREVIEW)
		f->need_map = true;
	f->need_msg = f->need_meta || f->need_map ||
		      (f->items & (IMAP_FETCH_INTERNALDATE | IMAP_FETCH_SIZE |
				   IMAP_FETCH_EMAILID |
				   IMAP_FETCH_SAVEDATE)) != 0;
	return f;
}

/* ---- output of one message ---- */

static void
imap_fetch_sep(struct imap_fetch_ctx *fc, struct buf *b)
{
	if (!fc->first)
		(void)buf_append_byte(b, ' ');
	fc->first = false;
}

static bool
imap_fetch_load_meta(struct imap_session *s, struct imap_fetch_ctx *fc)
{
	struct mime_info info;

	if (store_msg_meta(s->env->store, fc->msg->blob, &fc->meta) == 1) {
		fc->have_meta = true;
		return true;
	}
	/* No stored structure (should not happen): parse once now. */
	if (!fc->mapped || mime_info_parse(fc->map.data, fc->map.len,
					   &info) < 0)
		return false;
	memset(&fc->meta, 0, sizeof(fc->meta));
	fc->meta.envelope = info.envelope;
	fc->meta.bodystructure = info.bodystructure;
	fc->meta.body = info.body;
	info.envelope = info.bodystructure = info.body = NULL;
	mime_info_free(&info);
	fc->have_meta = true;
	return true;
}

/* EMAILID, SAVEDATE, PREVIEW of fc->msg. */
static void
imap_fetch_msg_ext(struct imap_fetch_ctx *fc, struct buf *b)
{
	unsigned items = fc->f->items;
	char id[IMAP_OBJECTID_MAX_BYTES], date[64];

	if (items & IMAP_FETCH_EMAILID) {
		imap_objectid_email(id, sizeof(id), fc->msg->blob);
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "EMAILID (%s)", id);
	}
	if (items & IMAP_FETCH_SAVEDATE) {
		imap_date_time_format(fc->msg->savedate, date, sizeof(date));
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "SAVEDATE \"%s\"", date);
	}
	if (items & IMAP_FETCH_PREVIEW) {
		imap_fetch_sep(fc, b);
		(void)buf_append_str(b, "PREVIEW ");
		if (!fc->mapped)
			(void)buf_append_str(b, "NIL");
		else
			(void)imap_preview_write(b, fc->map.data, fc->map.len);
	}
}

static void
imap_fetch_msg_begin(struct imap_session *s, struct imap_fetch_ctx *fc,
		     struct buf *b, size_t idx, bool uid)
{
	struct imap_fetch *f = fc->f;
	struct imap_msg *m = &s->view->msgs[idx];
	char date[64];

	fc->first = true;
	(void)buf_printf(b, "* %zu FETCH (", idx + 1);
	if (uid || (f->items & IMAP_FETCH_UID)) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "UID %u", m->uid);
	}
	if ((f->items & IMAP_FETCH_FLAGS) || fc->with_flags[fc->pos]) {
		imap_fetch_sep(fc, b);
		(void)buf_append_str(b, "FLAGS (");
		(void)imap_write_flags(b, imap_msg_flags(s, m), m->keywords);
		(void)buf_append_byte(b, ')');
	}
	/* RFC 7162 3.1.4: an implicit \Seen shows its MODSEQ too */
	if ((f->items & IMAP_FETCH_MODSEQ) ||
	    (s->condstore && fc->with_flags[fc->pos])) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "MODSEQ (%llu)",
				 (unsigned long long)m->modseq);
	}
	if (f->items & IMAP_FETCH_THREADID) {
		imap_fetch_sep(fc, b);
		(void)buf_append_str(b, "THREADID NIL");
	}
	if (fc->msg == NULL)
		return;
	imap_fetch_msg_ext(fc, b);
	if (f->items & IMAP_FETCH_INTERNALDATE) {
		imap_date_time_format(fc->msg->internaldate, date,
				      sizeof(date));
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "INTERNALDATE \"%s\"", date);
	}
	if (f->items & IMAP_FETCH_SIZE) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "RFC822.SIZE %llu",
				 (unsigned long long)fc->msg->size);
	}
	if (f->need_meta && !imap_fetch_load_meta(s, fc))
		fc->failed = true;
	if ((f->items & IMAP_FETCH_ENVELOPE) && fc->have_meta) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "ENVELOPE %s", fc->meta.envelope);
	}
	if ((f->items & IMAP_FETCH_BODY) && fc->have_meta) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "BODY %s", fc->meta.body);
	}
	if ((f->items & IMAP_FETCH_BODYSTRUCTURE) && fc->have_meta) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "BODYSTRUCTURE %s",
				 fc->meta.bodystructure);
	}
}

/* The raw byte range of a section, or false when the part is absent
   (then the empty string is sent, as Dovecot does). */
static bool
imap_fetch_range(struct imap_fetch_ctx *fc, const struct imap_fetch_body *b,
		 struct mime_section *sec, size_t *off_r, size_t *len_r)
{
	if (!mime_section_find(fc->map.data, fc->map.len, b->path, b->depth,
			       sec))
		return false;
	switch (b->kind) {
	case IMAP_SEC_ALL:
		if (b->depth == 0) {
			*off_r = 0;
			*len_r = fc->map.len;
		} else {
			*off_r = sec->body_off;
			*len_r = sec->body_len;
		}
		return true;
	case IMAP_SEC_HEADER:
	case IMAP_SEC_FIELDS:
	case IMAP_SEC_FIELDS_NOT:
		if (b->depth > 0 && !sec->has_message)
			return false;
		*off_r = sec->header_off;
		*len_r = sec->header_len;
		return true;
	case IMAP_SEC_TEXT:
		if (b->depth > 0 && !sec->has_message)
			return false;
		*off_r = sec->text_off;
		*len_r = sec->text_len;
		return true;
	case IMAP_SEC_MIME:
		*off_r = sec->mime_off;
		*len_r = sec->mime_len;
		return true;
	}
	return false;
}

static void
imap_fetch_apply_partial(const struct imap_fetch_body *b, size_t *off,
			 size_t *len)
{
	if (!b->partial)
		return;
	if (b->p_off >= *len) {
		*off += *len;
		*len = 0;
		return;
	}
	*off += (size_t)b->p_off;
	*len -= (size_t)b->p_off;
	if (b->p_len < *len)
		*len = (size_t)b->p_len;
}

/* Write "NAME {n}\r\n" and arrange the literal bytes to be streamed. */
static void
imap_fetch_literal(struct imap_fetch_ctx *fc, struct buf *b,
		   const char *name, const uint8_t *data, size_t len,
		   bool binary)
{
	bool nul = len > 0 && memchr(data, '\0', len) != NULL;
	size_t i;

	buf_free(&fc->nonul);
	if (nul && !binary) {
		/* RFC 9051 4.3: a literal never contains NUL, and a client
		   may well stop at one. Outside BINARY (which sends it in a
		   literal8, "~{n}") each NUL goes out as 0x80: the length,
		   and so every size and partial range, stays the same. */
		buf_init(&fc->nonul, len);
		(void)buf_append(&fc->nonul, data, len);
		for (i = 0; i < len; i++) {
			if (fc->nonul.data[i] == '\0')
				fc->nonul.data[i] = 0x80;
		}
		data = fc->nonul.data;
		nul = false;
	}
	imap_fetch_sep(fc, b);
	(void)buf_printf(b, "%s %s{%zu}\r\n", name, nul ? "~" : "", len);
	fc->lit = data;
	fc->lit_len = len;
	fc->lit_off = 0;
}

/* BINARY[part] / BINARY.SIZE[part] of a leaf part: decoded (RFC 3516). */
static void
imap_fetch_binary_item(struct imap_fetch_ctx *fc, struct buf *b,
		       const struct imap_fetch_body *body,
		       const struct mime_section *sec, size_t off, size_t len)
{
	if (!mime_cte_known(sec->content_transfer_encoding)) {
		/* RFC 3516 4.2: NO [UNKNOWN-CTE]; NIL (or a size of 0)
		   keeps the response parseable */
		fc->unknown_cte = true;
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, body->size_only ? "%s 0" : "%s NIL",
				 body->resp);
		return;
	}
	buf_init(&fc->owned, len + 16);
	(void)mime_decode_body(&fc->owned, sec->content_transfer_encoding,
			       fc->map.data + off, len);
	if (body->size_only) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "%s %zu", body->resp, fc->owned.len);
		buf_free(&fc->owned);
		return;
	}
	off = 0;
	len = fc->owned.len;
	imap_fetch_apply_partial(body, &off, &len);
	imap_fetch_literal(fc, b, body->resp, fc->owned.data + off, len, true);
}

static void
imap_fetch_body_item(struct imap_session *s, struct imap_fetch_ctx *fc,
		     struct buf *b, const struct imap_fetch_body *body)
{
	struct mime_section sec;
	size_t off = 0, len = 0;
	bool found;

	(void)s;
	if (!fc->mapped) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "%s NIL", body->resp);
		fc->failed = true;
		return;
	}
	found = imap_fetch_range(fc, body, &sec, &off, &len);
	buf_free(&fc->owned);
	if (body->kind == IMAP_SEC_FIELDS || body->kind == IMAP_SEC_FIELDS_NOT) {
		buf_init(&fc->owned, len + 3);
		if (found)
			(void)mime_header_filter(fc->map.data + off, len,
						 body->fields, body->nfields,
						 body->kind ==
							 IMAP_SEC_FIELDS_NOT,
						 &fc->owned);
		else
			(void)buf_append_str(&fc->owned, "\r\n");
		off = 0;
		len = fc->owned.len;
		imap_fetch_apply_partial(body, &off, &len);
		imap_fetch_literal(fc, b, body->resp,
				   fc->owned.data + off, len, false);
		return;
	}
	if (body->binary && body->depth > 0 && found &&
	    !sec.is_multipart && !sec.is_message_rfc822) {
		imap_fetch_binary_item(fc, b, body, &sec, off, len);
		return;
	}
	if (!found)
		len = 0;
	if (body->size_only) {
		imap_fetch_sep(fc, b);
		(void)buf_printf(b, "%s %zu", body->resp, len);
		return;
	}
	imap_fetch_apply_partial(body, &off, &len);
	imap_fetch_literal(fc, b, body->resp, fc->map.data + off, len,
			   body->binary);
}

static void
imap_fetch_msg_end(struct imap_fetch_ctx *fc)
{
	if (fc->mapped)
		store_blob_unmap(&fc->map);
	fc->mapped = false;
	if (fc->have_meta)
		store_msg_meta_clear(&fc->meta);
	fc->have_meta = false;
	buf_free(&fc->owned);
	buf_free(&fc->nonul);
	fc->step = 0;
	fc->msg = NULL;
	fc->pos++;
}

static struct store_msg *
imap_fetch_find_msg(struct imap_fetch_ctx *fc, uint32_t uid)
{
	size_t lo = 0, hi = fc->nmsgs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fc->msgs[mid].uid == uid)
			return &fc->msgs[mid];
		if (fc->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* True when the message is no longer in the mailbox in the store (its
   row is gone), as opposed to a row whose blob is missing. */
static bool
imap_fetch_gone(struct imap_session *s, uint32_t uid)
{
	struct store_msg *msgs = NULL;
	size_t n = 0;

	if (store_msg_list_range(s->env->store, s->view->mailbox_id, uid, uid,
				 &msgs, &n) < 0)
		return false;
	store_msgs_free(msgs, n);
	return n == 0;
}

/* Prepare message fc->pos; false when it is to be skipped. */
static bool
imap_fetch_msg_prepare(struct imap_session *s, struct imap_fetch_ctx *fc)
{
	struct imap_msg *m = &s->view->msgs[fc->idx[fc->pos]];

	if (m->expunged) {
		fc->skipped_expunged = true;
		return false;
	}
	fc->msg = NULL;
	if (fc->f->need_msg) {
		fc->msg = imap_fetch_find_msg(fc, m->uid);
		if (fc->msg == NULL) {
			/* expunged meanwhile */
			fc->skipped_expunged = true;
			return false;
		}
	}
	if (fc->f->need_map || fc->f->need_meta) {
		fc->mapped = store_blob_map_cached(s->env->store,
						   fc->msg->blob,
						   &fc->map) == STORE_OK;
		if (!fc->mapped &&
		    store_last_code(s->env->store) == STORE_NOTFOUND &&
		    imap_fetch_gone(s, m->uid)) {
			/* expunged everywhere since its row was read (a
			   cached row, or a long FETCH that another session
			   overtook): its blob was collected */
			fc->skipped_expunged = true;
			return false;
		}
		if (!fc->mapped && fc->f->need_map)
			log_error("imap", s->id, "blob-map-failed uid=%u",
				  m->uid);
	}
	return true;
}

static void
imap_fetch_cleanup(struct imap_cmd *cmd)
{
	struct imap_fetch_ctx *fc = cmd->ctx;

	if (fc->mapped)
		store_blob_unmap(&fc->map);
	fc->mapped = false;
	if (fc->have_meta)
		store_msg_meta_clear(&fc->meta);
	fc->have_meta = false;
	buf_free(&fc->owned);
	buf_free(&fc->nonul);
	store_msgs_free(fc->msgs, fc->nmsgs);
	fc->msgs = NULL;
	fc->nmsgs = 0;
	if (fc->seen != NULL)
		imap_flag_job_clear(fc->seen);
}

/* Write the responses of fc from where it stopped. sliced (a command):
   return false when the output queue is full, to go on once it
   drained. Not sliced (a notification): write everything now. */
static bool
imap_fetch_write(struct imap_session *s, struct imap_fetch_ctx *fc, bool uid,
		 bool sliced)
{
	struct buf b;

	buf_init(&b, CONN_OUTPUT_MAX_BYTES / 2);
	while (fc->pos < fc->n && !s->closing) {
		if (sliced &&
		    conn_output_pending(s->c) >= CONN_OUTPUT_LOW_BYTES) {
			buf_free(&b);
			return false;
		}
		if (fc->lit != NULL) {
			size_t n = fc->lit_len - fc->lit_off;

			if (n > IMAP_FETCH_SLICE_BYTES)
				n = IMAP_FETCH_SLICE_BYTES;
			imap_session_write(s, fc->lit + fc->lit_off, n);
			fc->lit_off += n;
			if (fc->lit_off == fc->lit_len)
				fc->lit = NULL;
			continue;
		}
		buf_reset(&b);
		if (fc->step == 0) {
			if (!imap_fetch_msg_prepare(s, fc)) {
				imap_fetch_msg_end(fc);
				continue;
			}
			imap_fetch_msg_begin(s, fc, &b, fc->idx[fc->pos], uid);
		} else if (fc->step <= fc->f->nbodies) {
			imap_fetch_body_item(s, fc, &b,
					     &fc->f->bodies[fc->step - 1]);
		} else {
			imap_session_write(s, ")\r\n", 3);
			imap_fetch_msg_end(fc);
			continue;
		}
		fc->step++;
		imap_session_write(s, b.data, b.len);
	}
	buf_free(&b);
	return true;
}

static enum imap_cmd_res
imap_fetch_cont(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_fetch_ctx *fc = cmd->ctx;

	if (!imap_fetch_write(s, fc, cmd->uid, true)) {
		cmd->cont = imap_fetch_cont;
		return IMAP_CMD_AGAIN;
	}
	imap_fetch_cleanup(cmd);
	cmd->cleanup = NULL;
	if (fc->failed)
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Some messages could not be "
				 "read.");
	else if (fc->unknown_cte)
		imap_cmd_no(cmd, "NO [UNKNOWN-CTE] Unknown "
				 "Content-Transfer-Encoding.");
	else if (fc->skipped_expunged)
		imap_cmd_ok(cmd, "OK [EXPUNGEISSUED] Some messages were "
				 "already expunged.");
	else
		imap_cmd_ok(cmd, "OK Fetch completed.");
	return IMAP_CMD_DONE;
}

/* The implicit \Seen of a non-PEEK body fetch: the unseen messages it
   touches, as fc->seen (NULL when there are none). Written on the
   commit thread like a STORE (imap_session_commit), so the loop never
   waits for the disk; the fetch runs once it is durable. */
static void
imap_fetch_seen_job(struct imap_session *s, struct imap_fetch_ctx *fc,
		    struct arena *a)
{
	struct imap_view *v = s->view;
	uint32_t *uids = arena_alloc(a, (fc->n + 1) * sizeof(*uids));
	struct imap_flag_job *j;
	size_t i, k = 0;

	for (i = 0; i < fc->n; i++) {
		struct imap_msg *m = &v->msgs[fc->idx[i]];

		if (m->expunged || (m->flags & STORE_FLAG_SEEN))
			continue;
		uids[k++] = m->uid;
		fc->with_flags[i] = true;
	}
	if (k == 0)
		return;
	j = arena_zalloc(a, sizeof(*j));
	j->mailbox_id = v->mailbox_id;
	j->uids = uids;
	j->k = k;
	j->op = STORE_FLAGS_ADD;
	j->flags = STORE_FLAG_SEEN;
	j->ic.job.run = imap_flag_job_run;
	fc->seen = j;
}

/* The view after the durable \Seen. */
static void
imap_fetch_seen_apply(struct imap_session *s, struct imap_fetch_ctx *fc)
{
	struct imap_view *v = s->view;

	for (size_t i = 0; i < fc->n; i++) {
		if (!fc->with_flags[i])
			continue;
		v->msgs[fc->idx[i]].flags |= STORE_FLAG_SEEN;
		/* one new MODSEQ for every message the command changed */
		v->msgs[fc->idx[i]].modseq = fc->seen->modseq;
	}
	imap_notify_publish(s, v->mailbox_id);
}

/* The messages of a short FETCH from the worker's cache, when every one
   is there: no store query (imap_msg_cache.c). */
static bool
imap_fetch_cached_msgs(struct imap_session *s, struct imap_fetch_ctx *fc)
{
	const struct imap_view *v = s->view;
	struct store_msg *msgs;
	size_t i;

	if (fc->n > IMAP_FETCH_CACHED_MAX)
		return false;
	msgs = xcalloc(fc->n, sizeof(*msgs));
	for (i = 0; i < fc->n; i++) {
		if (!imap_msg_cache_get(v->mailbox_id, v->uidvalidity,
					v->msgs[fc->idx[i]].uid, &msgs[i])) {
			free(msgs);
			return false;
		}
	}
	fc->msgs = msgs;
	fc->nmsgs = fc->n;
	fc->from_cache = true;
	return true;
}

static int
imap_fetch_load_msgs(struct imap_session *s, struct imap_fetch_ctx *fc)
{
	uint32_t min, max;

	if (fc->n == 0)
		return 0;
	if (imap_fetch_cached_msgs(s, fc))
		return 0;
	/* fc->idx is ascending, and so are the view's UIDs: one indexed
	   range, so "UID FETCH n" reads one row, not the mailbox's tail */
	min = s->view->msgs[fc->idx[0]].uid;
	max = s->view->msgs[fc->idx[fc->n - 1]].uid;
	if (store_msg_list_range(s->env->store, s->view->mailbox_id, min, max,
				 &fc->msgs, &fc->nmsgs) < 0)
		return -1;
	for (size_t i = 0; i < fc->nmsgs; i++)
		imap_msg_cache_put(s->view->mailbox_id, s->view->uidvalidity,
				   &fc->msgs[i]);
	fc->from_cache = false;
	return 0;
}

/* The fetch itself, after the implicit \Seen (if any) is durable
   (imap_session_commit's cont). */
static enum imap_cmd_res
imap_fetch_start(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_fetch_ctx *fc = cmd->ctx;
	const char *error = NULL;

	if (fc->seen != NULL && fc->seen->ic.job.result != STORE_OK)
		error = fc->seen->ic.job.error;
	else if (fc->seen != NULL)
		imap_fetch_seen_apply(s, fc);
	if (error == NULL && fc->f->need_msg && imap_fetch_load_msgs(s, fc) < 0)
		error = store_last_error(s->env->store);
	if (error != NULL) {
		log_error("imap", s->id, "fetch-failed error=%s", error);
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	return imap_fetch_cont(s, cmd);
}

enum imap_cmd_res
imap_cmd_fetch(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_fetch_ctx *fc;
	const char *error = NULL;
	struct imap_fetch *f;
	size_t *idx, n;
	bool modseq = false;

	if (cmd->argc != 2 && cmd->argc != 3) {
		imap_cmd_bad(cmd, "BAD Invalid FETCH arguments.");
		return IMAP_CMD_DONE;
	}
	f = imap_fetch_parse(cmd->arena, &cmd->args[1]);
	if (f == NULL) {
		imap_cmd_bad(cmd, "BAD Invalid fetch attributes.");
		return IMAP_CMD_DONE;
	}
	if (imap_set_to_indexes(s, &cmd->args[0], cmd->uid, &idx, &n,
				&error) < 0) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = error[0] == 'B';
		return IMAP_CMD_DONE;
	}
	if (cmd->argc == 3 &&
	    imap_condstore_fetch_modifiers(s, cmd, &cmd->args[2], idx, &n,
					   &modseq) < 0)
		return IMAP_CMD_DONE;
	if (modseq || (f->items & IMAP_FETCH_MODSEQ)) {
		/* RFC 7162 3.1: FETCH MODSEQ enables CONDSTORE */
		f->items |= IMAP_FETCH_MODSEQ;
		imap_condstore_enable(s);
	}
	fc = arena_zalloc(cmd->arena, sizeof(*fc));
	fc->f = f;
	fc->idx = idx;
	fc->n = n;
	fc->with_flags = arena_zalloc(cmd->arena, (n + 1) * sizeof(bool));
	cmd->ctx = fc;
	cmd->cleanup = imap_fetch_cleanup;
	if (f->set_seen && !s->view->readonly)
		imap_fetch_seen_job(s, fc, cmd->arena);
	if (fc->seen != NULL)
		return imap_session_commit(s, cmd, &fc->seen->ic,
					   imap_fetch_start);
	return imap_fetch_start(s, cmd);
}

/* ---- MessageNew fetch-att (RFC 5465 5.2) ---- */

/* Body sections a notification may carry: headers (bounded by the MIME
   parser's header limits), or any section with a partial of at most
   IMAP_NOTIFY_FETCH_PARTIAL_MAX bytes. A whole body could be larger
   than the output queue takes at once (and is not sliced here). */
static bool
imap_fetch_notify_bounded(const struct imap_fetch_body *b)
{
	if (b->size_only)
		return true;
	if (b->partial && b->p_len <= IMAP_NOTIFY_FETCH_PARTIAL_MAX)
		return true;
	return !b->binary &&
	       (b->kind == IMAP_SEC_HEADER || b->kind == IMAP_SEC_FIELDS ||
		b->kind == IMAP_SEC_FIELDS_NOT || b->kind == IMAP_SEC_MIME);
}

struct imap_fetch *
imap_fetch_parse_notify(struct arena *tmp, struct arena *dst,
			const struct imap_arg *list, const char **error_r)
{
	struct imap_fetch *f, *c;
	size_t i, k;

	f = imap_fetch_parse(tmp, list);
	if (f == NULL) {
		*error_r = "BAD Invalid MessageNew fetch attributes.";
		return NULL;
	}
	if (f->set_seen) {
		/* a notification must not change the mailbox */
		*error_r = "BAD MessageNew fetch-att must not set \\Seen "
			   "(use BODY.PEEK).";
		return NULL;
	}
	for (i = 0; i < f->nbodies; i++) {
		if (!imap_fetch_notify_bounded(&f->bodies[i])) {
			*error_r = "NO [CANNOT] MessageNew body sections must "
				   "be headers or partial (<0.n>, n at most "
				   "65536).";
			return NULL;
		}
	}
	/* a compact copy: the parse reserves room for the most bodies */
	c = arena_zalloc(dst, sizeof(*c));
	*c = *f;
	c->bodies = arena_alloc(dst, (f->nbodies + 1) * sizeof(*c->bodies));
	for (i = 0; i < f->nbodies; i++) {
		struct imap_fetch_body *b = &c->bodies[i];

		*b = f->bodies[i];
		b->resp = arena_strdup(dst, f->bodies[i].resp);
		if (b->nfields == 0)
			continue;
		b->fields = arena_alloc(dst, b->nfields * sizeof(*b->fields));
		for (k = 0; k < b->nfields; k++)
			b->fields[k] = arena_strdup(dst,
						    f->bodies[i].fields[k]);
	}
	return c;
}

void
imap_fetch_notify_write(struct imap_session *s, const struct imap_fetch *f,
			const size_t *idx, size_t n)
{
	struct imap_fetch_ctx fc;
	struct imap_fetch copy = *f;

	if (n == 0)
		return;
	/* RFC 7162 3.1: unsolicited FETCH carries MODSEQ once enabled */
	if (s->condstore)
		copy.items |= IMAP_FETCH_MODSEQ;
	memset(&fc, 0, sizeof(fc));
	fc.f = &copy;
	fc.idx = (size_t *)idx;
	fc.n = n;
	fc.with_flags = xcalloc(n + 1, sizeof(bool));
	if (!copy.need_msg || imap_fetch_load_msgs(s, &fc) == 0)
		(void)imap_fetch_write(s, &fc, false, false);
	else
		log_error("imap", s->id, "notify-fetch-failed error=%s",
			  store_last_error(s->env->store));
	if (fc.mapped)
		store_blob_unmap(&fc.map);
	if (fc.have_meta)
		store_msg_meta_clear(&fc.meta);
	buf_free(&fc.owned);
	store_msgs_free(fc.msgs, fc.nmsgs);
	free(fc.with_flags);
}
