/* A persisted snapshot of a large mailbox's view (schema step 12), so
   that the first SELECT of it in a worker costs O(changes since the
   snapshot) instead of one row per message: the snapshot's records
   minus the UIDs expunged after its modseq, merged by UID with the
   rows whose modseq is greater (every change to a message gives it the
   mailbox's next HIGHESTMODSEQ, and expunged UIDs are kept for the
   mailbox's lifetime, so those two lists are exactly what changed).

   It is a cache. A missing, stale (other UIDVALIDITY) or unreadable
   snapshot means a full read, never a wrong view; every byte of one is
   validated before use. It is written by the read thread after the
   view it describes was handed over (store_reader.c), in a transaction
   of its own without an fsync, and never replaces a newer one. */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

/* The blob, in the writer's byte order: a header {u32 magic, u32 count,
   u32 kw_count, u32 0}, count records {u32 uid, u32 flags, u64 modseq}
   in ascending UID order, then kw_count keyword entries {u32 record
   index, u32 len, len bytes: the keywords and their NUL} in ascending
   index order, and nothing after. The magic holds the format version;
   read on a machine of the other byte order (a database moved) or
   written by another format it does not match and the snapshot is
   ignored. */
#define STORE_VIEW_SNAP_MAGIC 0x54565301u /* "TVS", format 1 */
#define STORE_VIEW_SNAP_HDR 16
#define STORE_VIEW_SNAP_REC 16
#define STORE_VIEW_SNAP_KW_HDR 8

/* What a load leaves for store_view_snap_flush. */
struct store_view_snap_out {
	int64_t mailbox_id;
	uint32_t uidvalidity, count;
	uint64_t modseq;
	uint8_t *data;
	size_t len;
	bool force; /* the row there was unusable: replace it whatever it is */
};

static uint32_t
store_view_snap_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* ---- encoding ---- */

/* Room for n more bytes at *len in *p. */
static void
store_view_snap_room(uint8_t **p, size_t *cap, size_t len, size_t n)
{
	if (n <= *cap - len)
		return;
	while (n > *cap - len)
		*cap = *cap == 0 ? 4096 : *cap * 2;
	*p = xrealloc(*p, *cap);
}

static void
store_view_snap_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

void
store_view_snap_enc_add(struct store_view_snap_enc *e,
			const struct store_view_msg *m)
{
	size_t kwlen;
	uint8_t *p;

	if (e->bad)
		return;
	if (e->count == UINT32_MAX || (e->count > 0 && m->uid <= e->last_uid)) {
		e->bad = true; /* cannot be read back: never written */
		return;
	}
	store_view_snap_room(&e->rec, &e->rec_cap, e->rec_len,
			     STORE_VIEW_SNAP_REC);
	p = e->rec + e->rec_len;
	store_view_snap_put32(p, m->uid);
	store_view_snap_put32(p + 4, m->flags);
	memcpy(p + 8, &m->modseq, sizeof(m->modseq));
	e->rec_len += STORE_VIEW_SNAP_REC;
	e->last_uid = m->uid;
	if (m->keywords != NULL && *m->keywords != '\0') {
		kwlen = strlen(m->keywords) + 1;
		if (kwlen > UINT32_MAX - STORE_VIEW_SNAP_KW_HDR) {
			e->bad = true;
			return;
		}
		store_view_snap_room(&e->kw, &e->kw_cap, e->kw_len,
				     STORE_VIEW_SNAP_KW_HDR + kwlen);
		p = e->kw + e->kw_len;
		store_view_snap_put32(p, e->count);
		store_view_snap_put32(p + 4, (uint32_t)kwlen);
		memcpy(p + STORE_VIEW_SNAP_KW_HDR, m->keywords, kwlen);
		e->kw_len += STORE_VIEW_SNAP_KW_HDR + kwlen;
		e->kw_count++;
	}
	e->count++;
}

