#ifndef TERN_STORE_H
#define TERN_STORE_H
/* The store: the only code that touches the data directory. Metadata lives
   in SQLite (WAL) at DATADIR/tern.db, message bytes in immutable blob files
   under DATADIR/blobs/, named by their SHA-256 so identical messages are
   stored once (reference counted).

   Every process (worker, queue, ternctl) opens its own struct store; SQLite
   serialises writers between processes. All functions are synchronous.
   A struct store is used by one thread at a time; a worker has two (one
   for its event loop, one for its commit thread, see store_commit_new),
   and one more for its read thread (store_reader_new).

   Return conventions: operations return STORE_OK (0) or a negative enum
   store_err; lookups return 1 found / 0 not found / STORE_ERR. Strings in
   returned structs are xmalloc'd and released by the matching _clear or
   _free function. error_r, when given, receives a static or store-owned
   string valid until the next call on the same store.

   Durability: a function that changes data has committed it with fsync
   when it returns STORE_OK, unless the caller opened a batch with
   store_batch_begin(), in which case everything is durable when
   store_batch_commit() returns STORE_OK (group commit: many SMTP
   deliveries, one fsync). A worker does its durable writes of SMTP
   DATA/BDAT and IMAP APPEND through the commit thread (store_commit_*),
   which groups them across sessions and keeps the fsyncs off the event
   loop. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

enum store_err {
	STORE_OK = 0,
	STORE_ERR = -1,	      /* internal error, logged by the caller */
	STORE_OVERQUOTA = -2, /* storage or message quota exceeded */
	STORE_NOTFOUND = -3,  /* no such mailbox/account/message/domain */
	STORE_EXISTS = -4,    /* already exists */
	STORE_NOSPACE = -5,   /* disk full (ENOSPC, SQLITE_FULL) */
	STORE_INVALID = -6,   /* bad name or argument (see error_r) */
	STORE_BUSY = -7,      /* lock held too long; retry later */
	STORE_MODIFIED = -8,  /* UNCHANGEDSINCE failed (CONDSTORE) */
};

/* ---- opening ---- */

/* Open (creating and migrating when needed) the store in datadir. */
struct store *store_open(const char *datadir, const char **error_r);
void store_close(struct store **sp);
const char *store_datadir(const struct store *s);
/* Text of the last SQLite/system error on this store, for logging. */
const char *store_last_error(const struct store *s);
/* Code (STORE_NOSPACE, STORE_ERR, ...) of the failure that set
   store_last_error(), so a protocol can tell disk full from the rest. */
int store_last_code(const struct store *s);
/* Let this connection checkpoint the WAL by itself (inside the COMMIT
   that grew it, after the commit) only past frames frames (SQLite's
   default, and the store's: 1000; 0: never). An event loop's store
   whose process has a commit thread (which checkpoints after its
   batches) sets it higher, so that the loop seldom copies the WAL back
   in the middle of a command. It is the store's WAL hook that
   checkpoints (store_changes.c): never set another one. */
void store_set_autocheckpoint(struct store *s, int frames);
/* This connection's COMMITs return before their fsync, which follows
   once the write lock is released (store_changes.c); a failed one is
   kept for store_take_wal_sync_err. STORE_OK, or an error when the
   connection is not in WAL mode. */
int store_wal_sync_after_commit(struct store *s);
/* The errno of a WAL fsync that failed since the last call, or 0. */
int store_take_wal_sync_err(struct store *s);
/* Frames in the WAL after this connection's last commit, and forget
   them (0 until the next commit): for a caller that checkpoints by
   itself. */
int store_take_wal_frames(struct store *s);

/* Memory at rest: store_rest hands back this connection's page cache
   (the next reads refill it from the OS's page cache) and the
   process's free heap (malloc_trim). store_rest_if_idle, called about
   once a second (an event loop's tick), rests s when it was used since
   its last rest but not since the previous call. */
void store_rest(struct store *s);
void store_rest_if_idle(struct store *s);

/* ---- group commit ---- */
int store_batch_begin(struct store *s);
int store_batch_commit(struct store *s);
void store_batch_rollback(struct store *s);

/* ---- plans ---- */
#define STORE_NAME_MAX 64
struct store_plan {
	char name[STORE_NAME_MAX];
	uint64_t quota_bytes;	    /* 0 = unlimited */
	uint64_t quota_messages;    /* 0 = unlimited */
	uint32_t send_per_hour;	    /* recipients per sliding hour, 0 = none */
	uint64_t max_message_bytes; /* 0 = global limit only */
	uint32_t max_recipients;    /* 0 = global limit only */
};
/* Insert or update a plan (ternd syncs the config's plans at start). */
int store_plan_set(struct store *s, const struct store_plan *plan);
int store_plan_get(struct store *s, const char *name,
		   struct store_plan *plan_r);
