/* Messages: rows of the messages table, each naming a blob. Delivery,
   APPEND and COPY share one insert path: quota check against the plan,
   a UID from the mailbox's UIDNEXT, a new MODSEQ (RFC 7162), a blob
   reference and the account's usage, all in one transaction so quota
   accounting stays exact. The parsed structure (ENVELOPE, BODYSTRUCTURE)
   is computed once per blob at delivery and kept in its blobs row.
   Expunged UIDs are remembered with their MODSEQ for QRESYNC (RFC 7162
   3.2.5). Keywords are a space-separated set without duplicates,
   compared case-insensitively (RFC 9051 2.3.2). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store_int.h"

#define STORE_MSG_FLAGS_ALL                                              \
	(STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED |   \
	 STORE_FLAG_DELETED | STORE_FLAG_DRAFT)
#define STORE_MSG_UID_MAX UINT32_MAX

#define STORE_MSG_SELECT                                                  \
	"SELECT m.id, m.uid, m.flags, m.keywords, m.modseq, m.size,"     \
	" m.internaldate, m.savedate, b.hash FROM messages m"            \
	" JOIN blobs b ON b.id = m.blob_id"

/* The mailbox columns the message functions need, read inside the
   transaction that changes it. */
struct store_msg_box {
	int64_t id, account_id;
	uint32_t uidnext;
};

/* A keyword set; the strings point into the caller's text. */
struct store_msg_kw {
	const char *p[STORE_KEYWORDS_MAX];
	size_t len[STORE_KEYWORDS_MAX];
	size_t n;
};

/* One source message of a COPY. */
struct store_msg_src {
	bool found;
	int64_t blob_id;
	uint32_t flags;
	char *keywords;
	uint64_t size;
	int64_t internaldate;
};

/* ---- freeing ---- */

void
store_msgs_free(struct store_msg *msgs, size_t count)
{
	if (msgs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(msgs[i].keywords);
	free(msgs);
}

void
store_msg_meta_clear(struct store_msg_meta *meta)
{
	free(meta->envelope);
	free(meta->bodystructure);
	free(meta->body);
	free(meta->message_id);
	free(meta->subject);
	free(meta->from);
	memset(meta, 0, sizeof(*meta));
	meta->date = -1;
}

/* ---- keywords ---- */

/* RFC 9051 flag-keyword = atom: no CTL, space, 8-bit or atom-specials. */
static bool
store_msg_kw_valid(const char *p, size_t len)
{
	if (len == 0 || len > STORE_KEYWORD_MAX_BYTES)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static long
store_msg_kw_find(const struct store_msg_kw *kw, const char *p, size_t len)
{
	for (size_t i = 0; i < kw->n; i++) {
		if (kw->len[i] == len && strncasecmp(kw->p[i], p, len) == 0)
			return (long)i;
	}
	return -1;
}

static int
store_msg_kw_add(struct store *s, struct store_msg_kw *kw, const char *p,
		 size_t len)
{
	if (store_msg_kw_find(kw, p, len) >= 0)
		return STORE_OK;
	if (kw->n >= STORE_KEYWORDS_MAX)
		return store_fail(s, STORE_INVALID, "more than %d keywords",
				  STORE_KEYWORDS_MAX);
	kw->p[kw->n] = p;
	kw->len[kw->n] = len;
	kw->n++;
	return STORE_OK;
}

static void
store_msg_kw_remove(struct store_msg_kw *kw, const char *p, size_t len)
{
	long i = store_msg_kw_find(kw, p, len);

	if (i < 0)
		return;
	for (size_t j = (size_t)i + 1; j < kw->n; j++) {
		kw->p[j - 1] = kw->p[j];
		kw->len[j - 1] = kw->len[j];
	}
	kw->n--;
}

/* Add the keywords of text (space-separated, may be NULL) to kw. */
static int
store_msg_kw_parse(struct store *s, const char *text, struct store_msg_kw *kw)
{
	const char *p = text, *end;
	int ret;

	while (p != NULL && *p != '\0') {
		if (*p == ' ') {
			p++;
			continue;
		}
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		if (!store_msg_kw_valid(p, (size_t)(end - p)))
			return store_fail(s, STORE_INVALID, "invalid keyword");
		ret = store_msg_kw_add(s, kw, p, (size_t)(end - p));
		if (ret != STORE_OK)
			return ret;
		p = end;
	}
	return STORE_OK;
}

/* The normalised text of kw, xmalloc'd, or NULL when empty. */
static char *
store_msg_kw_string(const struct store_msg_kw *kw)
{
	size_t len = 0, off = 0;
	char *str;

	if (kw->n == 0)
		return NULL;
	for (size_t i = 0; i < kw->n; i++)
		len += kw->len[i] + 1;
	str = xmalloc(len);
	for (size_t i = 0; i < kw->n; i++) {
		if (i > 0)
			str[off++] = ' ';
		memcpy(str + off, kw->p[i], kw->len[i]);
		off += kw->len[i];
	}
	str[off] = '\0';
	return str;
}

/* Normalise caller-supplied keywords: *text_r xmalloc'd or NULL. */
static int
store_msg_kw_normalize(struct store *s, const char *text, char **text_r)
{
	struct store_msg_kw kw = { .n = 0 };
	int ret;

	*text_r = NULL;
	ret = store_msg_kw_parse(s, text, &kw);
	if (ret == STORE_OK)
		*text_r = store_msg_kw_string(&kw);
	return ret;
}

/* ---- reading ---- */

static void
store_msg_from_row(sqlite3_stmt *st, struct store_msg *m)
{
	const unsigned char *hash;

	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 0);
	m->uid = (uint32_t)sqlite3_column_int64(st, 1);
	m->flags = (uint32_t)sqlite3_column_int64(st, 2);
	m->keywords = store_col_strdup(st, 3);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 4);
	m->size = (uint64_t)sqlite3_column_int64(st, 5);
	m->internaldate = sqlite3_column_int64(st, 6);
	m->savedate = sqlite3_column_int64(st, 7);
	hash = sqlite3_column_text(st, 8);
	if (hash != NULL && store_hash_valid((const char *)hash))
		memcpy(m->blob, hash, STORE_HASH_HEX_LEN);
	m->blob[STORE_HASH_HEX_LEN] = '\0';
}

