/* Pack files: the bytes of small blobs, appended one after another to
   DATADIR/packs/<16 hex digits>, where a blobs row finds them by (pack,
   off, size). Creating a file per message costs an inode, a rename and
   a directory fsync each; an append to an open pack costs a write, and
   a group of them one fsync (docs/performance.md, section 1j).

   Each writer (the blob stage of a process, the index thread when it
   compacts) appends only to its own pack, which it holds locked with
   flock(LOCK_EX) while it is open. Bytes are fsynced (with the packs
   directory, when the file is new) before any row may name them, so a
   committed row always has its bytes; bytes of a batch that never
   committed are dead space. A pack is never written again once its
   writer closed it (at STORE_PACK_ROLL_BYTES, at exit, or after a
   failed write or fsync).

   Reclaiming (store_pack_reclaim, on the index thread) looks at every
   pack once per process, then at those that lost rows (store_blob_gc
   marks them in pack_gc) and those waiting out their grace: a closed pack
   (its lock can be taken) whose rows are gone is unlinked once it was
   seen empty STORE_PACK_EMPTY_GRACE_SECS ago, so a reader that looked up
   a row just before the last one moved away still finds the file; a
   closed pack with more dead bytes than live ones is compacted: its
   live blobs are copied to the reclaimer's own pack, fsynced, and their
   rows moved there in one transaction. A reader that finds a pack gone
   looks its row up again (store_blob_map). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

/* A writer starts a new pack once its pack holds this many bytes. */
#define STORE_PACK_ROLL_BYTES (64u * 1024 * 1024)
uint64_t store_pack_roll_bytes = STORE_PACK_ROLL_BYTES;
/* The writer makes its pack longer by this much at a time, in zeros,
   ahead of the bytes: an append then fills blocks the file already has,
   so the fdatasync of a round writes the data and not the inode (whose
   size did not change) too, one device write less in a row. */
#define STORE_PACK_GROW_BYTES (1024u * 1024)
/* Compaction copies at most this many rows and bytes per transaction. */
#define STORE_PACK_MOVE_ROWS 2048
#define STORE_PACK_MOVE_BYTES (16u * 1024 * 1024)
/* A closed pack is compacted when at least this many of its bytes are
   dead and they are more than its live bytes. */
#define STORE_PACK_DEAD_MIN (1u * 1024 * 1024)
#define STORE_PACK_EMPTY_GRACE_SECS 30
int store_pack_empty_grace_s = STORE_PACK_EMPTY_GRACE_SECS;
/* Empty packs remembered between reclaim passes. */
#define STORE_PACK_EMPTY_MAX 64

struct store_pack_empty {
	int64_t id;
	int64_t since; /* CLOCK_MONOTONIC seconds */
};

/* A pack the blob stage stopped appending to, still locked until the
   rows of its last round are committed (store_pack_hold). */
#define STORE_PACK_RETIRED_MAX 8

struct store_pack_retired {
	int fd;
	uint64_t tag;
};

struct store_pack {
	int fd; /* -1: none open */
	int64_t id;
	uint64_t end;  /* the bytes appended end here */
	uint64_t size; /* the file's size: end and zeros after it */
	bool fresh;  /* its directory entry is not fsynced yet */
	bool dirty;  /* bytes appended since the last fsync */
	bool broken; /* a write failed: this round's bytes are not trusted */
	/* the blob stage's (store_pack_hold): packs rolled over wait in
	   retired until the jobs before tag are committed */
	bool hold;
	uint64_t tag;
	struct store_pack_retired retired[STORE_PACK_RETIRED_MAX];
	size_t retired_count;
	struct store_pack_empty empty[STORE_PACK_EMPTY_MAX];
	size_t empty_count;
	bool listed; /* a reclaim pass looked at every pack */
};

