/* Blob files: the immutable bytes of each message under
   DATADIR/blobs/ab/cdef... named by their SHA-256 (hex). A writer streams
   into DATADIR/tmp; its file and the directory entry of its content name
   are fsynced before any metadata may name the blob, so a committed
   reference always has its file. The commit thread renames a file into
   place before its fsync (store_blob_writer_place), so that the file's
   and the directory's fsync go to the device together; a file found
   under a content name may therefore be another writer's, not durable
   yet, and is never trusted: an identical blob is fsynced as its own
   file and renamed over it (the old and the new file hold the same
   bytes). Identical bytes are stored once; the blobs table counts
   references. A blob whose count drops to 0 is unlinked by
   store_blob_gc() under the write lock after the commit, so a concurrent
   transaction that wants to reference it either sees the file (and
   keeps it alive) or sees it gone (and fails cleanly).

   A writer of at most STORE_BLOB_MEM_BLOB bytes keeps them in memory
   instead (within STORE_BLOB_MEM_MAX bytes for the process): the commit
   thread's blob stage appends those to its pack (store_pack.c), and
   their rows name the pack and offset. A writer that outgrows either
   bound, or one finished outside the commit thread, makes its file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

/* Garbage-collect at most this many blobs per collection. */
#define STORE_GC_BATCH 1000
/* Writers keep up to this many bytes of a blob in memory, and all
   writers of a process up to STORE_BLOB_MEM_MAX. */
#define STORE_BLOB_MEM_BLOB (1024u * 1024)
#define STORE_BLOB_MEM_MAX (64u * 1024 * 1024)

/* Bytes held by in-memory writers of this process. */
static _Atomic size_t store_blob_mem_held;
size_t store_blob_mem_blob_max = STORE_BLOB_MEM_BLOB;

struct store_blob_writer {
	struct store *s;
	int fd;
	EVP_MD_CTX *md;
	uint64_t size;
	int err; /* sticky: the first failure */
	bool parked; /* fd closed after the last byte (fd is -1) */
	bool hashed; /* hash holds the digest (EVP final is done) */
	bool placed; /* renamed to path before its fsync */
	bool mem; /* the bytes are in buf; no temp file (yet) */
	uint8_t *buf;
	size_t cap;
	char hash[STORE_HASH_HEX_LEN + 1];
	char tmp_path[STORE_PATH_MAX];
	char path[STORE_PATH_MAX]; /* its content name, once placed */
};

bool
store_hash_valid(const char *hash)
{
	size_t i;

	for (i = 0; hash[i] != '\0'; i++) {
		if (!((hash[i] >= '0' && hash[i] <= '9') ||
		      (hash[i] >= 'a' && hash[i] <= 'f')))
			return false;
	}
	return i == STORE_HASH_HEX_LEN;
}

int
store_blob_path(const struct store *s, const char *hash, char *path,
		size_t size)
{
	int n = snprintf(path, size, "%s/blobs/%.2s/%s", s->datadir, hash,
			 hash + 2);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int
store_errno(struct store *s, const char *what, const char *path)
{
	int err = errno == ENOSPC || errno == EDQUOT ? STORE_NOSPACE
						     : STORE_ERR;

	return store_fail(s, err, "%s %s: %s", what, path, strerror(errno));
}

static int
store_fsync_dir(struct store *s, const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return store_errno(s, "open", dir);
	if (fsync(fd) < 0) {
		int ret = store_errno(s, "fsync", dir);

		close(fd);
		return ret;
	}
	close(fd);
	return STORE_OK;
}

/* The temp file of w, made now. */
static int
store_blob_writer_open(struct store_blob_writer *w)
{
	/* the loop and the commit thread both create writers */
	static _Atomic unsigned counter;
	struct timespec ts;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(w->tmp_path, sizeof(w->tmp_path), "%s/tmp/w-%ld-%u-%ld",
		     w->s->datadir, (long)getpid(), counter++,
		     (long)ts.tv_nsec);
	if (n < 0 || (size_t)n >= sizeof(w->tmp_path))
		return w->err = store_fail(w->s, STORE_ERR,
					   "temp path too long");
	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     0600);
	if (w->fd < 0)
		return w->err = store_errno(w->s, "create", w->tmp_path);
	return STORE_OK;
}

