/* The index thread of a process: full-text rows and WAL checkpoints
   off the commit thread. The commit thread's store holds only the id
   and hash of each new blob (store_fts_hints); after each batch's
   COMMIT and the wake of the loop it hands them over here
   (store_index_add). This thread, with a store of its own, reads each
   blob and extracts its text and header fields (no lock held), then
   writes their rows, STORE_INDEX_ROWS blobs per transaction, into
   index.db (its own file, its own write lock: store_fts_db.c), and
   after them their states into tern.db in a short transaction without
   an fsync (store_fts_flush_deferred: a power cut loses states only;
   those blobs stay at blobs.fts = 0, which SEARCH reads and checks).
   It also runs the checkpoints the commit thread asks for, indexes what
   was left unindexed (once, at its start) and removes the rows of
   collected blobs (store_index_background).

   Why: the text extraction and FTS5's work were most of the commit
   thread's time per message (about 0.5 ms of CPU per 5 KB message,
   and three times its WAL pages). So the rows also wait
   (STORE_INDEX_YIELD_MS at most), before the blobs are even read,
   until the commit thread has had
   nothing in flight for a while (STORE_INDEX_QUIET_MS): a burst of
   APPENDs or deliveries is answered first and indexed right after.
   With more than STORE_INDEX_EAGER blobs waiting they no longer wait,
   so a steady flood is indexed as it comes; past STORE_INDEX_HIGH the
   commit thread waits for the index (store_index_throttle): what a long
   flood leaves unindexed is bounded.

   Bounds: at most STORE_INDEX_QUEUE_MAX blobs wait; past that a blob is
   not indexed (it stays at 0: always a candidate, read by SEARCH). At
   the end, what waits is indexed for at most STORE_INDEX_DRAIN_MS; the
   rest stays at 0 the same way. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store_int.h"

/* Blobs per index transaction, and how long the first one waits for
   the others: each transaction makes a new FTS5 segment (and sooner or
   later a merge), so fewer, larger ones cost less CPU and fewer WAL
   pages; about 0.5 ms of FTS5 work each for 5 KB of text is how long
   the other index thread waits for index.db's write lock. */
#define STORE_INDEX_ROWS 32
#define STORE_INDEX_WAIT_MS 100
/* Rows read wait for the commit thread to have had nothing in flight
   for STORE_INDEX_QUIET_MS (the burst has passed: one client's next
   APPEND comes a fraction of a millisecond after the last reply, so
   "nothing in flight now" was true between any two of them), at most
   STORE_INDEX_YIELD_MS; then for a moment with nothing in flight, at
   most STORE_INDEX_LATE_MS more; then they are written anyway. The
   commit thread is looked at every STORE_INDEX_POLL_MS
   (store_index_yield_done). */
#define STORE_INDEX_QUIET_MS 20
#define STORE_INDEX_YIELD_MS 500
#define STORE_INDEX_LATE_MS 100
#define STORE_INDEX_POLL_MS 1
/* With more than this many blobs waiting the rows no longer wait: a
   steady flood of APPENDs or deliveries must not leave ever more mail
   unindexed (each such blob is read by every SEARCH BODY/TEXT of its
   mailbox). Below it, a burst is indexed once it has passed. Why this
   many: at 2,000 a burst of APPENDs from ten clients (about 2,000 a
   second on two cores) had the index thread at full speed after one
   second, taking a third of the CPU from the replies; ten sessions
   then did 1,200-1,500 APPENDs a second where they do 1,900-2,600
   with this bound (bench, 2026-12-02). A SEARCH meanwhile reads the
   unindexed blobs of its mailbox, as Dovecot without an FTS plugin
   reads every message. */
#define STORE_INDEX_EAGER 20000
/* With more than this many waiting, the commit thread waits before its
   next batch (store_index_throttle) until fewer are: a flood is then
   answered no faster than it is indexed, so a long import leaves at
   most this many messages unindexed. Above STORE_INDEX_EAGER plus a
   transaction, so the index thread (which then does not yield) never
   waits for the commit thread that waits for it. */
#define STORE_INDEX_HIGH 40000
#define STORE_INDEX_QUEUE_MAX 100000
#define STORE_INDEX_TRIES 3
#define STORE_INDEX_RETRY_MS 50
#define STORE_INDEX_DRAIN_MS 1000
/* Collected blobs whose rows one step of store_fts_gc removes, and how
   long the thread waits before it looks for more once none were left. */
