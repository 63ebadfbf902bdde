/* Tests for the commit thread (store_commit.c): jobs submitted in one
   loop pass are committed in one batch, done runs on the loop in order
   and only after the data is durable and visible to another connection,
   blobs are finished on the thread (content hash, file in place), a job
   that fails is undone alone, a job with a failed blob is not run, done
   may submit again, drain/free wait for everything in flight, and
   parked writers (file closed after the last byte) are fsynced by their
   path through the helper pool, a lost one failing its job alone, and
   the next batch's blobs are finished while a batch is still in its
   SQL (the two stages overlap), a failure there not touching the next
   batch's job, and a file found under a blob's name is replaced by the
   new blob's own; the full-text rows of a batch's new blobs are written
   by the index thread after the reply (a blob collected before that is
   skipped), and what is still waiting at the end is indexed before
   store_commit_free returns; a pack fsync deferred past the round fails
   only the jobs with a blob in it, a connection that fsyncs its WAL
   after COMMIT reports a failed fsync, and the commit thread sends its
   batch's change notifications after it woke the loop. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "store_test.h"
#include "lib/ev.h"
#include "store/store.h"
#include "store/store_int.h"

#define TEST_BLOB "hello blob\r\n"

struct test_job {
	struct store_commit_job job; /* first */
	struct store_commit_blob blob;
	int index;
	bool fail;	/* run returns STORE_INVALID after a change */
	bool done;
	int runs;
	int *order;	/* done order log */
	size_t *order_len;
	struct store_commit *resubmit; /* done submits a follow-up */
	struct test_job *follow;
	atomic_int *gate; /* run: set 1, wait until the test sets 2 */
};

/* Bounded: until *gate is 2 or about 20 s passed. */
static void
test_gate_wait(atomic_int *gate)
{
	*gate = 1;
	for (int i = 0; i < 20000 && *gate != 2; i++)
		usleep(1000);
}

static int
test_job_run(struct store *s, struct store_commit_job *job)
{
	struct test_job *t = (struct test_job *)job;
	char name[64];
	int r;

	t->runs++;
	if (t->gate != NULL)
		test_gate_wait(t->gate);
	snprintf(name, sizeof(name), "d%d.test", t->index);
	r = store_domain_add(s, name);
	if (r != STORE_OK)
		return r;
	return t->fail ? STORE_INVALID : STORE_OK;
}

static void
test_job_done(struct store_commit_job *job)
{
	struct test_job *t = (struct test_job *)job;

	t->done = true;
	if (t->order != NULL)
		t->order[(*t->order_len)++] = t->index;
	if (t->resubmit != NULL && t->follow != NULL)
		store_commit_submit(t->resubmit, &t->follow->job);
}

static void
test_job_init(struct test_job *t, int index, struct store *s, bool blob)
{
	memset(t, 0, sizeof(*t));
	t->index = index;
	t->job.run = test_job_run;
	t->job.done = test_job_done;
	if (blob) {
		t->blob.w = store_blob_writer_new(s);
		test_assert(store_blob_writer_write(t->blob.w, TEST_BLOB,
						    strlen(TEST_BLOB)) ==
			    STORE_OK);
		t->job.blobs = &t->blob;
		t->job.blob_count = 1;
	}
}

/* Run the loop until every job is done (bounded). */
static void
test_loop_until_idle(struct ev_loop *loop, struct store_commit *c)
{
	for (int i = 0; i < 2000 && store_commit_pending(c) > 0; i++)
		ev_run_once(loop, 10);
}

static void
test_commit_batch(void)
{
	enum { N = 20 };
	struct test_job jobs[N];
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512], name[64], path[10000];
	int order[N];
	size_t order_len = 0;
	uint64_t batches = 0, njobs = 0;
	struct stat st;
	const char *error = NULL;

	s = test_store_open_sub("batch", dir, sizeof(dir));
	c = store_commit_new(loop, dir, &error);
	test_assert(c != NULL);
	for (int i = 0; i < N; i++) {
		test_job_init(&jobs[i], i, s, true);
		jobs[i].order = order;
		jobs[i].order_len = &order_len;
		store_commit_submit(c, &jobs[i].job);
	}
	/* nothing is done from inside submit */
	test_assert(store_commit_pending(c) == N);
	test_assert(!jobs[0].done);
	test_loop_until_idle(loop, c);
	test_assert(store_commit_pending(c) == 0);
	store_commit_stats(c, &batches, &njobs);
	test_assert(njobs == N);
	test_assert(batches == 1); /* one loop pass, one batch */
	test_assert(order_len == N);
	for (int i = 0; i < N; i++) {
		test_assert_idx(jobs[i].done, i);
		test_assert_idx(jobs[i].job.result == STORE_OK, i);
		test_assert_idx(jobs[i].job.batch_size == N, i);
		test_assert_idx(jobs[i].runs == 1, i);
		test_assert_idx(order[i] == i, i);
		test_assert_idx(jobs[i].blob.w == NULL, i);
		test_assert_idx(jobs[i].blob.size == strlen(TEST_BLOB), i);
		test_assert_strcmp(jobs[i].blob.hash, jobs[0].blob.hash);
		snprintf(name, sizeof(name), "d%d.test", i);
		/* committed: visible through the other connection */
		test_assert_idx(store_domain_exists(s, name) == 1, i);
	}
	test_assert(strlen(jobs[0].blob.hash) == STORE_HASH_HEX_LEN);
	/* small: in the blob stage's pack, one after another, no file */
	test_assert(test_blob_files(dir) == 0);
	for (int i = 0; i < N; i++) {
		test_assert_idx(jobs[i].blob.pack == jobs[0].blob.pack, i);
		test_assert_idx(jobs[i].blob.off ==
					(uint64_t)i * strlen(TEST_BLOB), i);
	}
	snprintf(path, sizeof(path), "%s/packs/%016llx", dir,
		 (unsigned long long)jobs[0].blob.pack);
	/* grown ahead of the bytes, in zeros */
	test_assert(stat(path, &st) == 0 &&
		    (size_t)st.st_size >= N * strlen(TEST_BLOB));
	for (int i = 0; i < N; i++) {
		char got[sizeof(TEST_BLOB)];
		FILE *f = fopen(path, "rb");

		test_assert(f != NULL &&
			    fseek(f, (long)jobs[i].blob.off, SEEK_SET) == 0 &&
			    fread(got, 1, strlen(TEST_BLOB), f) ==
				    strlen(TEST_BLOB));
		test_assert_idx(memcmp(got, TEST_BLOB, strlen(TEST_BLOB)) == 0,
				i);
		if (f != NULL)
			fclose(f);
	}
	store_commit_free(&c);
	test_assert(c == NULL);
	store_close(&s);
	ev_loop_free(&loop);
}