int store_plan_list(struct store *s, struct store_plan **plans_r,
		    size_t *count_r); /* free(*plans_r) */

/* ---- domains ---- */
/* Names are stored lowercase without a trailing dot. */
int store_domain_add(struct store *s, const char *domain);
/* STORE_INVALID when accounts or aliases still use it. */
int store_domain_del(struct store *s, const char *domain);
int store_domain_exists(struct store *s, const char *domain);
int store_domain_list(struct store *s, char ***names_r, size_t *count_r);
void store_strings_free(char **strings, size_t count);

/* ---- accounts ---- */
struct store_account {
	int64_t id;
	char *address;	     /* "user@domain", lowercase */
	char *plan;
	char *password_hash; /* argon2id or crypt(3) string */
	char *scram;	     /* RFC 5803 SCRAM-SHA-256 secrets, or NULL */
	int64_t created;     /* unix time */
};
void store_account_clear(struct store_account *acct);
/* Normalise an address for lookup: lowercase, strip a trailing dot of
   the domain. Returns xmalloc'd string or NULL when it is not
   "local@domain" with both parts non-empty. */
char *store_address_normalize(const char *address);
/* Creates the account with INBOX, Sent, Drafts, Trash, Junk, Archive.
   STORE_NOTFOUND: the domain or plan does not exist; STORE_EXISTS. */
int store_account_add(struct store *s, const char *address,
		      const char *plan, const char *password_hash,
		      const char *scram, int64_t *id_r);
int store_account_get(struct store *s, const char *address,
		      struct store_account *acct_r);
int store_account_get_by_id(struct store *s, int64_t id,
			    struct store_account *acct_r);
int store_account_set_password(struct store *s, const char *address,
			       const char *password_hash, const char *scram);
int store_account_set_plan(struct store *s, const char *address,
			   const char *plan);
/* Removes mailboxes, messages (blob references) and aliases to it. */
int store_account_del(struct store *s, const char *address);
/* domain may be NULL for all. free with store_accounts_free. */
int store_account_list(struct store *s, const char *domain,
		       struct store_account **accts_r, size_t *count_r);
void store_accounts_free(struct store_account *accts, size_t count);

/* ---- aliases ---- */
/* address is "local@domain" or "@domain" (catch-all). Targets are
   addresses (local or remote). */
int store_alias_add(struct store *s, const char *address,
		    const char *const *targets, size_t count);
int store_alias_del(struct store *s, const char *address);
struct store_alias {
	char *address;
	char *target;
};
int store_alias_list(struct store *s, struct store_alias **aliases_r,
		     size_t *count_r);
void store_aliases_free(struct store_alias *aliases, size_t count);

/* ---- recipient resolution (SMTP RCPT) ---- */
enum store_rcpt_kind {
	STORE_RCPT_LOCAL,     /* ids filled: deliver to these accounts */
	STORE_RCPT_NOT_LOCAL, /* domain is not ours */
	STORE_RCPT_UNKNOWN,   /* our domain, no such user */
};
#define STORE_ALIAS_DEPTH_MAX 10
#define STORE_ALIAS_TARGETS_MAX 1000
/* Resolve a normalised address: account, then alias (recursively, up to
   STORE_ALIAS_DEPTH_MAX, deduplicated), then catch-all "@domain".
   Alias targets outside our domains are returned in remote_r (may be
   NULL when the caller does not forward). Returns the kind or STORE_ERR.
   free(*ids_r); store_strings_free(remote). */
int store_rcpt_resolve(struct store *s, const char *address,
		       int64_t **ids_r, size_t *count_r, char ***remote_r,
		       size_t *remote_count_r);
/* May account_id use address as envelope sender (its own address or an
   alias that resolves to it)? 1 yes, 0 no, STORE_ERR. */
int store_account_may_send_as(struct store *s, int64_t account_id,
			      const char *address);

/* ---- quota ---- */
struct store_quota {
	uint64_t used_bytes, used_messages;
	uint64_t limit_bytes, limit_messages; /* 0 = unlimited */
};
int store_quota_get(struct store *s, int64_t account_id,
		    struct store_quota *quota_r);

/* ---- blobs ---- */
#define STORE_HASH_HEX_LEN 64
/* Streaming writer for a message: bytes go to a temporary file; finish
   fsyncs it, renames it to its content hash (over a file of that name:
   the same bytes, now surely durable) and fsyncs the directory. A blob without a reference
   from the metadata after a crash is removed by store_open's cleanup. */
struct store_blob_writer;
struct store_blob_writer *store_blob_writer_new(struct store *s);
int store_blob_writer_write(struct store_blob_writer *w, const void *data,
			    size_t len);
