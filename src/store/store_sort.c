/* The SORT and THREAD keys of messages (RFC 5256, RFC 5957): computed
   once per blob by mime_sort_keys_parse (from mime_info_parse, inside the
   delivery/APPEND transaction that parses the blob) and kept in the
   narrow table blob_sort (schema step 8), so SORT and THREAD read every
   key of a mailbox in one query instead of opening each message.

   Blobs stored before step 8 have sort_keys = 0: store_open fills them
   (store_msg_sort_backfill, in bounded transactions, each blob once),
   and store_msg_sort_keys computes the keys of any row still unfilled
   from the message itself, so results never depend on whether a blob
   was filled. */
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store_int.h"

/* Blobs filled per transaction by the backfill. */
#define STORE_SORT_BACKFILL_BATCH 500

static void
store_sort_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int
store_sort_keys_row(struct store *s, int64_t blob_id, int64_t date,
		    const struct mime_sort_keys *k)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "INSERT OR REPLACE INTO blob_sort(blob_id, date,"
			   " subject, reply, from_mbox, to_mbox, cc_mbox,"
			   " from_display, to_display, msgid, refs)"
			   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
	if (date >= 0)
		sqlite3_bind_int64(st, 2, date);
	else
		sqlite3_bind_null(st, 2);
	store_sort_bind_text(st, 3, k->subject != NULL ? k->subject : "");
	sqlite3_bind_int(st, 4, k->reply ? 1 : 0);
	store_sort_bind_text(st, 5, k->from);
	store_sort_bind_text(st, 6, k->to);
	store_sort_bind_text(st, 7, k->cc);
	store_sort_bind_text(st, 8, k->dfrom);
	store_sort_bind_text(st, 9, k->dto);
	store_sort_bind_text(st, 10, k->msgid);
	store_sort_bind_text(st, 11, k->refs);
	return store_stmt_exec(s, st);
}

int
store_sort_keys_save(struct store *s, int64_t blob_id, int64_t date,
		     const struct mime_sort_keys *k)
{
	sqlite3_stmt *st;
	int ret = store_sort_keys_row(s, blob_id, date, k);

	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "UPDATE blobs SET sort_keys = 1 WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
	return store_stmt_exec(s, st);
}

/* The keys of a stored message, parsed from its header (header_len 0:
   unknown, the whole message is searched for it). A blob that cannot be
   read has the keys of an empty header, as SORT had before the keys
   were stored. */
static void
store_sort_keys_compute(struct store *s, const char *hash, size_t header_len,
			struct mime_sort_keys *k)
{
	static const uint8_t empty[1];
	struct store_map map;

	if (store_blob_map(s, hash, &map) != STORE_OK) {
		mime_sort_keys_parse(empty, 0, k);
		return;
	}
	if (header_len == 0 || header_len > map.len)
		header_len = map.len;
	mime_sort_keys_parse(map.data != NULL ? map.data : empty, header_len,
			     k);
	store_blob_unmap(&map);
}

/* One transaction of the backfill: up to STORE_SORT_BACKFILL_BATCH
   unfilled blobs with id > *after. *done_r when none was left. */
static int
store_sort_backfill_batch(struct store *s, int64_t *after, bool *done_r)
{
	struct store_tx tx;
	sqlite3_stmt *st;
	int64_t ids[STORE_SORT_BACKFILL_BATCH];
	char hashes[STORE_SORT_BACKFILL_BATCH][STORE_HASH_HEX_LEN + 1];
	int64_t dates[STORE_SORT_BACKFILL_BATCH];
	size_t lens[STORE_SORT_BACKFILL_BATCH], n = 0, i;
	int rc, ret;

	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	/* Inside the write transaction: another process filling at the
	   same time has committed its rows before this reads them. */
	st = store_stmt(s, "SELECT id, hash, header_len, date FROM blobs"
			   " WHERE sort_keys = 0 AND has_meta = 1 AND id > ?"
			   " ORDER BY id LIMIT ?");
	if (st == NULL) {
		store_tx_rollback(s, &tx);
		return STORE_ERR;
	}
	sqlite3_bind_int64(st, 1, *after);
	sqlite3_bind_int(st, 2, STORE_SORT_BACKFILL_BATCH);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 1);

		ids[n] = sqlite3_column_int64(st, 0);
		hashes[n][0] = '\0';
		if (h != NULL && store_hash_valid((const char *)h))
			memcpy(hashes[n], h, STORE_HASH_HEX_LEN + 1);
		dates[n] = sqlite3_column_type(st, 3) == SQLITE_NULL
				   ? -1
				   : sqlite3_column_int64(st, 3);
		lens[n++] = (size_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	ret = rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
	for (i = 0; i < n && ret == STORE_OK; i++) {
		struct mime_sort_keys k;

		store_sort_keys_compute(s, hashes[i], lens[i], &k);
		ret = store_sort_keys_save(s, ids[i], dates[i], &k);
		mime_sort_keys_free(&k);
	}
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	*done_r = n < STORE_SORT_BACKFILL_BATCH;
	if (n > 0)
		*after = ids[n - 1];
	return store_tx_commit(s, &tx);
}

