/* The index thread of a process: full-text rows and WAL checkpoints
   off the commit thread. The commit thread's store holds only the id
   and hash of each new blob (store_fts_hints); after each batch's
   COMMIT and the wake of the loop it hands them over here
   (store_index_add). This thread, with a store of its own, reads each
   blob, extracts its text and header fields and writes their rows, at
   most STORE_INDEX_ROWS blobs per transaction, without an fsync
   (store_fts_index_hints: a power cut loses index rows only; their
   blobs stay at blobs.fts = 0, which SEARCH reads and checks). It also
   runs the checkpoints the commit thread asks for.

   Why a thread: the text extraction and FTS5's tokenizing were most of
   the commit thread's time per message, done between two batches, so a
   batch's replies waited for the previous batch's index rows. Here they
   run beside the batches (on the other core when there is one). The
   index rows still take SQLite's write lock, so a transaction is kept
   short: a few blobs.

   Bounds: at most STORE_INDEX_QUEUE_MAX blobs wait; past that a blob is
   not indexed (it stays at 0: always a candidate, read by SEARCH) and
   counted. At the end, what waits is indexed for at most
   STORE_INDEX_DRAIN_MS; the rest stays at 0 the same way. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

/* Blobs per index transaction: about 0.5 ms of FTS5 work each for 5 KB
   of text, so the other writers wait at most a few ms for the lock. */
#define STORE_INDEX_ROWS 8
#define STORE_INDEX_QUEUE_MAX 100000
#define STORE_INDEX_DRAIN_MS 1000

struct store_index {
	struct store *st; /* this thread's only */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* work, a checkpoint or stop */
	struct store_fts_hint *q; /* waiting blobs, q[head..count) */
	size_t head, count, cap;
	bool checkpoint; /* asked for, not run yet */
	bool stop;
	uint64_t indexed, dropped; /* statistics, under mu */
};

static int64_t
store_index_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take up to STORE_INDEX_ROWS waiting blobs into rows (under mu). */
static size_t
store_index_take(struct store_index *ix, struct store_fts_hint *rows)
{
	size_t n = ix->count - ix->head;

	if (n > STORE_INDEX_ROWS)
		n = STORE_INDEX_ROWS;
	memcpy(rows, ix->q + ix->head, n * sizeof(*rows));
	ix->head += n;
	if (ix->head == ix->count)
		ix->head = ix->count = 0;
	return n;
}

static void
store_index_checkpoint(struct store_index *ix)
{
	/* PASSIVE: takes no lock a writer waits for, and stops where a
	   reader still needs the old pages (the next one continues) */
	(void)sqlite3_wal_checkpoint_v2(ix->st->db, NULL,
					SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static void *
store_index_main(void *arg)
{
	struct store_index *ix = arg;
	struct store_fts_hint rows[STORE_INDEX_ROWS];
	int64_t deadline = 0;
	bool ckpt;
	size_t n;

	for (;;) {
		pthread_mutex_lock(&ix->mu);
		while (ix->head == ix->count && !ix->checkpoint && !ix->stop)
			pthread_cond_wait(&ix->cond, &ix->mu);
		if (ix->stop && deadline == 0)
			deadline = store_index_now_ms() + STORE_INDEX_DRAIN_MS;
		if (ix->stop && (ix->head == ix->count ||
				 store_index_now_ms() >= deadline)) {
			ix->dropped += ix->count - ix->head;
			pthread_mutex_unlock(&ix->mu);
			break;
		}
		n = store_index_take(ix, rows);
		ckpt = ix->checkpoint;
		ix->checkpoint = false;
		pthread_mutex_unlock(&ix->mu);

		if (n > 0)
			(void)store_fts_index_hints(ix->st, rows, n);
		if (ckpt)
			store_index_checkpoint(ix);
		pthread_mutex_lock(&ix->mu);
		ix->indexed += n;
		pthread_mutex_unlock(&ix->mu);
	}
	return NULL;
}

struct store_index *
store_index_new(const char *datadir, const char **error_r)
{
	struct store_index *ix = xcalloc(1, sizeof(*ix));
	sigset_t all, old;

	pthread_mutex_init(&ix->mu, NULL);
	pthread_cond_init(&ix->cond, NULL);
	ix->st = store_open(datadir, error_r);
	if (ix->st == NULL) {
		store_index_free(&ix);
		return NULL;
	}
	store_set_autocheckpoint(ix->st, 0);
	store_fts_defer(ix->st);
	/* a few blobs per transaction touch few pages: a small page cache
	   (2 MB, not the store's 16 MB) keeps memory at rest down */
	(void)store_exec(ix->st, "PRAGMA cache_size=-2000");
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ix->started = pthread_create(&ix->thread, NULL, store_index_main,
				     ix) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ix->started) {
		if (error_r != NULL)
			*error_r = "index thread: pthread_create failed";
		store_index_free(&ix);
		return NULL;
	}
	return ix;
}

void
store_index_add(struct store_index *ix, const struct store_fts_hint *hints,
		size_t n)
{
	size_t room;

	if (n == 0)
		return;
	pthread_mutex_lock(&ix->mu);
	room = STORE_INDEX_QUEUE_MAX - (ix->count - ix->head);
	if (n > room) {
		ix->dropped += n - room;
		n = room;
	}
	if (ix->head > 0 && ix->count + n > ix->cap) {
		memmove(ix->q, ix->q + ix->head,
			(ix->count - ix->head) * sizeof(*ix->q));
		ix->count -= ix->head;
		ix->head = 0;
	}
	while (ix->count + n > ix->cap) /* store_grow grows when full */
		ix->q = store_grow(ix->q, &ix->cap, ix->cap, sizeof(*ix->q));
	memcpy(ix->q + ix->count, hints, n * sizeof(*hints));
	ix->count += n;
	pthread_cond_signal(&ix->cond);
	pthread_mutex_unlock(&ix->mu);
}

void
store_index_checkpoint_soon(struct store_index *ix)
{
	pthread_mutex_lock(&ix->mu);
	ix->checkpoint = true;
	pthread_cond_signal(&ix->cond);
	pthread_mutex_unlock(&ix->mu);
}

void
store_index_stats(struct store_index *ix, uint64_t *indexed_r,
		  uint64_t *waiting_r, uint64_t *dropped_r)
{
	pthread_mutex_lock(&ix->mu);
	*indexed_r = ix->indexed;
	*waiting_r = ix->count - ix->head;
	*dropped_r = ix->dropped;
	pthread_mutex_unlock(&ix->mu);
}

void
store_index_free(struct store_index **ixp)
{
	struct store_index *ix = *ixp;

	if (ix == NULL)
		return;
	*ixp = NULL;
	if (ix->started) {
		pthread_mutex_lock(&ix->mu);
		ix->stop = true;
		pthread_cond_signal(&ix->cond);
		pthread_mutex_unlock(&ix->mu);
		pthread_join(ix->thread, NULL);
	}
	store_close(&ix->st);
	free(ix->q);
	pthread_cond_destroy(&ix->cond);
	pthread_mutex_destroy(&ix->mu);
	free(ix);
}