/* hash_r receives STORE_HASH_HEX_LEN hex digits plus NUL. The writer is
   freed in every case. */
int store_blob_writer_finish(struct store_blob_writer **w, char *hash_r,
			     uint64_t *size_r);
void store_blob_writer_abort(struct store_blob_writer **w);
/* Close the writer's file after its last byte but keep the writer (its
   hash state, its temp file) for the commit thread, which opens the file
   again by its name for the fsync: a command with many messages keeps a
   bounded number of descriptors. STORE_OK, or the writer's (sticky)
   error. No more writes after it. */
int store_blob_writer_park(struct store_blob_writer *w);
/* Whole-buffer convenience. */
int store_blob_write(struct store *s, const void *data, size_t len,
		     char *hash_r);

/* Read-only mapping of a blob. */
/* A blob's bytes: read into memory when small (cheaper than setting up
   and tearing down a mapping for the typical few-KB message), mapped when
   large. Either way read-only, released with store_blob_unmap. */
#define STORE_MAP_READ_MAX (128 * 1024)
struct store_map {
	const uint8_t *data;
	size_t len;
	bool heap; /* data was malloc'd and read, not mmap'd */
	size_t lead; /* mapped bytes before data (a blob inside a pack) */
};
int store_blob_map(struct store *s, const char *hash, struct store_map *map_r);
/* The change generations of a mailbox, shared by every process of the
   data directory (store_changes.c): read before a query of the mailbox;
   if a later read gives the same values, no commit changed the mailbox
   row since (a new message, a flag change or expunge, which raise its
   HIGHESTMODSEQ, its deletion). false when unavailable: query. */
struct store_changes_gen {
	uint64_t global, slot;
};
bool store_changes_read(struct store *s, int64_t mailbox_id,
			struct store_changes_gen *gen_r);
/* store_blob_map through a small per-store cache of recently read small
   blobs (a client that reads the same message again, several devices
   of one account). Blobs are named by their content and never change,
   so the cache needs no invalidation; a blob removed meanwhile may
   still be returned, which is what a reader of a message expunged
   elsewhere may see (RFC 9051 7.5.1). */
int store_blob_map_cached(struct store *s, const char *hash,
			  struct store_map *map_r);
void store_blob_unmap(struct store_map *map);

/* ---- mailboxes ---- */
/* Mailbox names are UTF-8 with '/' as hierarchy delimiter; "INBOX" is
   case-insensitive and stored as "INBOX". Names with empty levels, a
   leading or trailing '/', control characters, "." or ".." levels, or
   longer than STORE_MAILBOX_NAME_MAX bytes are STORE_INVALID. */
#define STORE_MAILBOX_NAME_MAX 512
#define STORE_MAILBOX_DEPTH_MAX 16
struct store_mailbox {
	int64_t id;
	int64_t account_id;
	char *name;
	char *special_use; /* "\\Sent" etc., or NULL */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	bool subscribed;
	/* lowest UID that no read-write session has taken as \Recent yet
	   (RFC 3501 2.3.2); see store_mailbox_claim_recent() */
	uint32_t recent_uid;
};
void store_mailbox_clear(struct store_mailbox *box);
void store_mailboxes_free(struct store_mailbox *boxes, size_t count);
/* All mailboxes of an account, sorted by name. */
int store_mailbox_list(struct store *s, int64_t account_id,
		       struct store_mailbox **boxes_r, size_t *count_r);
int store_mailbox_get(struct store *s, int64_t account_id, const char *name,
		      struct store_mailbox *box_r);
int store_mailbox_get_by_id(struct store *s, int64_t mailbox_id,
			    struct store_mailbox *box_r);
int store_mailbox_create(struct store *s, int64_t account_id,
			 const char *name, const char *special_use,
			 int64_t *id_r, const char **error_r);
/* Deleting INBOX is STORE_INVALID. Messages are expunged. */
int store_mailbox_delete(struct store *s, int64_t account_id,
			 const char *name);
/* Renames children too. Renaming INBOX moves its messages into a new
   mailbox and leaves INBOX empty (RFC 9051 6.3.6). The new mailbox gets
   a new UIDVALIDITY only when needed. */
int store_mailbox_rename(struct store *s, int64_t account_id,
			 const char *old_name, const char *new_name,
			 const char **error_r);
/* Subscriptions are by name and may name mailboxes that do not exist. */
int store_mailbox_subscribe(struct store *s, int64_t account_id,
			    const char *name, bool subscribe);
int store_subscription_list(struct store *s, int64_t account_id,
			    char ***names_r, size_t *count_r);

struct store_mailbox_status {
	uint32_t messages, unseen, deleted;
	uint32_t uidnext, uidvalidity;
	uint64_t highestmodseq;
	uint64_t size; /* sum of message sizes (STATUS SIZE) */
	uint32_t recent; /* messages with uid >= recent_uid (STATUS RECENT) */
};
int store_mailbox_status(struct store *s, int64_t mailbox_id,
			 struct store_mailbox_status *st_r);
