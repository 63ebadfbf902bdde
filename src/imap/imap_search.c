/* SEARCH and UID SEARCH (RFC 9051 6.4.4; RFC 3501 6.4.4 for NEW, OLD,
   RECENT), CHARSET UTF-8 / US-ASCII (others: NO [BADCHARSET]), ESEARCH
   return options MIN MAX COUNT ALL (RFC 4731; the response form of
   IMAP4rev2) and SAVE with "$" (RFC 5182). The key tree is bounded:
   at most IMAP_SEARCH_KEYS_MAX keys, IMAP_SEARCH_DEPTH_MAX deep (OR,
   NOT and parentheses), so hostile nesting is refused, not recursed.
   Matching is ASCII case-insensitive on RFC 2047-decoded headers and on
   the decoded text parts (mime_extract_text). Date keys: INTERNALDATE
   (BEFORE/ON/SINCE) and the Date: header (SENT*), by UTC day; SAVEDATE
   (SAVEDBEFORE/SAVEDON/SAVEDSINCE, SAVEDATESUPPORTED, RFC 8514 4.2).
   MODSEQ (RFC 7162 3.1.5) compares the message's MODSEQ (there is no
   per-flag one, so the entry name is checked and ignored) and adds
   "(MODSEQ n)" / " MODSEQ n" with the highest of the matches.
   BODY and TEXT first ask the store's full-text index (store_fts.c) for
   the candidate messages and check only those exactly, so the result is
   the same as a scan of every message; the candidates the index calls
   sure (an ASCII needle on text where its match is exact) are not read
   again. SUBJECT, FROM, TO, CC, BCC (the first field of the name) do
   the same through the store's field index, also for needles with
   white space; HEADER (every field of the name, RFC 9051 6.4.4) uses
   the text index's header column as a filter (each piece of the
   needle between white space must be in it). A message's store row is
   read only
   when a key needs it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "imap/imap_sort.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store.h"

_Static_assert(IMAP_SEARCH_TEXT_MAX_BYTES == STORE_FTS_TEXT_MAX_BYTES,
	       "the index must hold the text the exact check reads");

enum imap_skind {
	SK_ALL,
	SK_NONE,
	SK_AND,
	SK_OR,
	SK_NOT,
	SK_FLAG,     /* flag set */
	SK_NOFLAG,   /* flag not set */
	SK_NEW,	     /* \Recent and not \Seen */
	SK_KEYWORD,
	SK_UNKEYWORD,
	SK_SEQ,
	SK_UID,
	SK_SAVED,
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE,
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE,
	SK_SENTON,
	SK_SENTSINCE,
	SK_SAVEDBEFORE,
	SK_SAVEDON,
	SK_SAVEDSINCE,
	SK_MODSEQ,
	SK_HEADER,
	SK_BODY,
	SK_TEXT,
};

struct imap_snode {
	enum imap_skind kind;
	uint32_t flag;
	const char *field, *str;
	uint64_t num;
	int64_t date;
	struct imap_seqset set;
	struct store_fts_result fts; /* BODY/TEXT/header: candidates */
	size_t cur, scur; /* into fts.uids, fts.sure (UIDs only grow) */
	bool use_cand;
	bool all_fields; /* HEADER: every field of the name, not the first */
	struct imap_snode **kids;
	size_t nkids;
};

struct imap_search {
	struct imap_snode *root;
	bool need_msg, need_meta, need_map;
	bool preload; /* msgs holds every row; else rows are read one by one */
	bool modseq; /* a MODSEQ key: report the highest (RFC 7162 3.1.5) */
	/* per message, lazily */
	struct store_msg *msgs;
	size_t nmsgs;
	struct store_msg *msg, *own; /* own: read for this message alone */
	bool msg_tried, gone;	     /* gone: the row was not found */
	struct store_map map;
	bool mapped, map_tried;
	struct store_msg_meta meta;
	bool have_meta, meta_tried;
	struct buf text, headers; /* mime_extract_text / _headers */
	bool text_done, headers_done;
	bool error; /* a store read failed */
	struct imap_session *s;
	uint32_t uid;
};

struct imap_sparse {
	struct imap_session *s;
	struct arena *a;
	size_t keys;
	const char *error;
	bool no;
	bool search_modseq;
	struct imap_search *search;
};

static struct imap_snode *imap_search_key(struct imap_sparse *p,
					  const struct imap_arg *args,
					  size_t count, size_t *i,
					  unsigned depth);

static struct imap_snode *
imap_snode_new(struct imap_sparse *p, enum imap_skind kind)
{
	struct imap_snode *n;

	if (++p->keys > IMAP_SEARCH_KEYS_MAX) {
		p->error = "BAD Too many search keys.";
		return NULL;
	}
	n = arena_zalloc(p->a, sizeof(*n));
	n->kind = kind;
	return n;
}

