/* Throttling of failed logins, server-wide (in the spirit of Dovecot's
   auth-penalty, but counted per client IP and per username): progressive
   delays, then a temporary refusal. The counters live in the shared
   limits table (src/lib/shared_limits.c) that the master maps before it
   forks, so failures spread over several workers add up; without one
   (unit tests, a single process) a private table of max_entries is
   made. Times come from the caller.
   Security note: counting per username means an attacker can delay and
   temporarily block one account from every IP (as any lockout policy
   does); the block lasts at most AUTH_THROTTLE_WINDOW_SECS after the last
   failure. */
#include <stdio.h>
#include <stdlib.h>

#include "auth/auth_int.h"
#include "lib/log.h"
#include "lib/shared_limits.h"
#include "lib/xalloc.h"

/* Keys are "i:<ip>" and "u:<user>"; longer input is truncated (a
   truncated key can only merge two attackers' counts). */
#define AUTH_THROTTLE_KEY_MAX_BYTES (AUTH_USERNAME_MAX_BYTES + 3)

struct auth_throttle {
	struct shared_limits *sl;
	bool own; /* sl is private to this object */
};

struct auth_throttle *
auth_throttle_new(unsigned int max_entries)
{
	struct auth_throttle *t = xcalloc(1, sizeof(*t));
	struct shared_limits *cur = shared_limits_current_if_any();
	const char *error;

	auth_init_or_panic();
	if (cur != NULL && shared_limits_fail_capacity(cur) > 0) {
		t->sl = cur;
		return t;
	}
	t->sl = shared_limits_new(1, 1, max_entries < 2 ? 2 : max_entries,
				  &error);
	if (t->sl == NULL)
		fatal("login throttle table: %s", error);
	t->own = true;
	return t;
}

void
auth_throttle_free(struct auth_throttle **tp)
{
	struct auth_throttle *t = *tp;

	if (t == NULL)
		return;
	if (t->own)
		shared_limits_free(&t->sl);
	free(t);
	*tp = NULL;
}

static void
auth_throttle_key(char *out, size_t outlen, char kind, const char *s)
{
	/* Truncation is harmless here, see AUTH_THROTTLE_KEY_MAX_BYTES. */
	(void)snprintf(out, outlen, "%c:%s", kind, s);
}

static void
auth_throttle_add_failure(struct auth_throttle *t, char kind, const char *s,
			  time_t now)
{
	char key[AUTH_THROTTLE_KEY_MAX_BYTES + 1];

	if (s == NULL)
		return;
	auth_throttle_key(key, sizeof(key), kind, s);
	shared_limits_fail_add(t->sl, key, now, AUTH_THROTTLE_WINDOW_SECS);
}

static unsigned int
auth_throttle_count(struct auth_throttle *t, char kind, const char *s,
		    time_t now)
{
	char key[AUTH_THROTTLE_KEY_MAX_BYTES + 1];

	if (s == NULL)
		return 0;
	auth_throttle_key(key, sizeof(key), kind, s);
	return shared_limits_fail_count(t->sl, key, now,
					AUTH_THROTTLE_WINDOW_SECS);
}

void
auth_throttle_failure(struct auth_throttle *t, const char *ip,
		      const char *user, time_t now)
{
	auth_throttle_add_failure(t, 'i', ip, now);
	auth_throttle_add_failure(t, 'u', user, now);
}

void
auth_throttle_success(struct auth_throttle *t, const char *ip,
		      const char *user, time_t now)
{
	char key[AUTH_THROTTLE_KEY_MAX_BYTES + 1];

	(void)ip;
	(void)now;
	if (user == NULL)
		return;
	auth_throttle_key(key, sizeof(key), 'u', user);
	shared_limits_fail_clear(t->sl, key);
}

/* The larger of the IP's and the user's failure counts. */
static unsigned int
auth_throttle_failures(struct auth_throttle *t, const char *ip,
		       const char *user, time_t now)
{
	unsigned int n = auth_throttle_count(t, 'i', ip, now);
	unsigned int u = auth_throttle_count(t, 'u', user, now);

	return u > n ? u : n;
}

unsigned int
auth_throttle_delay_ms(struct auth_throttle *t, const char *ip,
		       const char *user, time_t now)
{
	unsigned int n = auth_throttle_failures(t, ip, user, now);
	unsigned int delay = AUTH_THROTTLE_DELAY_BASE_MS;

	if (n <= AUTH_THROTTLE_FREE_FAILURES)
		return 0;
	/* double once per failure beyond the first delayed one; stop at the
	   cap so the value never overflows */
	for (n -= AUTH_THROTTLE_FREE_FAILURES + 1;
	     n > 0 && delay < AUTH_THROTTLE_DELAY_MAX_MS; n--)
		delay *= 2;
	return delay > AUTH_THROTTLE_DELAY_MAX_MS ?
		AUTH_THROTTLE_DELAY_MAX_MS : delay;
}

bool
auth_throttle_blocked(struct auth_throttle *t, const char *ip,
		      const char *user, time_t now)
{
	return auth_throttle_failures(t, ip, user, now) >=
		AUTH_THROTTLE_BLOCK_FAILURES;
}
