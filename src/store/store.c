/* The store handle: opening the data directory and its SQLite database
   (WAL, synchronous=FULL, foreign keys, busy timeout), the prepared
   statement cache, and transactions. Outside a batch every changing call
   is one BEGIN IMMEDIATE..COMMIT; inside store_batch_begin() calls nest
   as SAVEPOINTs so a failed call is undone alone and one COMMIT (one
   fsync) makes the whole batch durable (group commit). Work that must
   follow a commit (unlinking unreferenced blobs, change notifications)
   is queued and run only once the data is on disk. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

int64_t
store_now(void)
{
	return (int64_t)time(NULL);
}

int
store_fail(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errbuf, sizeof(s->errbuf), fmt, ap);
	va_end(ap);
	s->errcode = err;
	return err;
}

int
store_sql_err(struct store *s, int rc)
{
	return store_sql_err_db(s, s->db, rc);
}

int
store_sql_err_db(struct store *s, sqlite3 *db, int rc)
{
	int err;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return STORE_OK;
	case SQLITE_FULL:
		err = STORE_NOSPACE;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		err = STORE_BUSY;
		break;
	case SQLITE_CONSTRAINT:
		err = rc == SQLITE_CONSTRAINT_FOREIGNKEY ? STORE_INVALID
							  : STORE_EXISTS;
		break;
	default:
		err = STORE_ERR;
		break;
	}
	if ((rc & 0xff) == SQLITE_IOERR && db != NULL &&
	    sqlite3_system_errno(db) == ENOSPC)
		err = STORE_NOSPACE;
	return store_fail(s, err, "sqlite: %s (%d)",
			  db != NULL ? sqlite3_errmsg(db) : "out of memory", rc);
}

static size_t
store_stmt_hash(const char *sql, size_t slots)
{
	uintptr_t p = (uintptr_t)sql;

	p ^= p >> 17;
	p *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(p >> 23) % slots;
}

sqlite3_stmt *
store_stmt_in(struct store *s, sqlite3 *db, struct store_stmt_slot *slots,
	      size_t count, const char *sql)
{
	size_t i = store_stmt_hash(sql, count);
	int rc;

	for (size_t n = 0; n < count; n++) {
		struct store_stmt_slot *slot = &slots[i];

		if (slot->sql == sql) {
			sqlite3_reset(slot->stmt);
			sqlite3_clear_bindings(slot->stmt);
			return slot->stmt;
		}
		if (slot->sql == NULL) {
			rc = sqlite3_prepare_v3(db, sql, -1,
						SQLITE_PREPARE_PERSISTENT,
						&slot->stmt, NULL);
			if (rc != SQLITE_OK) {
				store_sql_err_db(s, db, rc);
				slot->stmt = NULL;
				return NULL;
			}
			slot->sql = sql;
			return slot->stmt;
		}
		i = (i + 1) % count;
	}
	/* More distinct statements than slots is a programming error. */
	store_fail(s, STORE_ERR, "statement cache full");
	return NULL;
}

sqlite3_stmt *
store_stmt(struct store *s, const char *sql)
{
	return store_stmt_in(s, s->db, s->stmts, STORE_STMT_SLOTS, sql);
}

int
store_stmt_exec(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sql_err_db(s, sqlite3_db_handle(st), rc);
	return STORE_OK;
}

int
store_exec(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : store_sql_err(s, rc);
}

void *
store_grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap == 0 ? 16 : *cap * 2;
	return xreallocarray(p, *cap, size);
}

char *
store_col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t == NULL ? NULL : xstrdup((const char *)t);
}

/* ---- transactions ---- */

/* A transaction-control statement run often (savepoints: several per
   delivery inside a batch), prepared once instead of at every call. */
int
store_exec_cached(struct store *s, const char *sql)
{
	sqlite3_stmt *st = store_stmt(s, sql);

	return st == NULL ? STORE_ERR : store_stmt_exec(s, st);
}