static void
test_commit_failure_alone(void)
{
	struct test_job jobs[3];
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512];

	s = test_store_open_sub("fail", dir, sizeof(dir));
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	for (int i = 0; i < 3; i++) {
		test_job_init(&jobs[i], i, s, false);
		store_commit_submit(c, &jobs[i].job);
	}
	jobs[1].fail = true;
	/* job 2 adds a domain that exists: its own failure */
	jobs[2].index = 0;
	test_loop_until_idle(loop, c);
	test_assert(jobs[0].job.result == STORE_OK);
	test_assert(jobs[1].job.result == STORE_INVALID);
	test_assert(jobs[2].job.result == STORE_EXISTS);
	test_assert(jobs[2].job.error[0] != '\0');
	test_assert(store_domain_exists(s, "d0.test") == 1);
	/* the failed job's change was undone, the others kept */
	test_assert(store_domain_exists(s, "d1.test") == 0);
	test_assert(jobs[0].job.batch_size == 3);
	store_commit_free(&c);
	store_close(&s);
	ev_loop_free(&loop);
}

/* DATADIR/<what> a plain file: the blob cannot be put in place
   (ENOTDIR, even for root). Its job fails alone, without running. */
static void
test_commit_blob_failure_in(const char *sub, const char *what)
{
	struct test_job jobs[2];
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512], blobs[600], away[600];
	FILE *f;

	s = test_store_open_sub(sub, dir, sizeof(dir));
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	test_job_init(&jobs[0], 0, s, true);
	test_job_init(&jobs[1], 1, s, false);
	snprintf(blobs, sizeof(blobs), "%s/%s", dir, what);
	snprintf(away, sizeof(away), "%s/%s-away", dir, what);
	test_assert(rename(blobs, away) == 0);
	f = fopen(blobs, "w");
	test_assert(f != NULL);
	fclose(f);
	store_commit_submit(c, &jobs[0].job);
	store_commit_submit(c, &jobs[1].job);
	test_loop_until_idle(loop, c);
	test_assert(jobs[0].done && jobs[1].done);
	test_assert(jobs[0].job.result == STORE_ERR);
	test_assert(!jobs[0].job.blobs_ok);
	test_assert(jobs[0].job.error[0] != '\0');
	test_assert(jobs[0].runs == 0);
	test_assert(jobs[0].blob.w == NULL && jobs[0].blob.hash[0] == '\0');
	test_assert(store_domain_exists(s, "d0.test") == 0);
	/* the other job of the batch is not affected */
	test_assert(jobs[1].job.result == STORE_OK);
	test_assert(store_domain_exists(s, "d1.test") == 1);
	test_assert(unlink(blobs) == 0 && rename(away, blobs) == 0);
	store_commit_free(&c);
	store_close(&s);
	ev_loop_free(&loop);
}

static void
test_commit_blob_failure(void)
{
	size_t mem_max = store_blob_mem_blob_max;

	/* a small blob goes to a pack */
	test_commit_blob_failure_in("packfail", "packs");
	/* a blob with a file of its own */
	store_blob_mem_blob_max = 0;
	test_commit_blob_failure_in("blobfail", "blobs");
	store_blob_mem_blob_max = mem_max;
}

static void
test_commit_drain(void)
{
	enum { N = 8 };
	struct test_job jobs[N], follow;
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512];

	s = test_store_open_sub("drain", dir, sizeof(dir));
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	for (int i = 0; i < N; i++) {
		test_job_init(&jobs[i], i, s, true);
		store_commit_submit(c, &jobs[i].job);
	}
	/* a done that submits again: drain waits for that one too */
	test_job_init(&follow, 100, s, false);
	jobs[N - 1].resubmit = c;
	jobs[N - 1].follow = &follow;
	/* without running the loop at all */
	store_commit_drain(c);
	test_assert(store_commit_pending(c) == 0);
	for (int i = 0; i < N; i++)
		test_assert_idx(jobs[i].done &&
					jobs[i].job.result == STORE_OK, i);
	test_assert(follow.done && follow.job.result == STORE_OK);
	test_assert(store_domain_exists(s, "d100.test") == 1);
	/* free with jobs in flight waits for them as well */
	test_job_init(&jobs[0], 200, s, true);
	store_commit_submit(c, &jobs[0].job);
	store_commit_free(&c);
	test_assert(jobs[0].done && jobs[0].job.result == STORE_OK);
	test_assert(store_domain_exists(s, "d200.test") == 1);
	store_close(&s);
	ev_loop_free(&loop);
}

