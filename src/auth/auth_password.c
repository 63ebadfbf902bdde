/* Password hashing and verification.
   New hashes: argon2id (RFC 9106) through libsodium's crypto_pwhash_str,
   costs AUTH_ARGON2_* (OWASP minimum). Verification also accepts argon2i
   and the crypt(3) schemes Dovecot installations use ($6$ SHA-512-crypt,
   $5$, $y$ yescrypt, $2b$/$2y$/$2a$ bcrypt, $1$ MD5-crypt) through
   libxcrypt's crypt_rn, optionally behind Dovecot's "{SCHEME}" prefix.
   Security: passwords are bounded and NUL-free, comparisons are
   constant-time, and stored argon2 costs are bounded so a hostile database
   row cannot make a worker allocate gigabytes. */
#include <crypt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"
#include "lib/log.h"
#include "lib/strview.h"
#include "lib/xalloc.h"

/* Stored argon2 costs above these are treated as invalid hashes. */
#define AUTH_ARGON2_VERIFY_MAX_KIB (1024U * 1024U)
#define AUTH_ARGON2_VERIFY_MAX_T 64U

/* argon2id of 64 random hex characters, generated once with the
   AUTH_ARGON2_* costs; nobody knows its password. */
static const char auth_dummy_hash[] =
	"$argon2id$v=19$m=19456,t=2,p=1$8mwHtUNRRjBB86vLSE26FA$"
	"wa42J/oIEVKI7zsX1OHkvBmnXHFMONjHAlDYnSFaZEY";

static bool auth_initialised;
static uint8_t auth_key[32];

int
auth_init(void)
{
	if (auth_initialised)
		return 0;
	if (sodium_init() < 0)
		return -1;
	randombytes_buf(auth_key, sizeof(auth_key));
	auth_initialised = true;
	return 0;
}

void
auth_init_or_panic(void)
{
	if (auth_init() < 0)
		panic("auth: libsodium initialisation failed");
}

const uint8_t *
auth_process_key(void)
{
	auth_init_or_panic();
	return auth_key;
}