static void
store_post_commit(struct store *s)
{
	if (s->gc_needed) {
		s->gc_needed = false;
		store_blob_gc(s);
	}
	if (s->notify_deferred)
		s->event_committed = s->event_count;
	else
		store_notify_flush(s);
	/* the commit thread's go to the index thread (store_commit.c) */
	if (!s->fts_deferred && s->fts_count > 0)
		store_fts_index_held(s);
}

static void
store_post_discard(struct store *s)
{
	/* the events of transactions committed before stay */
	s->event_count = s->event_committed;
	s->gc_needed = false;
	/* deferred index rows of batches committed before stay held */
	store_fts_discard(s, s->fts_deferred ? s->fts_batch_mark : 0);
}

int
store_tx_begin(struct store *s, struct store_tx *tx)
{
	int ret;

	tx->event_mark = s->event_count;
	tx->fts_mark = s->fts_count;
	tx->gc_mark = s->gc_needed;
	tx->nested = s->batch || s->tx_depth > 0;
	if (s->batch && s->batch_failed)
		return store_fail(s, STORE_ERR, "batch already rolled back");
	if (tx->nested)
		ret = store_exec_cached(s, "SAVEPOINT t");
	else
		ret = store_exec(s, "BEGIN IMMEDIATE");
	if (!tx->nested)
		s->fts_batch_mark = s->fts_count;
	if (ret == STORE_OK)
		s->tx_depth++;
	return ret;
}

int
store_tx_commit(struct store *s, struct store_tx *tx)
{
	int ret;

	if (tx->nested) {
		ret = store_exec_cached(s, "RELEASE t");
		if (ret != STORE_OK) {
			store_tx_rollback(s, tx);
			return ret;
		}
		s->tx_depth--;
		return STORE_OK;
	}
	ret = store_exec(s, "COMMIT");
	if (ret != STORE_OK) {
		store_tx_rollback(s, tx);
		return ret;
	}
	s->tx_depth--;
	store_post_commit(s);
	return STORE_OK;
}

void
store_tx_rollback(struct store *s, struct store_tx *tx)
{
	char saved[sizeof(s->errbuf)];

	/* Keep the error that made the caller roll back. */
	memcpy(saved, s->errbuf, sizeof(saved));
	s->tx_depth--;
	if (sqlite3_get_autocommit(s->db)) {
		/* SQLite rolled back the whole transaction on its own
		   (SQLITE_FULL, IOERR, ...): the batch is gone too. */
		if (s->batch)
			s->batch_failed = true;
		store_post_discard(s);
		s->tx_depth = 0;
	} else if (tx->nested) {
		(void)store_exec_cached(s, "ROLLBACK TO t");
		(void)store_exec_cached(s, "RELEASE t");
		s->event_count = tx->event_mark;
		s->gc_needed = tx->gc_mark;
		store_fts_discard(s, tx->fts_mark);
	} else {
		(void)store_exec(s, "ROLLBACK");
		store_post_discard(s);
	}
	memcpy(s->errbuf, saved, sizeof(saved));
}

int
store_backfill(struct store *s, store_backfill_fn *batch)
{
	int64_t after = 0;
	bool done = false;
	int ret = STORE_OK;

	/* Bounded: each batch moves past the ids it has read. */
	while (!done && ret == STORE_OK)
		ret = batch(s, &after, &done);
	return ret;
}

int
store_read_begin(struct store *s, bool *started_r)
{
	*started_r = false;
	if (!sqlite3_get_autocommit(s->db))
		return STORE_OK;
	if (store_exec(s, "BEGIN") != STORE_OK)
		return STORE_ERR;
	*started_r = true;
	return STORE_OK;
}

void
store_read_end(struct store *s, bool started)
{
	if (started)
		(void)store_exec(s, "COMMIT");
}