uint8_t *
store_view_snap_enc_finish(struct store_view_snap_enc *e, size_t *len_r)
{
	uint8_t *data = NULL;

	*len_r = 0;
	if (!e->bad) {
		*len_r = STORE_VIEW_SNAP_HDR + e->rec_len + e->kw_len;
		data = xmalloc(*len_r);
		store_view_snap_put32(data, STORE_VIEW_SNAP_MAGIC);
		store_view_snap_put32(data + 4, e->count);
		store_view_snap_put32(data + 8, e->kw_count);
		store_view_snap_put32(data + 12, 0);
		if (e->rec_len > 0)
			memcpy(data + STORE_VIEW_SNAP_HDR, e->rec, e->rec_len);
		if (e->kw_len > 0)
			memcpy(data + STORE_VIEW_SNAP_HDR + e->rec_len, e->kw,
			       e->kw_len);
	}
	store_view_snap_enc_free(e);
	return data;
}

void
store_view_snap_enc_free(struct store_view_snap_enc *e)
{
	free(e->rec);
	free(e->kw);
	memset(e, 0, sizeof(*e));
}

/* ---- decoding ---- */

/* Records: UIDs ascending and never 0. */
static bool
store_view_snap_check_recs(const uint8_t *rec, uint32_t count)
{
	uint32_t prev = 0, uid;

	for (uint32_t i = 0; i < count; i++) {
		uid = store_view_snap_u32(rec +
					  (size_t)i * STORE_VIEW_SNAP_REC);
		if (uid <= prev)
			return false;
		prev = uid;
	}
	return true;
}

/* Keyword entries from p: indexes ascending below count, each string
   within the blob, NUL-terminated, no NUL inside; nothing after. */
static bool
store_view_snap_check_kw(const uint8_t *p, const uint8_t *end,
			 uint32_t kw_count, uint32_t count)
{
	uint32_t idx, len;
	int64_t prev = -1;

	for (uint32_t k = 0; k < kw_count; k++) {
		if ((size_t)(end - p) < STORE_VIEW_SNAP_KW_HDR)
			return false;
		idx = store_view_snap_u32(p);
		len = store_view_snap_u32(p + 4);
		p += STORE_VIEW_SNAP_KW_HDR;
		if (idx >= count || (int64_t)idx <= prev || len == 0 ||
		    len > (size_t)(end - p) || p[len - 1] != '\0' ||
		    memchr(p, '\0', len - 1) != NULL)
			return false;
		prev = idx;
		p += len;
	}
	return p == end;
}

bool
store_view_snap_open(struct store_view_snap_rd *rd, const void *data,
		     size_t len, uint32_t count)
{
	const uint8_t *d = data;

	memset(rd, 0, sizeof(*rd));
	if (d == NULL || len < STORE_VIEW_SNAP_HDR ||
	    store_view_snap_u32(d) != STORE_VIEW_SNAP_MAGIC ||
	    store_view_snap_u32(d + 4) != count ||
	    store_view_snap_u32(d + 12) != 0 ||
	    count > (len - STORE_VIEW_SNAP_HDR) / STORE_VIEW_SNAP_REC)
		return false;
	rd->rec = d + STORE_VIEW_SNAP_HDR;
	rd->count = count;
	rd->kw = rd->rec + (size_t)count * STORE_VIEW_SNAP_REC;
	rd->kw_count = store_view_snap_u32(d + 8);
	if (!store_view_snap_check_recs(rd->rec, count) ||
	    !store_view_snap_check_kw(rd->kw, d + len, rd->kw_count, count))
		return false;
	rd->next_kw = rd->kw;
	return true;
}