/* SHA-256, looked up once. Why: given EVP_sha256(), every
   EVP_DigestInit_ex made OpenSSL 3 fetch the algorithm from its provider
   tables again, under a lock: 2% of a worker's loop under a flood of
   APPENDs (perf, 10 sessions). Kept for the process's life. */
static EVP_MD *store_blob_sha256;
static pthread_once_t store_blob_sha256_once = PTHREAD_ONCE_INIT;

static void
store_blob_sha256_fetch(void)
{
	store_blob_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *
store_blob_md(void)
{
	(void)pthread_once(&store_blob_sha256_once, store_blob_sha256_fetch);
	return store_blob_sha256 != NULL ? store_blob_sha256 : EVP_sha256();
}

struct store_blob_writer *
store_blob_writer_new(struct store *s)
{
	struct store_blob_writer *w = xcalloc(1, sizeof(*w));

	w->s = s;
	w->fd = -1;
	w->md = EVP_MD_CTX_new();
	if (w->md == NULL || EVP_DigestInit_ex(w->md, store_blob_md(), NULL) != 1)
		w->err = store_fail(s, STORE_ERR, "sha256 init failed");
	w->mem = w->err == STORE_OK && store_blob_mem_blob_max > 0;
	if (!w->mem && w->err == STORE_OK)
		(void)store_blob_writer_open(w);
	return w;
}

static void
store_blob_writer_drop_buf(struct store_blob_writer *w)
{
	store_blob_mem_held -= w->cap;
	free(w->buf);
	w->buf = NULL;
	w->cap = 0;
	w->mem = false;
}

/* Write len bytes to w's file. */
static int
store_blob_writer_put(struct store_blob_writer *w, const uint8_t *p,
		      size_t len)
{
	while (len > 0) {
		ssize_t n = write(w->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return w->err = store_errno(w->s, "write",
						     w->tmp_path);
		}
		p += n;
		len -= (size_t)n;
	}
	return STORE_OK;
}

/* From memory to a temp file of its own. */
static int
store_blob_writer_spill(struct store_blob_writer *w)
{
	int ret;

	if (!w->mem)
		return w->err;
	ret = store_blob_writer_open(w);
	if (ret == STORE_OK)
		ret = store_blob_writer_put(w, w->buf, (size_t)w->size);
	store_blob_writer_drop_buf(w);
	return ret;
}

/* Room in memory for len more bytes, or false (then the file). */
static bool
store_blob_writer_grow(struct store_blob_writer *w, size_t len)
{
	size_t want = (size_t)w->size + len, cap = w->cap ? w->cap : 8192;

	if (want > store_blob_mem_blob_max)
		return false;
	if (want <= w->cap)
		return true;
	while (cap < want)
		cap *= 2;
	if (cap > store_blob_mem_blob_max)
		cap = store_blob_mem_blob_max;
	if (store_blob_mem_held + (cap - w->cap) > STORE_BLOB_MEM_MAX)
		return false;
	store_blob_mem_held += cap - w->cap;
	w->buf = xrealloc(w->buf, cap);
	w->cap = cap;
	return true;
}

int
store_blob_writer_write(struct store_blob_writer *w, const void *data,
			size_t len)
{
	int ret;

	if (w->err != STORE_OK)
		return w->err;
	if (EVP_DigestUpdate(w->md, data, len) != 1)
		return w->err = store_fail(w->s, STORE_ERR, "sha256 failed");
	if (w->mem && store_blob_writer_grow(w, len)) {
		memcpy(w->buf + w->size, data, len);
		w->size += len;
		return STORE_OK;
	}
	if (w->mem && store_blob_writer_spill(w) != STORE_OK)
		return w->err;
	if (w->fd < 0 && !w->parked && store_blob_writer_open(w) != STORE_OK)
		return w->err;
	ret = store_blob_writer_put(w, data, len);
	if (ret == STORE_OK)
		w->size += len;
	return ret;
}

void
store_blob_writer_abort(struct store_blob_writer **wp)
{
	struct store_blob_writer *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	if (w->fd >= 0)
		close(w->fd);
	/* a placed file stays: another writer may have renamed its own
	   (durable) copy to that name meanwhile; if unreferenced, the
	   cleanup journal has it */
	if ((w->fd >= 0 || w->parked) && !w->placed)
		unlink(w->tmp_path);
	if (w->buf != NULL)
		store_blob_writer_drop_buf(w);
	EVP_MD_CTX_free(w->md);
	free(w);
}

static void
store_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* A lowercase hex digit (hashes are validated or made by store_hex). */
static int
store_hex_digit(char c)
{
	return c >= 'a' ? c - 'a' + 10 : c - '0';
}

/* Make DATADIR/blobs/ab; a new directory entry is made durable too. */
static int
store_blob_dir(struct store *s, const char *hash, char *dir, size_t size)
{
	int n = snprintf(dir, size, "%s/blobs/%.2s", s->datadir, hash);

	if (n < 0 || (size_t)n >= size)
		return store_fail(s, STORE_ERR, "blob path too long");
	if (mkdir(dir, 0700) == 0) {
		char parent[STORE_PATH_MAX];

		snprintf(parent, sizeof(parent), "%s/blobs", s->datadir);
		return store_fsync_dir(s, parent);
	}
	if (errno != EEXIST)
		return store_errno(s, "mkdir", dir);
	return STORE_OK;
}

/* The digest, once (EVP final can be called once). */
static int
store_blob_writer_hash(struct store_blob_writer *w)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (w->hashed)
		return STORE_OK;
	if (EVP_DigestFinal_ex(w->md, md, &mdlen) != 1 || mdlen != 32)
		return store_fail(w->s, STORE_ERR, "sha256 failed");
	store_hex(md, mdlen, w->hash);
	w->hashed = true;
	return STORE_OK;
}