int
store_batch_begin(struct store *s)
{
	int ret;

	if (s->batch || s->tx_depth > 0)
		return store_fail(s, STORE_INVALID, "batch already open");
	ret = store_exec(s, "BEGIN IMMEDIATE");
	if (ret != STORE_OK)
		return ret;
	s->batch = true;
	s->batch_failed = false;
	s->fts_batch_mark = s->fts_count;
	return STORE_OK;
}

int
store_batch_commit(struct store *s)
{
	int ret;

	if (!s->batch)
		return store_fail(s, STORE_INVALID, "no batch open");
	s->batch = false;
	if (s->batch_failed) {
		store_post_discard(s);
		return store_fail(s, STORE_ERR, "batch was rolled back");
	}
	ret = store_exec(s, "COMMIT");
	if (ret != STORE_OK) {
		if (!sqlite3_get_autocommit(s->db))
			(void)store_exec(s, "ROLLBACK");
		store_post_discard(s);
		return ret;
	}
	store_post_commit(s);
	return STORE_OK;
}

void
store_batch_rollback(struct store *s)
{
	if (!s->batch)
		return;
	s->batch = false;
	if (!sqlite3_get_autocommit(s->db))
		(void)store_exec(s, "ROLLBACK");
	store_post_discard(s);
}

void
store_event_add(struct store *s, int64_t account_id, int64_t mailbox_id,
		uint64_t modseq)
{
	for (size_t i = 0; i < s->event_count; i++) {
		struct store_notify_event *ev = &s->events[i];

		if (ev->account_id == account_id &&
		    ev->mailbox_id == mailbox_id) {
			if (modseq > ev->modseq)
				ev->modseq = modseq;
			return;
		}
	}
	if (s->event_count >= STORE_PENDING_EVENTS_MAX)
		return; /* XXX readers resync on their next command */
	if (s->event_count == s->event_cap) {
		s->event_cap = s->event_cap == 0 ? 16 : s->event_cap * 2;
		s->events = xreallocarray(s->events, s->event_cap,
					  sizeof(*s->events));
	}
	s->events[s->event_count++] = (struct store_notify_event){
		account_id, mailbox_id, modseq
	};
}

/* ---- opening ---- */

static int
store_mkdir(struct store *s, const char *sub)
{
	char path[STORE_PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s%s%s", s->datadir,
		     sub[0] != '\0' ? "/" : "", sub);
	if (n < 0 || (size_t)n >= sizeof(path))
		return store_fail(s, STORE_INVALID, "data dir path too long");
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return store_fail(s, errno == ENOSPC ? STORE_NOSPACE : STORE_ERR,
				  "mkdir %s: %s", path, strerror(errno));
	return STORE_OK;
}

/* SQLITE_BUSY (another process, or this worker's other connection, holds
   the write lock): poll in short sleeps for up to STORE_BUSY_TIMEOUT_MS.
   SQLite's own busy_timeout sleeps 1, 2, 5, 10 ... 100 ms, so a waiter
   overslept a lock held for 2 ms by up to tens of ms; with two workers
   (and two connections each) taking turns that was most of a commit's
   latency, and on the event loop it was time no connection was served. */
int
store_busy_wait(void *ctx, int count)
{
	struct store *s = ctx;
	struct timespec now, ts;
	int64_t elapsed_ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (count == 0)
		s->busy_since = now;
	elapsed_ms = (int64_t)(now.tv_sec - s->busy_since.tv_sec) * 1000 +
		     (now.tv_nsec - s->busy_since.tv_nsec) / 1000000;
	if (elapsed_ms >= (s->busy_limit_ms > 0 ? s->busy_limit_ms :
						  STORE_BUSY_TIMEOUT_MS))
		return 0;
	ts.tv_sec = 0;
	ts.tv_nsec = (count < 20 ? STORE_BUSY_POLL_FIRST_US :
				   STORE_BUSY_POLL_US) * 1000L;
	nanosleep(&ts, NULL);
	return 1;
}