/* Take UIDs from_uid <= uid < to_uid as \Recent for the calling session:
   moves the mailbox's recent_uid from from_uid to to_uid only if it is
   still from_uid (compare and swap, one statement, so exactly one
   session of any process wins). 1 taken, 0 not (another session moved
   it first), or an error. Outside a transaction the claim is committed
   without an fsync of its own (see the .c). */
int store_mailbox_claim_recent(struct store *s, int64_t mailbox_id,
			       uint32_t from_uid, uint32_t to_uid);
/* Inside a write transaction: take every UID below to_uid that no session
   has taken yet (recent_uid .. to_uid-1) for the caller, e.g. an APPEND
   of a session that has the mailbox selected, in the transaction that
   adds the messages. 1 taken (*from_r: the first UID taken), 0 nothing
   to take, or an error. */
int store_mailbox_claim_recent_upto(struct store *s, int64_t mailbox_id,
				    uint32_t to_uid, uint32_t *from_r);

/* ---- messages ---- */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};
#define STORE_KEYWORD_MAX_BYTES 100
#define STORE_KEYWORDS_MAX 64
struct store_msg {
	int64_t id; /* global, never reused: POP3 UIDL, OBJECTID */
	uint32_t uid;
	uint32_t flags;	 /* enum store_flag bits */
	char *keywords;	 /* space-separated keywords, or NULL */
	uint64_t modseq;
	uint64_t size;
	int64_t internaldate; /* unix time */
	int64_t savedate;     /* unix time it entered this mailbox */
	char blob[STORE_HASH_HEX_LEN + 1];
};
void store_msgs_free(struct store_msg *msgs, size_t count);
/* Messages with uid >= uid_min, ascending by UID. */
int store_msg_list(struct store *s, int64_t mailbox_id, uint32_t uid_min,
		   struct store_msg **msgs_r, size_t *count_r);
/* Messages with uid_min <= uid <= uid_max, ascending by UID. */
int store_msg_list_range(struct store *s, int64_t mailbox_id,
			 uint32_t uid_min, uint32_t uid_max,
			 struct store_msg **msgs_r, size_t *count_r);
/* A session's view of a mailbox: fn is called for each message with
   uid >= uid_min, ascending by UID, with only what a view keeps.
   m->keywords (space-separated, or NULL) is valid during the call only.
   fn returning -1 stops the walk (the call then returns STORE_ERR).
   Cheap on a large mailbox: one pass over a covering index, no
   allocation per message. */
struct store_view_msg {
	uint32_t uid;
	uint32_t flags; /* enum store_flag bits */
	uint64_t modseq;
	const char *keywords;
};
typedef int store_msg_view_fn(void *ctx, const struct store_view_msg *m);
int store_msg_list_view(struct store *s, int64_t mailbox_id,
			uint32_t uid_min, store_msg_view_fn *fn, void *ctx);
/* Where a view read by store_mailbox_view_snapshot came from. */
struct store_view_load {
	bool snap_used;	  /* from the mailbox's persisted snapshot */
	size_t from_snap; /* messages taken from it unchanged */
	size_t from_rows; /* messages read from their rows: changed since
			     the snapshot, or all of them without one */
	size_t expunged;  /* of the snapshot's, expunged since */
	/* a new snapshot of this view is kept in s and written by
	   store_view_snap_flush after the answer (store_reader.c) */
	bool snap_save;
};
/* The mailbox row (as store_mailbox_get_by_id) and its view (as
   store_msg_list_view from UID 1) read in one transaction, so both
   are one snapshot: HIGHESTMODSEQ, UIDNEXT and the messages agree.
   A large mailbox's view comes from its persisted snapshot
   (store_view_snap.c) and the rows changed since, when it has a usable
   one. 1 found, 0 no such mailbox (fn not called), STORE_ERR
   (store_mailbox.c). Clear *box_r with store_mailbox_clear. load_r
   (may be NULL): where the view came from. */
int store_mailbox_view_snapshot(struct store *s, int64_t mailbox_id,
				struct store_mailbox *box_r,
				store_msg_view_fn *fn, void *ctx,
				struct store_view_load *load_r);
/* What changed after since_modseq: messages whose modseq is greater
   (new or flag changes), and UIDs expunged after it (ascending). */
int store_msg_changes(struct store *s, int64_t mailbox_id,
		      uint64_t since_modseq, struct store_msg **msgs_r,
		      size_t *count_r, uint32_t **expunged_r,
		      size_t *expunged_count_r);