#define STORE_INDEX_GC_MAX 256
#define STORE_INDEX_GC_MS 1000
/* Pack files (store_pack_reclaim) are looked at no sooner than
   STORE_INDEX_PACK_MS after blobs were collected, and every
   STORE_INDEX_PACK_IDLE_MS anyway: an empty pack goes only on a pass
   past its grace. */
#define STORE_INDEX_PACK_MS 5000
#define STORE_INDEX_PACK_IDLE_MS 60000

struct store_index {
	struct store *st; /* this thread's only */
	const _Atomic size_t *busy; /* the commit thread's jobs in flight */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* work, a checkpoint or stop */
	pthread_cond_t drained; /* at most STORE_INDEX_HIGH wait, or stop */
	struct store_fts_hint *q; /* waiting blobs, q[head..count) */
	size_t head, count, cap;
	int64_t since; /* when q[head] came (CLOCK_MONOTONIC ms) */
	bool checkpoint; /* asked for, not run yet */
	/* the pass over the blobs left unindexed (store_index_background) */
	int64_t scan_after;
	bool scan_done;
	int64_t gc_at; /* next look at fts_gone (ms) */
	bool gc_soon;	/* blobs were collected: look now */
	int64_t pack_last; /* the last look at the pack files (ms; 0: none) */
	bool pack_soon;	   /* blobs were collected since then */
	_Atomic bool stop; /* written under mu, read by store_index_yield */
};

static int64_t
store_index_now_ms(void)
{
	return ev_clock_us() / 1000;
}

/* Take up to STORE_INDEX_ROWS waiting blobs into rows (under mu). */
static size_t
store_index_take(struct store_index *ix, struct store_fts_hint *rows)
{
	size_t n = ix->count - ix->head;

	if (n == 0) /* woken for a checkpoint or stop; q may be NULL */
		return 0;
	if (n > STORE_INDEX_ROWS)
		n = STORE_INDEX_ROWS;
	memcpy(rows, ix->q + ix->head, n * sizeof(*rows));
	ix->head += n;
	if (ix->head == ix->count)
		ix->head = ix->count = 0;
	if (ix->count - ix->head <= STORE_INDEX_HIGH)
		pthread_cond_broadcast(&ix->drained);
	/* the rest came later, but not long enough to wait again */
	return n;
}

/* Wait (under mu) for STORE_INDEX_ROWS blobs, or for the first one to
   have waited STORE_INDEX_WAIT_MS, or a checkpoint, or stop. */
static void
store_index_wait(struct store_index *ix)
{
	struct timespec ts;
	int64_t at;

	for (;;) {
		if (ix->checkpoint || ix->stop || ix->gc_soon ||
		    ix->count - ix->head >= STORE_INDEX_ROWS)
			return;
		if (ix->head == ix->count && store_pack_pending(ix->st)) {
			/* an empty pack waits for a pass past its grace */
			at = store_index_now_ms() + STORE_INDEX_PACK_IDLE_MS;
			ts.tv_sec = (time_t)(at / 1000);
			ts.tv_nsec = (long)(at % 1000) * 1000000L;
			(void)pthread_cond_timedwait(&ix->cond, &ix->mu, &ts);
			return;
		}
		if (ix->head == ix->count) {
			store_idle_wait(&ix->cond, &ix->mu, ix->st);
			continue;
		}
		at = ix->since + STORE_INDEX_WAIT_MS;
		if (store_index_now_ms() >= at)
			return;
		ts.tv_sec = (time_t)(at / 1000);
		ts.tv_nsec = (long)(at % 1000) * 1000000L;
		(void)pthread_cond_timedwait(&ix->cond, &ix->mu, &ts);
	}
}

bool
store_index_yield_done(struct store_index_yield *y, size_t busy, int64_t now)
{
	if (busy > 0)
		y->quiet_since = now;
	if (now - y->start >= STORE_INDEX_YIELD_MS + STORE_INDEX_LATE_MS)
		return true;
	if (busy > 0)
		return false;
	return now - y->quiet_since >= STORE_INDEX_QUIET_MS ||
	       now - y->start >= STORE_INDEX_YIELD_MS;
}

/* Let the commit thread's batches go first: wait, bounded, until it has
   been idle a while (the text was read meanwhile, outside any lock). */