char *
auth_password_hash(const char *password)
{
	char out[crypto_pwhash_STRBYTES];
	size_t len = strlen(password);

	auth_init_or_panic();
	if (len > AUTH_PASSWORD_MAX_BYTES)
		return NULL;
	if (crypto_pwhash_str_alg(out, password, len, AUTH_ARGON2_OPSLIMIT,
				  AUTH_ARGON2_MEMLIMIT_BYTES,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return NULL;
	return xstrdup(out);
}

/* Dovecot "{SCHEME}" prefixes we understand, and the hash prefixes each
   may be followed by ("" = any crypt(3) scheme we support). */
static const struct {
	const char *scheme;
	const char *prefix;
} auth_dovecot_schemes[] = {
	{ "{ARGON2ID}", "$argon2id$" },
	{ "{ARGON2I}", "$argon2i$" },
	{ "{SHA512-CRYPT}", "$6$" },
	{ "{SHA256-CRYPT}", "$5$" },
	{ "{BLF-CRYPT}", "$2" },
	{ "{MD5-CRYPT}", "$1$" },
	{ "{CRYPT}", "" },
};

/* Strip a Dovecot scheme prefix. Returns the hash itself, or NULL for an
   unknown scheme or a scheme/hash mismatch. */
static const char *
auth_password_strip_scheme(const char *hash)
{
	if (hash[0] != '{')
		return hash;
	for (size_t i = 0; i < sizeof(auth_dovecot_schemes) /
			    sizeof(auth_dovecot_schemes[0]); i++) {
		const char *s = auth_dovecot_schemes[i].scheme;
		size_t n = strlen(s);

		if (strncasecmp(hash, s, n) != 0)
			continue;
		if (strncmp(hash + n, auth_dovecot_schemes[i].prefix,
			    strlen(auth_dovecot_schemes[i].prefix)) != 0)
			return NULL;
		return hash + n;
	}
	return NULL;
}

/* Parse "$argon2X$v=19$m=M,t=T,p=P$" costs. 0 or -1. */
static int
auth_argon2_params(const char *hash, uint32_t *m_r, uint32_t *t_r)
{
	struct strview v = sv_from_cstr(hash), tok;
	uint32_t ver, p;

	(void)sv_split(&v, '$');	/* empty before the first '$' */
	tok = sv_split(&v, '$');
	if (!sv_eq_ci_cstr(tok, "argon2id") && !sv_eq_ci_cstr(tok, "argon2i"))
		return -1;
	tok = sv_split(&v, '$');
	if (tok.len < 3 || memcmp(tok.p, "v=", 2) != 0 ||
	    parse_u32(sv_make(tok.p + 2, tok.len - 2), 1000, &ver) < 0 ||
	    ver != 19)
		return -1;
	tok = sv_split(&v, '$');
	if (tok.len < 2 || memcmp(tok.p, "m=", 2) != 0)
		return -1;
	sv_skip(&tok, 2);
	if (parse_u32(sv_split(&tok, ','), UINT32_MAX, m_r) < 0 ||
	    !sv_starts_with_ci(tok, "t="))
		return -1;
	sv_skip(&tok, 2);
	if (parse_u32(sv_split(&tok, ','), UINT32_MAX, t_r) < 0 ||
	    !sv_starts_with_ci(tok, "p="))
		return -1;
	sv_skip(&tok, 2);
	if (parse_u32(tok, 255, &p) < 0 || p != 1)
		return -1;	/* libsodium only computes p=1 */
	return v.len > 0 ? 0 : -1;
}

static int
auth_password_verify_argon2(const char *hash, const char *password,
			    size_t password_len)
{
	uint32_t m, t;

	if (auth_argon2_params(hash, &m, &t) < 0 ||
	    m > AUTH_ARGON2_VERIFY_MAX_KIB || t > AUTH_ARGON2_VERIFY_MAX_T)
		return -1;
	/* libsodium compares the digests in constant time itself. */
	return crypto_pwhash_str_verify(hash, password, password_len) == 0 ?
		1 : 0;
}

static bool
auth_crypt_supported(const char *hash)
{
	static const char *const prefixes[] = {
		"$6$", "$5$", "$y$", "$2b$", "$2y$", "$2a$", "$1$",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (strncmp(hash, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	}
	return false;
}

static int
auth_password_verify_crypt(const char *hash, const char *password,
			   size_t password_len)
{
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	char phrase[AUTH_PASSWORD_MAX_BYTES + 1];
	size_t hash_len = strlen(hash);
	const char *out;
	int ret = -1;

	memcpy(phrase, password, password_len);
	phrase[password_len] = '\0';
	out = crypt_rn(phrase, hash, data, sizeof(*data));
	/* libxcrypt returns NULL or a string starting with '*' on error. A
	   result of another length means the stored string was not a complete
	   hash (e.g. only a setting): report it as invalid. */
	if (out != NULL && out[0] != '*' && strlen(out) == hash_len)
		ret = sodium_memcmp(out, hash, hash_len) == 0 ? 1 : 0;
	sodium_memzero(phrase, sizeof(phrase));
	sodium_memzero(data, sizeof(*data));
	free(data);
	return ret;
}

int
auth_password_verify(const char *stored_hash, const char *password,
		     size_t password_len)
{
	const char *hash;

	auth_init_or_panic();
	if (strlen(stored_hash) > AUTH_HASH_MAX_BYTES)
		return -1;
	hash = auth_password_strip_scheme(stored_hash);
	if (hash == NULL)
		return -1;
	if (strncmp(hash, "$argon2", 7) != 0 && !auth_crypt_supported(hash))
		return -1;
	if (password_len > AUTH_PASSWORD_MAX_BYTES ||
	    memchr(password, '\0', password_len) != NULL)
		return 0;
	if (strncmp(hash, "$argon2", 7) == 0)
		return auth_password_verify_argon2(hash, password,
						   password_len);
	return auth_password_verify_crypt(hash, password, password_len);
}

bool
auth_password_needs_rehash(const char *hash)
{
	uint32_t m, t;

	if (strncmp(hash, "$argon2id$", 10) != 0)
		return true;
	if (auth_argon2_params(hash, &m, &t) < 0)
		return true;
	return (uint64_t)m * 1024 < AUTH_ARGON2_MEMLIMIT_BYTES ||
		t < AUTH_ARGON2_OPSLIMIT;
}

void
auth_password_dummy_verify(const char *password, size_t password_len)
{
	if (password_len > AUTH_PASSWORD_MAX_BYTES)
		password_len = AUTH_PASSWORD_MAX_BYTES;
	(void)auth_password_verify(auth_dummy_hash, password, password_len);
}

void
auth_user_clear(struct auth_user *user)
{
	if (user->password_hash != NULL)
		sodium_memzero(user->password_hash,
			       strlen(user->password_hash));
	if (user->scram_secrets != NULL)
		sodium_memzero(user->scram_secrets,
			       strlen(user->scram_secrets));
	free(user->name);
	free(user->password_hash);
	free(user->scram_secrets);
	memset(user, 0, sizeof(*user));
}

/* Verify (cache first) and fill *name_r on success. */
static enum auth_sasl_result
auth_check_user(const struct auth_user *user, const char *password,
		size_t password_len, struct auth_cache *cache, char **name_r)
{
	time_t now = time(NULL);
	int ret;

	if (cache != NULL &&
	    auth_cache_check(cache, user->name, user->password_hash, password,
			     password_len, now) == 1) {
		*name_r = xstrdup(user->name);
		return AUTH_SASL_OK;
	}
	ret = auth_password_verify(user->password_hash, password,
				   password_len);
	if (ret < 0) {
		char safe[64];

		log_warn("auth", "-", "hash-unsupported user=%s",
			 log_sanitize(safe, sizeof(safe), user->name,
				      strlen(user->name)));
		auth_password_dummy_verify(password, password_len);
	}
	if (ret != 1)
		return AUTH_SASL_FAIL;
	if (cache != NULL)
		auth_cache_add(cache, user->name, user->password_hash,
			       password, password_len, now);
	*name_r = xstrdup(user->name);
	return AUTH_SASL_OK;
}

enum auth_sasl_result
auth_check_plaintext(const char *username, const char *password,
		     size_t password_len, auth_lookup_fn *lookup, void *ctx,
		     struct auth_cache *cache, char **name_r)
{
	struct auth_user user;
	enum auth_sasl_result res;
	int ret;

	*name_r = NULL;
	memset(&user, 0, sizeof(user));
	ret = lookup(ctx, username, &user);
	if (ret < 0) {
		auth_user_clear(&user);
		return AUTH_SASL_TEMPFAIL;
	}
	if (ret == 0 || user.password_hash == NULL || user.name == NULL) {
		auth_user_clear(&user);
		auth_password_dummy_verify(password, password_len);
		return AUTH_SASL_FAIL;
	}
	res = auth_check_user(&user, password, password_len, cache, name_r);
	auth_user_clear(&user);
	return res;
}

enum auth_sasl_result
auth_login_check(const char *username, const char *password,
		 size_t password_len, auth_lookup_fn *lookup, void *ctx,
		 struct auth_cache *cache)
{
	size_t ulen = strlen(username);
	enum auth_sasl_result res;
	char *name;

	auth_init_or_panic();
	if (ulen == 0 || ulen > AUTH_USERNAME_MAX_BYTES ||
	    password_len > AUTH_PASSWORD_MAX_BYTES)
		return AUTH_SASL_BAD_PROTOCOL;
	res = auth_check_plaintext(username, password, password_len, lookup,
				   ctx, cache, &name);
	free(name);
	return res;
}