/* AND of all keys in args[0..count). */
static struct imap_snode *
imap_search_and(struct imap_sparse *p, const struct imap_arg *args,
		size_t count, unsigned depth)
{
	struct imap_snode *n = imap_snode_new(p, SK_AND), *k;
	size_t i = 0, cap = 0;

	if (n == NULL)
		return NULL;
	if (count == 0) {
		p->error = "BAD Missing search key.";
		return NULL;
	}
	while (i < count) {
		k = imap_search_key(p, args, count, &i, depth);
		if (k == NULL)
			return NULL;
		if (n->nkids == cap) {
			struct imap_snode **nk;

			cap = cap == 0 ? 8 : cap * 2;
			nk = arena_alloc(p->a, cap * sizeof(*nk));
			if (n->nkids > 0)
				memcpy(nk, n->kids, n->nkids * sizeof(*nk));
			n->kids = nk;
		}
		n->kids[n->nkids++] = k;
	}
	return n;
}

static const struct {
	const char *name;
	enum imap_skind kind;
	uint32_t flag;
} imap_sflags[] = {
	{ "ANSWERED", SK_FLAG, STORE_FLAG_ANSWERED },
	{ "DELETED", SK_FLAG, STORE_FLAG_DELETED },
	{ "DRAFT", SK_FLAG, STORE_FLAG_DRAFT },
	{ "FLAGGED", SK_FLAG, STORE_FLAG_FLAGGED },
	{ "SEEN", SK_FLAG, STORE_FLAG_SEEN },
	{ "OLD", SK_NOFLAG, IMAP_FLAG_RECENT },
	{ "ALL", SK_ALL, 0 },
	{ "SAVEDATESUPPORTED", SK_ALL, 0 }, /* RFC 8514 4.2 */
	{ "NEW", SK_NEW, 0 },
	{ "RECENT", SK_FLAG, IMAP_FLAG_RECENT },
	{ "UNANSWERED", SK_NOFLAG, STORE_FLAG_ANSWERED },
	{ "UNDELETED", SK_NOFLAG, STORE_FLAG_DELETED },
	{ "UNDRAFT", SK_NOFLAG, STORE_FLAG_DRAFT },
	{ "UNFLAGGED", SK_NOFLAG, STORE_FLAG_FLAGGED },
	{ "UNSEEN", SK_NOFLAG, STORE_FLAG_SEEN },
};

static const struct {
	const char *name;
	enum imap_skind kind;
	const char *field;
} imap_sstrings[] = {
	{ "BCC", SK_HEADER, "Bcc" },   { "CC", SK_HEADER, "Cc" },
	{ "FROM", SK_HEADER, "From" }, { "SUBJECT", SK_HEADER, "Subject" },
	{ "TO", SK_HEADER, "To" },     { "BODY", SK_BODY, NULL },
	{ "TEXT", SK_TEXT, NULL },
};

static const struct {
	const char *name;
	enum imap_skind kind;
} imap_sdates[] = {
	{ "BEFORE", SK_BEFORE },	 { "ON", SK_ON },
	{ "SINCE", SK_SINCE },		 { "SENTBEFORE", SK_SENTBEFORE },
	{ "SENTON", SK_SENTON },	 { "SENTSINCE", SK_SENTSINCE },
	{ "SAVEDBEFORE", SK_SAVEDBEFORE }, { "SAVEDON", SK_SAVEDON },
	{ "SAVEDSINCE", SK_SAVEDSINCE },
};

static const struct imap_arg *
imap_search_next(struct imap_sparse *p, const struct imap_arg *args,
		 size_t count, size_t *i, bool string)
{
	const struct imap_arg *a;

	if (*i >= count) {
		p->error = "BAD Missing search argument.";
		return NULL;
	}
	a = &args[(*i)++];
	if (string ? !imap_arg_is_astring(a) : a->type != IMAP_ARG_ATOM) {
		p->error = "BAD Invalid search argument.";
		return NULL;
	}
	return a;
}

/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer */
static struct imap_snode *
imap_search_modseq(struct imap_sparse *p, const struct imap_arg *args,
		   size_t count, size_t *i)
{
	const struct imap_arg *a;
	struct imap_snode *n;

	if (*i < count && imap_arg_is_string(&args[*i])) {
		(*i)++;
		if ((a = imap_search_next(p, args, count, i, false)) == NULL)
			return NULL;
		if (strcasecmp(a->str, "priv") != 0 &&
		    strcasecmp(a->str, "shared") != 0 &&
		    strcasecmp(a->str, "all") != 0) {
			p->error = "BAD Invalid MODSEQ entry type.";
			return NULL;
		}
	}
	if ((a = imap_search_next(p, args, count, i, false)) == NULL ||
	    (n = imap_snode_new(p, SK_MODSEQ)) == NULL)
		return NULL;
	if (parse_u64(sv_make(a->str, a->len), INT64_MAX, &n->num) < 0) {
		p->error = "BAD Invalid MODSEQ value.";
		return NULL;
	}
	imap_condstore_enable(p->s);
	p->search_modseq = true;
	return n;
}

