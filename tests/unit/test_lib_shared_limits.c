/* Tests for lib/shared_limits: connection counts summed over worker
   slots, concurrent updates from forked processes (counts stay exact and
   a per-address limit is never overshot), hash collisions (counts only
   go up), a worker killed with SIGKILL while holding connections (its
   slot is cleared and the limit recovers), and login-failure counters
   (exact under concurrency, expiry, clear, eviction). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lib/shared_limits.h"

#define CHILDREN 4

static struct shared_limits *
new_table(unsigned slots, unsigned buckets, unsigned fail)
{
	const char *error = NULL;
	struct shared_limits *sl = shared_limits_new(slots, buckets, fail,
						     &error);

	test_assert(sl != NULL);
	if (sl == NULL)
		abort();
	return sl;
}

/* Wait for every child; true when all exited with status 0. */
static bool
wait_children(pid_t *pids, int n)
{
	bool ok = true;

	for (int i = 0; i < n; i++) {
		int status;
		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok = false;
	}
	return ok;
}

static void
test_shared_limits_slots_sum(void)
{
	struct shared_limits *sl = new_table(4, 64, 0);

	shared_limits_attach(sl, 0);
	shared_limits_conn_add(sl, "192.0.2.1");
	shared_limits_conn_add(sl, "192.0.2.1");
	shared_limits_attach(sl, 3);
	shared_limits_conn_add(sl, "192.0.2.1");
	shared_limits_conn_add(sl, "2001:db8::1");
	test_assert(shared_limits_conn_peer(sl, "192.0.2.1") >= 3);
	test_assert(shared_limits_conn_total(sl) == 4);
	test_assert(shared_limits_conn_slot_total(sl, 0) == 2);
	test_assert(shared_limits_conn_slot_total(sl, 3) == 2);
	shared_limits_conn_remove(sl, "2001:db8::1");
	test_assert(shared_limits_conn_total(sl) == 3);
	test_assert(shared_limits_conn_slot_total(sl, 3) == 1);
	shared_limits_free(&sl);
	test_assert(sl == NULL);
	/* a remove without an add never wraps below zero */
	sl = new_table(1, 64, 0);
	shared_limits_conn_remove(sl, "192.0.2.1");
	test_assert(shared_limits_conn_total(sl) == 0);
	test_assert(shared_limits_conn_peer(sl, "192.0.2.1") == 0);
	shared_limits_free(&sl);
}

/* Each child churns its own slot; at the end each holds exactly i+1
   connections from one shared address. */
static void
test_shared_limits_concurrent_counts(void)
{
	struct shared_limits *sl = new_table(CHILDREN, 16, 0);
	pid_t pids[CHILDREN];

	for (int i = 0; i < CHILDREN; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			shared_limits_attach(sl, (unsigned)i);
			for (int k = 0; k < 20000; k++) {
				shared_limits_conn_add(sl, "198.51.100.7");
				shared_limits_conn_remove(sl, "198.51.100.7");
			}
			for (int k = 0; k <= i; k++)
				shared_limits_conn_add(sl, "198.51.100.7");
			_exit(0);
		}
	}
	test_assert(wait_children(pids, CHILDREN));
	test_assert(shared_limits_conn_total(sl) == 1 + 2 + 3 + 4);
	test_assert(shared_limits_conn_peer(sl, "198.51.100.7") == 10);
	shared_limits_free(&sl);
}

/* Children race for 5 places of one address the way the workers do:
   add, check, give back when over. Never more than 5 are held. */
static void
test_shared_limits_concurrent_limit(void)
{
	struct shared_limits *sl = new_table(CHILDREN, 64, 0);
	const uint32_t limit = 5;
	pid_t pids[CHILDREN];

	for (int i = 0; i < CHILDREN; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			unsigned held = 0;
			shared_limits_attach(sl, (unsigned)i);
			for (int k = 0; k < 5000; k++) {
				shared_limits_conn_add(sl, "203.0.113.9");
				if (shared_limits_conn_peer(sl, "203.0.113.9") >
				    limit) {
					shared_limits_conn_remove(sl, "203.0.113.9");
					continue;
				}
				held++;
				if (k % 7 == 0) { /* a connection ends */
					shared_limits_conn_remove(sl, "203.0.113.9");
					held--;
				}
				if (shared_limits_conn_peer(sl, "203.0.113.9") >
				    limit + CHILDREN)
					_exit(2);
			}
			_exit(0);
		}
	}
	test_assert(wait_children(pids, CHILDREN));
	test_assert(shared_limits_conn_peer(sl, "203.0.113.9") <= limit);
	test_assert(shared_limits_conn_total(sl) <= limit);
	shared_limits_free(&sl);
}

