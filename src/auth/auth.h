#ifndef TERN_AUTH_H
#define TERN_AUTH_H
/* auth: password hashes, a verified-credential cache, SCRAM secrets, the
   SASL server state machine shared by SMTP AUTH, IMAP AUTHENTICATE/LOGIN
   and POP3 AUTH/USER+PASS, and per-process throttling of failed logins.

   The module never touches the store: protocols hand it a lookup callback
   (auth_lookup_fn) that fills a struct auth_user. Everything here is
   single-threaded per worker (no locks), like the rest of protocol code.

   Nothing in this module logs passwords or SASL payloads. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- limits ---------------------------------------------------------- */

/* Longest username / authzid accepted (bytes). */
#define AUTH_USERNAME_MAX_BYTES 255
/* Longest password accepted (bytes). */
#define AUTH_PASSWORD_MAX_BYTES 1024
/* Longest single SCRAM client message (bytes, after base64 decoding). */
#define AUTH_SCRAM_MSG_MAX_BYTES 2048
/* Longest PLAIN response: authzid NUL authcid NUL passwd. */
#define AUTH_PLAIN_MAX_BYTES \
	(AUTH_USERNAME_MAX_BYTES * 2 + 2 + AUTH_PASSWORD_MAX_BYTES)

/* ---- argon2id cost (decided) -----------------------------------------
   OWASP's minimum recommendation for argon2id: m=19 MiB, t=2, p=1.
   libsodium always uses p=1. A worker runs one hash at a time, so memory
   per worker is bounded by one 19 MiB block; on 2 cores this gives tens of
   hashes per second per core, and the credential cache (below) makes
   repeated logins of the same account (mail clients reconnect constantly)
   cost a BLAKE2b instead of an argon2id. Measured times: see the auth
   section of docs/ or the auth engineer's report. */
#define AUTH_ARGON2_OPSLIMIT 2ULL
#define AUTH_ARGON2_MEMLIMIT_BYTES (19ULL * 1024 * 1024)

/* Default iteration count for new SCRAM-SHA-256 secrets (RFC 7677 says at
   least 4096). */
#define AUTH_SCRAM_ITERATIONS_DEFAULT 4096U
/* A stored secret with more iterations than this is rejected as invalid
   (protects a worker from a hostile or broken database row). */
#define AUTH_SCRAM_ITERATIONS_MAX 10000000U

/* ---- passwords -------------------------------------------------------- */

/* Call once per process before forking workers (or let the first auth call
   do it). Initialises libsodium. 0, or -1 when libsodium cannot start. */
int auth_init(void);

/* Hash a password for storage: an argon2id string ("$argon2id$v=19$...")
   with AUTH_ARGON2_* costs. Returns an xmalloc'd string the caller frees,
   or NULL if password is too long (> AUTH_PASSWORD_MAX_BYTES) or libsodium
   fails (out of memory for the 19 MiB block). */
char *auth_password_hash(const char *password);

/* Verify password (explicit length; may contain any bytes) against a
   stored hash. Accepted formats:
     $argon2id$..., $argon2i$...        libsodium
     $6$ $5$ $y$ $2b$ $2y$ $2a$ $1$     crypt(3) via libxcrypt crypt_rn
     {ARGON2ID} {ARGON2I} {SHA512-CRYPT} {SHA256-CRYPT} {BLF-CRYPT}
     {MD5-CRYPT} {CRYPT} prefixes (Dovecot style) followed by one of the
     above.
   Returns 1 match, 0 mismatch, -1 unsupported or malformed hash. A password
   containing a NUL byte, or longer than AUTH_PASSWORD_MAX_BYTES, never
   matches (0). The final comparison is constant-time. */
int auth_password_verify(const char *stored_hash, const char *password,
			 size_t password_len);

/* True when hash should be replaced by auth_password_hash() after the next
   successful login: anything that is not argon2id, or argon2id with costs
   below AUTH_ARGON2_*. */
bool auth_password_needs_rehash(const char *hash);

/* ---- verified-credential cache ---------------------------------------
   Remembers "this password was verified against this stored hash for this
   user" as a keyed BLAKE2b of the password (key random per process, never
   written anywhere), so a repeated login costs one BLAKE2b. Bounded by
   max_entries (random eviction when full) and ttl_secs. A different stored
   hash (password changed) is a miss and replaces the entry. Only ever add
   after a successful full verification. */