/* The blob directory of w's content name made, the name in w->path and
   in the cleanup journal (before any rename to it). */
static int
store_blob_name(struct store_blob_writer *w)
{
	struct store *s = w->s;
	char dir[STORE_PATH_MAX];
	int ret;

	ret = store_blob_dir(s, w->hash, dir, sizeof(dir));
	if (ret != STORE_OK)
		return ret;
	if (store_blob_path(s, w->hash, w->path, sizeof(w->path)) < 0)
		return store_fail(s, STORE_ERR, "blob path too long");
	return store_cleanup_journal_add(s, w->hash);
}

static int
store_blob_dir_index(const char *hash)
{
	return store_hex_digit(hash[0]) << 4 | store_hex_digit(hash[1]);
}

/* Rename the fsynced temp file to its content name, over a file of that
   name if there is one (identical bytes, but maybe not durable yet).
   *dir_r: the blob directory (0..255), which now needs an fsync. */
static int
store_blob_install(struct store_blob_writer *w, int *dir_r)
{
	int ret = store_blob_name(w);

	*dir_r = -1;
	if (ret != STORE_OK)
		return ret;
	if (rename(w->tmp_path, w->path) < 0)
		return store_errno(w->s, "rename", w->path);
	*dir_r = store_blob_dir_index(w->hash);
	return STORE_OK;
}

int
store_blob_writer_place(struct store *s, struct store_blob_writer *w,
			int *dir_r)
{
	int ret;

	*dir_r = -1;
	w->s = s;
	if (w->mem)
		(void)store_blob_writer_spill(w);
	if (w->err != STORE_OK)
		return w->err;
	ret = store_blob_writer_hash(w);
	if (ret == STORE_OK)
		ret = store_blob_name(w);
	if (ret != STORE_OK)
		return w->err = ret;
	/* NOREPLACE: never over a file that may be durable while ours is
	   not. Taken: seal renames over it after the fsync. */
	if (renameat2(AT_FDCWD, w->tmp_path, AT_FDCWD, w->path,
		      RENAME_NOREPLACE) == 0) {
		w->placed = true;
		*dir_r = store_blob_dir_index(w->hash);
		return STORE_OK;
	}
	if (errno == EEXIST || errno == EINVAL || errno == ENOSYS)
		return STORE_OK;
	return w->err = store_errno(s, "rename", w->path);
}

