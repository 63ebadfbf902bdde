/* SCRAM-SHA-256 stored secrets: RFC 5802 section 3 (SaltedPassword,
   ClientKey, StoredKey, ServerKey), RFC 7677 (SHA-256, 4096 iterations
   minimum), stored in the RFC 5803 format also used by PostgreSQL:
   "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>". Dovecot's
   "{SCRAM-SHA-256}<iter>,<salt>,<StoredKey>,<ServerKey>" is read too so
   accounts migrate. Also our SASLprep subset (RFC 4013) and the fake
   secrets used so an unknown user looks like a known one. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <string.h>

#include "auth/auth_int.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/strview.h"
#include "lib/xalloc.h"

#define AUTH_SCRAM_SALT_NEW_BYTES 16
#define AUTH_SCRAM_SECRETS_MAX_BYTES 512

int
auth_hmac_sha256(const uint8_t *key, size_t key_len, const void *data,
		 size_t data_len, uint8_t out[AUTH_SHA256_LEN])
{
	unsigned int len = 0;

	if (key_len > INT32_MAX)
		return -1;
	if (HMAC(EVP_sha256(), key, (int)key_len, data, data_len, out,
		 &len) == NULL || len != AUTH_SHA256_LEN)
		return -1;
	return 0;
}

int
auth_sha256(const void *data, size_t len, uint8_t out[AUTH_SHA256_LEN])
{
	return SHA256(data, len, out) == NULL ? -1 : 0;
}

/* XXX SASLprep (RFC 4013) is a stringprep profile: map non-ASCII spaces to
   SPACE, delete "commonly mapped to nothing" characters, NFKC-normalise,
   and prohibit a long table of code points. Those tables are large and
   need Unicode data we do not carry. We implement only the part that
   matters for safety: the input must be valid UTF-8 and free of control
   characters (C0, DEL, C1). ASCII passwords, by far the common case, are
   unchanged by SASLprep anyway; a client that normalises a non-ASCII
   password differently from how it was set will simply fail to log in. */
