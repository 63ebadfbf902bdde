/* Tests for the store's DKIM keys (src/store/store_dkim.c): set, the
   one active key per domain, lookup by any case and trailing dot, list
   order, duplicate selectors and argument checks, and that the
   database file holding the private keys is not readable by others. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "store/store.h"

static void
test_dkim_key(struct store_dkim_key *k, const char *domain, const char *sel,
	      const char *alg, int64_t created)
{
	memset(k, 0, sizeof(*k));
	k->domain = (char *)domain;
	k->selector = (char *)sel;
	k->algorithm = (char *)alg;
	k->private_key = (char *)"-----BEGIN PRIVATE KEY-----\nx\n";
	k->created = created;
}

static void
test_store_dkim_set_get(void)
{
	const char *error = NULL;
	struct store *s = store_open(test_tmpdir(), &error);
	struct store_dkim_key k, got, *ks;
	size_t n;

	test_assert(s != NULL);
	if (s == NULL)
		return;
	test_assert(store_dkim_get(s, "example.test", &got) == 0);
	test_dkim_key(&k, "Example.TEST.", "s1", "rsa-sha256", 100);
	test_assert(store_dkim_set(s, &k) == STORE_OK);
	test_assert(store_dkim_get(s, "example.test", &got) == 1);
	test_assert_strcmp(got.domain, "example.test");
	test_assert_strcmp(got.selector, "s1");
	test_assert_strcmp(got.algorithm, "rsa-sha256");
	test_assert(got.active && got.created == 100);
	store_dkim_key_clear(&got);
	test_assert(got.private_key == NULL);

	/* A second key becomes the active one; the first is kept. */
	test_dkim_key(&k, "example.test", "s2", "ed25519-sha256", 200);
	test_assert(store_dkim_set(s, &k) == STORE_OK);
	test_assert(store_dkim_get(s, "EXAMPLE.test", &got) == 1);
	test_assert_strcmp(got.selector, "s2");
	store_dkim_key_clear(&got);
	test_assert(store_dkim_set(s, &k) == STORE_EXISTS);
	test_dkim_key(&k, "other.test", "s1", "rsa-sha256", 50);
	test_assert(store_dkim_set(s, &k) == STORE_OK);

	test_assert(store_dkim_list(s, NULL, &ks, &n) == STORE_OK);
	test_assert(n == 3);
	if (n == 3) {
		test_assert_strcmp(ks[0].selector, "s2");
		test_assert(ks[0].active && !ks[1].active);
		test_assert_strcmp(ks[1].selector, "s1");
		test_assert_strcmp(ks[2].domain, "other.test");
	}
	store_dkim_keys_free(ks, n);
	test_assert(store_dkim_list(s, "other.test", &ks, &n) == STORE_OK);
	test_assert(n == 1);
	store_dkim_keys_free(ks, n);
	store_close(&s);
}

static void
test_store_dkim_invalid(void)
{
	const char *error = NULL;
	struct store *s = store_open(test_tmpdir(), &error);
	struct store_dkim_key k;
	char path[4096];
	struct stat st;

	test_assert(s != NULL);
	if (s == NULL)
		return;
	test_dkim_key(&k, "example.test", "s1", "rsa-sha1", 0);
	test_assert(store_dkim_set(s, &k) == STORE_INVALID);
	test_dkim_key(&k, "example.test", "bad selector", "rsa-sha256", 0);
	test_assert(store_dkim_set(s, &k) == STORE_INVALID);
	test_dkim_key(&k, "example.test", "-s", "rsa-sha256", 0);
	test_assert(store_dkim_set(s, &k) == STORE_INVALID);
	test_dkim_key(&k, "example.test", "a..b", "rsa-sha256", 0);
	test_assert(store_dkim_set(s, &k) == STORE_INVALID);
	test_dkim_key(&k, "", "s1", "rsa-sha256", 0);
	test_assert(store_dkim_set(s, &k) == STORE_INVALID);
	test_dkim_key(&k, "example.test", "s1", "rsa-sha256", 0);
	k.private_key = (char *)"";
	test_assert(store_dkim_set(s, &k) == STORE_INVALID);
	snprintf(path, sizeof(path), "%s/tern.db", test_tmpdir());
	test_assert(stat(path, &st) == 0);
	test_assert((st.st_mode & 077) == 0);
	store_close(&s);
}

static const struct test_case tests[] = {
	{ "store_dkim_set_get", test_store_dkim_set_get },
	{ "store_dkim_invalid", test_store_dkim_invalid },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
