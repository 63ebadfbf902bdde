/* Throttling of failed logins, per worker process and in memory (in the
   spirit of Dovecot's auth-penalty, but counted per client IP and per
   username): progressive delays, then a temporary refusal. The table is
   bounded; entries live in a list ordered by last failure, so expiry and
   eviction of the oldest entry are O(1). Times come from the caller.
   Security note: counting per username means an attacker can delay and
   temporarily block one account from every IP (as any lockout policy
   does); the block lasts at most AUTH_THROTTLE_WINDOW_SECS after the last
   failure. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "lib/xalloc.h"

/* Keys are "i:<ip>" and "u:<user>"; longer input is truncated (a
   truncated key can only merge two attackers' counts). */
#define AUTH_THROTTLE_KEY_MAX_BYTES (AUTH_USERNAME_MAX_BYTES + 3)

struct auth_throttle_entry {
	struct auth_table_node node;	/* key = key */
	struct auth_throttle_entry *prev, *next;
	char *key;
	unsigned int failures;
	time_t last;
};

struct auth_throttle {
	struct auth_table table;
	struct auth_throttle_entry *oldest, *newest;
	unsigned int count, max;
};

struct auth_throttle *
auth_throttle_new(unsigned int max_entries)
{
	struct auth_throttle *t = xcalloc(1, sizeof(*t));

	auth_init_or_panic();
	t->max = max_entries < 2 ? 2 : max_entries;
	auth_table_init(&t->table, t->max);
	return t;
}

static void
auth_throttle_unlink(struct auth_throttle *t, struct auth_throttle_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		t->oldest = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		t->newest = e->prev;
	e->prev = e->next = NULL;
}

static void
auth_throttle_append(struct auth_throttle *t, struct auth_throttle_entry *e)
{
	e->prev = t->newest;
	e->next = NULL;
	if (t->newest != NULL)
		t->newest->next = e;
	else
		t->oldest = e;
	t->newest = e;
}

static void
auth_throttle_remove(struct auth_throttle *t, struct auth_throttle_entry *e)
{
	auth_throttle_unlink(t, e);
	auth_table_remove(&t->table, &e->node);
	t->count--;
	free(e->key);
	free(e);
}

void
auth_throttle_free(struct auth_throttle **tp)
{
	struct auth_throttle *t = *tp;

	if (t == NULL)
		return;
	while (t->oldest != NULL)
		auth_throttle_remove(t, t->oldest);
	auth_table_deinit(&t->table);
	free(t);
	*tp = NULL;
}

static bool
auth_throttle_expired(const struct auth_throttle_entry *e, time_t now)
{
	return now > e->last && now - e->last >= AUTH_THROTTLE_WINDOW_SECS;
}

/* Drop expired entries from the old end of the list. */
static void
auth_throttle_gc(struct auth_throttle *t, time_t now)
{
	while (t->oldest != NULL && auth_throttle_expired(t->oldest, now))
		auth_throttle_remove(t, t->oldest);
}

static void
auth_throttle_key(char *out, size_t outlen, char kind, const char *s)
{
	/* Truncation is harmless here, see AUTH_THROTTLE_KEY_MAX_BYTES. */
	(void)snprintf(out, outlen, "%c:%s", kind, s);
}

static struct auth_throttle_entry *
auth_throttle_find(struct auth_throttle *t, char kind, const char *s)
{
	char key[AUTH_THROTTLE_KEY_MAX_BYTES + 1];

	if (s == NULL)
		return NULL;
	auth_throttle_key(key, sizeof(key), kind, s);
	return (struct auth_throttle_entry *)auth_table_lookup(&t->table, key);
}

static void
auth_throttle_add_failure(struct auth_throttle *t, char kind, const char *s,
			  time_t now)
{
	struct auth_throttle_entry *e = auth_throttle_find(t, kind, s);
	char key[AUTH_THROTTLE_KEY_MAX_BYTES + 1];

	if (s == NULL)
		return;
	if (e == NULL) {
		if (t->count == t->max)
			auth_throttle_remove(t, t->oldest);
		auth_throttle_key(key, sizeof(key), kind, s);
		e = xcalloc(1, sizeof(*e));
		e->key = xstrdup(key);
		e->node.key = e->key;
		auth_table_insert(&t->table, &e->node);
		t->count++;
	} else {
		auth_throttle_unlink(t, e);
	}
	if (e->failures < UINT_MAX)
		e->failures++;
	if (now > e->last)
		e->last = now;
	auth_throttle_append(t, e);
}

void
auth_throttle_failure(struct auth_throttle *t, const char *ip,
		      const char *user, time_t now)
{
	auth_throttle_gc(t, now);
	auth_throttle_add_failure(t, 'i', ip, now);
	auth_throttle_add_failure(t, 'u', user, now);
}

void
auth_throttle_success(struct auth_throttle *t, const char *ip,
		      const char *user, time_t now)
{
	struct auth_throttle_entry *e = auth_throttle_find(t, 'u', user);

	if (e != NULL)
		auth_throttle_remove(t, e);
	auth_throttle_gc(t, now);
}

/* The larger of the IP's and the user's failure counts. */
static unsigned int
auth_throttle_failures(struct auth_throttle *t, const char *ip,
		       const char *user, time_t now)
{
	struct auth_throttle_entry *e;
	unsigned int n = 0;

	auth_throttle_gc(t, now);
	e = auth_throttle_find(t, 'i', ip);
	if (e != NULL)
		n = e->failures;
	e = auth_throttle_find(t, 'u', user);
	if (e != NULL && e->failures > n)
		n = e->failures;
	return n;
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
