/* Tests for the read thread (store_reader.c) and the one-snapshot read
   of a mailbox's view (store_mailbox_view_snapshot): jobs run on the
   thread, not the loop, one after the other, done runs on the loop in
   submission order, free waits for what is in flight; a message
   appended and a flag changed by another connection while the thread
   is in the middle of the rows show neither in the rows nor in the
   mailbox row (UIDNEXT, HIGHESTMODSEQ) it returns, and a missing
   mailbox is "not found" without a call of the callback. (That the
   mailbox row and the rows come from one transaction is not reachable
   from here: nothing can run between the two reads.) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "store_test.h"
#include "lib/ev.h"
#include "store/store.h"

struct test_rjob {
	struct store_reader_job job; /* first */
	int index;
	pthread_t ran_on;
	int *order;
	size_t *order_len;
	bool done;
	/* snapshot jobs */
	int64_t mailbox_id;
	int found;
	struct store_mailbox box;
	uint32_t uids[16];
	uint32_t flags[16];
	size_t n;
	atomic_int *gate; /* callback of the first row: 1, wait for 2 */
};

static int
test_rjob_run(struct store *s, struct store_reader_job *job)
{
	struct test_rjob *t = (struct test_rjob *)job;

	(void)s;
	t->ran_on = pthread_self();
	usleep(1000);
	return t->index == 3 ? STORE_INVALID : STORE_OK;
}

static void
test_rjob_done(struct store_reader_job *job)
{
	struct test_rjob *t = (struct test_rjob *)job;

	t->done = true;
	if (t->order != NULL)
		t->order[(*t->order_len)++] = t->index;
}

static void
test_loop_until_idle(struct ev_loop *loop, struct store_reader *r)
{
	for (int i = 0; i < 2000 && store_reader_pending(r) > 0; i++)
		ev_run_once(loop, 10);
}

static void
test_reader_jobs(void)
{
	enum { N = 6 };
	struct test_rjob jobs[N];
	struct ev_loop *loop = ev_loop_new();
	struct store_reader *r;
	struct store *s;
	char dir[512];
	int order[N];
	size_t order_len = 0, i;
	const char *error = NULL;

	s = test_store_open_sub("jobs", dir, sizeof(dir));
	r = store_reader_new(loop, dir, &error);
	test_assert(r != NULL);
	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < N; i++) {
		jobs[i].job.run = test_rjob_run;
		jobs[i].job.done = test_rjob_done;
		jobs[i].index = (int)i;
		jobs[i].order = order;
		jobs[i].order_len = &order_len;
		store_reader_submit(r, &jobs[i].job);
		test_assert(!jobs[i].done); /* never inside submit */
	}
	test_assert(store_reader_pending(r) == N);
	test_loop_until_idle(loop, r);
	test_assert(store_reader_pending(r) == 0);
	test_assert(order_len == N);
	for (i = 0; i < N; i++) {
		test_assert_idx(order[i] == (int)i, i);
		test_assert_idx(!pthread_equal(jobs[i].ran_on, pthread_self()),
				i);
		test_assert_idx(jobs[i].job.result ==
					(i == 3 ? STORE_INVALID : STORE_OK),
				i);
	}
	/* free waits for what is in flight and calls its done */
	jobs[0].done = false;
	jobs[0].order = NULL;
	store_reader_submit(r, &jobs[0].job);
	store_reader_free(&r);
	test_assert(r == NULL);
	test_assert(jobs[0].done);
	store_close(&s);
	ev_loop_free(&loop);
}

static int
test_snap_one(void *ctx, const struct store_view_msg *m)
{
	struct test_rjob *t = ctx;

	if (t->n == 0 && t->gate != NULL) {
		*t->gate = 1;
		for (int i = 0; i < 20000 && *t->gate != 2; i++)
			usleep(1000);
	}
	if (t->n < 16) {
		t->uids[t->n] = m->uid;
		t->flags[t->n] = m->flags;
	}
	t->n++;
	return 0;
}

static int
test_snap_run(struct store *s, struct store_reader_job *job)
{
	struct test_rjob *t = (struct test_rjob *)job;

	t->found = store_mailbox_view_snapshot(s, t->mailbox_id, &t->box,
					       test_snap_one, t, NULL);
	return t->found < 0 ? STORE_ERR : STORE_OK;
}

static void
test_reader_snapshot(void)
{
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	struct ev_loop *loop = ev_loop_new();
	struct store_reader *r;
	struct store_mailbox box;
	struct test_rjob t, miss;
	struct store *s;
	char dir[512], hash[STORE_HASH_HEX_LEN + 1];
	int64_t acct = 0, inbox;
	uint32_t uid, one = 1;
	uint64_t modseq;
	atomic_int gate = 0;
	const char *error = NULL;

	s = test_store_open_sub("snap", dir, sizeof(dir));
	test_assert(store_domain_add(s, "example.test") == STORE_OK);
	test_assert(store_account_add(s, "a@example.test", "standard", "$argon2id$x",
				      NULL, &acct) == STORE_OK);
	test_assert(store_mailbox_get(s, acct, "INBOX", &box) == 1);
	inbox = box.id;
	store_mailbox_clear(&box);
	test_assert(store_blob_write(s, msg, sizeof(msg) - 1, hash) ==
		    STORE_OK);
	for (int i = 0; i < 3; i++)
		test_assert(store_msg_append(s, inbox, hash, 0, NULL,
					     1764572400, &uid) == STORE_OK);
	test_assert(store_mailbox_get(s, acct, "INBOX", &box) == 1);

	r = store_reader_new(loop, dir, &error);
	test_assert(r != NULL);
	memset(&t, 0, sizeof(t));
	t.job.run = test_snap_run;
	t.job.done = test_rjob_done;
	t.mailbox_id = inbox;
	t.gate = &gate;
	store_reader_submit(r, &t.job);
	for (int i = 0; i < 20000 && gate != 1; i++)
		usleep(1000);
	test_assert(gate == 1);
	/* while the thread is inside its snapshot: a new message and a
	   flag change, committed on the loop's connection */
	test_assert(store_msg_append(s, inbox, hash, 0, NULL, 1764572400,
				     &uid) == STORE_OK);
	test_assert(store_msg_set_flags(s, inbox, &one, 1, STORE_FLAGS_ADD,
					STORE_FLAG_SEEN, NULL, 0, &modseq,
					NULL, NULL) == STORE_OK);
	gate = 2;
	test_loop_until_idle(loop, r);
	test_assert(t.done && t.job.result == STORE_OK && t.found == 1);
	test_assert(t.n == 3);
	test_assert(t.uids[0] == 1 && t.uids[2] == 3);
	test_assert(t.flags[0] == 0);
	test_assert(t.box.highestmodseq == box.highestmodseq);
	test_assert(t.box.uidnext == box.uidnext && t.box.uidnext == 4);
	test_assert(modseq > box.highestmodseq);
	store_mailbox_clear(&t.box);
	store_mailbox_clear(&box);

	memset(&miss, 0, sizeof(miss));
	miss.job.run = test_snap_run;
	miss.job.done = test_rjob_done;
	miss.mailbox_id = inbox + 1000;
	store_reader_submit(r, &miss.job);
	test_loop_until_idle(loop, r);
	test_assert(miss.done && miss.found == 0 && miss.n == 0);

	store_reader_free(&r);
	store_close(&s);
	ev_loop_free(&loop);
}

static const struct test_case tests[] = {
	{ "reader_jobs", test_reader_jobs },
	{ "reader_snapshot", test_reader_snapshot },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
