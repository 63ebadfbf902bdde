#ifndef TERN_STORE_INT_H
#define TERN_STORE_INT_H
/* Private to src/store/: the struct store, the prepared-statement cache,
   transactions with post-commit work (blob garbage collection, change
   notifications) and the blob path helpers. Never include this from
   outside src/store/ (unit tests of the store excepted). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"
#include "store/store.h"

/* Temp files and unreferenced blobs younger than this survive the
   cleanup in store_open(): a writer may still be about to commit. */
#define STORE_ORPHAN_GRACE_SECS 300
/* A process starts a new pending-blob journal after this many seconds,
   so a journal older than the grace period is never still written to. */
#define STORE_JOURNAL_ROTATE_SECS 60
#define STORE_BUSY_TIMEOUT_MS 5000
/* Sleeps between retries of a locked database (store_busy_wait): short
   for the first 20 tries, then a little longer. */
#define STORE_BUSY_POLL_FIRST_US 200
#define STORE_BUSY_POLL_US 1000
/* A WAL past this many frames (about 64 MB) is checkpointed with
   RESTART, not only PASSIVE (store_wal_checkpoint), waiting for the
   write lock at most STORE_WAL_RESTART_BUSY_MS. */
#define STORE_WAL_RESTART_FRAMES 16000
#define STORE_WAL_RESTART_BUSY_MS 100
#define STORE_STMT_SLOTS 512
/* Pending notifications kept inside one batch; beyond this the batch
   publishes a "mailbox list changed" event per account instead. */
#define STORE_PENDING_EVENTS_MAX 4096
#define STORE_PATH_MAX 4096

/* A mailbox's view snapshot (store_view_snap.c) is written at a load of
   at least STORE_VIEW_SNAP_MIN_MSGS messages without a usable one (below
   that a full read takes about 1 ms, ~200 ns a row, and only mailboxes
   with more than 1,000 UIDs are read on the read thread anyway), and
   rewritten when more than STORE_VIEW_SNAP_MAX_DELTA rows changed or
   were expunged since it: those cost an index lookup each at every cold
   load (about 1 ms per 1,000), a rewrite 16 bytes per message once
   (1.6 MB for 100,000), on the read thread after the answer. */
#define STORE_VIEW_SNAP_MIN_MSGS 5000
#define STORE_VIEW_SNAP_MAX_DELTA 1000
/* How long that write waits for the write lock (ms): the read thread's
   next job waits behind it, and a missed write is only a slower load.
   Long enough for a few of the other writers' transactions (an index
   transaction of STORE_INDEX_ROWS blobs holds it for up to ~16 ms). */
#define STORE_VIEW_SNAP_BUSY_MS 50

/* The header fields of the second index (blob_hfts, schema step 11). */
#define STORE_HFTS_FIELDS 5

struct store_fts_pending {
	int64_t blob_id;
	struct buf hdr, body;
	bool text;	/* hdr and body go into blob_fts */
	bool fields;	/* fld into blob_hfts */
	struct buf fld[STORE_HFTS_FIELDS];
	/* blobs.fts and blobs.hfts (STORE_FTS_*), claimed after the rows */
	int state, hstate;
	/* what store_fts_write_rows wrote */
	bool put_text, put_fields;
	/* the text was read (store_fts_prepare); a note of
	   store_fts_add is not */
	bool read;
	/* the blob's hash when deferred: its id may name another blob by
	   the time the rows are written (collected, the rowid reused) */
	char hash[STORE_HASH_HEX_LEN + 1];
};

/* A blob for the index thread (store_index.c): its id and hash only. */
struct store_fts_hint {
	int64_t blob_id;
	char hash[STORE_HASH_HEX_LEN + 1];
};

struct store_stmt_slot {
	const char *sql;
	sqlite3_stmt *stmt;
};

/* Mailboxes one transaction remembers as changed (store_changes.c);
   more bump the global generation. */
#define STORE_CHANGED_MAX 32

/* Statements cached for the index database (store_fts_db.c). */
#define STORE_FTS_DB_STMTS 32

