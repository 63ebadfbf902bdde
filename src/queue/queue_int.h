#ifndef TERN_QUEUE_INT_H
#define TERN_QUEUE_INT_H
/* Private interfaces of the outbound queue (never included from outside
   src/queue/). The pieces, bottom up:

     queue_reply   pure: SMTP reply parser, EHLO capabilities
     queue_body    pure: dot-stuffing, 8-bit detection, 8bit -> QP
     queue_dkim    DKIM: canonicalisation and header (pure), signing
     queue_retry   pure: back-off and expiry
     queue_dns     c-ares on the event loop; MX ordering (pure part)
     queue_io      a client socket (plain or TLS) on the event loop
     queue_client  one SMTP client session (one transaction)
     queue_route   one job: recipients of one message for one domain,
                   routed over MX hosts and their addresses
     queue_bounce  RFC 3464 DSN text (pure) and its delivery
     queue_main    the scheduler: polling, limits, outcomes, store updates */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/strview.h"
#include "store/store.h"

struct ev_loop;
struct tern_env;

/* ---- limits (units in the names) ---- */
#define QUEUE_POLL_MS 1000	     /* store_queue_due interval */
#define QUEUE_BATCH_MAX 200	     /* new entries taken per poll */
#define QUEUE_INFLIGHT_MAX 2000	     /* messages being delivered at once */
#define QUEUE_REPLY_LINE_MAX_BYTES 2048 /* RFC 5321 4.5.3.1.5 says 512 */
#define QUEUE_REPLY_LINES_MAX 100
#define QUEUE_REPLY_TEXT_MAX_BYTES (16 * 1024)
#define QUEUE_DIAG_MAX_BYTES 1024    /* remote reply kept for the DSN */
#define QUEUE_MX_MAX 16		     /* MX hosts tried per domain */
#define QUEUE_ADDRS_MAX 8	     /* addresses kept per host */
#define QUEUE_CONNECT_TRIES_MAX 10   /* addresses tried per attempt */
#define QUEUE_BODY_CHUNK_BYTES (64 * 1024)
#define QUEUE_IO_INPUT_MAX_BYTES (64 * 1024)
#define QUEUE_IO_OUTPUT_MAX_BYTES (4 * 1024 * 1024)
#define QUEUE_BOUNCE_FULL_MAX_BYTES (1024 * 1024) /* else headers only */
#define QUEUE_BOUNCE_MAX_BYTES (QUEUE_BOUNCE_FULL_MAX_BYTES + 256 * 1024)
#define QUEUE_DOMAIN_MAX_BYTES 255
#define QUEUE_STATUS_MAX 16	     /* "5.1.1" + room */

/* RFC 5321 4.5.3.2 timeouts; connect has none there, 30 s is usual. */
#define QUEUE_TIMEOUT_CONNECT_MS (30 * 1000)
#define QUEUE_TIMEOUT_GREETING_MS (5 * 60 * 1000)   /* 4.5.3.2.1 */
#define QUEUE_TIMEOUT_MAIL_MS (5 * 60 * 1000)	     /* 4.5.3.2.2 */
#define QUEUE_TIMEOUT_RCPT_MS (5 * 60 * 1000)	     /* 4.5.3.2.3 */
#define QUEUE_TIMEOUT_DATA_INIT_MS (2 * 60 * 1000)  /* 4.5.3.2.4 */
#define QUEUE_TIMEOUT_DATA_BLOCK_MS (3 * 60 * 1000) /* 4.5.3.2.5 */
#define QUEUE_TIMEOUT_DATA_END_MS (10 * 60 * 1000)  /* 4.5.3.2.6 */
#define QUEUE_TIMEOUT_OTHER_MS (5 * 60 * 1000)     /* EHLO, STARTTLS, AUTH */
#define QUEUE_TIMEOUT_QUIT_MS (10 * 1000)

/* Connection reuse: how long a finished session waits for the next
   transaction to the same host, how many wait at most, and how many
   transactions one connection carries before QUIT. */
#define QUEUE_REUSE_IDLE_MS (5 * 1000)
#define QUEUE_REUSE_IDLE_MAX 64
#define QUEUE_REUSE_TRANSACTIONS_MAX 100

/* ================= queue_reply.c (pure) ================= */