static void
store_index_yield(struct store_index *ix)
{
	struct timespec ts = { 0, STORE_INDEX_POLL_MS * 1000000L };
	int64_t now = store_index_now_ms();
	struct store_index_yield y = { now, now };
	size_t waiting;

	pthread_mutex_lock(&ix->mu);
	waiting = ix->count - ix->head;
	pthread_mutex_unlock(&ix->mu);
	if (waiting > STORE_INDEX_EAGER)
		return;
	while (!ix->stop &&
	       !store_index_yield_done(&y, *ix->busy, store_index_now_ms()))
		nanosleep(&ts, NULL);
}

/* Index rows[0..n): read, yield, write. A transaction that found the
   write lock busy past its timeout (a MULTIAPPEND of thousands of
   messages holds it for seconds) is tried again until it goes through
   or the thread stops; one that failed otherwise, a few times, before
   its blobs are left unindexed. */
static void
store_index_rows(struct store_index *ix, const struct store_fts_hint *rows,
		 size_t n)
{
	struct timespec pause = { 0, STORE_INDEX_RETRY_MS * 1000000L };
	int ret, tries = 0;

	for (;;) {
		/* yield before the text is read too: its extraction is
		   CPU the commit thread and the loop want on a small
		   machine */
		store_index_yield(ix);
		ret = store_fts_read_hints(ix->st, rows, n);
		if (ret == STORE_OK) {
			ret = store_fts_flush_deferred(ix->st, n);
		}
		if (ret == STORE_OK ||
		    (ret == STORE_BUSY ? ix->stop : ++tries >= STORE_INDEX_TRIES))
			break;
		nanosleep(&pause, NULL);
	}
	if (ret != STORE_OK)
		log_error("store", "-", "index-failed blobs=%zu error=%s", n,
			  store_last_error(ix->st));
}

static void
store_index_checkpoint(struct store_index *ix)
{
	/* PASSIVE: takes no lock a writer waits for, and stops where a
	   reader still needs the old pages (the next one continues); a
	   RESTART only when the WAL grew past STORE_WAL_RESTART_FRAMES */
	(void)store_wal_checkpoint(ix->st, STORE_WAL_RESTART_FRAMES);
	(void)store_fts_db_checkpoint(ix->st, STORE_WAL_RESTART_FRAMES);
}

/* Pack files: unlink the long empty, compact the mostly dead. */
static void
store_index_packs(struct store_index *ix, int64_t now)
{
	int64_t wait = ix->pack_soon ? STORE_INDEX_PACK_MS
				     : STORE_INDEX_PACK_IDLE_MS;

	if (ix->pack_last != 0 && now - ix->pack_last < wait)
		return;
	ix->pack_soon = false;
	ix->pack_last = now;
	store_index_yield(ix);
	if (store_pack_reclaim(ix->st) != STORE_OK)
		log_error("store", "-", "pack-reclaim-failed error=%s",
			  store_last_error(ix->st));
}

/* Work for when no new blob waits, one step a call; false when there is
   none. First a pass, once per thread, over the blobs left unindexed:
   those of a store migrated to index.db (schema step 15), of processes
   without an index thread whose rows failed, of a queue that was full
   or of a drain cut short. Then the rows of collected blobs out of
   index.db (store_fts_gc), looked for at most every
   STORE_INDEX_GC_MS, and the pack files (store_index_packs). Each step
   yields to the commit thread as rows do. */
static bool
store_index_background(struct store_index *ix)
{
	size_t n = 0;
	int64_t now;

	if (!ix->scan_done) {
		store_index_yield(ix);
		if (store_fts_index_pending(ix->st, &ix->scan_after,
					    STORE_INDEX_ROWS, &n) != STORE_OK)
			log_error("store", "-", "index-scan-failed error=%s",
				  store_last_error(ix->st));
		ix->scan_done = n == 0;
		return true;
	}
	now = store_index_now_ms();
	pthread_mutex_lock(&ix->mu);
	if (ix->gc_soon) {
		ix->gc_at = 0;
		ix->pack_soon = true;
	}
	ix->gc_soon = false;
	pthread_mutex_unlock(&ix->mu);
	store_index_packs(ix, now);
	if (now < ix->gc_at)
		return false;
	store_index_yield(ix);
	if (store_fts_gc(ix->st, STORE_INDEX_GC_MAX, &n) != STORE_OK) {
		log_error("store", "-", "index-gc-failed error=%s",
			  store_last_error(ix->st));
		n = 0;
	}
	if (n < STORE_INDEX_GC_MAX)
		ix->gc_at = now + STORE_INDEX_GC_MS;
	return n > 0;
}