static struct imap_snode *
imap_search_named(struct imap_sparse *p, const char *name,
		  const struct imap_arg *args, size_t count, size_t *i,
		  unsigned depth)
{
	const struct imap_arg *a, *b;
	struct imap_snode *n;
	size_t k;

	for (k = 0; k < sizeof(imap_sflags) / sizeof(imap_sflags[0]); k++) {
		if (strcasecmp(name, imap_sflags[k].name) == 0) {
			n = imap_snode_new(p, imap_sflags[k].kind);
			if (n != NULL)
				n->flag = imap_sflags[k].flag;
			return n;
		}
	}
	for (k = 0; k < sizeof(imap_sstrings) / sizeof(imap_sstrings[0]); k++) {
		if (strcasecmp(name, imap_sstrings[k].name) != 0)
			continue;
		if ((a = imap_search_next(p, args, count, i, true)) == NULL ||
		    (n = imap_snode_new(p, imap_sstrings[k].kind)) == NULL)
			return NULL;
		n->field = imap_sstrings[k].field;
		n->str = a->str;
		return n;
	}
	for (k = 0; k < sizeof(imap_sdates) / sizeof(imap_sdates[0]); k++) {
		if (strcasecmp(name, imap_sdates[k].name) != 0)
			continue;
		if ((a = imap_search_next(p, args, count, i, true)) == NULL ||
		    (n = imap_snode_new(p, imap_sdates[k].kind)) == NULL)
			return NULL;
		if (imap_date_parse(a->str, &n->date) < 0) {
			p->error = "BAD Invalid search date.";
			return NULL;
		}
		return n;
	}
	if (strcasecmp(name, "NOT") == 0) {
		if ((n = imap_snode_new(p, SK_NOT)) == NULL)
			return NULL;
		n->kids = arena_alloc(p->a, sizeof(*n->kids));
		n->nkids = 1;
		n->kids[0] = imap_search_key(p, args, count, i, depth + 1);
		return n->kids[0] == NULL ? NULL : n;
	}
	if (strcasecmp(name, "OR") == 0) {
		if ((n = imap_snode_new(p, SK_OR)) == NULL)
			return NULL;
		n->kids = arena_alloc(p->a, 2 * sizeof(*n->kids));
		n->nkids = 2;
		n->kids[0] = imap_search_key(p, args, count, i, depth + 1);
		if (n->kids[0] == NULL)
			return NULL;
		n->kids[1] = imap_search_key(p, args, count, i, depth + 1);
		return n->kids[1] == NULL ? NULL : n;
	}
	if (strcasecmp(name, "HEADER") == 0) {
		if ((a = imap_search_next(p, args, count, i, true)) == NULL ||
		    (b = imap_search_next(p, args, count, i, true)) == NULL ||
		    (n = imap_snode_new(p, SK_HEADER)) == NULL)
			return NULL;
		n->field = a->str;
		n->str = b->str;
		n->all_fields = true;
		return n;
	}
	if (strcasecmp(name, "KEYWORD") == 0 ||
	    strcasecmp(name, "UNKEYWORD") == 0) {
		bool un = name[0] == 'U' || name[0] == 'u';

		if ((a = imap_search_next(p, args, count, i, false)) == NULL ||
		    (n = imap_snode_new(p, un ? SK_UNKEYWORD : SK_KEYWORD)) ==
			    NULL)
			return NULL;
		n->str = a->str;
		return n;
	}
	if (strcasecmp(name, "LARGER") == 0 || strcasecmp(name, "SMALLER") == 0) {
		bool larger = name[0] == 'L' || name[0] == 'l';

		if ((a = imap_search_next(p, args, count, i, false)) == NULL ||
		    (n = imap_snode_new(p, larger ? SK_LARGER : SK_SMALLER)) ==
			    NULL)
			return NULL;
		if (parse_u64(sv_make(a->str, a->len), UINT64_MAX, &n->num) <
		    0) {
			p->error = "BAD Invalid search size.";
			return NULL;
		}
		return n;
	}
	if (strcasecmp(name, "MODSEQ") == 0)
		return imap_search_modseq(p, args, count, i);
	if (strcasecmp(name, "UID") == 0) {
		if ((a = imap_search_next(p, args, count, i, false)) == NULL ||
		    (n = imap_snode_new(p, SK_UID)) == NULL)
			return NULL;
		if (strcmp(a->str, "$") == 0) {
			n->kind = SK_SAVED;
			return n;
		}
		if (imap_seqset_parse(p->a, a->str, a->len, &n->set) < 0) {
			p->error = "BAD Invalid UID set.";
			return NULL;
		}
		return n;
	}
	(void)depth;
	p->error = "BAD Unknown search key.";
	return NULL;
}

static struct imap_snode *
imap_search_key(struct imap_sparse *p, const struct imap_arg *args,
		size_t count, size_t *i, unsigned depth)
{
	const struct imap_arg *a;
	struct imap_snode *n;

	if (depth > IMAP_SEARCH_DEPTH_MAX) {
		p->error = "BAD Search keys nested too deeply.";
		return NULL;
	}
	if (*i >= count) {
		p->error = "BAD Missing search key.";
		return NULL;
	}
	a = &args[(*i)++];
	if (a->type == IMAP_ARG_LIST)
		return imap_search_and(p, a->list, a->count, depth + 1);
	if (a->type != IMAP_ARG_ATOM) {
		p->error = "BAD Invalid search key.";
		return NULL;
	}
	if (strcmp(a->str, "$") == 0)
		return imap_snode_new(p, SK_SAVED);
	if ((a->str[0] >= '0' && a->str[0] <= '9') || a->str[0] == '*') {
		if ((n = imap_snode_new(p, SK_SEQ)) == NULL)
			return NULL;
		if (imap_seqset_parse(p->a, a->str, a->len, &n->set) < 0) {
			p->error = "BAD Invalid sequence set.";
			return NULL;
		}
		return n;
	}
	return imap_search_named(p, a->str, args, count, i, depth);
}