/* With one bucket per row every address collides: counts go up for
   everybody (stricter), never down. With a few buckets, no address ever
   sees less than its own connections. */
static void
test_shared_limits_collisions(void)
{
	struct shared_limits *sl = new_table(1, 1, 0);
	char addr[32];

	shared_limits_conn_add(sl, "192.0.2.1");
	shared_limits_conn_add(sl, "192.0.2.1");
	test_assert(shared_limits_conn_peer(sl, "192.0.2.2") == 2);
	shared_limits_free(&sl);

	sl = new_table(1, 3, 0);
	for (int i = 0; i < 20; i++) {
		snprintf(addr, sizeof(addr), "10.0.0.%d", i);
		for (int k = 0; k <= i % 4; k++)
			shared_limits_conn_add(sl, addr);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(addr, sizeof(addr), "10.0.0.%d", i);
		test_assert_idx(shared_limits_conn_peer(sl, addr) >=
				(uint32_t)(i % 4 + 1), i);
	}
	shared_limits_free(&sl);
}

/* A worker dies by SIGKILL while holding connections: they count until
   the master clears its slot, then the other slots' counts remain. */
static void
test_shared_limits_dead_worker(void)
{
	struct shared_limits *sl = new_table(4, 64, 0);
	int status;
	pid_t pid;

	shared_limits_attach(sl, 0);
	shared_limits_conn_add(sl, "192.0.2.50");
	pid = fork();
	if (pid == 0) {
		shared_limits_attach(sl, 2);
		for (int k = 0; k < 5; k++)
			shared_limits_conn_add(sl, "192.0.2.50");
		raise(SIGKILL);
		_exit(3);
	}
	test_assert(waitpid(pid, &status, 0) == pid);
	test_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	test_assert(shared_limits_conn_peer(sl, "192.0.2.50") == 6);
	test_assert(shared_limits_conn_slot_total(sl, 2) == 5);
	shared_limits_slot_clear(sl, 2);
	test_assert(shared_limits_conn_peer(sl, "192.0.2.50") == 1);
	test_assert(shared_limits_conn_total(sl) == 1);
	shared_limits_free(&sl);
}

/* A compromised worker can write the whole mapping, header included.
   The master (root) clears a dead worker's slot by its own copy of the
   geometry, not by the header: with slots, buckets and fail_entries
   overwritten with 0xff bytes, clearing and counting stay inside the
   mapping and exact (before: a write of 8 G cells, SIGSEGV at best). */
static void
test_shared_limits_header_overwritten(void)
{
	struct shared_limits *sl = new_table(4, 64, 16);
	int status;
	pid_t pid;

	shared_limits_attach(sl, 0);
	shared_limits_conn_add(sl, "192.0.2.60");
	pid = fork();
	if (pid == 0) {
		size_t size;
		unsigned char *map = shared_limits_mapping(sl, &size);
		shared_limits_attach(sl, 2);
		shared_limits_conn_add(sl, "192.0.2.60");
		shared_limits_conn_add(sl, "192.0.2.61");
		/* the header: magic, key[2], slots, buckets, fail_entries,
		   slots_used (40 bytes; the cells follow) */
		memset(map, 0xff, 40 < size ? 40 : size);
		_exit(0);
	}
	test_assert(waitpid(pid, &status, 0) == pid &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the master's part, in a child so a crash fails the test only */
	pid = fork();
	if (pid == 0) {
		bool ok = shared_limits_conn_total(sl) == 3 &&
			  shared_limits_slots(sl) == 4;
		shared_limits_slot_clear(sl, 2);
		shared_limits_slot_clear(sl, 0xffffffffu);
		ok = ok && shared_limits_conn_total(sl) == 1 &&
		     shared_limits_conn_peer(sl, "192.0.2.60") == 1 &&
		     shared_limits_conn_peer(sl, "192.0.2.61") == 0;
		shared_limits_fail_add(sl, "i:192.0.2.60", 1000, 900);
		ok = ok && shared_limits_fail_count(sl, "i:192.0.2.60", 1000,
						    900) == 1;
		_exit(ok ? 0 : 1);
	}
	test_assert(waitpid(pid, &status, 0) == pid);
	test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	shared_limits_free(&sl);
}

static void
test_shared_limits_fail_concurrent(void)
{
	struct shared_limits *sl = new_table(1, 1, 1024);
	pid_t pids[CHILDREN];

	for (int i = 0; i < CHILDREN; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char key[32];
			for (int k = 0; k < 2000; k++) {
				shared_limits_fail_add(sl, "i:192.0.2.1", 1000, 900);
				snprintf(key, sizeof(key), "u:user%d", k % 50);
				shared_limits_fail_add(sl, key, 1000, 900);
			}
			_exit(0);
		}
	}
	test_assert(wait_children(pids, CHILDREN));
	test_assert(shared_limits_fail_count(sl, "i:192.0.2.1", 1000, 900) ==
		    CHILDREN * 2000);
	/* 50 new keys claimed concurrently: each still has one entry */
	test_assert(shared_limits_fail_count(sl, "u:user7", 1000, 900) ==
		    CHILDREN * 2000 / 50);
	test_assert(shared_limits_fail_count(sl, "u:nobody", 1000, 900) == 0);
	shared_limits_free(&sl);
}