/* A sync's read, in one snapshot: the mailbox's row, and what changed
   after since_modseq when its HIGHESTMODSEQ is another (else none).
   1, 0 when the mailbox is gone, -1 on error. */
int store_msg_sync(struct store *s, int64_t mailbox_id, uint64_t since_modseq,
		   struct store_mailbox *box_r, struct store_msg **msgs_r,
		   size_t *count_r, uint32_t **expunged_r,
		   size_t *expunged_count_r);
/* Only the UIDs expunged after since_modseq (ascending; QRESYNC VANISHED
   (EARLIER)). Expunged UIDs are kept for the mailbox's lifetime, so
   the answer is always complete. free(*uids_r). */
int store_msg_vanished(struct store *s, int64_t mailbox_id,
		       uint64_t since_modseq, uint32_t **uids_r,
		       size_t *count_r);
/* SORT and THREAD keys of every message of a mailbox, ascending by UID,
   in one query (store_sort.c). The array and its strings are allocated
   in a and live as long as it. Address keys are filled only with
   STORE_SORT_NEED_ADDR, msgid and refs only with STORE_SORT_NEED_REFS;
   the others are NULL. */
#define STORE_SORT_NEED_ADDR 1u
#define STORE_SORT_NEED_REFS 2u
struct store_sort_msg {
	uint32_t uid;
	bool reply;	      /* the base subject dropped a Re:/Fwd: */
	uint64_t size;
	int64_t internaldate;
	int64_t date;	      /* Date: header (UTC), -1 when none */
	const char *subject;  /* RFC 5256 base subject, never NULL */
	const char *from, *to, *cc; /* addr-mailbox of the first address */
	const char *dfrom, *dto;    /* RFC 5957 display forms */
	const char *msgid;	    /* "<...>" or NULL */
	const char *refs;	    /* "<a> <b> ...", oldest first, or NULL */
};
struct arena;
int store_msg_sort_keys(struct store *s, int64_t mailbox_id, unsigned need,
			struct arena *a, struct store_sort_msg **msgs_r,
			size_t *count_r);
/* Fill the keys of blobs stored before they were kept (store_open does
   this; each blob once, bounded transactions). */
int store_msg_sort_backfill(struct store *s);

/* Parsed structure stored at delivery (see mime.h). */
struct store_msg_meta {
	char *envelope, *bodystructure, *body;
	char *message_id, *subject, *from;
	int64_t date; /* Date: header, -1 when none */
	uint32_t header_len, lines;
};
int store_msg_meta(struct store *s, const char *blob,
		   struct store_msg_meta *meta_r);
void store_msg_meta_clear(struct store_msg_meta *meta);

/* Deliver one stored blob to several accounts' mailboxes (SMTP). For each
   entry: mailbox NULL means INBOX; result is set to STORE_OK,
   STORE_OVERQUOTA or STORE_NOTFOUND independently, so one full mailbox
   does not block the others. Parses the message once (mime_info_parse)
   and keeps the structure with the blob. Returns STORE_OK when every
   entry was processed (check each result), else an error and nothing
   was delivered. Publishes a change notification for each mailbox. */
struct store_delivery {
	int64_t account_id;
	const char *mailbox;
	uint32_t flags;
	/* out */
	int result;
	int64_t mailbox_id;
	uint32_t uid;
	uint64_t modseq;
};
int store_deliver(struct store *s, const char *blob, int64_t internaldate,
		  struct store_delivery *deliveries, size_t count);

/* IMAP APPEND: one blob into one mailbox. */
int store_msg_append(struct store *s, int64_t mailbox_id, const char *blob,
		     uint32_t flags, const char *keywords,
		     int64_t internaldate, uint32_t *uid_r);

enum store_flag_op {
	STORE_FLAGS_SET,
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
};
/* Change flags/keywords of the given UIDs (ascending; missing UIDs are
   skipped). unchangedsince 0 = no condition; otherwise messages whose
   modseq is greater are not changed and their UIDs are returned in
   *modified_r (CONDSTORE). A message whose flags do not change keeps
   its modseq. *modseq_r: the mailbox's new HIGHESTMODSEQ. */
int store_msg_set_flags(struct store *s, int64_t mailbox_id,
			const uint32_t *uids, size_t count,
			enum store_flag_op op, uint32_t flags,
			const char *keywords, uint64_t unchangedsince,
			uint64_t *modseq_r, uint32_t **modified_r,
			size_t *modified_count_r);
/* Remove the messages with these UIDs, remember them as expunged (for
   QRESYNC) and release their quota and blob references. */
int store_msg_expunge(struct store *s, int64_t mailbox_id,
		      const uint32_t *uids, size_t count, uint64_t *modseq_r);
/* The same for those of uids that have \Deleted when it runs (IMAP
   EXPUNGE: on the commit thread, after the loop listed them). */