/* Pages this connection looked up or wrote so far (never reset). */
static uint64_t
store_page_uses(struct store *s)
{
	static const int ops[] = { SQLITE_DBSTATUS_CACHE_HIT,
				   SQLITE_DBSTATUS_CACHE_MISS,
				   SQLITE_DBSTATUS_CACHE_WRITE };
	uint64_t n = 0;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		int cur = 0, hi = 0;

		if (sqlite3_db_status(s->db, ops[i], &cur, &hi, 0) == SQLITE_OK)
			n += (uint32_t)cur;
	}
	return n;
}

/* Why: after a burst every connection keeps the pages it touched (up
   to its cache_size) and every thread's malloc arena its free blocks,
   for as long as the server is idle: most of a worker's memory at rest
   (docs/performance.md, memory at rest). */
void
store_rest(struct store *s)
{
	(void)sqlite3_db_release_memory(s->db);
	store_fts_db_rest(s);
	malloc_trim(0);
	s->rest_uses = store_page_uses(s);
}

void
store_rest_if_idle(struct store *s)
{
	uint64_t uses = store_page_uses(s);

	if (uses == s->tick_uses && uses != s->rest_uses)
		store_rest(s);
	s->tick_uses = uses;
}

void
store_idle_wait(pthread_cond_t *cond, pthread_mutex_t *mu, struct store *st)
{
	struct timespec at;

	if (st == NULL || store_page_uses(st) == st->rest_uses) {
		pthread_cond_wait(cond, mu);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_sec += STORE_REST_MS / 1000;
	at.tv_nsec += (STORE_REST_MS % 1000) * 1000000L;
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	if (pthread_cond_clockwait(cond, mu, CLOCK_MONOTONIC, &at) !=
	    ETIMEDOUT)
		return;
	/* not under mu: the loop must not wait for the trim to submit */
	pthread_mutex_unlock(mu);
	store_rest(st);
	pthread_mutex_lock(mu);
}

/* A PASSIVE checkpoint copies what it can without waiting, but the WAL
   starts again from its beginning only when a writer begins after a
   checkpoint that reached the end of it, with no reader left in it.
   With the commit and index threads of every worker writing all the
   time, that moment never comes: the checkpoint ends, a batch that
   began before it appends its frames, and the file grows. Measured:
   766 MB of WAL after 20 s of APPENDs into a 25 MB database, growing
   for as long as the load lasted. So past restart_frames the
   checkpoint is run again as RESTART, which takes the write lock
   (waiting at most STORE_WAL_RESTART_BUSY_MS for it and for the
   readers), copies the rest and leaves the WAL to be rewritten from
   its start by the next writer: the file stays near restart_frames
   pages, written over in place. A RESTART that finds the lock busy
   past that wait is tried again at the next checkpoint. */
int
store_wal_checkpoint(struct store *s, int restart_frames)
{
	int log = 0, done = 0, rc, limit = s->busy_limit_ms;

	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
				       &log, &done);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return -1;
	if (log <= restart_frames)
		return log;
	s->busy_limit_ms = STORE_WAL_RESTART_BUSY_MS;
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_RESTART,
				       &log, &done);
	s->busy_limit_ms = limit;
	return rc == SQLITE_OK || rc == SQLITE_BUSY ? log : -1;
}