bool
store_view_snap_next(struct store_view_snap_rd *rd, struct store_view_msg *m)
{
	const uint8_t *p;

	if (rd->i >= rd->count)
		return false;
	p = rd->rec + (size_t)rd->i * STORE_VIEW_SNAP_REC;
	m->uid = store_view_snap_u32(p);
	m->flags = store_view_snap_u32(p + 4);
	memcpy(&m->modseq, p + 8, sizeof(m->modseq));
	m->keywords = NULL;
	/* validated by open: an entry is whole, its string ends in NUL */
	if (rd->k < rd->kw_count && store_view_snap_u32(rd->next_kw) == rd->i) {
		m->keywords =
			(const char *)rd->next_kw + STORE_VIEW_SNAP_KW_HDR;
		rd->next_kw += STORE_VIEW_SNAP_KW_HDR +
			       store_view_snap_u32(rd->next_kw + 4);
		rd->k++;
	}
	rd->i++;
	return true;
}

/* ---- what changed since the snapshot ---- */

struct store_view_snap_row {
	uint32_t uid, flags;
	uint64_t modseq;
	char *keywords;
};

static int
store_view_snap_row_cmp(const void *a, const void *b)
{
	const struct store_view_snap_row *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static void
store_view_snap_rows_free(struct store_view_snap_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].keywords);
	free(rows);
}

/* Messages changed or added after since, sorted by UID here: with ORDER
   BY uid SQLite walks the whole mailbox in the covering index
   messages_view instead (no statistics), so the index is named. */
static int
store_view_snap_changed(struct store *s, int64_t mailbox_id, uint64_t since,
			struct store_view_snap_row **rows_r, size_t *n_r)
{
	struct store_view_snap_row *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT uid, flags, modseq, keywords FROM messages"
			   " INDEXED BY messages_modseq"
			   " WHERE mailbox_id = ? AND modseq > ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (int64_t)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows = store_grow(rows, &cap, n, sizeof(*rows));
		rows[n].uid = (uint32_t)sqlite3_column_int64(st, 0);
		rows[n].flags = (uint32_t)sqlite3_column_int64(st, 1);
		rows[n].modseq = (uint64_t)sqlite3_column_int64(st, 2);
		rows[n].keywords = store_col_strdup(st, 3);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_view_snap_rows_free(rows, n);
		return store_sql_err(s, rc);
	}
	if (n > 1)
		qsort(rows, n, sizeof(*rows), store_view_snap_row_cmp);
	*rows_r = rows;
	*n_r = n;
	return STORE_OK;
}

/* ---- the load ---- */

/* The caller's callback, with the new snapshot built on the way. */
struct store_view_snap_emit {
	store_msg_view_fn *fn;
	void *ctx;
	struct store_view_snap_enc *enc; /* NULL: none is written */
	size_t n;
};

static int
store_view_snap_emit(void *ctx, const struct store_view_msg *m)
{
	struct store_view_snap_emit *e = ctx;

	if (e->enc != NULL)
		store_view_snap_enc_add(e->enc, m);
	e->n++;
	return e->fn(e->ctx, m);
}

/* The snapshot rd with the changes merged in, ascending by UID: a
   changed row replaces the record of its UID or comes in between, an
   expunged UID's record is left out. */
static int
store_view_snap_merge(struct store_view_snap_rd *rd,
		      const struct store_view_snap_row *rows, size_t nrows,
		      const uint32_t *gone, size_t ngone,
		      struct store_view_snap_emit *e,
		      struct store_view_load *load)
{
	struct store_view_msg sm, rm;
	size_t j = 0, k = 0;
	bool have = store_view_snap_next(rd, &sm);

	while (have || j < nrows) {
		if (j < nrows && (!have || rows[j].uid <= sm.uid)) {
			if (have && rows[j].uid == sm.uid)
				have = store_view_snap_next(rd, &sm);
			rm.uid = rows[j].uid;
			rm.flags = rows[j].flags;
			rm.modseq = rows[j].modseq;
			rm.keywords = rows[j].keywords;
			j++;
			load->from_rows++;
			if (store_view_snap_emit(e, &rm) < 0)
				return -1;
			continue;
		}
		while (k < ngone && gone[k] < sm.uid)
			k++;
		if (k < ngone && gone[k] == sm.uid) {
			load->expunged++;
		} else {
			load->from_snap++;
			if (store_view_snap_emit(e, &sm) < 0)
				return -1;
		}
		have = store_view_snap_next(rd, &sm);
	}
	return 0;
}

