/* The outbound queue: one queue row per accepted message with remote
   recipients, one queue_rcpts row per recipient (idx = its position).
   Each entry holds one reference on its blob, so the message bytes live
   until the last recipient is final (delivered or failed) or an admin
   deletes the entry; the blob file is then collected after the commit.
   Reads run in one snapshot so an entry and its recipients agree, even
   while the queue process updates them. Changing calls are transactions
   that nest inside a batch (group commit with the SMTP deliveries). */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

/* Recipient status codes (store.h): 2 delivered and 5 failed are final. */
#define STORE_QUEUE_DELIVERED 2
#define STORE_QUEUE_FAILED 5

#define STORE_QUEUE_SELECT \
	"SELECT q.id, q.sender, q.envid, q.ret, b.hash, q.size, q.created," \
	" q.next_attempt, q.attempts, q.body, q.smtputf8, q.delay_warned" \
	" FROM queue q" \
	" JOIN blobs b ON b.id = q.blob_id"

/* ---- freeing ---- */

static void
store_queue_rcpt_clear(struct store_queue_rcpt *r)
{
	free(r->address);
	free(r->orcpt);
	free(r->notify);
	free(r->last_reply);
	memset(r, 0, sizeof(*r));
}

void
store_queue_entry_clear(struct store_queue_entry *entry)
{
	for (size_t i = 0; i < entry->rcpt_count; i++)
		store_queue_rcpt_clear(&entry->rcpts[i]);
	free(entry->rcpts);
	free(entry->sender);
	free(entry->envid);
	free(entry->ret);
	free(entry->body);
	memset(entry, 0, sizeof(*entry));
}

void
store_queue_entries_free(struct store_queue_entry *entries, size_t count)
{
	if (entries == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_queue_entry_clear(&entries[i]);
	free(entries);
}

/* ---- reading ---- */

/* Fill e from a STORE_QUEUE_SELECT row (no recipients yet). */
static int
store_queue_row(struct store *s, sqlite3_stmt *st,
		struct store_queue_entry *e)
{
	const char *hash = (const char *)sqlite3_column_text(st, 4);

	memset(e, 0, sizeof(*e));
	e->id = sqlite3_column_int64(st, 0);
	if (hash == NULL || !store_hash_valid(hash))
		return store_fail(s, STORE_ERR, "queue %lld: bad blob hash",
				  (long long)e->id);
	memcpy(e->blob, hash, sizeof(e->blob));
	e->sender = store_col_strdup(st, 1);
	if (e->sender == NULL)
		e->sender = xstrdup("");
	e->envid = store_col_strdup(st, 2);
	e->ret = store_col_strdup(st, 3);
	e->size = (uint64_t)sqlite3_column_int64(st, 5);
	e->created = sqlite3_column_int64(st, 6);
	e->next_attempt = sqlite3_column_int64(st, 7);
	e->attempts = (uint32_t)sqlite3_column_int64(st, 8);
	e->body = store_col_strdup(st, 9);
	e->smtputf8 = sqlite3_column_int(st, 10) != 0;
	e->delay_warned = sqlite3_column_int(st, 11) != 0;
	return STORE_OK;
}

/* Step st (bound by the caller) and collect its entries. */
static int
store_queue_rows(struct store *s, sqlite3_stmt *st,
		 struct store_queue_entry **entries_r, size_t *count_r)
{
	struct store_queue_entry *es = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_DONE, ret = STORE_OK;

	while (ret == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		es = store_grow(es, &cap, n, sizeof(*es));
		ret = store_queue_row(s, st, &es[n]);
		n++;
	}
	if (ret == STORE_OK && rc != SQLITE_DONE)
		ret = store_sql_err(s, rc);
	sqlite3_reset(st);
	if (ret != STORE_OK) {
		store_queue_entries_free(es, n);
		return ret;
	}
	*entries_r = es;
	*count_r = n;
	return STORE_OK;
}

static void
store_queue_rcpt_row(sqlite3_stmt *st, struct store_queue_rcpt *r)
{
	r->address = store_col_strdup(st, 0);
	if (r->address == NULL)
		r->address = xstrdup("");
	r->orcpt = store_col_strdup(st, 1);
	r->notify = store_col_strdup(st, 2);
	r->status = sqlite3_column_int(st, 3);
	r->last_reply = store_col_strdup(st, 4);
}

static int
store_queue_rcpts_load(struct store *s, struct store_queue_entry *e)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	st = store_stmt(s, "SELECT address, orcpt, notify, status, last_reply"
			   " FROM queue_rcpts WHERE queue_id = ?"
			   " ORDER BY idx");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, e->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (e->rcpt_count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			e->rcpts = xreallocarray(e->rcpts, cap,
						 sizeof(*e->rcpts));
		}
		store_queue_rcpt_row(st, &e->rcpts[e->rcpt_count++]);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
}