struct queue_reply {
	unsigned code;		     /* 200..599, 0 until the first line */
	char enhanced[QUEUE_STATUS_MAX]; /* RFC 3463 "5.1.1" or "" */
	struct buf text;	     /* lines after the code, '\n' between */
	size_t lines;
	bool done;
};

enum queue_reply_res {
	QUEUE_REPLY_MORE, /* a continuation line: feed the next one */
	QUEUE_REPLY_DONE, /* the last line: the reply is complete */
	QUEUE_REPLY_ERR,  /* not an SMTP reply line (error_r static) */
};

void queue_reply_init(struct queue_reply *r);
/* Forget the reply, keep the memory, ready for the next one. */
void queue_reply_reset(struct queue_reply *r);
void queue_reply_free(struct queue_reply *r);
/* Feed one line without its CRLF (RFC 5321 4.2: "ddd-text" continues,
   "ddd text" or "ddd" ends; every line has the same code). Bounded by
   QUEUE_REPLY_LINES_MAX and QUEUE_REPLY_TEXT_MAX_BYTES. The enhanced
   code (RFC 2034, RFC 3463) is taken from the first line when its class
   matches the reply's. */
enum queue_reply_res queue_reply_feed(struct queue_reply *r,
				      struct strview line,
				      const char **error_r);
/* One printable line for logs and DSNs: "550 5.1.1 text; more text",
   non-printable bytes replaced, cut at max - 1 bytes. Returns out. */
char *queue_reply_format(const struct queue_reply *r, char *out,
			 size_t max);

/* EHLO keywords we use (RFC 5321 4.1.1.1, 2.2.2). */
struct queue_caps {
	bool starttls;	   /* RFC 3207 */
	bool pipelining;   /* RFC 2920 */
	bool eightbitmime; /* RFC 6152 */
	bool smtputf8;	   /* RFC 6531 */
	bool dsn;	   /* RFC 3461 */
	bool enhanced;	   /* RFC 2034 */
	bool auth_plain;   /* RFC 4954, RFC 4616 */
	bool has_size;	   /* RFC 1870 */
	uint64_t size;	   /* SIZE limit, 0 = none announced */
};
/* Parse the capabilities from a complete EHLO reply (the first line is
   the greeting domain and skipped). Unknown keywords are ignored. */
void queue_caps_parse(const struct queue_reply *r, struct queue_caps *caps_r);

/* ================= queue_body.c (pure) ================= */

/* Dot-stuffing state (RFC 5321 4.5.2) over a stream split anywhere. */
struct queue_stuff {
	bool bol; /* at the beginning of a line */
	bool cr;  /* the last byte was CR */
};
void queue_stuff_init(struct queue_stuff *st);
/* Append in[0..len) to out with a "." doubled at the start of every line
   and bare LF turned into CRLF (RFC 5321 2.3.8). -1 when out->max would
   be exceeded (out unchanged then is not promised; treat as fatal). */
int queue_stuff_feed(struct queue_stuff *st, const uint8_t *in, size_t len,
		     struct buf *out);
/* Append what ends the DATA: CRLF when the content did not end with a
   line end, then ".\r\n". */
int queue_stuff_finish(struct queue_stuff *st, struct buf *out);

struct queue_body_info {
	bool body_8bit;	   /* a byte >= 0x80 anywhere in the message */
	bool header_8bit;  /* ... in the top-level header (UTF-8 headers) */
	bool has_nul;	   /* NUL or a line over 998 bytes: needs BINARYMIME */
	bool long_lines;
};
void queue_body_scan(const uint8_t *msg, size_t len,
		     struct queue_body_info *info_r);
/* RFC 6152 3 / RFC 1652: make an 8-bit message 7-bit for a server
   without 8BITMIME: every leaf part with 8-bit bytes in its body gets
   Content-Transfer-Encoding: quoted-printable (RFC 2045 6.7) and an
   encoded body; multiparts are walked (bounded by MIME_DEPTH_MAX).
   Parts already in base64 or quoted-printable are left alone. Returns
   0 with the new message in out, or -1 with *error_r (static) when it
   cannot be done: 8-bit header bytes, message/rfc822 or multipart parts
   whose bodies contain 8-bit text we cannot re-encode, or out->max. */
int queue_body_to_7bit(const uint8_t *msg, size_t len, struct buf *out,
		       const char **error_r);