static int64_t
store_pack_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static int
store_pack_path(const struct store *s, int64_t id, char *path, size_t size)
{
	int n = snprintf(path, size, "%s/packs/%016" PRIx64, s->datadir,
			 (uint64_t)id);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int
store_pack_errno(struct store *s, const char *what, int64_t id)
{
	int err = errno == ENOSPC || errno == EDQUOT ? STORE_NOSPACE
						     : STORE_ERR;

	return store_fail(s, err, "%s pack %016" PRIx64 ": %s", what,
			  (uint64_t)id, strerror(errno));
}

static struct store_pack *
store_pack_get(struct store *s)
{
	if (s->pack == NULL) {
		s->pack = xcalloc(1, sizeof(*s->pack));
		s->pack->fd = -1;
	}
	return s->pack;
}

/* A new pack of this writer's own: a name no file has (the clock in
   microseconds, then the next numbers), created and locked. */
static int
store_pack_create(struct store *s, struct store_pack *p)
{
	char path[STORE_PATH_MAX];
	struct timespec ts;
	int64_t id;

	clock_gettime(CLOCK_REALTIME, &ts);
	id = ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000) & INT64_MAX;
	for (int tries = 0; tries < 1000; tries++, id++) {
		if (store_pack_path(s, id, path, sizeof(path)) < 0)
			return store_fail(s, STORE_ERR, "pack path too long");
		p->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			     0600);
		if (p->fd < 0 && errno == EEXIST)
			continue;
		if (p->fd < 0)
			return store_pack_errno(s, "create", id);
		/* new and named only here: nobody else can hold it */
		if (flock(p->fd, LOCK_EX | LOCK_NB) < 0) {
			int ret = store_pack_errno(s, "lock", id);

			close(p->fd);
			p->fd = -1;
			return ret;
		}
		p->id = id;
		p->end = p->size = 0;
		p->fresh = true;
		p->dirty = false;
		p->broken = false;
		return STORE_OK;
	}
	return store_fail(s, STORE_ERR, "no free pack name");
}

/* No more appends: the zeros past the end go (not fsynced: a tail of
   zeros after a crash is dead space, like any). */
static void
store_pack_trim(struct store_pack *p)
{
	if (p->size > p->end && ftruncate(p->fd, (off_t)p->end) == 0)
		p->size = p->end;
}

void
store_pack_close(struct store *s)
{
	struct store_pack *p = s->pack;

	if (p == NULL)
		return;
	for (size_t i = 0; i < p->retired_count; i++)
		close(p->retired[i].fd);
	p->retired_count = 0;
	if (p->fd < 0)
		return;
	store_pack_trim(p);
	close(p->fd); /* and its lock */
	p->fd = -1;
}

void
store_pack_hold(struct store *s, uint64_t tag, uint64_t committed)
{
	struct store_pack *p = store_pack_get(s);
	size_t k = 0;

	p->hold = true;
	p->tag = tag;
	for (size_t i = 0; i < p->retired_count; i++) {
		if (p->retired[i].tag <= committed)
			close(p->retired[i].fd);
		else
			p->retired[k++] = p->retired[i];
	}
	p->retired_count = k;
}

/* Stop appending to the open pack: closed now, or, for the blob stage,
   kept locked until the rows of its bytes are committed (a reclaimer
   must not take a pack for empty while rows naming it are on their
   way). False when it has to stay the open pack a while longer. */
static bool
store_pack_retire(struct store_pack *p)
{
	store_pack_trim(p);
	if (!p->hold) {
		close(p->fd);
	} else if (p->retired_count < STORE_PACK_RETIRED_MAX) {
		p->retired[p->retired_count++] =
			(struct store_pack_retired){ p->fd, p->tag };
	} else {
		return false;
	}
	p->fd = -1;
	return true;
}

/* After a failed write or fsync: nothing of this round may be named by
   a row (its jobs fail), so the pack is closed at once. */
static void
store_pack_drop(struct store_pack *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->broken = false;
}

/* pwrite len bytes at off whole: 0, or -1 with errno (EIO when the
   file took none). */