int
store_db_file_open(struct store *s, const char *name, sqlite3 **db_r)
{
	char path[STORE_PATH_MAX];
	int n, rc, fd;

	n = snprintf(path, sizeof(path), "%s/%s", s->datadir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return store_fail(s, STORE_INVALID, "data dir path too long");
	/* Create it ourselves so the mode is 0600 whatever the umask, but
	   never open an existing one: close() drops every POSIX lock this
	   process holds on the file, so a second store in the process (a
	   worker's commit thread) silently took the first one's SHARED
	   lock away. A reader elsewhere could then see itself as the last
	   connection at its close and delete the WAL the server was still
	   writing to. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	else if (errno != EEXIST)
		return store_fail(s, STORE_ERR, "open %s: %s", path,
				  strerror(errno));
	rc = sqlite3_open_v2(path, db_r,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			     store_vfs_name());
	if (rc != SQLITE_OK)
		return store_sql_err_db(s, *db_r, rc);
	sqlite3_extended_result_codes(*db_r, 1);
	sqlite3_busy_handler(*db_r, store_busy_wait, s);
	rc = store_fts_register(*db_r);
	return rc == SQLITE_OK ? STORE_OK : store_sql_err_db(s, *db_r, rc);
}

static int
store_db_open(struct store *s)
{
	static const char *const pragmas =
		"PRAGMA journal_mode=WAL;"
		"PRAGMA synchronous=FULL;"
		/* a WAL that a long transaction grew is cut back to this
		   when it starts again (store_wal_checkpoint) */
		"PRAGMA journal_size_limit=134217728;"
		"PRAGMA foreign_keys=ON;"
		"PRAGMA temp_store=MEMORY;"
		"PRAGMA cache_size=-16000;";
	int ret = store_db_file_open(s, "tern.db", &s->db);

	return ret == STORE_OK ? store_exec(s, pragmas) : ret;
}

struct store *
store_open(const char *datadir, const char **error_r)
{
	static const char *const dirs[] = { "", "blobs", "packs", "tmp",
					    "run" };
	static char open_err[256];
	struct store *s = xcalloc(1, sizeof(*s));
	int ret = STORE_OK;

	s->datadir = xstrdup(datadir);
	s->notify_fd = s->send_fd = s->journal_fd = s->wal_fd = -1;
	s->snap_min_msgs = STORE_VIEW_SNAP_MIN_MSGS;
	s->snap_max_delta = STORE_VIEW_SNAP_MAX_DELTA;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		ret = store_mkdir(s, dirs[i]);
		if (ret != STORE_OK)
			break;
	}
	if (ret == STORE_OK)
		ret = store_db_open(s);
	if (ret == STORE_OK)
		ret = store_schema_migrate(s);
	if (ret == STORE_OK)
		ret = store_fts_db_check(s);
	if (ret == STORE_OK)
		store_changes_open(s);
	/* Best effort: a blob left unfilled (lock timeout, I/O error) has
	   its sort keys computed at SORT time instead. */
	if (ret == STORE_OK)
		(void)store_msg_sort_backfill(s);
	if (ret != STORE_OK) {
		/* XXX a static buffer: store_open has no store to own it */
		snprintf(open_err, sizeof(open_err), "%s", s->errbuf);
		if (error_r != NULL)
			*error_r = open_err;
		store_close(&s);
		return NULL;
	}
	store_cleanup_run(s);
	return s;
}

void
store_close(struct store **sp)
{
	struct store *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	if (s->batch)
		store_batch_rollback(s);
	store_fts_discard(s, 0);
	store_fts_box_free(s);
	store_view_snap_drop(s);
	for (size_t i = 0; i < STORE_STMT_SLOTS; i++) {
		if (s->stmts[i].stmt != NULL)
			sqlite3_finalize(s->stmts[i].stmt);
	}
	store_fts_db_close(s);
	if (s->db != NULL)
		sqlite3_close(s->db);
	store_notify_close(s);
	if (s->journal_fd >= 0)
		close(s->journal_fd);
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	free(s->events);
	store_blob_cache_free(s);
	store_pack_free(s);
	store_changes_close(s);
	free(s->datadir);
	free(s);
}

const char *
store_datadir(const struct store *s)
{
	return s->datadir;
}


const char *
store_last_error(const struct store *s)
{
	return s->errbuf;
}

int
store_last_code(const struct store *s)
{
	return s->errcode;
}
