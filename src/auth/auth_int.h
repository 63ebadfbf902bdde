#ifndef TERN_AUTH_INT_H
#define TERN_AUTH_INT_H
/* Private to src/auth/ (and its unit tests): a small string-keyed hash
   table, the per-process secret key, SCRAM secret parsing and the password
   checks shared by the SASL mechanisms. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"

#define AUTH_SHA256_LEN 32
#define AUTH_SCRAM_SALT_MAX_BYTES 64
/* Longest stored hash string we are willing to look at. */
#define AUTH_HASH_MAX_BYTES 512

/* ---- hash table (auth_table.c) -------------------------------------
   Chained, keyed with SipHash (random key per process) so clients cannot
   choose colliding keys. Nodes are embedded in the caller's entries and
   owned by the caller; key must stay valid while the node is linked. */
struct auth_table_node {
	struct auth_table_node *next;
	const char *key;
	uint64_t hash;
};

struct auth_table {
	struct auth_table_node **buckets;
	size_t mask;
};

/* Buckets: the next power of two >= min_buckets. */
void auth_table_init(struct auth_table *t, size_t min_buckets);
void auth_table_deinit(struct auth_table *t);
struct auth_table_node *auth_table_lookup(const struct auth_table *t,
					  const char *key);
/* node->key must be set; a node with the same key must not be linked. */
void auth_table_insert(struct auth_table *t, struct auth_table_node *node);
void auth_table_remove(struct auth_table *t, struct auth_table_node *node);

/* ---- process secrets (auth_password.c) ---------------------------- */

/* Calls auth_init() and panics if libsodium cannot start. */
void auth_init_or_panic(void);
/* 32 random bytes chosen once per process (keys the cache MACs, the
   table hash and fake SCRAM salts). */
const uint8_t *auth_process_key(void);

/* ---- passwords (auth_password.c) ---------------------------------- */

/* Verify against a fixed argon2id hash of a random string (same costs as
   real hashes), so an unknown user costs as much as a known one. */
void auth_password_dummy_verify(const char *password, size_t password_len);

/* Shared by PLAIN, LOGIN and auth_login_check: look up username, verify
   (cache first). On AUTH_SASL_OK *name_r is the account's name
   (xmalloc'd, caller frees). */
enum auth_sasl_result auth_check_plaintext(const char *username,
					   const char *password,
					   size_t password_len,
					   auth_lookup_fn *lookup, void *ctx,
					   struct auth_cache *cache,
					   char **name_r);

/* ---- SCRAM (auth_scram.c) ----------------------------------------- */

struct auth_scram_secrets {
	uint32_t iterations;
	uint8_t salt[AUTH_SCRAM_SALT_MAX_BYTES];
	size_t salt_len;
	uint8_t stored_key[AUTH_SHA256_LEN];
	uint8_t server_key[AUTH_SHA256_LEN];
};

/* Parse RFC 5803 "SCRAM-SHA-256$i:salt$StoredKey:ServerKey" or Dovecot's
   "{SCRAM-SHA-256}i,salt,StoredKey,ServerKey". 0, or -1 when malformed. */
int auth_scram_secrets_parse(const char *str,
			     struct auth_scram_secrets *secrets_r);
/* auth_scram_secrets_make() with a given salt (tests use the RFC 7677
   salt). */
char *auth_scram_secrets_make_salt(const char *password, uint32_t iterations,
				   const uint8_t *salt, size_t salt_len);
/* Plausible secrets for an unknown user: the salt is derived from the
   username and the process key (stable within the process), the keys are
   random, so no proof can match. */
void auth_scram_secrets_fake(const char *username,
			     struct auth_scram_secrets *secrets_r);
/* Our SASLprep subset (RFC 4013): valid UTF-8 without control characters
   (C0, DEL, C1). true when acceptable. */
bool auth_saslprep_ok(const uint8_t *s, size_t len);
/* HMAC-SHA-256 and SHA-256 wrappers; 0 or -1 (OpenSSL failure). */
int auth_hmac_sha256(const uint8_t *key, size_t key_len, const void *data,
		     size_t data_len, uint8_t out[AUTH_SHA256_LEN]);
int auth_sha256(const void *data, size_t len, uint8_t out[AUTH_SHA256_LEN]);

#endif
