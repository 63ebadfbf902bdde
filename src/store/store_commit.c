/* The commit thread of a process: durable writes off the event loop, in
   groups, in two stages. The loop submits jobs; everything submitted
   during one loop pass is handed over together. The blob stage (a
   thread with its own struct store, for errors and the cleanup journal)
   takes whatever was handed over while it was busy and:
     1. finishes every blob of every job: hashes each and renames it to
        its content name, then fsyncs all those files and each distinct
        blob directory once, all at once (up to STORE_COMMIT_FSYNC_THREADS
        helpers, so the device sees them together instead of one round
        trip each; see store_commit_blobs);
   then passes the jobs on. The commit thread, with its own struct store
   (its own SQLite connection on the same data directory), takes every
   job passed on while it was busy (several blob rounds make one batch)
   and:
     2. runs each job's metadata in a SAVEPOINT of one store batch (a job
        that fails is undone alone), and COMMITs once (one fsync);
     3. when the batch as a whole fails (SQLite rolled it back, COMMIT
        failed), runs each job again in a batch of its own, so one bad
        job does not fail the others;
     4. queues the jobs for the loop and wakes it through an eventfd; the
        loop calls each job's done (send 250 / OK) in submission order.
   So the next batch's file fsyncs run while this batch's COMMIT waits
   for its own: two flushes in flight, not one after the other. Jobs
   keep their order through both stages. A round whose blobs all went
   to the pack passes its jobs on before the pack's fsync, and the
   commit thread waits for that fsync only before its COMMIT; the
   COMMIT itself returns before the WAL's fsync, which runs once the
   write lock is released (store_wal_sync_after_commit), so the other
   workers' batches do not wait out this one's flush.
   Post-commit work runs from the thread's store: blob garbage
   collection after its COMMIT, change notifications to every process
   after the loop was woken (store_notify_defer). The full-text rows of
   new blobs are not written here at all: a batch only notes each new blob,
   and after the loop was woken the notes go to the index thread
   (store_index.c), which reads the blobs and writes their rows beside
   the next batches (until then those blobs are unindexed, so SEARCH
   reads them). The text extraction and the index were most of a
   batch's CPU and WAL pages. The WAL is checkpointed by the index
   thread too, when this one finds it past STORE_COMMIT_CHECKPOINT_FRAMES
   after a batch (never inside a COMMIT, where SQLite's automatic
   checkpoint would hold back the batch's replies by the time it takes
   to copy and fsync the database). The fsync helpers are a
   small pool started with the blob stage. While the threads work the
   loop keeps serving its other connections. The durability rule holds:
   done sees STORE_OK only after blob fsync, directory fsync and the
   COMMIT and the WAL's fsync, in that order for each job. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/ev.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store_int.h"

/* Blob directories are DATADIR/blobs/00..ff. */
#define STORE_COMMIT_DIRS 256
/* Helper threads that fsync the files of a batch alongside the commit
   thread (a pool started with it). */
#define STORE_COMMIT_FSYNC_THREADS 7
/* The blob stage parses the structure of at most this many blobs of a
   job (a MULTIAPPEND of thousands would hold them all in memory until
   its batch ends); the commit thread parses the rest itself. */
#define STORE_COMMIT_PARSE_MAX 64
/* Checkpoint the WAL after a batch once it holds this many frames
   (about 32 MB). SQLite's automatic checkpoint, off on this connection,
   uses 1000; an APPEND writes about 16 frames, so ten sessions at that
   threshold made some fifty checkpoints a second, each with its two
   fsyncs (WAL, database) queued beside the commits' own. Fewer, longer
   ones copy each page changed by many commits once (measured,
   docs/performance.md 1l). */
#define STORE_COMMIT_CHECKPOINT_FRAMES 8000

int store_commit_fault_pack_fsync;

/* One file to fsync: an open fd, or a path to open (a parked blob). */
struct store_commit_fsync {
	int fd;
	const char *path;
	int err; /* out: 0 or errno */
	bool data_only; /* fdatasync (a pack: its size does not change) */
};

/* The files of one fsync round, shared by the commit thread and the
   helpers; each takes the next index. */
struct store_commit_fsyncs {
	struct store_commit_fsync *items;
	size_t n;
	_Atomic size_t next;
};

struct store_commit_pool {
	pthread_mutex_t mu;
	pthread_cond_t go;   /* a new round (gen changed) or stop */
	pthread_cond_t idle; /* active dropped to 0 */
	struct store_commit_fsyncs *work; /* NULL between rounds */
	uint64_t gen;
	size_t wanted; /* helpers the current round still takes */
	size_t active; /* helpers inside the current round */
	bool stop;
	pthread_t th[STORE_COMMIT_FSYNC_THREADS];
	size_t started;
};

struct store_commit {
	struct ev_loop *loop;
	struct store *st;  /* used by the commit thread only (after start) */
	struct store *bst; /* used by the blob stage only (after start) */
	int efd;
	pthread_t thread, blob_thread;
	bool thread_started, blob_started;

