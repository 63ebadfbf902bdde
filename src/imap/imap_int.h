#ifndef TERN_IMAP_INT_H
#define TERN_IMAP_INT_H
/* Private to src/imap/: limits, the command parser, sequence sets,
   modified UTF-7, the session and its selected-mailbox view, the command
   table, FETCH and SEARCH. Never included from outside the folder. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/env.h"
#include "lib/strview.h"
#include "store/store.h"

struct conn;
struct auth_sasl;
struct ev_timer;
struct store_blob_writer;

/* ---- limits (all input-driven sizes have one) ---- */
/* Longest command line segment; the config value is clamped to this so
   a line always fits in the connection's input buffer. */
#define IMAP_LINE_MAX_BYTES_CAP (128 * 1024)
/* A literal that is kept in memory (everything but APPEND's message). */
#define IMAP_LITERAL_MAX_BYTES (64 * 1024)
/* All lines and in-memory literals of one command together. */
#define IMAP_COMMAND_MAX_BYTES (1024 * 1024)
/* A literal size we are willing to skip over (non-synchronising literal
   of a rejected command). Larger announcements close the connection. */
#define IMAP_LITERAL_SKIP_MAX_BYTES ((uint64_t)4 * 1024 * 1024 * 1024)
#define IMAP_LIST_DEPTH_MAX 16
#define IMAP_BRACKET_DEPTH_MAX 4
#define IMAP_TAG_MAX_BYTES 128
#define IMAP_NAME_MAX_BYTES 32
#define IMAP_SEARCH_DEPTH_MAX 32
#define IMAP_SEARCH_KEYS_MAX 1000
/* Client errors (BAD) per session before "* BYE". */
#define IMAP_ERRORS_MAX 20
/* Bytes of a large literal queued per slice while streaming FETCH. */
#define IMAP_FETCH_SLICE_BYTES (128 * 1024)
/* Decoded text searched per message by BODY/TEXT. */
#define IMAP_SEARCH_TEXT_MAX_BYTES (8 * 1024 * 1024)
/* Messages in one MULTIAPPEND. */
#define IMAP_APPEND_MAX_MESSAGES 1000
/* Default message size limit when neither the plan nor cfg give one. */
#define IMAP_APPEND_LIMIT_DEFAULT ((uint64_t)50 * 1024 * 1024)
#define IMAP_SASL_LINE_MAX_BYTES 8192
#define IMAP_ID_PARAMS_MAX 30
/* A selected session reads its mailbox row after a command only when a
   commit changed it (store_changes_read), or when the last read is
   older than this. */
#define IMAP_SYNC_QUERY_MS 1000

/* ---- parser (imap_parser.c) ---- */
enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
	IMAP_ARG_STREAM, /* APPEND message literal, read by the command */
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8;	 /* ~{n} */
	bool utf8_data;	 /* APPEND UTF8 (~{n}) (RFC 6855 4) */
	const char *str; /* NUL-terminated (atom, quoted, literal) */
	size_t len;
	struct imap_arg *list; /* IMAP_ARG_LIST */
	size_t count;
	uint64_t stream_size; /* IMAP_ARG_STREAM */
};

enum imap_parse_res {
	IMAP_PARSE_MORE,   /* need more bytes */
	IMAP_PARSE_CMD,	   /* a complete command: tag, name, args */
	IMAP_PARSE_CONT,   /* a synchronising literal: send "+", feed on */
	IMAP_PARSE_STREAM, /* APPEND literal: caller reads it, then
			      imap_parser_stream_done() */
	IMAP_PARSE_ERROR,  /* imap_parser_error(); tag may be NULL */
};

enum imap_parse_err {
	IMAP_PERR_NONE,
	IMAP_PERR_SYNTAX,	/* BAD */
	IMAP_PERR_TOOBIG,	/* literal or command too big */
	IMAP_PERR_LINE_TOO_LONG,
	IMAP_PERR_FATAL,	/* cannot resynchronise: close */
};

struct imap_parser;

/* max_line: longest line segment; max_literal: in-memory literal;
   max_total: all segments and literals of one command. Never NULL. */
struct imap_parser *imap_parser_new(size_t max_line, size_t max_literal,
				    size_t max_total);
void imap_parser_free(struct imap_parser **pp);
/* Start a new command whose strings go to arena (valid until the arena is
   reset). A discard in progress (rest of a rejected line) continues. */
void imap_parser_begin(struct imap_parser *p, struct arena *arena);
/* Feed bytes; *consumed_r says how many were used (the rest must be fed
   again). After CMD or ERROR call imap_parser_begin() for the next. */
