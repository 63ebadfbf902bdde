#ifndef TERN_SMTP_INT_H
#define TERN_SMTP_INT_H
/* Private to src/smtp/: limits, the pure parsers (smtp_parse.c), the DATA
   and BDAT state machines (smtp_data.c), the session (smtp_session.c), the
   command table (smtp_cmd.c), AUTH (smtp_auth.c) and delivery with group
   commit (smtp_deliver.c). Never included from outside the folder. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/strview.h"

/* ---- limits ---- */
/* A command line without its CRLF (RFC 5321 4.5.3.1.4 asks for at least
   512; ESMTP parameters need more). */
#define SMTP_LINE_MAX 4096
/* One SASL response line (base64 of a PLAIN response or SCRAM message). */
#define SMTP_AUTH_LINE_MAX 12288
/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets. */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
#define SMTP_LABEL_MAX 63
/* RFC 3461 4.4: ENVID at most 100 characters; ORCPT 500 (4.2). */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500
/* ESMTP parameters accepted on one MAIL or RCPT. */
#define SMTP_PARAMS_MAX 16
/* EHLO/HELO argument kept for the Received: header. */
#define SMTP_HELO_MAX 255
/* SASL mechanism name (RFC 4422 3.1: 1 to 20 characters). */
#define SMTP_MECH_MAX 20
/* NOOP, RSET, VRFY and HELP commands allowed between two accepted
   messages; past it each one also counts as an error (Postfix's
   smtpd_junk_command_limit), so a client cannot hold a connection open
   forever with them. */
#define SMTP_JUNK_MAX 100

/* ---- command line (smtp_parse.c) ---- */
enum smtp_parse_res {
	SMTP_PARSE_OK,
	SMTP_PARSE_SYNTAX,	   /* 501 5.5.4 (or 500 for a bad verb) */
	SMTP_PARSE_BAD_PATH,	   /* 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT) */
	SMTP_PARSE_BAD_PARAM,	   /* 501 5.5.4: known keyword, bad value */
	SMTP_PARSE_UNKNOWN_PARAM,  /* 555 5.5.4 */
};

struct smtp_cmdline {
	struct strview verb; /* 1..16 letters, as sent */
	struct strview args; /* after the first space, may be empty */
};
/* Split a command line (no CRLF) into verb and arguments. SMTP_PARSE_OK
   or SMTP_PARSE_SYNTAX (empty line, NUL or other control byte, verb not
   alphabetic or too long). Views point into line. */
enum smtp_parse_res smtp_parse_cmdline(struct strview line,
				       struct smtp_cmdline *cmd_r);

/* A reverse- or forward-path (RFC 5321 4.1.2, RFC 6531 3.3). */
struct smtp_path {
	/* "local@domain" with any source route removed and one trailing dot
	   of the domain dropped; "" for the null path; "postmaster" for the
	   special RCPT TO:<Postmaster>. The local part is as sent (quotes
	   kept). NUL-terminated. */
	char addr[SMTP_PATH_MAX + 1];
	size_t local_len;  /* bytes of the local part in addr */
	bool null;	   /* <> */
	bool postmaster;   /* <postmaster> without a domain */
	bool route;	   /* a source route was present and removed */
	bool quoted;	   /* quoted-string local part */
	bool utf8;	   /* contains non-ASCII (needs SMTPUTF8) */
	bool literal;	   /* the domain is an address literal [..] */
	bool trailing_dot; /* the domain had a trailing dot (dropped) */
};

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_params {
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* xtext as sent, "" when none */
	bool has_auth;			/* AUTH= given (RFC 4954 5; ignored) */
};

#define SMTP_NOTIFY_NEVER 1u
#define SMTP_NOTIFY_SUCCESS 2u
#define SMTP_NOTIFY_FAILURE 4u
#define SMTP_NOTIFY_DELAY 8u
struct smtp_rcpt_params {
	unsigned int notify;		/* SMTP_NOTIFY_* bits, 0 when none */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "rfc822;xtext" as sent, or "" */
};

/* Arguments of MAIL: "FROM:<path> [params]". The "FROM:" keyword is
   case-insensitive; spaces after the colon are tolerated. utf8_ok: the
   SMTPUTF8 parameter may appear (it was offered). *error_r is a static
   reason. Never reads past args.len. */
