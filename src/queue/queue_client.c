/* One outbound SMTP session: a non-blocking state machine on queue_io.
   RFC 5321 3.1-3.3 and 4.1 (greeting, EHLO with fallback to HELO on a
   5xx, MAIL, RCPT, DATA, QUIT), 4.5.2 (dot-stuffing), 4.5.3.2 (a timeout
   per stage), RFC 3207 (opportunistic STARTTLS, EHLO again afterwards),
   RFC 2920 (PIPELINING: MAIL, every RCPT and DATA in one write, replies
   matched in order), RFC 1870 (SIZE), RFC 6152 (8BITMIME, else the body
   is converted to quoted-printable), RFC 6531 (SMTPUTF8: required for
   non-ASCII addresses, else the recipients bounce with 5.6.7), RFC 3461
   (RET, ENVID, NOTIFY, ORCPT passed on when the server offers DSN) and
   RFC 4954 / RFC 4616 (AUTH PLAIN to a smarthost, only over TLS or to a
   loopback address). The remote server is untrusted: replies go through
   the bounded parser, and its text is sanitised before logs and DSNs.
   Connection reuse (RFC 5321 4.1.4, 4.5.4.1): after a transaction the
   session stays open for QUEUE_REUSE_IDLE_MS; a new session for the
   same address, host name and AUTH setting takes it over, says RSET and
   starts its MAIL without a new connect, greeting, EHLO or TLS
   handshake. A reused connection that fails before MAIL is reported as
   QUEUE_CLIENT_STALE: the caller connects afresh. */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lib/base64.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/queue_int.h"

#define QUEUE_CMD_MAX_BYTES 4096

enum queue_client_state {
	QC_CONNECT,
	QC_GREETING,
	QC_EHLO,
	QC_HELO,
	QC_STARTTLS,
	QC_TLS,
	QC_EHLO_TLS,
	QC_AUTH,
	QC_TX,	       /* MAIL, RCPT..., DATA replies */
	QC_BODY,       /* sending the content */
	QC_DOT,	       /* waiting for the reply to the final "." */
	QC_DOT_IGNORE, /* "." sent after a 354 with no recipient */
	QC_QUIT,
	QC_IDLE, /* transaction done, kept open for the next one */
	QC_RSET, /* reused: waiting for the reply to RSET */
};

static const char *const queue_client_stage[] = {
	[QC_CONNECT] = "connecting",
	[QC_GREETING] = "waiting for the greeting",
	[QC_EHLO] = "sending EHLO",
	[QC_HELO] = "sending HELO",
	[QC_STARTTLS] = "sending STARTTLS",
	[QC_TLS] = "in the TLS handshake",
	[QC_EHLO_TLS] = "sending EHLO after STARTTLS",
	[QC_AUTH] = "authenticating",
	[QC_TX] = "sending the envelope",
	[QC_BODY] = "sending the message",
	[QC_DOT] = "waiting for the end of data reply",
	[QC_DOT_IGNORE] = "ending an empty DATA",
	[QC_QUIT] = "sending QUIT",
	[QC_IDLE] = "idle",
	[QC_RSET] = "sending RSET",
};

struct queue_client {
	struct queue_client *next, **prevp; /* all live clients */
	struct ev_loop *loop;
	const struct queue_client_params *p;
	queue_client_done_fn *done;
	void *ctx;
	struct queue_io *io;
	struct ev_timer *start_timer;
	const char *start_error;
	enum queue_client_state state;
	struct queue_reply reply;
	struct queue_caps caps;
	struct queue_client_result res;
	bool reported;
	int depth;
	bool dead;
	/* transaction */
	bool pipelining, mail_failed;
	size_t reply_idx, sent_idx, accepted;
	bool use_8bitmime, use_smtputf8;
	/* content */
	const uint8_t *body;
	size_t body_len, body_off;
	struct buf converted, chunk;
	struct buf dkim_sig; /* DKIM-Signature field sent first, or empty */
	struct queue_stuff stuff;
	char peer[64];
	/* copies: params go away when done() returns */
	char log_id[32];
	char peer_name[QUEUE_DOMAIN_MAX_BYTES + 1];
	/* reuse: what a new session must match, and how often it was used */
	struct sockaddr_storage addr;
	bool has_auth;
	bool no_reuse;	 /* a 421 or a broken session: QUIT at the end */
	bool reused;	 /* this transaction runs on a reused connection */
	bool tls_verified;    /* of this connection's TLS session */
	char tls_reason[64];  /* "ok", or why it is not verified */
	uint32_t transactions;
};