#define AUTH_CACHE_MAX_ENTRIES_DEFAULT 10000U
#define AUTH_CACHE_TTL_SECS_DEFAULT (15 * 60)

struct auth_cache;

/* max_entries >= 1. Never NULL. */
struct auth_cache *auth_cache_new(unsigned int max_entries,
				  unsigned int ttl_secs);
/* 1 hit: this exact password was verified for (user, stored_hash) within
   ttl; 0 miss (unknown, expired, other hash, other password). */
int auth_cache_check(struct auth_cache *cache, const char *user,
		     const char *stored_hash, const char *password,
		     size_t password_len, time_t now);
/* Record a verified credential (replaces the user's previous entry). */
void auth_cache_add(struct auth_cache *cache, const char *user,
		    const char *stored_hash, const char *password,
		    size_t password_len, time_t now);
/* Forget one user (e.g. after a password change by ternctl). */
void auth_cache_remove(struct auth_cache *cache, const char *user);
/* Number of live entries (for tests and status). */
unsigned int auth_cache_count(const struct auth_cache *cache);
/* Frees and sets *cache to NULL; NULL is fine. */
void auth_cache_free(struct auth_cache **cache);

/* ---- SCRAM-SHA-256 secrets (RFC 5802, RFC 7677, RFC 5803 format) ----- */

/* "SCRAM-SHA-256$<iter>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>" for
   password, with a random 16-byte salt. iterations < 4096 is raised to
   4096. xmalloc'd; NULL when the password is rejected by our SASLprep
   subset (control characters, > AUTH_PASSWORD_MAX_BYTES) or OpenSSL
   fails. */
char *auth_scram_secrets_make(const char *password, uint32_t iterations);

/* ---- SASL server (RFC 4422) ------------------------------------------ */

enum auth_sasl_result {
	AUTH_SASL_CONTINUE,	/* send *challenge_r, wait for a response */
	AUTH_SASL_OK,		/* authenticated: auth_sasl_user() */
	AUTH_SASL_FAIL,		/* wrong credentials / unknown user */
	AUTH_SASL_TEMPFAIL,	/* lookup error: try again later */
	AUTH_SASL_BAD_PROTOCOL,	/* malformed client message */
};

/* Filled by the lookup; every string is xmalloc'd and owned by auth (it
   calls auth_user_clear()). password_hash and scram_secrets may be NULL
   (the account then cannot use the mechanisms needing them). */
struct auth_user {
	char *name;
	char *password_hash;
	char *scram_secrets;
};

/* 1 found (fill *user_r), 0 not found, -1 temporary error. username is
   NUL-terminated and at most AUTH_USERNAME_MAX_BYTES long; it is passed
   exactly as the client sent it. */
typedef int auth_lookup_fn(void *ctx, const char *username,
			   struct auth_user *user_r);

/* Free the strings of *user and zero it. */
void auth_user_clear(struct auth_user *user);

struct auth_sasl;

/* mechanism: "PLAIN", "LOGIN" or "SCRAM-SHA-256" (ASCII case-insensitive).
   Returns NULL for any other mechanism. lookup/ctx must outlive the
   object; cache may be NULL. Never NULL for a known mechanism. */
struct auth_sasl *auth_sasl_new(const char *mechanism, auth_lookup_fn *lookup,
				void *ctx, struct auth_cache *cache);

/* Feed one client response: the already base64-DECODED bytes (the
   protocol handles base64, the "*" cancel, and SASL-IR where "=" means an
   empty initial response; a mechanism started without an initial response
   is fed resp_len == 0 for the first step).

   AUTH_SASL_CONTINUE: *challenge_r / *challenge_len_r is the raw server
   challenge (base64-encode it to send), valid until the next call or
   auth_sasl_free(). AUTH_SASL_OK: for SCRAM-SHA-256 *challenge_r holds the
   server-final message "v=..." (*challenge_len_r > 0) that the protocol
   sends as additional data; for PLAIN/LOGIN *challenge_len_r is 0. Any
   other result ends the exchange (*challenge_len_r is 0); further calls
   return AUTH_SASL_BAD_PROTOCOL. Exception: a protocol that sent the SCRAM
   "v=..." as a challenge (RFC 4422 5 allows either way) feeds the
   client's empty response and gets AUTH_SASL_OK again with no data.

   Failures for unknown users take about as long as for known users (a
   dummy hash is verified). The caller applies throttling delays. */