/* While the thread works, later submissions form the next batch. */
static void
test_commit_pipeline(void)
{
	enum { ROUNDS = 5, PER = 6 };
	struct test_job jobs[ROUNDS * PER];
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512];
	uint64_t batches = 0, njobs = 0;

	s = test_store_open_sub("pipe", dir, sizeof(dir));
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < PER; i++) {
			struct test_job *t = &jobs[r * PER + i];

			test_job_init(t, r * PER + i, s, true);
			store_commit_submit(c, &t->job);
		}
		ev_run_once(loop, 0); /* one pass: hand this round over */
	}
	test_loop_until_idle(loop, c);
	store_commit_stats(c, &batches, &njobs);
	test_assert(njobs == ROUNDS * PER);
	test_assert(batches >= 1 && batches <= ROUNDS);
	for (int i = 0; i < ROUNDS * PER; i++)
		test_assert_idx(jobs[i].done &&
					jobs[i].job.result == STORE_OK, i);
	store_commit_free(&c);
	store_close(&s);
	ev_loop_free(&loop);
}

/* Distinct contents (more blobs than fsync helpers, many directories),
   every other writer parked; one parked file is lost before the commit:
   its job fails, the others are durable and in place. */
static void
test_commit_parked(void)
{
	enum { N = 30, LOST = 7 };
	struct test_job jobs[N];
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512], body[64], path[10000];
	const char *error = NULL, *tmp;
	struct stat st;
	size_t mem_max = store_blob_mem_blob_max;

	/* files of their own */
	store_blob_mem_blob_max = 0;
	s = test_store_open_sub("parked", dir, sizeof(dir));
	c = store_commit_new(loop, dir, &error);
	test_assert(c != NULL);
	for (int i = 0; i < N; i++) {
		test_job_init(&jobs[i], i, s, false);
		snprintf(body, sizeof(body), "parked blob %d\r\n", i);
		jobs[i].blob.w = store_blob_writer_new(s);
		test_assert_idx(store_blob_writer_write(jobs[i].blob.w, body,
							strlen(body)) ==
					STORE_OK, i);
		jobs[i].job.blobs = &jobs[i].blob;
		jobs[i].job.blob_count = 1;
		if (i % 2 == 1) {
			test_assert_idx(store_blob_writer_park(
						jobs[i].blob.w) == STORE_OK, i);
			test_assert_idx(store_blob_writer_fd(jobs[i].blob.w) < 0,
					i);
		}
	}
	tmp = store_blob_writer_parked(jobs[LOST].blob.w);
	test_assert(tmp != NULL && unlink(tmp) == 0);
	test_assert(store_blob_writer_parked(jobs[0].blob.w) == NULL);
	for (int i = 0; i < N; i++)
		store_commit_submit(c, &jobs[i].job);
	test_loop_until_idle(loop, c);
	test_assert(store_commit_pending(c) == 0);
	for (int i = 0; i < N; i++) {
		snprintf(body, sizeof(body), "parked blob %d\r\n", i);
		test_assert_idx(jobs[i].done, i);
		test_assert_idx(jobs[i].blob.w == NULL, i);
		if (i == LOST) {
			test_assert(jobs[i].job.result != STORE_OK);
			test_assert(jobs[i].runs == 0);
			continue;
		}
		test_assert_idx(jobs[i].job.result == STORE_OK, i);
		test_assert_idx(jobs[i].blob.size == strlen(body), i);
		snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", dir,
			 jobs[i].blob.hash, jobs[i].blob.hash + 2);
		test_assert_idx(stat(path, &st) == 0 &&
					(size_t)st.st_size == strlen(body), i);
	}
	store_commit_free(&c);
	store_close(&s);
	ev_loop_free(&loop);
	store_blob_mem_blob_max = mem_max;
}

/* Job A's run is held (its batch open on the commit thread) while B is
   submitted: B's blob is put in place meanwhile, by the blob stage.
   Then A fails: B, in the next batch, is committed and told so, A's
   change is not. */
static void
test_commit_overlap(void)
{
	struct test_job a, b;
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512];
	atomic_int gate = 0;
	uint64_t batches = 0, njobs = 0;
	int order[2], i;
	size_t order_len = 0;
	size_t mem_max = store_blob_mem_blob_max;

	/* files of their own */
	store_blob_mem_blob_max = 0;
	s = test_store_open_sub("overlap", dir, sizeof(dir));
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	test_job_init(&a, 0, s, true);
	a.gate = &gate;
	a.fail = true;
	a.order = order;
	a.order_len = &order_len;
	store_commit_submit(c, &a.job);
	ev_run_once(loop, 0);
	for (i = 0; i < 20000 && gate != 1; i++)
		usleep(1000);
	test_assert(gate == 1);
	test_assert(test_blob_files(dir) == 1);

	test_job_init(&b, 1, s, false);
	b.blob.w = store_blob_writer_new(s);
	test_assert(store_blob_writer_write(b.blob.w, "other\r\n", 7) ==
		    STORE_OK);
	b.job.blobs = &b.blob;
	b.job.blob_count = 1;
	b.order = order;
	b.order_len = &order_len;
	store_commit_submit(c, &b.job);
	ev_run_once(loop, 0);
	for (i = 0; i < 20000 && test_blob_files(dir) < 2; i++)
		usleep(1000);
	test_assert(test_blob_files(dir) == 2);
	test_assert(!a.done && !b.done);

	gate = 2;
	test_loop_until_idle(loop, c);
	test_assert(a.done && b.done);
	test_assert(a.job.result == STORE_INVALID);
	test_assert(b.job.result == STORE_OK && b.blob.size == 7);
	test_assert(store_domain_exists(s, "d0.test") == 0);
	test_assert(store_domain_exists(s, "d1.test") == 1);
	test_assert(order_len == 2 && order[0] == 0 && order[1] == 1);
	store_commit_stats(c, &batches, &njobs);
	test_assert(batches == 2 && njobs == 2);
	store_commit_free(&c);
	store_close(&s);
	ev_loop_free(&loop);
	store_blob_mem_blob_max = mem_max;
}