/* Quoted-printable encoding of one body (text with CRLF line ends kept
   as hard line breaks, lines cut at 76 with soft breaks). */
int queue_body_qp_encode(const uint8_t *in, size_t len, struct buf *out);

/* ================= queue_dkim.c ================= */

#define QUEUE_DKIM_FIELDS_MAX 1000	/* header fields looked at */
#define QUEUE_DKIM_SIGNED_MAX 64	/* names in h= */
#define QUEUE_DKIM_HEADER_MAX_BYTES 4096 /* the DKIM-Signature field */
#define QUEUE_DKIM_DATA_MAX_BYTES (1024 * 1024) /* signed header bytes */
#define QUEUE_DKIM_FROM_MAX_BYTES (64 * 1024)	/* From field looked at */

/* Relaxed body canonicalisation (RFC 6376 3.4.4) over a stream split
   anywhere; the canonical bytes go to out (which returns 0 or -1). */
typedef int queue_dkim_out_fn(void *ctx, const void *data, size_t len);
struct queue_dkim_body {
	queue_dkim_out_fn *out;
	void *ctx;
	size_t empty_lines; /* line ends held back: maybe trailing */
	bool wsp;	    /* WSP seen, not yet written */
	bool cr;	    /* the last byte was CR */
	bool any;	    /* something was written */
};
void queue_dkim_body_init(struct queue_dkim_body *b, queue_dkim_out_fn *out,
			  void *ctx);
int queue_dkim_body_feed(struct queue_dkim_body *b, const uint8_t *p,
			 size_t n);
int queue_dkim_body_finish(struct queue_dkim_body *b);

/* One header field, p[0..n) from its name to the end of its last line
   without the final line end; continuation lines included. */
struct queue_dkim_field {
	size_t off, len;
};
/* Split the top-level header of msg into fields (at most max). *body_off_r
   is where the body starts (after the empty line; len when there is
   none). -1 when there are more than max fields. */
int queue_dkim_fields(const uint8_t *msg, size_t len,
		      struct queue_dkim_field *f, size_t max, size_t *count_r,
		      size_t *body_off_r);
/* Append the relaxed form (RFC 6376 3.4.2) "name:value\r\n" of one
   field; nothing for a line without a colon. 0 or -1 (out->max). */
int queue_dkim_canon_header(const uint8_t *p, size_t n, struct buf *out);
/* The h= list for msg: each signed name (RFC 6376 5.4.1 set) once per
   instance present, From once more (oversigning). Names are static
   lowercase strings. 0 when there is no From field (do not sign). */
size_t queue_dkim_select(const uint8_t *msg, const struct queue_dkim_field *f,
			 size_t count, const char **names_r, size_t max);
/* The data that is signed (RFC 6376 3.7): the fields named in names,
   instances taken bottom-up (5.4.2), relaxed; then the signature field
   sighdr[0..len) (with an empty b=) relaxed, without its CRLF. */
int queue_dkim_signed_data(const uint8_t *msg,
			   const struct queue_dkim_field *f, size_t count,
			   const char *const *names, size_t name_count,
			   const uint8_t *sighdr, size_t sighdr_len,
			   struct buf *out);

struct queue_dkim_sig {
	const char *algorithm; /* "rsa-sha256", "ed25519-sha256" */
	const char *domain, *selector;
	int64_t time;	       /* t= */
	const char *const *names;
	size_t name_count;
	const char *bh;	       /* base64 body hash */
};
/* Append "DKIM-Signature: v=1; a=...; c=relaxed/relaxed; d=...; s=...;
   t=...; h=...; bh=...;" folded at 76 columns, ending in "\r\n\tb="
   (the value comes from queue_dkim_header_finish). 0 or -1. */
int queue_dkim_header_build(const struct queue_dkim_sig *sig,
			    struct buf *out);
/* Append the base64 signature folded in 72-byte pieces, then CRLF. */
int queue_dkim_header_finish(struct buf *hdr, const char *b64);

/* The domain whose key signs msg (lowercase into out): the From field's
   domain when it is the envelope sender's domain (or, for the null
   sender, our hostname); else the envelope sender's domain. -1 when
   there is none (null sender, foreign From). */
int queue_dkim_domain(const uint8_t *msg, size_t len, const char *sender,
		      const char *hostname, char *out, size_t max);

