/* Tests for lib: buf, strview, arena, log_sanitize. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/strview.h"

static void
test_buf_max(void)
{
	struct buf b;

	buf_init(&b, 8);
	test_assert(buf_append(&b, "12345", 5) == 0);
	test_assert(buf_append(&b, "6789", 4) < 0);
	test_assert(b.len == 5);
	test_assert(buf_append(&b, "678", 3) == 0);
	test_assert_strcmp(buf_cstr(&b), "12345678");
	test_assert(buf_append_byte(&b, 'x') < 0);
	buf_consume(&b, 3);
	test_assert_strcmp(buf_cstr(&b), "45678");
	test_assert(buf_printf(&b, "%d", 123) == 0);
	test_assert_strcmp(buf_cstr(&b), "45678123");
	test_assert(buf_printf(&b, "%d", 1) < 0);
	buf_free(&b);
}

static void
test_buf_steal(void)
{
	struct buf b;
	size_t len;
	char *s;

	buf_init(&b, 100);
	s = buf_steal(&b, &len);
	test_assert(len == 0 && s[0] == '\0');
	free(s);
	buf_append_str(&b, "abc");
	s = buf_steal(&b, &len);
	test_assert(len == 3);
	test_assert_strcmp(s, "abc");
	free(s);
	test_assert(b.data == NULL);
}

static void
test_parse_u32(void)
{
	static const struct {
		const char *in;
		uint32_t max;
		int ret;
		uint32_t val;
	} cases[] = {
		{ "0", 10, 0, 0 },
		{ "10", 10, 0, 10 },
		{ "11", 10, -1, 0 },
		{ "4294967295", 4294967295u, 0, 4294967295u },
		{ "4294967296", 4294967295u, -1, 0 },
		{ "99999999999999999999999", 4294967295u, -1, 0 },
		{ "", 10, -1, 0 },
		{ "-1", 10, -1, 0 },
		{ "+1", 10, -1, 0 },
		{ " 1", 10, -1, 0 },
		{ "1a", 10, -1, 0 },
		{ "9", 5, -1, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t v = 12345;
		int r = parse_u32(sv_from_cstr(cases[i].in), cases[i].max, &v);
		test_assert_idx(r == cases[i].ret, i);
		if (r == 0)
			test_assert_idx(v == cases[i].val, i);
	}
}

static void
test_sv_split(void)
{
	struct strview v = SV_LIT("a b  c");
	struct strview t;

	t = sv_split(&v, ' ');
	test_assert(sv_eq_ci_cstr(t, "A"));
	t = sv_split(&v, ' ');
	test_assert(sv_eq_ci_cstr(t, "b"));
	t = sv_split(&v, ' ');
	test_assert(t.len == 0);
	t = sv_split(&v, ' ');
	test_assert(sv_eq_ci_cstr(t, "c"));
	test_assert(v.len == 0);
	test_assert(sv_starts_with_ci(SV_LIT("MAIL FROM:"), "mail from:"));
	test_assert(!sv_starts_with_ci(SV_LIT("MAIL"), "mail from:"));
}

static void
test_arena(void)
{
	struct arena *a = arena_new("test", 300);
	char *s = arena_strdup(a, "hello");
	void *big;

	test_assert_strcmp(s, "hello");
	big = arena_alloc(a, 10000);
	memset(big, 1, 10000);
	test_assert(((uintptr_t)big & 15) == 0);
	test_assert(arena_used(a) >= 10000);
	s = arena_printf(a, "%s-%d", "x", 42);
	test_assert_strcmp(s, "x-42");
	arena_reset(a);
	test_assert(arena_used(a) == 0);
	test_assert(arena_peak(a) >= 10000);
	s = arena_strndup(a, "abcdef", 3);
	test_assert_strcmp(s, "abc");
	arena_free(&a);
	test_assert(a == NULL);
}

static void
test_log_sanitize(void)
{
	char out[16];

	log_sanitize(out, sizeof(out), "ab\r\n", 4);
	test_assert_strcmp(out, "ab\\x0d\\x0a");
	log_sanitize(out, sizeof(out), "0123456789abcdefghij", 20);
	test_assert(strlen(out) < sizeof(out));
	test_assert(strstr(out, "...") != NULL);
}

static const struct test_case tests[] = {
	{ "buf_max", test_buf_max },
	{ "buf_steal", test_buf_steal },
	{ "parse_u32", test_parse_u32 },
	{ "sv_split", test_sv_split },
	{ "arena", test_arena },
	{ "log_sanitize", test_log_sanitize },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