static void
imap_search_needs(struct imap_search *s, const struct imap_snode *n)
{
	size_t i;

	switch (n->kind) {
	case SK_LARGER:
	case SK_SMALLER:
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE:
		s->need_msg = true;
		break;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		s->need_msg = s->need_meta = true;
		break;
	case SK_SAVEDBEFORE:
	case SK_SAVEDON:
	case SK_SAVEDSINCE:
		s->need_msg = true;
		break;
	case SK_HEADER:
	case SK_BODY:
	case SK_TEXT:
		s->need_msg = s->need_map = true;
		break;
	default:
		break;
	}
	for (i = 0; i < n->nkids; i++)
		imap_search_needs(s, n->kids[i]);
}

struct imap_search *
imap_search_parse(struct imap_session *s, struct arena *a,
		  const struct imap_arg *args, size_t count,
		  const char **error_r, bool *no_r)
{
	struct imap_sparse p = { .s = s, .a = a };
	struct imap_search *search;
	struct imap_snode *root;

	*no_r = false;
	if (count >= 2 && imap_arg_is_atom(&args[0], "CHARSET")) {
		if (!imap_arg_is_astring(&args[1])) {
			*error_r = "BAD Invalid charset.";
			return NULL;
		}
		if (strcasecmp(args[1].str, "UTF-8") != 0 &&
		    strcasecmp(args[1].str, "US-ASCII") != 0) {
			*error_r = "NO [BADCHARSET (UTF-8 US-ASCII)] "
				   "Unsupported charset.";
			*no_r = true;
			return NULL;
		}
		args += 2;
		count -= 2;
	}
	root = imap_search_and(&p, args, count, 0);
	if (root == NULL) {
		*error_r = p.error != NULL ? p.error : "BAD Invalid search.";
		return NULL;
	}
	search = arena_zalloc(a, sizeof(*search));
	search->root = root;
	search->modseq = p.search_modseq;
	imap_search_needs(search, root);
	return search;
}

/* ---- matching ---- */

/* ASCII case-insensitive substring search. */
static bool
imap_search_contains(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle), i;

	if (nlen == 0)
		return true;
	if (nlen > hlen)
		return false;
	for (i = 0; i + nlen <= hlen; i++) {
		if (strncasecmp(hay + i, needle, nlen) == 0)
			return true;
	}
	return false;
}

static bool
imap_search_keyword(const char *keywords, const char *k)
{
	const char *p = keywords;
	size_t klen = strlen(k);

	while (p != NULL && *p != '\0') {
		const char *e = strchr(p, ' ');
		size_t n = e == NULL ? strlen(p) : (size_t)(e - p);

		if (n == klen && strncasecmp(p, k, n) == 0)
			return true;
		p += n;
		if (*p == ' ')
			p++;
	}
	return false;
}

static struct store_msg *imap_search_find(struct imap_search *se,
					   uint32_t uid);

/* The store row of the message being matched, NULL when it is gone
   (expunged meanwhile: then the message does not match at all). */
static const struct store_msg *
imap_search_row(struct imap_search *se)
{
	size_t n = 0;

	if (se->msg_tried)
		return se->msg;
	se->msg_tried = true;
	if (se->preload) {
		se->msg = imap_search_find(se, se->uid);
	} else if (store_msg_list_range(se->s->env->store,
					se->s->view->mailbox_id, se->uid,
					se->uid, &se->own, &n) < 0) {
		se->error = true;
	} else if (n == 1) {
		se->msg = se->own;
	} else {
		store_msgs_free(se->own, n);
		se->own = NULL;
	}
	se->gone = se->msg == NULL;
	return se->msg;
}

static bool
imap_search_map(struct imap_session *s, struct imap_search *se)
{
	const struct store_msg *m;

	if (!se->map_tried) {
		se->map_tried = true;
		m = imap_search_row(se);
		se->mapped = m != NULL &&
			     store_blob_map(s->env->store, m->blob, &se->map) ==
				     STORE_OK;
	}
	return se->mapped;
}

static bool
imap_search_field_has(void *ctx, const struct buf *value)
{
	const struct imap_snode *n = ctx;

	return imap_search_contains((const char *)value->data, value->len,
				    n->str);
}

static bool
imap_search_header(struct imap_session *s, struct imap_search *se,
		   const struct imap_snode *n)
{
	struct buf dec;
	bool match = false;

	if (!imap_search_map(s, se))
		return false;
	if (n->all_fields)
		return mime_search_field_each(
			       se->map.data,
			       mime_search_header_len(se->map.data,
						      se->map.len),
			       n->field, imap_search_field_has,
			       (void *)n) == 1;
	buf_init(&dec, MIME_SEARCH_FIELD_MAX_BYTES);
	if (mime_search_field(se->map.data,
			      mime_search_header_len(se->map.data, se->map.len),
			      n->field, &dec) == 1)
		match = imap_search_contains((const char *)dec.data, dec.len,
					     n->str);
	buf_free(&dec);
	return match;
}