static int
store_pack_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *b = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, b + done, len - done,
				   (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Zeros from the file's end to past p->end + len, a whole number of
   STORE_PACK_GROW_BYTES (written, not fallocated: an extent reserved
   but unwritten changes the inode at its first write). */
static int
store_pack_grow(struct store *s, struct store_pack *p, size_t len)
{
	static const uint8_t zeros[64 * 1024];
	uint64_t want = p->end + len, to;

	to = (want + STORE_PACK_GROW_BYTES - 1) / STORE_PACK_GROW_BYTES *
	     STORE_PACK_GROW_BYTES;
	while (p->size < to) {
		size_t k = to - p->size < sizeof(zeros) ? (size_t)(to - p->size)
							: sizeof(zeros);

		if (store_pack_pwrite_all(p->fd, zeros, k, p->size) < 0) {
			p->broken = true;
			return store_pack_errno(s, "grow", p->id);
		}
		p->size += k;
	}
	return STORE_OK;
}

int
store_pack_append(struct store *s, const void *data, size_t len,
		  int64_t *id_r, uint64_t *off_r)
{
	struct store_pack *p = store_pack_get(s);
	int ret;

	if (p->broken)
		return store_fail(s, STORE_ERR, "pack %016" PRIx64
				  " failed a write", (uint64_t)p->id);
	/* a pack with bytes not yet fsynced is not rolled over: its
	   writer fsyncs it next, by the fd it holds */
	if (p->fd >= 0 && !p->dirty && p->end > 0 &&
	    p->end + len > store_pack_roll_bytes)
		(void)store_pack_retire(p);
	if (p->fd < 0) {
		ret = store_pack_create(s, p);
		if (ret != STORE_OK)
			return ret;
	}
	if (p->end + len > p->size) {
		ret = store_pack_grow(s, p, len);
		if (ret != STORE_OK)
			return ret;
	}
	if (store_pack_pwrite_all(p->fd, data, len, p->end) < 0) {
		ret = store_pack_errno(s, "write", p->id);
		/* what the file holds past end is unknown now */
		p->broken = true;
		return ret;
	}
	*id_r = p->id;
	*off_r = p->end;
	p->end += len;
	p->dirty = true;
	return STORE_OK;
}

int
store_pack_sync_fds(struct store *s, int *fd_r, int *dir_fd_r)
{
	struct store_pack *p = s->pack;
	char path[STORE_PATH_MAX];

	*fd_r = *dir_fd_r = -1;
	if (p != NULL && p->broken)
		return store_fail(s, STORE_ERR, "pack %016" PRIx64
				  " failed a write", (uint64_t)p->id);
	if (p == NULL || p->fd < 0 || !p->dirty)
		return STORE_OK;
	*fd_r = p->fd;
	if (!p->fresh)
		return STORE_OK;
	snprintf(path, sizeof(path), "%s/packs", s->datadir);
	*dir_fd_r = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dir_fd_r < 0)
		return store_fail(s, STORE_ERR, "open %s: %s", path,
				  strerror(errno));
	return STORE_OK;
}

void
store_pack_synced(struct store *s, int err)
{
	struct store_pack *p = s->pack;

	if (p == NULL || p->fd < 0)
		return;
	if (err != 0 || p->broken) {
		/* after a failed fsync the page cache cannot be trusted to
		   hold what was written: nothing more goes to this pack */
		store_pack_drop(p);
		return;
	}
	p->dirty = false;
	p->fresh = false;
}

/* fsync the pack (and the directory, when new) on this thread. */
static int
store_pack_sync(struct store *s)
{
	int fd, dir_fd, ret = store_pack_sync_fds(s, &fd, &dir_fd), err = 0;

	if (ret != STORE_OK) {
		store_pack_synced(s, EIO);
		return ret;
	}
	if (fd >= 0 && fdatasync(fd) < 0)
		err = errno != 0 ? errno : EIO;
	if (err == 0 && dir_fd >= 0 && fsync(dir_fd) < 0)
		err = errno != 0 ? errno : EIO;
	if (dir_fd >= 0)
		close(dir_fd);
	store_pack_synced(s, err);
	if (err != 0)
		return store_fail(s, err == ENOSPC ? STORE_NOSPACE : STORE_ERR,
				  "fsync pack: %s", strerror(err));
	return STORE_OK;
}

/* ---- reading ---- */

int
store_pack_read(struct store *s, int64_t id, uint64_t off, uint64_t len,
		struct store_map *map_r)
{
	char path[STORE_PATH_MAX];
	long page = sysconf(_SC_PAGESIZE);
	uint64_t lead;
	void *m;
	int fd;