int
store_msg_sort_backfill(struct store *s)
{
	return store_backfill(s, store_sort_backfill_batch);
}

static const char *
store_sort_col(sqlite3_stmt *st, int i, struct arena *a)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t == NULL ? NULL
			 : arena_strndup(a, (const char *)t,
					 (size_t)sqlite3_column_bytes(st, i));
}

static const char *
store_sort_dup(struct arena *a, const char *v)
{
	return v == NULL ? NULL : arena_strdup(a, v);
}

/* A row whose blob has no keys stored yet: compute them now from the
   message (blob_id's hash, header length and date). */
static int
store_sort_row_compute(struct store *s, int64_t blob_id, unsigned need,
		       struct arena *a, struct store_sort_msg *m)
{
	struct mime_sort_keys k;
	char hash[STORE_HASH_HEX_LEN + 1] = "";
	size_t header_len = 0;
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT hash, header_len, date FROM blobs"
			   " WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 0);

		if (h != NULL && store_hash_valid((const char *)h))
			memcpy(hash, h, sizeof(hash));
		header_len = (size_t)sqlite3_column_int64(st, 1);
		if (sqlite3_column_type(st, 2) != SQLITE_NULL)
			m->date = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	if (hash[0] != '\0')
		store_sort_keys_compute(s, hash, header_len, &k);
	else
		memset(&k, 0, sizeof(k));
	m->subject = k.subject != NULL ? arena_strdup(a, k.subject) : "";
	m->reply = k.reply;
	if (need & STORE_SORT_NEED_ADDR) {
		m->from = store_sort_dup(a, k.from);
		m->to = store_sort_dup(a, k.to);
		m->cc = store_sort_dup(a, k.cc);
		m->dfrom = store_sort_dup(a, k.dfrom);
		m->dto = store_sort_dup(a, k.dto);
	}
	if (need & STORE_SORT_NEED_REFS) {
		m->msgid = store_sort_dup(a, k.msgid);
		m->refs = store_sort_dup(a, k.refs);
	}
	mime_sort_keys_free(&k);
	return STORE_OK;
}

static int
store_sort_row(struct store *s, sqlite3_stmt *st, unsigned need,
	       struct arena *a, struct store_sort_msg *m)
{
	const char *subject;

	memset(m, 0, sizeof(*m));
	m->uid = (uint32_t)sqlite3_column_int64(st, 0);
	m->size = (uint64_t)sqlite3_column_int64(st, 1);
	m->internaldate = sqlite3_column_int64(st, 2);
	m->date = -1;
	if (sqlite3_column_type(st, 4) == SQLITE_NULL)
		return store_sort_row_compute(s, sqlite3_column_int64(st, 3),
					      need, a, m);
	if (sqlite3_column_type(st, 5) != SQLITE_NULL)
		m->date = sqlite3_column_int64(st, 5);
	subject = store_sort_col(st, 6, a);
	m->subject = subject != NULL ? subject : "";
	m->reply = sqlite3_column_int(st, 7) != 0;
	if (need & STORE_SORT_NEED_ADDR) {
		m->from = store_sort_col(st, 8, a);
		m->to = store_sort_col(st, 9, a);
		m->cc = store_sort_col(st, 10, a);
		m->dfrom = store_sort_col(st, 11, a);
		m->dto = store_sort_col(st, 12, a);
	}
	if (need & STORE_SORT_NEED_REFS) {
		m->msgid = store_sort_col(st, 13, a);
		m->refs = store_sort_col(st, 14, a);
	}
	return STORE_OK;
}

int
store_msg_sort_keys(struct store *s, int64_t mailbox_id, unsigned need,
		    struct arena *a, struct store_sort_msg **msgs_r,
		    size_t *count_r)
{
	struct store_sort_msg *msgs = NULL, *out;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, ret = STORE_OK;

	*msgs_r = NULL;
	*count_r = 0;
	/* LEFT JOIN: a blob without keys yet still lists its message */
	st = store_stmt(s, "SELECT m.uid, m.size, m.internaldate, m.blob_id,"
			   " k.blob_id, k.date, k.subject, k.reply,"
			   " k.from_mbox, k.to_mbox, k.cc_mbox, k.from_display,"
			   " k.to_display, k.msgid, k.refs"
			   " FROM messages m"
			   " LEFT JOIN blob_sort k ON k.blob_id = m.blob_id"
			   " WHERE m.mailbox_id = ? ORDER BY m.uid");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	while (ret == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		msgs = store_grow(msgs, &cap, n, sizeof(*msgs));
		ret = store_sort_row(s, st, need, a, &msgs[n++]);
	}
	sqlite3_reset(st);
	if (ret == STORE_OK && rc != SQLITE_DONE)
		ret = store_sql_err(s, rc);
	if (ret != STORE_OK) {
		free(msgs);
		return ret;
	}
	/* The caller's arena owns the result, like its strings. */
	out = arena_alloc(a, (n + 1) * sizeof(*out));
	if (n > 0)
		memcpy(out, msgs, n * sizeof(*out));
	free(msgs);
	*msgs_r = out;
	*count_r = n;
	return STORE_OK;
}