typedef void store_msg_row_fn(sqlite3_stmt *st, struct store_msg *m);

/* Step st (bound, returning the columns row reads) into an array. */
static int
store_msg_collect(struct store *s, sqlite3_stmt *st, store_msg_row_fn *row,
		  struct store_msg **msgs_r, size_t *count_r)
{
	struct store_msg *msgs = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		msgs = store_grow(msgs, &cap, n, sizeof(*msgs));
		row(st, &msgs[n++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_msgs_free(msgs, n);
		return store_sql_err(s, rc);
	}
	*msgs_r = msgs;
	*count_r = n;
	return STORE_OK;
}

int
store_msg_list(struct store *s, int64_t mailbox_id, uint32_t uid_min,
	       struct store_msg **msgs_r, size_t *count_r)
{
	return store_msg_list_range(s, mailbox_id, uid_min, UINT32_MAX,
				    msgs_r, count_r);
}

int
store_msg_list_range(struct store *s, int64_t mailbox_id, uint32_t uid_min,
		     uint32_t uid_max, struct store_msg **msgs_r,
		     size_t *count_r)
{
	sqlite3_stmt *st;

	*msgs_r = NULL;
	*count_r = 0;
	st = store_stmt(s, STORE_MSG_SELECT
			" WHERE m.mailbox_id = ? AND m.uid >= ? AND m.uid <= ?"
			" ORDER BY m.uid");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid_min);
	sqlite3_bind_int64(st, 3, uid_max);
	return store_msg_collect(s, st, store_msg_from_row, msgs_r, count_r);
}

int
store_msg_list_view(struct store *s, int64_t mailbox_id, uint32_t uid_min,
		    store_msg_view_fn *fn, void *ctx)
{
	struct store_view_msg m;
	sqlite3_stmt *st;
	int rc, ret = STORE_OK;

	/* Answered from the covering index messages_view (schema step 7):
	   one pass over the index in (mailbox_id, uid) order, no lookup
	   of the table row per message, and no copy of a row struct. */
	st = store_stmt(s, "SELECT uid, flags, modseq, keywords"
			   " FROM messages WHERE mailbox_id = ? AND uid >= ?"
			   " ORDER BY uid");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid_min);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		m.uid = (uint32_t)sqlite3_column_int64(st, 0);
		m.flags = (uint32_t)sqlite3_column_int64(st, 1);
		m.modseq = (uint64_t)sqlite3_column_int64(st, 2);
		m.keywords = (const char *)sqlite3_column_text(st, 3);
		if (fn(ctx, &m) < 0) {
			ret = STORE_ERR;
			break;
		}
	}
	sqlite3_reset(st);
	if (ret != STORE_OK)
		return store_fail(s, ret, "view callback failed");
	return rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
}

static int
store_msg_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorted here: with ORDER BY uid SQLite (no statistics) walks every
   expunged row of the mailbox in primary key order instead of the
   modseq range, 25 ms for a mailbox with 200,000 expunges behind it at
   every sync after a change (0.1 ms through the index). */
int
store_msg_expunged_list(struct store *s, int64_t mailbox_id, uint64_t since,
			uint32_t **uids_r, size_t *count_r)
{
	sqlite3_stmt *st;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	int rc;

	st = store_stmt(s, "SELECT uid FROM expunged"
			   " INDEXED BY expunged_modseq"
			   " WHERE mailbox_id = ? AND modseq > ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (int64_t)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uids = store_grow(uids, &cap, n, sizeof(*uids));
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(uids);
		return store_sql_err(s, rc);
	}
	if (n > 1)
		qsort(uids, n, sizeof(*uids), store_msg_uid_cmp);
	*uids_r = uids;
	*count_r = n;
	return STORE_OK;
}

int
store_msg_changes(struct store *s, int64_t mailbox_id, uint64_t since_modseq,
		  struct store_msg **msgs_r, size_t *count_r,
		  uint32_t **expunged_r, size_t *expunged_count_r)
{
	sqlite3_stmt *st;
	bool started;
	int ret;

	*msgs_r = NULL;
	*count_r = 0;
	*expunged_r = NULL;
	*expunged_count_r = 0;
	/* One snapshot: a message is either listed or expunged, not both. */
	if (store_read_begin(s, &started) != STORE_OK)
		return STORE_ERR;
	st = store_stmt(s, STORE_MSG_SELECT
			" WHERE m.mailbox_id = ? AND m.modseq > ?"
			" ORDER BY m.uid");
	ret = st == NULL ? STORE_ERR : STORE_OK;
	if (ret == STORE_OK) {
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, (int64_t)since_modseq);
		ret = store_msg_collect(s, st, store_msg_from_row, msgs_r,
					count_r);
	}
	if (ret == STORE_OK)
		ret = store_msg_expunged_list(s, mailbox_id, since_modseq,
					      expunged_r, expunged_count_r);
	store_read_end(s, started);
	if (ret != STORE_OK) {
		store_msgs_free(*msgs_r, *count_r);
		*msgs_r = NULL;
		*count_r = 0;
	}
	return ret;
}