int
store_blob_writer_fd(const struct store_blob_writer *w)
{
	return w->err == STORE_OK ? w->fd : -1;
}

int
store_blob_writer_park(struct store_blob_writer *w)
{
	if (w->err != STORE_OK)
		return w->err;
	if (w->parked || w->mem) /* in memory: no descriptor to save */
		return STORE_OK;
	w->parked = true;
	if (close(w->fd) < 0) {
		w->fd = -1;
		return w->err = store_errno(w->s, "close", w->tmp_path);
	}
	w->fd = -1;
	return STORE_OK;
}

/* Where the writer's file is now. */
static const char *
store_blob_writer_file(const struct store_blob_writer *w)
{
	return w->placed ? w->path : w->tmp_path;
}

const char *
store_blob_writer_parked(const struct store_blob_writer *w)
{
	return w->err == STORE_OK && w->parked ? store_blob_writer_file(w)
					       : NULL;
}

bool
store_blob_writer_in_memory(const struct store_blob_writer *w)
{
	return w->err == STORE_OK && w->mem;
}

const uint8_t *
store_blob_writer_bytes(const struct store_blob_writer *w, size_t *len_r)
{
	static const uint8_t empty[1];

	*len_r = w->mem ? (size_t)w->size : 0;
	return w->mem && w->buf != NULL ? w->buf : empty;
}

int
store_blob_writer_pack(struct store *s, struct store_blob_writer *w,
		       char *hash_r, uint64_t *size_r, int64_t *pack_r,
		       uint64_t *off_r)
{
	size_t len;
	const uint8_t *b = store_blob_writer_bytes(w, &len);
	int ret;

	w->s = s;
	if (w->err != STORE_OK || !w->mem)
		return w->err != STORE_OK ? w->err
					  : store_fail(s, STORE_ERR,
						       "blob not in memory");
	ret = store_blob_writer_hash(w);
	if (ret == STORE_OK)
		ret = store_pack_append(s, b, len, pack_r, off_r);
	if (ret != STORE_OK)
		return w->err = ret;
	memcpy(hash_r, w->hash, sizeof(w->hash));
	*size_r = w->size;
	return STORE_OK;
}