int store_msg_expunge_deleted(struct store *s, int64_t mailbox_id,
			      const uint32_t *uids, size_t count,
			      uint64_t *modseq_r);
/* Copy (or move) UIDs into dst; new_uids_r[i] is the UID of uids[i] in
   dst (COPYUID). Quota is checked for the whole set first. */
int store_msg_copy(struct store *s, int64_t src_mailbox_id,
		   const uint32_t *uids, size_t count, int64_t dst_mailbox_id,
		   bool move, uint32_t **new_uids_r);

/* ---- Sent copies of submitted mail ---- */
/* Per-domain switch: value 1 on, 0 off, -1 follow the config
   (smtp_save_sent). STORE_NOTFOUND for an unknown domain. */
int store_sent_set(struct store *s, const char *domain, int value);
/* *value_r as above. 1 found, 0 no such domain, STORE_ERR. */
int store_sent_get(struct store *s, const char *domain, int *value_r);
/* A message in mailbox_id with blob's Message-ID that entered the
   mailbox at or after since (unix time): 1 found (*uid_r, the newest),
   0 none or blob has no Message-ID, STORE_ERR. */
int store_sent_find(struct store *s, int64_t mailbox_id, const char *blob,
		    int64_t since, uint32_t *uid_r);

/* ---- full-text index (store_fts.c) ---- */
/* Text indexed per blob (decoded text parts), the same bound as IMAP
   SEARCH uses for its exact check. */
#define STORE_FTS_TEXT_MAX_BYTES (8 * 1024 * 1024)
/* A blob whose text (headers and text parts) is longer is not indexed
   at all (blobs.fts = 0: a candidate for every search, checked exactly).
   Indexing costs about 70 ns of CPU per byte of text at delivery (the
   trigram tokenizer), 7 ms for 100 KB; text that long is rare in mail
   (attachments are not text parts), and it would make delivery of such
   messages several times slower than storing them. */
#define STORE_FTS_INDEX_MAX_BYTES (64 * 1024)
/* The index answers substring queries of at least this many
   characters (trigrams). */
#define STORE_FTS_NEEDLE_MIN_CHARS 3
/* What the index says about a needle in one mailbox: uids (ascending)
   are the messages whose indexed text may contain it as a substring,
   case-insensitively: the decoded text parts, and with STORE_FTS_HEADER
   the decoded headers too (mime_extract_headers: the top header and the
   MIME headers of the parts, SEARCH TEXT). A superset. sure (ascending, a
   subset of uids) are those that certainly contain it under the exact
   check of IMAP SEARCH (ASCII case-insensitive substring of the same
   decoded text, store_fts.c says when that holds): the caller need not
   check them again. */
struct store_fts_result {
	uint32_t *uids, *sure;
	size_t count, nsure;
};
#define STORE_FTS_HEADER 0x1u /* the headers too (SEARCH TEXT) */
#define STORE_FTS_SURE 0x2u   /* fill sure (else it stays empty) */
/* with STORE_FTS_HEADER: the needle may be in part headers too (TEXT);
   without, only the top header matters (header keys) */
#define STORE_FTS_PARTS 0x4u
/* for a header key: the needle's pieces between white space (" \t\r\n")
   of at least STORE_FTS_NEEDLE_MIN_CHARS characters must each be in the
   top header (a necessary condition, never sure; 0 when no piece is
   that long). The header column keeps folds and the field is compared
   unfolded, so a needle with white space cannot be one phrase. */
#define STORE_FTS_WORDS 0x8u
/* Fills *res. Returns 1 (store_fts_result_free(res) after), 0 when the
   index cannot answer (needle shorter than STORE_FTS_NEEDLE_MIN_CHARS:
   check every message), or an error. */
int store_fts_candidates(struct store *s, int64_t mailbox_id,
			 const char *needle, unsigned flags,
			 struct store_fts_result *res);
/* The same for a header key (SEARCH SUBJECT, FROM, TO, CC, BCC; the
   name case-insensitively): candidates whose
   field, as mime_search_field gives it, may contain needle; sure ones
   (with STORE_FTS_SURE) certainly do under the exact check. Returns 0
   also for any other field name. The needle may hold white space. */
int store_fts_field_candidates(struct store *s, int64_t mailbox_id,
			       const char *field, const char *needle,
			       unsigned flags, struct store_fts_result *res);
void store_fts_result_free(struct store_fts_result *res);

/* ---- sending limits ---- */
/* Recipients sent by the account since a unix time, and recording n more
   at time now. Old records are pruned. */
int store_send_count(struct store *s, int64_t account_id, int64_t since,
		     uint64_t *count_r);
int store_send_record(struct store *s, int64_t account_id, int64_t now,
		      uint32_t count);
/* Oldest record time within the window since `since` (to say when sending
   is possible again), 0 when none. */
