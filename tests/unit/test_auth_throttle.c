/* Tests for auth/auth_throttle: the delay schedule and the refusal after
   AUTH_THROTTLE_BLOCK_FAILURES, expiry, a success resetting the user's
   count only, and failures recorded by several processes (workers) on
   one shared table adding up. */
#include <sys/wait.h>
#include <unistd.h>

#include "auth/auth.h"
#include "harness.h"
#include "lib/shared_limits.h"

static void
test_auth_throttle_schedule(void)
{
	struct auth_throttle *t = auth_throttle_new(64);
	const time_t now = 100000;

	test_assert(auth_throttle_delay_ms(t, "192.0.2.1", "a", now) == 0);
	for (unsigned i = 0; i < AUTH_THROTTLE_FREE_FAILURES; i++)
		auth_throttle_failure(t, "192.0.2.1", "a", now);
	test_assert(auth_throttle_delay_ms(t, "192.0.2.1", "a", now) == 0);
	auth_throttle_failure(t, "192.0.2.1", "a", now);
	test_assert(auth_throttle_delay_ms(t, "192.0.2.1", "a", now) == 500);
	auth_throttle_failure(t, "192.0.2.1", "a", now);
	test_assert(auth_throttle_delay_ms(t, "192.0.2.1", "a", now) == 1000);
	/* the user's count applies from another IP, the IP's to another user */
	test_assert(auth_throttle_delay_ms(t, "192.0.2.9", "a", now) == 1000);
	test_assert(auth_throttle_delay_ms(t, "192.0.2.1", "b", now) == 1000);
	while (!auth_throttle_blocked(t, "192.0.2.1", NULL, now))
		auth_throttle_failure(t, "192.0.2.1", "a", now);
	test_assert(auth_throttle_delay_ms(t, "192.0.2.1", "a", now) ==
		    AUTH_THROTTLE_DELAY_MAX_MS);
	/* success: the user is free again, the IP stays blocked */
	auth_throttle_success(t, "192.0.2.1", "a", now);
	test_assert(!auth_throttle_blocked(t, "192.0.2.9", "a", now));
	test_assert(auth_throttle_blocked(t, "192.0.2.1", NULL, now));
	/* expiry */
	test_assert(!auth_throttle_blocked(t, "192.0.2.1", NULL,
					   now + AUTH_THROTTLE_WINDOW_SECS));
	auth_throttle_free(&t);
	test_assert(t == NULL);
}

/* Two "workers" each fail half the block count for one IP, each with
   its own auth_throttle on the inherited table: together they block. */
static void
test_auth_throttle_shared(void)
{
	const char *error;
	struct shared_limits *sl = shared_limits_new(2, 16, 1024, &error);
	const time_t now = 100000;
	struct auth_throttle *t;
	pid_t pids[2];
	bool ok = true;

	test_assert(sl != NULL);
	shared_limits_set_current(sl);
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct auth_throttle *w = auth_throttle_new(64);
			for (unsigned k = 0; k < AUTH_THROTTLE_BLOCK_FAILURES / 2; k++)
				auth_throttle_failure(w, "198.51.100.3",
						      i == 0 ? "x" : "y", now);
			_exit(auth_throttle_blocked(w, "198.51.100.3", NULL,
						    now) ? 1 : 0);
		}
	}
	for (int i = 0; i < 2; i++) {
		int status;
		ok = ok && waitpid(pids[i], &status, 0) == pids[i] &&
			WIFEXITED(status);
	}
	test_assert(ok);
	t = auth_throttle_new(64);
	test_assert(auth_throttle_blocked(t, "198.51.100.3", NULL, now));
	test_assert(!auth_throttle_blocked(t, "198.51.100.4", "x", now));
	auth_throttle_free(&t);
	shared_limits_free(&sl);
	/* without a shared table each throttle is private */
	t = auth_throttle_new(64);
	test_assert(!auth_throttle_blocked(t, "198.51.100.3", NULL, now));
	auth_throttle_free(&t);
}

static const struct test_case tests[] = {
	{ "auth_throttle_schedule", test_auth_throttle_schedule },
	{ "auth_throttle_shared", test_auth_throttle_shared },
	{ NULL, NULL }
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
