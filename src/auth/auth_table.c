/* A small chained hash table keyed by strings, for the credential cache
   and the login throttle. Keys come from clients (usernames, IPs), so the
   hash is SipHash-2-4 (libsodium crypto_shorthash) with a random
   per-process key: an attacker cannot precompute colliding keys to turn
   lookups into linear scans. The table never allocates per entry: nodes
   are embedded in the caller's structures. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "lib/xalloc.h"

static uint64_t
auth_table_hash(const char *key)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, (const unsigned char *)key, strlen(key),
			 auth_process_key());
	memcpy(&h, out, sizeof(h));
	return h;
}

void
auth_table_init(struct auth_table *t, size_t min_buckets)
{
	size_t n = 16;

	while (n < min_buckets && n < ((size_t)1 << 24))
		n <<= 1;
	t->buckets = xcalloc(n, sizeof(*t->buckets));
	t->mask = n - 1;
}

void
auth_table_deinit(struct auth_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->mask = 0;
}

struct auth_table_node *
auth_table_lookup(const struct auth_table *t, const char *key)
{
	uint64_t h = auth_table_hash(key);
	struct auth_table_node *n;

	for (n = t->buckets[h & t->mask]; n != NULL; n = n->next) {
		if (n->hash == h && strcmp(n->key, key) == 0)
			return n;
	}
	return NULL;
}

void
auth_table_insert(struct auth_table *t, struct auth_table_node *node)
{
	struct auth_table_node **head;

	node->hash = auth_table_hash(node->key);
	head = &t->buckets[node->hash & t->mask];
	node->next = *head;
	*head = node;
}

void
auth_table_remove(struct auth_table *t, struct auth_table_node *node)
{
	struct auth_table_node **pp = &t->buckets[node->hash & t->mask];

	while (*pp != NULL) {
		if (*pp == node) {
			*pp = node->next;
			node->next = NULL;
			return;
		}
		pp = &(*pp)->next;
	}
}