/* Collect the entries of st with their recipients. The caller holds a
   read snapshot. On error nothing is returned. */
static int
store_queue_fetch(struct store *s, sqlite3_stmt *st,
		  struct store_queue_entry **entries_r, size_t *count_r)
{
	struct store_queue_entry *es = NULL;
	size_t n = 0;
	int ret;

	ret = store_queue_rows(s, st, &es, &n);
	for (size_t i = 0; ret == STORE_OK && i < n; i++)
		ret = store_queue_rcpts_load(s, &es[i]);
	if (ret != STORE_OK) {
		store_queue_entries_free(es, n);
		return ret;
	}
	*entries_r = es;
	*count_r = n;
	return STORE_OK;
}

int
store_queue_due(struct store *s, int64_t now, size_t max,
		struct store_queue_entry **entries_r, size_t *count_r)
{
	sqlite3_stmt *st;
	bool started;
	int ret;

	*entries_r = NULL;
	*count_r = 0;
	if (max == 0)
		return STORE_OK;
	ret = store_read_begin(s, &started);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, STORE_QUEUE_SELECT " WHERE q.next_attempt <= ?"
					      " ORDER BY q.next_attempt, q.id"
					      " LIMIT ?");
	if (st == NULL) {
		ret = STORE_ERR;
	} else {
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_int64(st, 2,
				   max > INT64_MAX ? INT64_MAX : (int64_t)max);
		ret = store_queue_fetch(s, st, entries_r, count_r);
	}
	store_read_end(s, started);
	return ret;
}

int
store_queue_list(struct store *s, struct store_queue_entry **entries_r,
		 size_t *count_r)
{
	sqlite3_stmt *st;
	bool started;
	int ret;

	*entries_r = NULL;
	*count_r = 0;
	ret = store_read_begin(s, &started);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, STORE_QUEUE_SELECT " ORDER BY q.id");
	ret = st == NULL ? STORE_ERR
			 : store_queue_fetch(s, st, entries_r, count_r);
	store_read_end(s, started);
	return ret;
}

int
store_queue_get(struct store *s, int64_t id, struct store_queue_entry *entry_r)
{
	struct store_queue_entry *es = NULL;
	sqlite3_stmt *st;
	size_t n = 0;
	bool started;
	int ret;

	memset(entry_r, 0, sizeof(*entry_r));
	ret = store_read_begin(s, &started);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, STORE_QUEUE_SELECT " WHERE q.id = ?");
	if (st == NULL) {
		ret = STORE_ERR;
	} else {
		sqlite3_bind_int64(st, 1, id);
		ret = store_queue_fetch(s, st, &es, &n);
	}
	store_read_end(s, started);
	if (ret != STORE_OK)
		return ret;
	if (n == 0)
		return 0;
	*entry_r = es[0];
	free(es);
	return 1;
}

/* ---- adding ---- */

static int
store_queue_check(struct store *s, const struct store_queue_entry *e)
{
	if (e->sender == NULL)
		return store_fail(s, STORE_INVALID, "queue entry without sender");
	if (e->rcpt_count == 0 || e->rcpts == NULL)
		return store_fail(s, STORE_INVALID,
				  "queue entry without recipients");
	for (size_t i = 0; i < e->rcpt_count; i++) {
		if (e->rcpts[i].address == NULL)
			return store_fail(s, STORE_INVALID,
					  "queue recipient %zu without address",
					  i);
	}
	/* store_blob_row reads the hash as a C string. */
	if (memchr(e->blob, '\0', sizeof(e->blob)) == NULL)
		return store_fail(s, STORE_INVALID, "bad blob hash");
	return STORE_OK;
}

static int
store_queue_insert(struct store *s, const struct store_queue_entry *e,
		   int64_t blob_id, uint64_t size, int64_t *id_r)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "INSERT INTO queue(sender, envid, ret, blob_id,"
			   " size, created, next_attempt, attempts, body,"
			   " smtputf8)"
			   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, e->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->envid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->ret, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, blob_id);
	sqlite3_bind_int64(st, 5, (int64_t)size);
	sqlite3_bind_int64(st, 6, e->created != 0 ? e->created : store_now());
	sqlite3_bind_int64(st, 7, e->next_attempt);
	sqlite3_bind_int64(st, 8, (int64_t)e->attempts);
	sqlite3_bind_text(st, 9, e->body, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 10, e->smtputf8 ? 1 : 0);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK)
		*id_r = sqlite3_last_insert_rowid(s->db);
	return ret;
}

static int
store_queue_rcpt_insert(struct store *s, int64_t queue_id, size_t idx,
			const struct store_queue_rcpt *r)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "INSERT INTO queue_rcpts(queue_id, idx, address,"
			   " orcpt, notify, status, last_reply)"
			   " VALUES (?, ?, ?, ?, ?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, queue_id);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_text(st, 3, r->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->orcpt, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->notify, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, r->status);
	sqlite3_bind_text(st, 7, r->last_reply, -1, SQLITE_STATIC);
	return store_stmt_exec(s, st);
}