	pthread_mutex_t mu;
	pthread_cond_t work_cond;  /* queue non-empty or stop */
	pthread_cond_t ready_cond; /* ready non-empty or blobs_stopped */
	pthread_cond_t done_cond;  /* done non-empty (drain) */
	struct store_commit_job *queue, **queue_tail; /* loop -> blob stage */
	struct store_commit_job *ready, **ready_tail; /* -> commit thread */
	struct store_commit_job *done, **done_tail;   /* thread -> loop */
	bool stop;	    /* the blob stage ends once queue is empty */
	bool blobs_stopped; /* it did: the commit thread ends after ready */
	uint64_t batches, jobs; /* statistics, under mu */
	uint64_t passed; /* jobs the blob stage passed on, under mu */
	/* deferred pack fsyncs (store_commit_pack_later): rounds numbered
	   by the blob stage; the last one done, under mu */
	uint64_t pack_rounds, pack_synced;
	pthread_cond_t pack_cond; /* pack_synced grew */
	struct store_commit_pool pool;
	bool pool_started;
	struct store_index *ix; /* full-text rows and checkpoints */
	struct store_fts_hint *hints; /* the commit thread's, for ix */
	size_t hints_cap;
	int wal_frames; /* frames in the WAL after the thread's last commit */

	/* loop side only */
	struct store_commit_job *local, **local_tail;
	bool flush_scheduled;
	/* submitted, done not yet called (changed on the loop, read by the
	   index thread) */
	_Atomic size_t inflight;
};

/* ---- the thread ---- */

static void
store_commit_job_fail(struct store *st, struct store_commit_job *job, int r)
{
	job->result = r;
	if (job->error[0] == '\0')
		snprintf(job->error, sizeof(job->error), "%s",
			 store_last_error(st));
}

/* fsync of many files at once: the calls go to the device together
   (one fsync after another costs a device round trip each; a few in
   flight overlap them). */
static void
store_commit_fsync_run(struct store_commit_fsyncs *f)
{
	size_t i;

	while ((i = f->next++) < f->n) {
		struct store_commit_fsync *it = &f->items[i];
		int fd = it->fd;

		it->err = 0;
		if (fd < 0 && it->path != NULL) {
			fd = open(it->path, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				it->err = errno != 0 ? errno : EIO;
				continue;
			}
		}
		if (fd >= 0 && (it->data_only ? fdatasync(fd) : fsync(fd)) < 0)
			it->err = errno != 0 ? errno : EIO;
		if (fd >= 0 && fd != it->fd)
			close(fd);
	}
}

static void *
store_commit_pool_main(void *arg)
{
	struct store_commit_pool *p = arg;
	struct store_commit_fsyncs *f;
	uint64_t seen = 0;

	pthread_setname_np(pthread_self(), "tern-fsync");

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop &&
		       (p->gen == seen || p->work == NULL || p->wanted == 0))
			pthread_cond_wait(&p->go, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		f = p->work;
		p->wanted--;
		p->active++;
		pthread_mutex_unlock(&p->mu);
		store_commit_fsync_run(f);
		pthread_mutex_lock(&p->mu);
		if (--p->active == 0)
			pthread_cond_signal(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Start the helpers (fewer when pthread_create fails: the commit
   thread then does more of each round itself). */
static void
store_commit_pool_start(struct store_commit_pool *p)
{
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->idle, NULL);
	for (; p->started < STORE_COMMIT_FSYNC_THREADS; p->started++) {
		if (pthread_create(&p->th[p->started], NULL,
				   store_commit_pool_main, p) != 0)
			break;
	}
}

static void
store_commit_pool_stop(struct store_commit_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->started; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->go);
	pthread_mutex_destroy(&p->mu);
}

/* fsync every item, the pool's helpers and this thread together; returns
   when all are done (no helper still holds f). Only as many helpers as
   there are items besides this thread's first are woken: a round is
   mostly a few files and directories, and waking all seven for two
   was most of the process's context switches per APPEND. */
static void
store_commit_fsync_all(struct store_commit_pool *p,
		       struct store_commit_fsync *items, size_t n)
{
	struct store_commit_fsyncs f = { items, n, 0 };
	size_t helpers = n - (n > 0);