/* Keys and signatures (OpenSSL 3). */
struct queue_dkim_key;
/* NULL with *error_r (static) when the PEM does not parse or is not
   the key type its algorithm says. */
struct queue_dkim_key *queue_dkim_key_load(const struct store_dkim_key *k,
					   const char **error_r);
void queue_dkim_key_free(struct queue_dkim_key **kp);
const char *queue_dkim_key_domain(const struct queue_dkim_key *key);
/* Append the base64 SHA-256 of the relaxed body. 0 or -1. */
int queue_dkim_body_hash(const uint8_t *body, size_t len,
			 struct buf *b64_out);
/* Append the base64 signature of data: RSASSA-PKCS1-v1_5 with SHA-256,
   or Ed25519 over SHA-256(data) (RFC 8463 3). 0 or -1. */
int queue_dkim_sign_data(const struct queue_dkim_key *key,
			 const uint8_t *data, size_t len, struct buf *b64_out);
/* Append the whole DKIM-Signature field (with CRLF) for msg as it is
   sent, signed at time now. -1 with *error_r (static): no From field,
   too many fields, limits. */
int queue_dkim_sign(const struct queue_dkim_key *key, const uint8_t *msg,
		    size_t len, int64_t now, struct buf *out,
		    const char **error_r);

/* ================= queue_retry.c (pure) ================= */

/* The delay before retry number attempts (attempts >= 1 failed tries so
   far): min_ms doubled per earlier failure, capped at max_ms. */
uint64_t queue_retry_delay_ms(uint64_t min_ms, uint64_t max_ms,
			      uint32_t attempts);
/* After a temporary failure at now (unix seconds) of an entry created at
   created: true with *next_r (unix seconds) to try again, never later
   than created + max_age (the last try happens at the maximum age);
   false when the message is too old and must bounce. */
bool queue_retry_schedule(int64_t created, int64_t now, uint32_t attempts,
			  uint64_t min_ms, uint64_t max_ms,
			  uint64_t max_age_ms, int64_t *next_r);

/* ================= queue_dns.c ================= */

struct queue_mx {
	unsigned pref;
	char *host; /* xmalloc'd, lowercase, no trailing dot; "" = null MX */
};
/* RFC 5321 5.1: order by preference, and shuffle hosts of equal
   preference (rand_fn(ctx, n) returns a uniform value in [0, n)). */
typedef uint32_t queue_rand_fn(void *ctx, uint32_t n);
void queue_dns_mx_sort(struct queue_mx *mx, size_t count,
		       queue_rand_fn *rand_fn, void *rand_ctx);
/* RFC 7505: a domain with a single MX of "." accepts no mail. True when
   the (sorted or not) list is a null MX. */
bool queue_dns_mx_is_null(const struct queue_mx *mx, size_t count);
void queue_mx_free(struct queue_mx *mx, size_t count);

enum queue_dns_status {
	QUEUE_DNS_OK,
	QUEUE_DNS_NXDOMAIN, /* the name does not exist: permanent */
	QUEUE_DNS_NODATA,   /* the name exists, no records of the type */
	QUEUE_DNS_TEMP,	    /* timeout, SERVFAIL, refused: retry later */
	QUEUE_DNS_CANCELLED /* the resolver is being destroyed */
};
const char *queue_dns_status_name(enum queue_dns_status st);

struct queue_dns;
/* server: "ip:port" (cfg dns_resolver) or NULL for /etc/resolv.conf. */
struct queue_dns *queue_dns_new(struct ev_loop *loop, const char *server,
				const char **error_r);
/* Pending queries are called back with QUEUE_DNS_CANCELLED. */
void queue_dns_free(struct queue_dns **dp);

/* mx (xmalloc'd array, ownership passes to the callback) is sorted with
   queue_dns_mx_sort. May be called back before queue_dns_mx returns. */
typedef void queue_dns_mx_fn(void *ctx, enum queue_dns_status st,
			     struct queue_mx *mx, size_t count);
void queue_dns_mx(struct queue_dns *d, const char *domain,
		  queue_dns_mx_fn *fn, void *ctx);
/* A and AAAA of host (IPv6 first when both exist, as RFC 6724 suggests
   for most hosts), port set in each. addrs is only valid during the
   call. May be called back before queue_dns_addr returns. */