static struct queue_client *queue_clients;
static size_t queue_clients_idle;

static void
queue_client_destroy(struct queue_client *c)
{
	if (c->state == QC_IDLE)
		queue_clients_idle--;
	if (c->next != NULL)
		c->next->prevp = c->prevp;
	*c->prevp = c->next;
	ev_timer_del(c->loop, &c->start_timer);
	queue_io_free(&c->io);
	queue_reply_free(&c->reply);
	buf_free(&c->converted);
	buf_free(&c->chunk);
	buf_free(&c->dkim_sig);
	free(c);
}

/* From inside a reply handler the memory goes when the handler ends. */
static void
queue_client_free(struct queue_client *c)
{
	if (c->depth > 0) {
		c->dead = true;
		queue_io_free(&c->io);
		return;
	}
	queue_client_destroy(c);
}

void
queue_client_deinit(void)
{
	while (queue_clients != NULL)
		queue_client_destroy(queue_clients);
}

static void
queue_client_cmd(struct queue_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
queue_client_cmd(struct queue_client *c, const char *fmt, ...)
{
	char line[QUEUE_CMD_MAX_BYTES];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = 0; /* cannot happen with bounded addresses; send CRLF */
	if (strncmp(line, "AUTH ", 5) == 0)
		log_debug("queue", c->log_id, "send AUTH ...");
	else
		log_debug("queue", c->log_id, "send %.*s", n, line);
	memcpy(line + n, "\r\n", 2);
	(void)queue_io_write(c->io, line, (size_t)n + 2);
}

/* The status for a reply: its enhanced code, or one from the class. */
static void
queue_client_status(const struct queue_reply *r, char *out, size_t max)
{
	if (r->enhanced[0] != '\0')
		snprintf(out, max, "%s", r->enhanced);
	else
		snprintf(out, max, "%u.0.0", r->code / 100);
}

/* ---- the end of the session ---- */

static void
queue_client_quit(struct queue_client *c)
{
	if (c->io == NULL) {
		queue_client_free(c);
		return;
	}
	queue_client_cmd(c, "QUIT");
	c->state = QC_QUIT;
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_QUIT_MS);
}

/* Report once; afterwards the client only finishes QUIT. */
static void
queue_client_report(struct queue_client *c)
{
	if (c->reported)
		return;
	c->reported = true;
	c->res.tls = c->io != NULL && queue_io_is_tls(c->io);
	c->res.tls_verified = c->res.tls && c->tls_verified;
	snprintf(c->res.tls_reason, sizeof(c->res.tls_reason), "%s",
		 c->res.tls ? c->tls_reason : "no-tls");
	c->res.remote_dsn = c->caps.dsn;
	c->res.reused = c->reused;
	c->done(c->ctx, &c->res);
}