/* fsync of a writer's file by the writer itself (synced < 0 in seal). */
static int
store_blob_writer_sync(struct store_blob_writer *w)
{
	int fd = w->fd, ret = 0;

	if (fd < 0) {
		fd = open(store_blob_writer_file(w), O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
	}
	if (fsync(fd) < 0)
		ret = -1;
	if (fd != w->fd) {
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return ret;
}

int
store_blob_writer_seal(struct store *s, struct store_blob_writer **wp,
		       int synced, char *hash_r, uint64_t *size_r, int *dir_r)
{
	struct store_blob_writer *w = *wp;
	int ret = w->err;

	*dir_r = -1;
	w->s = s;
	if (ret == STORE_OK && w->mem)
		ret = store_blob_writer_spill(w);
	if (ret != STORE_OK)
		/* keep the writer's first error as the store's error */
		(void)store_fail(s, ret, "blob write failed earlier");
	if (ret == STORE_OK && synced > 0) {
		errno = synced;
		ret = store_errno(s, "fsync", w->tmp_path);
	}
	if (ret == STORE_OK && synced < 0 && store_blob_writer_sync(w) < 0)
		ret = store_errno(s, "fsync", w->tmp_path);
	if (ret == STORE_OK && w->fd >= 0 && close(w->fd) < 0)
		ret = store_errno(s, "close", w->tmp_path);
	else if (ret == STORE_OK)
		w->fd = -1;
	if (ret == STORE_OK)
		ret = store_blob_writer_hash(w);
	if (ret == STORE_OK && !w->placed)
		ret = store_blob_install(w, dir_r);
	if (ret == STORE_OK) {
		memcpy(hash_r, w->hash, sizeof(w->hash));
		if (size_r != NULL)
			*size_r = w->size;
	}
	if (ret != STORE_OK && w->fd < 0 && !w->placed)
		unlink(w->tmp_path);
	w->parked = false; /* the file is handled: renamed or unlinked */
	store_blob_writer_abort(wp);
	return ret;
}

int
store_blob_dir_sync(struct store *s, int dir)
{
	char path[STORE_PATH_MAX];

	snprintf(path, sizeof(path), "%s/blobs/%02x", s->datadir,
		 (unsigned)dir & 0xffu);
	return store_fsync_dir(s, path);
}

int
store_blob_dir_open(struct store *s, int dir)
{
	char path[STORE_PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/blobs/%02x", s->datadir,
		 (unsigned)dir & 0xffu);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		(void)store_errno(s, "open", path);
	return fd;
}

int
store_blob_writer_finish(struct store_blob_writer **wp, char *hash_r,
			 uint64_t *size_r)
{
	struct store *s = (*wp)->s;
	int dir, ret;

	ret = store_blob_writer_seal(s, wp, -1, hash_r, size_r, &dir);
	if (ret == STORE_OK && dir >= 0)
		ret = store_blob_dir_sync(s, dir);
	return ret;
}

int
store_blob_write(struct store *s, const void *data, size_t len,
		 char *hash_r)
{
	struct store_blob_writer *w = store_blob_writer_new(s);
	int ret = store_blob_writer_write(w, data, len);

	if (ret != STORE_OK) {
		store_blob_writer_abort(&w);
		return ret;
	}
	return store_blob_writer_finish(&w, hash_r, NULL);
}

int
store_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *b = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, b + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : 1;
		got += (size_t)n;
	}
	return 0;
}

/* Blobs never change once named, so a short read means the file is
   damaged. */
int
store_blob_read_range(struct store *s, int fd, const char *path,
		      uint64_t off, size_t len, struct store_map *map_r)
{
	uint8_t *buf = xmalloc(len);
	int r = store_pread_all(fd, buf, len, off), ret = STORE_OK;

	if (r != 0) {
		ret = r < 0 ? store_errno(s, "read", path)
			    : store_fail(s, STORE_ERR, "short blob %s", path);
		free(buf);
		close(fd);
		return ret;
	}
	close(fd);
	map_r->data = buf;
	map_r->len = len;
	map_r->heap = true;
	return STORE_OK;
}

/* Where the row of hash puts its bytes: *pack_r 0 when in a file of its
   own (or there is no row). */
static int
store_blob_where(struct store *s, const char *hash, int64_t *pack_r,
		 uint64_t *off_r, uint64_t *size_r)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT pack, off, size FROM blobs"
					 " WHERE hash = ?");
	int rc;

	*pack_r = 0;
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*pack_r = sqlite3_column_int64(st, 0);
		*off_r = (uint64_t)sqlite3_column_int64(st, 1);
		*size_r = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK
						     : store_sql_err(s, rc);
}

/* A blob inside a pack; when the pack is gone (compacted away since
   the row was read), the row is read again once. */
static int
store_blob_map_packed(struct store *s, const char *hash, bool *found_r,
		      struct store_map *map_r)
{
	uint64_t off = 0, size = 0;
	int64_t pack;
	int ret;

	*found_r = false;
	for (int tries = 0; tries < 2; tries++) {
		ret = store_blob_where(s, hash, &pack, &off, &size);
		if (ret != STORE_OK || pack == 0)
			return ret;
		*found_r = true;
		ret = store_pack_read(s, pack, off, size, map_r);
		if (ret != STORE_NOTFOUND)
			return ret;
	}
	return ret;
}