/* A file already under a blob's content name is not trusted (it may be
   a crash's leftover, or another writer's file not fsynced yet): the new
   blob's own fsynced file is renamed over it. */
/* A pack fsync left for after the round's jobs went on (every blob in
   memory) that fails: its jobs fail, though their SQL ran; the other job
   of the batch stays; the next blob goes to a new pack. */
static void
test_commit_pack_fsync_failure(void)
{
	struct test_job jobs[4];
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512];
	int64_t first;

	s = test_store_open_sub("packsync", dir, sizeof(dir));
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	test_job_init(&jobs[0], 0, s, true);
	store_commit_submit(c, &jobs[0].job);
	test_loop_until_idle(loop, c);
	test_assert(jobs[0].job.result == STORE_OK && jobs[0].blob.pack != 0);
	first = jobs[0].blob.pack;

	store_commit_fault_pack_fsync = EIO;
	test_job_init(&jobs[1], 1, s, true);
	test_job_init(&jobs[2], 2, s, false);
	store_commit_submit(c, &jobs[1].job);
	store_commit_submit(c, &jobs[2].job);
	test_loop_until_idle(loop, c);
	store_commit_fault_pack_fsync = 0;
	test_assert(jobs[1].done && jobs[2].done);
	test_assert(jobs[1].job.result == STORE_ERR);
	test_assert(strstr(jobs[1].job.error, "fsync pack") != NULL);
	/* its SQL ran before the flush failed: the deferred path (a round
	   flushed before it goes on never runs a job with a failed blob) */
	test_assert(jobs[1].runs == 1);
	test_assert(jobs[1].blob.pack == 0 && jobs[1].blob.hash[0] == '\0');
	test_assert(store_domain_exists(s, "d1.test") == 0);
	test_assert(jobs[2].job.result == STORE_OK);
	test_assert(store_domain_exists(s, "d2.test") == 1);

	test_job_init(&jobs[3], 3, s, true);
	store_commit_submit(c, &jobs[3].job);
	test_loop_until_idle(loop, c);
	test_assert(jobs[3].job.result == STORE_OK);
	test_assert(store_domain_exists(s, "d3.test") == 1);
	test_assert(jobs[3].blob.pack != 0 && jobs[3].blob.pack != first);
	store_commit_free(&c);
	store_close(&s);
	ev_loop_free(&loop);
}

/* A connection whose WAL is fsynced after its COMMITs: at
   synchronous=NORMAL, the WAL open and synced once a commit wrote, a
   failed fsync kept for the caller once. */
static void
test_store_wal_sync(void)
{
	struct store *s;
	char dir[512];
	sqlite3_stmt *st;
	int p[2];

	s = test_store_open_sub("walsync", dir, sizeof(dir));
	test_assert(store_wal_sync_after_commit(s) == STORE_OK);
	test_assert(sqlite3_prepare_v2(s->db, "PRAGMA synchronous", -1, &st,
				       NULL) == SQLITE_OK);
	test_assert(sqlite3_step(st) == SQLITE_ROW);
	test_assert(sqlite3_column_int(st, 0) == 1);
	sqlite3_finalize(st);
	test_assert(s->wal_fd < 0);
	test_assert(store_domain_add(s, "a.test") == STORE_OK);
	test_assert(s->wal_fd >= 0);
	test_assert(store_take_wal_sync_err(s) == 0);
	/* fdatasync of a pipe fails (EINVAL) */
	test_assert(pipe(p) == 0);
	close(p[1]);
	close(s->wal_fd);
	s->wal_fd = p[0];
	test_assert(store_domain_add(s, "b.test") == STORE_OK);
	test_assert(store_take_wal_sync_err(s) == EINVAL);
	test_assert(store_take_wal_sync_err(s) == 0);
	test_assert(store_domain_exists(s, "b.test") == 1);
	store_close(&s);
}

static void
test_commit_name_taken(void)
{
	struct test_job a, b;
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	char dir[512], path[10000], got[64];
	FILE *f;
	size_t n;
	size_t mem_max = store_blob_mem_blob_max;

	/* files of their own */
	store_blob_mem_blob_max = 0;
	s = test_store_open_sub("taken", dir, sizeof(dir));
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	test_job_init(&a, 0, s, true);
	store_commit_submit(c, &a.job);
	test_loop_until_idle(loop, c);
	test_assert(a.job.result == STORE_OK);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", dir, a.blob.hash,
		 a.blob.hash + 2);
	/* torn: the right size, the wrong bytes */
	f = fopen(path, "w");
	test_assert(f != NULL);
	for (size_t i = 0; i < strlen(TEST_BLOB); i++)
		fputc('x', f);
	fclose(f);

	test_job_init(&b, 1, s, true);
	store_commit_submit(c, &b.job);
	test_loop_until_idle(loop, c);
	test_assert(b.job.result == STORE_OK);
	test_assert_strcmp(b.blob.hash, a.blob.hash);
	f = fopen(path, "r");
	test_assert(f != NULL);
	n = f != NULL ? fread(got, 1, sizeof(got), f) : 0;
	if (f != NULL)
		fclose(f);
	test_assert(n == strlen(TEST_BLOB) && memcmp(got, TEST_BLOB, n) == 0);
	store_commit_free(&c);
	store_close(&s);
	ev_loop_free(&loop);
	store_blob_mem_blob_max = mem_max;
}

