#ifndef TERN_POP3_INT_H
#define TERN_POP3_INT_H
/* Private to src/pop3/: limits, the command-line parser, the message
   streamer (dot-stuffing, TOP), the maildrop (lock, load, expunge), the
   session and the command table. Never include from outside src/pop3/. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/strview.h"
#include "store/store.h"

struct arena;
struct auth_sasl;
struct cfg_listener;
struct conn;
struct ev_timer;
struct tern_env;

/* ---- limits ---- */
/* RFC 2449 section 4: a command line is at most 255 octets with its CRLF.
   We accept 255 octets without the line end (2 octets of slack). */
#define POP3_LINE_MAX_BYTES 255
/* A SASL client response line (RFC 5034 4 does not cap it): enough for
   base64 of the largest PLAIN or SCRAM message auth accepts. */
#define POP3_SASL_LINE_MAX_BYTES 4096
/* RFC 1939 commands take at most two arguments (TOP msg n). */
#define POP3_ARGS_MAX 2
/* Client errors before the session is closed. */
#define POP3_ERRORS_MAX 50
/* Source bytes of a message formatted per slice, and listing lines per
   slice, before the output queue is checked again. */
#define POP3_SLICE_BYTES (64 * 1024)
#define POP3_LIST_SLICE_LINES 1024
/* Arena size hint for one command. */
#define POP3_CMD_ARENA_BYTES 1024

/* ---- parser (pop3_parse.c) ---- */
enum pop3_parse_res {
	POP3_PARSE_OK,
	POP3_PARSE_ERR,
};

struct pop3_cmdline {
	char name[5];	/* keyword, uppercased, NUL-terminated */
	struct strview args[POP3_ARGS_MAX];
	size_t argc;
	bool extra;	/* more than POP3_ARGS_MAX arguments were given */
	/* Everything after the keyword and its single space (PASS takes
	   the whole rest as the password: RFC 1939 allows spaces in it). */
	struct strview rest;
};

/* Parse one command line (without its line end) into *cmd_r. The views in
   *cmd_r point into line. POP3_PARSE_ERR: *error_r is a static string for
   the "-ERR" reply; the line is empty, the keyword is not 3 or 4 ASCII
   letters, or the line holds a NUL or other control byte. Arguments are
   separated by spaces (runs of spaces and trailing spaces are tolerated). */
enum pop3_parse_res pop3_parse_line(struct strview line,
				    struct pop3_cmdline *cmd_r,
				    const char **error_r);
/* A message number (1..max): 0 or -1. */
int pop3_parse_msgnum(struct strview v, uint32_t max, uint32_t *num_r);

/* ---- message formatting (pop3_msg.c) ---- */
typedef void pop3_write_fn(void *ctx, const void *data, size_t len);

/* Formats a message as a multi-line response body (RFC 1939 3): line ends
   become CRLF, a line starting with '.' gets one more, and with top set
   only the header, the blank line and top_lines body lines are sent. The
   terminating ".\r\n" is not written (the caller adds it). */
struct pop3_msg_fmt {
	const uint8_t *data;
	size_t len, pos;
	bool top;
	uint32_t top_lines;
	bool in_body;
	bool at_line_start;
	bool done;
};
void pop3_msg_fmt_init(struct pop3_msg_fmt *f, const uint8_t *data,
		       size_t len, bool top, uint32_t top_lines);
/* Format at most budget source bytes (at least one line piece) through
   write. Returns true when the whole response body has been written. */
bool pop3_msg_fmt_run(struct pop3_msg_fmt *f, size_t budget,
		      pop3_write_fn *write, void *ctx);

/* ---- maildrop (pop3_maildrop.c) ---- */
struct pop3_maildrop {
	int64_t account_id;
	int64_t mailbox_id;
	uint32_t uidvalidity;
	int lock_fd;
	struct store_msg *msgs;	/* INBOX at login, ascending UID */
	size_t count;
	bool *deleted;		/* marked by DELE, per message */
	size_t live_count;	/* messages not marked */
	uint64_t live_bytes;
};

enum pop3_maildrop_res {
	POP3_MAILDROP_OK,
	POP3_MAILDROP_IN_USE,
	POP3_MAILDROP_ERR,
};
/* Lock the account's maildrop across processes (an flock(2)ed file under
   DATADIR/run/) and load its INBOX. On error nothing is held. */
enum pop3_maildrop_res pop3_maildrop_open(struct pop3_maildrop *md,
					  struct store *store,
					  const char *account,
					  const char **error_r);
/* QUIT's UPDATE: the marked messages removed (store_msg_expunge) on the
   worker's commit thread, in a group-committed batch, so the loop serves
   the other sessions during its fsync. The job holds the maildrop's
   lock until it is done (durable or failed: job.result). */