typedef void queue_dns_addr_fn(void *ctx, enum queue_dns_status st,
			       const struct sockaddr_storage *addrs,
			       size_t count);
void queue_dns_addr(struct queue_dns *d, const char *host, uint16_t port,
		    queue_dns_addr_fn *fn, void *ctx);

/* ================= queue_io.c ================= */

struct queue_io;
enum queue_io_event {
	QUEUE_IO_CONNECTED, /* the TCP connection is up */
	QUEUE_IO_INPUT,	    /* new bytes: read lines */
	QUEUE_IO_TLS_OK,    /* the STARTTLS handshake completed */
	QUEUE_IO_DRAINED,   /* output fell below QUEUE_BODY_CHUNK_BYTES */
	QUEUE_IO_ERROR,	    /* closed, reset, TLS failure: see error */
	QUEUE_IO_TIMEOUT,   /* nothing read or written for the timeout */
};
typedef void queue_io_fn(struct queue_io *io, enum queue_io_event ev,
			 void *ctx);
/* Start a non-blocking connect. Events are only reported from the loop,
   never from inside a queue_io_* call. NULL with *error_r (static or
   strerror) when the socket cannot be created. */
struct queue_io *queue_io_connect(struct ev_loop *loop,
				  const struct sockaddr_storage *addr,
				  queue_io_fn *fn, void *ctx,
				  const char **error_r);
/* May be called from inside the io's own callback. */
void queue_io_free(struct queue_io **iop);
/* Idle timeout: QUEUE_IO_TIMEOUT after ms without progress (bytes read
   or written). 0 disables. */
void queue_io_set_timeout(struct queue_io *io, uint64_t ms);
enum queue_io_line {
	QUEUE_IO_LINE_OK,
	QUEUE_IO_LINE_MORE,
	QUEUE_IO_LINE_TOO_LONG, /* discarded up to its LF */
};
/* One line without CRLF/LF; valid until the next read call. */
enum queue_io_line queue_io_read_line(struct queue_io *io, size_t max,
				      struct strview *line_r);
/* Queue output. -1 when QUEUE_IO_OUTPUT_MAX_BYTES would be exceeded. */
int queue_io_write(struct queue_io *io, const void *data, size_t len);
int queue_io_write_buf(struct queue_io *io, const struct buf *b);
size_t queue_io_pending(const struct queue_io *io);
/* Report QUEUE_IO_DRAINED once when output falls low. */
void queue_io_want_drained(struct queue_io *io);
/* Client TLS after a 220 to STARTTLS: input buffered so far is dropped
   (RFC 3207 4.2); QUEUE_IO_TLS_OK or QUEUE_IO_ERROR follows. host (may be
   NULL) is sent as SNI unless it is an address, and is the name the
   certificate is checked for; a failed check does not fail the
   handshake: ask queue_io_tls_verified(). 0 or -1. */
int queue_io_starttls(struct queue_io *io, const char *host);
bool queue_io_is_tls(const struct queue_io *io);
/* After QUEUE_IO_TLS_OK: true when the chain verified against the CA
   store and the certificate is for the host given to starttls; reason
   gets "ok" or a one-word reason. */
bool queue_io_tls_verified(const struct queue_io *io, char *reason,
			   size_t size);
const char *queue_io_tls_version(const struct queue_io *io);
/* Text of the last error ("connection refused", "timeout", ...). */
const char *queue_io_error(const struct queue_io *io);
/* Peer address as text, for logs. */
const char *queue_io_peer(const struct queue_io *io);
bool queue_io_peer_is_loopback(const struct queue_io *io);

/* ================= queue_client.c ================= */

/* Outcome of one recipient in one session. */
struct queue_rcpt_result {
	unsigned code;			 /* 0: no answer (connection lost) */
	char status[QUEUE_STATUS_MAX];	 /* enhanced code or derived */
	char reply[QUEUE_DIAG_MAX_BYTES]; /* formatted remote reply */
};

enum queue_client_status {
	QUEUE_CLIENT_DONE,	/* per-recipient results are set */
	QUEUE_CLIENT_HOST_FAIL, /* try the next address/host; nothing set */
	QUEUE_CLIENT_TLS_FAIL,	/* TLS failed: try this host in plaintext */
	QUEUE_CLIENT_FAIL_ALL,	/* code/status apply to every recipient */
	QUEUE_CLIENT_STALE,	/* a reused connection failed before MAIL:
				   connect to the same address afresh */
};