int
store_msg_sync(struct store *s, int64_t mailbox_id, uint64_t since_modseq,
	       struct store_mailbox *box_r, struct store_msg **msgs_r,
	       size_t *count_r, uint32_t **expunged_r,
	       size_t *expunged_count_r)
{
	bool started;
	int r;

	*msgs_r = NULL;
	*count_r = 0;
	*expunged_r = NULL;
	*expunged_count_r = 0;
	/* one read transaction: the row and the changes of one moment, and
	   one lock taken instead of two for each sync that has to look */
	if (store_read_begin(s, &started) != STORE_OK)
		return -1;
	r = store_mailbox_get_by_id(s, mailbox_id, box_r);
	if (r == 1 && box_r->highestmodseq != since_modseq &&
	    store_msg_changes(s, mailbox_id, since_modseq, msgs_r, count_r,
			      expunged_r, expunged_count_r) != STORE_OK) {
		store_mailbox_clear(box_r);
		r = -1;
	}
	store_read_end(s, started);
	return r;
}

int
store_msg_vanished(struct store *s, int64_t mailbox_id, uint64_t since_modseq,
		   uint32_t **uids_r, size_t *count_r)
{
	*uids_r = NULL;
	*count_r = 0;
	return store_msg_expunged_list(s, mailbox_id, since_modseq, uids_r,
				       count_r);
}

int
store_msg_meta(struct store *s, const char *blob, struct store_msg_meta *meta_r)
{
	sqlite3_stmt *st;
	int rc, found = 0;

	memset(meta_r, 0, sizeof(*meta_r));
	meta_r->date = -1;
	if (!store_hash_valid(blob))
		return 0;
	st = store_stmt(s, "SELECT envelope, bodystructure, body, message_id,"
			   " subject, from_addr, date, header_len, lines"
			   " FROM blobs WHERE hash = ? AND has_meta = 1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, blob, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		meta_r->envelope = store_col_strdup(st, 0);
		meta_r->bodystructure = store_col_strdup(st, 1);
		meta_r->body = store_col_strdup(st, 2);
		meta_r->message_id = store_col_strdup(st, 3);
		meta_r->subject = store_col_strdup(st, 4);
		meta_r->from = store_col_strdup(st, 5);
		if (sqlite3_column_type(st, 6) != SQLITE_NULL)
			meta_r->date = sqlite3_column_int64(st, 6);
		meta_r->header_len = (uint32_t)sqlite3_column_int64(st, 7);
		meta_r->lines = (uint32_t)sqlite3_column_int64(st, 8);
		found = 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	return found;
}

/* ---- parsed structure, once per blob ---- */

static int
store_msg_meta_save(struct store *s, int64_t blob_id,
		    const struct mime_info *info)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "UPDATE blobs SET envelope = ?, bodystructure = ?,"
			   " body = ?, message_id = ?, subject = ?,"
			   " from_addr = ?, date = ?, header_len = ?,"
			   " lines = ?, has_meta = 1, sort_keys = 1"
			   " WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, info->envelope, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, info->bodystructure, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, info->body, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, info->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, info->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, info->from, -1, SQLITE_STATIC);
	if (info->date >= 0)
		sqlite3_bind_int64(st, 7, info->date);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int64(st, 8, (int64_t)info->header_len);
	sqlite3_bind_int64(st, 9, info->lines);
	sqlite3_bind_int64(st, 10, blob_id);
	return store_stmt_exec(s, st);
}

static int
store_msg_has_meta(struct store *s, int64_t blob_id, bool *has_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT has_meta FROM blobs WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
	rc = sqlite3_step(st);
	*has_r = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_ERR, "no blob row %lld",
				  (long long)blob_id);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

static _Atomic uint64_t store_msg_parsed;

uint64_t
store_msg_parsed_in_tx(void)
{
	return store_msg_parsed;
}

/* The structure of hash parsed by the blob stage for the job that runs
   on this (the commit thread's) store, or NULL. A job's blobs are
   looked up in their order, so the search starts where the last one
   was found. */
static const struct mime_info *
store_msg_meta_ahead(struct store *s, const char *hash)
{
	for (size_t k = 0; k < s->ahead_n; k++) {
		size_t i = (s->ahead_pos + k) % s->ahead_n;

		if (s->ahead[i].info != NULL &&
		    strcmp(s->ahead[i].hash, hash) == 0) {
			s->ahead_pos = i + 1;
			return s->ahead[i].info;
		}
	}
	return NULL;
}

/* The sort row first, then both flags in the one UPDATE of the row: the
   blob never shows up in blobs_sort_pending (sort_keys = 0 AND has_meta
   = 1), whose page a commit otherwise wrote for nothing, and the row is
   written once, not twice. */
static int
store_msg_meta_save_all(struct store *s, int64_t blob_id,
			const struct mime_info *info)
{
	int ret = store_sort_keys_row(s, blob_id, info->date, &info->sort);

	if (ret == STORE_OK)
		ret = store_msg_meta_save(s, blob_id, info);
	return ret;
}

/* Inside a write transaction: make sure the blobs row of hash carries
   the parsed structure. The commit thread's jobs bring it parsed (the
   blob stage did it, before the batch took the write lock); otherwise
   it is parsed here, holding the lock for the parse (once per blob). */
static int
store_msg_meta_ensure(struct store *s, const char *hash, int64_t blob_id)
{
	static const uint8_t empty[1];
	const struct mime_info *ahead;
	struct store_map map;
	struct mime_info info;
	bool has;
	int ret;

	ret = store_msg_has_meta(s, blob_id, &has);
	if (ret != STORE_OK || has)
		return ret;
	ahead = s->fts_hints ? store_msg_meta_ahead(s, hash) : NULL;
	if (ahead != NULL) {
		/* the text is read for the index after the COMMIT */
		store_fts_add(s, blob_id, hash);
		return store_msg_meta_save_all(s, blob_id, ahead);
	}
	store_msg_parsed++;
	ret = store_blob_map(s, hash, &map);
	if (ret != STORE_OK)
		return ret;
	if (mime_info_parse(map.data != NULL ? map.data : empty, map.len,
			    &info) < 0) {
		store_blob_unmap(&map);
		return store_fail(s, STORE_ERR, "cannot parse blob %s", hash);
	}
	store_blob_unmap(&map);
	store_fts_add(s, blob_id, hash);
	ret = store_msg_meta_save_all(s, blob_id, &info);
	mime_info_free(&info);
	return ret;
}

