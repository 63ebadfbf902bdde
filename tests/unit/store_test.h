#ifndef TERN_TEST_STORE_H
#define TERN_TEST_STORE_H
/* For the store's unit tests: open a store on dir or stop the test
   binary (nothing after it could run). */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "store/store.h"

static inline struct store *
test_store_open_dir(const char *dir)
{
	const char *error = NULL;
	struct store *s = store_open(dir, &error);

	if (s == NULL) {
		fprintf(stderr, "store_open %s: %s\n", dir,
			error != NULL ? error : "?");
		exit(1);
	}
	return s;
}

/* The same on test_tmpdir()/sub, its path left in dir[size]. */
static inline struct store *
test_store_open_sub(const char *sub, char *dir, size_t size)
{
	snprintf(dir, size, "%s/%s", test_tmpdir(), sub);
	return test_store_open_dir(dir);
}

#endif