/* Snapshot rd (at since) plus what changed after it. */
static int
store_view_snap_apply(struct store *s, const struct store_mailbox *box,
		      struct store_view_snap_rd *rd, uint64_t since,
		      struct store_view_snap_emit *e,
		      struct store_view_load *load)
{
	struct store_view_snap_row *rows = NULL;
	uint32_t *gone = NULL;
	size_t nrows = 0, ngone = 0;
	int ret;

	ret = store_view_snap_changed(s, box->id, since, &rows, &nrows);
	if (ret == STORE_OK)
		ret = store_msg_expunged_list(s, box->id, since, &gone,
					      &ngone);
	/* a large change: the next cold load should not read it again */
	if (ret == STORE_OK && nrows + ngone > s->snap_max_delta)
		load->snap_save = true;
	else
		e->enc = NULL;
	if (ret == STORE_OK &&
	    store_view_snap_merge(rd, rows, nrows, gone, ngone, e, load) < 0)
		ret = store_fail(s, STORE_ERR, "view callback failed");
	store_view_snap_rows_free(rows, nrows);
	free(gone);
	return ret;
}

/* The stored snapshot of box: 1 with *rd open on it (valid until st is
   reset) and *since its modseq, 0 none usable (*row_r: there is a row,
   unusable), or an error. */
static int
store_view_snap_find(struct store *s, const struct store_mailbox *box,
		     sqlite3_stmt **st_r, struct store_view_snap_rd *rd,
		     uint64_t *since, bool *row_r)
{
	sqlite3_stmt *st;
	const void *data;
	int64_t count;
	int rc, len;

	*row_r = false;
	st = store_stmt(s, "SELECT uidvalidity, modseq, count, data"
			   " FROM view_snap WHERE mailbox_id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, box->id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
	}
	*row_r = true;
	*since = (uint64_t)sqlite3_column_int64(st, 1);
	count = sqlite3_column_int64(st, 2);
	data = sqlite3_column_blob(st, 3);
	len = sqlite3_column_bytes(st, 3); /* after _blob, as SQLite says */
	if (sqlite3_column_int64(st, 0) == (int64_t)box->uidvalidity &&
	    *since <= box->highestmodseq && count >= 0 &&
	    count <= (int64_t)UINT32_MAX && len >= 0 &&
	    store_view_snap_open(rd, data, (size_t)len, (uint32_t)count)) {
		*st_r = st;
		return 1;
	}
	sqlite3_reset(st);
	return 0;
}

/* Keep the new snapshot for store_view_snap_flush; false when the
   encoder could not make one. */
static bool
store_view_snap_keep(struct store *s, const struct store_mailbox *box,
		     struct store_view_snap_enc *enc, bool force)
{
	struct store_view_snap_out *o;
	uint32_t count = enc->count;
	size_t len;
	uint8_t *data = store_view_snap_enc_finish(enc, &len);

	if (data == NULL)
		return false;
	store_view_snap_drop(s);
	o = xcalloc(1, sizeof(*o));
	o->mailbox_id = box->id;
	o->uidvalidity = box->uidvalidity;
	o->modseq = box->highestmodseq;
	o->count = count;
	o->data = data;
	o->len = len;
	o->force = force;
	s->snap_out = o;
	return true;
}

int
store_view_snap_load(struct store *s, const struct store_mailbox *box,
		     store_msg_view_fn *fn, void *ctx,
		     struct store_view_load *load)
{
	struct store_view_snap_enc enc = { .bad = false };
	struct store_view_snap_emit e = { fn, ctx, &enc, 0 };
	struct store_view_snap_rd rd;
	sqlite3_stmt *st = NULL;
	uint64_t since = 0;
	bool row;
	int ret;