/* Finish with a status for the whole session, then QUIT. */
static void
queue_client_finish(struct queue_client *c, enum queue_client_status st,
		    unsigned code, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void
queue_client_finish(struct queue_client *c, enum queue_client_status st,
		    unsigned code, const char *status, const char *fmt, ...)
{
	va_list ap;

	c->res.status = st;
	c->res.code = code;
	snprintf(c->res.status_code, sizeof(c->res.status_code), "%s",
		 status != NULL ? status : "");
	va_start(ap, fmt);
	vsnprintf(c->res.reply, sizeof(c->res.reply), fmt, ap);
	va_end(ap);
	queue_client_report(c);
	queue_client_quit(c);
}

/* Finish with the remote reply as the reason. */
static void
queue_client_finish_reply(struct queue_client *c, enum queue_client_status st,
			  const char *what)
{
	char text[QUEUE_DIAG_MAX_BYTES], status[QUEUE_STATUS_MAX];

	queue_reply_format(&c->reply, text, sizeof(text));
	queue_client_status(&c->reply, status, sizeof(status));
	queue_client_finish(c, st, c->reply.code, status,
			    "%s said (%s): %s", c->peer_name, what, text);
}

/* Keep a healthy session open for the next transaction to the same
   place, or QUIT. */
static void
queue_client_idle(struct queue_client *c)
{
	if (c->io == NULL || c->no_reuse ||
	    c->transactions >= QUEUE_REUSE_TRANSACTIONS_MAX ||
	    queue_clients_idle >= QUEUE_REUSE_IDLE_MAX) {
		queue_client_quit(c);
		return;
	}
	c->state = QC_IDLE;
	c->p = NULL;
	queue_clients_idle++;
	queue_io_set_timeout(c->io, QUEUE_REUSE_IDLE_MS);
}

static void
queue_client_done_ok(struct queue_client *c)
{
	c->res.status = QUEUE_CLIENT_DONE;
	queue_client_report(c);
	queue_client_idle(c);
}

/* The connection is gone (error, timeout) in the middle. */
static void
queue_client_lost(struct queue_client *c, const char *why)
{
	enum queue_client_state st = c->state;
	const char *stage = queue_client_stage[st];

	queue_io_free(&c->io);
	if (c->reported || st == QC_QUIT) {
		queue_client_free(c);
		return;
	}
	if (st == QC_RSET) {
		c->no_reuse = true;
		queue_client_finish(c, QUEUE_CLIENT_STALE, 0, "4.4.2",
				    "reused connection to %s[%s] lost: %s",
				    c->peer_name, c->peer, why);
		return;
	}
	if (st == QC_TLS) {
		queue_client_finish(c, QUEUE_CLIENT_TLS_FAIL, 0, "4.7.0",
				    "TLS with %s failed: %s", c->peer_name,
				    why);
		return;
	}
	if (st == QC_BODY || st == QC_DOT) {
		/* Accepted recipients: no answer (code 0) -> retried. */
		for (size_t i = 0; i < c->p->rcpt_count; i++) {
			struct queue_rcpt_result *r = &c->p->results[i];
			if (r->code / 100 == 2) {
				r->code = 0;
				snprintf(r->status, sizeof(r->status), "4.4.2");
				snprintf(r->reply, sizeof(r->reply),
					 "lost connection with %s while %s: %s",
					 c->peer_name, stage, why);
			}
		}
		queue_client_done_ok(c);
		return;
	}
	if (st == QC_CONNECT)
		queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0, "4.4.1",
				    "cannot connect to %s[%s]: %s",
				    c->peer_name, c->peer, why);
	else
		queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0,
				    st == QC_GREETING ? "4.4.1" : "4.4.2",
				    "lost connection with %s[%s] while %s: %s",
				    c->peer_name, c->peer, stage, why);
}

/* ---- greeting, EHLO, STARTTLS, AUTH ---- */

static void queue_client_begin_tx(struct queue_client *c);

static void
queue_client_auth(struct queue_client *c)
{
	struct buf raw, b64;

	if (c->p->auth_user == NULL) {
		queue_client_begin_tx(c);
		return;
	}
	if (!queue_io_is_tls(c->io) && !queue_io_peer_is_loopback(c->io)) {
		queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0, "4.7.10",
				    "not sending credentials to %s without TLS",
				    c->peer_name);
		return;
	}
	if (!c->caps.auth_plain) {
		queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0, "4.7.12",
				    "%s does not offer AUTH PLAIN",
				    c->peer_name);
		return;
	}
	/* RFC 4616 2: authzid NUL authcid NUL passwd. */
	buf_init(&raw, 2048);
	buf_init(&b64, 4096);
	if (buf_append_byte(&raw, 0) < 0 ||
	    buf_append_str(&raw, c->p->auth_user) < 0 ||
	    buf_append_byte(&raw, 0) < 0 ||
	    buf_append_str(&raw, c->p->auth_pass != NULL ?
					 c->p->auth_pass : "") < 0 ||
	    base64_encode(&b64, raw.data, raw.len) < 0) {
		buf_free(&raw);
		buf_free(&b64);
		queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0, "4.7.0",
				    "smarthost credentials too long");
		return;
	}
	queue_client_cmd(c, "AUTH PLAIN %s", buf_cstr(&b64));
	sodium_memzero(raw.data, raw.len);
	buf_free(&raw);
	buf_free(&b64);
	c->state = QC_AUTH;
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_OTHER_MS);
}

/* After EHLO/HELO: STARTTLS when offered, then AUTH, then the mail. */
static void
queue_client_after_hello(struct queue_client *c)
{
	if (c->state != QC_EHLO_TLS && !queue_io_is_tls(c->io) &&
	    (c->p->try_tls || c->p->tls_required) && c->caps.starttls) {
		queue_client_cmd(c, "STARTTLS");
		c->state = QC_STARTTLS;
		queue_io_set_timeout(c->io, QUEUE_TIMEOUT_OTHER_MS);
		return;
	}
	if (c->p->tls_required && !queue_io_is_tls(c->io)) {
		/* Without TLS an attacker in the path could have removed
		   STARTTLS from the EHLO reply (RFC 3207 6). */
		queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0, "4.7.10",
				    "%s does not offer STARTTLS and "
				    "queue_smarthost_tls_verify is on",
				    c->peer_name);
		return;
	}
	queue_client_auth(c);
}

