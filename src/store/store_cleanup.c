/* Crash cleanup at store_open(). A writer that dies between writing a
   blob and committing the metadata that names it leaves either a temp
   file in DATADIR/tmp or an unreferenced blob file. Temp files older
   than STORE_ORPHAN_GRACE_SECS are removed. Blob files are not scanned
   (that would cost O(all mail) per open): every process appends the
   hash of each blob it renames into place to its own journal in
   DATADIR/tmp (rotated every STORE_JOURNAL_ROTATE_SECS), and the cleanup
   checks only the hashes of stale journals. The check and the unlink
   happen under the SQLite write lock, so no transaction can take a new
   reference meanwhile; a blob file touched (dedup) within the grace
   period is kept. XXX The journal is not fsynced: after a power cut a
   blob may leak (disk space only, never a dangling reference). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "store/store_int.h"

#define STORE_JOURNAL_MAX_BYTES (64 * 1024 * 1024)
#define STORE_JOURNAL_PREFIX "journal-"

int
store_cleanup_journal_add(struct store *s, const char *hash)
{
	char path[STORE_PATH_MAX], line[STORE_HASH_HEX_LEN + 2];
	int64_t now = store_now();
	struct timespec ts;

	if (s->journal_fd >= 0 &&
	    now - s->journal_opened >= STORE_JOURNAL_ROTATE_SECS) {
		close(s->journal_fd);
		s->journal_fd = -1;
	}
	if (s->journal_fd < 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(path, sizeof(path), "%s/tmp/" STORE_JOURNAL_PREFIX
			 "%ld-%lld-%ld", s->datadir, (long)getpid(),
			 (long long)ts.tv_sec, (long)ts.tv_nsec);
		s->journal_fd = open(path, O_WRONLY | O_CREAT | O_EXCL |
					   O_APPEND | O_CLOEXEC, 0600);
		if (s->journal_fd < 0)
			return store_fail(s, errno == ENOSPC ? STORE_NOSPACE
							     : STORE_ERR,
					  "create %s: %s", path,
					  strerror(errno));
		s->journal_opened = now;
	}
	snprintf(line, sizeof(line), "%s\n", hash);
	if (write(s->journal_fd, line, STORE_HASH_HEX_LEN + 1) !=
	    STORE_HASH_HEX_LEN + 1)
		return store_fail(s, errno == ENOSPC ? STORE_NOSPACE
						     : STORE_ERR,
				  "journal write: %s", strerror(errno));
	return STORE_OK;
}

/* 1 when the blob has a live reference, 0 none, -1 error. */
static int
store_cleanup_referenced(struct store *s, const char *hash)
{
	sqlite3_stmt *st;
	int rc, found = 0;

	st = store_stmt(s, "SELECT refcount FROM blobs WHERE hash = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		found = sqlite3_column_int64(st, 0) > 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	return found;
}

static void
store_cleanup_blob(struct store *s, const char *hash, int64_t now)
{
	char path[STORE_PATH_MAX];
	sqlite3_stmt *st;
	struct stat sb;

	if (store_cleanup_referenced(s, hash) != 0)
		return;
	if (store_blob_path(s, hash, path, sizeof(path)) < 0 ||
	    stat(path, &sb) < 0 ||
	    now - (int64_t)sb.st_mtime < STORE_ORPHAN_GRACE_SECS)
		return;
	if (unlink(path) < 0)
		return;
	st = store_stmt(s, "DELETE FROM blobs WHERE hash = ?"
			   " AND refcount <= 0");
	if (st == NULL)
		return;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	(void)store_stmt_exec(s, st);
}

static int
store_cleanup_read(const char *path, struct buf *b)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_append(b, chunk, (size_t)n) < 0)
			break; /* the rest stays a (harmless) leak */
	}
	close(fd);
	return 0;
}

static void
store_cleanup_journal(struct store *s, const char *path, int64_t now)
{
	struct buf b;
	char hash[STORE_HASH_HEX_LEN + 1];

	buf_init(&b, STORE_JOURNAL_MAX_BYTES);
	if (store_cleanup_read(path, &b) < 0) {
		buf_free(&b);
		return;
	}
	if (store_exec(s, "BEGIN IMMEDIATE") != STORE_OK) {
		buf_free(&b);
		return; /* busy: the next open retries */
	}
	for (size_t off = 0; off + STORE_HASH_HEX_LEN < b.len;
	     off += STORE_HASH_HEX_LEN + 1) {
		memcpy(hash, b.data + off, STORE_HASH_HEX_LEN);
		hash[STORE_HASH_HEX_LEN] = '\0';
		if (b.data[off + STORE_HASH_HEX_LEN] == '\n' &&
		    store_hash_valid(hash))
			store_cleanup_blob(s, hash, now);
	}
	if (store_exec(s, "COMMIT") == STORE_OK)
		unlink(path);
	else
		(void)store_exec(s, "ROLLBACK");
	buf_free(&b);
}

/* Rows left at refcount 0 by a crash before the collector ran. */
static void
store_cleanup_unreferenced(struct store *s)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT 1 FROM blobs WHERE refcount <= 0 LIMIT 1");
	if (st == NULL)
		return;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		store_blob_gc(s);
}

void
store_cleanup_run(struct store *s)
{
	char dir[STORE_PATH_MAX], path[STORE_PATH_MAX];
	int64_t now = store_now();
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int n;

	snprintf(dir, sizeof(dir), "%s/tmp", s->datadir);
	store_cleanup_unreferenced(s);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path) ||
		    lstat(path, &sb) < 0 ||
		    now - (int64_t)sb.st_mtime < STORE_ORPHAN_GRACE_SECS)
			continue;
		if (strncmp(de->d_name, STORE_JOURNAL_PREFIX,
			    sizeof(STORE_JOURNAL_PREFIX) - 1) == 0)
			store_cleanup_journal(s, path, now);
		else
			unlink(path);
	}
	closedir(d);
}
