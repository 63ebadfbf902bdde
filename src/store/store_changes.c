/* Change generations shared by every process of one data directory, so
   that an IMAP session can tell without a query that its mailbox has
   not changed since it last looked (imap_session_sync runs after every
   command: without this, one SQLite read transaction per command).

   run/changes is a small file every store maps MAP_SHARED: a global
   counter and STORE_CHANGES_SLOTS counters, a mailbox hashed to one.
   Each connection has a temporary trigger on the mailboxes table (every
   change a sync can see updates the mailbox's row: uidnext, the
   HIGHESTMODSEQ that every message change raises, recent_uid, the row's
   deletion) that calls tern_changed(id); the ids are kept until the
   transaction's end. The WAL hook, which SQLite calls after a commit is
   in the log and its write lock released, bumps their counters; a
   rollback forgets them. So a reader that reads a counter before its
   query and finds it unchanged later knows its query's answer still
   holds: a commit it did not see bumps the counter after it is visible.

   When a connection cannot say which mailboxes changed (its trigger is
   missing, too many in one transaction) it bumps the global counter,
   which every reader compares too. Collisions only cost a query.
   Writers that bypass tern (the sqlite3 shell) are not seen; readers
   bound that by querying at least once a second anyway (the caller's
   rule, see imap_session_sync). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

#define STORE_CHANGES_SLOTS 4096
/* SQLite's own default for wal_autocheckpoint */
#define STORE_CHECKPOINT_FRAMES 1000

struct store_changes_map {
	uint64_t magic;
	uint64_t global;
	uint64_t slot[STORE_CHANGES_SLOTS];
};

#define STORE_CHANGES_MAGIC 0x31474e4843524554ull /* "TERCHNG1" */

static uint64_t *
store_changes_slot(struct store_changes_map *m, int64_t mailbox_id)
{
	uint64_t h = (uint64_t)mailbox_id * 0x9e3779b97f4a7c15ull;

	return &m->slot[(h >> 32) % STORE_CHANGES_SLOTS];
}

static void
store_changes_bump(uint64_t *p)
{
	__atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
}

/* tern_changed(mailbox_id), from the trigger */
static void
store_changes_sql_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct store *s = sqlite3_user_data(ctx);
	int64_t id = sqlite3_value_int64(argv[0]);
	size_t i;

	for (i = 0; i < s->changed_count; i++)
		if (s->changed[i] == id)
			return;
	if (s->changed_count == STORE_CHANGED_MAX)
		s->changed_all = true;
	else
		s->changed[s->changed_count++] = id;
}

static void
store_changes_publish(struct store *s)
{
	struct store_changes_map *m = s->changes;
	size_t i;

	if (m != NULL) {
		if (s->changed_all || !s->changes_traced)
			store_changes_bump(&m->global);
		for (i = 0; i < s->changed_count; i++)
			store_changes_bump(store_changes_slot(m, s->changed[i]));
	}
	s->changed_count = 0;
	s->changed_all = false;
}

/* The WAL to disk: every frame written so far, this commit's last. */
static void
store_changes_wal_sync(struct store *s)
{
	char path[STORE_PATH_MAX];

	if (s->wal_fd < 0) {
		snprintf(path, sizeof(path), "%s/tern.db-wal", s->datadir);
		/* no POSIX lock is ever taken on the WAL itself (SQLite
		   locks tern.db and its -shm), so this descriptor's close
		   drops none */
		s->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (s->wal_fd < 0 || fdatasync(s->wal_fd) < 0) {
		if (s->wal_sync_err == 0)
			s->wal_sync_err = errno != 0 ? errno : EIO;
	}
}

static int
store_changes_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *s = arg;

	/* before anything says the change happened: the other sessions
	   learn of it only once it is durable */
	if (s->wal_sync)
		store_changes_wal_sync(s);
	store_changes_publish(s);
	s->wal_frames = pages;
	/* what SQLite's own hook (wal_autocheckpoint, which this one
	   replaces) does, at the store's threshold */
	if (s->ckpt_frames > 0 && pages >= s->ckpt_frames) {
		s->wal_frames = 0;
		(void)sqlite3_wal_checkpoint(db, name);
	}
	return SQLITE_OK;
}

void
store_set_autocheckpoint(struct store *s, int frames)
{
	s->ckpt_frames = frames > 0 ? frames : 0;
	if (s->changes == NULL)
		/* no hook of ours on this connection (not WAL): SQLite's */
		sqlite3_wal_autocheckpoint(s->db, s->ckpt_frames);
}