static int
store_queue_add_tx(struct store *s, const struct store_queue_entry *e,
		   int64_t *id_r)
{
	int64_t blob_id, id = 0;
	uint64_t blob_size;
	int ret;

	ret = store_blob_row(s, e->blob, &blob_id, &blob_size);
	if (ret == STORE_OK)
		ret = store_blob_ref(s, blob_id, 1);
	if (ret == STORE_OK)
		ret = store_queue_insert(s, e, blob_id,
					 e->size != 0 ? e->size : blob_size,
					 &id);
	for (size_t i = 0; ret == STORE_OK && i < e->rcpt_count; i++)
		ret = store_queue_rcpt_insert(s, id, i, &e->rcpts[i]);
	if (ret == STORE_OK)
		*id_r = id;
	return ret;
}

int
store_queue_add(struct store *s, const struct store_queue_entry *entry,
		int64_t *id_r)
{
	struct store_tx tx;
	int64_t id = 0;
	int ret;

	ret = store_queue_check(s, entry);
	if (ret != STORE_OK)
		return ret;
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	ret = store_queue_add_tx(s, entry, &id);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	ret = store_tx_commit(s, &tx);
	if (ret == STORE_OK && id_r != NULL)
		*id_r = id;
	return ret;
}

/* ---- updating and removing (inside write transactions) ---- */

/* Delete entry id (its recipients cascade) and drop its blob reference. */
static int
store_queue_remove(struct store *s, int64_t id)
{
	sqlite3_stmt *st;
	int64_t blob_id = 0;
	int rc;

	st = store_stmt(s, "DELETE FROM queue WHERE id = ? RETURNING blob_id");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		blob_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no queued message %lld",
				  (long long)id);
	if (rc != SQLITE_ROW)
		return store_sql_err(s, rc);
	return store_blob_ref(s, blob_id, -1);
}

static int
store_queue_update_row(struct store *s, const struct store_queue_entry *e)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "UPDATE queue SET attempts = ?, next_attempt = ?,"
			   " delay_warned = ? WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, (int64_t)e->attempts);
	sqlite3_bind_int64(st, 2, e->next_attempt);
	sqlite3_bind_int(st, 3, e->delay_warned ? 1 : 0);
	sqlite3_bind_int64(st, 4, e->id);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK && sqlite3_changes(s->db) == 0)
		return store_fail(s, STORE_NOTFOUND, "no queued message %lld",
				  (long long)e->id);
	return ret;
}

static int
store_queue_update_rcpt(struct store *s, int64_t queue_id, size_t idx,
			const struct store_queue_rcpt *r)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "UPDATE queue_rcpts SET status = ?, last_reply = ?"
			   " WHERE queue_id = ? AND idx = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int(st, 1, r->status);
	sqlite3_bind_text(st, 2, r->last_reply, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, queue_id);
	sqlite3_bind_int64(st, 4, (int64_t)idx);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK && sqlite3_changes(s->db) == 0)
		return store_fail(s, STORE_INVALID,
				  "queued message %lld has no recipient %zu",
				  (long long)queue_id, idx);
	return ret;
}

/* Recipients of entry id that are not final, counted in the database so
   rows the caller did not pass are taken into account too. */
static int
store_queue_pending(struct store *s, int64_t id, int64_t *count_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT count(*) FROM queue_rcpts"
			   " WHERE queue_id = ? AND status NOT IN (?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, STORE_QUEUE_DELIVERED);
	sqlite3_bind_int(st, 3, STORE_QUEUE_FAILED);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

static int
store_queue_update_tx(struct store *s, const struct store_queue_entry *e)
{
	int64_t pending = 1;
	int ret;

	ret = store_queue_update_row(s, e);
	for (size_t i = 0; ret == STORE_OK && i < e->rcpt_count; i++)
		ret = store_queue_update_rcpt(s, e->id, i, &e->rcpts[i]);
	if (ret == STORE_OK)
		ret = store_queue_pending(s, e->id, &pending);
	if (ret == STORE_OK && pending == 0)
		ret = store_queue_remove(s, e->id);
	return ret;
}

int
store_queue_update(struct store *s, const struct store_queue_entry *entry)
{
	struct store_tx tx;
	int ret;

	if (entry->rcpt_count > 0 && entry->rcpts == NULL)
		return store_fail(s, STORE_INVALID, "queue entry without rcpts");
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	ret = store_queue_update_tx(s, entry);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}

int
store_queue_delete(struct store *s, int64_t id)
{
	struct store_tx tx;
	int ret;

	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	ret = store_queue_remove(s, id);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}