struct store {
	char *datadir;
	sqlite3 *db;
	struct store_stmt_slot stmts[STORE_STMT_SLOTS];
	/* index.db (store_fts_db.c), opened at its first use */
	sqlite3 *fts_db;
	struct store_stmt_slot fts_stmts[STORE_FTS_DB_STMTS];
	char errbuf[256];
	int errcode; /* code of the last store_fail(), for store_last_code */

	bool batch;	    /* store_batch_begin() is active */
	bool batch_failed;  /* SQLite rolled the batch back on its own */
	unsigned tx_depth;  /* nested store_tx_begin() calls */
	struct timespec busy_since; /* first SQLITE_BUSY of this wait */

	/* post-commit work */
	struct store_notify_event *events;
	size_t event_count, event_cap;
	/* store_notify_defer: the events of committed transactions wait
	   for store_notify_flush; events[0..event_committed) are theirs */
	bool notify_deferred;
	size_t event_committed;
	bool gc_needed; /* some blob refcount reached 0 */
	/* store_blob_gc removed a blob row (its id is in fts_gone): the
	   commit thread then asks the index thread for store_fts_gc */
	bool blobs_collected;
	/* new blobs to index after the COMMIT (ids and hashes), or, on
	   the index thread, their rows (store_fts.c) */
	struct store_fts_pending *fts_pending;
	size_t fts_count, fts_cap;
	/* the index thread's: rows held until store_fts_flush_deferred;
	   fts_batch_mark: entries held before this batch */
	bool fts_deferred;
	/* hints only (store_fts_hints): held entries carry no text */
	bool fts_hints;
	size_t fts_batch_mark;
	/* the mailbox the last merge pass read (store_fts.c), or NULL */
	struct store_fts_box *fts_box;

	/* notification sockets */
	int notify_fd;
	int send_fd;
	char *notify_path;
	/* the run/ sockets last listed, and the directory's mtime then:
	   a publish rereads the directory only when it changed */
	char **peers;
	size_t peer_count;
	struct timespec peers_mtime;
	bool peers_valid;

	/* journal of blob files renamed into place by this process */
	int journal_fd;
	int64_t journal_opened;

	/* this store's own pack file (store_pack.c), or NULL */
	struct store_pack *pack;

	/* small blobs read lately (store_blob_map_cached), or NULL */
	struct store_blob_cache *blob_cache;

	/* shared change generations (store_changes.c), or NULL */
	struct store_changes_map *changes;
	bool changes_traced; /* the mailbox triggers are in place */
	int64_t changed[STORE_CHANGED_MAX]; /* this transaction's mailboxes */
	size_t changed_count;
	bool changed_all; /* more than STORE_CHANGED_MAX */
	/* the WAL hook's checkpoint threshold (0: none) and the WAL's
	   frames after the last commit */
	int ckpt_frames;
	int wal_frames;
	/* store_wal_sync_after_commit: the WAL is fdatasynced by the WAL
	   hook, after the write lock is gone (wal_fd: the WAL, open once
	   needed); the errno of a failed one until taken */
	bool wal_sync;
	int wal_fd;
	int wal_sync_err;
	/* store_busy_wait's limit when > 0 (ms), else STORE_BUSY_TIMEOUT_MS */
	int busy_limit_ms;
	/* store_page_uses at the last store_rest, and at the last
	   store_rest_if_idle */
	uint64_t rest_uses, tick_uses;
	/* the commit thread's: the blobs of the job that runs, with their
	   structure parsed before the batch took the write lock
	   (store_msg_meta_ensure looks there first; ahead_pos: where the
	   last one was found) */
	const struct store_commit_blob *ahead;
	size_t ahead_n, ahead_pos;

	/* a view snapshot for store_view_snap_flush, or NULL; the
	   thresholds (STORE_VIEW_SNAP_*; the unit tests lower them) */
	struct store_view_snap_out *snap_out;
	uint32_t snap_min_msgs, snap_max_delta;
};