enum imap_parse_res imap_parser_feed(struct imap_parser *p,
				     const uint8_t *data, size_t len,
				     size_t *consumed_r);
/* Valid after CMD/STREAM/ERROR (NULL when not parsed yet). */
const char *imap_parser_tag(const struct imap_parser *p);
const char *imap_parser_name(const struct imap_parser *p);
/* Top-level arguments so far (pointer valid until the next feed). */
struct imap_arg *imap_parser_args(const struct imap_parser *p,
				  size_t *count_r);
const char *imap_parser_error(const struct imap_parser *p,
			      enum imap_parse_err *code_r);
/* The literal announced by CONT / STREAM. */
uint64_t imap_parser_literal_size(const struct imap_parser *p);
bool imap_parser_literal_sync(const struct imap_parser *p);
void imap_parser_stream_done(struct imap_parser *p);
/* After a STREAM: drop the literal (not sent because we refused a sync
   literal) and skip the rest of the line; the caller reports the error. */
void imap_parser_stream_abort(struct imap_parser *p, bool skip_literal);
bool imap_parser_in_stream(const struct imap_parser *p);
/* True between commands with nothing buffered or discarded. */
bool imap_parser_at_start(const struct imap_parser *p);

/* Argument helpers. */
bool imap_arg_is_atom(const struct imap_arg *a, const char *name);
/* atom, quoted or literal (not NIL check). */
bool imap_arg_is_astring(const struct imap_arg *a);
bool imap_arg_is_string(const struct imap_arg *a); /* quoted or literal */
bool imap_arg_is_nil(const struct imap_arg *a);

/* ---- sequence sets (imap_seqset.c) ---- */
#define IMAP_SEQ_STAR UINT32_MAX
struct imap_range {
	uint32_t lo, hi;
	bool lo_star, hi_star; /* '*' until imap_seqset_resolve */
};
struct imap_seqset {
	struct imap_range *r;
	size_t count;
	bool has_star;
};
/* Parse "1:5,7,10:*" (not "$"). 0, or -1 with nothing allocated that
   matters (arena). Numbers are 1..2^32-1; '*' is IMAP_SEQ_STAR with
   lo_star/hi_star set (4294967295 itself is a number). */
int imap_seqset_parse(struct arena *a, const char *s, size_t len,
		      struct imap_seqset *set_r);
/* Replace '*' by star, order each range, sort and merge. */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t star);
/* Only on a resolved set: binary search. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* Largest number in a resolved set, 0 when empty. */
uint32_t imap_seqset_max(const struct imap_seqset *set);
/* Write uids[] (in this order) compactly: "1:3,7,9:10". */
int imap_seqset_write(struct buf *out, const uint32_t *nums, size_t count);

/* ---- modified UTF-7 (imap_mutf7.c, RFC 3501 5.1.3) ---- */
bool imap_utf8_valid(const char *s, size_t len);
/* UTF-8 to modified UTF-7. -1 on invalid UTF-8 or out->max. */
int imap_mutf7_encode(struct buf *out, const char *s, size_t len);
/* Modified UTF-7 to UTF-8, strict (RFC 3501 5.1.3: shortest form, no
   "&" + base64 of printable ASCII, padding bits zero). -1 invalid. */
int imap_mutf7_decode(struct buf *out, const char *s, size_t len);

/* ---- session (imap_session.c) ---- */
enum imap_state {
	IMAP_STATE_NOAUTH = 1 << 0,
	IMAP_STATE_AUTH = 1 << 1,
	IMAP_STATE_SELECTED = 1 << 2,
	IMAP_STATE_LOGOUT = 1 << 3,
};
#define IMAP_STATES_ANY (IMAP_STATE_NOAUTH | IMAP_STATE_AUTH | \
			 IMAP_STATE_SELECTED)
#define IMAP_STATES_AUTHED (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)

enum imap_input_mode {
	IMAP_INPUT_CMD,	   /* parse commands */
	IMAP_INPUT_BUSY,   /* a command is running (output, delay) */
	IMAP_INPUT_SASL,   /* AUTHENTICATE continuation lines */
	IMAP_INPUT_IDLE,   /* waiting for DONE */
	IMAP_INPUT_STREAM, /* APPEND literal bytes */
};

/* One message of the selected mailbox, in sequence order. */
struct imap_msg {
	uint32_t uid;
	uint32_t flags; /* enum store_flag */
	bool expunged;	/* gone from the store, EXPUNGE not sent yet */
	bool recent;	/* \Recent for this session (RFC 3501 2.3.2) */
	char *keywords; /* xmalloc'd, space-separated, or NULL */
	uint64_t modseq;
};