	if (store_pack_path(s, id, path, sizeof(path)) < 0)
		return store_fail(s, STORE_ERR, "pack path too long");
	if (len > SIZE_MAX || off > UINT64_MAX - len)
		return store_fail(s, STORE_ERR, "bad pack range");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return store_fail(s, STORE_NOTFOUND, "no pack %016" PRIx64,
				  (uint64_t)id);
	if (fd < 0)
		return store_pack_errno(s, "open", id);
	if (len == 0) {
		close(fd);
		return STORE_OK;
	}
	if (len <= STORE_MAP_READ_MAX)
		return store_blob_read_range(s, fd, path, off, (size_t)len,
					     map_r);
	lead = off % (uint64_t)(page > 0 ? page : 4096);
	m = mmap(NULL, (size_t)(len + lead), PROT_READ, MAP_PRIVATE, fd,
		 (off_t)(off - lead));
	close(fd);
	if (m == MAP_FAILED)
		return store_pack_errno(s, "mmap", id);
	map_r->data = (const uint8_t *)m + lead;
	map_r->len = (size_t)len;
	map_r->lead = (size_t)lead;
	return STORE_OK;
}

/* ---- reclaiming ---- */

/* The live rows of pack id: their count and bytes. */
static int
store_pack_live(struct store *s, int64_t id, int64_t *rows_r,
		uint64_t *bytes_r)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT count(*), total(size)"
					 " FROM blobs WHERE pack = ?");
	int rc;

	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*rows_r = sqlite3_column_int64(st, 0);
		*bytes_r = (uint64_t)sqlite3_column_double(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

struct store_pack_move {
	int64_t blob_id;
	uint64_t off, size; /* in the old pack */
	int64_t to;
	uint64_t to_off;
};

/* Up to STORE_PACK_MOVE_ROWS rows of pack id from offset after on. */
static size_t
store_pack_move_list(struct store *s, int64_t id, uint64_t after,
		     struct store_pack_move *mv)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT id, off, size FROM blobs"
					 " WHERE pack = ? AND off >= ?"
					 " ORDER BY off LIMIT ?");
	uint64_t bytes = 0;
	size_t n = 0;

	if (st == NULL)
		return 0;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)after);
	sqlite3_bind_int(st, 3, STORE_PACK_MOVE_ROWS);
	while (n < STORE_PACK_MOVE_ROWS && bytes < STORE_PACK_MOVE_BYTES &&
	       sqlite3_step(st) == SQLITE_ROW) {
		mv[n].blob_id = sqlite3_column_int64(st, 0);
		mv[n].off = (uint64_t)sqlite3_column_int64(st, 1);
		mv[n].size = (uint64_t)sqlite3_column_int64(st, 2);
		bytes += mv[n++].size;
	}
	sqlite3_reset(st);
	return n;
}

/* Copy the blobs of mv out of the pack open as fd into this store's own
   pack, and fsync that. */
static int
store_pack_copy(struct store *s, int fd, int64_t id,
		struct store_pack_move *mv, size_t n)
{
	uint8_t *buf = NULL;
	size_t cap = 0;
	int ret = STORE_OK;

	for (size_t i = 0; i < n && ret == STORE_OK; i++) {
		int r;

		if (mv[i].size > cap) {
			cap = (size_t)mv[i].size;
			buf = xrealloc(buf, cap);
		}
		r = store_pread_all(fd, buf, (size_t)mv[i].size, mv[i].off);
		if (r != 0)
			ret = r < 0 ? store_pack_errno(s, "read", id)
				    : store_fail(s, STORE_ERR,
						 "short pack %016" PRIx64,
						 (uint64_t)id);
		if (ret == STORE_OK)
			ret = store_pack_append(s, buf, (size_t)mv[i].size,
						&mv[i].to, &mv[i].to_off);
	}
	free(buf);
	return ret == STORE_OK ? store_pack_sync(s) : ret;
}

/* The rows of mv to their copies, in one transaction (a row collected
   meanwhile is not moved; its copy is dead space). */