/* An APPEND of its blob into mailbox *box (test_index_job.box). */
struct test_append_job {
	struct test_job t; /* first */
	int64_t box;
};

static int
test_append_run(struct store *s, struct store_commit_job *job)
{
	struct test_append_job *a = (struct test_append_job *)job;
	uint32_t uid;

	return store_msg_append(s, a->box, a->t.blob.hash, 0, NULL, 1700000000,
				&uid);
}

static void
test_append_init(struct test_append_job *a, struct store *s, int64_t box,
		 const char *text)
{
	memset(a, 0, sizeof(*a));
	a->box = box;
	a->t.job.run = test_append_run;
	a->t.job.done = test_job_done;
	a->t.blob.w = store_blob_writer_new(s);
	test_assert(store_blob_writer_write(a->t.blob.w, text, strlen(text)) ==
		    STORE_OK);
	a->t.job.blobs = &a->t.blob;
	a->t.job.blob_count = 1;
}

/* A domain, its account u@domain and that account's INBOX. */
static void
test_inbox(struct store *s, const char *domain, struct store_mailbox *box)
{
	char addr[128];
	int64_t account = 0;

	snprintf(addr, sizeof(addr), "u@%s", domain);
	test_assert(store_domain_add(s, domain) == STORE_OK);
	test_assert(store_account_add(s, addr, "standard", "h", NULL,
				      &account) == STORE_OK);
	test_assert(store_mailbox_get(s, account, "INBOX", box) == 1);
}

/* blobs.fts of the blob (-1: no such blob), read by another connection */
static int
test_fts_state(struct store *s, const char *hash)
{
	sqlite3_stmt *st;
	int state = -1;

	test_assert(sqlite3_prepare_v2(s->db, "SELECT fts FROM blobs WHERE"
					      " hash = ?", -1, &st, NULL) ==
		    SQLITE_OK);
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		state = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return state;
}