static size_t
auth_utf8_seq_len(const uint8_t *s, size_t len)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	cp = s[0] & (0xff >> (n + 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

bool
auth_saslprep_ok(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n;

		if (s[i] < 0x20 || s[i] == 0x7f)
			return false;
		n = auth_utf8_seq_len(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static int
auth_scram_keys(const char *password, size_t password_len, uint32_t iter,
		const uint8_t *salt, size_t salt_len,
		uint8_t stored_r[AUTH_SHA256_LEN],
		uint8_t server_r[AUTH_SHA256_LEN])
{
	uint8_t salted[AUTH_SHA256_LEN], client_key[AUTH_SHA256_LEN];
	int ret = -1;

	if (iter > INT32_MAX || salt_len > INT32_MAX)
		return -1;
	if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt,
			      (int)salt_len, (int)iter, EVP_sha256(),
			      sizeof(salted), salted) != 1)
		goto out;
	if (auth_hmac_sha256(salted, sizeof(salted), "Client Key", 10,
			     client_key) < 0 ||
	    auth_sha256(client_key, sizeof(client_key), stored_r) < 0 ||
	    auth_hmac_sha256(salted, sizeof(salted), "Server Key", 10,
			     server_r) < 0)
		goto out;
	ret = 0;
out:
	sodium_memzero(salted, sizeof(salted));
	sodium_memzero(client_key, sizeof(client_key));
	return ret;
}

char *
auth_scram_secrets_make_salt(const char *password, uint32_t iterations,
			     const uint8_t *salt, size_t salt_len)
{
	uint8_t stored[AUTH_SHA256_LEN], server[AUTH_SHA256_LEN];
	size_t len = strlen(password);
	struct buf b;
	int ret = 0;

	if (len > AUTH_PASSWORD_MAX_BYTES ||
	    !auth_saslprep_ok((const uint8_t *)password, len) ||
	    salt_len == 0 || salt_len > AUTH_SCRAM_SALT_MAX_BYTES)
		return NULL;
	if (iterations < AUTH_SCRAM_ITERATIONS_DEFAULT)
		iterations = AUTH_SCRAM_ITERATIONS_DEFAULT;
	if (iterations > AUTH_SCRAM_ITERATIONS_MAX)
		return NULL;
	if (auth_scram_keys(password, len, iterations, salt, salt_len, stored,
			    server) < 0)
		return NULL;
	buf_init(&b, AUTH_SCRAM_SECRETS_MAX_BYTES);
	ret |= buf_printf(&b, "SCRAM-SHA-256$%u:", iterations);
	ret |= base64_encode(&b, salt, salt_len);
	ret |= buf_append_byte(&b, '$');
	ret |= base64_encode(&b, stored, sizeof(stored));
	ret |= buf_append_byte(&b, ':');
	ret |= base64_encode(&b, server, sizeof(server));
	if (ret != 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

char *
auth_scram_secrets_make(const char *password, uint32_t iterations)
{
	uint8_t salt[AUTH_SCRAM_SALT_NEW_BYTES];

	auth_init_or_panic();
	randombytes_buf(salt, sizeof(salt));
	return auth_scram_secrets_make_salt(password, iterations, salt,
					    sizeof(salt));
}

/* Decode base64 v into out, requiring exactly want bytes (or 1..want when
   exact is false). Returns the length, or -1. */
static int
auth_b64_field(struct strview v, uint8_t *out, size_t want, bool exact)
{
	struct buf b;
	int ret = -1;

	buf_init(&b, want);
	if (v.len > 0 && base64_decode(&b, v.p, v.len) == 0 &&
	    b.len > 0 && (!exact || b.len == want)) {
		memcpy(out, b.data, b.len);
		ret = (int)b.len;
	}
	buf_free(&b);
	return ret;
}

static int
auth_scram_fields(struct strview iter, struct strview salt,
		  struct strview stored, struct strview server,
		  struct auth_scram_secrets *s)
{
	int n;

	if (parse_u32(iter, AUTH_SCRAM_ITERATIONS_MAX, &s->iterations) < 0 ||
	    s->iterations == 0)
		return -1;
	n = auth_b64_field(salt, s->salt, sizeof(s->salt), false);
	if (n < 0)
		return -1;
	s->salt_len = (size_t)n;
	if (auth_b64_field(stored, s->stored_key, AUTH_SHA256_LEN, true) < 0 ||
	    auth_b64_field(server, s->server_key, AUTH_SHA256_LEN, true) < 0)
		return -1;
	return 0;
}

int
auth_scram_secrets_parse(const char *str, struct auth_scram_secrets *s)
{
	struct strview v = sv_from_cstr(str), it, salt, st, sv;
	char sep1, sep2;

	memset(s, 0, sizeof(*s));
	if (v.len > AUTH_SCRAM_SECRETS_MAX_BYTES)
		return -1;
	if (sv_starts_with_ci(v, "SCRAM-SHA-256$")) {
		sv_skip(&v, 14);
		sep1 = ':';
		sep2 = '$';
	} else if (sv_starts_with_ci(v, "{SCRAM-SHA-256}")) {
		sv_skip(&v, 15);
		sep1 = ',';
		sep2 = ',';
	} else {
		return -1;
	}
	it = sv_split(&v, sep1);
	salt = sv_split(&v, sep2);
	st = sv_split(&v, sep1);
	sv = v;
	if (sv_index(sv, sep1) >= 0 || sv_index(sv, sep2) >= 0)
		return -1;
	return auth_scram_fields(it, salt, st, sv, s);
}

void
auth_scram_secrets_fake(const char *username,
			struct auth_scram_secrets *s)
{
	uint8_t mac[AUTH_SHA256_LEN];

	memset(s, 0, sizeof(*s));
	s->iterations = AUTH_SCRAM_ITERATIONS_DEFAULT;
	/* Same user, same salt: a prober comparing two attempts sees a
	   stable answer, as for a real account. */
	if (auth_hmac_sha256(auth_process_key(), 32, username,
			     strlen(username), mac) < 0)
		randombytes_buf(mac, sizeof(mac));
	s->salt_len = AUTH_SCRAM_SALT_NEW_BYTES;
	memcpy(s->salt, mac, s->salt_len);
	randombytes_buf(s->stored_key, sizeof(s->stored_key));
	randombytes_buf(s->server_key, sizeof(s->server_key));
}
