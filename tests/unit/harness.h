#ifndef TERN_TEST_HARNESS_H
#define TERN_TEST_HARNESS_H
/* A small unit-test harness in the spirit of Dovecot's lib-test.
   Each test file ends with:
     static const struct test_case tests[] = {
         { "buf_append", test_buf_append }, { NULL, NULL } };
     int main(int argc, char **argv) { return test_run(argc, argv, tests); }
   "--match STR" runs only the tests whose name contains STR. The last line
   printed is "<file>: N passed, N failed"; the exit code is non-zero on any
   failure. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

int test_run(int argc, char **argv, const struct test_case *tests);

void test_assert_at(bool ok, const char *expr, const char *file, int line,
		    long idx);
void test_assert_strcmp_at(const char *a, const char *b, const char *ea,
			   const char *eb, const char *file, int line);
void test_assert_memeq_at(const void *a, size_t alen, const void *b,
			  size_t blen, const char *file, int line);
/* A temporary directory for this test, removed at the end (path valid
   until the next call). */
const char *test_tmpdir(void);

#define test_assert(cond) test_assert_at((cond), #cond, __FILE__, __LINE__, -1)
#define test_assert_idx(cond, i) \
	test_assert_at((cond), #cond, __FILE__, __LINE__, (long)(i))
#define test_assert_strcmp(a, b) \
	test_assert_strcmp_at((a), (b), #a, #b, __FILE__, __LINE__)
#define test_assert_memeq(a, alen, b, blen) \
	test_assert_memeq_at((a), (alen), (b), (blen), __FILE__, __LINE__)

#endif