static int
test_fts_rows(struct store *s, const char *needle)
{
	sqlite3_stmt *st;
	int n = -1;

	/* index.db, on the store's second connection */
	test_assert(store_fts_db(s) == STORE_OK);
	test_assert(sqlite3_prepare_v2(s->fts_db,
				       "SELECT count(*) FROM blob_fts"
				       " WHERE blob_fts MATCH ?", -1, &st,
				       NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, needle, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The next event on s's own notification socket within about 2 s;
   mailbox_id -1 when none came. */
static struct store_notify_event
test_notify_next(struct store *s)
{
	struct store_notify_event ev = { 0, -1, 0 };

	for (int i = 0; i < 2000; i++) {
		if (store_notify_read(s, &ev) == 1)
			return ev;
		usleep(1000);
	}
	ev.mailbox_id = -1;
	return ev;
}

/* A deferring connection (the commit thread's) keeps a COMMIT's events
   until store_notify_flush, keeps them past a later rollback, and sends
   none of the rolled-back transaction; the commit thread sends the
   events of its batch itself (an APPEND's loop no longer publishes). */
static void
test_store_notify_defer(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct store_notify_event ev;
	struct test_append_job a;
	struct store_mailbox box;
	struct store_commit *c;
	struct store *s;
	char dir[512];

	s = test_store_open_sub("notifydefer", dir, sizeof(dir));
	test_assert(store_notify_open(s) >= 0);
	/* not deferring: sent at COMMIT */
	test_assert(store_batch_begin(s) == STORE_OK);
	store_event_add(s, 1, 6, 4);
	test_assert(store_batch_commit(s) == STORE_OK);
	ev = test_notify_next(s);
	test_assert(ev.mailbox_id == 6 && ev.modseq == 4);

	store_notify_defer(s);
	test_assert(store_batch_begin(s) == STORE_OK);
	store_event_add(s, 1, 7, 5);
	test_assert(store_batch_commit(s) == STORE_OK);
	test_assert(store_notify_read(s, &ev) == 0);
	test_assert(store_batch_begin(s) == STORE_OK);
	store_event_add(s, 1, 8, 6);
	store_batch_rollback(s);
	test_assert(store_batch_begin(s) == STORE_OK);
	store_event_add(s, 1, 9, 7);
	test_assert(store_batch_commit(s) == STORE_OK);
	store_notify_flush(s);
	ev = test_notify_next(s);
	test_assert(ev.account_id == 1 && ev.mailbox_id == 7 &&
		    ev.modseq == 5);
	ev = test_notify_next(s);
	test_assert(ev.mailbox_id == 9 && ev.modseq == 7);
	usleep(20000);
	test_assert(store_notify_read(s, &ev) == 0);

	test_inbox(s, "nd.test", &box);
	while (store_notify_read(s, &ev) == 1)
		; /* the account's own events */
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	test_append_init(&a, s, box.id, "Subject: n\r\n\r\nnotify\r\n");
	store_commit_submit(c, &a.t.job);
	test_loop_until_idle(loop, c);
	test_assert(a.t.job.result == STORE_OK);
	ev = test_notify_next(s);
	test_assert(ev.mailbox_id == box.id && ev.modseq > 0);
	store_commit_free(&c);
	store_mailbox_clear(&box);
	store_close(&s);
	ev_loop_free(&loop);
}

/* The batch leaves its new blob unindexed (fts 0) and the index thread
   writes its rows after the reply; a blob collected before the index
   thread reaches it is skipped; free indexes what still waits. */
static void
test_commit_index(void)
{
	struct test_append_job a, b;
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	struct store_mailbox box;
	char dir[512];
	int state = -1;

	s = test_store_open_sub("index", dir, sizeof(dir));
	test_inbox(s, "ix.test", &box);
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	test_append_init(&a, s, box.id, "Subject: one\r\n\r\nzebra crossing\r\n");
	store_commit_submit(c, &a.t.job);
	test_loop_until_idle(loop, c);
	test_assert(a.t.job.result == STORE_OK);
	/* bounded: the index thread is not told to hurry */
	for (int i = 0; i < 2000; i++) {
		state = test_fts_state(s, a.t.blob.hash);
		if (state != 0)
			break;
		usleep(1000);
	}
	test_assert(state == STORE_FTS_EXACT);
	test_assert(test_fts_rows(s, "\"zebra cross\"") == 1);

	/* b: indexed at free, after the test's loop is gone */
	test_append_init(&b, s, box.id, "Subject: two\r\n\r\nyak shaving\r\n");
	store_commit_submit(c, &b.t.job);
	test_loop_until_idle(loop, c);
	test_assert(b.t.job.result == STORE_OK);
	store_commit_free(&c);
	test_assert(test_fts_state(s, b.t.blob.hash) == STORE_FTS_EXACT);
	test_assert(test_fts_rows(s, "\"yak shav\"") == 1);
	store_mailbox_clear(&box);
	store_close(&s);
	ev_loop_free(&loop);
}

/* The id of the blob row of hash. */
static int64_t
test_blob_id(struct store *s, const char *hash)
{
	sqlite3_stmt *st;
	int64_t id = 0;

	test_assert(sqlite3_prepare_v2(s->db, "SELECT id FROM blobs"
					      " WHERE hash = ?", -1, &st,
				       NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

/* An index transaction that finds the write lock held past its limit is
   tried again until the lock is free, not dropped (a MULTIAPPEND holds
   the lock for seconds; the thread's limit is 20 ms here, not 5 s). */
static void
test_index_busy_retry(void)
{
	static const char msg[] = "Subject: r\r\n\r\nwombat burrow\r\n";
	static _Atomic size_t busy;
	struct store_fts_hint h;
	struct store_index *ix;
	struct store_mailbox box;
	struct store *s;
	char dir[512], sql[128];
	const char *error = NULL;
	uint32_t uid;
	int state = -1;

	s = test_store_open_sub("busy", dir, sizeof(dir));
	test_inbox(s, "b.test", &box);
	memset(&h, 0, sizeof(h));
	test_assert(store_blob_write(s, msg, sizeof(msg) - 1, h.hash) ==
		    STORE_OK);
	test_assert(store_msg_append(s, box.id, h.hash, 0, NULL, 1764572400,
				     &uid) == STORE_OK);
	h.blob_id = test_blob_id(s, h.hash);
	test_assert(h.blob_id > 0);
	/* back to unindexed, with a row that a new indexing replaces */
	snprintf(sql, sizeof(sql), "UPDATE blob_fts SET body = 'planted'"
		 " WHERE rowid = %lld", (long long)h.blob_id);
	test_assert(store_fts_exec(s, sql) == STORE_OK);
	test_assert(test_fts_rows(s, "planted") == 1);
	test_assert(sqlite3_exec(s->db, "UPDATE blobs SET fts = 0, hfts = 0",
				 NULL, NULL, NULL) == SQLITE_OK);

	ix = store_index_new(dir, &busy, &error);
	test_assert(ix != NULL);
	store_index_busy_limit(ix, 20);
	test_assert(sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL,
				 NULL) == SQLITE_OK);
	store_index_add(ix, &h, 1);
	/* the thread gathers for 100 ms, then meets the lock every 70 ms */
	usleep(400 * 1000);
	test_assert(test_fts_state(s, h.hash) == 0);
	test_assert(sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) ==
		    SQLITE_OK);
	for (int i = 0; i < 2000 && state != STORE_FTS_EXACT; i++) {
		state = test_fts_state(s, h.hash);
		if (state != STORE_FTS_EXACT)
			usleep(1000);
	}
	test_assert(state == STORE_FTS_EXACT);
	test_assert(test_fts_rows(s, "wombat") == 1);
	test_assert(test_fts_rows(s, "planted") == 0);
	store_index_free(&ix);
	store_mailbox_clear(&box);
	store_close(&s);
}

/* The writer in the way of test_store_wal_restart's checkpoint: the
   first time the checkpoint waits for the write lock, the writer's
   transaction commits (it appends its frames meanwhile, as a batch
   does that began before a checkpoint ended). */
struct test_wal_writer {
	sqlite3 *db;
	int calls;
};

static int
test_wal_busy(void *arg, int count)
{
	struct test_wal_writer *w = arg;

	(void)count;
	if (w->calls++ == 0)
		test_assert(sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL) ==
			    SQLITE_OK);
	return w->calls < 100;
}

static int
test_wal_frames_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)db;
	(void)name;
	*(int *)arg = pages;
	return SQLITE_OK;
}

/* Past its restart mark the checkpoint waits for the writer in its way,
   so the next transaction writes the WAL from its start; a PASSIVE one
   alone ends without waiting and the WAL keeps growing (the index
   thread met the commit threads' batches that way all the time). */
static void
test_store_wal_restart(void)
{
	struct test_wal_writer w = { NULL, 0 };
	struct store *a, *c;
	char dir[512];
	const char *error = NULL;
	int frames = 0, grown;

	a = test_store_open_sub("walrestart", dir, sizeof(dir));
	c = store_open(dir, &error);
	test_assert(c != NULL);
	sqlite3_wal_hook(a->db, test_wal_frames_hook, &frames);
	test_assert(sqlite3_exec(a->db, "CREATE TABLE t(x)", NULL, NULL,
				 NULL) == SQLITE_OK);
	for (int i = 0; i < 20; i++)
		test_assert(sqlite3_exec(a->db, "INSERT INTO t VALUES"
					 " (randomblob(3000))", NULL, NULL,
					 NULL) == SQLITE_OK);
	grown = frames;
	test_assert(grown > 20);
	test_assert(sqlite3_exec(a->db, "BEGIN IMMEDIATE; INSERT INTO t"
				 " VALUES (randomblob(3000))", NULL, NULL,
				 NULL) == SQLITE_OK);
	w.db = a->db;
	sqlite3_busy_handler(c->db, test_wal_busy, &w);
	test_assert(store_wal_checkpoint(c, 5) >= 0);
	test_assert(w.calls >= 1);
	test_assert(frames > grown);
	test_assert(sqlite3_exec(a->db, "INSERT INTO t VALUES (1)", NULL,
				 NULL, NULL) == SQLITE_OK);
	test_assert(frames > 0 && frames <= 3);
	/* below the mark: PASSIVE only, the writer is not waited for */
	w.calls = 0;
	test_assert(store_wal_checkpoint(c, 1000) >= 0);
	test_assert(w.calls == 0);
	store_close(&c);
	store_close(&a);
}

static int
test_cache_used(struct store *s)
{
	int cur = 0, hi = 0;

	test_assert(sqlite3_db_status(s->db, SQLITE_DBSTATUS_CACHE_USED, &cur,
				      &hi, 0) == SQLITE_OK);
	return cur;
}

/* Fill s's page cache: a table of about 2 MB, written and read. */
static void
test_cache_fill(struct store *s)
{
	test_assert(sqlite3_exec(s->db, "CREATE TABLE IF NOT EXISTS f(x);"
				 "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1"
				 " UNION ALL SELECT i + 1 FROM n WHERE i < 1000)"
				 " INSERT INTO f SELECT randomblob(2000) FROM n;"
				 " COMMIT; SELECT count(*), sum(length(x)) FROM f",
				 NULL, NULL, NULL) == SQLITE_OK);
}

/* Memory at rest: a thread's wait rests its store once it was used and
   STORE_REST_MS passed without a wakeup; the loop's tick rests its
   store after a whole tick without a page used, not before. */
static void
test_store_rest(void)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct store *s;
	char dir[512];
	int before;

	s = test_store_open_sub("rest", dir, sizeof(dir));
	test_cache_fill(s);
	before = test_cache_used(s);
	test_assert(before > 1000 * 1000);
	pthread_mutex_lock(&mu);
	store_idle_wait(&cond, &mu, s);
	pthread_mutex_unlock(&mu);
	test_assert(test_cache_used(s) < before / 10);

	test_cache_fill(s);
	store_rest_if_idle(s); /* used since the last tick: kept */
	test_assert(test_cache_used(s) > 1000 * 1000);
	test_cache_fill(s);
	store_rest_if_idle(s); /* used again: kept */
	test_assert(test_cache_used(s) > 1000 * 1000);
	store_rest_if_idle(s); /* a tick without a use: rested */
	test_assert(test_cache_used(s) < before / 10);
	store_close(&s);
}