int
store_blob_map(struct store *s, const char *hash, struct store_map *map_r)
{
	char path[STORE_PATH_MAX];
	struct stat st;
	bool packed;
	void *p;
	int fd, ret;

	map_r->data = NULL;
	map_r->len = 0;
	map_r->heap = false;
	map_r->lead = 0;
	if (!store_hash_valid(hash))
		return store_fail(s, STORE_INVALID, "bad blob hash");
	ret = store_blob_map_packed(s, hash, &packed, map_r);
	if (ret != STORE_OK || packed)
		return ret;
	if (store_blob_path(s, hash, path, sizeof(path)) < 0)
		return store_fail(s, STORE_ERR, "blob path too long");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return store_fail(s, STORE_NOTFOUND, "no blob %s", hash);
		return store_errno(s, "open", path);
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > SIZE_MAX) {
		close(fd);
		return store_errno(s, "fstat", path);
	}
	if (st.st_size == 0) {
		close(fd);
		return STORE_OK;
	}
	if (st.st_size <= STORE_MAP_READ_MAX)
		return store_blob_read_range(s, fd, path, 0,
					     (size_t)st.st_size, map_r);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return store_errno(s, "mmap", path);
	map_r->data = p;
	map_r->len = (size_t)st.st_size;
	return STORE_OK;
}

/* ---- the read cache ---- */

/* Direct-mapped: a new blob replaces the one in its slot. Both bounds
   keep a worker's cache under STORE_BLOB_CACHE_MAX_BYTES of data. */
#define STORE_BLOB_CACHE_SLOTS 1024
#define STORE_BLOB_CACHE_MAX_BLOB (32 * 1024)
#define STORE_BLOB_CACHE_MAX_BYTES (2 * 1024 * 1024)

struct store_blob_cache_ent {
	char hash[STORE_HASH_HEX_LEN + 1]; /* "": empty */
	uint8_t *data;
	size_t len;
};

struct store_blob_cache {
	struct store_blob_cache_ent ent[STORE_BLOB_CACHE_SLOTS];
	size_t bytes;
};

void
store_blob_cache_free(struct store *s)
{
	struct store_blob_cache *c = s->blob_cache;

	if (c == NULL)
		return;
	for (size_t i = 0; i < STORE_BLOB_CACHE_SLOTS; i++)
		free(c->ent[i].data);
	free(c);
	s->blob_cache = NULL;
}

static struct store_blob_cache_ent *
store_blob_cache_slot(struct store_blob_cache *c, const char *hash)
{
	unsigned v = 0;

	/* the hash is hex of a cryptographic digest: its first digits
	   are as good an index as any */
	for (int i = 0; i < 5; i++)
		v = v << 4 | (unsigned)(hash[i] <= '9' ? hash[i] - '0'
						       : (hash[i] | 0x20) - 'a' + 10);
	return &c->ent[v % STORE_BLOB_CACHE_SLOTS];
}

static void
store_blob_cache_put(struct store *s, const char *hash,
		     const struct store_map *map)
{
	struct store_blob_cache_ent *e;
	struct store_blob_cache *c;

	if (map->len == 0 || map->len > STORE_BLOB_CACHE_MAX_BLOB)
		return;
	if (s->blob_cache == NULL)
		s->blob_cache = xcalloc(1, sizeof(*s->blob_cache));
	c = s->blob_cache;
	e = store_blob_cache_slot(c, hash);
	if (c->bytes - e->len + map->len > STORE_BLOB_CACHE_MAX_BYTES)
		return;
	c->bytes -= e->len;
	free(e->data);
	e->data = xmalloc(map->len);
	memcpy(e->data, map->data, map->len);
	e->len = map->len;
	c->bytes += map->len;
	memcpy(e->hash, hash, sizeof(e->hash));
}

int
store_blob_map_cached(struct store *s, const char *hash,
		      struct store_map *map_r)
{
	const struct store_blob_cache_ent *e;
	uint8_t *copy;
	int ret;

	if (s->blob_cache != NULL && store_hash_valid(hash)) {
		e = store_blob_cache_slot(s->blob_cache, hash);
		if (e->len > 0 && memcmp(e->hash, hash, sizeof(e->hash)) == 0) {
			/* a copy: the caller owns and frees it, and the
			   slot may be replaced while it is in use */
			copy = xmalloc(e->len);
			memcpy(copy, e->data, e->len);
			map_r->data = copy;
			map_r->len = e->len;
			map_r->heap = true;
			map_r->lead = 0;
			return STORE_OK;
		}
	}
	ret = store_blob_map(s, hash, map_r);
	if (ret == STORE_OK)
		store_blob_cache_put(s, hash, map_r);
	return ret;
}

