/* The full-text index's own database file, DATADIR/index.db: the FTS5
   tables blob_fts and blob_hfts (store_fts.c says what they hold), on a
   second SQLite connection of the store (s->fts_db), opened at its first
   use.

   Why a file of its own: a 5 KB message's index rows are about three
   times the WAL pages of its metadata (43-60 pages against 17, one
   session, docs/performance.md 1h) and about 0.5 ms of FTS5 work under
   the write lock. In tern.db they held the one write lock that every
   commit thread's batch waits for, and their pages went into the WAL
   that each batch's COMMIT flushes. Here they have their own lock and
   their own WAL, and only the index threads (store_index.c) write them.

   What ties the two files together: blobs.fts and blobs.hfts in tern.db
   say what the index promises for a blob. The rows are committed here,
   with an fsync, before the transaction in tern.db that sets those
   states (store_fts_write_rows, then store_fts_claim_all), and SEARCH
   reads the states before the rows (store_fts_run), so whatever state
   it sees, the rows behind it are there. A crash between the two leaves
   rows without a state: the blob is indexed again, over them. Rows of a
   collected blob stay until store_fts_gc removes them (its id is noted
   in fts_gone by a trigger); until then they match nothing that exists,
   or, when the id was reused, a blob that is not indexed yet and so is
   always a candidate, never a sure match. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "store/store_int.h"

int
store_fts_sql_err(struct store *s, int rc)
{
	return store_sql_err_db(s, s->fts_db, rc);
}

int
store_fts_exec(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->fts_db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : store_fts_sql_err(s, rc);
}

int
store_fts_db_check(struct store *s)
{
	char path[STORE_PATH_MAX];
	int n, ret;

	n = snprintf(path, sizeof(path), "%s/index.db", s->datadir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return store_fail(s, STORE_INVALID, "data dir path too long");
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return STORE_OK;
	/* a new index.db (a new store, or the file was removed): no state
	   in tern.db may promise rows from before it */
	ret = store_fts_db(s);
	if (ret == STORE_OK)
		ret = store_exec(s, "UPDATE blobs SET fts = 0, hfts = 0"
				    " WHERE fts != 0 OR hfts != 0");
	store_fts_db_close(s);
	return ret;
}

int
store_fts_db(struct store *s)
{
	static const char *const pragmas =
		"PRAGMA journal_mode=WAL;"
		/* rows must be durable before the states that promise them
		   (store_fts_write_rows) */
		"PRAGMA synchronous=FULL;"
		"PRAGMA journal_size_limit=134217728;"
		"PRAGMA temp_store=MEMORY;"
		/* 2 MB: new segments are read again only by merges, and
		   SEARCH's doclists come from the OS page cache as well */
		"PRAGMA cache_size=-2000;";
	int ret;

	if (s->fts_db != NULL)
		return STORE_OK;
	ret = store_db_file_open(s, "index.db", &s->fts_db);
	if (ret == STORE_OK)
		ret = store_fts_exec(s, pragmas);
	if (ret == STORE_OK)
		ret = store_schema_migrate_index(s);
	if (ret != STORE_OK)
		store_fts_db_close(s);
	return ret;
}

sqlite3_stmt *
store_fts_stmt(struct store *s, const char *sql)
{
	if (store_fts_db(s) != STORE_OK)
		return NULL;
	return store_stmt_in(s, s->fts_db, s->fts_stmts, STORE_FTS_DB_STMTS,
			     sql);
}

int
store_fts_db_checkpoint(struct store *s, int restart_frames)
{
	int log = 0, done = 0, rc, limit = s->busy_limit_ms;

	if (s->fts_db == NULL)
		return 0;
	rc = sqlite3_wal_checkpoint_v2(s->fts_db, NULL,
				       SQLITE_CHECKPOINT_PASSIVE, &log, &done);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return -1;
	if (log <= restart_frames)
		return log;
	/* as store_wal_checkpoint: the WAL is written again from its start */
	s->busy_limit_ms = STORE_WAL_RESTART_BUSY_MS;
	rc = sqlite3_wal_checkpoint_v2(s->fts_db, NULL,
				       SQLITE_CHECKPOINT_RESTART, &log, &done);
	s->busy_limit_ms = limit;
	return rc == SQLITE_OK || rc == SQLITE_BUSY ? log : -1;
}

void
store_fts_db_rest(struct store *s)
{
	if (s->fts_db != NULL)
		sqlite3_db_release_memory(s->fts_db);
}

void
store_fts_db_close(struct store *s)
{
	for (size_t i = 0; i < STORE_FTS_DB_STMTS; i++) {
		if (s->fts_stmts[i].stmt != NULL)
			sqlite3_finalize(s->fts_stmts[i].stmt);
		s->fts_stmts[i].stmt = NULL;
		s->fts_stmts[i].sql = NULL;
	}
	if (s->fts_db != NULL)
		sqlite3_close(s->fts_db);
	s->fts_db = NULL;
}
