/* Pack files (store_pack.c): small blobs appended by the commit
   thread's blob stage, read back through their rows, reclaimed once
   collected; large blobs keep a file of their own. */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "store_test.h"
#include "lib/ev.h"
#include "store/store.h"
#include "store/store_int.h"

/* An APPEND of one blob, or a job that fails after its blob is in. */
struct pack_job {
	struct store_commit_job job; /* first */
	struct store_commit_blob blob;
	int64_t box;
	uint32_t uid;
	bool fail, done;
};

/* 0: open; 1: a job waits in it; 2: released */
static _Atomic int pack_gate = 2;

static int
pack_job_run(struct store *s, struct store_commit_job *job)
{
	struct pack_job *p = (struct pack_job *)job;

	if (pack_gate != 2) {
		pack_gate = 1;
		for (int i = 0; i < 20000 && pack_gate != 2; i++)
			usleep(1000);
	}
	if (p->fail)
		return STORE_INVALID;
	return store_msg_append(s, p->box, p->blob.hash, 0, NULL, 1700000000,
				&p->uid);
}

static void
pack_job_done(struct store_commit_job *job)
{
	((struct pack_job *)job)->done = true;
}

/* Submit one job per text (all in one batch). */
static void
pack_submit(struct store_commit *c, struct store *s, int64_t box,
	    struct pack_job *jobs, char **texts, size_t *lens, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool fail = jobs[i].fail;

		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].fail = fail;
		jobs[i].box = box;
		jobs[i].job.run = pack_job_run;
		jobs[i].job.done = pack_job_done;
		jobs[i].blob.w = store_blob_writer_new(s);
		test_assert_idx(store_blob_writer_write(jobs[i].blob.w, texts[i],
							lens[i]) == STORE_OK,
				(int)i);
		jobs[i].job.blobs = &jobs[i].blob;
		jobs[i].job.blob_count = 1;
		store_commit_submit(c, &jobs[i].job);
	}
}

/* The same, and wait for them. */
static void
pack_commit(struct ev_loop *loop, struct store_commit *c, struct store *s,
	    int64_t box, struct pack_job *jobs, char **texts, size_t *lens,
	    size_t n)
{
	pack_submit(c, s, box, jobs, texts, lens, n);
	for (int k = 0; k < 3000 && store_commit_pending(c) > 0; k++)
		ev_run_once(loop, 10);
	test_assert(store_commit_pending(c) == 0);
}

static int64_t
pack_inbox(struct store *s, const char *domain)
{
	struct store_mailbox box;
	char addr[128];
	int64_t account = 0, id;

	snprintf(addr, sizeof(addr), "u@%s", domain);
	test_assert(store_domain_add(s, domain) == STORE_OK);
	test_assert(store_account_add(s, addr, "standard", "h", NULL,
				      &account) == STORE_OK);
	test_assert(store_mailbox_get(s, account, "INBOX", &box) == 1);
	id = box.id;
	store_mailbox_clear(&box);
	return id;
}