int store_send_oldest(struct store *s, int64_t account_id, int64_t since,
		      int64_t *time_r);

/* ---- outbound queue ---- */
struct store_queue_rcpt {
	char *address;
	char *orcpt;  /* DSN ORCPT, or NULL */
	char *notify; /* DSN NOTIFY, or NULL */
	int status;   /* 0 pending, 2 delivered, 5 failed */
	char *last_reply;
};
struct store_queue_entry {
	int64_t id;
	char *sender; /* "" for the null sender */
	char *envid;  /* DSN ENVID or NULL */
	char *ret;    /* "FULL"/"HDRS" or NULL */
	char blob[STORE_HASH_HEX_LEN + 1];
	uint64_t size;
	int64_t created, next_attempt;
	uint32_t attempts;
	char *body;    /* MAIL FROM BODY=: "7BIT", "8BITMIME", "BINARYMIME"
			  or NULL when not given (the queue then looks at
			  the bytes) */
	bool smtputf8; /* MAIL FROM had SMTPUTF8 (RFC 6531 3.4) */
	bool delay_warned; /* the "delayed" DSN was sent (once per entry);
			      written by store_queue_update */
	struct store_queue_rcpt *rcpts;
	size_t rcpt_count;
};
int store_queue_add(struct store *s, const struct store_queue_entry *entry,
		    int64_t *id_r);
/* Entries with next_attempt <= now, oldest first, at most max. */
int store_queue_due(struct store *s, int64_t now, size_t max,
		    struct store_queue_entry **entries_r, size_t *count_r);
int store_queue_get(struct store *s, int64_t id,
		    struct store_queue_entry *entry_r);
int store_queue_list(struct store *s, struct store_queue_entry **entries_r,
		     size_t *count_r);
/* Record per-recipient outcomes, the attempts, the next attempt and
   delay_warned; an entry whose
   recipients are all final is removed (and its blob reference dropped). */
int store_queue_update(struct store *s, const struct store_queue_entry *entry);
int store_queue_delete(struct store *s, int64_t id);
void store_queue_entry_clear(struct store_queue_entry *entry);
void store_queue_entries_free(struct store_queue_entry *entries, size_t count);

/* ---- change notification between processes ---- */
/* Each process that wants push (IDLE, NOTIFY) opens a notification
   socket: a UNIX datagram socket under DATADIR/run/. store_notify_publish
   sends the event to every open socket (all processes, including this
   one). The same interface later maps to PostgreSQL LISTEN/NOTIFY. */
struct store_notify_event {
	int64_t account_id;
	int64_t mailbox_id; /* 0: the mailbox list changed */
	uint64_t modseq;
};
/* Returns a non-blocking fd to watch for reading, or -1. */
int store_notify_open(struct store *s);
void store_notify_publish(struct store *s,
			  const struct store_notify_event *ev);
/* 1 an event was read, 0 none pending, -1 error. */
int store_notify_read(struct store *s, struct store_notify_event *ev_r);

/* ---- DKIM keys ---- */
/* Signing keys per domain (RFC 6376 3.6.1: DNS record at
   SELECTOR._domainkey.DOMAIN). A domain may have several keys (one per
   selector, for rotation); at most one is active and used for signing.
   The private key is PEM (PKCS#8) text; the database file is 0600.
   Domains are stored lowercase without a trailing dot. */
#define STORE_DKIM_SELECTOR_MAX 63
struct store_dkim_key {
	char *domain;
	char *selector;
	char *algorithm;   /* "rsa-sha256" or "ed25519-sha256" */
	char *private_key; /* PEM */
	int64_t created;   /* unix time */
	bool active;
};
/* Add a key and make it the domain's active key (the previous active key
   stays, inactive). STORE_EXISTS: the domain has that selector already;
   STORE_INVALID: bad algorithm, selector or domain (see error_r of
   store_last_error). created 0 means now. */
int store_dkim_set(struct store *s, const struct store_dkim_key *key);
/* The active key of domain (any case, trailing dot ignored): 1 found,
   0 none, STORE_ERR. Clear *key_r with store_dkim_key_clear. */
int store_dkim_get(struct store *s, const char *domain,
		   struct store_dkim_key *key_r);
/* Every key (of domain, or all when domain is NULL), by domain, then
   newest first. store_dkim_keys_free(*keys_r, *count_r). */
int store_dkim_list(struct store *s, const char *domain,
		    struct store_dkim_key **keys_r, size_t *count_r);
void store_dkim_key_clear(struct store_dkim_key *key);
void store_dkim_keys_free(struct store_dkim_key *keys, size_t count);