/* ---- mailboxes, quota and usage (inside write transactions) ---- */

static int
store_msg_box_get(struct store *s, int64_t mailbox_id,
		  struct store_msg_box *box_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT account_id, uidnext FROM mailboxes"
			   " WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		box_r->id = mailbox_id;
		box_r->account_id = sqlite3_column_int64(st, 0);
		box_r->uidnext = (uint32_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no mailbox %lld",
				  (long long)mailbox_id);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

/* Mailbox `name` of an account (NULL = INBOX). */
static int
store_msg_box_by_name(struct store *s, int64_t account_id, const char *name,
		      struct store_msg_box *box_r)
{
	sqlite3_stmt *st;
	const char *error;
	char *norm;
	int rc;

	norm = store_mailbox_name_normalize(name != NULL ? name : "INBOX",
					    &error);
	if (norm == NULL)
		return store_fail(s, STORE_NOTFOUND, "bad mailbox name: %s",
				  error != NULL ? error : "?");
	st = store_stmt(s, "SELECT id, uidnext FROM mailboxes"
			   " WHERE account_id = ? AND name = ?");
	if (st == NULL) {
		free(norm);
		return STORE_ERR;
	}
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, norm, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		box_r->id = sqlite3_column_int64(st, 0);
		box_r->account_id = account_id;
		box_r->uidnext = (uint32_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	free(norm);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no such mailbox");
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

static bool
store_msg_over(uint64_t used, uint64_t add, uint64_t limit)
{
	if (limit == 0 || add == 0)
		return false;
	return used > limit || add > limit - used;
}

/* STORE_OVERQUOTA when adding bytes/messages exceeds the plan. */
static int
store_msg_quota_check(struct store *s, int64_t account_id, uint64_t bytes,
		      uint64_t messages)
{
	sqlite3_stmt *st;
	uint64_t used_b = 0, used_m = 0, lim_b = 0, lim_m = 0;
	int rc;

	st = store_stmt(s, "SELECT a.used_bytes, a.used_messages,"
			   " p.quota_bytes, p.quota_messages FROM accounts a"
			   " JOIN plans p ON p.name = a.plan WHERE a.id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		used_b = (uint64_t)sqlite3_column_int64(st, 0);
		used_m = (uint64_t)sqlite3_column_int64(st, 1);
		lim_b = (uint64_t)sqlite3_column_int64(st, 2);
		lim_m = (uint64_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no account %lld",
				  (long long)account_id);
	if (rc != SQLITE_ROW)
		return store_sql_err(s, rc);
	if (store_msg_over(used_b, bytes, lim_b) ||
	    store_msg_over(used_m, messages, lim_m))
		return store_fail(s, STORE_OVERQUOTA, "quota exceeded");
	return STORE_OK;
}

/* Add (or with negative deltas release) usage; never below zero. */
static int
store_msg_usage(struct store *s, int64_t account_id, int64_t bytes,
		int64_t messages)
{
	sqlite3_stmt *st;

	if (bytes == 0 && messages == 0)
		return STORE_OK;
	st = store_stmt(s, "UPDATE accounts"
			   " SET used_bytes = MAX(used_bytes + ?, 0),"
			   " used_messages = MAX(used_messages + ?, 0)"
			   " WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, bytes);
	sqlite3_bind_int64(st, 2, messages);
	sqlite3_bind_int64(st, 3, account_id);
	return store_stmt_exec(s, st);
}

/* Reserve n consecutive UIDs from box's UIDNEXT; *first_r the first. */
static int
store_msg_uids_take(struct store *s, struct store_msg_box *box, size_t n,
		    uint32_t *first_r)
{
	sqlite3_stmt *st;
	int ret;

	if (box->uidnext == 0 || n > STORE_MSG_UID_MAX - box->uidnext)
		return store_fail(s, STORE_INVALID, "mailbox UIDs exhausted");
	st = store_stmt(s, "UPDATE mailboxes SET uidnext = ? WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, (int64_t)box->uidnext + (int64_t)n);
	sqlite3_bind_int64(st, 2, box->id);
	ret = store_stmt_exec(s, st);
	if (ret != STORE_OK)
		return ret;
	*first_r = box->uidnext;
	box->uidnext += (uint32_t)n;
	return STORE_OK;
}

/* ---- inserting (inside write transactions) ---- */

struct store_msg_new {
	int64_t blob_id;
	uint64_t size;
	uint32_t flags;
	const char *keywords; /* normalised, or NULL */
	int64_t internaldate;
	uint32_t uid;
	uint64_t modseq;
};

/* Insert one message row with its uid/modseq already chosen; takes a
   blob reference, counts the usage and queues the notification. */
static int
store_msg_insert(struct store *s, const struct store_msg_box *box,
		 const struct store_msg_new *m)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "INSERT INTO messages(mailbox_id, uid, blob_id,"
			   " flags, keywords, modseq, size, internaldate,"
			   " savedate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, m->uid);
	sqlite3_bind_int64(st, 3, m->blob_id);
	sqlite3_bind_int64(st, 4, m->flags & STORE_MSG_FLAGS_ALL);
	sqlite3_bind_text(st, 5, m->keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)m->modseq);
	sqlite3_bind_int64(st, 7, (int64_t)m->size);
	sqlite3_bind_int64(st, 8, m->internaldate);
	sqlite3_bind_int64(st, 9, store_now());
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK)
		ret = store_blob_ref(s, m->blob_id, 1);
	if (ret == STORE_OK)
		ret = store_msg_usage(s, box->account_id, (int64_t)m->size, 1);
	if (ret == STORE_OK)
		store_event_add(s, box->account_id, box->id, m->modseq);
	return ret;
}

/* The shared path of delivery and APPEND: blob row and structure, quota,
   UID, MODSEQ, row. m->blob_id/size/uid/modseq are filled in. */
static int
store_msg_add_blob(struct store *s, struct store_msg_box *box,
		   const char *hash, struct store_msg_new *m)
{
	int ret;

	ret = store_blob_row(s, hash, &m->blob_id, &m->size);
	if (ret == STORE_OK)
		ret = store_msg_meta_ensure(s, hash, m->blob_id);
	if (ret == STORE_OK)
		ret = store_msg_quota_check(s, box->account_id, m->size, 1);
	if (ret == STORE_OK)
		ret = store_msg_uids_take(s, box, 1, &m->uid);
	if (ret == STORE_OK)
		ret = store_mailbox_bump_modseq(s, box->id, &m->modseq);
	if (ret == STORE_OK)
		ret = store_msg_insert(s, box, m);
	return ret;
}

/* ---- delivery ---- */

/* An earlier entry for the same account and mailbox (the message is
   delivered to it once), or NULL. */
static const struct store_delivery *
store_msg_delivery_dup(const struct store_delivery *d, size_t i)
{
	for (size_t j = 0; j < i; j++) {
		if (d[j].account_id != d[i].account_id)
			continue;
		if (d[j].mailbox == NULL && d[i].mailbox == NULL)
			return &d[j];
		if (d[j].mailbox != NULL && d[i].mailbox != NULL &&
		    strcmp(d[j].mailbox, d[i].mailbox) == 0)
			return &d[j];
	}
	return NULL;
}

static int
store_msg_deliver_one_tx(struct store *s, const char *blob,
			 int64_t internaldate, struct store_delivery *d)
{
	struct store_msg_box box;
	struct store_msg_new m = { .flags = d->flags,
				   .internaldate = internaldate };
	int ret;

	ret = store_msg_box_by_name(s, d->account_id, d->mailbox, &box);
	if (ret == STORE_OK)
		ret = store_msg_add_blob(s, &box, blob, &m);
	if (ret != STORE_OK)
		return ret;
	d->mailbox_id = box.id;
	d->uid = m.uid;
	d->modseq = m.modseq;
	return STORE_OK;
}

/* One entry in its own savepoint. Returns an error only when the whole
   delivery must fail; per-recipient outcomes go to d->result. */
static int
store_msg_deliver_one(struct store *s, const char *blob, int64_t internaldate,
		      struct store_delivery *d)
{
	struct store_tx tx;
	int ret;

	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	ret = store_msg_deliver_one_tx(s, blob, internaldate, d);
	if (ret == STORE_OK)
		ret = store_tx_commit(s, &tx);
	else
		store_tx_rollback(s, &tx);
	d->result = ret;
	if (ret == STORE_OVERQUOTA || ret == STORE_NOTFOUND ||
	    ret == STORE_INVALID) {
		d->mailbox_id = 0;
		d->uid = 0;
		d->modseq = 0;
		return STORE_OK;
	}
	return ret;
}

static int
store_msg_deliver_tx(struct store *s, const char *blob, int64_t internaldate,
		     struct store_delivery *d, size_t count)
{
	const struct store_delivery *dup;
	int64_t blob_id;
	uint64_t size;
	size_t delivered = 0;
	int ret;

	/* Structure first, once; failing here fails every entry. */
	ret = store_blob_row(s, blob, &blob_id, &size);
	if (ret == STORE_OK)
		ret = store_msg_meta_ensure(s, blob, blob_id);
	for (size_t i = 0; ret == STORE_OK && i < count; i++) {
		dup = store_msg_delivery_dup(d, i);
		if (dup != NULL) {
			d[i].result = dup->result;
			d[i].mailbox_id = dup->mailbox_id;
			d[i].uid = dup->uid;
			d[i].modseq = dup->modseq;
			continue;
		}
		ret = store_msg_deliver_one(s, blob, internaldate, &d[i]);
		if (ret == STORE_OK && d[i].result == STORE_OK)
			delivered++;
	}
	/* Nobody took the blob: let the collector remove a new row. */
	if (ret == STORE_OK && delivered == 0)
		ret = store_blob_ref(s, blob_id, 0);
	return ret;
}

int
store_deliver(struct store *s, const char *blob, int64_t internaldate,
	      struct store_delivery *deliveries, size_t count)
{
	struct store_tx tx;
	int ret;

	for (size_t i = 0; i < count; i++) {
		deliveries[i].result = STORE_ERR;
		deliveries[i].mailbox_id = 0;
		deliveries[i].uid = 0;
		deliveries[i].modseq = 0;
	}
	if (count == 0)
		return STORE_OK;
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	ret = store_msg_deliver_tx(s, blob, internaldate, deliveries, count);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}

/* ---- APPEND ---- */

static int
store_msg_append_tx(struct store *s, int64_t mailbox_id, const char *blob,
		    struct store_msg_new *m)
{
	struct store_msg_box box;
	int ret;

	ret = store_msg_box_get(s, mailbox_id, &box);
	if (ret == STORE_OK)
		ret = store_msg_add_blob(s, &box, blob, m);
	return ret;
}

int
store_msg_append(struct store *s, int64_t mailbox_id, const char *blob,
		 uint32_t flags, const char *keywords, int64_t internaldate,
		 uint32_t *uid_r)
{
	struct store_msg_new m = { .flags = flags,
				   .internaldate = internaldate };
	struct store_tx tx;
	char *kw;
	int ret;

	ret = store_msg_kw_normalize(s, keywords, &kw);
	if (ret != STORE_OK)
		return ret;
	m.keywords = kw;
	ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_msg_append_tx(s, mailbox_id, blob, &m);
		if (ret == STORE_OK)
			ret = store_tx_commit(s, &tx);
		else
			store_tx_rollback(s, &tx);
	}
	free(kw);
	if (ret == STORE_OK && uid_r != NULL)
		*uid_r = m.uid;
	return ret;
}

/* ---- flags ---- */

/* What STORE does to one message. */
struct store_msg_flag_op {
	enum store_flag_op op;
	uint32_t flags;
	const char *keywords; /* the caller's text */
	struct store_msg_kw kw; /* parsed from it */
};

/* New flags and keywords of a message; *kw_r xmalloc'd or NULL. */
static int
store_msg_flags_apply(struct store *s, const struct store_msg_flag_op *fo,
		      uint32_t *flags, const char *old_kw, char **kw_r)
{
	struct store_msg_kw kw = { .n = 0 };
	int ret = STORE_OK;

	*kw_r = NULL;
	switch (fo->op) {
	case STORE_FLAGS_SET:
		*flags = fo->flags;
		*kw_r = store_msg_kw_string(&fo->kw);
		return STORE_OK;
	case STORE_FLAGS_ADD:
		*flags |= fo->flags;
		ret = store_msg_kw_parse(s, old_kw, &kw);
		for (size_t i = 0; ret == STORE_OK && i < fo->kw.n; i++)
			ret = store_msg_kw_add(s, &kw, fo->kw.p[i],
					       fo->kw.len[i]);
		break;
	case STORE_FLAGS_REMOVE:
		*flags &= ~fo->flags;
		ret = store_msg_kw_parse(s, old_kw, &kw);
		for (size_t i = 0; i < fo->kw.n; i++)
			store_msg_kw_remove(&kw, fo->kw.p[i], fo->kw.len[i]);
		break;
	}
	if (ret == STORE_OK)
		*kw_r = store_msg_kw_string(&kw);
	return ret;
}

static bool
store_msg_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Mailbox-wide state of one STORE command. */
struct store_msg_flag_run {
	struct store_msg_box box;
	uint64_t unchangedsince;
	uint64_t modseq;	/* 0 until the first change */
	uint32_t *modified;
	size_t modified_count;
};

static int
store_msg_flags_write(struct store *s, struct store_msg_flag_run *run,
		      int64_t id, uint32_t flags, const char *kw)
{
	sqlite3_stmt *st;
	int ret;

	/* RFC 7162 3.1.3: one new MODSEQ for the whole command is enough. */
	if (run->modseq == 0) {
		ret = store_mailbox_bump_modseq(s, run->box.id, &run->modseq);
		if (ret != STORE_OK)
			return ret;
	}
	st = store_stmt(s, "UPDATE messages SET flags = ?, keywords = ?,"
			   " modseq = ? WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, flags);
	sqlite3_bind_text(st, 2, kw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)run->modseq);
	sqlite3_bind_int64(st, 4, id);
	return store_stmt_exec(s, st);
}

/* Read one message's id, flags, keywords (xmalloc'd) and modseq;
   1 found, 0 missing, or an error. */
static int
store_msg_flags_read(struct store *s, int64_t mailbox_id, uint32_t uid,
		     int64_t *id_r, uint32_t *flags_r, char **kw_r,
		     uint64_t *modseq_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT id, flags, keywords, modseq FROM messages"
			   " WHERE mailbox_id = ? AND uid = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(st, 0);
		*flags_r = (uint32_t)sqlite3_column_int64(st, 1);
		*kw_r = store_col_strdup(st, 2);
		*modseq_r = (uint64_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	return rc == SQLITE_ROW ? 1 : 0;
}

static int
store_msg_flags_one(struct store *s, struct store_msg_flag_run *run,
		    const struct store_msg_flag_op *fo, uint32_t uid)
{
	int64_t id = 0;
	uint32_t flags = 0, new_flags;
	uint64_t modseq = 0;
	char *old_kw = NULL, *new_kw = NULL;
	int ret;

	ret = store_msg_flags_read(s, run->box.id, uid, &id, &flags, &old_kw,
				   &modseq);
	if (ret <= 0)
		return ret;
	if (run->unchangedsince != 0 && modseq > run->unchangedsince) {
		/* RFC 7162 3.1.3: not changed, reported as MODIFIED. */
		run->modified[run->modified_count++] = uid;
		free(old_kw);
		return STORE_OK;
	}
	new_flags = flags;
	ret = store_msg_flags_apply(s, fo, &new_flags, old_kw, &new_kw);
	new_flags &= STORE_MSG_FLAGS_ALL;
	if (ret == STORE_OK &&
	    (new_flags != flags || !store_msg_str_eq(new_kw, old_kw)))
		ret = store_msg_flags_write(s, run, id, new_flags, new_kw);
	free(old_kw);
	free(new_kw);
	return ret;
}

static int
store_msg_highestmodseq(struct store *s, int64_t mailbox_id,
			uint64_t *modseq_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT highestmodseq FROM mailboxes WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no mailbox %lld",
				  (long long)mailbox_id);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

static int
store_msg_flags_tx(struct store *s, int64_t mailbox_id, const uint32_t *uids,
		   size_t count, const struct store_msg_flag_op *fo,
		   struct store_msg_flag_run *run, uint64_t *modseq_r)
{
	int ret;

	ret = store_msg_box_get(s, mailbox_id, &run->box);
	for (size_t i = 0; ret == STORE_OK && i < count; i++)
		ret = store_msg_flags_one(s, run, fo, uids[i]);
	if (ret != STORE_OK)
		return ret;
	if (run->modseq != 0) {
		store_event_add(s, run->box.account_id, mailbox_id,
				run->modseq);
		*modseq_r = run->modseq;
		return STORE_OK;
	}
	return store_msg_highestmodseq(s, mailbox_id, modseq_r);
}

int
store_msg_set_flags(struct store *s, int64_t mailbox_id, const uint32_t *uids,
		    size_t count, enum store_flag_op op, uint32_t flags,
		    const char *keywords, uint64_t unchangedsince,
		    uint64_t *modseq_r, uint32_t **modified_r,
		    size_t *modified_count_r)
{
	struct store_msg_flag_op fo = { .op = op,
					.flags = flags & STORE_MSG_FLAGS_ALL,
					.keywords = keywords };
	struct store_msg_flag_run run = { .unchangedsince = unchangedsince };
	struct store_tx tx;
	uint64_t modseq = 0;
	int ret;

	if (modified_r != NULL)
		*modified_r = NULL;
	if (modified_count_r != NULL)
		*modified_count_r = 0;
	ret = store_msg_kw_parse(s, keywords, &fo.kw);
	if (ret != STORE_OK)
		return ret;
	run.modified = xcalloc(count > 0 ? count : 1, sizeof(*run.modified));
	ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_msg_flags_tx(s, mailbox_id, uids, count, &fo, &run,
					 &modseq);
		if (ret == STORE_OK)
			ret = store_tx_commit(s, &tx);
		else
			store_tx_rollback(s, &tx);
	}
	if (ret == STORE_OK && modseq_r != NULL)
		*modseq_r = modseq;
	if (ret == STORE_OK && modified_r != NULL && run.modified_count > 0) {
		*modified_r = run.modified;
		*modified_count_r = run.modified_count;
		run.modified = NULL;
	}
	free(run.modified);
	return ret;
}

/* ---- expunge (inside write transactions) ---- */

/* Remove one message when it has every flag of need; *modseq is bumped
   on the first removal. Usage is accumulated in bytes/messages for one
   update at the end. */
static int
store_msg_expunge_one(struct store *s, const struct store_msg_box *box,
		      uint32_t uid, uint32_t need, uint64_t *modseq,
		      uint64_t *bytes, uint64_t *messages)
{
	sqlite3_stmt *st;
	int64_t blob_id = 0;
	uint64_t size = 0;
	int rc, ret;

	st = store_stmt(s, "DELETE FROM messages WHERE mailbox_id = ?1"
			   " AND uid = ?2 AND (flags & ?3) = ?3"
			   " RETURNING blob_id, size");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, need);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		blob_id = sqlite3_column_int64(st, 0);
		size = (uint64_t)sqlite3_column_int64(st, 1);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	if (blob_id == 0)
		return STORE_OK; /* not there: skipped */
	if (*modseq == 0) {
		ret = store_mailbox_bump_modseq(s, box->id, modseq);
		if (ret != STORE_OK)
			return ret;
	}
	st = store_stmt(s, "INSERT OR REPLACE INTO expunged(mailbox_id, uid,"
			   " modseq) VALUES (?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (int64_t)*modseq);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK)
		ret = store_blob_ref(s, blob_id, -1);
	*bytes += size;
	(*messages)++;
	return ret;
}

/* Expunge those of uids of box that have the flags need; *modseq_r is
   the new MODSEQ, or 0 when nothing was there. */
static int
store_msg_expunge_tx(struct store *s, const struct store_msg_box *box,
		     const uint32_t *uids, size_t count, uint32_t need,
		     uint64_t *modseq_r)
{
	uint64_t modseq = 0, bytes = 0, messages = 0;
	int ret = STORE_OK;

	for (size_t i = 0; ret == STORE_OK && i < count; i++)
		ret = store_msg_expunge_one(s, box, uids[i], need, &modseq,
					    &bytes, &messages);
	if (ret == STORE_OK)
		ret = store_msg_usage(s, box->account_id, -(int64_t)bytes,
				      -(int64_t)messages);
	if (ret == STORE_OK && modseq != 0)
		store_event_add(s, box->account_id, box->id, modseq);
	*modseq_r = modseq;
	return ret;
}

static int
store_msg_expunge_box(struct store *s, int64_t mailbox_id,
		      const uint32_t *uids, size_t count, uint32_t need,
		      uint64_t *modseq_r)
{
	struct store_msg_box box;
	int ret;

	ret = store_msg_box_get(s, mailbox_id, &box);
	if (ret == STORE_OK)
		ret = store_msg_expunge_tx(s, &box, uids, count, need,
					   modseq_r);
	if (ret == STORE_OK && *modseq_r == 0)
		ret = store_msg_highestmodseq(s, mailbox_id, modseq_r);
	return ret;
}

static int
store_msg_expunge_if(struct store *s, int64_t mailbox_id,
		     const uint32_t *uids, size_t count, uint32_t need,
		     uint64_t *modseq_r)
{
	struct store_tx tx;
	uint64_t modseq = 0;
	int ret;

	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	ret = store_msg_expunge_box(s, mailbox_id, uids, count, need,
				    &modseq);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	ret = store_tx_commit(s, &tx);
	if (ret == STORE_OK && modseq_r != NULL)
		*modseq_r = modseq;
	return ret;
}

int
store_msg_expunge(struct store *s, int64_t mailbox_id, const uint32_t *uids,
		  size_t count, uint64_t *modseq_r)
{
	return store_msg_expunge_if(s, mailbox_id, uids, count, 0, modseq_r);
}

int
store_msg_expunge_deleted(struct store *s, int64_t mailbox_id,
			  const uint32_t *uids, size_t count,
			  uint64_t *modseq_r)
{
	return store_msg_expunge_if(s, mailbox_id, uids, count,
				    STORE_FLAG_DELETED, modseq_r);
}

/* ---- copy and move ---- */

static int
store_msg_src_read(struct store *s, int64_t mailbox_id, uint32_t uid,
		   struct store_msg_src *src)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT blob_id, flags, keywords, size,"
			   " internaldate FROM messages"
			   " WHERE mailbox_id = ? AND uid = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		src->found = true;
		src->blob_id = sqlite3_column_int64(st, 0);
		src->flags = (uint32_t)sqlite3_column_int64(st, 1);
		src->keywords = store_col_strdup(st, 2);
		src->size = (uint64_t)sqlite3_column_int64(st, 3);
		src->internaldate = sqlite3_column_int64(st, 4);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	return STORE_OK;
}

/* Read the source messages; *bytes_r and *found_r: what exists. */
static int
store_msg_src_load(struct store *s, int64_t mailbox_id, const uint32_t *uids,
		   size_t count, struct store_msg_src *srcs, uint64_t *bytes_r,
		   size_t *found_r)
{
	int ret = STORE_OK;

	*bytes_r = 0;
	*found_r = 0;
	for (size_t i = 0; ret == STORE_OK && i < count; i++) {
		ret = store_msg_src_read(s, mailbox_id, uids[i], &srcs[i]);
		if (ret == STORE_OK && srcs[i].found) {
			*bytes_r += srcs[i].size;
			(*found_r)++;
		}
	}
	return ret;
}

/* Insert the found sources into dst with consecutive new UIDs. */
static int
store_msg_copy_insert(struct store *s, struct store_msg_box *dst,
		      const struct store_msg_src *srcs, size_t count,
		      size_t found, uint32_t *new_uids)
{
	struct store_msg_new m;
	uint64_t modseq;
	uint32_t uid;
	int ret;

	ret = store_msg_uids_take(s, dst, found, &uid);
	if (ret == STORE_OK)
		ret = store_mailbox_bump_modseq(s, dst->id, &modseq);
	for (size_t i = 0; ret == STORE_OK && i < count; i++) {
		if (!srcs[i].found)
			continue;
		m = (struct store_msg_new){
			.blob_id = srcs[i].blob_id, .size = srcs[i].size,
			.flags = srcs[i].flags, .keywords = srcs[i].keywords,
			.internaldate = srcs[i].internaldate, .uid = uid,
			.modseq = modseq,
		};
		ret = store_msg_insert(s, dst, &m);
		new_uids[i] = uid++;
	}
	return ret;
}

static int
store_msg_copy_tx(struct store *s, int64_t src_id, const uint32_t *uids,
		  size_t count, int64_t dst_id, bool move,
		  struct store_msg_src *srcs, uint32_t *new_uids)
{
	struct store_msg_box src, dst;
	uint64_t bytes, modseq;
	size_t found;
	int ret;

	ret = store_msg_box_get(s, src_id, &src);
	if (ret == STORE_OK)
		ret = store_msg_box_get(s, dst_id, &dst);
	if (ret == STORE_OK)
		ret = store_msg_src_load(s, src_id, uids, count, srcs, &bytes,
					 &found);
	if (ret != STORE_OK || found == 0)
		return ret;
	/* A move inside one account leaves its usage as it was. */
	if (!move || src.account_id != dst.account_id)
		ret = store_msg_quota_check(s, dst.account_id, bytes, found);
	if (ret == STORE_OK)
		ret = store_msg_copy_insert(s, &dst, srcs, count, found,
					    new_uids);
	if (ret == STORE_OK && move)
		ret = store_msg_expunge_tx(s, &src, uids, count, 0, &modseq);
	return ret;
}

int
store_msg_copy(struct store *s, int64_t src_mailbox_id, const uint32_t *uids,
	       size_t count, int64_t dst_mailbox_id, bool move,
	       uint32_t **new_uids_r)
{
	struct store_msg_src *srcs;
	uint32_t *new_uids;
	struct store_tx tx;
	int ret;

	*new_uids_r = NULL;
	srcs = xcalloc(count > 0 ? count : 1, sizeof(*srcs));
	new_uids = xcalloc(count > 0 ? count : 1, sizeof(*new_uids));
	ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_msg_copy_tx(s, src_mailbox_id, uids, count,
					dst_mailbox_id, move, srcs, new_uids);
		if (ret == STORE_OK)
			ret = store_tx_commit(s, &tx);
		else
			store_tx_rollback(s, &tx);
	}
	for (size_t i = 0; i < count; i++)
		free(srcs[i].keywords);
	free(srcs);
	if (ret != STORE_OK) {
		free(new_uids);
		return ret;
	}
	*new_uids_r = new_uids;
	return STORE_OK;
}

