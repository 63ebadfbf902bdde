#ifndef TERN_TEST_STORE_H
#define TERN_TEST_STORE_H
/* For the store's unit tests: open a store on dir or stop the test
   binary (nothing after it could run). */
#include <dirent.h>
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

/* Files under DATADIR/blobs/xx/. */
static inline int
test_blob_files(const char *dir)
{
	char path[700];
	struct dirent *de;
	DIR *d;
	int n = 0;

	for (int k = 0; k < 256; k++) {
		snprintf(path, sizeof(path), "%s/blobs/%02x", dir, k);
		d = opendir(path);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL)
			n += de->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

#endif
