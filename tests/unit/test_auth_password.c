/* Tests for auth: password hashing/verification (argon2id, crypt(3)
   fixtures, Dovecot prefixes), needs_rehash, and the credential cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "harness.h"

/* Generated with libxcrypt crypt_r()/crypt_gensalt_rn() and libsodium
   crypto_pwhash_str_alg() for the password "tern-secret". */
#define PW "tern-secret"
static const char *const fixtures[] = {
	"$6$hAxJtrdWUgSz20pY$61crfpjp7D64TPxb7Kz14eivMaHJdVJtdLONWBD5QU1y97Mh"
	"RAnCBGCD.idMQfNFtihhf6ZGTBlPDEDSo1ONM/",
	"$5$vxgpMbXrZ8evs7Mw$RH1fgJEKJ3hzT7Dfi8BkUNYll3QgtPbxhb.5C1EEnD7",
	"$y$j9T$MHowcEDEJUddf0cz9Bm7Z0$jUWGMg/9phfwyKrtYNI4A9nxYbqWq/4JQMVpz3c"
	"7880",
	"$2b$05$2Zn/5BkgdvHATC3CYW4EquuM/ezjuLRl8ibKN5ZZQfwmKlVBZ9K36",
	"$1$4z6SSw9J$iRcaL4LHZflWnNNWU2SkO1",
	"$argon2id$v=19$m=19456,t=2,p=1$kDnjmcJxl58l4UA3OPReqg$AcitwUyfjZpOriw"
	"p2dbC/ueDY6q6FbiJ+d27UZwZBKY",
	"$argon2i$v=19$m=19456,t=3,p=1$CYY9qixiZFwfLrz7hj3VTQ$UGnNuu6amt/5rSky"
	"EUZy1MniNiNSqQKGGOVFZcfHccc",
	"{SHA512-CRYPT}$6$hAxJtrdWUgSz20pY$61crfpjp7D64TPxb7Kz14eivMaHJdVJtdLO"
	"NWBD5QU1y97MhRAnCBGCD.idMQfNFtihhf6ZGTBlPDEDSo1ONM/",
	"{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$kDnjmcJxl58l4UA3OPReqg$Acitw"
	"UyfjZpOriwp2dbC/ueDY6q6FbiJ+d27UZwZBKY",
	"{BLF-CRYPT}$2b$05$2Zn/5BkgdvHATC3CYW4EquuM/ezjuLRl8ibKN5ZZQfwmKlVBZ9K"
	"36",
	"{CRYPT}$y$j9T$MHowcEDEJUddf0cz9Bm7Z0$jUWGMg/9phfwyKrtYNI4A9nxYbqWq/4J"
	"QMVpz3c7880",
};
#define WEAK_ARGON2ID \
	"$argon2id$v=19$m=12288,t=3,p=1$nQMR5qPTya8IZA4kRi8VaQ$JJEJ3VCOgCs9lTm" \
	"hWXZQZmm89PKneTNufTAATmdfJiQ"