struct imap_view {
	int64_t mailbox_id;
	char *name; /* UTF-8 */
	bool readonly;
	uint32_t uidvalidity, uidnext;
	uint64_t modseq;
	struct imap_msg *msgs;
	size_t count, cap;
	/* how many of msgs[] are marked expunged, and how many \Recent:
	   a sync reads these instead of walking every message, which in a
	   mailbox of 100,000 cost every command a pass over all of them */
	size_t expunged_count, recent_count;
	/* keywords seen in this mailbox (FLAGS / PERMANENTFLAGS) */
	char *keywords;
	/* the store's change generations at the last sync that read the
	   mailbox (imap_session_sync), and when (ev_now_ms) */
	struct store_changes_gen gen;
	bool gen_valid;
	uint64_t synced_ms;
	/* UIDs claim_from <= uid < claim_to taken as \Recent by this
	   session's APPEND on the commit thread (imap_cmd_append.c), not
	   all in the view yet: the next sync marks them (0, 0: none) */
	uint32_t claim_from, claim_to;
};

struct imap_session;
struct imap_cmd;

enum imap_cmd_res {
	IMAP_CMD_DONE,	/* reply set; the session syncs and answers */
	IMAP_CMD_AGAIN, /* resume from on_drained (output pending) */
	IMAP_CMD_WAIT,	/* resume later (timer, input mode) */
	IMAP_CMD_DETACH, /* no tagged reply now (IDLE): free the arena */
};
typedef enum imap_cmd_res imap_cmd_fn(struct imap_session *s,
				      struct imap_cmd *cmd);

/* Command flags. */
#define IMAP_CMDF_USES_SEQS 1u /* no EXPUNGE during (unless UID) */
#define IMAP_CMDF_NO_SYNC 2u   /* no mailbox sync after */

struct imap_cmd_def {
	const char *name;
	unsigned states;
	unsigned flags;
	imap_cmd_fn *run;
};

struct imap_cmd {
	const struct imap_cmd_def *def;
	struct arena *arena;
	const char *tag, *name;
	bool uid;
	struct imap_arg *args;
	size_t argc;
	imap_cmd_fn *cont; /* for AGAIN / WAIT */
	/* run after the tagged reply is queued (STARTTLS, LOGOUT) */
	void (*after)(struct imap_session *s);
	/* release resources of an unfinished command (connection lost) */
	void (*cleanup)(struct imap_cmd *cmd);
	void *ctx;
	const char *reply; /* "OK ...", "NO ...", "BAD ..." */
	bool no_sync;
	bool bad; /* counts as a client error */
};

struct imap_session {
	struct tern_env *env;
	const struct cfg_listener *listener;
	struct conn *c;
	char id[16];
	unsigned state;
	enum imap_input_mode mode;
	struct arena *arena; /* command arena, NULL while idle */
	struct imap_parser *parser;
	struct imap_cmd *cmd;
	int64_t account_id;
	char *user;
	/* imap_session_append_limit's last answer, for user, and when */
	uint64_t append_limit;
	int64_t append_limit_ms;
	bool utf8;	/* ENABLE UTF8=ACCEPT or IMAP4rev2 */
	bool rev2;	/* ENABLE IMAP4rev2 */
	bool utf8_accept; /* ENABLE UTF8=ACCEPT itself */
	bool condstore;	/* CONDSTORE enabled (RFC 7162 3.1) */
	bool qresync;	/* ENABLE QRESYNC (RFC 7162 3.2.3) */
	bool expunges_sent; /* this command's sync sent EXPUNGE/VANISHED */
	bool closing;	/* LOGOUT / BYE sent */
	bool in_sync;
	unsigned errors;
	struct imap_view *view;
	uint32_t *saved_uids; /* SEARCHRES "$", xmalloc'd */
	size_t saved_count;
	struct auth_sasl *sasl;
	struct ev_timer *delay_timer;
	/* IDLE and notification list */
	bool idling;
	char *idle_tag;
	struct imap_session *idle_prev, *idle_next;
	struct imap_session *prev, *next;
	/* APPEND streaming */
	struct imap_append *append;
	/* a command's write is on the commit thread (imap_session_commit) */
	bool commit_pending;
	/* SELECT's view is being read on the read thread (imap_cmd_select.c) */
	bool load_pending;
	/* connection closed while the APPEND or a write was pending */
	bool dead;
	/* NOTIFY (imap_cmd_notify.c) and COMPRESS (imap_cmd_compress.c) */
	struct imap_notify *notify;
	bool compressed;
};