static void *
store_index_main(void *arg)
{
	struct store_index *ix = arg;
	struct store_fts_hint rows[STORE_INDEX_ROWS];
	int64_t deadline = 0;
	bool ckpt;
	size_t n;

	pthread_setname_np(pthread_self(), "tern-index");

	for (;;) {
		pthread_mutex_lock(&ix->mu);
		while (ix->head == ix->count && !ix->checkpoint && !ix->stop) {
			bool more;

			pthread_mutex_unlock(&ix->mu);
			more = store_index_background(ix);
			pthread_mutex_lock(&ix->mu);
			if (!more)
				break;
		}
		store_index_wait(ix);
		if (ix->stop && deadline == 0)
			deadline = store_index_now_ms() + STORE_INDEX_DRAIN_MS;
		if (ix->stop && (ix->head == ix->count ||
				 store_index_now_ms() >= deadline)) {
			pthread_mutex_unlock(&ix->mu);
			break;
		}
		n = store_index_take(ix, rows);
		ckpt = ix->checkpoint;
		ix->checkpoint = false;
		pthread_mutex_unlock(&ix->mu);

		if (n > 0)
			store_index_rows(ix, rows, n);
		if (ckpt)
			store_index_checkpoint(ix);
	}
	return NULL;
}

struct store_index *
store_index_new(const char *datadir, const _Atomic size_t *busy,
		const char **error_r)
{
	struct store_index *ix = xcalloc(1, sizeof(*ix));
	pthread_condattr_t cattr;
	sigset_t all, old;

	ix->busy = busy;
	pthread_mutex_init(&ix->mu, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&ix->cond, &cattr);
	pthread_condattr_destroy(&cattr);
	pthread_cond_init(&ix->drained, NULL);
	ix->st = store_open(datadir, error_r);
	if (ix->st == NULL) {
		store_index_free(&ix);
		return NULL;
	}
	store_set_autocheckpoint(ix->st, 0);
	store_fts_defer(ix->st);
	/* a 2 MB page cache, not the store's 16 MB: the pages this thread
	   writes (new index segments) are read again only by merges, from
	   the OS page cache; a full cache of them per worker was most of
	   the memory the index thread added at rest */
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
	if (n > room)
		n = room; /* the rest stay unindexed (see the top) */
	if (ix->head > 0 && ix->count + n > ix->cap) {
		memmove(ix->q, ix->q + ix->head,
			(ix->count - ix->head) * sizeof(*ix->q));
		ix->count -= ix->head;
		ix->head = 0;
	}
	while (ix->count + n > ix->cap) /* store_grow grows when full */
		ix->q = store_grow(ix->q, &ix->cap, ix->cap, sizeof(*ix->q));
	if (ix->head == ix->count)
		ix->since = store_index_now_ms();
	memcpy(ix->q + ix->count, hints, n * sizeof(*hints));
	ix->count += n;
	pthread_cond_signal(&ix->cond);
	pthread_mutex_unlock(&ix->mu);
}

void
store_index_throttle(struct store_index *ix)
{
	pthread_mutex_lock(&ix->mu);
	while (ix->count - ix->head > STORE_INDEX_HIGH && !ix->stop)
		pthread_cond_wait(&ix->drained, &ix->mu);
	pthread_mutex_unlock(&ix->mu);
}

void
store_index_busy_limit(struct store_index *ix, int ms)
{
	/* read by the thread only after the store_index_add that follows
	   (its mutex orders the two) */
	ix->st->busy_limit_ms = ms;
}

void
store_index_gc_soon(struct store_index *ix)
{
	pthread_mutex_lock(&ix->mu);
	ix->gc_soon = true;
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
		pthread_cond_broadcast(&ix->drained);
		pthread_mutex_unlock(&ix->mu);
		pthread_join(ix->thread, NULL);
	}
	store_close(&ix->st);
	free(ix->q);
	pthread_cond_destroy(&ix->cond);
	pthread_cond_destroy(&ix->drained);
	pthread_mutex_destroy(&ix->mu);
	free(ix);
}