void
store_blob_unmap(struct store_map *map)
{
	if (map->data != NULL && map->heap)
		free((void *)map->data);
	else if (map->data != NULL)
		munmap((void *)(map->data - map->lead), map->len + map->lead);
	map->data = NULL;
	map->len = 0;
	map->heap = false;
	map->lead = 0;
}

/* ---- references (inside write transactions) ---- */

static int
store_blob_file_size(struct store *s, const char *hash, uint64_t *size_r)
{
	char path[STORE_PATH_MAX];
	struct stat st;

	if (store_blob_path(s, hash, path, sizeof(path)) < 0)
		return store_fail(s, STORE_ERR, "blob path too long");
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return store_fail(s, STORE_NOTFOUND,
					  "blob %s has no file", hash);
		return store_errno(s, "stat", path);
	}
	*size_r = (uint64_t)st.st_size;
	return STORE_OK;
}

/* The pack place of hash among the blobs of the job that runs (the
   commit thread's, store_commit.c), or false. */
static bool
store_blob_ahead_pack(const struct store *s, const char *hash,
		      int64_t *pack_r, uint64_t *off_r, uint64_t *size_r)
{
	for (size_t i = 0; i < s->ahead_n; i++) {
		const struct store_commit_blob *b = &s->ahead[i];

		if (b->pack != 0 && strcmp(b->hash, hash) == 0) {
			*pack_r = b->pack;
			*off_r = b->off;
			*size_r = b->size;
			return true;
		}
	}
	return false;
}

/* The row of hash to the job's pack copy (a new row, or one whose file
   is gone). */
static int
store_blob_row_packed(struct store *s, const char *hash, int64_t row_id,
		      int64_t pack, uint64_t off, uint64_t size,
		      int64_t *id_r)
{
	sqlite3_stmt *st;
	int ret;

	if (row_id != 0)
		st = store_stmt(s, "UPDATE blobs SET pack = ?, off = ?,"
				   " size = ? WHERE id = ?");
	else
		st = store_stmt(s, "INSERT INTO blobs(pack, off, size, hash,"
				   " refcount) VALUES (?, ?, ?, ?, 0)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, pack);
	sqlite3_bind_int64(st, 2, (int64_t)off);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	if (row_id != 0)
		sqlite3_bind_int64(st, 4, row_id);
	else
		sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK)
		*id_r = row_id != 0 ? row_id : sqlite3_last_insert_rowid(s->db);
	return ret;
}

int
store_blob_row(struct store *s, const char *hash, int64_t *id_r,
	       uint64_t *size_r)
{
	sqlite3_stmt *st;
	int rc, ret;
	int64_t refcount = 0, row_id = 0, pack = 0;
	uint64_t size, off;
	bool in_pack = false;

	if (!store_hash_valid(hash))
		return store_fail(s, STORE_INVALID, "bad blob hash");
	st = store_stmt(s, "SELECT id, size, refcount, pack FROM blobs"
			   " WHERE hash = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_r = row_id = sqlite3_column_int64(st, 0);
		*size_r = (uint64_t)sqlite3_column_int64(st, 1);
		refcount = sqlite3_column_int64(st, 2);
		in_pack = sqlite3_column_type(st, 3) != SQLITE_NULL;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	/* a pack's bytes stay while their row exists (store_pack.c) */
	if (rc == SQLITE_ROW && (refcount > 0 || in_pack))
		return STORE_OK;
	/* Unreferenced: the file may be gone (or never was). A new blob
	   of the job in a pack needs no file. */
	ret = rc == SQLITE_ROW ? store_blob_file_size(s, hash, &size)
			       : STORE_NOTFOUND;
	if (ret == STORE_NOTFOUND &&
	    store_blob_ahead_pack(s, hash, &pack, &off, &size)) {
		*size_r = size;
		return store_blob_row_packed(s, hash, row_id, pack, off, size,
					     id_r);
	}
	if (rc != SQLITE_ROW && ret == STORE_NOTFOUND)
		ret = store_blob_file_size(s, hash, &size);
	if (ret != STORE_OK || rc == SQLITE_ROW)
		return ret;
	st = store_stmt(s, "INSERT INTO blobs(hash, size, refcount)"
			   " VALUES (?, ?, 0)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	ret = store_stmt_exec(s, st);
	if (ret != STORE_OK)
		return ret;
	*id_r = sqlite3_last_insert_rowid(s->db);
	*size_r = size;
	return STORE_OK;
}

int
store_blob_ref(struct store *s, int64_t blob_id, int64_t delta)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "UPDATE blobs SET refcount = refcount + ?"
			   " WHERE id = ? RETURNING refcount");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, delta);
	sqlite3_bind_int64(st, 2, blob_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) <= 0)
		s->gc_needed = true;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_ERR, "no blob row %lld",
				  (long long)blob_id);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