static void
queue_client_hello(struct queue_client *c, bool ehlo)
{
	queue_client_cmd(c, "%s %s", ehlo ? "EHLO" : "HELO", c->p->helo);
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_OTHER_MS);
}

static void
queue_client_on_greeting(struct queue_client *c)
{
	if (c->reply.code / 100 != 2) {
		queue_client_finish_reply(c, QUEUE_CLIENT_HOST_FAIL,
					  "greeting");
		return;
	}
	c->state = QC_EHLO;
	queue_client_hello(c, true);
}

static void
queue_client_on_ehlo(struct queue_client *c)
{
	unsigned code = c->reply.code;

	if (code / 100 == 2) {
		queue_caps_parse(&c->reply, &c->caps);
		queue_client_after_hello(c);
		return;
	}
	/* RFC 5321 4.1.4 / 3.2: a server that does not know EHLO. */
	if (c->state == QC_EHLO && code / 100 == 5) {
		c->state = QC_HELO;
		queue_client_hello(c, false);
		return;
	}
	queue_client_finish_reply(c, QUEUE_CLIENT_HOST_FAIL,
				  c->state == QC_HELO ? "HELO" : "EHLO");
}

static void
queue_client_on_starttls(struct queue_client *c)
{
	if (c->reply.code != 220 && c->p->tls_required) {
		queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0, "4.7.10",
				    "%s refused STARTTLS (%u) and "
				    "queue_smarthost_tls_verify is on",
				    c->peer_name, c->reply.code);
		return;
	}
	if (c->reply.code != 220) {
		/* Opportunistic: carry on in plaintext (RFC 3207 4). */
		log_info("queue", c->log_id, "starttls-refused host=%s "
			 "code=%u", c->peer_name, c->reply.code);
		queue_client_auth(c);
		return;
	}
	if (queue_io_starttls(c->io, c->peer_name) < 0) {
		queue_client_finish(c, QUEUE_CLIENT_TLS_FAIL, 0, "4.7.0",
				    "cannot start TLS with %s",
				    c->peer_name);
		return;
	}
	c->state = QC_TLS;
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_OTHER_MS);
}

static void
queue_client_on_tls(struct queue_client *c)
{
	c->tls_verified = queue_io_tls_verified(c->io, c->tls_reason,
						sizeof(c->tls_reason));
	log_info("queue", c->log_id, "tls-ok host=%s version=%s tls=%s%s",
		 c->peer_name, queue_io_tls_version(c->io),
		 c->tls_verified ? "verified" : "unverified:",
		 c->tls_verified ? "" : c->tls_reason);
	if (!c->tls_verified && c->p->tls_required) {
		/* RFC 3207 4.1: the client decides whether it trusts the
		   peer enough; for a configured relay it does not. */
		queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0, "4.7.5",
				    "certificate of %s not verified (%s)",
				    c->peer_name, c->tls_reason);
		return;
	}
	/* RFC 3207 4.2: forget what the server said before TLS. */
	memset(&c->caps, 0, sizeof(c->caps));
	c->state = QC_EHLO_TLS;
	queue_client_hello(c, true);
}

static void
queue_client_on_auth(struct queue_client *c)
{
	if (c->reply.code != 235) {
		queue_client_finish_reply(c, QUEUE_CLIENT_HOST_FAIL, "AUTH");
		return;
	}
	queue_client_begin_tx(c);
}

static void
queue_client_on_rset(struct queue_client *c)
{
	if (c->reply.code / 100 != 2) {
		c->no_reuse = true;
		queue_client_finish_reply(c, QUEUE_CLIENT_STALE, "RSET");
		return;
	}
	queue_client_begin_tx(c);
}

/* ---- the transaction ---- */