struct queue_client_result {
	enum queue_client_status status;
	unsigned code; /* HOST_FAIL (0 = no reply) and FAIL_ALL */
	char status_code[QUEUE_STATUS_MAX];
	char reply[QUEUE_DIAG_MAX_BYTES];
	bool tls;	   /* the session used TLS */
	bool tls_verified; /* ... with a verified certificate */
	char tls_reason[64]; /* why not verified ("ok" when it is) */
	bool remote_dsn;   /* the remote announced DSN */
	bool reused;	   /* the session ran on a reused connection */
};

struct queue_client_params {
	const char *helo;      /* our host name for EHLO/HELO */
	const char *peer_name; /* MX host name: logs and TLS SNI */
	const struct sockaddr_storage *addr;
	bool try_tls;
	/* TLS with a verified certificate or nothing (a smarthost with
	   queue_smarthost_tls_verify): no plaintext, no unverified peer */
	bool tls_required;
	const char *auth_user, *auth_pass; /* smarthost AUTH PLAIN or NULL */
	const struct store_queue_entry *entry;
	const struct queue_dkim_key *dkim; /* sign with it, or NULL */
	const uint8_t *msg; /* the message bytes (blob map) */
	size_t msg_len;
	const size_t *rcpts; /* indices into entry->rcpts */
	size_t rcpt_count;
	/* out, rcpt_count entries, filled when status is DONE */
	struct queue_rcpt_result *results;
	const char *log_id; /* for log lines */
	bool no_reuse;	    /* open a new connection even if one is idle */
};

struct queue_client;
typedef void queue_client_done_fn(void *ctx,
				  const struct queue_client_result *res);
/* Start a session: on an idle connection to the same address, host name
   and AUTH setting when there is one (RSET first; QUEUE_CLIENT_STALE when
   that fails), else on a new one. done is called exactly once, from the
   loop (never from inside queue_client_start), after which the client
   waits idle for another session or finishes QUIT on its own and frees
   itself; params (and what they point to) must stay valid until done is
   called. */
void queue_client_start(struct ev_loop *loop,
			const struct queue_client_params *params,
			queue_client_done_fn *done, void *ctx);
/* Free clients still saying QUIT (at shutdown). */
void queue_client_deinit(void);

/* ================= queue_route.c ================= */

enum queue_rcpt_outcome {
	QUEUE_RCPT_PENDING, /* not tried in this round */
	QUEUE_RCPT_OK,	    /* 2xx */
	QUEUE_RCPT_TEMP,    /* 4xx, no connection, DNS trouble */
	QUEUE_RCPT_PERM,    /* 5xx, null MX, NXDOMAIN */
};

/* What the queue knows about one recipient during one round. */
struct queue_rcpt_state {
	enum queue_rcpt_outcome outcome;
	char status[QUEUE_STATUS_MAX]; /* RFC 3463 status for the DSN */
	char diag[QUEUE_DIAG_MAX_BYTES]; /* "550 5.1.1 ..." or our text */
	char mta[QUEUE_DOMAIN_MAX_BYTES + 1]; /* remote MTA, "" if none */
	bool remote_dsn;
};

struct queue;
struct queue_msg;

/* One message's recipients for one destination domain. */
struct queue_job {
	struct queue_job *next; /* in the wait list */
	struct queue *q;
	struct queue_msg *msg;
	char domain[QUEUE_DOMAIN_MAX_BYTES + 1];
	size_t *rcpts; /* indices into msg->e.rcpts, xmalloc'd */
	size_t rcpt_count;
	/* routing */
	struct queue_mx *mx;
	size_t mx_count, mx_idx;
	struct sockaddr_storage addrs[QUEUE_ADDRS_MAX];
	size_t addr_count, addr_idx;
	size_t tries;
	uint16_t port;
	char host[QUEUE_DOMAIN_MAX_BYTES + 1]; /* current MX host */
	bool no_tls;
	unsigned last_code; /* of the last host failure, 0 = no reply */
	char last_status[QUEUE_STATUS_MAX];
	char last_error[QUEUE_DIAG_MAX_BYTES];
	struct queue_client_params params;
	struct queue_rcpt_result *results; /* rcpt_count entries */
	char log_id[32];
};