static bool
imap_search_body(struct imap_session *s, struct imap_search *se,
		 const struct imap_snode *n)
{
	if (!imap_search_map(s, se))
		return false;
	if (!se->text_done) {
		se->text_done = true;
		buf_init(&se->text, IMAP_SEARCH_TEXT_MAX_BYTES);
		(void)mime_extract_text(se->map.data, se->map.len, &se->text);
	}
	if (imap_search_contains((const char *)se->text.data, se->text.len,
				 n->str))
		return true;
	if (n->kind != SK_TEXT)
		return false;
	/* TEXT: the top header and the MIME headers of the parts */
	if (!se->headers_done) {
		se->headers_done = true;
		buf_init(&se->headers, IMAP_SEARCH_TEXT_MAX_BYTES);
		(void)mime_extract_headers(se->map.data, se->map.len,
					   &se->headers);
	}
	return imap_search_contains((const char *)se->headers.data,
				    se->headers.len, n->str);
}

static int
imap_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* uid in the ascending array uids[0..n)? For ascending uids from one
   call to the next: *cur moves on past the smaller ones, so a search
   over the mailbox costs one pass over the array. */
static bool
imap_search_at(const uint32_t *uids, size_t n, size_t *cur, uint32_t uid)
{
	while (*cur < n && uids[*cur] < uid)
		(*cur)++;
	return *cur < n && uids[*cur] == uid;
}

static int64_t
imap_search_day(int64_t t)
{
	int64_t d = t / 86400;

	if (t < 0 && t % 86400 != 0)
		d--;
	return d * 86400;
}

/* The Date: field as the ENVELOPE holds it (its first item, written by
   mime_imap_envelope: NIL, a quoted string or a literal) into out. */