static bool
queue_client_ascii(const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

/* Does the envelope need SMTPUTF8 (RFC 6531 3.4)? */
static bool
queue_client_needs_utf8(const struct queue_client *c)
{
	const struct store_queue_entry *e = c->p->entry;

	if (!queue_client_ascii(e->sender))
		return true;
	for (size_t i = 0; i < c->p->rcpt_count; i++) {
		if (!queue_client_ascii(e->rcpts[c->p->rcpts[i]].address))
			return true;
	}
	return false;
}

/* RFC 6376: sign the bytes that are sent (after any 8-bit conversion);
   the signature field goes out in front of them, the stored message is
   not changed. A failure is logged and the mail goes unsigned. */
static void
queue_client_sign(struct queue_client *c)
{
	const char *error = NULL;

	if (c->p->dkim == NULL)
		return;
	if (queue_dkim_sign(c->p->dkim, c->body, c->body_len,
			    ev_now(c->loop), &c->dkim_sig, &error) < 0) {
		log_warn("queue", c->log_id, "dkim-sign-failed domain=%s "
			 "error=%s", queue_dkim_key_domain(c->p->dkim), error);
		buf_reset(&c->dkim_sig);
		return;
	}
	log_debug("queue", c->log_id, "dkim-signed domain=%s",
		  queue_dkim_key_domain(c->p->dkim));
}

/* Decide what to send; false when the session has been finished. */
static bool
queue_client_prepare(struct queue_client *c)
{
	struct queue_body_info info;
	const char *body = c->p->entry->body;
	const char *error;

	queue_body_scan(c->p->msg, c->p->msg_len, &info);
	/* What MAIL FROM said wins over the guess from the bytes, except
	   that 8-bit bytes declared as 7BIT are still treated as 8-bit. */
	if (body != NULL && strcmp(body, "7BIT") != 0)
		info.body_8bit = true;
	if (queue_client_needs_utf8(c) && !c->caps.smtputf8) {
		queue_client_finish(c, QUEUE_CLIENT_FAIL_ALL, 553, "5.6.7",
				    "%s does not support SMTPUTF8, which the "
				    "non-ASCII addresses require",
				    c->peer_name);
		return false;
	}
	if (c->caps.size > 0 && c->p->msg_len > c->caps.size) {
		queue_client_finish(c, QUEUE_CLIENT_FAIL_ALL, 552, "5.3.4",
				    "message size %zu exceeds the limit of %s "
				    "(SIZE %llu)", c->p->msg_len,
				    c->peer_name,
				    (unsigned long long)c->caps.size);
		return false;
	}
	c->use_smtputf8 = c->caps.smtputf8 &&
			  (c->p->entry->smtputf8 || info.header_8bit ||
			   queue_client_needs_utf8(c));
	c->body = c->p->msg;
	c->body_len = c->p->msg_len;
	if (!info.body_8bit || c->caps.eightbitmime) {
		c->use_8bitmime = info.body_8bit;
		queue_client_sign(c);
		return true;
	}
	/* RFC 6152 3: convert, or return the message as undeliverable. */
	buf_init(&c->converted, c->p->msg_len / 2 * 7 + 4096);
	if (queue_body_to_7bit(c->p->msg, c->p->msg_len, &c->converted,
			       &error) < 0) {
		queue_client_finish(c, QUEUE_CLIENT_FAIL_ALL, 554, "5.6.3",
				    "%s does not support 8BITMIME and the "
				    "message cannot be converted: %s",
				    c->peer_name, error);
		return false;
	}
	log_info("queue", c->log_id, "converted-7bit host=%s size=%zu",
		 c->peer_name, c->converted.len);
	c->body = c->converted.data;
	c->body_len = c->converted.len;
	queue_client_sign(c);
	return true;
}

static void
queue_client_send_mail(struct queue_client *c)
{
	const struct store_queue_entry *e = c->p->entry;
	char size[32] = "";

	if (c->caps.has_size)
		snprintf(size, sizeof(size), " SIZE=%zu",
			 c->body_len + c->dkim_sig.len);
	queue_client_cmd(c, "MAIL FROM:<%s>%s%s%s%s%s%s%s", e->sender, size,
			 c->use_8bitmime ? " BODY=8BITMIME" : "",
			 c->use_smtputf8 ? " SMTPUTF8" : "",
			 c->caps.dsn && e->ret != NULL ? " RET=" : "",
			 c->caps.dsn && e->ret != NULL ? e->ret : "",
			 c->caps.dsn && e->envid != NULL ? " ENVID=" : "",
			 c->caps.dsn && e->envid != NULL ? e->envid : "");
}

static void
queue_client_send_rcpt(struct queue_client *c, size_t i)
{
	const struct store_queue_rcpt *r = &c->p->entry->rcpts[c->p->rcpts[i]];
	bool dsn = c->caps.dsn;

	queue_client_cmd(c, "RCPT TO:<%s>%s%s%s%s", r->address,
			 dsn && r->notify != NULL ? " NOTIFY=" : "",
			 dsn && r->notify != NULL ? r->notify : "",
			 dsn && r->orcpt != NULL ? " ORCPT=" : "",
			 dsn && r->orcpt != NULL ? r->orcpt : "");
}

static void
queue_client_begin_tx(struct queue_client *c)
{
	if (!queue_client_prepare(c))
		return;
	c->transactions++;
	c->state = QC_TX;
	c->pipelining = c->caps.pipelining;
	c->reply_idx = 0;
	queue_client_send_mail(c);
	c->sent_idx = 1;
	if (c->pipelining) {
		/* RFC 2920 3.1: DATA may end the batch. */
		for (size_t i = 0; i < c->p->rcpt_count; i++)
			queue_client_send_rcpt(c, i);
		queue_client_cmd(c, "DATA");
		c->sent_idx = c->p->rcpt_count + 2;
	}
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_MAIL_MS);
}