/* The row of hash: its pack (0: none, -1: no row) and refcount. */
static int64_t
pack_of(struct store *s, const char *hash, int64_t *refcount_r)
{
	sqlite3_stmt *st;
	int64_t pack = -1;

	test_assert(sqlite3_prepare_v2(s->db, "SELECT pack, refcount FROM"
					      " blobs WHERE hash = ?", -1, &st,
				       NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		pack = sqlite3_column_int64(st, 0);
		if (refcount_r != NULL)
			*refcount_r = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return pack;
}

static bool
pack_reads(struct store *s, const char *hash, const char *text, size_t len)
{
	struct store_map map;
	bool same;

	if (store_blob_map(s, hash, &map) != STORE_OK)
		return false;
	same = map.len == len && (len == 0 || memcmp(map.data, text, len) == 0);
	store_blob_unmap(&map);
	return same;
}

static int64_t
pack_size(const char *dir, int64_t pack)
{
	char path[700];
	struct stat st;

	snprintf(path, sizeof(path), "%s/packs/%016llx", dir,
		 (unsigned long long)pack);
	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static bool
pack_exists(const char *dir, int64_t pack)
{
	return pack_size(dir, pack) >= 0;
}

/* Text of len bytes, made of seed. */
static char *
pack_text(size_t len, int seed)
{
	char *t = malloc(len);
	int n;

	test_assert(t != NULL);
	n = snprintf(t, len, "Subject: blob %d\r\n\r\n", seed);
	for (size_t i = (size_t)n; i < len; i++)
		t[i] = (char)('a' + (i * 7 + (size_t)seed) % 26);
	return t;
}

/* Small blobs go to one pack, identical ones are one row; a blob past
   the memory bound keeps a file; each reads back. */
static void
test_pack_append_read(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct pack_job jobs[4] = { 0 };
	size_t lens[4] = { 5000, 7000, 5000, 1024 * 1024 + 10 };
	char *texts[4], dir[512];
	struct store_commit *c;
	struct store *s = test_store_open_sub("packs", dir, sizeof(dir));
	int64_t box = pack_inbox(s, "pack.test"), refs = 0, p0;

	texts[0] = pack_text(lens[0], 1);
	texts[1] = pack_text(lens[1], 2);
	texts[2] = pack_text(lens[2], 1); /* the same as texts[0] */
	texts[3] = pack_text(lens[3], 3);
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	pack_commit(loop, c, s, box, jobs, texts, lens, 4);
	for (int i = 0; i < 4; i++) {
		test_assert_idx(jobs[i].done && jobs[i].job.result == STORE_OK,
				i);
		test_assert_idx(pack_reads(s, jobs[i].blob.hash, texts[i],
					   lens[i]), i);
	}
	p0 = pack_of(s, jobs[0].blob.hash, &refs);
	test_assert(p0 > 0 && refs == 2);
	test_assert(pack_of(s, jobs[1].blob.hash, NULL) == p0);
	test_assert(pack_exists(dir, p0));
	/* the large one: a file of its own, no pack */
	test_assert(pack_of(s, jobs[3].blob.hash, NULL) == 0);
	test_assert(test_blob_files(dir) == 1);
	store_commit_free(&c);
	for (int i = 0; i < 4; i++)
		free(texts[i]);
	store_close(&s);
	ev_loop_free(&loop);
}

/* A pack held by its writer is left alone; once closed and mostly dead
   its live blob moves to the reclaimer's pack and reads the same; the
   emptied pack goes on the next pass (no grace here). */
static void
test_pack_reclaim(void)
{
	enum { N = 3, LEN = 600 * 1024 };
	struct ev_loop *loop = ev_loop_new();
	struct pack_job jobs[N] = { 0 };
	size_t lens[N] = { LEN, LEN, LEN };
	char *texts[N], dir[512];
	struct store_commit *c;
	struct store *s = test_store_open_sub("packgc", dir, sizeof(dir));
	int64_t box = pack_inbox(s, "gc.test"), p0, p1;
	int grace = store_pack_empty_grace_s;
	uint32_t gone[2];
	uint64_t modseq = 0;

	store_pack_empty_grace_s = 0;
	for (int i = 0; i < N; i++)
		texts[i] = pack_text(LEN, 10 + i);
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	pack_commit(loop, c, s, box, jobs, texts, lens, N);
	p0 = pack_of(s, jobs[2].blob.hash, NULL);
	test_assert(p0 > 0);
	gone[0] = jobs[0].uid;
	gone[1] = jobs[1].uid;
	test_assert(store_msg_expunge(s, box, gone, 2, &modseq) == STORE_OK);
	test_assert(pack_of(s, jobs[0].blob.hash, NULL) == -1); /* collected */
	/* the blob stage still holds p0 */
	test_assert(store_pack_reclaim(s) == STORE_OK);
	test_assert(pack_of(s, jobs[2].blob.hash, NULL) == p0);
	store_commit_free(&c);
	/* closed, 1.2 MB of 1.8 dead: compacted; emptied, it waits out
	   its grace */
	store_pack_empty_grace_s = 3600;
	test_assert(store_pack_reclaim(s) == STORE_OK);
	p1 = pack_of(s, jobs[2].blob.hash, NULL);
	test_assert(p1 > 0 && p1 != p0);
	test_assert(pack_reads(s, jobs[2].blob.hash, texts[2], LEN));
	test_assert(pack_exists(dir, p0));
	test_assert(store_pack_pending(s));
	store_pack_empty_grace_s = 0;
	test_assert(store_pack_reclaim(s) == STORE_OK);
	test_assert(!pack_exists(dir, p0));
	test_assert(!store_pack_pending(s));
	/* the reclaimer's own pack, open, stays */
	test_assert(pack_exists(dir, p1));
	test_assert(pack_reads(s, jobs[2].blob.hash, texts[2], LEN));
	store_pack_empty_grace_s = grace;
	for (int i = 0; i < N; i++)
		free(texts[i]);
	store_close(&s);
	ev_loop_free(&loop);
}

/* A job that failed left its bytes in the pack and no row: once the
   writer closed it, the pack is empty, kept through its grace (a
   reader may have looked up a row that just moved), then unlinked. */
static void
test_pack_uncommitted(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct pack_job jobs[1] = { { .fail = true } };
	size_t lens[1] = { 3000 };
	char *texts[1], dir[512];
	struct store_commit *c;
	struct store *s = test_store_open_sub("packdead", dir, sizeof(dir));
	int64_t box = pack_inbox(s, "dead.test");
	int grace = store_pack_empty_grace_s;
	struct dirent *de;
	char packs[600];
	DIR *d;
	int n = 0;

	texts[0] = pack_text(lens[0], 5);
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	pack_commit(loop, c, s, box, jobs, texts, lens, 1);
	test_assert(jobs[0].done && jobs[0].job.result == STORE_INVALID);
	test_assert(pack_of(s, jobs[0].blob.hash, NULL) == -1);
	store_commit_free(&c);
	snprintf(packs, sizeof(packs), "%s/packs", dir);
	store_pack_empty_grace_s = 3600;
	test_assert(store_pack_reclaim(s) == STORE_OK);
	test_assert(store_pack_pending(s));
	d = opendir(packs);
	test_assert(d != NULL);
	while (d != NULL && (de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	test_assert(n == 1);
	store_pack_empty_grace_s = 0;
	test_assert(store_pack_reclaim(s) == STORE_OK);
	test_assert(!store_pack_pending(s));
	n = 0;
	d = opendir(packs);
	while (d != NULL && (de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	test_assert(n == 0);
	store_pack_empty_grace_s = grace;
	free(texts[0]);
	store_close(&s);
	ev_loop_free(&loop);
}

/* Whether another open file description can take pack's lock (that
   is, no writer holds it). */
static bool
pack_free(const char *dir, int64_t pack)
{
	char path[700];
	bool got;
	int fd;

	snprintf(path, sizeof(path), "%s/packs/%016llx", dir,
		 (unsigned long long)pack);
	fd = open(path, O_RDONLY);
	test_assert(fd >= 0);
	got = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return got;
}

/* A pack the blob stage rolled over stays locked while the batch with
   its last bytes is not committed yet (a reclaimer would take it for
   empty), and is let go at the first round after that commit. */
static void
test_pack_roll_held(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct pack_job first[1] = { 0 }, second[1] = { 0 }, third[1] = { 0 };
	size_t lens[1] = { 2000 };
	char *texts[3], dir[512];
	struct store_commit *c;
	struct store *s = test_store_open_sub("packroll", dir, sizeof(dir));
	int64_t box = pack_inbox(s, "roll.test"), p0, p1;
	uint64_t roll = store_pack_roll_bytes;

	store_pack_roll_bytes = 1; /* a new pack at every round */
	for (int i = 0; i < 3; i++)
		texts[i] = pack_text(lens[0], 20 + i);
	c = store_commit_new(loop, dir, NULL);
	test_assert(c != NULL);
	pack_gate = 0;
	pack_submit(c, s, box, first, &texts[0], lens, 1);
	for (int i = 0; i < 20000 && pack_gate != 1; i++) {
		ev_run_once(loop, 0);
		usleep(1000);
	}
	test_assert(pack_gate == 1); /* its batch is open, not committed */
	p0 = first[0].blob.pack;
	test_assert(p0 > 0);
	pack_submit(c, s, box, second, &texts[1], lens, 1);
	/* the second round rolls over to a new pack: p0 stays held */
	for (int i = 0; i < 5000 && second[0].blob.pack == 0; i++) {
		ev_run_once(loop, 0);
		usleep(1000);
	}
	test_assert(second[0].blob.pack > 0 && second[0].blob.pack != p0);
	test_assert(!pack_free(dir, p0));
	/* the zeros it was grown by are cut off: it ends at its bytes */
	test_assert(pack_size(dir, p0) == (int64_t)lens[0]);
	pack_gate = 2;
	for (int k = 0; k < 3000 && store_commit_pending(c) > 0; k++)
		ev_run_once(loop, 10);
	test_assert(first[0].job.result == STORE_OK);
	test_assert(second[0].job.result == STORE_OK);
	p1 = second[0].blob.pack;
	/* the next round lets p0 go; p1 is still the open pack or held */
	pack_commit(loop, c, s, box, third, &texts[2], lens, 1);
	test_assert(third[0].job.result == STORE_OK);
	test_assert(pack_free(dir, p0));
	test_assert(pack_reads(s, first[0].blob.hash, texts[0], lens[0]));
	test_assert(pack_reads(s, second[0].blob.hash, texts[1], lens[0]));
	test_assert(pack_of(s, second[0].blob.hash, NULL) == p1);
	store_commit_free(&c);
	store_pack_roll_bytes = roll;
	for (int i = 0; i < 3; i++)
		free(texts[i]);
	store_close(&s);
	ev_loop_free(&loop);
}

static const struct test_case tests[] = {
	{ "pack_roll_held", test_pack_roll_held },
	{ "pack_append_read", test_pack_append_read },
	{ "pack_reclaim", test_pack_reclaim },
	{ "pack_uncommitted", test_pack_uncommitted },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