enum smtp_parse_res smtp_parse_mail(struct strview args,
				    struct smtp_path *path_r,
				    struct smtp_mail_params *params_r,
				    const char **error_r);
/* Arguments of RCPT: "TO:<path> [params]". utf8: the transaction uses
   SMTPUTF8 (non-ASCII addresses and ORCPT utf-8 allowed). */
enum smtp_parse_res smtp_parse_rcpt(struct strview args, bool utf8,
				    struct smtp_path *path_r,
				    struct smtp_rcpt_params *params_r,
				    const char **error_r);
/* Parse exactly one "<path>" (the whole of *in is consumed up to '>').
   allow_null: <> is accepted. */
enum smtp_parse_res smtp_parse_path(struct strview *in, bool allow_null,
				    struct smtp_path *path_r,
				    const char **error_r);
/* RFC 3461 4: xtext syntax check (hexchars upper-case). */
bool smtp_parse_xtext_valid(struct strview v);
/* Length of the valid UTF-8 sequence at p (1..4), 0 when invalid. */
size_t smtp_parse_utf8_len(const unsigned char *p, size_t len);

/* "BDAT <size> [LAST]" (RFC 3030 2). */
enum smtp_parse_res smtp_parse_bdat(struct strview args, uint64_t *size_r,
				    bool *last_r);
/* EHLO/HELO argument: a domain or address literal, or at least something
   printable without spaces, quotes, parentheses or backslashes (what
   real clients send), at most SMTP_HELO_MAX bytes. */
enum smtp_parse_res smtp_parse_helo(struct strview args,
				    struct strview *name_r);
/* "AUTH <mech> [initial-response]" (RFC 4954 4). The mechanism is 1 to
   SMTP_MECH_MAX of [A-Z0-9-_] (any case); *ir_r is empty with *has_ir_r
   false when no initial response was given; "=" is an empty one. */
enum smtp_parse_res smtp_parse_auth(struct strview args,
				    struct strview *mech_r,
				    struct strview *ir_r, bool *has_ir_r);

/* ---- DATA and BDAT content (smtp_data.c) ---- */
/* Policy on bare CR and bare LF (RFC 5321 2.3.8; the 2023 "SMTP
   smuggling" advisories): DATA ends only at CRLF "." CRLF. A bare LF or
   bare CR never starts or ends a line; the message is read to its real
   end and then rejected with 550 5.6.0, so such a byte is never stored
   or relayed as a line end. */
enum smtp_data_state {
	SMTP_DATA_BOL,	  /* at the start of a line */
	SMTP_DATA_TEXT,	  /* inside a line */
	SMTP_DATA_CR,	  /* inside a line, saw CR */
	SMTP_DATA_DOT,	  /* a line began with "." */
	SMTP_DATA_DOTCR,  /* a line is "." CR so far */
	SMTP_DATA_END,	  /* CRLF.CRLF seen */
};

struct smtp_data {
	enum smtp_data_state state;
	uint64_t max_bytes; /* of unstuffed content; 0 = no limit */
	uint64_t size;	    /* unstuffed bytes so far (counted past max) */
	bool too_big;	    /* size exceeded max_bytes: output stopped */
	bool bare;	    /* a bare CR or LF was seen */
	bool last_cr;	    /* BDAT: previous byte was CR */
	/* The header scan, for loop detection (RFC 5321 6.3). */
	bool in_body;	    /* the empty line after the header was seen */
	uint8_t line_len;   /* bytes of the current header line, capped */
	uint8_t match;	    /* chars of "received:" matched; 0xff = none */
	uint8_t prev;	    /* the byte before, to see CR LF */
	uint32_t received;  /* Received: fields in the header */
};

enum smtp_data_res {
	SMTP_DATA_MORE, /* every input byte was consumed */
	SMTP_DATA_DONE, /* the terminator was consumed; *consumed_r says
			   how much of the input belonged to DATA */
};

void smtp_data_init(struct smtp_data *d, uint64_t max_bytes);
/* Feed DATA bytes. Unstuffed content goes to out (capacity at least
   len + 2), its length in *out_len_r; nothing is written once too_big.
   *consumed_r <= len bytes of in were used. */