	memset(load, 0, sizeof(*load));
	ret = store_view_snap_find(s, box, &st, &rd, &since, &row);
	if (ret < 0)
		return ret;
	if (ret == 1) {
		load->snap_used = true;
		ret = store_view_snap_apply(s, box, &rd, since, &e, load);
		sqlite3_reset(st);
	} else {
		ret = store_msg_list_view(s, box->id, 1, store_view_snap_emit,
					  &e);
		load->from_rows = e.n;
		/* a mailbox that had one keeps it current below the size */
		load->snap_save = e.n >= s->snap_min_msgs || row;
	}
	load->snap_save = ret == STORE_OK && load->snap_save &&
			  e.enc != NULL &&
			  store_view_snap_keep(s, box, &enc,
					       row && !load->snap_used);
	store_view_snap_enc_free(&enc);
	return ret;
}

/* ---- the write ---- */

void
store_view_snap_drop(struct store *s)
{
	if (s->snap_out != NULL) {
		free(s->snap_out->data);
		free(s->snap_out);
		s->snap_out = NULL;
	}
}

/* Over a row only at a higher modseq, or when the load found the row
   unusable (force): then even a snapshot at the same modseq, or at a
   lower one should another worker have written a newer one meanwhile,
   is better than one nobody can read (an older snapshot is still right,
   only more rows to merge). */
static int
store_view_snap_insert(struct store *s, const struct store_view_snap_out *o)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "INSERT INTO view_snap(mailbox_id, uidvalidity,"
			   " modseq, count, data) VALUES (?1, ?2, ?3, ?4, ?5)"
			   " ON CONFLICT(mailbox_id) DO UPDATE SET"
			   " uidvalidity = excluded.uidvalidity,"
			   " modseq = excluded.modseq, count = excluded.count,"
			   " data = excluded.data"
			   " WHERE excluded.modseq > view_snap.modseq OR ?6");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, o->mailbox_id);
	sqlite3_bind_int64(st, 2, o->uidvalidity);
	sqlite3_bind_int64(st, 3, (int64_t)o->modseq);
	sqlite3_bind_int64(st, 4, o->count);
	sqlite3_bind_blob64(st, 5, o->data, o->len, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, o->force);
	return store_stmt_exec(s, st);
}

int
store_view_snap_flush(struct store *s, struct store_view_snap_write *w_r)
{
	struct store_view_snap_out *o = s->snap_out;
	int ret;

	if (o == NULL || !sqlite3_get_autocommit(s->db))
		return 0; /* inside the caller's transaction: later */
	if (w_r != NULL) {
		w_r->mailbox_id = o->mailbox_id;
		w_r->count = o->count;
		w_r->modseq = o->modseq;
		w_r->bytes = o->len;
		w_r->written = false;
	}
	/* a cache: WAL with synchronous=NORMAL loses it at worst, and a
	   short wait for the lock (the read thread's next job waits) */
	s->busy_limit_ms = STORE_VIEW_SNAP_BUSY_MS;
	ret = store_exec_cached(s, "PRAGMA synchronous=NORMAL");
	if (ret == STORE_OK)
		ret = store_exec(s, "BEGIN IMMEDIATE");
	if (ret == STORE_OK)
		ret = store_view_snap_insert(s, o);
	if (ret == STORE_OK && w_r != NULL)
		w_r->written = sqlite3_changes(s->db) > 0;
	if (ret == STORE_OK)
		ret = store_exec(s, "COMMIT");
	if (ret != STORE_OK && !sqlite3_get_autocommit(s->db))
		(void)store_exec(s, "ROLLBACK");
	(void)store_exec_cached(s, "PRAGMA synchronous=FULL");
	s->busy_limit_ms = 0;
	store_view_snap_drop(s);
	return ret == STORE_OK ? 1 : ret;
}

void
store_view_snap_limits(struct store *s, uint32_t min_msgs, uint32_t max_delta)
{
	s->snap_min_msgs = min_msgs;
	s->snap_max_delta = max_delta;
}