static int
store_pack_move_rows(struct store *s, int64_t id,
		     const struct store_pack_move *mv, size_t n)
{
	sqlite3_stmt *st;
	int ret = store_exec(s, "BEGIN IMMEDIATE");

	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "UPDATE blobs SET pack = ?, off = ?"
			   " WHERE id = ? AND pack = ? AND off = ?");
	if (st == NULL)
		ret = STORE_ERR;
	for (size_t i = 0; i < n && ret == STORE_OK; i++) {
		sqlite3_bind_int64(st, 1, mv[i].to);
		sqlite3_bind_int64(st, 2, (int64_t)mv[i].to_off);
		sqlite3_bind_int64(st, 3, mv[i].blob_id);
		sqlite3_bind_int64(st, 4, id);
		sqlite3_bind_int64(st, 5, (int64_t)mv[i].off);
		ret = store_stmt_exec(s, st);
	}
	if (ret == STORE_OK)
		ret = store_exec(s, "COMMIT");
	if (ret != STORE_OK)
		(void)store_exec(s, "ROLLBACK");
	return ret;
}

/* Every live blob of pack id (open as fd) to this store's own pack. */
static int
store_pack_compact(struct store *s, int64_t id, int fd)
{
	struct store_pack_move *mv =
		xreallocarray(NULL, STORE_PACK_MOVE_ROWS, sizeof(*mv));
	uint64_t after = 0;
	int ret = STORE_OK;
	size_t n;

	while (ret == STORE_OK &&
	       (n = store_pack_move_list(s, id, after, mv)) > 0) {
		ret = store_pack_copy(s, fd, id, mv, n);
		if (ret == STORE_OK)
			ret = store_pack_move_rows(s, id, mv, n);
		after = mv[n - 1].off + 1;
	}
	free(mv);
	return ret;
}

/* Whether pack id was seen empty long enough ago to be unlinked; it is
   remembered as empty from now otherwise. */
static bool
store_pack_empty_long(struct store_pack *p, int64_t id)
{
	int64_t now = store_pack_now_s();

	for (size_t i = 0; i < p->empty_count; i++) {
		if (p->empty[i].id == id)
			return now - p->empty[i].since >=
			       store_pack_empty_grace_s;
	}
	if (p->empty_count < STORE_PACK_EMPTY_MAX)
		p->empty[p->empty_count++] =
			(struct store_pack_empty){ id, now };
	return store_pack_empty_grace_s <= 0;
}

static void
store_pack_empty_forget(struct store_pack *p, int64_t id)
{
	for (size_t i = 0; i < p->empty_count; i++) {
		if (p->empty[i].id == id) {
			p->empty[i] = p->empty[--p->empty_count];
			return;
		}
	}
}

/* One pack: left alone while a writer holds it (*held_r); unlinked when
   empty long enough; compacted when mostly dead. */
static int
store_pack_reclaim_one(struct store *s, int64_t id, bool *held_r)
{
	struct store_pack *p = store_pack_get(s);
	char path[STORE_PATH_MAX];
	uint64_t live = 0;
	int64_t rows = 0;
	struct stat sb;
	int fd, ret;

	*held_r = true;
	if ((p->fd >= 0 && p->id == id) ||
	    store_pack_path(s, id, path, sizeof(path)) < 0)
		return STORE_OK;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*held_r = false;
		store_pack_empty_forget(p, id);
		return STORE_OK;
	}
	/* held by its writer (this process's own retired ones too: a lock
	   of another open file), or by another process's reclaimer */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &sb) < 0) {
		close(fd);
		return STORE_OK;
	}
	*held_r = false;
	ret = store_pack_live(s, id, &rows, &live);
	if (ret == STORE_OK && rows > 0) {
		uint64_t size = (uint64_t)sb.st_size,
			 dead = size > live ? size - live : 0;

		store_pack_empty_forget(p, id);
		if (dead >= STORE_PACK_DEAD_MIN && dead > live)
			ret = store_pack_compact(s, id, fd);
		/* emptied now: from here on it waits out its grace */
		if (ret == STORE_OK)
			ret = store_pack_live(s, id, &rows, &live);
	}
	if (ret == STORE_OK && rows == 0 && store_pack_empty_long(p, id) &&
	    (unlink(path) == 0 || errno == ENOENT))
		store_pack_empty_forget(p, id);
	close(fd);
	return ret;
}