enum smtp_data_res smtp_data_feed(struct smtp_data *d, const uint8_t *in,
				  size_t len, uint8_t *out, size_t *out_len_r,
				  size_t *consumed_r);
/* Account for len bytes of a BDAT chunk (passed through unchanged):
   size limit and bare CR/LF detection across chunks. */
void smtp_data_bdat_feed(struct smtp_data *d, const uint8_t *in, size_t len);
/* Count the Received: fields of the header section in len bytes of
   unstuffed content (any split); d->received holds the count. */
void smtp_data_scan_header(struct smtp_data *d, const uint8_t *in,
			   size_t len);
/* After the LAST chunk: a trailing CR is bare. */
void smtp_data_bdat_end(struct smtp_data *d);

/* ---- the session (smtp_session.c) ---- */
#include "lib/env.h"
#include "store/store.h"

struct conn;
struct arena;
struct auth_sasl;
struct ev_timer;

/* Session states (bits, so that the command table lists several). */
#define SMTP_S_INIT 0x01u     /* before EHLO/HELO */
#define SMTP_S_READY 0x02u    /* after EHLO/HELO, no transaction */
#define SMTP_S_MAIL 0x04u     /* MAIL accepted, no recipient yet */
#define SMTP_S_RCPT 0x08u     /* at least one recipient */
#define SMTP_S_CHUNKING 0x10u /* between BDAT chunks */
#define SMTP_S_DATA 0x20u     /* reading DATA content */
#define SMTP_S_BDAT 0x40u     /* reading a BDAT chunk */
#define SMTP_S_AUTH 0x80u     /* reading SASL responses */
#define SMTP_S_WAIT 0x100u    /* waiting: group commit or login delay */
#define SMTP_S_ANY 0x1ffu

/* Expanded local deliveries and remote recipients of one transaction
   (aliases multiply RCPTs). */
#define SMTP_EXPANDED_MAX 1000
/* Transaction id: hex digits. */
#define SMTP_ID_LEN 16
/* DATA is fed in slices of at most this many bytes. */
#define SMTP_SCRATCH_BYTES (64 * 1024)

struct smtp_remote {
	char *address; /* as given (route stripped, trailing dot dropped) */
	char *orcpt;   /* or NULL */
	char *notify;  /* "SUCCESS,FAILURE" etc., or NULL */
};

/* An account that gets the message, with the RCPT that led to it (the
   first one, when several did) for delivery status notifications. */
struct smtp_local {
	int64_t id;
	char *rcpt;	     /* forward-path as given (route stripped) */
	char *orcpt;	     /* ORCPT value as sent, or NULL */
	unsigned int notify; /* SMTP_NOTIFY_* bits, 0 when none given */
};

struct smtp_tx {
	struct arena *arena; /* reset by smtp_tx_reset() */
	bool active;
	char id[SMTP_ID_LEN + 1];
	char *sender; /* "" for <> */
	struct smtp_mail_params mp;
	uint64_t max_bytes;
	uint32_t max_rcpts;
	uint32_t rcpt_count; /* accepted RCPT commands */
	char *first_rcpt;    /* for the Received: "for" clause */
	struct smtp_local *local; /* accounts, deduplicated */
	size_t local_count;
	struct smtp_remote *remote; /* deduplicated */
	size_t remote_count;
	/* content */
	struct smtp_data data;
	bool started; /* writers open, headers written */
	bool write_failed;
	bool write_nospace; /* that failure was a full disk */
	struct store_blob_writer *w_local, *w_remote, *w_sent;
	uint64_t bdat_left;
	bool bdat_last;
	bool bdat_discard; /* chunk read and dropped (bad sequence) */
	bool bdat_norcpt;  /* ... because no RCPT was accepted (554) */
};