/* The subject of the blob's stored envelope ("" when none). */
static void
test_blob_subject(struct store *s, const char *hash, char *out, size_t size)
{
	struct store_msg_meta meta;

	out[0] = '\0';
	if (store_msg_meta(s, hash, &meta) == 1 && meta.subject != NULL)
		snprintf(out, size, "%s", meta.subject);
	store_msg_meta_clear(&meta);
}

/* A commit job's message structure is parsed by the blob stage, before
   the batch takes the write lock: the commit thread stores it without
   parsing (the count of parses inside a transaction does not move), and
   the stored structure is the message's. */
static void
test_commit_parse_ahead(void)
{
	struct test_append_job a;
	struct ev_loop *loop = ev_loop_new();
	struct store_commit *c;
	struct store *s;
	struct store_mailbox box;
	char dir[512], subject[64];
	uint64_t parsed;

	s = test_store_open_sub("ahead", dir, sizeof(dir));
	test_inbox(s, "pa.test", &box);
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	parsed = store_msg_parsed_in_tx();
	test_append_init(&a, s, box.id, "Subject: parsed ahead\r\n"
			 "From: a@pa.test\r\n\r\nbody\r\n");
	store_commit_submit(c, &a.t.job);
	test_loop_until_idle(loop, c);
	test_assert(a.t.job.result == STORE_OK);
	test_assert(store_msg_parsed_in_tx() == parsed);
	test_assert(a.t.blob.info == NULL); /* freed after the batch */
	test_blob_subject(s, a.t.blob.hash, subject, sizeof(subject));
	test_assert(strcmp(subject, "parsed ahead") == 0);
	store_commit_free(&c);
	store_mailbox_clear(&box);
	store_close(&s);
	ev_loop_free(&loop);
}

/* What the index thread does with hints: read them, then write the
   rows in one transaction (store_index_rows). */
static int
test_index_hints(struct store *s, const struct store_fts_hint *h, size_t n)
{
	int ret = store_fts_read_hints(s, h, n);

	return ret == STORE_OK ? store_fts_flush_deferred(s, n) : ret;
}