enum auth_sasl_result auth_sasl_step(struct auth_sasl *sasl,
				     const uint8_t *resp, size_t resp_len,
				     const uint8_t **challenge_r,
				     size_t *challenge_len_r);

/* The authenticated identity after AUTH_SASL_OK (the account name as
   returned by the lookup's user_r->name), else NULL. Valid until
   auth_sasl_free(). The authcid as sent by the client (for logging failed
   attempts and throttling) is auth_sasl_attempted_user(): NULL until the
   mechanism has seen a username. */
const char *auth_sasl_user(const struct auth_sasl *sasl);
const char *auth_sasl_attempted_user(const struct auth_sasl *sasl);

/* Frees and sets *sasl to NULL (wipes secrets); NULL is fine. */
void auth_sasl_free(struct auth_sasl **sasl);

/* For tests only: use nonce (printable ASCII except ',', 1..64 bytes) as
   the server part of the SCRAM nonce instead of random bytes. Call before
   the first auth_sasl_step(). 0, or -1 when invalid or not SCRAM. */
int auth_sasl_set_server_nonce(struct auth_sasl *sasl, const char *nonce);

/* Direct check for IMAP LOGIN and POP3 USER/PASS: AUTH_SASL_OK,
   AUTH_SASL_FAIL, AUTH_SASL_TEMPFAIL or AUTH_SASL_BAD_PROTOCOL (username
   empty or too long). Same timing rule as auth_sasl_step(). */
enum auth_sasl_result auth_login_check(const char *username,
				       const char *password,
				       size_t password_len,
				       auth_lookup_fn *lookup, void *ctx,
				       struct auth_cache *cache);

/* ---- throttling of failed logins ------------------------------------
   Server-wide: the counters live in the shared limits table mapped by
   the master (lib/shared_limits.h), so all workers add to the same
   counts. Failures are counted per client IP and per
   username (both keys). The delay before answering the next attempt is
   taken from the larger of the two counts n: 0 for n <= 2, then
   500 ms * 2^(n-3), capped at AUTH_THROTTLE_DELAY_MAX_MS. After
   AUTH_THROTTLE_BLOCK_FAILURES failures, each less than
   AUTH_THROTTLE_WINDOW_SECS after the previous one,
   auth_throttle_blocked() is true (answer with a temporary failure without
   checking the password). Entries expire AUTH_THROTTLE_WINDOW_SECS after
   their last failure; the table has a fixed number of entries and a new
   key evicts the least recently failed of the entries it may use. A success resets the username's
   counter (not the IP's: one IP guessing many accounts stays slowed). */
#define AUTH_THROTTLE_FREE_FAILURES 2U
#define AUTH_THROTTLE_DELAY_BASE_MS 500U
#define AUTH_THROTTLE_DELAY_MAX_MS 15000U
#define AUTH_THROTTLE_BLOCK_FAILURES 20U
#define AUTH_THROTTLE_WINDOW_SECS (15 * 60)
#define AUTH_THROTTLE_MAX_ENTRIES_DEFAULT 65536U

struct auth_throttle;

/* Uses the process's shared limits table when it has login-failure
   entries, else a private table of max_entries (>= 2). Never NULL. */
struct auth_throttle *auth_throttle_new(unsigned int max_entries);
void auth_throttle_free(struct auth_throttle **t);
/* ip and user are NUL-terminated; either may be NULL (not known yet). */
void auth_throttle_failure(struct auth_throttle *t, const char *ip,
			   const char *user, time_t now);
void auth_throttle_success(struct auth_throttle *t, const char *ip,
			   const char *user, time_t now);
unsigned int auth_throttle_delay_ms(struct auth_throttle *t, const char *ip,
				    const char *user, time_t now);
bool auth_throttle_blocked(struct auth_throttle *t, const char *ip,
			   const char *user, time_t now);

#endif