/* A pack's file name: 16 lowercase hex digits. */
static bool
store_pack_name(const char *name, int64_t *id_r)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];

		if (i >= 16 || !((c >= '0' && c <= '9') ||
				 (c >= 'a' && c <= 'f')))
			return false;
		v = v << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	*id_r = (int64_t)(v & INT64_MAX);
	return i == 16 && v <= INT64_MAX;
}

struct store_pack_ids {
	int64_t *v;
	size_t n, cap;
};

static void
store_pack_ids_add(struct store_pack_ids *ids, int64_t id)
{
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 16;
		ids->v = xreallocarray(ids->v, ids->cap, sizeof(*ids->v));
	}
	ids->v[ids->n++] = id;
}

/* Every pack in DATADIR/packs. */
static int
store_pack_list(struct store *s, struct store_pack_ids *ids)
{
	char path[STORE_PATH_MAX];
	struct dirent *e;
	int64_t id;
	DIR *d;

	snprintf(path, sizeof(path), "%s/packs", s->datadir);
	d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? STORE_OK
				       : store_fail(s, STORE_ERR, "opendir %s: %s",
						    path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (store_pack_name(e->d_name, &id))
			store_pack_ids_add(ids, id);
	}
	closedir(d);
	return STORE_OK;
}

/* The packs that lost rows since the last pass (pack_gc, filled by
   store_blob_gc), taken out of the table. */
static int
store_pack_marks_take(struct store *s, struct store_pack_ids *ids)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT 1 FROM pack_gc LIMIT 1");
	int rc, ret;

	if (st == NULL)
		return STORE_ERR;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return STORE_OK;
	if (rc != SQLITE_ROW)
		return store_sql_err(s, rc);
	ret = store_exec(s, "BEGIN IMMEDIATE");
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "DELETE FROM pack_gc RETURNING pack");
	if (st == NULL)
		ret = STORE_ERR;
	while (st != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW)
		store_pack_ids_add(ids, sqlite3_column_int64(st, 0));
	if (st != NULL) {
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			ret = store_sql_err(s, rc);
	}
	if (ret == STORE_OK)
		ret = store_exec(s, "COMMIT");
	if (ret != STORE_OK) {
		(void)store_exec(s, "ROLLBACK");
		ids->n = 0;
	}
	return ret;
}

/* Marks back for the packs a writer still held. */
static void
store_pack_marks_put(struct store *s, const struct store_pack_ids *ids)
{
	sqlite3_stmt *st;

	if (ids->n == 0 || store_exec(s, "BEGIN IMMEDIATE") != STORE_OK)
		return;
	st = store_stmt(s, "INSERT OR IGNORE INTO pack_gc(pack) VALUES (?)");
	for (size_t i = 0; st != NULL && i < ids->n; i++) {
		sqlite3_bind_int64(st, 1, ids->v[i]);
		if (store_stmt_exec(s, st) != STORE_OK)
			break;
	}
	if (store_exec(s, "COMMIT") != STORE_OK)
		(void)store_exec(s, "ROLLBACK");
}

int
store_pack_reclaim(struct store *s)
{
	struct store_pack *p = store_pack_get(s);
	struct store_pack_ids ids = { 0 }, again = { 0 };
	size_t marks;
	bool held;
	int ret;

	/* the first pass of a process looks at every pack (one left by a
	   crash lost no row: it never had any); later ones at those that
	   lost rows and those waiting out their grace */
	ret = store_pack_marks_take(s, &ids);
	marks = ids.n;
	if (ret == STORE_OK && !p->listed)
		ret = store_pack_list(s, &ids);
	for (size_t i = 0; i < p->empty_count; i++)
		store_pack_ids_add(&ids, p->empty[i].id);
	for (size_t i = 0; i < ids.n && ret == STORE_OK; i++) {
		ret = store_pack_reclaim_one(s, ids.v[i], &held);
		if (held && i < marks)
			store_pack_ids_add(&again, ids.v[i]);
	}
	if (ret == STORE_OK)
		p->listed = true;
	store_pack_marks_put(s, &again);
	free(again.v);
	free(ids.v);
	return ret;
}

bool
store_pack_pending(const struct store *s)
{
	return s->pack != NULL && s->pack->empty_count > 0;
}

void
store_pack_free(struct store *s)
{
	store_pack_close(s);
	free(s->pack);
	s->pack = NULL;
}