struct pop3_update {
	struct store_commit_job job; /* first: the job is the update */
	struct pop3_session *s;	     /* NULL once the session is gone */
	char id[32];		     /* the session's, for the log */
	char user[256];		     /* the account, for the log */
	int64_t mailbox_id;
	uint32_t *uids;
	size_t count;
	int lock_fd;
};
/* The update of md's marked messages, with md's lock (md keeps its
   list); done set, not submitted. Free it with pop3_update_free. */
struct pop3_update *pop3_maildrop_update(struct pop3_maildrop *md,
					 store_commit_done_fn *done);
/* Release the lock and free (safe on NULL). */
void pop3_update_free(struct pop3_update **up);
/* Release the lock only. */
void pop3_maildrop_unlock(struct pop3_maildrop *md);
/* Release the lock and free the list; safe on a zeroed or closed one. */
void pop3_maildrop_close(struct pop3_maildrop *md);
/* Message n (1-based) when it exists and is not marked, else NULL. */
const struct store_msg *pop3_maildrop_get(const struct pop3_maildrop *md,
					  uint32_t n);
void pop3_maildrop_mark(struct pop3_maildrop *md, uint32_t n);
void pop3_maildrop_reset(struct pop3_maildrop *md);
/* The UIDL of message n into out (see pop3_maildrop.c for the choice). */
void pop3_maildrop_uidl(const struct pop3_maildrop *md, uint32_t n,
			char *out, size_t outlen);

/* ---- session (pop3_session.c) ---- */
enum pop3_state {
	POP3_STATE_AUTHORIZATION = 1 << 0,
	POP3_STATE_TRANSACTION = 1 << 1,
	POP3_STATE_UPDATE = 1 << 2,
};

enum pop3_stream_kind {
	POP3_STREAM_NONE,
	POP3_STREAM_MSG,
	POP3_STREAM_LIST,
	POP3_STREAM_UIDL,
};

struct pop3_session {
	struct tern_env *env;
	const struct cfg_listener *listener;
	struct conn *c;
	enum pop3_state state;
	struct arena *cmd_arena;
	unsigned errors;
	/* AUTHORIZATION */
	char *user;			/* from USER, xmalloc'd */
	struct auth_sasl *sasl;		/* during AUTH */
	bool sasl_final;		/* sent SCRAM "v=" as a challenge */
	struct ev_timer *delay;		/* failed-login delay pending */
	char *delayed_reply;		/* sent when delay fires */
	/* TRANSACTION */
	char *account;			/* authenticated address */
	struct pop3_maildrop md;
	/* a multi-line response in slices */
	enum pop3_stream_kind stream;
	struct store_map map;
	struct pop3_msg_fmt fmt;
	uint32_t list_next;
	bool busy;			/* stream, delay or update: input paused */
	struct pop3_update *update;	/* QUIT on the commit thread */
	struct pop3_session *prev, *next;
};

/* Replies (each adds CRLF). */
void pop3_reply_ok(struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pop3_reply_err(struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A client error: "-ERR msg", counted against POP3_ERRORS_MAX. */
void pop3_client_error(struct pop3_session *s, const char *msg);
/* Send reply after the throttle's delay for this failure (input is
   paused meanwhile); reply is copied. */
void pop3_session_fail_delayed(struct pop3_session *s, const char *reply);
/* Start a multi-line stream (RETR/TOP/LIST/UIDL) after "+OK" was sent. */
void pop3_session_stream_start(struct pop3_session *s,
			       enum pop3_stream_kind kind);
bool pop3_session_plaintext_ok(const struct pop3_session *s);
bool pop3_session_stls_ok(const struct pop3_session *s);
/* Close after queued output (no UPDATE). */
void pop3_session_close(struct pop3_session *s);

/* ---- commands (pop3_cmd.c, pop3_auth.c) ---- */
typedef void pop3_cmd_fn(struct pop3_session *s,
			 const struct pop3_cmdline *cmd);
struct pop3_cmd {
	const char *name;
	unsigned states;	/* enum pop3_state bits */
	pop3_cmd_fn *run;
};
/* The command named name (uppercase), or NULL. */
const struct pop3_cmd *pop3_cmd_find(const char *name);
/* A line while AUTH is in progress (a SASL response). */
void pop3_auth_continue(struct pop3_session *s, struct strview line);
/* Free SASL and USER state. */
void pop3_auth_reset(struct pop3_session *s);

pop3_cmd_fn pop3_cmd_user, pop3_cmd_pass, pop3_cmd_auth, pop3_cmd_stls,
	pop3_cmd_capa;

#endif