/* ---- content ---- */

static void
queue_client_pump(struct queue_client *c)
{
	while (c->body_off < c->body_len &&
	       queue_io_pending(c->io) < 2 * QUEUE_BODY_CHUNK_BYTES) {
		size_t n = c->body_len - c->body_off;
		if (n > QUEUE_BODY_CHUNK_BYTES)
			n = QUEUE_BODY_CHUNK_BYTES;
		buf_reset(&c->chunk);
		if (queue_stuff_feed(&c->stuff, c->body + c->body_off, n,
				     &c->chunk) < 0 ||
		    queue_io_write_buf(c->io, &c->chunk) < 0)
			panic("queue: body chunk exceeds its bound");
		c->body_off += n;
	}
	if (c->body_off < c->body_len) {
		queue_io_want_drained(c->io);
		return;
	}
	buf_reset(&c->chunk);
	if (queue_stuff_finish(&c->stuff, &c->chunk) < 0 ||
	    queue_io_write_buf(c->io, &c->chunk) < 0)
		panic("queue: body end exceeds its bound");
	c->state = QC_DOT;
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_DATA_END_MS);
}

static void
queue_client_start_body(struct queue_client *c)
{
	c->state = QC_BODY;
	c->body_off = 0;
	queue_stuff_init(&c->stuff);
	/* Stuffing at most doubles a chunk (a line of dots, LF -> CRLF). */
	buf_init(&c->chunk, 2 * QUEUE_BODY_CHUNK_BYTES + 16);
	if (c->dkim_sig.len > 0 &&
	    (queue_stuff_feed(&c->stuff, c->dkim_sig.data, c->dkim_sig.len,
			      &c->chunk) < 0 ||
	     queue_io_write_buf(c->io, &c->chunk) < 0))
		panic("queue: DKIM signature exceeds its bound");
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_DATA_BLOCK_MS);
	queue_client_pump(c);
}

/* The outcome of the whole DATA for every accepted recipient. */
static void
queue_client_on_dot(struct queue_client *c)
{
	char text[QUEUE_DIAG_MAX_BYTES], status[QUEUE_STATUS_MAX];

	queue_reply_format(&c->reply, text, sizeof(text));
	queue_client_status(&c->reply, status, sizeof(status));
	for (size_t i = 0; i < c->p->rcpt_count; i++) {
		struct queue_rcpt_result *r = &c->p->results[i];
		if (r->code / 100 != 2)
			continue;
		r->code = c->reply.code;
		snprintf(r->status, sizeof(r->status), "%s", status);
		snprintf(r->reply, sizeof(r->reply), "%s", text);
	}
	if (c->accepted > 0)
		log_info("queue", c->log_id, "data-done host=%s reply=%s",
			 c->peer_name, text);
	queue_client_done_ok(c);
}