/* ---- purge (inside a write transaction) ---- */

struct store_msg_blob_count {
	int64_t blob_id;
	int64_t refs;
};

/* The blobs referenced by the mailbox and how often. */
static int
store_msg_purge_blobs(struct store *s, int64_t mailbox_id,
		      struct store_msg_blob_count **items_r, size_t *count_r)
{
	struct store_msg_blob_count *items = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT blob_id, COUNT(*) FROM messages"
			   " WHERE mailbox_id = ? GROUP BY blob_id");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		items = store_grow(items, &cap, n, sizeof(*items));
		items[n].blob_id = sqlite3_column_int64(st, 0);
		items[n++].refs = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(items);
		return store_sql_err(s, rc);
	}
	*items_r = items;
	*count_r = n;
	return STORE_OK;
}

/* Delete the rows; *bytes_r and *messages_r: what they used. */
static int
store_msg_purge_rows(struct store *s, int64_t mailbox_id, int64_t *bytes_r,
		     int64_t *messages_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT COALESCE(SUM(size), 0), COUNT(*)"
			   " FROM messages WHERE mailbox_id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	*bytes_r = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	*messages_r = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_sql_err(s, rc);
	st = store_stmt(s, "DELETE FROM messages WHERE mailbox_id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	return store_stmt_exec(s, st);
}

int
store_msg_purge_mailbox(struct store *s, int64_t mailbox_id)
{
	struct store_msg_blob_count *items = NULL;
	struct store_msg_box box;
	size_t n = 0;
	int64_t bytes, messages;
	int ret;

	ret = store_msg_box_get(s, mailbox_id, &box);
	if (ret == STORE_OK)
		ret = store_msg_purge_blobs(s, mailbox_id, &items, &n);
	if (ret == STORE_OK)
		ret = store_msg_purge_rows(s, mailbox_id, &bytes, &messages);
	for (size_t i = 0; ret == STORE_OK && i < n; i++)
		ret = store_blob_ref(s, items[i].blob_id, -items[i].refs);
	if (ret == STORE_OK)
		ret = store_msg_usage(s, box.account_id, -bytes, -messages);
	free(items);
	return ret;
}