/* ---- commit thread (store_commit.c) ---- */
/* A helper thread with its own store that makes jobs durable in groups
   (see store_commit.c): the loop submits jobs; the thread finishes their
   blobs (fsync, rename, one fsync per blob directory), runs every job's
   metadata in a savepoint of one batch, commits once, then the loop calls
   each job's done. Not thread-safe itself: call it from the loop only. */
struct ev_loop;
struct store_commit;
struct store_commit_job;

/* A blob writer handed to a job: the thread finishes it (w is taken and
   set to NULL; NULL on entry is allowed and gives an empty hash). */
struct mime_info;
struct store_commit_blob {
	struct store_blob_writer *w;
	char hash[STORE_HASH_HEX_LEN + 1]; /* out: "" when none or failed */
	uint64_t size;			   /* out */
	int dir;			   /* private */
	struct mime_info *info; /* private: parsed by the blob stage */
	int64_t pack;		/* private: its pack (0: a file of its own) */
	uint64_t off;		/* private: where in that pack */
};

/* On the thread, inside an open batch (in a savepoint of its own), after
   the job's blobs are durable: the job's metadata changes, with s the
   thread's store. Returns STORE_OK or an error that undoes this job
   only. It may run a second time (alone) when the batch failed as a
   whole, so it must set its outputs afresh each time. It must read only
   state that the loop does not change while the job is pending. */
typedef int store_commit_run_fn(struct store *s,
				struct store_commit_job *job);
/* On the loop, once the job is durable or failed (job->result). */
typedef void store_commit_done_fn(struct store_commit_job *job);

struct store_commit_job {
	store_commit_run_fn *run;
	store_commit_done_fn *done;
	struct store_commit_blob *blobs;
	size_t blob_count;
	/* out, for done */
	int result;	   /* STORE_OK: blobs and metadata are durable */
	char error[256];   /* store_last_error() of the failure */
	size_t batch_size; /* jobs in the batch that committed this one */
	/* private */
	bool blobs_ok;
	/* the blob round whose pack fsync must end before this job's
	   COMMIT (0: none), and that fsync's errno (under the mutex) */
	uint64_t pack_round;
	int pack_err;
	struct store_commit_job *next;
};

/* Start the thread with its own store on datadir (as store_open: the
   same path the loop's store was opened with). The thread's wake-up fd
   is watched on loop. NULL with *error_r (static) on failure. */
struct store_commit *store_commit_new(struct ev_loop *loop,
				      const char *datadir,
				      const char **error_r);
/* Wait for every submitted job (running done callbacks), stop the
   thread, close its store. */
void store_commit_free(struct store_commit **c);
/* Queue a job (the caller owns it; it must stay valid until done).
   Jobs submitted in one loop pass go to the thread together. done is
   always called, from the loop, never from inside submit. */
void store_commit_submit(struct store_commit *c,
			 struct store_commit_job *job);
/* Block until every submitted job is done (their done callbacks run
   here). For shutdown. */
void store_commit_drain(struct store_commit *c);
/* Jobs submitted whose done has not run yet. */
size_t store_commit_pending(const struct store_commit *c);
/* Batches committed and jobs in them, since the start. */
void store_commit_stats(struct store_commit *c, uint64_t *batches_r,
			uint64_t *jobs_r);

/* ---- read thread (store_reader.c) ---- */
/* A helper thread with its own store for long reads off the event loop
   (the view of a large mailbox): the loop submits jobs, the thread runs
   them one at a time, then the loop calls each job's done. Not
   thread-safe itself: call it from the loop only. */
struct store_reader;
struct store_reader_job;
/* On the thread, with s the thread's store: STORE_OK, or an error (its
   text is copied to job->error). Must not touch state the loop
   changes while the job is pending. */
typedef int store_reader_run_fn(struct store *s, struct store_reader_job *job);
/* On the loop, once run returned (job->result). May free the job. */
typedef void store_reader_done_fn(struct store_reader_job *job);
struct store_reader_job {
	store_reader_run_fn *run;
	store_reader_done_fn *done;
	/* out, for done */
	int result;
	char error[256];
	/* private */
	struct store_reader_job *next;
};
/* Start the thread with its own store on datadir (as store_open); its
   wake-up fd is watched on loop. NULL with *error_r (static). */
struct store_reader *store_reader_new(struct ev_loop *loop,
				      const char *datadir,
				      const char **error_r);
/* Wait for every submitted job (running done callbacks), stop the
   thread, close its store. */
void store_reader_free(struct store_reader **r);
/* Queue a job (the caller owns it until done). done is always called,
   from the loop, never from inside submit. */
void store_reader_submit(struct store_reader *r, struct store_reader_job *job);
/* Block until every submitted job is done (their done run here). */
void store_reader_drain(struct store_reader *r);
/* Jobs submitted whose done has not run yet. */
size_t store_reader_pending(const struct store_reader *r);

#endif