/* Marks into the post-commit lists, to undo a savepoint's share. */
struct store_tx {
	size_t event_mark;
	size_t fts_mark;
	bool gc_mark;
	bool nested;
};

/* ---- store_vfs.c ---- */
/* Name of the VFS to open the database with: the default one, but a
   relative name stays relative (see store_vfs.c). NULL when SQLite
   refused to register it. Not thread-safe on the first call. */
const char *store_vfs_name(void);

/* Fill what older mail lacks, in transactions: batch does one, for
   rows with ids past *after, moves *after past them and sets *done_r
   when none was left. Runs it until done or an error. */
typedef int store_backfill_fn(struct store *s, int64_t *after, bool *done_r);
int store_backfill(struct store *s, store_backfill_fn *batch);

/* ---- store_changes.c ---- */
/* Map run/changes and install the trigger and hooks (after the schema
   is migrated). Best effort: without it readers always query. */
void store_changes_open(struct store *s);
void store_changes_close(struct store *s);

/* ---- store_blob.c ---- */
void store_blob_cache_free(struct store *s);

/* ---- store.c ---- */
/* Record an error text (printf-like) and return err. */
int store_fail(struct store *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Map a SQLite result code to enum store_err, recording errmsg. */
int store_sql_err(struct store *s, int rc);
/* The same for an error of connection db (NULL: out of memory). */
int store_sql_err_db(struct store *s, sqlite3 *db, int rc);
/* Open DATADIR/name on *db_r (created 0600 when missing), with the
   store's busy handler and tern_cover; STORE_OK or the store's error
   (*db_r may then be set: the caller closes it). */
int store_db_file_open(struct store *s, const char *name, sqlite3 **db_r);
/* The busy handler of the store's connections (ctx: the store). */
int store_busy_wait(void *ctx, int count);
/* The cached prepared statement for sql (a string literal: cached by
   address), reset and with cleared bindings, or NULL (error recorded). */
sqlite3_stmt *store_stmt(struct store *s, const char *sql);
/* The same on connection db with its own cache of count slots. */
sqlite3_stmt *store_stmt_in(struct store *s, sqlite3 *db,
			    struct store_stmt_slot *slots, size_t count,
			    const char *sql);
/* Step a statement that returns no rows, then reset it. */
int store_stmt_exec(struct store *s, sqlite3_stmt *st);
/* Run sql (no parameters) once. */
int store_exec(struct store *s, const char *sql);
/* store_exec of a statement run often, prepared once (sql: a literal). */
int store_exec_cached(struct store *s, const char *sql);
/* p with room for element n of size bytes: grows (doubling, from 16)
   when n == *cap. The array that rows are collected into. */
void *store_grow(void *p, size_t *cap, size_t n, size_t size);
/* Copy column i as xmalloc'd string, or NULL when SQL NULL. */
char *store_col_strdup(sqlite3_stmt *st, int i);

/* Write transaction: BEGIN IMMEDIATE outside a batch, otherwise a
   SAVEPOINT. commit: COMMIT (then post-commit work) or RELEASE. */
int store_tx_begin(struct store *s, struct store_tx *tx);
int store_tx_commit(struct store *s, struct store_tx *tx);
void store_tx_rollback(struct store *s, struct store_tx *tx);
/* Read snapshot for multi-statement reads (no-op inside a transaction). */
int store_read_begin(struct store *s, bool *started_r);
void store_read_end(struct store *s, bool started);

/* Queue a change event for publication after commit. */
void store_event_add(struct store *s, int64_t account_id,
		     int64_t mailbox_id, uint64_t modseq);
int64_t store_now(void);

/* ---- store_schema.c ---- */
int store_schema_migrate(struct store *s);
/* The same for index.db on s->fts_db (its tables, store_fts_db.c). */
int store_schema_migrate_index(struct store *s);

/* ---- store_blob.c ---- */
/* 64 lowercase hex digits? */
bool store_hash_valid(const char *hash);
/* DATADIR/blobs/ab/cdef...; -1 when it does not fit. */
int store_blob_path(const struct store *s, const char *hash, char *path,
		    size_t size);
/* Inside a write transaction: id of the blobs row for hash, created
   (refcount 0, no metadata) when missing. Verifies that the file exists
   (under the write lock, so the garbage collector cannot remove it
   before this transaction commits). */
int store_blob_row(struct store *s, const char *hash, int64_t *id_r,
		   uint64_t *size_r);
/* Adjust the refcount of blob id by delta (may reach 0: collected after
   commit). */
int store_blob_ref(struct store *s, int64_t blob_id, int64_t delta);
/* Group finishing (store_commit.c): the writer's temp file descriptor,
   for an fsync by the caller; -1 when the writer failed already. */
int store_blob_writer_fd(const struct store_blob_writer *w);
/* The temp file's path of a parked writer (store_blob_writer_park), to
   open for that fsync; NULL when not parked or failed. Valid while the
   writer lives. */
const char *store_blob_writer_parked(const struct store_blob_writer *w);
/* Before the fsync (store_commit.c): hash the writer's bytes and rename
   its file to its content name unless a file has that name already, so
   the caller can fsync the file (store_blob_writer_fd, or by the path of
   store_blob_writer_parked) and the blob directory *dir_r (0..255; -1:
   not renamed, seal does it after the fsync) together. Errors recorded
   on s and kept by the writer (seal reports them). Once placed, a file
   whose fsync fails stays under its name, never trusted (see the top
   of store_blob.c); the cleanup journal has it. */
int store_blob_writer_place(struct store *s, struct store_blob_writer *w,
			    int *dir_r);
/* Like store_blob_writer_finish() but without the directory fsync, with
   errors recorded on s (the caller's store, e.g. the commit thread's):
   fsync (synced < 0; 0: the caller fsynced the fd already; > 0: that
   fsync failed with this errno), hash, rename into place unless placed
   already. *dir_r: the blob directory (0..255) that still needs an
   fsync before the blob is durable, or -1 (nothing renamed here). The
   writer is freed in every case. */
int store_blob_writer_seal(struct store *s, struct store_blob_writer **w,
			   int synced, char *hash_r, uint64_t *size_r,
			   int *dir_r);
/* fsync DATADIR/blobs/<dir as two hex digits>. */
int store_blob_dir_sync(struct store *s, int dir);
/* Open that directory for an fsync by the caller: fd, or -1 (error
   recorded). */
int store_blob_dir_open(struct store *s, int dir);
/* After commit: unlink blob files whose refcount is 0 and delete their
   rows (own small transaction). */
void store_blob_gc(struct store *s);
/* The most bytes of one blob a writer keeps in memory (0: none, every
   writer makes its file; the unit tests change it). */
extern size_t store_blob_mem_blob_max;
/* Whether the writer still holds its bytes in memory (no temp file: the
   blob stage appends them to a pack, store_blob_writer_pack). */
bool store_blob_writer_in_memory(const struct store_blob_writer *w);
/* Hash an in-memory writer's bytes and append them to s's own pack
   (store_pack_append): their place in *pack_r, *off_r, fsynced by the
   caller (store_pack_sync_fds) before a row may name it. The bytes stay
   readable (store_blob_writer_bytes) until the writer is freed. */
int store_blob_writer_pack(struct store *s, struct store_blob_writer *w,
			   char *hash_r, uint64_t *size_r, int64_t *pack_r,
			   uint64_t *off_r);
const uint8_t *store_blob_writer_bytes(const struct store_blob_writer *w,
				       size_t *len_r);
/* pread len bytes at off whole: 0, -1 (errno), or 1 at a short file. */
int store_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* Read len bytes at off of the open file fd into the heap; closes fd. */
int store_blob_read_range(struct store *s, int fd, const char *path,
			  uint64_t off, size_t len, struct store_map *map_r);

/* ---- store_pack.c ---- */
/* Append to this store's own pack (created, locked, rolled over as
   needed): where the bytes went. Not durable before the next fsync. */
int store_pack_append(struct store *s, const void *data, size_t len,
		      int64_t *id_r, uint64_t *off_r);
/* The descriptors to fsync for the bytes appended since the last
   store_pack_synced: the pack (-1: none) and, when the pack is new, the
   packs directory (-1: none; the caller closes it). */
int store_pack_sync_fds(struct store *s, int *fd_r, int *dir_fd_r);
/* After that fsync (err: 0 or its errno; a failed one closes the pack
   for good). */
void store_pack_synced(struct store *s, int err);
int store_pack_read(struct store *s, int64_t id, uint64_t off, uint64_t len,
		    struct store_map *map_r);
/* On the index thread: unlink packs long empty, compact mostly dead
   ones (store_pack.c, top). */
int store_pack_reclaim(struct store *s);
/* A pack's size past which its writer starts a new one (the unit tests
   lower it). */
extern uint64_t store_pack_roll_bytes;
/* How long an empty pack stays after a pass first found it empty (s;
   the unit tests lower it). */
extern int store_pack_empty_grace_s;
/* When not 0, the errno that a pack fsync of the commit thread's blob
   stage reports instead of its own (the unit tests set it: a failing
   device is not at hand). */
extern int store_commit_fault_pack_fsync;
/* Whether a pass found empty packs that a later one may unlink. */
bool store_pack_pending(const struct store *s);
/* The blob stage's, at each round: packs it rolls over from now on
   stay locked until the first tag jobs it passed on are committed;
   those retired before committed jobs (counted the same way) close. */
void store_pack_hold(struct store *s, uint64_t tag, uint64_t committed);
void store_pack_close(struct store *s);
void store_pack_free(struct store *s);

/* ---- store_cleanup.c ---- */
/* Remove stale temp files and blobs listed in stale journals that no
   metadata references. Errors are ignored (best effort). */
void store_cleanup_run(struct store *s);
/* Append hash to this process's journal before renaming a new blob in. */
int store_cleanup_journal_add(struct store *s, const char *hash);

/* ---- store_account.c (row helpers shared with plans, domains and
   aliases) ---- */
void store_account_lower(char *p);
/* Step a one-column integer query: 1 row (value in *v_r), 0 none, error. */
int store_account_step_int(struct store *s, sqlite3_stmt *st, int64_t *v_r);
/* Every row's column 0 as an xmalloc'd string array, at most max. */
int store_account_read_strings(struct store *s, sqlite3_stmt *st,
			       char ***strings_r, size_t *count_r, size_t max);
/* Column i clamped to the unsigned range (negative: 0). */
uint64_t store_col_u64(sqlite3_stmt *st, int i);
uint32_t store_col_u32(sqlite3_stmt *st, int i);
/* Is a normalised address storable? *domain_r points at its domain. */
bool store_address_valid(const char *address, const char **domain_r);
/* Normalised and valid for storing (xmalloc'd), or NULL. */
char *store_address_normalize_valid(const char *address,
				    const char **domain_r);
/* id of the account with a normalised address: 1, 0, error. */
int store_account_id(struct store *s, const char *address, int64_t *id_r);

/* ---- store_domain.c ---- */
bool store_domain_valid(const char *name);
/* Lowercase, one trailing dot dropped, validated: xmalloc'd or NULL. */
char *store_domain_normalize(const char *domain);
/* id of a normalised domain: 1 found, 0 not, error. */
int store_domain_id(struct store *s, const char *name, int64_t *id_r);

/* ---- store_mailbox.c ---- */
/* Validate and normalise a mailbox name (INBOX case-folded): xmalloc'd,
   or NULL with *error_r set. */
char *store_mailbox_name_normalize(const char *name, const char **error_r);
/* Inside a transaction: create one mailbox (no parents, no checks). */
int store_mailbox_insert(struct store *s, int64_t account_id,
			 const char *name, const char *special_use,
			 int64_t *id_r);
/* Inside a transaction: next HIGHESTMODSEQ of a mailbox (stored). */
int store_mailbox_bump_modseq(struct store *s, int64_t mailbox_id,
			      uint64_t *modseq_r);

/* ---- store_msg.c ---- */
/* Inside a transaction: expunge every message of the mailbox (releasing
   blob references and quota) without recording expunged UIDs. */
int store_msg_purge_mailbox(struct store *s, int64_t mailbox_id);
/* UIDs of mailbox_id expunged after since, ascending (free *uids_r). */
int store_msg_expunged_list(struct store *s, int64_t mailbox_id,
			    uint64_t since, uint32_t **uids_r,
			    size_t *count_r);

/* ---- store_sort.c ---- */
struct mime_sort_keys;
/* Store a blob's sort keys, inside a write transaction. */
int store_sort_keys_save(struct store *s, int64_t blob_id, int64_t date,
			 const struct mime_sort_keys *k);
/* Only the blob_sort row: the caller sets blobs.sort_keys = 1 in the
   same transaction. */
int store_sort_keys_row(struct store *s, int64_t blob_id, int64_t date,
			const struct mime_sort_keys *k);

/* ---- store_fts.c ---- */
/* blobs.fts (store_fts.c says what each promises) */
#define STORE_FTS_NONE 0  /* not indexed: always a candidate */
#define STORE_FTS_EXACT 1 /* valid UTF-8, nothing folds to ASCII */
#define STORE_FTS_RAW 2	  /* not valid UTF-8 */
#define STORE_FTS_INEXACT 3 /* valid UTF-8 with U+017F, U+212A or NUL */
/* looked at, too long to index: always a candidate (unlike 0, the
   pass over unindexed blobs does not try it again) */
#define STORE_FTS_SKIPPED 4
/* Inside a write transaction: note the new blob blob_id for the index.
   After the COMMIT a store indexes what it noted (store_fts_index_held,
   from store_post_commit), or, for the commit thread (store_fts_hints),
   hands it to the index thread. */
void store_fts_add(struct store *s, int64_t blob_id, const char *hash);
/* Index the noted blobs now (outside a transaction): read, write their
   rows into index.db, then their states (store_fts_write_all). Errors
   leave blobs at 0 (read by SEARCH). */
void store_fts_index_held(struct store *s);
/* Index hints[0..n) now (outside a transaction). */
int store_fts_index_hints(struct store *s, const struct store_fts_hint *hints,
			  size_t n);
/* Index up to max blobs left unindexed (fts or hfts 0) with an id past
   *after, in id order, moving *after past them; *count_r: how many were
   looked at (0: none is left past *after). Outside a transaction. */
int store_fts_index_pending(struct store *s, int64_t *after, size_t max,
			    size_t *count_r);
/* Remove the rows of up to max collected blobs (fts_gone) from index.db;
   *done_r: how many ids were handled (0: none waits). */
int store_fts_gc(struct store *s, size_t max, size_t *done_r);
/* Index matches below a twentieth of the mailbox are mapped to UIDs one
   lookup each; more, by one pass over the mailbox (store_fts.c). */
#define STORE_FTS_LOOKUP_RATIO 20
/* An ASCII needle of at least STORE_FTS_COVER_MIN_CHARS characters is
   asked as its covering trigrams (one every 3 characters and the last),
   at most STORE_FTS_COVER_MAX of them (longer needles: the phrase). */
#define STORE_FTS_COVER_MIN_CHARS 5
#define STORE_FTS_COVER_MAX 16
/* Register the FTS5 function behind that (tern_cover) on db. */
int store_fts_register(sqlite3 *db);
/* what separates the pieces of a needle for STORE_FTS_WORDS */
#define STORE_FTS_SPACE " \t\r\n"
/* This store (the index thread's) holds the rows it reads
   (store_fts_read_hints) until store_fts_flush_deferred writes them;
   it notes no blobs of its own. */
void store_fts_defer(struct store *s);
/* Write the oldest max_rows rows held (store_fts_defer): the rows into
   index.db in one transaction, committed with an fsync, then their
   states into tern.db in one without (store_fts_write_all). Rows of
   blobs that were collected or indexed meanwhile are skipped. On error
   those rows are dropped (their blobs stay unindexed). Outside a
   transaction only. */
int store_fts_flush_deferred(struct store *s, size_t max_rows);
/* From now on this store (the commit thread's) does not even read the
   text of new blobs: a batch only holds each new blob's id and hash,
   store_fts_take_hints hands them to the index thread after the COMMIT,
   and that one extracts them (store_fts_read_hints) and writes their
   rows (store_fts_flush_deferred). So
   neither the text extraction nor the index's write lock time is on the
   path of a reply. Implies store_fts_defer. */
void store_fts_hints(struct store *s);
/* Move the held hints of committed batches into *out (grown as needed,
   *count_r entries); the store holds none after. */
void store_fts_take_hints(struct store *s, struct store_fts_hint **out,
			  size_t *cap, size_t *count_r);
/* Read and extract the blobs of hints[0..n), held in s (no transaction;
   blobs collected meanwhile are skipped); store_fts_flush_deferred
   writes their rows. Outside a transaction only. */
int store_fts_read_hints(struct store *s, const struct store_fts_hint *hints,
			 size_t n);
/* pthread_cond_wait for a thread with a store of its own: one whose
   store was used since its last rest and that then waits STORE_REST_MS
   without being woken rests it (store_rest) and returns; the caller
   checks its condition and waits again, as after any wakeup. */
#define STORE_REST_MS 1000
void store_idle_wait(pthread_cond_t *cond, pthread_mutex_t *mu,
		     struct store *st);
/* Messages whose structure store_msg_meta_ensure parsed itself, inside
   a write transaction, in this process (tests). */
uint64_t store_msg_parsed_in_tx(void);
/* Checkpoint the WAL: PASSIVE, then, when it still holds more than
   restart_frames frames, RESTART (see store.c). Returns the frames in
   the WAL after it, or -1 when SQLite failed. */
int store_wal_checkpoint(struct store *s, int restart_frames);
/* The index thread (store_index.c). */
struct store_index;
/* busy: how many jobs the process's commit thread has in flight; the
   index rows wait for it to be 0 (or a bounded time), so that they do
   not take the write lock from the batches that replies wait for. */
struct store_index *store_index_new(const char *datadir,
				    const _Atomic size_t *busy,
				    const char **error_r);
/* The index rows' wait for the commit thread (store_index.c): start
   and the last time it had jobs in flight (ms). */
struct store_index_yield {
	int64_t start, quiet_since;
};
/* One look at the commit thread (busy: its jobs in flight, at now):
   may the rows go? (tests) */
bool store_index_yield_done(struct store_index_yield *y, size_t busy,
			    int64_t now);
/* Queue blobs (committed) for their index rows. */
void store_index_add(struct store_index *ix, const struct store_fts_hint *hints,
		     size_t n);
/* Wait while too many blobs wait for their index rows (the commit
   thread, before a batch). */
void store_index_throttle(struct store_index *ix);
/* How long the index thread's transactions wait for the write lock
   before they count as busy and are tried again (tests; 0: the store's
   default). Call before the first store_index_add. */
void store_index_busy_limit(struct store_index *ix, int ms);
/* Remove the index rows of collected blobs (store_fts_gc), soon. */
void store_index_gc_soon(struct store_index *ix);
/* Run a PASSIVE checkpoint on the index thread, soon. */
void store_index_checkpoint_soon(struct store_index *ix);
/* Index what waits (for a bounded time), stop the thread, free. */
void store_index_free(struct store_index **ix);
/* Drop held rows from index mark on (a rolled-back savepoint). */
void store_fts_discard(struct store *s, size_t mark);
/* Free s->fts_box (store_close). */
void store_fts_box_free(struct store *s);

/* ---- store_fts_db.c ---- */
/* At store_open: when index.db does not exist, create it and set every
   blob unindexed in tern.db (a removed index.db is rebuilt, never
   trusted where it is gone). */
int store_fts_db_check(struct store *s);
/* Open index.db on s->fts_db if it is not open yet (creating its
   tables); STORE_OK when it is. */
int store_fts_db(struct store *s);
/* A cached statement on s->fts_db (opening it first); NULL with the
   store's error set. sql must be a string literal, as for store_stmt;
   store_stmt_exec runs it. */
sqlite3_stmt *store_fts_stmt(struct store *s, const char *sql);
int store_fts_exec(struct store *s, const char *sql);
int store_fts_sql_err(struct store *s, int rc);
/* As store_wal_checkpoint, for index.db (0 when it is not open). */
int store_fts_db_checkpoint(struct store *s, int restart_frames);
/* Free what its connection caches (store_rest). */
void store_fts_db_rest(struct store *s);
void store_fts_db_close(struct store *s);

/* ---- store_view_snap.c ---- */
/* Building a snapshot blob: add the view's messages in ascending UID
   order (out of order, or more than fit, makes it bad: no blob). */
struct store_view_snap_enc {
	uint8_t *rec, *kw;
	size_t rec_len, rec_cap, kw_len, kw_cap;
	uint32_t count, kw_count, last_uid;
	bool bad;
};
void store_view_snap_enc_add(struct store_view_snap_enc *e,
			     const struct store_view_msg *m);
/* The blob (xmalloc'd, *len_r bytes), or NULL when bad; e is reset. */
uint8_t *store_view_snap_enc_finish(struct store_view_snap_enc *e,
				    size_t *len_r);
void store_view_snap_enc_free(struct store_view_snap_enc *e);
/* Reading one: open checks all of data (len bytes, count records, as
   the row says) and says false when anything is off (another format or
   byte order, truncated, UIDs not ascending, a keyword entry out of
   place or range). next gives the records in order; m->keywords points
   into data (NULL: none). Nothing is copied: data must stay. */
struct store_view_snap_rd {
	const uint8_t *rec, *kw, *next_kw;
	uint32_t count, kw_count, i, k;
};
bool store_view_snap_open(struct store_view_snap_rd *rd, const void *data,
			  size_t len, uint32_t count);
bool store_view_snap_next(struct store_view_snap_rd *rd,
			  struct store_view_msg *m);
/* Inside the read transaction of store_mailbox_view_snapshot, box its
   row: the view through fn (ascending UID), from the snapshot and the
   changes since when there is a usable one, else from every row; a
   new snapshot is kept in s for store_view_snap_flush when one is due
   (load->snap_save). */
int store_view_snap_load(struct store *s, const struct store_mailbox *box,
			 store_msg_view_fn *fn, void *ctx,
			 struct store_view_load *load);
/* Write the kept snapshot (outside a transaction; inside one it waits
   for the next call): its own transaction, synchronous=NORMAL, at most
   STORE_VIEW_SNAP_BUSY_MS for the lock, never over a newer one. The
   snapshot is dropped whatever the result. 1 done (*w_r, may be NULL,
   says what), 0 none was kept, or an error (*w_r names the mailbox). */
struct store_view_snap_write {
	int64_t mailbox_id;
	uint32_t count;
	uint64_t modseq;
	size_t bytes;
	bool written; /* false: the row there was as new or newer */
};
int store_view_snap_flush(struct store *s, struct store_view_snap_write *w_r);
/* Forget the kept snapshot unwritten (store_close). */
void store_view_snap_drop(struct store *s);
/* Set the thresholds (tests). */
void store_view_snap_limits(struct store *s, uint32_t min_msgs,
			    uint32_t max_delta);

/* ---- store_notify.c ---- */
/* Send the events of committed transactions. */
void store_notify_flush(struct store *s);
/* From now on a COMMIT keeps its events for the caller's
   store_notify_flush instead of sending them itself (the commit
   thread: it wakes the loop first, so a reply does not wait for the
   datagrams to every process). */
void store_notify_defer(struct store *s);
void store_notify_close(struct store *s);

#endif
