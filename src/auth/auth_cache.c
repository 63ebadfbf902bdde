/* Verified-credential cache: after a full (argon2id / crypt) verification
   succeeds, remember a keyed BLAKE2b of (user, stored hash, password) so
   the next login with the same password costs one BLAKE2b instead of a
   19 MiB argon2id. The key is random per process and never leaves memory,
   so the cache contents are useless to anyone who dumps them without it.
   Bounded: at most max entries (random eviction), each valid ttl seconds.
   A wrong password does not evict the entry (an attacker must not be able
   to flush a user's entry), a changed stored hash does. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "lib/xalloc.h"

#define AUTH_CACHE_MAC_LEN 32

struct auth_cache_entry {
	struct auth_table_node node;	/* key = user */
	char *user;
	unsigned int idx;		/* position in cache->entries */
	time_t added;
	uint8_t hash_mac[AUTH_CACHE_MAC_LEN];
	uint8_t pw_mac[AUTH_CACHE_MAC_LEN];
};

struct auth_cache {
	struct auth_table table;
	struct auth_cache_entry **entries;
	unsigned int count, max;
	unsigned int ttl_secs;
};

struct auth_cache *
auth_cache_new(unsigned int max_entries, unsigned int ttl_secs)
{
	struct auth_cache *c = xcalloc(1, sizeof(*c));

	auth_init_or_panic();
	if (max_entries == 0)
		max_entries = 1;
	c->max = max_entries;
	c->ttl_secs = ttl_secs;
	c->entries = xcalloc(max_entries, sizeof(*c->entries));
	auth_table_init(&c->table, max_entries);
	return c;
}

static void
auth_cache_entry_remove(struct auth_cache *c, struct auth_cache_entry *e)
{
	auth_table_remove(&c->table, &e->node);
	c->count--;
	c->entries[e->idx] = c->entries[c->count];
	c->entries[e->idx]->idx = e->idx;
	c->entries[c->count] = NULL;
	sodium_memzero(e->pw_mac, sizeof(e->pw_mac));
	free(e->user);
	free(e);
}

void
auth_cache_free(struct auth_cache **cp)
{
	struct auth_cache *c = *cp;

	if (c == NULL)
		return;
	while (c->count > 0)
		auth_cache_entry_remove(c, c->entries[c->count - 1]);
	auth_table_deinit(&c->table);
	free(c->entries);
	free(c);
	*cp = NULL;
}

/* BLAKE2b keyed with the process key over a tag and NUL-separated
   fields. */
static void
auth_cache_mac(uint8_t out[AUTH_CACHE_MAC_LEN], const char *tag,
	       const char *user, const char *hash, const char *pw,
	       size_t pw_len)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, auth_process_key(), 32,
				AUTH_CACHE_MAC_LEN);
	crypto_generichash_update(&st, (const uint8_t *)tag, strlen(tag) + 1);
	crypto_generichash_update(&st, (const uint8_t *)user,
				  strlen(user) + 1);
	crypto_generichash_update(&st, (const uint8_t *)hash,
				  strlen(hash) + 1);
	if (pw != NULL)
		crypto_generichash_update(&st, (const uint8_t *)pw, pw_len);
	crypto_generichash_final(&st, out, AUTH_CACHE_MAC_LEN);
}

static struct auth_cache_entry *
auth_cache_find(struct auth_cache *c, const char *user)
{
	struct auth_table_node *n = auth_table_lookup(&c->table, user);

	/* node is the first member of the entry */
	return (struct auth_cache_entry *)n;
}

int
auth_cache_check(struct auth_cache *c, const char *user,
		 const char *stored_hash, const char *password,
		 size_t password_len, time_t now)
{
	struct auth_cache_entry *e = auth_cache_find(c, user);
	uint8_t mac[AUTH_CACHE_MAC_LEN];
	int ret;

	if (e == NULL || password_len > AUTH_PASSWORD_MAX_BYTES)
		return 0;
	if (now < e->added || now - e->added >= (time_t)c->ttl_secs) {
		auth_cache_entry_remove(c, e);
		return 0;
	}
	auth_cache_mac(mac, "hash", user, stored_hash, NULL, 0);
	if (sodium_memcmp(mac, e->hash_mac, sizeof(mac)) != 0) {
		auth_cache_entry_remove(c, e);
		return 0;
	}
	auth_cache_mac(mac, "pw", user, stored_hash, password, password_len);
	ret = sodium_memcmp(mac, e->pw_mac, sizeof(mac)) == 0 ? 1 : 0;
	sodium_memzero(mac, sizeof(mac));
	return ret;
}

void
auth_cache_add(struct auth_cache *c, const char *user,
	       const char *stored_hash, const char *password,
	       size_t password_len, time_t now)
{
	struct auth_cache_entry *e = auth_cache_find(c, user);

	if (password_len > AUTH_PASSWORD_MAX_BYTES ||
	    strlen(user) > AUTH_USERNAME_MAX_BYTES)
		return;
	if (e != NULL)
		auth_cache_entry_remove(c, e);
	if (c->count == c->max)
		auth_cache_entry_remove(
			c, c->entries[randombytes_uniform(c->count)]);
	e = xcalloc(1, sizeof(*e));
	e->user = xstrdup(user);
	e->node.key = e->user;
	e->added = now;
	auth_cache_mac(e->hash_mac, "hash", user, stored_hash, NULL, 0);
	auth_cache_mac(e->pw_mac, "pw", user, stored_hash, password,
		       password_len);
	e->idx = c->count;
	c->entries[c->count++] = e;
	auth_table_insert(&c->table, &e->node);
}

void
auth_cache_remove(struct auth_cache *c, const char *user)
{
	struct auth_cache_entry *e = auth_cache_find(c, user);

	if (e != NULL)
		auth_cache_entry_remove(c, e);
}

unsigned int
auth_cache_count(const struct auth_cache *c)
{
	return c->count;
}