static void
test_hash_verify(void)
{
	char *h = auth_password_hash("correct horse");

	test_assert(h != NULL);
	test_assert(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	test_assert(auth_password_verify(h, "correct horse", 13) == 1);
	test_assert(auth_password_verify(h, "correct hors", 12) == 0);
	test_assert(auth_password_verify(h, "correct horsE", 13) == 0);
	/* NUL inside never matches, even when the prefix would */
	test_assert(auth_password_verify(h, "correct horse\0x", 15) == 0);
	test_assert(!auth_password_needs_rehash(h));
	free(h);
}

static void
test_fixtures(void)
{
	size_t n = sizeof(fixtures) / sizeof(fixtures[0]);

	for (size_t i = 0; i < n; i++) {
		test_assert_idx(auth_password_verify(fixtures[i], PW,
						     strlen(PW)) == 1, i);
		test_assert_idx(auth_password_verify(fixtures[i], "tern-secreT",
						     11) == 0, i);
		test_assert_idx(auth_password_verify(fixtures[i], "", 0) == 0,
				i);
		test_assert_idx(auth_password_verify(fixtures[i],
						     PW "\0", 12) == 0, i);
	}
}

static void
test_invalid_hashes(void)
{
	static const char *const bad[] = {
		"",
		"plain",
		"{PLAIN}tern-secret",
		"{SHA512-CRYPT}$1$4z6SSw9J$iRcaL4LHZflWnNNWU2SkO1",
		"{UNKNOWN}$6$x$y",
		"$argon2id$",
		"$argon2id$v=19$m=19456,t=2,p=1$",
		"$argon2id$v=18$m=19456,t=2,p=1$kDnjmcJxl58l4UA3OPReqg$AcitwUyf",
		/* 4 TiB of memory requested by a hostile row */
		"$argon2id$v=19$m=4294967295,t=2,p=1$kDnjmcJxl58l4UA3OPReqg$Ac",
		"$argon2id$v=19$m=19456,t=2,p=4$kDnjmcJxl58l4UA3OPReqg$Acitw",
		"$7$abc",
		"$6$",
		"*",
		"!",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		test_assert_idx(auth_password_verify(bad[i], PW, strlen(PW)) ==
				-1, i);
}

static void
test_long_password(void)
{
	char big[AUTH_PASSWORD_MAX_BYTES + 2];

	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	test_assert(auth_password_hash(big) == NULL);
	test_assert(auth_password_verify(fixtures[0], big, strlen(big)) == 0);
}

static void
test_needs_rehash(void)
{
	test_assert(auth_password_needs_rehash(fixtures[0]));	/* $6$ */
	test_assert(auth_password_needs_rehash(fixtures[2]));	/* $y$ */
	test_assert(auth_password_needs_rehash(fixtures[6]));	/* argon2i */
	test_assert(!auth_password_needs_rehash(fixtures[5]));
	test_assert(auth_password_needs_rehash(WEAK_ARGON2ID));
	test_assert(auth_password_needs_rehash("{ARGON2ID}$argon2id$v=19$m="
					       "19456,t=2,p=1$a$b"));
	test_assert(auth_password_needs_rehash("garbage"));
}

static void
test_cache(void)
{
	struct auth_cache *c = auth_cache_new(10, 100);
	const char *h1 = fixtures[0], *h2 = fixtures[1];
	time_t now = 1000000;

	test_assert(auth_cache_check(c, "bob", h1, PW, 11, now) == 0);
	auth_cache_add(c, "bob", h1, PW, 11, now);
	test_assert(auth_cache_count(c) == 1);
	test_assert(auth_cache_check(c, "bob", h1, PW, 11, now + 99) == 1);
	/* another password, another user: miss, entry kept */
	test_assert(auth_cache_check(c, "bob", h1, "tern-secreT", 11,
				     now) == 0);
	test_assert(auth_cache_check(c, "bob", h1, PW, 10, now) == 0);
	test_assert(auth_cache_check(c, "alice", h1, PW, 11, now) == 0);
	test_assert(auth_cache_check(c, "bob", h1, PW, 11, now) == 1);
	/* expiry */
	test_assert(auth_cache_check(c, "bob", h1, PW, 11, now + 100) == 0);
	test_assert(auth_cache_count(c) == 0);
	test_assert(auth_cache_check(c, "bob", h1, PW, 11, now) == 0);
	/* changed stored hash invalidates */
	auth_cache_add(c, "bob", h1, PW, 11, now);
	test_assert(auth_cache_check(c, "bob", h2, PW, 11, now) == 0);
	test_assert(auth_cache_count(c) == 0);
	test_assert(auth_cache_check(c, "bob", h1, PW, 11, now) == 0);
	/* remove */
	auth_cache_add(c, "bob", h1, PW, 11, now);
	auth_cache_remove(c, "bob");
	test_assert(auth_cache_check(c, "bob", h1, PW, 11, now) == 0);
	/* a clock going backwards is a miss, not a hit forever */
	auth_cache_add(c, "bob", h1, PW, 11, now);
	test_assert(auth_cache_check(c, "bob", h1, PW, 11, now - 1) == 0);
	auth_cache_free(&c);
	test_assert(c == NULL);
}

static void
test_cache_bounded(void)
{
	struct auth_cache *c = auth_cache_new(50, 100);
	char user[32];
	unsigned int hits = 0;

	for (int i = 0; i < 500; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		auth_cache_add(c, user, fixtures[0], PW, 11, 10);
		test_assert_idx(auth_cache_count(c) <= 50, i);
	}
	test_assert(auth_cache_count(c) == 50);
	for (int i = 0; i < 500; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		hits += (unsigned int)auth_cache_check(c, user, fixtures[0], PW,
						       11, 10);
	}
	test_assert(hits == 50);
	/* the newest one is always present */
	test_assert(auth_cache_check(c, "user499", fixtures[0], PW, 11, 10) ==
		    1);
	auth_cache_free(&c);
}

static void
test_hash_timing(void)
{
	struct timespec a, b;
	char *h;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &a);
	h = auth_password_hash("timing");
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 +
		(double)(b.tv_nsec - a.tv_nsec) / 1e6;
	printf("auth_password_hash: %.1f ms\n", ms);
	test_assert(h != NULL);
	free(h);
}

static const struct test_case tests[] = {
	{ "hash_verify", test_hash_verify },
	{ "fixtures", test_fixtures },
	{ "invalid_hashes", test_invalid_hashes },
	{ "long_password", test_long_password },
	{ "needs_rehash", test_needs_rehash },
	{ "cache", test_cache },
	{ "cache_bounded", test_cache_bounded },
	{ "hash_timing", test_hash_timing },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
