/* A SQLite VFS that is the default (unix) VFS except that it keeps a
   relative database name relative. The stock unix VFS turns "./tern.db"
   into an absolute path (getcwd, then lstat of every component), which
   fails with EACCES for a process that entered the data directory as
   root and then dropped to a user who cannot search its parents
   (/root/..., a 0700 temporary directory). Opening relative to the
   working directory needs no such search. Caveat: a process that opens
   the store this way must not change directory while it is open. */
#include <string.h>

#include "store/store_int.h"

#define STORE_VFS_NAME "tern-relative"

static sqlite3_vfs store_vfs;
static sqlite3_vfs *store_vfs_base;

static int
store_vfs_full_pathname(sqlite3_vfs *vfs, const char *path, int out_size,
			char *out)
{
	size_t len = strlen(path);

	(void)vfs;
	if (path[0] == '/')
		return store_vfs_base->xFullPathname(store_vfs_base, path,
						     out_size, out);
	if (out_size <= 0 || len >= (size_t)out_size)
		return SQLITE_CANTOPEN;
	memcpy(out, path, len + 1);
	return SQLITE_OK;
}

const char *
store_vfs_name(void)
{
	if (store_vfs_base != NULL)
		return STORE_VFS_NAME;
	store_vfs_base = sqlite3_vfs_find(NULL);
	if (store_vfs_base == NULL)
		return NULL;
	/* A copy shares the base's methods and pAppData; only the path
	   resolution differs. */
	store_vfs = *store_vfs_base;
	store_vfs.zName = STORE_VFS_NAME;
	store_vfs.pNext = NULL;
	store_vfs.xFullPathname = store_vfs_full_pathname;
	if (sqlite3_vfs_register(&store_vfs, 0) != SQLITE_OK) {
		store_vfs_base = NULL;
		return NULL;
	}
	return STORE_VFS_NAME;
}