/* Why: a COMMIT at synchronous=FULL fsyncs the WAL while it still holds
   the database's write lock, which is the whole server's; the other
   workers' commits wait out each fsync in turn. At NORMAL SQLite skips
   that fsync (the WAL stays consistent, only not yet durable) and the
   hook, which SQLite calls after the lock is released, does it. The
   caller answers only after the COMMIT returned, so after the fsync:
   nothing acknowledged is ever less durable than at FULL. A commit is
   visible to other connections for the length of that fsync before it
   is durable; a later commit's fsync covers every frame before it. */
int
store_wal_sync_after_commit(struct store *s)
{
	if (s->changes == NULL)
		return store_fail(s, STORE_INVALID, "not in WAL mode");
	s->wal_sync = true;
	return store_exec(s, "PRAGMA synchronous=NORMAL");
}

int
store_take_wal_sync_err(struct store *s)
{
	int err = s->wal_sync_err;

	s->wal_sync_err = 0;
	return err;
}

int
store_take_wal_frames(struct store *s)
{
	int n = s->wal_frames;

	s->wal_frames = 0;
	return n;
}

static void
store_changes_rollback_hook(void *arg)
{
	struct store *s = arg;

	s->changed_count = 0;
	s->changed_all = false;
}

static struct store_changes_map *
store_changes_map_open(struct store *s)
{
	char path[STORE_PATH_MAX];
	struct store_changes_map *m;
	struct stat st;
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/run/changes", s->datadir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	/* every opener sizes it the same; ftruncate to the same size is
	   harmless when another process already did */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    ((size_t)st.st_size < sizeof(*m) &&
	     ftruncate(fd, (off_t)sizeof(*m)) < 0)) {
		close(fd);
		return NULL;
	}
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return NULL;
	if (__atomic_load_n(&m->magic, __ATOMIC_SEQ_CST) !=
	    STORE_CHANGES_MAGIC) {
		/* a new (zeroed) file; counters need no other start */
		uint64_t zero = 0;

		(void)__atomic_compare_exchange_n(&m->magic, &zero,
						  STORE_CHANGES_MAGIC, false,
						  __ATOMIC_SEQ_CST,
						  __ATOMIC_SEQ_CST);
	}
	return m;
}

void
store_changes_open(struct store *s)
{
	static const char *const trigger =
		"CREATE TEMP TRIGGER IF NOT EXISTS tern_mailbox_upd"
		" AFTER UPDATE ON main.mailboxes"
		" BEGIN SELECT tern_changed(OLD.id); END;"
		"CREATE TEMP TRIGGER IF NOT EXISTS tern_mailbox_del"
		" AFTER DELETE ON main.mailboxes"
		" BEGIN SELECT tern_changed(OLD.id); END;"
		"CREATE TEMP TRIGGER IF NOT EXISTS tern_mailbox_ins"
		" AFTER INSERT ON main.mailboxes"
		" BEGIN SELECT tern_changed(NEW.id); END;";

	sqlite3_stmt *st;
	bool wal = false;

	s->ckpt_frames = STORE_CHECKPOINT_FRAMES;
	/* The WAL hook is the only place commits are seen: in any other
	   journal mode nothing would be bumped, so nothing is mapped and
	   readers always query. */
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st,
			       NULL) == SQLITE_OK) {
		wal = sqlite3_step(st) == SQLITE_ROW &&
		      strcmp((const char *)sqlite3_column_text(st, 0),
			     "wal") == 0;
		sqlite3_finalize(st);
	}
	if (!wal)
		return;
	/* the hooks go in first: a connection without its trigger still
	   bumps the global counter on every commit */
	sqlite3_wal_hook(s->db, store_changes_wal_hook, s);
	sqlite3_rollback_hook(s->db, store_changes_rollback_hook, s);
	s->changes = store_changes_map_open(s);
	if (sqlite3_create_function(s->db, "tern_changed", 1,
				    SQLITE_UTF8, s,
				    store_changes_sql_fn, NULL,
				    NULL) == SQLITE_OK &&
	    sqlite3_exec(s->db, trigger, NULL, NULL, NULL) == SQLITE_OK)
		s->changes_traced = true;
}

void
store_changes_close(struct store *s)
{
	if (s->changes != NULL)
		munmap(s->changes, sizeof(*s->changes));
	s->changes = NULL;
}

bool
store_changes_read(struct store *s, int64_t mailbox_id,
		   struct store_changes_gen *gen_r)
{
	struct store_changes_map *m = s->changes;

	if (m == NULL)
		return false;
	gen_r->global = __atomic_load_n(&m->global, __ATOMIC_SEQ_CST);
	gen_r->slot = __atomic_load_n(store_changes_slot(m, mailbox_id),
				      __ATOMIC_SEQ_CST);
	return true;
}