	if (helpers > p->started)
		helpers = p->started;
	if (helpers > 0) {
		pthread_mutex_lock(&p->mu);
		p->work = &f;
		p->wanted = helpers;
		p->gen++;
		for (size_t i = 0; i < helpers; i++)
			pthread_cond_signal(&p->go);
		pthread_mutex_unlock(&p->mu);
	}
	store_commit_fsync_run(&f);
	if (helpers > 0) {
		pthread_mutex_lock(&p->mu);
		p->work = NULL; /* late helpers skip this round */
		p->wanted = 0;
		while (p->active > 0)
			pthread_cond_wait(&p->idle, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
}

/* Every blob of the batch in one array. */
static size_t
store_commit_blob_list(struct store_commit_job *jobs,
		       struct store_commit_blob ***list_r,
		       struct store_commit_job ***owner_r)
{
	struct store_commit_job *job;
	size_t n = 0, i;

	for (job = jobs; job != NULL; job = job->next)
		n += job->blob_count;
	*list_r = xreallocarray(NULL, n + 1, sizeof(**list_r));
	*owner_r = xreallocarray(NULL, n + 1, sizeof(**owner_r));
	n = 0;
	for (job = jobs; job != NULL; job = job->next) {
		for (i = 0; i < job->blob_count; i++) {
			(*list_r)[n] = &job->blobs[i];
			(*owner_r)[n++] = job;
		}
	}
	return n;
}

/* The distinct directories of the blobs (those with dir >= 0), opened
   as fsync items (dirs[k]: the index of items[k]). */
static size_t
store_commit_dir_items(struct store *st, struct store_commit_blob **blobs,
		       size_t n, struct store_commit_fsync *items, int *dirs)
{
	bool seen[STORE_COMMIT_DIRS] = { false };
	size_t nd = 0, i;

	for (i = 0; i < n; i++) {
		int d = blobs[i]->dir;

		if (d < 0 || seen[d])
			continue;
		seen[d] = true;
		dirs[nd] = d;
		items[nd].fd = store_blob_dir_open(st, d);
		items[nd].path = NULL;
		items[nd].data_only = false;
		items[nd++].err = 0;
	}
	return nd;
}

/* After their fsync: close the directories; one that failed fails the
   jobs with a blob in it. */
static void
store_commit_dir_check(struct store *st, struct store_commit_blob **blobs,
		       struct store_commit_job **owner, size_t n,
		       struct store_commit_fsync *items, const int *dirs,
		       size_t nd)
{
	size_t i, k;

	for (k = 0; k < nd; k++) {
		int r = STORE_OK, err = items[k].err;

		if (items[k].fd < 0) {
			r = STORE_ERR;
		} else {
			close(items[k].fd);
			if (err != 0)
				r = store_fail(st, err == ENOSPC ?
						       STORE_NOSPACE : STORE_ERR,
					       "fsync blob directory %02x: %s",
					       (unsigned)dirs[k], strerror(err));
		}
		if (r == STORE_OK)
			continue;
		for (i = 0; i < n; i++) {
			if (blobs[i]->dir == dirs[k] &&
			    owner[i]->result == STORE_OK)
				store_commit_job_fail(st, owner[i], r);
		}
	}
}

/* The structure of a new blob, parsed here, outside the write lock, for
   store_msg_meta_ensure; NULL when it cannot be read or parsed (the
   commit thread then tries itself and fails the job as before). A blob
   already stored with its structure is parsed for nothing; that is a
   duplicate delivery, and rare. */
static struct mime_info *
store_commit_parse_bytes(const uint8_t *data, size_t len)
{
	static const uint8_t empty[1];
	struct mime_info *info = xmalloc(sizeof(*info));

	if (mime_info_parse(data != NULL ? data : empty, len, info) < 0) {
		free(info);
		info = NULL;
	}
	return info;
}

static struct mime_info *
store_commit_parse(struct store *st, const char *hash)
{
	struct mime_info *info;
	struct store_map map;

	if (store_blob_map(st, hash, &map) != STORE_OK)
		return NULL;
	info = store_commit_parse_bytes(map.data, map.len);
	store_blob_unmap(&map);
	return info;
}

/* After the batch: the parsed structures are not needed any more. */
static void
store_commit_parsed_free(struct store_commit_job *jobs)
{
	for (struct store_commit_job *job = jobs; job != NULL;
	     job = job->next) {
		for (size_t i = 0; i < job->blob_count; i++) {
			if (job->blobs[i].info == NULL)
				continue;
			mime_info_free(job->blobs[i].info);
			free(job->blobs[i].info);
			job->blobs[i].info = NULL;
		}
	}
}

/* Run job on st with its blobs' parsed structures at hand. */
static int
store_commit_run(struct store *st, struct store_commit_job *job)
{
	int r;

	st->ahead = job->blobs;
	st->ahead_n = job->blob_count;
	st->ahead_pos = 0;
	r = job->run(st, job);
	st->ahead = NULL;
	st->ahead_n = 0;
	return r;
}

/* The blobs held in memory go to the blob stage's pack (store_pack.c):
   appended now, fsynced in the round of the files. */
static void
store_commit_pack_put(struct store *st, struct store_commit_blob *b,
		      struct store_commit_job *owner)
{
	int r = store_blob_writer_pack(st, b->w, b->hash, &b->size, &b->pack,
				       &b->off);

	if (r != STORE_OK) {
		b->hash[0] = '\0';
		b->pack = 0;
		if (owner->result == STORE_OK)
			store_commit_job_fail(st, owner, r);
	}
}

/* The pack (and, when new, the packs directory) as fsync items at
   items; how many. */
static size_t
store_commit_pack_items(struct store *st, struct store_commit_fsync *items,
			int *fd_r, int *dir_fd_r)
{
	size_t k = 0;

	if (store_pack_sync_fds(st, fd_r, dir_fd_r) != STORE_OK)
		*fd_r = -2; /* the directory could not be opened: failed */
	if (*fd_r >= 0)
		items[k++] = (struct store_commit_fsync){ *fd_r, NULL, 0, true };
	if (*dir_fd_r >= 0)
		items[k++] = (struct store_commit_fsync){ *dir_fd_r, NULL, 0,
							  false };
	return k;
}

/* The store error for a failed fsync of what. */
static int
store_commit_flush_fail(struct store *st, int err, const char *what)
{
	return store_fail(st, err == ENOSPC ? STORE_NOSPACE : STORE_ERR,
			  "fsync %s: %s", what, strerror(err));
}

/* After the pack's fsync items (k of them; fd -2: they could not be
   set up): the pack told, its directory closed; the errno, or 0. */
static int
store_commit_pack_synced(struct store *st,
			 const struct store_commit_fsync *items, size_t k,
			 int fd, int dir_fd)
{
	int err = fd == -2 ? EIO : 0;

	for (size_t i = 0; i < k; i++) {
		if (items[i].err != 0 && err == 0)
			err = items[i].err;
	}
	if (err == 0)
		err = store_commit_fault_pack_fsync;
	if (dir_fd >= 0)
		close(dir_fd);
	if (fd == -2 || k > 0)
		store_pack_synced(st, err);
	return err;
}

/* After the round: a failed pack fsync fails every job with a blob in
   the pack. */
static void
store_commit_pack_check(struct store *st, struct store_commit_blob **blobs,
			struct store_commit_job **owner, size_t n,
			const struct store_commit_fsync *items, size_t k,
			int fd, int dir_fd)
{
	int err = store_commit_pack_synced(st, items, k, fd, dir_fd), r;

	if (err == 0)
		return;
	r = store_commit_flush_fail(st, err, "pack");
	for (size_t i = 0; i < n; i++) {
		if (blobs[i]->pack == 0)
			continue;
		blobs[i]->pack = 0;
		blobs[i]->hash[0] = '\0';
		if (owner[i]->result == STORE_OK)
			store_commit_job_fail(st, owner[i], r);
	}
}

/* A blob from memory after the round: its structure parsed from the
   bytes still at hand, then the writer freed. */
static void
store_commit_pack_done(struct store_commit_blob *b,
		       struct store_commit_job *owner)
{
	size_t len;
	const uint8_t *data = store_blob_writer_bytes(b->w, &len);

	if (b->pack != 0 && owner->result == STORE_OK &&
	    b - owner->blobs < STORE_COMMIT_PARSE_MAX)
		b->info = store_commit_parse_bytes(data, len);
	store_blob_writer_abort(&b->w);
}

/* A round's pack fsync, left for after its jobs were passed on
   (store_commit_blobs, store_commit_pack_later). */
struct store_commit_later {
	struct store_commit_fsync items[2];
	size_t n; /* 0: nothing deferred */
	int fd, dir_fd;
};

/* Phase 1: the blobs of every job. A blob still in memory is appended
   to the pack; a file is renamed to its content name first
   (store_blob_writer_place). Then the pack, every file (a parked one
   opened again by its path) and every directory renamed into are
   fsynced in one round, all at once: one device flush where a rename
   after the files' fsync cost a second one in a row. A blob whose name
   was taken (the same bytes, maybe not durable yet) is renamed over it
   after that round; the directories of those get a second round. A
   job with a failed blob is not run.
   A round whose blobs all went to the pack (the common case: messages
   under the in-memory limit) leaves the pack's fsync in *later instead:
   its jobs go on to the commit thread first, which runs their SQL while
   the pack is fsynced and waits for that fsync only before its COMMIT
   (store_commit_packs_wait). SQLite writes a WAL commit frame only at
   COMMIT, so no committed row names bytes not yet durable; the device
   flush and the SQL overlap instead of following each other. */
static void
store_commit_blobs(struct store_commit *c, struct store_commit_job *jobs,
		   struct store_commit_later *later)
{
	struct store *st = c->bst;
	struct store_commit_blob **blobs;
	struct store_commit_job **owner;
	size_t n = store_commit_blob_list(jobs, &blobs, &owner), nd, np, i;
	struct store_commit_fsync *items =
		xreallocarray(NULL, n + STORE_COMMIT_DIRS + 2, sizeof(*items));
	int dirs[STORE_COMMIT_DIRS];
	int r, synced, pack_fd, pack_dir_fd;
	bool files = false;

	for (i = 0; i < n; i++) {
		struct store_commit_blob *b = blobs[i];

		b->hash[0] = '\0';
		b->size = 0;
		b->dir = -1;
		b->info = NULL;
		b->pack = 0;
		b->off = 0;
		items[i] = (struct store_commit_fsync){ -1, NULL, 0, false };
		if (b->w != NULL && store_blob_writer_in_memory(b->w)) {
			store_commit_pack_put(st, b, owner[i]);
			continue;
		}
		files = files || b->w != NULL;
		if (b->w != NULL)
			(void)store_blob_writer_place(st, b->w, &b->dir);
		items[i].fd = b->w != NULL ? store_blob_writer_fd(b->w) : -1;
		items[i].path = b->w != NULL ? store_blob_writer_parked(b->w)
					     : NULL;
	}
	nd = store_commit_dir_items(st, blobs, n, items + n, dirs);
	np = store_commit_pack_items(st, items + n + nd, &pack_fd,
				     &pack_dir_fd);
	later->n = 0;
	if (!files && pack_fd >= 0) { /* no file: no directory either */
		memcpy(later->items, items + n, np * sizeof(*items));
		later->n = np;
		later->fd = pack_fd;
		later->dir_fd = pack_dir_fd;
	} else {
		store_commit_fsync_all(&c->pool, items, n + nd + np);
		store_commit_pack_check(st, blobs, owner, n, items + n + nd,
					np, pack_fd, pack_dir_fd);
	}
	store_commit_dir_check(st, blobs, owner, n, items + n, dirs, nd);
	for (i = 0; i < n; i++) {
		struct store_commit_blob *b = blobs[i];

		b->dir = -1;
		if (b->w == NULL)
			continue;
		if (store_blob_writer_in_memory(b->w)) {
			store_commit_pack_done(b, owner[i]);
			continue;
		}
		/* -1: not synced here (a writer that failed before) */
		synced = items[i].fd < 0 && items[i].path == NULL ?
				 -1 : items[i].err;
		r = store_blob_writer_seal(st, &b->w, synced, b->hash,
					   &b->size, &b->dir);
		if (r != STORE_OK) {
			b->hash[0] = '\0';
			b->dir = -1;
			if (owner[i]->result == STORE_OK)
				store_commit_job_fail(st, owner[i], r);
		}
	}
	/* the second round: directories renamed into by seal */
	nd = store_commit_dir_items(st, blobs, n, items, dirs);
	store_commit_fsync_all(&c->pool, items, nd);
	store_commit_dir_check(st, blobs, owner, n, items, dirs, nd);
	for (i = 0; i < n; i++) {
		if (blobs[i]->hash[0] != '\0' && blobs[i]->pack == 0 &&
		    owner[i]->result == STORE_OK &&
		    blobs[i] - owner[i]->blobs < STORE_COMMIT_PARSE_MAX)
			blobs[i]->info = store_commit_parse(st, blobs[i]->hash);
	}
	free(items);
	free(owner);
	free(blobs);
}

/* One job inside the open batch, in a savepoint. Returns -1 when the
   whole batch is lost (SQLite rolled it back). */
static int
store_commit_run_one(struct store *st, struct store_commit_job *job)
{
	struct store_tx tx;
	int r;

	r = store_tx_begin(st, &tx);
	if (r != STORE_OK)
		return -1;
	r = store_commit_run(st, job);
	if (r == STORE_OK)
		r = store_tx_commit(st, &tx);
	else
		store_tx_rollback(st, &tx);
	if (st->batch_failed)
		return -1;
	if (r != STORE_OK)
		store_commit_job_fail(st, job, r);
	return 0;
}

/* Before a COMMIT: wait for the deferred pack fsyncs of the jobs'
   rounds (store_commit_blobs). A job whose pack fsync failed is failed
   here and not run again. False when one did. */
static bool
store_commit_packs_wait(struct store_commit *c, struct store_commit_job *jobs)
{
	struct store_commit_job *job;
	uint64_t want = 0;
	bool ok = true;
	int err;

	for (job = jobs; job != NULL; job = job->next) {
		if (job->pack_round > want)
			want = job->pack_round;
	}
	if (want == 0)
		return true;
	pthread_mutex_lock(&c->mu);
	while (c->pack_synced < want)
		pthread_cond_wait(&c->pack_cond, &c->mu);
	pthread_mutex_unlock(&c->mu);
	/* pack_err was set before pack_synced passed the job's round */
	for (job = jobs; job != NULL; job = job->next) {
		err = job->pack_err;
		job->pack_round = 0;
		if (err == 0)
			continue;
		job->pack_err = 0;
		job->blobs_ok = false;
		ok = false;
		for (size_t i = 0; i < job->blob_count; i++) {
			if (job->blobs[i].pack == 0)
				continue;
			job->blobs[i].pack = 0;
			job->blobs[i].hash[0] = '\0';
		}
		store_commit_job_fail(c->st, job,
				      store_commit_flush_fail(c->st, err,
							      "pack"));
	}
	return ok;
}

/* Phase 2: every runnable job in the batch already begun. 0, or -1 when
   nothing of it is durable. */
static int
store_commit_together(struct store_commit *c, struct store_commit_job *jobs)
{
	struct store *st = c->st;
	struct store_commit_job *job;

	for (job = jobs; job != NULL; job = job->next) {
		if (!job->blobs_ok)
			continue;
		job->result = STORE_OK;
		job->error[0] = '\0';
		if (store_commit_run_one(st, job) < 0) {
			store_batch_rollback(st);
			return -1;
		}
	}
	if (!store_commit_packs_wait(c, jobs) ||
	    store_batch_commit(st) != STORE_OK) {
		store_batch_rollback(st);
		return -1;
	}
	return 0;
}

/* Phase 3: each job in a batch of its own. */
static void
store_commit_singly(struct store_commit *c, struct store_commit_job *jobs)
{
	struct store *st = c->st;
	struct store_commit_job *job;
	int r;

	(void)store_commit_packs_wait(c, jobs);

	for (job = jobs; job != NULL; job = job->next) {
		if (!job->blobs_ok)
			continue;
		job->result = STORE_OK;
		job->error[0] = '\0';
		r = store_batch_begin(st);
		if (r == STORE_OK)
			r = store_commit_run(st, job);
		if (r == STORE_OK)
			r = store_batch_commit(st);
		if (r != STORE_OK) {
			store_commit_job_fail(st, job, r);
			store_batch_rollback(st);
		}
	}
}

/* Phases 2 and 3 for jobs whose blobs are done; begun: the batch is open
   (store_commit_take_batch). */
static void
store_commit_batch(struct store_commit *c, struct store_commit_job *jobs,
		   bool begun)
{
	struct store_commit_job *job;
	size_t n = 0;

	for (job = jobs; job != NULL; job = job->next)
		n++;
	for (job = jobs; job != NULL; job = job->next)
		job->batch_size = n;
	if (!begun || store_commit_together(c, jobs) < 0) {
		for (job = jobs; job != NULL; job = job->next)
			job->batch_size = 1;
		store_commit_singly(c, jobs);
	}
}

/* A WAL fsync after a COMMIT of the batch failed (store.h,
   store_wal_sync_after_commit): its rows are in, but they may not be on
   disk, so no job of it is acknowledged. */
static void
store_commit_synced(struct store_commit *c, struct store_commit_job *jobs)
{
	int err = store_take_wal_sync_err(c->st), r;

	if (err == 0)
		return;
	r = store_commit_flush_fail(c->st, err, "WAL");
	for (struct store_commit_job *job = jobs; job != NULL;
	     job = job->next) {
		if (job->result == STORE_OK)
			store_commit_job_fail(c->st, job, r);
	}
}

/* After the loop was woken: the batch's change notifications to every
   process, the new blobs of the batch to the index thread, and a
   checkpoint of the WAL there once it grew past the threshold. */
static void
store_commit_after(struct store_commit *c)
{
	size_t n = 0;
	int frames;

	store_notify_flush(c->st);
	store_fts_take_hints(c->st, &c->hints, &c->hints_cap, &n);
	store_index_add(c->ix, c->hints, n);
	if (c->st->blobs_collected) {
		c->st->blobs_collected = false;
		store_index_gc_soon(c->ix);
	}
	frames = store_take_wal_frames(c->st);
	if (frames > 0)
		c->wal_frames = frames;
	if (c->wal_frames < STORE_COMMIT_CHECKPOINT_FRAMES)
		return;
	c->wal_frames = 0;
	store_index_checkpoint_soon(c->ix);
}

/* Wait (under mu) for jobs with their blobs done, or the end of the
   blob stage. */
static void
store_commit_wait(struct store_commit *c)
{
	while (c->ready == NULL && !c->blobs_stopped)
		store_idle_wait(&c->ready_cond, &c->mu, c->st);
}

/* After the jobs of round went on: their pack fsync (store_commit_blobs
   deferred it), then each waiting job learns its outcome, and the
   commit thread, waiting for round before its COMMIT, goes on. The
   jobs are still alive: none of those with pack_round set can be
   committed, and so freed, before pack_synced reaches round. */
static void
store_commit_pack_later(struct store_commit *c, struct store_commit_later *l,
			struct store_commit_job *jobs, uint64_t n,
			uint64_t round)
{
	int err;

	store_commit_fsync_all(&c->pool, l->items, l->n);
	err = store_commit_pack_synced(c->bst, l->items, l->n, l->fd,
				       l->dir_fd);
	pthread_mutex_lock(&c->mu);
	for (uint64_t i = 0; err != 0 && i < n; i++, jobs = jobs->next) {
		if (jobs->pack_round == round)
			jobs->pack_err = err;
	}
	c->pack_synced = round;
	pthread_cond_broadcast(&c->pack_cond);
	pthread_mutex_unlock(&c->mu);
}

/* The jobs of a deferred round that wait for its pack fsync: those with
   a blob in the pack and nothing failed. How many. */
static size_t
store_commit_pack_round(struct store_commit_job *jobs, uint64_t round)
{
	size_t waiting = 0;

	for (struct store_commit_job *job = jobs; job != NULL;
	     job = job->next) {
		for (size_t i = 0; job->blobs_ok && i < job->blob_count; i++) {
			if (job->blobs[i].pack != 0) {
				job->pack_round = round;
				waiting++;
				break;
			}
		}
	}
	return waiting;
}

/* The blob stage: phase 1 for whatever the loop handed over, then on
   to the commit thread. While that one runs a batch's SQL and COMMIT,
   the next batch's files are fsynced here: the two flushes overlap
   instead of one waiting for the other. */
static void *
store_commit_blob_main(void *arg)
{
	struct store_commit *c = arg;
	struct store_commit_job *jobs, *job, *last = NULL;
	struct store_commit_later later;
	uint64_t n, round;
	size_t waiting;

	pthread_setname_np(pthread_self(), "tern-blobs");

	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (c->queue == NULL && !c->stop)
			pthread_cond_wait(&c->work_cond, &c->mu);
		if (c->queue == NULL) {
			c->blobs_stopped = true;
			pthread_cond_signal(&c->ready_cond);
			pthread_mutex_unlock(&c->mu);
			break;
		}
		jobs = c->queue;
		c->queue = NULL;
		c->queue_tail = &c->queue;
		/* a pack rolled over in this round had its last bytes in
		   jobs passed before it (store_pack.c) */
		store_pack_hold(c->bst, c->passed, c->jobs);
		pthread_mutex_unlock(&c->mu);

		for (job = jobs; job != NULL; job = job->next) {
			job->result = STORE_OK;
			job->error[0] = '\0';
			job->pack_round = 0;
			job->pack_err = 0;
		}
		store_commit_blobs(c, jobs, &later);
		n = 0;
		for (job = jobs; job != NULL; job = job->next) {
			job->blobs_ok = job->result == STORE_OK;
			last = job;
			n++;
		}
		round = later.n > 0 ? ++c->pack_rounds : 0;
		waiting = round > 0 ? store_commit_pack_round(jobs, round) : 0;
		pthread_mutex_lock(&c->mu);
		c->passed += n;
		*c->ready_tail = jobs;
		c->ready_tail = &last->next;
		pthread_cond_signal(&c->ready_cond);
		pthread_mutex_unlock(&c->mu);
		/* with no job waiting, the jobs may be gone already: the
		   fsync still runs, for the pack's next round */
		if (round > 0)
			store_commit_pack_later(c, &later, jobs,
						waiting > 0 ? n : 0, round);
	}
	return NULL;
}

/* The next batch: once a job is ready, the write lock of tern.db is
   taken (the batch begun; *begun_r false when that failed), and only
   then every job ready, several blob rounds in one batch. Why in that
   order: the lock is the whole server's, and a COMMIT holds it through
   its fsync; with two workers each one's BEGIN waited about as long as
   its own COMMIT took (measured: 2-3 ms of each 5), and the jobs that
   became ready meanwhile went to the next batch, one fsync each. Taken
   after the wait they join this one. NULL: the blob stage ended. */
static struct store_commit_job *
store_commit_take_batch(struct store_commit *c, bool *begun_r)
{
	struct store_commit_job *jobs;

	pthread_mutex_lock(&c->mu);
	store_commit_wait(c);
	if (c->ready == NULL) {
		pthread_mutex_unlock(&c->mu);
		return NULL;
	}
	pthread_mutex_unlock(&c->mu);
	*begun_r = store_batch_begin(c->st) == STORE_OK;
	pthread_mutex_lock(&c->mu);
	jobs = c->ready;
	c->ready = NULL;
	c->ready_tail = &c->ready;
	pthread_mutex_unlock(&c->mu);
	return jobs;
}

static void *
store_commit_main(void *arg)
{
	struct store_commit *c = arg;
	struct store_commit_job *jobs, *last;
	uint64_t one = 1;
	bool begun;
	size_t n;

	pthread_setname_np(pthread_self(), "tern-commit");

	for (;;) {
		store_index_throttle(c->ix);
		jobs = store_commit_take_batch(c, &begun);
		if (jobs == NULL)
			break;
		store_commit_batch(c, jobs, begun);
		store_commit_synced(c, jobs);
		store_commit_parsed_free(jobs);

		n = 0;
		for (last = jobs; last->next != NULL; last = last->next)
			n++;
		pthread_mutex_lock(&c->mu);
		*c->done_tail = jobs;
		c->done_tail = &last->next;
		c->batches++;
		c->jobs += n + 1;
		pthread_cond_broadcast(&c->done_cond);
		pthread_mutex_unlock(&c->mu);
		while (write(c->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		/* the replies are on their way (jobs arriving meanwhile
		   form the next batch) */
		store_commit_after(c);
	}
	return NULL;
}

/* ---- the loop ---- */

/* Call done for every finished job (in order). */
static void
store_commit_take_done(struct store_commit *c)
{
	struct store_commit_job *jobs, *job, *next;

	pthread_mutex_lock(&c->mu);
	jobs = c->done;
	c->done = NULL;
	c->done_tail = &c->done;
	pthread_mutex_unlock(&c->mu);
	for (job = jobs; job != NULL; job = next) {
		next = job->next; /* done may free the job */
		job->next = NULL;
		c->inflight--;
		job->done(job);
	}
}

static void
store_commit_on_wake(struct ev_loop *loop, int fd, unsigned events,
		     void *ctx)
{
	struct store_commit *c = ctx;
	uint64_t v;

	(void)loop;
	(void)events;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	store_commit_take_done(c);
}

static void
store_commit_flush(struct ev_loop *loop, void *ctx)
{
	struct store_commit *c = ctx;

	(void)loop;
	c->flush_scheduled = false;
	if (c->local == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	*c->queue_tail = c->local;
	c->queue_tail = c->local_tail;
	pthread_cond_signal(&c->work_cond);
	pthread_mutex_unlock(&c->mu);
	c->local = NULL;
	c->local_tail = &c->local;
}

void
store_commit_submit(struct store_commit *c, struct store_commit_job *job)
{
	job->next = NULL;
	job->result = STORE_OK;
	job->error[0] = '\0';
	*c->local_tail = job;
	c->local_tail = &job->next;
	c->inflight++;
	if (!c->flush_scheduled) {
		c->flush_scheduled = true;
		ev_defer(c->loop, store_commit_flush, c);
	}
}

void
store_commit_drain(struct store_commit *c)
{
	while (c->inflight > 0) {
		store_commit_flush(c->loop, c);
		pthread_mutex_lock(&c->mu);
		while (c->done == NULL)
			pthread_cond_wait(&c->done_cond, &c->mu);
		pthread_mutex_unlock(&c->mu);
		store_commit_take_done(c);
	}
	if (c->flush_scheduled) {
		ev_defer_cancel(c->loop, store_commit_flush, c);
		c->flush_scheduled = false;
	}
}

size_t
store_commit_pending(const struct store_commit *c)
{
	return c->inflight;
}

void
store_commit_stats(struct store_commit *c, uint64_t *batches_r,
		   uint64_t *jobs_r)
{
	pthread_mutex_lock(&c->mu);
	*batches_r = c->batches;
	*jobs_r = c->jobs;
	pthread_mutex_unlock(&c->mu);
}

struct store_commit *
store_commit_new(struct ev_loop *loop, const char *datadir,
		 const char **error_r)
{
	static char err[300];
	struct store_commit *c = xcalloc(1, sizeof(*c));
	sigset_t all, old;
	const char *e = NULL;

	c->loop = loop;
	c->queue_tail = &c->queue;
	c->ready_tail = &c->ready;
	c->done_tail = &c->done;
	c->local_tail = &c->local;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->ready_cond, NULL);
	pthread_cond_init(&c->work_cond, NULL);
	pthread_cond_init(&c->done_cond, NULL);
	pthread_cond_init(&c->pack_cond, NULL);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	/* Opened here, on the loop's thread: store_open is not thread-safe
	   on its first call (VFS registration). */
	c->st = store_open(datadir, &e);
	if (c->st != NULL)
		c->bst = store_open(datadir, &e);
	if (c->bst != NULL)
		c->ix = store_index_new(datadir, &c->inflight, &e);
	if (c->efd < 0 || c->st == NULL || c->bst == NULL || c->ix == NULL ||
	    ev_fd_add(loop, c->efd, EV_READ, store_commit_on_wake, c) < 0) {
		/* XXX a static buffer, as for store_open */
		snprintf(err, sizeof(err), "commit thread: %s",
			 c->st == NULL || c->bst == NULL || c->ix == NULL
				 ? e
				 : strerror(errno));
		goto fail;
	}
	/* no checkpoint inside the thread's COMMITs: the index thread
	   checkpoints (store_commit_after) */
	store_set_autocheckpoint(c->st, 0);
	/* the batches' COMMITs fsync after the write lock is released */
	(void)store_wal_sync_after_commit(c->st);
	store_notify_defer(c->st);
	store_fts_hints(c->st);
	/* The threads take no signals (the worker reads them from a
	   signalfd on the loop). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	store_commit_pool_start(&c->pool);
	c->pool_started = true;
	c->blob_started = pthread_create(&c->blob_thread, NULL,
					 store_commit_blob_main, c) == 0;
	c->thread_started = c->blob_started &&
			    pthread_create(&c->thread, NULL, store_commit_main,
					   c) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!c->thread_started) {
		snprintf(err, sizeof(err), "commit thread: pthread_create "
			 "failed");
		ev_fd_del(loop, c->efd);
		goto fail;
	}
	return c;
fail:
	if (error_r != NULL)
		*error_r = err;
	store_commit_free(&c);
	return NULL;
}

void
store_commit_free(struct store_commit **cp)
{
	struct store_commit *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->thread_started)
		store_commit_drain(c);
	if (c->blob_started) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_signal(&c->work_cond);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->blob_thread, NULL);
	}
	if (c->thread_started) {
		pthread_join(c->thread, NULL);
		ev_fd_del(c->loop, c->efd);
	}
	store_index_free(&c->ix); /* indexes what the batches left */
	if (c->pool_started)
		store_commit_pool_stop(&c->pool);
	if (c->efd >= 0)
		close(c->efd);
	store_close(&c->bst);
	store_close(&c->st);
	free(c->hints);
	pthread_cond_destroy(&c->pack_cond);
	pthread_cond_destroy(&c->done_cond);
	pthread_cond_destroy(&c->ready_cond);
	pthread_cond_destroy(&c->work_cond);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