static void
test_shared_limits_fail_expiry_clear(void)
{
	struct shared_limits *sl = new_table(1, 1, 64);

	shared_limits_fail_add(sl, "u:a", 1000, 900);
	shared_limits_fail_add(sl, "u:a", 1500, 900);
	test_assert(shared_limits_fail_count(sl, "u:a", 1500, 900) == 2);
	/* 900 s after the last failure: forgotten */
	test_assert(shared_limits_fail_count(sl, "u:a", 2399, 900) == 2);
	test_assert(shared_limits_fail_count(sl, "u:a", 2400, 900) == 0);
	shared_limits_fail_add(sl, "u:a", 2400, 900);
	test_assert(shared_limits_fail_count(sl, "u:a", 2400, 900) == 1);
	/* a clock going back does not expire or corrupt */
	test_assert(shared_limits_fail_count(sl, "u:a", 10, 900) == 1);
	shared_limits_fail_add(sl, "u:b", 2400, 900);
	shared_limits_fail_clear(sl, "u:a");
	test_assert(shared_limits_fail_count(sl, "u:a", 2400, 900) == 0);
	test_assert(shared_limits_fail_count(sl, "u:b", 2400, 900) == 1);
	shared_limits_free(&sl);
}

/* A table of 4 entries: new keys evict the least recently failed; the
   newest keys keep their counts and the table never grows. */
static void
test_shared_limits_fail_eviction(void)
{
	struct shared_limits *sl = new_table(1, 1, 4);
	char key[32];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "i:10.0.0.%d", i);
		shared_limits_fail_add(sl, key, 1000 + i, 900);
		shared_limits_fail_add(sl, key, 1000 + i, 900);
	}
	for (int i = 96; i < 100; i++) {
		snprintf(key, sizeof(key), "i:10.0.0.%d", i);
		test_assert_idx(shared_limits_fail_count(sl, key, 1100, 900) ==
				2, i);
	}
	test_assert(shared_limits_fail_count(sl, "i:10.0.0.1", 1100, 900) == 0);
	shared_limits_free(&sl);
}

static void
test_shared_limits_current(void)
{
	struct shared_limits *sl = new_table(2, 8, 0);

	shared_limits_set_current(sl);
	test_assert(shared_limits_current() == sl);
	shared_limits_free(&sl);
	test_assert(shared_limits_current_if_any() == NULL);
	sl = shared_limits_current(); /* a private one is made */
	test_assert(sl != NULL && shared_limits_slots(sl) == 1);
	shared_limits_free(&sl);
}

static const struct test_case tests[] = {
	{ "shared_limits_slots_sum", test_shared_limits_slots_sum },
	{ "shared_limits_concurrent_counts", test_shared_limits_concurrent_counts },
	{ "shared_limits_concurrent_limit", test_shared_limits_concurrent_limit },
	{ "shared_limits_collisions", test_shared_limits_collisions },
	{ "shared_limits_dead_worker", test_shared_limits_dead_worker },
	{ "shared_limits_header_overwritten",
	  test_shared_limits_header_overwritten },
	{ "shared_limits_fail_concurrent", test_shared_limits_fail_concurrent },
	{ "shared_limits_fail_expiry_clear", test_shared_limits_fail_expiry_clear },
	{ "shared_limits_fail_eviction", test_shared_limits_fail_eviction },
	{ "shared_limits_current", test_shared_limits_current },
	{ NULL, NULL }
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