/* Route and deliver; calls queue_main_job_done(job) when every recipient
   of the job has an outcome in msg->rs. */
void queue_route_start(struct queue_job *job);
/* "user@Example.COM" -> "example.com" into out (size max); -1 when
   there is no usable domain. */
int queue_route_domain(const char *address, char *out, size_t max);

/* ================= queue_bounce.c ================= */

struct queue_bounce_rcpt {
	const char *address;
	const char *orcpt;  /* "rfc822;xtext" as given to ORCPT, or NULL */
	const char *action; /* "failed", "delayed", "relayed" */
	const char *status; /* "5.1.1" */
	const char *mta;    /* remote MTA name or NULL */
	const char *diag;   /* remote reply or our reason */
};

struct queue_bounce {
	const char *reporting_mta; /* our host name */
	const char *sender;	   /* the original envelope sender */
	const char *envid;	   /* DSN ENVID (xtext) or NULL */
	bool headers_only;	   /* RET=HDRS or too large */
	bool delayed;		   /* a delay warning, not a bounce */
	bool relayed;		   /* a success report: Action: relayed */
	int64_t retry_until;	   /* delayed: Will-Retry-Until (unix) */
	int64_t arrival;	   /* unix time the message was queued */
	int64_t now;
	const char *boundary;	/* unique MIME boundary */
	const char *message_id; /* "<...@host>" */
	const struct queue_bounce_rcpt *rcpts;
	size_t rcpt_count;
	const uint8_t *original; /* the original message */
	size_t original_len;
};
/* Write the whole DSN message (RFC 3464 multipart/report with a text
   part, message/delivery-status and the original message or its header
   as message/rfc822 or text/rfc822-headers, RFC 6522). 0, or -1 when
   out->max is exceeded. Pure. */
int queue_bounce_build(const struct queue_bounce *b, struct buf *out);
/* Decode RFC 3461 4 xtext ("+2B" -> "+") into out, cut at max - 1. */
void queue_bounce_xtext_decode(const char *in, char *out, size_t max);

enum queue_dsn_kind {
	QUEUE_DSN_FAILED,  /* outcome PERM, NOTIFY has FAILURE (or none) */
	QUEUE_DSN_DELAYED, /* outcome TEMP, NOTIFY has DELAY (or none):
			      Will-Retry-Until, the header only */
	QUEUE_DSN_RELAYED, /* outcome OK at a server that did not offer
			      DSN, NOTIFY has SUCCESS: the header only */
};
/* Send the DSN of that kind for the recipients of msg (outcomes in
   msg->rs) not yet final, to the envelope sender: delivered to the
   sender's INBOX when the sender is local, else queued with the null
   sender. Nothing is sent for the null sender. STORE_OK when the DSN is
   stored or none is needed; an error means: keep the recipients queued
   and try again later. */
int queue_bounce_send(struct queue *q, struct queue_msg *msg,
		      enum queue_dsn_kind kind);

/* ================= queue_main.c ================= */

/* A queued message being delivered. */
struct queue_msg {
	struct queue_msg *next;
	struct store_queue_entry e;
	struct store_map map;
	struct queue_rcpt_state *rs; /* e.rcpt_count entries */
	struct queue_dkim_key *dkim; /* the sender domain's key or NULL */
	struct queue_job **jobs; /* NULL once done */
	size_t job_count, jobs_left;
	bool mapped;
};

struct queue_domain_slot;

struct queue {
	struct tern_env *env;
	struct ev_loop *loop;
	struct store *store;
	const struct cfg *cfg;
	const char *hostname;
	struct queue_dns *dns;
	struct ev_timer *poll_timer;
	struct queue_msg *msgs;
	size_t msg_count;
	struct queue_job *wait_head, **wait_tail;
	struct queue_domain_slot *slots;
	size_t conns;
	bool kick_pending;
	/* smarthost "host:port" split, or smart_host[0] == '\0' */
	char smart_host[QUEUE_DOMAIN_MAX_BYTES + 1];
	uint16_t smart_port;
};

/* Called by queue_route when a job is finished. Frees the job. */
void queue_main_job_done(struct queue_job *job);
/* Split "host:port" or "[v6]:port" (port required, 1..65535). 0 / -1. */
int queue_main_hostport(const char *s, char *host, size_t max,
			uint16_t *port_r);

#endif