/* A reply to MAIL, to RCPT i - 1 or to DATA. */
static void
queue_client_on_tx(struct queue_client *c)
{
	size_t k = c->reply_idx++, n = c->p->rcpt_count;
	unsigned code = c->reply.code;

	if (k == 0) {
		if (code / 100 != 2) {
			c->mail_failed = true;
			queue_client_finish_reply(c, code / 100 == 5 ?
						      QUEUE_CLIENT_FAIL_ALL :
						      QUEUE_CLIENT_HOST_FAIL,
						  "MAIL FROM");
			return;
		}
	} else if (k <= n) {
		struct queue_rcpt_result *r = &c->p->results[k - 1];
		r->code = code;
		queue_client_status(&c->reply, r->status, sizeof(r->status));
		queue_reply_format(&c->reply, r->reply, sizeof(r->reply));
		if (code / 100 == 2)
			c->accepted++;
	} else {
		if (code == 354 && c->accepted > 0) {
			queue_client_start_body(c);
			return;
		}
		if (code == 354) {
			/* RFC 2920 3.1: no recipient, yet 354: end it. */
			queue_io_write(c->io, ".\r\n", 3);
			c->state = QC_DOT_IGNORE;
			return;
		}
		/* DATA refused: every accepted recipient shares it. */
		queue_client_on_dot(c);
		return;
	}
	if (c->pipelining)
		return;
	/* One command at a time. */
	if (k < n) {
		queue_client_send_rcpt(c, k);
		queue_io_set_timeout(c->io, QUEUE_TIMEOUT_RCPT_MS);
	} else if (c->accepted > 0) {
		queue_client_cmd(c, "DATA");
		queue_io_set_timeout(c->io, QUEUE_TIMEOUT_DATA_INIT_MS);
	} else {
		queue_client_done_ok(c);
	}
}

/* ---- events ---- */

/* A complete reply arrived. */
static void
queue_client_on_reply(struct queue_client *c)
{
	/* RFC 5321 3.8: 421 means the server closes the session. */
	if (c->reply.code == 421)
		c->no_reuse = true;
	switch (c->state) {
	case QC_GREETING:
		queue_client_on_greeting(c);
		break;
	case QC_EHLO:
	case QC_HELO:
	case QC_EHLO_TLS:
		queue_client_on_ehlo(c);
		break;
	case QC_STARTTLS:
		queue_client_on_starttls(c);
		break;
	case QC_AUTH:
		queue_client_on_auth(c);
		break;
	case QC_TX:
		queue_client_on_tx(c);
		break;
	case QC_DOT:
		queue_client_on_dot(c);
		break;
	case QC_DOT_IGNORE:
		queue_client_done_ok(c);
		break;
	case QC_QUIT:
		queue_client_free(c);
		break;
	case QC_RSET:
		queue_client_on_rset(c);
		break;
	case QC_IDLE:
		/* Only a server that gives up speaks now (421). */
		queue_client_free(c);
		break;
	case QC_CONNECT:
	case QC_TLS:
	case QC_BODY:
		/* A reply while we send the content: a server that gave up
		   (RFC 5321 4.1.1.4 allows nothing else). */
		queue_client_lost(c, "unexpected reply");
		break;
	}
}

/* Read complete replies; false when the client is gone or changed
   state in a way that ends reading (TLS). */
static bool
queue_client_read(struct queue_client *c)
{
	struct strview line;
	const char *error;
	enum queue_io_line lr;

	while (c->io != NULL && c->state != QC_TLS) {
		lr = queue_io_read_line(c->io, QUEUE_REPLY_LINE_MAX_BYTES,
					&line);
		if (lr == QUEUE_IO_LINE_MORE)
			return true;
		if (lr == QUEUE_IO_LINE_TOO_LONG) {
			queue_client_lost(c, "reply line too long");
			return false;
		}
		switch (queue_reply_feed(&c->reply, line, &error)) {
		case QUEUE_REPLY_MORE:
			continue;
		case QUEUE_REPLY_ERR:
			queue_client_lost(c, error);
			return false;
		case QUEUE_REPLY_DONE:
			break;
		}
		c->depth++;
		queue_client_on_reply(c);
		c->depth--;
		if (c->dead) {
			queue_client_destroy(c);
			return false;
		}
	}
	return c->io != NULL;
}

static void
queue_client_io(struct queue_io *io, enum queue_io_event ev, void *ctx)
{
	struct queue_client *c = ctx;

	(void)io;
	switch (ev) {
	case QUEUE_IO_CONNECTED:
		c->state = QC_GREETING;
		queue_io_set_timeout(c->io, QUEUE_TIMEOUT_GREETING_MS);
		break;
	case QUEUE_IO_INPUT:
		(void)queue_client_read(c);
		break;
	case QUEUE_IO_TLS_OK:
		queue_client_on_tls(c);
		break;
	case QUEUE_IO_DRAINED:
		if (c->state == QC_BODY)
			queue_client_pump(c);
		break;
	case QUEUE_IO_ERROR:
		queue_client_lost(c, queue_io_error(c->io));
		break;
	case QUEUE_IO_TIMEOUT:
		if (c->state == QC_IDLE) {
			queue_clients_idle--;
			queue_client_quit(c);
			break;
		}
		queue_client_lost(c, "timeout");
		break;
	}
}

