/* Unit-test harness; see harness.h. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int test_failures_cur;
static char test_dir[256];

void
test_assert_at(bool ok, const char *expr, const char *file, int line,
	       long idx)
{
	if (ok)
		return;
	test_failures_cur++;
	if (idx >= 0)
		fprintf(stderr, "  FAIL %s:%d: %s (case %ld)\n", file, line,
			expr, idx);
	else
		fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, expr);
}

void
test_assert_strcmp_at(const char *a, const char *b, const char *ea,
		      const char *eb, const char *file, int line)
{
	if (a != NULL && b != NULL && strcmp(a, b) == 0)
		return;
	test_failures_cur++;
	fprintf(stderr, "  FAIL %s:%d: %s == %s\n    got:  \"%s\"\n    want: \"%s\"\n",
		file, line, ea, eb, a ? a : "(null)", b ? b : "(null)");
}

void
test_assert_memeq_at(const void *a, size_t alen, const void *b, size_t blen,
		     const char *file, int line)
{
	if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
		return;
	test_failures_cur++;
	fprintf(stderr, "  FAIL %s:%d: %zu bytes != %zu bytes\n    got:  \"%.*s\"\n    want: \"%.*s\"\n",
		file, line, alen, blen, (int)(alen > 200 ? 200 : alen),
		(const char *)a, (int)(blen > 200 ? 200 : blen),
		(const char *)b);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
test_tmpdir_cleanup(void)
{
	if (test_dir[0] != '\0')
		nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	test_dir[0] = '\0';
}

const char *
test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (test_dir[0] != '\0')
		return test_dir;
	snprintf(test_dir, sizeof(test_dir), "%s/tern-unit-XXXXXX",
		 base != NULL ? base : "/tmp");
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	return test_dir;
}

int
test_run(int argc, char **argv, const struct test_case *tests)
{
	const char *match = NULL;
	const char *prog = strrchr(argv[0], '/');
	int passed = 0, failed = 0;

	prog = prog != NULL ? prog + 1 : argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--match") == 0 && i + 1 < argc)
			match = argv[++i];
	}
	for (const struct test_case *t = tests; t->name != NULL; t++) {
		if (match != NULL && strstr(t->name, match) == NULL)
			continue;
		test_failures_cur = 0;
		t->fn();
		test_tmpdir_cleanup();
		if (test_failures_cur == 0) {
			passed++;
		} else {
			failed++;
			fprintf(stderr, "%s: %s FAILED\n", prog, t->name);
		}
	}
	printf("%s: %d passed, %d failed\n", prog, passed, failed);
	return failed == 0 ? 0 : 1;
}