/* ---- garbage collection ---- */

struct store_gc_item {
	int64_t id;
	int64_t pack; /* 0: a file to unlink; else marked for
			 store_pack_reclaim */
	char hash[STORE_HASH_HEX_LEN + 1];
};

static size_t
store_blob_gc_collect(struct store *s, struct store_gc_item *items)
{
	sqlite3_stmt *st;
	size_t n = 0;

	st = store_stmt(s, "SELECT id, hash, pack FROM blobs"
			   " WHERE refcount <= 0 LIMIT 1000");
	if (st == NULL)
		return 0;
	while (n < STORE_GC_BATCH && sqlite3_step(st) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 1);

		if (h == NULL || !store_hash_valid(h))
			continue;
		items[n].id = sqlite3_column_int64(st, 0);
		items[n].pack = sqlite3_column_int64(st, 2); /* NULL: 0 */
		memcpy(items[n].hash, h, STORE_HASH_HEX_LEN + 1);
		n++;
	}
	sqlite3_reset(st);
	return n;
}

static void
store_blob_gc_one(struct store *s, const struct store_gc_item *item)
{
	char path[STORE_PATH_MAX];
	sqlite3_stmt *st;

	if (store_blob_path(s, item->hash, path, sizeof(path)) < 0)
		return;
	if (item->pack == 0 && unlink(path) < 0 && errno != ENOENT)
		return;
	st = store_stmt(s, "DELETE FROM blobs WHERE id = ? AND refcount <= 0");
	if (st == NULL)
		return;
	sqlite3_bind_int64(st, 1, item->id);
	/* A foreign key error here would mean a refcount bug: the row stays
	   and its (already unlinked) file is not referenced anyway. */
	if (store_stmt_exec(s, st) != STORE_OK || sqlite3_changes(s->db) == 0)
		return;
	s->blobs_collected = true; /* its index rows: fts_gone */
	if (item->pack == 0)
		return;
	/* its bytes are dead now: the pack is worth a look */
	st = store_stmt(s, "INSERT OR IGNORE INTO pack_gc(pack) VALUES (?)");
	if (st == NULL)
		return;
	sqlite3_bind_int64(st, 1, item->pack);
	(void)store_stmt_exec(s, st);
}

void
store_blob_gc(struct store *s)
{
	struct store_gc_item *items;
	size_t n;

	/* Losing this transaction in a power cut is harmless (the rows say
	   refcount 0, the files are gone or go next time), so it does not
	   need its own fsync. */
	if (store_exec(s, "PRAGMA synchronous=NORMAL") != STORE_OK)
		return;
	items = xreallocarray(NULL, STORE_GC_BATCH, sizeof(*items));
	if (store_exec(s, "BEGIN IMMEDIATE") == STORE_OK) {
		n = store_blob_gc_collect(s, items);
		for (size_t i = 0; i < n; i++)
			store_blob_gc_one(s, &items[i]);
		if (store_exec(s, "COMMIT") != STORE_OK)
			(void)store_exec(s, "ROLLBACK");
	}
	free(items);
	(void)store_exec(s, "PRAGMA synchronous=FULL");
}