static bool
queue_client_same_addr(const struct sockaddr_storage *a,
		       const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a,
					 *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a,
					  *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr,
			      sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* An idle session to the same address, host name and AUTH setting. */
static struct queue_client *
queue_client_find_idle(const struct queue_client_params *p)
{
	for (struct queue_client *c = queue_clients; c != NULL; c = c->next) {
		if (c->state == QC_IDLE && c->io != NULL && !c->dead &&
		    c->has_auth == (p->auth_user != NULL) &&
		    strcmp(c->peer_name, p->peer_name) == 0 &&
		    queue_client_same_addr(&c->addr, p->addr))
			return c;
	}
	return NULL;
}

/* Forget the last transaction; the connection, TLS and caps stay. */
static void
queue_client_tx_reset(struct queue_client *c)
{
	memset(&c->res, 0, sizeof(c->res));
	c->reported = false;
	c->pipelining = c->mail_failed = false;
	c->reply_idx = c->sent_idx = c->accepted = 0;
	c->use_8bitmime = c->use_smtputf8 = false;
	c->body = NULL;
	c->body_len = c->body_off = 0;
	buf_free(&c->converted);
	buf_free(&c->chunk);
	buf_init(&c->converted, 1);
	buf_init(&c->chunk, 1);
	buf_reset(&c->dkim_sig);
}

/* Take over an idle session: RSET, then the new transaction. */
static void
queue_client_reuse(struct queue_client *c,
		   const struct queue_client_params *params,
		   queue_client_done_fn *done, void *ctx)
{
	queue_clients_idle--;
	queue_client_tx_reset(c);
	c->p = params;
	c->done = done;
	c->ctx = ctx;
	c->reused = true;
	snprintf(c->log_id, sizeof(c->log_id), "%s",
		 params->log_id != NULL ? params->log_id : "-");
	for (size_t i = 0; i < params->rcpt_count; i++)
		memset(&params->results[i], 0, sizeof(params->results[i]));
	log_info("queue", c->log_id, "reuse host=%s addr=%s transactions=%u",
		 c->peer_name, c->peer, c->transactions);
	/* RFC 5321 4.1.1.5: a clean state before the next MAIL. */
	queue_client_cmd(c, "RSET");
	c->state = QC_RSET;
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_OTHER_MS);
}

static void
queue_client_start_failed(struct ev_loop *loop, void *ctx)
{
	struct queue_client *c = ctx;

	(void)loop;
	c->start_timer = NULL;
	queue_client_finish(c, QUEUE_CLIENT_HOST_FAIL, 0, "4.4.1",
			    "cannot connect to %s: %s", c->peer_name,
			    c->start_error);
}

void
queue_client_start(struct ev_loop *loop,
		   const struct queue_client_params *params,
		   queue_client_done_fn *done, void *ctx)
{
	struct queue_client *c;
	const char *error = NULL;

	c = params->no_reuse ? NULL : queue_client_find_idle(params);
	if (c != NULL) {
		queue_client_reuse(c, params, done, ctx);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->p = params;
	c->done = done;
	c->ctx = ctx;
	c->state = QC_CONNECT;
	snprintf(c->log_id, sizeof(c->log_id), "%s",
		 params->log_id != NULL ? params->log_id : "-");
	snprintf(c->peer_name, sizeof(c->peer_name), "%s", params->peer_name);
	c->addr = *params->addr;
	c->has_auth = params->auth_user != NULL;
	queue_reply_init(&c->reply);
	buf_init(&c->converted, 1);
	buf_init(&c->chunk, 1);
	buf_init(&c->dkim_sig, QUEUE_DKIM_HEADER_MAX_BYTES);
	c->next = queue_clients;
	if (c->next != NULL)
		c->next->prevp = &c->next;
	c->prevp = &queue_clients;
	queue_clients = c;
	for (size_t i = 0; i < params->rcpt_count; i++)
		memset(&params->results[i], 0, sizeof(params->results[i]));
	c->io = queue_io_connect(loop, params->addr, queue_client_io, c,
				 &error);
	if (c->io == NULL) {
		c->start_error = error;
		c->start_timer = ev_timer_add(loop, 0, queue_client_start_failed,
					      c);
		return;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", queue_io_peer(c->io));
	queue_io_set_timeout(c->io, QUEUE_TIMEOUT_CONNECT_MS);
}