struct smtp_session {
	struct tern_env *env;
	const struct cfg_listener *listener;
	struct conn *c;
	struct smtp_session *prev, *next; /* every session of the worker */
	unsigned int state;
	bool esmtp;
	char helo[SMTP_HELO_MAX + 1];
	unsigned int errors;
	unsigned int junk; /* see SMTP_JUNK_MAX */
	/* AUTH */
	bool authed;
	int64_t account_id;
	char *account; /* xmalloc'd address */
	struct store_plan plan;
	struct auth_sasl *sasl;
	bool sasl_final_sent; /* SCRAM "v=" went out as a challenge */
	struct ev_timer *delay;
	char *delayed_reply; /* sent when the delay timer fires */
	bool delayed_is_error; /* it counts towards smtp_max_errors */
	unsigned int delayed_state; /* state after the delayed reply */
	/* transaction */
	struct smtp_tx tx;
	uint8_t *scratch;
	/* group commit: the message is on the commit thread */
	bool pending;
	bool dead; /* the connection closed while pending: free at done */
	char id[16]; /* connection id, for logs (valid after close) */
};

/* Queue a reply line (CRLF added). */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A client error reply: counts towards smtp_max_errors; past it, adds
   "421 4.7.0" and closes. */
void smtp_reply_error(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Forget the transaction (RSET, end of DATA, EHLO, STARTTLS). */
void smtp_tx_reset(struct smtp_session *s);
/* Is plaintext AUTH permitted here (TLS, or loopback when configured)? */
bool smtp_session_auth_allowed(const struct smtp_session *s);
/* Back to reading commands after a delay or commit: resume input. */
void smtp_session_resume(struct smtp_session *s);
/* The connection id for log lines. */
const char *smtp_session_id(const struct smtp_session *s);

/* ---- command table (smtp_cmd.c) ---- */
/* Run one command line. */
void smtp_cmd_dispatch(struct smtp_session *s, struct strview line);

/* ---- AUTH (smtp_auth.c) ---- */
void smtp_auth_cmd(struct smtp_session *s, struct strview args);
/* One SASL response line while in SMTP_S_AUTH. */
void smtp_auth_response(struct smtp_session *s, struct strview line);
/* Free AUTH state of a closing session. */
void smtp_auth_clear(struct smtp_session *s);

/* ---- delivery (smtp_deliver.c) ---- */
/* Open the blob writers and write the trace headers. 0 or -1. */
int smtp_deliver_start(struct smtp_session *s);
/* The temporary-failure reply after a blob could not be written: RFC 3463
   4.3.1 when the disk was full, else 4.3.0. */
const char *smtp_deliver_store_reply(const struct smtp_session *s);
/* Content bytes (unstuffed) to every writer; failures are remembered. */
void smtp_deliver_write(struct smtp_session *s, const void *data,
			size_t len);
/* Drop the writers (errors, RSET, close). */
void smtp_deliver_abort(struct smtp_session *s);
/* The message is complete: hand it to the worker's commit thread (group
   commit across sessions); input is paused, and the session's
   transaction must not change, until smtp_session_commit_done(). */
void smtp_deliver_submit(struct smtp_session *s);
/* Resolve a RCPT and add it to the transaction, replying itself. */
void smtp_deliver_rcpt(struct smtp_session *s, const struct smtp_path *path,
		       const struct smtp_rcpt_params *rp);
/* Reply to MAIL after the sender checks (submission rules). */
void smtp_deliver_mail(struct smtp_session *s, const struct smtp_path *path,
		       const struct smtp_mail_params *mp);
/* ---- delivery status notifications (smtp_dsn.c) ---- */
/* The outcome for one local recipient after the 250. */
struct smtp_dsn_rcpt {
	const struct smtp_local *local;
	bool delivered;	    /* else failed */
	const char *status; /* RFC 3463 code, e.g. "5.2.2" */
	const char *diag;   /* "552 5.2.2 Mailbox full" */
};
/* RFC 3461 5.2: is a notification due for this outcome? */
bool smtp_dsn_wanted(const struct smtp_session *s,
		     const struct smtp_dsn_rcpt *r);
/* Write a RFC 3464 report about the n outcomes of the message in blob
   (the local copy) and send it to the envelope sender: delivered at
   once when local, queued otherwise. On the commit thread, inside its
   batch: st is the thread's store, now the time the message ended.
   STORE_OK, or a store error. */
int smtp_dsn_send(struct smtp_session *s, struct store *st, time_t now,
		  const char *blob, const struct smtp_dsn_rcpt *r, size_t n);

/* Called by smtp_deliver after the commit: send the reply and go on;
   or, when the connection closed meanwhile, free the session now. */
void smtp_session_commit_done(struct smtp_session *s, const char *reply);

#endif
