/* Tests for lib/base64. */
#include "harness.h"
#include "lib/base64.h"

static void
test_base64_roundtrip(void)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob",
					     "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v",
					   "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	for (size_t i = 0; i < 7; i++) {
		struct buf b;
		buf_init(&b, 100);
		test_assert_idx(base64_encode(&b, plain[i], strlen(plain[i])) == 0, i);
		test_assert_strcmp(buf_cstr(&b), enc[i]);
		buf_reset(&b);
		test_assert_idx(base64_decode(&b, enc[i], strlen(enc[i])) == 0, i);
		test_assert_strcmp(buf_cstr(&b), plain[i]);
		buf_reset(&b);
		test_assert_idx(base64_decode_mime(&b, enc[i], strlen(enc[i])) == 0, i);
		test_assert_strcmp(buf_cstr(&b), plain[i]);
		buf_free(&b);
	}
}

static void
test_base64_strict_rejects(void)
{
	static const char *const bad[] = { "Zg=", "Z===", "Zg==Zg==", "Zm9v\n",
					   "Zm 9", "=Zm9", "Zm=v", "*m9v" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b;
		buf_init(&b, 100);
		test_assert_idx(base64_decode(&b, bad[i], strlen(bad[i])) < 0, i);
		test_assert_idx(b.len == 0, i);
		buf_free(&b);
	}
}

static void
test_base64_mime_lenient(void)
{
	struct buf b;
	buf_init(&b, 100);
	test_assert(base64_decode_mime(&b, "Zm9v\r\nYmFy\r\n", 12) == 0);
	test_assert_strcmp(buf_cstr(&b), "foobar");
	buf_free(&b);
}

static const struct test_case tests[] = {
	{ "base64_roundtrip", test_base64_roundtrip },
	{ "base64_strict_rejects", test_base64_strict_rejects },
	{ "base64_mime_lenient", test_base64_mime_lenient },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
