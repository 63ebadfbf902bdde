/* The read thread of a process: long reads off the event loop. The
   loop submits jobs; one thread with its own struct store (its own
   SQLite connection, so its transactions are snapshots of their own
   and never hold back the loop's) runs them one after the other and
   queues them for the loop, which it wakes through an eventfd; the
   loop calls each job's done in submission order. Used for the view
   of a large mailbox at its first SELECT in a worker (imap), which
   took 15-40 ms of the loop on 100,000 messages. The one write here is
   a cache: the view snapshot a job's load left (store_view_snap.c),
   written after the job went back to the loop, so no answer waits for
   it, in its own short transaction without an fsync (WAL with
   synchronous=NORMAL: a power cut can lose it, never corrupt it) that
   waits at most STORE_VIEW_SNAP_BUSY_MS for the lock and never
   replaces a newer snapshot. It touches no table a session syncs from
   (no change is published), and a failed write only makes the next
   cold load a full read. A job that wants a durable write goes to the
   commit thread. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store_int.h"

struct store_reader {
	struct ev_loop *loop;
	struct store *st; /* the thread's (after start) */
	int efd;
	pthread_t thread;
	bool started;

	pthread_mutex_t mu;
	pthread_cond_t work_cond; /* queue non-empty or stop */
	pthread_cond_t done_cond; /* done non-empty (drain) */
	struct store_reader_job *queue, **queue_tail; /* loop -> thread */
	struct store_reader_job *done, **done_tail;   /* thread -> loop */
	bool stop;

	size_t inflight; /* loop side: submitted, done not called yet */
};

/* The view snapshot the last job's load kept, if any: written now, and
   logged (a failure only makes the next cold load a full read). */
static void
store_reader_snap_write(struct store_reader *r)
{
	struct store_view_snap_write w;
	int64_t t0 = ev_clock_us();
	int ret;

	ret = store_view_snap_flush(r->st, &w);
	if (ret == 0)
		return;
	if (ret < 0) {
		log_warn("store", "-", "view-snapshot-write-failed "
			 "mailbox_id=%lld error=%s", (long long)w.mailbox_id,
			 store_last_error(r->st));
		return;
	}
	log_info("store", "-", "view-snapshot-write mailbox_id=%lld "
		 "messages=%u modseq=%llu bytes=%zu written=%d ms=%.1f",
		 (long long)w.mailbox_id, w.count,
		 (unsigned long long)w.modseq, w.bytes, w.written,
		 (double)(ev_clock_us() - t0) / 1000.0);
}

static void *
store_reader_main(void *arg)
{
	struct store_reader *r = arg;
	struct store_reader_job *job;
	uint64_t one = 1;

	pthread_setname_np(pthread_self(), "tern-reader");

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->queue == NULL && !r->stop)
			store_idle_wait(&r->work_cond, &r->mu, r->st);
		if (r->queue == NULL)
			break;
		job = r->queue;
		r->queue = job->next;
		if (r->queue == NULL)
			r->queue_tail = &r->queue;
		pthread_mutex_unlock(&r->mu);

		job->next = NULL;
		job->error[0] = '\0';
		job->result = job->run(r->st, job);
		if (job->result < 0 && job->error[0] == '\0')
			snprintf(job->error, sizeof(job->error), "%s",
				 store_last_error(r->st));

		pthread_mutex_lock(&r->mu);
		*r->done_tail = job;
		r->done_tail = &job->next;
		pthread_cond_broadcast(&r->done_cond);
		pthread_mutex_unlock(&r->mu);
		while (write(r->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		/* the job is the loop's now: then the cache write it left */
		store_reader_snap_write(r);
		/* A job reads much once (a whole mailbox's view); the
		   pages stay in the kernel's cache, not in this
		   connection's for the rest of the worker's life. */
		(void)sqlite3_db_release_memory(r->st->db);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Call done for every finished job, in order. */
static void
store_reader_take_done(struct store_reader *r)
{
	struct store_reader_job *jobs, *job, *next;

	pthread_mutex_lock(&r->mu);
	jobs = r->done;
	r->done = NULL;
	r->done_tail = &r->done;
	pthread_mutex_unlock(&r->mu);
	for (job = jobs; job != NULL; job = next) {
		next = job->next; /* done may free the job */
		job->next = NULL;
		r->inflight--;
		job->done(job);
	}
}

static void
store_reader_on_wake(struct ev_loop *loop, int fd, unsigned events, void *ctx)
{
	struct store_reader *r = ctx;
	uint64_t v;

	(void)loop;
	(void)events;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	store_reader_take_done(r);
}

void
store_reader_submit(struct store_reader *r, struct store_reader_job *job)
{
	job->next = NULL;
	job->result = STORE_OK;
	job->error[0] = '\0';
	r->inflight++;
	pthread_mutex_lock(&r->mu);
	*r->queue_tail = job;
	r->queue_tail = &job->next;
	pthread_cond_signal(&r->work_cond);
	pthread_mutex_unlock(&r->mu);
}

size_t
store_reader_pending(const struct store_reader *r)
{
	return r->inflight;
}

void
store_reader_drain(struct store_reader *r)
{
	while (r->inflight > 0) {
		pthread_mutex_lock(&r->mu);
		while (r->done == NULL)
			pthread_cond_wait(&r->done_cond, &r->mu);
		pthread_mutex_unlock(&r->mu);
		store_reader_take_done(r);
	}
}

struct store_reader *
store_reader_new(struct ev_loop *loop, const char *datadir,
		 const char **error_r)
{
	static char err[300];
	struct store_reader *r = xcalloc(1, sizeof(*r));
	sigset_t all, old;
	const char *e = NULL;

	r->loop = loop;
	r->queue_tail = &r->queue;
	r->done_tail = &r->done;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->work_cond, NULL);
	pthread_cond_init(&r->done_cond, NULL);
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	/* Opened here, on the loop's thread (store_open is not thread-safe
	   on its first call). */
	r->st = store_open(datadir, &e);
	if (r->efd < 0 || r->st == NULL ||
	    ev_fd_add(loop, r->efd, EV_READ, store_reader_on_wake, r) < 0) {
		/* XXX a static buffer, as for store_open */
		snprintf(err, sizeof(err), "read thread: %s",
			 r->st == NULL ? e : strerror(errno));
		goto fail;
	}
	/* it writes a snapshot now and then: the loop's and the commit
	   thread's connections checkpoint */
	store_set_autocheckpoint(r->st, 0);
	/* no signals on the thread (the worker reads a signalfd) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r->started = pthread_create(&r->thread, NULL, store_reader_main, r) ==
		     0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!r->started) {
		snprintf(err, sizeof(err), "read thread: pthread_create "
			 "failed");
		ev_fd_del(loop, r->efd);
		goto fail;
	}
	return r;
fail:
	if (error_r != NULL)
		*error_r = err;
	store_reader_free(&r);
	return NULL;
}

void
store_reader_free(struct store_reader **rp)
{
	struct store_reader *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	if (r->started) {
		store_reader_drain(r);
		pthread_mutex_lock(&r->mu);
		r->stop = true;
		pthread_cond_signal(&r->work_cond);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
		ev_fd_del(r->loop, r->efd);
	}
	if (r->efd >= 0)
		close(r->efd);
	store_close(&r->st);
	pthread_cond_destroy(&r->done_cond);
	pthread_cond_destroy(&r->work_cond);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