/* The index thread's own work: a hint for a blob that is gone is
   skipped, a hint for one indexed meanwhile writes nothing twice. */
static void
test_index_hints_skip(void)
{
	static const char msg[] = "Subject: s\r\n\r\nquokka island\r\n";
	struct store_fts_hint h[2];
	struct store_mailbox box;
	struct store *s, *ix;
	char dir[512], hash[STORE_HASH_HEX_LEN + 1];
	const char *error = NULL;
	uint32_t uid;

	s = test_store_open_sub("hints", dir, sizeof(dir));
	test_inbox(s, "h.test", &box);
	/* s indexes in its own transaction: the blob is at 1 already */
	test_assert(store_blob_write(s, msg, sizeof(msg) - 1, hash) ==
		    STORE_OK);
	test_assert(store_msg_append(s, box.id, hash, 0, NULL, 1764572400,
				     &uid) == STORE_OK);
	test_assert(test_fts_state(s, hash) == STORE_FTS_EXACT);
	test_assert(test_fts_rows(s, "quokka") == 1);

	ix = store_open(dir, &error);
	test_assert(ix != NULL);
	store_fts_defer(ix);
	memset(h, 0, sizeof(h));
	h[0].blob_id = 12345; /* no such blob, no such file */
	memset(h[0].hash, 'a', STORE_HASH_HEX_LEN);
	h[1].blob_id = 0;
	{
		sqlite3_stmt *st;

		test_assert(sqlite3_prepare_v2(s->db, "SELECT id FROM blobs"
						      " WHERE hash = ?", -1,
					       &st, NULL) == SQLITE_OK);
		sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
		test_assert(sqlite3_step(st) == SQLITE_ROW);
		h[1].blob_id = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	memcpy(h[1].hash, hash, sizeof(h[1].hash));
	/* a planted row would be replaced by a second indexing */
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "UPDATE blob_fts SET body = 'planted'"
			 " WHERE rowid = %lld", (long long)h[1].blob_id);
		test_assert(store_fts_exec(s, sql) == STORE_OK);
	}
	test_assert(test_index_hints(ix, h, 2) == STORE_OK);
	test_assert(test_fts_rows(s, "planted") == 1);
	test_assert(test_fts_rows(s, "quokka") == 0);
	test_assert(test_fts_state(s, hash) == STORE_FTS_EXACT);
	/* at 0 (a power cut lost the index transaction) it is indexed */
	test_assert(sqlite3_exec(s->db, "UPDATE blobs SET fts = 0, hfts = 0",
				 NULL, NULL, NULL) == SQLITE_OK);
	test_assert(test_index_hints(ix, h + 1, 1) == STORE_OK);
	test_assert(test_fts_rows(s, "quokka") == 1);
	test_assert(test_fts_rows(s, "planted") == 0);
	test_assert(test_fts_state(s, hash) == STORE_FTS_EXACT);
	store_close(&ix);
	store_mailbox_clear(&box);
	store_close(&s);
}

/* The index rows' wait (store_index_yield_done): they go once the commit
   thread has been idle 20 ms, not at the first idle moment between two
   jobs of one busy client; after 500 ms at an idle moment; after 600 ms
   anyway. */
static void
test_index_yield(void)
{
	struct store_index_yield y = { 1000, 1000 };
	int64_t t;

	/* idle from the start: after 20 ms */
	test_assert(!store_index_yield_done(&y, 0, 1000));
	test_assert(!store_index_yield_done(&y, 0, 1019));
	test_assert(store_index_yield_done(&y, 0, 1020));
	/* a client's jobs back to back, idle 1 ms of every 4 */
	y.start = y.quiet_since = 0;
	for (t = 0; t < 500; t++)
		test_assert(!store_index_yield_done(&y, t % 4 == 3 ? 0 : 1, t));
	test_assert(!store_index_yield_done(&y, 1, 500));
	test_assert(store_index_yield_done(&y, 0, 501));
	/* never idle: at 600 ms */
	y.start = y.quiet_since = 0;
	for (t = 0; t < 600; t++)
		test_assert(!store_index_yield_done(&y, 1, t));
	test_assert(store_index_yield_done(&y, 1, 600));
	/* the burst ends at 100 ms: 20 ms later */
	y.start = y.quiet_since = 0;
	for (t = 0; t < 100; t++)
		test_assert(!store_index_yield_done(&y, 1, t));
	for (t = 100; t < 119; t++)
		test_assert(!store_index_yield_done(&y, 0, t));
	test_assert(store_index_yield_done(&y, 0, 120));
}

static const struct test_case tests[] = {
	{ "commit_index", test_commit_index },
	{ "index_hints_skip", test_index_hints_skip },
	{ "index_busy_retry", test_index_busy_retry },
	{ "index_yield", test_index_yield },
	{ "store_wal_restart", test_store_wal_restart },
	{ "store_rest", test_store_rest },
	{ "commit_parse_ahead", test_commit_parse_ahead },
	{ "commit_batch", test_commit_batch },
	{ "commit_failure_alone", test_commit_failure_alone },
	{ "commit_blob_failure", test_commit_blob_failure },
	{ "commit_drain", test_commit_drain },
	{ "commit_pipeline", test_commit_pipeline },
	{ "commit_parked", test_commit_parked },
	{ "commit_overlap", test_commit_overlap },
	{ "commit_name_taken", test_commit_name_taken },
	{ "commit_pack_fsync_failure", test_commit_pack_fsync_failure },
	{ "store_wal_sync", test_store_wal_sync },
	{ "store_notify_defer", test_store_notify_defer },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