static bool
imap_envelope_date(const char *env, char *out, size_t out_size)
{
	const char *p = env;
	size_t n = 0;

	if (p == NULL || *p++ != '(')
		return false;
	if (*p == '{') {
		char *end;
		unsigned long len = strtoul(p + 1, &end, 10);

		if (end[0] != '}' || end[1] != '\r' || end[2] != '\n' ||
		    len >= out_size || strnlen(end + 3, len) < len)
			return false;
		memcpy(out, end + 3, len);
		out[len] = '\0';
		return true;
	}
	if (*p++ != '"')
		return false;
	for (; *p != '\0' && *p != '"' && n + 1 < out_size; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"';
}

/* The day of the Date: field as written, its time and zone disregarded
   (RFC 9051 6.4.4 SENTBEFORE/SENTON/SENTSINCE): a message sent at
   00:30 +0200 on the 25th was sent on the 25th, though it is the 24th in
   UTC. */
static bool
imap_search_sent(struct imap_session *s, struct imap_search *se,
		 int64_t *date_r)
{
	const struct store_msg *row;
	char date[256];
	int64_t day;

	if (!se->meta_tried) {
		se->meta_tried = true;
		row = imap_search_row(se);
		se->have_meta = row != NULL &&
				store_msg_meta(s->env->store, row->blob,
					       &se->meta) == 1;
	}
	if (!se->have_meta || se->meta.date < 0 ||
	    !imap_envelope_date(se->meta.envelope, date, sizeof(date)) ||
	    mime_date_parse_day(date, strlen(date), &day) < 0)
		return false;
	*date_r = day * 86400;
	return true;
}

static bool
imap_search_eval(struct imap_session *s, struct imap_search *se,
		 struct imap_snode *n, size_t idx)
{
	const struct imap_msg *m = &s->view->msgs[idx];
	const struct store_msg *row = NULL;
	int64_t day;
	size_t i;

	switch (n->kind) {
	case SK_LARGER:
	case SK_SMALLER:
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE:
	case SK_SAVEDBEFORE:
	case SK_SAVEDON:
	case SK_SAVEDSINCE:
		if ((row = imap_search_row(se)) == NULL)
			return false;
		break;
	default:
		break;
	}

	switch (n->kind) {
	case SK_ALL:
		return true;
	case SK_NONE:
		return false;
	case SK_AND:
		for (i = 0; i < n->nkids; i++) {
			if (!imap_search_eval(s, se, n->kids[i], idx))
				return false;
		}
		return true;
	case SK_OR:
		return imap_search_eval(s, se, n->kids[0], idx) ||
		       imap_search_eval(s, se, n->kids[1], idx);
	case SK_NOT:
		return !imap_search_eval(s, se, n->kids[0], idx);
	case SK_FLAG:
		return ((m->flags | (m->recent ? IMAP_FLAG_RECENT : 0)) &
			n->flag) != 0;
	case SK_NOFLAG:
		return ((m->flags | (m->recent ? IMAP_FLAG_RECENT : 0)) &
			n->flag) == 0;
	case SK_NEW:
		return m->recent && (m->flags & STORE_FLAG_SEEN) == 0;
	case SK_KEYWORD:
		return imap_search_keyword(m->keywords, n->str);
	case SK_UNKEYWORD:
		return !imap_search_keyword(m->keywords, n->str);
	case SK_SEQ:
		return imap_seqset_contains(&n->set, (uint32_t)(idx + 1));
	case SK_UID:
		return imap_seqset_contains(&n->set, m->uid);
	case SK_SAVED:
		return s->saved_uids != NULL &&
		       bsearch(&m->uid, s->saved_uids, s->saved_count,
			       sizeof(uint32_t), imap_u32_cmp) != NULL;
	case SK_LARGER:
		return row->size > n->num;
	case SK_SMALLER:
		return row->size < n->num;
	case SK_BEFORE:
		return imap_search_day(row->internaldate) < n->date;
	case SK_ON:
		return imap_search_day(row->internaldate) == n->date;
	case SK_SINCE:
		return imap_search_day(row->internaldate) >= n->date;
	case SK_SENTBEFORE:
		return imap_search_sent(s, se, &day) && day < n->date;
	case SK_SENTON:
		return imap_search_sent(s, se, &day) && day == n->date;
	case SK_SENTSINCE:
		return imap_search_sent(s, se, &day) && day >= n->date;
	case SK_SAVEDBEFORE:
		return imap_search_day(row->savedate) < n->date;
	case SK_SAVEDON:
		return imap_search_day(row->savedate) == n->date;
	case SK_SAVEDSINCE:
		return imap_search_day(row->savedate) >= n->date;
	case SK_MODSEQ:
		return m->modseq >= n->num;
	case SK_HEADER:
	case SK_BODY:
	case SK_TEXT:
		if (n->use_cand) {
			if (!imap_search_at(n->fts.uids, n->fts.count, &n->cur,
					    m->uid))
				return false;
			if (imap_search_at(n->fts.sure, n->fts.nsure,
					   &n->scur, m->uid))
				return true;
		}
		if (n->kind == SK_HEADER)
			return imap_search_header(s, se, n);
		return imap_search_body(s, se, n);
	}
	return false;
}

/* Ask the full-text index for the candidates of each BODY/TEXT (and
   header) key; a key it cannot answer (short needle, index error) is
   checked on every message. */
static void
imap_search_fts(struct imap_session *s, struct imap_snode *n)
{
	size_t i;

	n->cur = n->scur = 0;
	if (n->kind == SK_BODY || n->kind == SK_TEXT) {
		n->use_cand = store_fts_candidates(
				      s->env->store, s->view->mailbox_id,
				      n->str,
				      STORE_FTS_SURE |
					      (n->kind == SK_TEXT
						       ? STORE_FTS_HEADER |
								 STORE_FTS_PARTS
						       : 0),
				      &n->fts) == 1;
	} else if (n->kind == SK_HEADER) {
		/* SUBJECT, FROM, TO, CC, BCC: the field index holds the
		   very text the exact check compares (the first field of
		   the name). Not HEADER, which looks at every field of
		   the name. */
		if (!n->all_fields)
			n->use_cand = store_fts_field_candidates(
					      s->env->store,
					      s->view->mailbox_id, n->field,
					      n->str, STORE_FTS_SURE,
					      &n->fts) == 1;
		/* HEADER and fields without an index (store_fts_field_
		   candidates answers 0 for those): the text index's hdr
		   column starts with
		   the raw top header decoded (folds kept), the exact check
		   decodes the unfolded field: they agree on every piece of
		   the needle without white space, because unfolding only
		   removes CRLF before white space (and RFC 2047 drops CRLF
		   between encoded-words in both). So each piece must be in
		   hdr: a filter, never sure. */
		if (!n->use_cand)
			n->use_cand = store_fts_candidates(
					      s->env->store,
					      s->view->mailbox_id, n->str,
					      STORE_FTS_WORDS, &n->fts) == 1;
	}
	for (i = 0; i < n->nkids; i++)
		imap_search_fts(s, n->kids[i]);
}

static void
imap_search_fts_free(struct imap_snode *n)
{
	size_t i;

	store_fts_result_free(&n->fts);
	n->use_cand = false;
	for (i = 0; i < n->nkids; i++)
		imap_search_fts_free(n->kids[i]);
}

static void
imap_search_resolve(struct imap_snode *n, uint32_t count, uint32_t max_uid)
{
	size_t i;

	if (n->kind == SK_SEQ)
		imap_seqset_resolve(&n->set, count);
	else if (n->kind == SK_UID)
		imap_seqset_resolve(&n->set, max_uid);
	for (i = 0; i < n->nkids; i++)
		imap_search_resolve(n->kids[i], count, max_uid);
}

static void
imap_search_msg_end(struct imap_search *se)
{
	if (se->mapped)
		store_blob_unmap(&se->map);
	se->mapped = se->map_tried = false;
	if (se->have_meta)
		store_msg_meta_clear(&se->meta);
	se->have_meta = se->meta_tried = false;
	if (se->text_done)
		buf_free(&se->text);
	if (se->headers_done)
		buf_free(&se->headers);
	se->text_done = se->headers_done = false;
	if (se->own != NULL)
		store_msgs_free(se->own, 1);
	se->own = NULL;
	se->msg = NULL;
	se->msg_tried = se->gone = false;
}

static struct store_msg *
imap_search_find(struct imap_search *se, uint32_t uid)
{
	size_t lo = 0, hi = se->nmsgs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (se->msgs[mid].uid == uid)
			return &se->msgs[mid];
		if (se->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A key with index candidates that every match must satisfy
   (a direct child of the top-level AND; the smallest set), or NULL. */
static const struct imap_snode *
imap_search_restrict(const struct imap_snode *root)
{
	const struct imap_snode *best = NULL;
	size_t i;

	for (i = 0; root->kind == SK_AND && i < root->nkids; i++) {
		const struct imap_snode *k = root->kids[i];

		if (k->use_cand &&
		    (best == NULL || k->fts.count < best->fts.count))
			best = k;
	}
	return best;
}

/* Does evaluating n read store rows of messages other than the sure
   candidates of the index? */
static bool
imap_search_reads_rows(const struct imap_snode *n)
{
	size_t i;

	switch (n->kind) {
	case SK_BODY:
	case SK_TEXT:
	case SK_HEADER:
		if (n->use_cand && n->fts.nsure == n->fts.count)
			return false;
		return true;
	case SK_LARGER:
	case SK_SMALLER:
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE:
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
	case SK_SAVEDBEFORE:
	case SK_SAVEDON:
	case SK_SAVEDSINCE:
		return true;
	default:
		break;
	}
	for (i = 0; i < n->nkids; i++) {
		if (imap_search_reads_rows(n->kids[i]))
			return true;
	}
	return false;
}

/* Read every row at once when many messages may need theirs; with a
   restricting key of few candidates, read rows one by one when a key
   asks (at most one lookup per candidate). */
static int
imap_search_load(struct imap_session *s, struct imap_search *se,
		 const struct imap_snode *r)
{
	if (!se->need_msg || !imap_search_reads_rows(se->root))
		return 0;
	if (r != NULL && r->fts.count < s->view->count / 8)
		return 0;
	se->preload = true;
	return store_msg_list(s->env->store, s->view->mailbox_id, 1, &se->msgs,
			      &se->nmsgs);
}

/* Matching message indexes, ascending. -1 on a store error. */
static int
imap_search_run(struct imap_session *s, struct imap_search *se,
		struct arena *a, size_t **idx_r, size_t *count_r)
{
	struct imap_view *v = s->view;
	const struct imap_snode *r = NULL;
	size_t i, n = 0, rcur = 0;

	*idx_r = arena_alloc(a, (v->count + 1) * sizeof(size_t));
	imap_search_resolve(se->root, (uint32_t)v->count,
			    v->count > 0 ? v->msgs[v->count - 1].uid : 0);
	if (se->need_map && v->count > 0) {
		imap_search_fts(s, se->root);
		r = imap_search_restrict(se->root);
	}
	se->s = s;
	se->preload = false;
	se->error = false;
	if (v->count > 0 && imap_search_load(s, se, r) < 0)
		se->error = true;
	for (i = 0; i < v->count && !se->error; i++) {
		if (v->msgs[i].expunged)
			continue;
		if (r != NULL && !imap_search_at(r->fts.uids, r->fts.count,
						 &rcur, v->msgs[i].uid))
			continue;
		se->uid = v->msgs[i].uid;
		if (imap_search_eval(s, se, se->root, i) && !se->gone)
			(*idx_r)[n++] = i;
		imap_search_msg_end(se);
	}
	store_msgs_free(se->msgs, se->nmsgs);
	se->msgs = NULL;
	se->nmsgs = 0;
	imap_search_fts_free(se->root);
	*count_r = se->error ? 0 : n;
	return se->error ? -1 : 0;
}

int
imap_search_match(struct imap_session *s, struct imap_search *se,
		  struct arena *a, size_t **idx_r, size_t *count_r)
{
	return imap_search_run(s, se, a, idx_r, count_r);
}


int
imap_search_return(const struct imap_arg *list, unsigned *opts_r)
{
	size_t i;

	*opts_r = 0;
	for (i = 0; i < list->count; i++) {
		const struct imap_arg *o = &list->list[i];

		if (imap_arg_is_atom(o, "MIN"))
			*opts_r |= IMAP_ESEARCH_MIN;
		else if (imap_arg_is_atom(o, "MAX"))
			*opts_r |= IMAP_ESEARCH_MAX;
		else if (imap_arg_is_atom(o, "COUNT"))
			*opts_r |= IMAP_ESEARCH_COUNT;
		else if (imap_arg_is_atom(o, "ALL"))
			*opts_r |= IMAP_ESEARCH_ALL;
		else if (imap_arg_is_atom(o, "SAVE"))
			*opts_r |= IMAP_ESEARCH_SAVE;
		else
			return -1;
	}
	if (*opts_r == 0)
		*opts_r = IMAP_ESEARCH_ALL;
	return 0;
}

static void
imap_search_save(struct imap_session *s, const size_t *idx, size_t n,
		 unsigned opts)
{
	struct imap_view *v = s->view;
	size_t i;

	xfree(&s->saved_uids);
	s->saved_count = 0;
	s->saved_uids = xcalloc(n + 1, sizeof(uint32_t));
	if ((opts & (IMAP_ESEARCH_MIN | IMAP_ESEARCH_MAX)) != 0 &&
	    (opts & (IMAP_ESEARCH_ALL | IMAP_ESEARCH_COUNT)) == 0) {
		/* RFC 5182 2.4: only what MIN/MAX return is saved */
		if (n > 0 && (opts & IMAP_ESEARCH_MIN))
			s->saved_uids[s->saved_count++] = v->msgs[idx[0]].uid;
		if (n > 0 && (opts & IMAP_ESEARCH_MAX) &&
		    (s->saved_count == 0 || n > 1))
			s->saved_uids[s->saved_count++] =
				v->msgs[idx[n - 1]].uid;
		return;
	}
	for (i = 0; i < n; i++)
		s->saved_uids[s->saved_count++] = v->msgs[idx[i]].uid;
}

void
imap_esearch_write(struct buf *b, const struct imap_cmd *cmd, unsigned opts,
		   const uint32_t *nums, size_t n)
{
	(void)buf_append_str(b, "* ESEARCH (TAG ");
	(void)imap_write_string(b, cmd->tag, strlen(cmd->tag));
	(void)buf_append_byte(b, ')');
	if (cmd->uid)
		(void)buf_append_str(b, " UID");
	if ((opts & IMAP_ESEARCH_MIN) && n > 0)
		(void)buf_printf(b, " MIN %u", nums[0]);
	if ((opts & IMAP_ESEARCH_MAX) && n > 0)
		(void)buf_printf(b, " MAX %u", nums[n - 1]);
	if (opts & IMAP_ESEARCH_COUNT)
		(void)buf_printf(b, " COUNT %zu", n);
	if ((opts & IMAP_ESEARCH_ALL) && n > 0) {
		(void)buf_append_str(b, " ALL ");
		(void)imap_seqset_write(b, nums, n);
	}
}

/* " <n>": a printf per number was about 6 % of the samples of a SEARCH
   that matched 100,000 messages (perf). */
static int
imap_search_append_num(struct buf *b, uint32_t v)
{
	char tmp[11];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	tmp[--i] = ' ';
	return buf_append(b, tmp + i, sizeof(tmp) - i);
}

/* RFC 4731 3.2: with MIN and/or MAX only, the MODSEQ is the highest of
   the messages returned, not of every match. */
static uint64_t
imap_search_minmax_modseq(const struct imap_view *v, const size_t *idx,
			  size_t n, unsigned opts)
{
	uint64_t lo = v->msgs[idx[0]].modseq, hi = v->msgs[idx[n - 1]].modseq;

	if (!(opts & IMAP_ESEARCH_MAX))
		return lo;
	if (!(opts & IMAP_ESEARCH_MIN))
		return hi;
	return lo > hi ? lo : hi;
}

static void
imap_search_output(struct imap_session *s, struct imap_cmd *cmd,
		   const size_t *idx, size_t n, unsigned opts, bool esearch,
		   bool modseq)
{
	struct imap_view *v = s->view;
	struct buf b;
	uint32_t *nums;
	uint64_t highest = 0;
	size_t i;

	nums = arena_alloc(cmd->arena, (n + 1) * sizeof(*nums));
	for (i = 0; i < n; i++) {
		nums[i] = cmd->uid ? v->msgs[idx[i]].uid : (uint32_t)idx[i] + 1;
		if (modseq && v->msgs[idx[i]].modseq > highest)
			highest = v->msgs[idx[i]].modseq;
	}
	if (modseq && esearch && n > 0 &&
	    !(opts & (IMAP_ESEARCH_ALL | IMAP_ESEARCH_COUNT)) &&
	    (opts & (IMAP_ESEARCH_MIN | IMAP_ESEARCH_MAX)))
		highest = imap_search_minmax_modseq(v, idx, n, opts);
	buf_init(&b, CONN_OUTPUT_MAX_BYTES / 2);
	if (!esearch) {
		(void)buf_append_str(&b, "* SEARCH");
		for (i = 0; i < n; i++)
			(void)imap_search_append_num(&b, nums[i]);
		if (highest > 0)
			(void)buf_printf(&b, " (MODSEQ %llu)",
					 (unsigned long long)highest);
	} else {
		imap_esearch_write(&b, cmd, opts, nums, n);
		if (highest > 0)
			(void)buf_printf(&b, " MODSEQ %llu",
					 (unsigned long long)highest);
	}
	(void)buf_append_str(&b, "\r\n");
	imap_session_write(s, b.data, b.len);
	buf_free(&b);
}

enum imap_cmd_res
imap_cmd_search(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *args = cmd->args;
	size_t argc = cmd->argc, *idx = NULL, n = 0;
	struct imap_search *se;
	const char *error = NULL;
	unsigned opts = 0;
	bool no, ret = false;

	if (argc >= 2 && imap_arg_is_atom(&args[0], "RETURN")) {
		if (args[1].type != IMAP_ARG_LIST ||
		    imap_search_return(&args[1], &opts) < 0) {
			imap_cmd_bad(cmd, "BAD Invalid RETURN options.");
			return IMAP_CMD_DONE;
		}
		ret = true;
		args += 2;
		argc -= 2;
	}
	se = imap_search_parse(s, cmd->arena, args, argc, &error, &no);
	if (se == NULL) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = !no;
		return IMAP_CMD_DONE;
	}
	if (imap_search_run(s, se, cmd->arena, &idx, &n) < 0) {
		log_error("imap", s->id, "search-failed error=%s",
			  store_last_error(s->env->store));
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	if (opts & IMAP_ESEARCH_SAVE)
		imap_search_save(s, idx, n, opts);
	if (!ret)
		opts = IMAP_ESEARCH_ALL;
	if (!ret || (opts & ~IMAP_ESEARCH_SAVE) != 0)
		imap_search_output(s, cmd, idx, n, opts, ret || s->rev2,
				   se->modseq);
	imap_cmd_ok(cmd, "OK Search completed.");
	return IMAP_CMD_DONE;
}