/* Write an untagged/tagged line (CRLF appended). */
void imap_session_printf(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_session_write(struct imap_session *s, const void *data,
			size_t len);
/* Sync the view with the store and send EXISTS/EXPUNGE/FETCH. */
int imap_session_sync(struct imap_session *s, bool allow_expunge,
		      bool in_uid_cmd);
/* The messages with these UIDs were removed by this session's own command
   (MOVE): send their EXPUNGE now and drop them from the view. */
void imap_session_expunged(struct imap_session *s, const uint32_t *uids,
			   size_t count);
/* \Recent is never stored: a session-only bit next to enum store_flag,
   shown to IMAP4rev1 clients only (RFC 9051 removed it). */
#define IMAP_FLAG_RECENT (1u << 31)
/* m->flags plus IMAP_FLAG_RECENT when the client is to see it. */
uint32_t imap_msg_flags(const struct imap_session *s,
			const struct imap_msg *m);
/* Take the view's messages from recent_uid on as \Recent (a read-write
   view claims them in the store first; a read-only one only looks). */
void imap_view_take_recent(struct imap_session *s, uint32_t recent_uid);
/* Number of \Recent messages in the view. */
size_t imap_view_recent_count(const struct imap_view *v);
/* Update message idx of the view with flags read from the store. */
void imap_view_set_flags(struct imap_view *v, size_t idx, uint32_t flags,
			 const char *keywords);
/* Keywords kw (space-separated) are in use in the mailbox: when one is
   new to the view, send FLAGS and PERMANENTFLAGS again (RFC 9051 7.3.5)
   before the FETCH that shows it (imap_cmd_select.c). */
void imap_view_keywords_add(struct imap_session *s, const char *kw);
/* Send "* n FETCH (FLAGS (...))" for message idx (UID too when uid). */
void imap_view_send_flags(struct imap_session *s, size_t idx, bool uid);
/* A command's write on the worker's commit thread (STORE, EXPUNGE,
   CLOSE, COPY, MOVE): the thread runs job.run with its own store in a savepoint of
   its group-committed batch; once that batch is durable (or failed) the
   command's cont runs on the loop, the session alive, and reads
   job.result. Lives in the command arena. */
struct imap_commit {
	struct store_commit_job job; /* first: the job is the write */
	struct imap_session *s;
};
/* Submit ic (ic->job.run set by the caller) and return IMAP_CMD_WAIT:
   the session reads no further command until cont has run. A session
   whose connection closes meanwhile is freed when the job is done. */
enum imap_cmd_res imap_session_commit(struct imap_session *s,
				      struct imap_cmd *cmd,
				      struct imap_commit *ic,
				      imap_cmd_fn *cont);
/* A flag change on the commit thread: STORE, and the implicit \Seen of
   a body FETCH. Its run (imap_flag_job_run) calls store_msg_set_flags
   with the thread's store; the owner reads modseq and modified after. */
struct imap_flag_job {
	struct imap_commit ic; /* first */
	int64_t mailbox_id;
	const uint32_t *uids; /* ascending, not expunged in the view */
	size_t k;
	enum store_flag_op op;
	uint32_t flags;
	const char *keywords;
	uint64_t since; /* UNCHANGEDSINCE, 0 for none */
	/* out of the thread */
	uint64_t modseq;
	uint32_t *modified; /* xmalloc'd: UIDs UNCHANGEDSINCE refused */
	size_t nmod;
};
int imap_flag_job_run(struct store *st, struct store_commit_job *job);
/* Free what the job's run handed back (idempotent). */
void imap_flag_job_clear(struct imap_flag_job *j);
/* Resume a command that returned AGAIN/WAIT. */
void imap_session_resume(struct imap_session *s);
/* Finish the running WAIT command (after its cont set the reply). */
void imap_session_cmd_done(struct imap_session *s);
/* Capability string for the current state (no leading space). */
const char *imap_session_capability(struct imap_session *s);
/* Log in as the account (after a verified password). 0 or -1. */
int imap_session_login(struct imap_session *s, const char *user);
/* The account's message size limit for APPEND (APPENDLIMIT). */
uint64_t imap_session_append_limit(struct imap_session *s);
void imap_session_unselect(struct imap_session *s);
bool imap_session_plaintext_ok(struct imap_session *s);
/* Send "* BYE text" and close after flushing. */
void imap_session_bye(struct imap_session *s, const char *text);
/* Keywords of one view at most (FLAGS / PERMANENTFLAGS). */
#define IMAP_VIEW_KEYWORDS_MAX_BYTES \
	(STORE_KEYWORDS_MAX * (STORE_KEYWORD_MAX_BYTES + 1) * 4)
/* Add each keyword of the space-separated kw (NULL: none) to the set in
   all, case-insensitively (imap_cmd_select.c). */
void imap_keywords_merge(struct buf *all, const char *kw);

/* ---- per-worker cache of large views (imap_view_cache.c) ---- */
struct store;
struct store_mailbox;
struct store_msg;
/* Mailboxes whose view is cached per worker, and the sizes cached. */
#define IMAP_VIEW_CACHE_ENTRIES 4
#define IMAP_VIEW_CACHE_MIN_MSGS 1000
#define IMAP_VIEW_CACHE_MAX_MSGS (2u * 1024u * 1024u)
/* A SELECT of a mailbox that is not cached and has had more UIDs than
   this reads its view on the worker's read thread (imap_cmd_select.c),
   not on the loop. */
#define IMAP_VIEW_THREAD_MIN_UIDS 1000
/* Start and stop that thread (imap_init, imap_deinit). 0 or -1. */
int imap_select_init(struct tern_env *env);
void imap_select_deinit(void);
/* Fill v->msgs, count, cap and keywords from the cached snapshot of box,
   brought up to date with the store first. 1 done, 0 not cached (v
   untouched), -1 store error (v untouched). */
int imap_view_cache_load(struct store *st, const struct store_mailbox *box,
			 struct imap_view *v);
/* Keep a copy of v, just loaded whole from the store for box, when it
   is large enough to be worth it (the least recently used goes). */
void imap_view_cache_put(const struct store_mailbox *box,
			 const struct imap_view *v);
/* Free every snapshot (tests; a worker's exit). */
void imap_view_cache_deinit(void);
/* A cached snapshot (exposed for the unit test of apply). */
struct imap_view_snap {
	int64_t mailbox_id; /* 0: free slot */
	uint32_t uidvalidity;
	uint64_t modseq;       /* every change up to it is in msgs */
	struct imap_msg *msgs; /* ascending UIDs; keywords owned here */
	size_t count, cap;
	char *keywords; /* the mailbox's keyword set, as in a view */
	uint64_t used;	/* LRU tick */
};
/* Apply store changes (msgs ascending by UID, as store_msg_changes
   returns them) and expunged UIDs to c; their keywords are merged into
   keywords. Idempotent. */
void imap_view_snap_apply(struct imap_view_snap *c,
			  const struct store_msg *msgs, size_t n,
			  const uint32_t *expunged, size_t nexp,
			  struct buf *keywords);

/* ---- per-worker cache of immutable message data (imap_msg_cache.c) */
/* Fill m (id, uid, size, dates, blob; no flags or keywords) for the
   message uid of the mailbox, if cached. */
bool imap_msg_cache_get(int64_t mailbox_id, uint32_t uidvalidity, uint32_t uid,
			struct store_msg *m);
void imap_msg_cache_put(int64_t mailbox_id, uint32_t uidvalidity,
			const struct store_msg *m);
void imap_msg_cache_deinit(void);

/* Free the view (and keywords). */
void imap_view_free(struct imap_view **vp);
/* The messages of a view (or of a cached copy) with their keywords. */
void imap_msgs_free(struct imap_msg *msgs, size_t n);
/* Index of uid in the view (0-based), or -1. */
long imap_view_find_uid(const struct imap_view *v, uint32_t uid);

/* Set the reply of cmd (arena copy). */
void imap_cmd_ok(struct imap_cmd *cmd, const char *text);
void imap_cmd_reply(struct imap_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_cmd_bad(struct imap_cmd *cmd, const char *text);
void imap_cmd_no(struct imap_cmd *cmd, const char *text);
struct arena *imap_cmd_arena(struct imap_session *s);

/* ---- command table (imap_cmd.c) ---- */
const struct imap_cmd_def *imap_cmd_find(const char *name);

/* Mailbox name from the client (astring) to UTF-8 (arena), honouring
   UTF8=ACCEPT; "INBOX" any case becomes "INBOX". NULL with *error_r on
   bad names (invalid mUTF-7, control characters, empty levels, ".."). */
const char *imap_mailbox_from_arg(struct imap_session *s,
				  const struct imap_arg *arg,
				  const char **error_r);
/* Append a UTF-8 mailbox name as the client expects (quoted, mUTF-7
   unless UTF-8 is enabled; a literal when needed). */
int imap_write_mailbox(struct imap_session *s, struct buf *out,
		       const char *name);
/* Append s as an IMAP astring/string (quoted or literal). */
int imap_write_string(struct buf *out, const char *s, size_t len);
/* "\Seen \Answered kw1 kw2" */
int imap_write_flags(struct buf *out, uint32_t flags, const char *keywords);
/* Parse a flag list ("(\Seen kw)" or a single flag atom). Keywords are
   returned space-separated (arena) or NULL. 0, or -1 with *error_r. */
int imap_flags_parse(struct arena *a, const struct imap_arg *args,
		     size_t count, bool allow_recent, uint32_t *flags_r,
		     const char **keywords_r, const char **error_r);
/* Parse a sequence set argument including "$" (saved result, as UIDs),
   resolved against the view: fills the 0-based indexes of the
   messages it selects, ascending. uid: the set names UIDs. 0, or -1
   with *error_r (BAD). */
int imap_set_to_indexes(struct imap_session *s, const struct imap_arg *arg,
			bool uid, size_t **idx_r, size_t *count_r,
			const char **error_r);
/* Parse "dd-Mon-yyyy hh:mm:ss +zzzz" (APPEND) or "d-Mon-yyyy" (SEARCH).
   0 or -1. */
int imap_date_time_parse(const char *s, int64_t *time_r);
int imap_date_parse(const char *s, int64_t *day_start_r);
/* "dd-Mon-yyyy hh:mm:ss +0000" for INTERNALDATE. */
void imap_date_time_format(int64_t t, char *out, size_t outlen);

/* Commands (imap_cmd_*.c). */
imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout,
	imap_cmd_starttls, imap_cmd_login, imap_cmd_authenticate,
	imap_cmd_enable, imap_cmd_id, imap_cmd_namespace, imap_cmd_select,
	imap_cmd_examine, imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
	imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list,
	imap_cmd_lsub, imap_cmd_status, imap_cmd_append, imap_cmd_check,
	imap_cmd_close, imap_cmd_unselect, imap_cmd_expunge,
	imap_cmd_search, imap_cmd_fetch, imap_cmd_store, imap_cmd_copy,
	imap_cmd_move, imap_cmd_uid, imap_cmd_getquota,
	imap_cmd_getquotaroot, imap_cmd_idle, imap_cmd_notify,
	imap_cmd_compress;

/* SASL continuation line for AUTHENTICATE (imap_cmd_auth.c). */
void imap_auth_sasl_line(struct imap_session *s, struct strview line);
/* IDLE continuation line (imap_cmd_idle.c). */
void imap_idle_line(struct imap_session *s, struct strview line);
/* APPEND literal bytes (imap_cmd_append.c): consume from input. */
void imap_append_input(struct imap_session *s);
void imap_append_free(struct imap_session *s);
/* Is the session's APPEND on the commit thread (the session must not be
   freed before its done)? */
bool imap_append_pending(const struct imap_session *s);
/* Called by the APPEND's done: when the connection closed while the job
   was on the thread, free the session now and return true. */
bool imap_session_dead(struct imap_session *s);
/* STATUS items for one mailbox into out: "(MESSAGES 1 ...)".
   items: parsed list. 0, or store error. */
int imap_status_write(struct imap_session *s, struct buf *out,
		      int64_t mailbox_id, unsigned items);
#define IMAP_STATUS_MESSAGES 1u
#define IMAP_STATUS_UIDNEXT 2u
#define IMAP_STATUS_UIDVALIDITY 4u
#define IMAP_STATUS_UNSEEN 8u
#define IMAP_STATUS_DELETED 16u
#define IMAP_STATUS_SIZE 32u
#define IMAP_STATUS_RECENT 64u
#define IMAP_STATUS_HIGHESTMODSEQ 128u
#define IMAP_STATUS_APPENDLIMIT 256u /* RFC 7889 */
#define IMAP_STATUS_MAILBOXID 512u /* RFC 8474 */
int imap_status_items_parse(const struct imap_arg *list, unsigned *items_r);

/* The LIST response of one existing mailbox (SELECT of an IMAP4rev2
   client, RFC 9051 6.3.2). Nothing when it is not found. */
void imap_list_write_one(struct imap_session *s, const char *name);

/* ---- search (imap_search.c) ---- */
struct imap_search;
/* ESEARCH / ESORT RETURN options (RFC 4731 3.1, RFC 5267 3.2). */
#define IMAP_ESEARCH_MIN 1u
#define IMAP_ESEARCH_MAX 2u
#define IMAP_ESEARCH_COUNT 4u
#define IMAP_ESEARCH_ALL 8u
#define IMAP_ESEARCH_SAVE 16u
/* Parse the RETURN list into *opts_r (an empty list means ALL). 0, or
   -1 on an unknown option. */
int imap_search_return(const struct imap_arg *list, unsigned *opts_r);
/* "* ESEARCH (TAG ...)[ UID]" and the RETURN items opts asks for, of
   nums[0..n) in the order given (MIN is nums[0], MAX nums[n - 1]); no
   CRLF. For SEARCH (ascending) and ESORT (sort order). */
void imap_esearch_write(struct buf *b, const struct imap_cmd *cmd,
			unsigned opts, const uint32_t *nums, size_t n);
/* Parse search keys args[0..count). NULL with *error_r (BAD) or with
   *no_r set (NO, e.g. BADCHARSET). */
struct imap_search *imap_search_parse(struct imap_session *s,
				      struct arena *a,
				      const struct imap_arg *args,
				      size_t count, const char **error_r,
				      bool *no_r);

/* ---- notifications (imap_notify.c) ---- */
void imap_notify_idle_add(struct imap_session *s);
void imap_notify_idle_remove(struct imap_session *s);
void imap_notify_publish(struct imap_session *s, int64_t mailbox_id);

/* ---- sessions list (imap_session.c) ---- */
void imap_session_notify(struct imap_session *s);

/* ---- CONDSTORE, QRESYNC, OBJECTID, PREVIEW (imap_condstore.c) ---- */
/* Turn CONDSTORE on for the session (RFC 7162 3.1: ENABLE or any
   CONDSTORE-enabling command); from then on FETCH responses carry
   MODSEQ. */
void imap_condstore_enable(struct imap_session *s);
/* Tell the client that the messages uids[0..n) (ascending) are gone:
   "* VANISHED [(EARLIER)] set" (RFC 7162 3.2.10), in lines of bounded
   length. Only for QRESYNC sessions (the caller sends EXPUNGE else). */
void imap_condstore_vanished(struct imap_session *s, const uint32_t *uids,
			     size_t n, bool earlier);
/* SELECT/EXAMINE parameters (RFC 4466 select-params): "(CONDSTORE)" and
   "(QRESYNC (uidvalidity modseq [known-uids [seq-match]]))". */
struct imap_qresync {
	bool set;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known; /* count 0: not given */
};
/* 0, or -1 with cmd's reply set (BAD). */
int imap_condstore_select_params(struct imap_session *s, struct imap_cmd *cmd,
				 const struct imap_arg *list,
				 struct imap_qresync *q_r);
/* After the SELECT untagged responses: HIGHESTMODSEQ, MAILBOXID and,
   for QRESYNC with a matching UIDVALIDITY, VANISHED (EARLIER) and the
   FETCH of each message changed since q->modseq. 0 or -1 (store). */
int imap_condstore_select_sync(struct imap_session *s,
			       const struct imap_qresync *q);
/* FETCH modifiers "(CHANGEDSINCE n [VANISHED])" (RFC 7162 3.1.4, 3.2.6):
   drops from idx[] the messages not changed since n, sends VANISHED
   (EARLIER) when asked; *modseq_r says MODSEQ is to be fetched. 0, or -1
   with cmd's reply set. */
int imap_condstore_fetch_modifiers(struct imap_session *s,
				   struct imap_cmd *cmd,
				   const struct imap_arg *list, size_t *idx,
				   size_t *n, bool *modseq_r);
/* STORE modifier "(UNCHANGEDSINCE n)" (RFC 7162 3.1.3): *since_r, and
   *given_r. 0, or -1 with cmd's reply set. */
int imap_condstore_store_modifiers(struct imap_session *s,
				   struct imap_cmd *cmd,
				   const struct imap_arg *list,
				   uint64_t *since_r);
/* "* n FETCH ([UID u ]MODSEQ (m))" for message idx. */
void imap_condstore_send_modseq(struct imap_session *s, size_t idx, bool uid);
/* Before the tagged OK: add [HIGHESTMODSEQ n] when this command sent
   expunges to a CONDSTORE client (RFC 7162 3.1.10, 3.2.10). */
void imap_condstore_reply(struct imap_session *s, struct imap_cmd *cmd);
/* RFC 8474 object ids: "F<mailbox id>", "M<24 hex of the blob hash>". */
#define IMAP_OBJECTID_MAX_BYTES 32
void imap_objectid_mailbox(char *out, size_t outlen, int64_t mailbox_id);
void imap_objectid_email(char *out, size_t outlen, const char *blob);
/* RFC 8970 PREVIEW of a whole message: its decoded text, white space
   collapsed, cut at IMAP_PREVIEW_MAX_CHARS characters, as an IMAP
   string. 0, or -1 when out->max is exceeded. */
#define IMAP_PREVIEW_MAX_CHARS 256
int imap_preview_write(struct buf *out, const uint8_t *msg, size_t len);

/* ---- NOTIFY (RFC 5465): imap_cmd_notify.c parses, imap_watch.c
   delivers. Per session only the parsed filters live; the mailbox list
   and counters they are compared with are kept once per account per
   worker process. ---- */
#define IMAP_NOTIFY_GROUPS_MAX 32
#define IMAP_NOTIFY_NAMES_MAX 256
/* Untagged notifications held while a command runs; past it the
   session gets NOTIFICATIONOVERFLOW and NOTIFY is off (RFC 5465 5.8). */
#define IMAP_NOTIFY_PENDING_MAX_BYTES (32 * 1024)

#define IMAP_NEV_NEW 1u
#define IMAP_NEV_EXPUNGE 2u
#define IMAP_NEV_FLAGS 4u
#define IMAP_NEV_NAME 8u
#define IMAP_NEV_SUBS 16u
#define IMAP_NEV_MESSAGE (IMAP_NEV_NEW | IMAP_NEV_EXPUNGE | IMAP_NEV_FLAGS)
/* MessageNew fetch-att served for the selected mailbox: UID and FLAGS
   as bits; anything else as parsed fetch items (imap_fetch.c) */
#define IMAP_NFETCH_UID 1u
#define IMAP_NFETCH_FLAGS 2u
/* the longest partial body section a MessageNew fetch-att may ask */
#define IMAP_NOTIFY_FETCH_PARTIAL_MAX (64 * 1024)

enum imap_notify_filter {
	IMAP_NF_SELECTED,
	IMAP_NF_SELECTED_DELAYED,
	IMAP_NF_INBOXES,
	IMAP_NF_PERSONAL,
	IMAP_NF_SUBSCRIBED,
	IMAP_NF_SUBTREE,
	IMAP_NF_MAILBOXES,
};

struct imap_notify_group {
	enum imap_notify_filter filter;
	unsigned events; /* IMAP_NEV_* */
	char **names;	 /* UTF-8, subtree / mailboxes */
	size_t count;
};

struct imap_watch_acct;
struct store_notify_event;

struct imap_notify {
	struct imap_session *s;
	struct imap_watch_acct *acct;
	struct imap_notify *prev, *next; /* sessions of acct */
	bool status;			 /* NOTIFY SET STATUS */
	bool overflow;
	unsigned fetch; /* IMAP_NFETCH_* */
	struct imap_fetch *fetch_items; /* other fetch-att, or NULL */
	struct arena *fetch_arena;	/* holds fetch_items */
	/* MessageNew fetch-att sent for UIDs up to new_uid of mailbox
	   new_box (or they were known before: SELECT, NOTIFY SET) */
	int64_t new_box;
	uint32_t new_uid;
	struct imap_notify_group *groups;
	size_t ngroups;
	struct buf *pending; /* while a command runs, or NULL */
};

/* Events wanted for a mailbox that is not the selected one (the first
   group that names it decides; RFC 5465 6). */
unsigned imap_notify_events(const struct imap_notify *n, const char *name,
			    bool subscribed);
/* Events wanted for the selected mailbox; *delayed_r for
   selected-delayed (no EXPUNGE outside commands). */
unsigned imap_notify_selected_events(const struct imap_notify *n,
				     bool *delayed_r);
void imap_notify_free(struct imap_notify **np);
struct imap_fetch;
/* MessageNew's fetch-att list, parsed in tmp and copied compactly into
   dst; NULL with the reply in *error_r when invalid, when it would set
   \Seen, or when a body section is neither a header nor a partial of
   at most IMAP_NOTIFY_FETCH_PARTIAL_MAX bytes. */
struct imap_fetch *imap_fetch_parse_notify(struct arena *tmp,
					   struct arena *dst,
					   const struct imap_arg *list,
					   const char **error_r);
/* "* n FETCH (...)" for view messages idx[0..n) (ascending), written
   at once; MODSEQ added when CONDSTORE is enabled. */
void imap_fetch_notify_write(struct imap_session *s,
			     const struct imap_fetch *f, const size_t *idx,
			     size_t n);

/* Attach n to s (replacing any) and load the account's snapshot. */
int imap_watch_add(struct imap_session *s, struct imap_notify *n);
/* NOTIFY NONE, logout: detach and free s->notify. */
void imap_watch_remove(struct imap_session *s);
/* A store event reached this process (imap_notify.c). */
void imap_watch_event(const struct store_notify_event *ev);
/* A command ended: send what was held back. */
void imap_watch_flush(struct imap_session *s);
/* NOTIFY SET STATUS: a STATUS for every watched unselected mailbox. */
void imap_watch_status_all(struct imap_session *s);

#endif
