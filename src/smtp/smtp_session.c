/* The SMTP session: greeting and connection limits, the input switch over
   session states (command lines, DATA content, BDAT chunks, SASL
   responses), replies and the error limit, timeouts and draining.
   RFC 5321 3.1 (greeting), 4.2 (replies), 4.5.3.2 (timeouts), 4.1.1.4
   (DATA), RFC 3030 2 (BDAT chunks are read by length, never as lines),
   RFC 2920 (every complete buffered command is processed in order),
   RFC 3207 4.2 (plaintext after STARTTLS is discarded by conn_starttls).
   Security: every read is bounded (SMTP_LINE_MAX, SMTP_AUTH_LINE_MAX,
   chunk sizes checked against the message limit); client bytes are
   sanitized before logging. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/arena.h"
#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "smtp/smtp.h"
#include "smtp/smtp_int.h"

static struct smtp_session *smtp_sessions;

const char *
smtp_session_id(const struct smtp_session *s)
{
	return s->id;
}

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		panic("smtp: reply format");
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	conn_write(s->c, line, (size_t)n);
}

/* "421 <code> <hostname> <text>" (RFC 5321 3.8), then close. */
static void
smtp_session_close_421(struct smtp_session *s, const char *text)
{
	smtp_reply(s, "421 %.5s %s %s", text, s->env->hostname, text + 6);
	conn_close(s->c);
}

void
smtp_reply_error(struct smtp_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	smtp_reply(s, "%s", line);
	s->errors++;
	if (s->env->cfg->smtp_max_errors != 0 &&
	    s->errors >= s->env->cfg->smtp_max_errors) {
		log_info("smtp", smtp_session_id(s), "too-many-errors count=%u",
			 s->errors);
		smtp_session_close_421(s, "4.7.0 Too many errors, closing "
					  "connection");
	}
}

bool
smtp_session_auth_allowed(const struct smtp_session *s)
{
	/* The MX port offers AUTH only inside TLS, even on loopback. */
	if (s->listener->protocol == CFG_PROTO_SMTP)
		return conn_is_tls(s->c);
	return conn_is_tls(s->c) ||
	       (s->env->cfg->plaintext_auth_loopback &&
		conn_is_loopback(s->c));
}

void
smtp_tx_reset(struct smtp_session *s)
{
	smtp_deliver_abort(s);
	if (s->tx.arena != NULL)
		arena_reset(s->tx.arena);
	{
		struct arena *a = s->tx.arena;
		memset(&s->tx, 0, sizeof(s->tx));
		s->tx.arena = a;
	}
	if (s->state & (SMTP_S_MAIL | SMTP_S_RCPT | SMTP_S_CHUNKING |
			SMTP_S_DATA | SMTP_S_BDAT | SMTP_S_WAIT))
		s->state = SMTP_S_READY;
}

/* Back to command timeouts and reading after content or a wait. */
void
smtp_session_resume(struct smtp_session *s)
{
	conn_set_timeout(s->c, s->env->cfg->smtp_timeout_ms);
	if (s->env->draining && (s->state & (SMTP_S_INIT | SMTP_S_READY))) {
		smtp_session_close_421(s, "4.3.2 Service shutting down");
		return;
	}
	if (!conn_closing(s->c))
		conn_resume_input(s->c);
}

/* ---- content: DATA ---- */

static void
smtp_session_content_done(struct smtp_session *s)
{
	struct smtp_data *d = &s->tx.data;

	if (d->too_big) {
		log_info("smtp", smtp_session_id(s), "reject-size size=%llu",
			 (unsigned long long)d->size);
		smtp_tx_reset(s);
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum "
			      "message size");
	} else if (d->bare) {
		log_info("smtp", smtp_session_id(s), "reject-bare-newline");
		smtp_tx_reset(s);
		smtp_reply(s, "550 5.6.0 Message contains bare CR or LF "
			      "(RFC 5321 2.3.8); use CRLF line endings");
	} else if (d->received > s->env->cfg->smtp_max_received) {
		log_info("smtp", smtp_session_id(s), "reject-hops received=%u",
			 d->received);
		smtp_tx_reset(s);
		smtp_reply(s, "554 5.4.6 Too many hops (%u Received: fields): "
			      "mail loop?", d->received);
	} else if (s->tx.write_failed) {
		const char *reply = smtp_deliver_store_reply(s);

		smtp_tx_reset(s);
		smtp_reply(s, "%s", reply);
	} else {
		smtp_deliver_submit(s);
		return;
	}
	smtp_session_resume(s);
}

/* Returns true when the loop should continue. */
static bool
smtp_session_data_input(struct smtp_session *s)
{
	const uint8_t *in;
	size_t avail = conn_input_peek(s->c, &in), olen, used;
	enum smtp_data_res r;

	if (avail == 0)
		return false;
	if (avail > SMTP_SCRATCH_BYTES - 2)
		avail = SMTP_SCRATCH_BYTES - 2;
	r = smtp_data_feed(&s->tx.data, in, avail, s->scratch, &olen, &used);
	smtp_data_scan_header(&s->tx.data, s->scratch, olen);
	if (olen > 0 && !s->tx.data.bare)
		smtp_deliver_write(s, s->scratch, olen);
	conn_input_consume(s->c, used);
	if (r == SMTP_DATA_DONE)
		smtp_session_content_done(s);
	return true;
}

/* ---- content: BDAT ---- */

static void
smtp_session_chunk_done(struct smtp_session *s)
{
	struct smtp_data *d = &s->tx.data;

	if (s->tx.bdat_discard) {
		/* The chunk of a BDAT that was refused has been read and
		   dropped; only now can the refusal be sent (RFC 3030 2). */
		s->tx.bdat_discard = false;
		s->state = s->helo[0] != '\0' ? SMTP_S_READY : SMTP_S_INIT;
		if (s->tx.bdat_norcpt)
			smtp_reply_error(s, "554 5.5.1 No valid recipients");
		else
			smtp_reply_error(s, "503 5.5.1 Bad sequence of "
					    "commands: no valid transaction "
					    "for BDAT");
		return;
	}
	if (d->too_big || s->tx.write_failed) {
		smtp_session_content_done(s);
		return;
	}
	if (!s->tx.bdat_last) {
		s->state = SMTP_S_CHUNKING;
		conn_set_timeout(s->c, s->env->cfg->smtp_timeout_ms);
		smtp_reply(s, "250 2.0.0 %llu octets received",
			   (unsigned long long)d->size);
		return;
	}
	smtp_data_bdat_end(d);
	smtp_session_content_done(s);
}

static bool
smtp_session_bdat_input(struct smtp_session *s)
{
	const uint8_t *in;
	size_t avail;

	if (s->tx.bdat_left > 0) {
		avail = conn_input_peek(s->c, &in);
		if (avail == 0)
			return false;
		if ((uint64_t)avail > s->tx.bdat_left)
			avail = (size_t)s->tx.bdat_left;
		if (!s->tx.bdat_discard) {
			smtp_data_bdat_feed(&s->tx.data, in, avail);
			smtp_data_scan_header(&s->tx.data, in, avail);
			if (!s->tx.data.too_big && !s->tx.data.bare)
				smtp_deliver_write(s, in, avail);
		}
		conn_input_consume(s->c, avail);
		s->tx.bdat_left -= avail;
	}
	if (s->tx.bdat_left == 0)
		smtp_session_chunk_done(s);
	return true;
}

/* ---- lines ---- */

static bool
smtp_session_line_input(struct smtp_session *s)
{
	struct strview line;
	bool auth = s->state == SMTP_S_AUTH;
	enum conn_line_res r;

	/* Commands per second: wait for a token, then read (conn.h). */
	if (!conn_rate_ready(s->c))
		return false;
	r = conn_read_line(s->c, auth ? SMTP_AUTH_LINE_MAX : SMTP_LINE_MAX,
			   &line, NULL);
	if (r == CONN_LINE_MORE)
		return false;
	conn_rate_take(s->c);
	if (r == CONN_LINE_TOO_LONG) {
		if (auth) {
			smtp_auth_clear(s);
			s->state = SMTP_S_READY;
		}
		smtp_reply_error(s, "500 5.5.2 Line too long");
		return true;
	}
	if (auth)
		smtp_auth_response(s, line);
	else
		smtp_cmd_dispatch(s, line);
	return true;
}

static void
smtp_session_on_input(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;
	bool more = true;

	while (more && !conn_closing(c) && !conn_input_paused(c)) {
		switch (s->state) {
		case SMTP_S_DATA:
			more = smtp_session_data_input(s);
			break;
		case SMTP_S_BDAT:
			more = smtp_session_bdat_input(s);
			break;
		case SMTP_S_WAIT:
			more = false;
			break;
		default:
			more = smtp_session_line_input(s);
			if (more && s->env->draining &&
			    (s->state & (SMTP_S_INIT | SMTP_S_READY)) &&
			    !conn_closing(c) && !conn_input_paused(c)) {
				smtp_session_close_421(
					s, "4.3.2 Service shutting down");
				more = false;
			}
			break;
		}
	}
}

/* ---- lifetime ---- */

static void
smtp_session_release(struct smtp_session *s)
{
	smtp_tx_reset(s);
	smtp_auth_clear(s);
	if (s->tx.arena != NULL)
		arena_free(&s->tx.arena);
	free(s->account);
	free(s->scratch);
	free(s);
}

static void
smtp_session_free(struct smtp_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		smtp_sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->c = NULL;
	if (s->pending) {
		/* The commit thread reads the transaction: free it when the
		   job is done (smtp_session_commit_done). */
		s->dead = true;
		return;
	}
	smtp_session_release(s);
}

static void
smtp_session_on_close(struct conn *c, void *ctx,
		      enum conn_close_reason reason)
{
	struct smtp_session *s = ctx;

	log_info("smtp", smtp_session_id(s), "disconnect reason=%d errors=%u",
		 (int)reason, s->errors);
	smtp_session_free(s);
}

static void
smtp_session_on_timeout(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;

	log_info("smtp", smtp_session_id(s), "timeout state=0x%x", s->state);
	smtp_session_close_421(s, "4.4.2 Error: timeout exceeded");
}

static const struct conn_handler smtp_session_handler = {
	.on_input = smtp_session_on_input,
	.on_close = smtp_session_on_close,
	.on_timeout = smtp_session_on_timeout,
};

/* Connection limits (max_connections, max_connections_per_ip), both
   server-wide. */
static bool
smtp_session_over_limit(struct smtp_session *s)
{
	const struct cfg *cfg = s->env->cfg;

	if (cfg->max_connections != 0 && conn_server_count() > cfg->max_connections) {
		log_info("smtp", smtp_session_id(s), "reject-conn-limit");
		smtp_session_close_421(s, "4.3.2 Too many connections, try "
					  "again later");
		return true;
	}
	if (cfg->max_connections_per_ip != 0 &&
	    conn_peer_count(s->c) > cfg->max_connections_per_ip) {
		log_info("smtp", smtp_session_id(s),
			 "reject-conn-limit-ip ip=%s", conn_peer_addr(s->c));
		smtp_session_close_421(s, "4.7.0 Too many connections from "
					  "your address");
		return true;
	}
	return false;
}

void
smtp_session_start(struct tern_env *env, const struct cfg_listener *listener,
		   struct conn *c)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->env = env;
	s->listener = listener;
	s->c = c;
	snprintf(s->id, sizeof(s->id), "%s", conn_id(c));
	s->state = SMTP_S_INIT;
	s->tx.arena = arena_new("smtp tx", 4096);
	s->scratch = xmalloc(SMTP_SCRATCH_BYTES);
	s->next = smtp_sessions;
	if (smtp_sessions != NULL)
		smtp_sessions->prev = s;
	smtp_sessions = s;
	conn_set_handler(c, &smtp_session_handler, s);
	conn_set_timeout(c, env->cfg->smtp_timeout_ms);
	conn_set_rate(c, env->cfg->command_rate, env->cfg->command_burst);
	log_info("smtp", smtp_session_id(s), "connect ip=%s port=%u "
		 "listener=%s", conn_peer_addr(c), conn_local_port(c),
		 listener->name);
	if (smtp_session_over_limit(s))
		return;
	if (env->draining) {
		smtp_session_close_421(s, "4.3.2 Service shutting down");
		return;
	}
	smtp_reply(s, "220 %s ESMTP tern", env->hostname);
}

void
smtp_session_commit_done(struct smtp_session *s, const char *reply)
{
	if (s->dead) {
		smtp_session_release(s);
		return;
	}
	if (reply[0] == '2')
		s->junk = 0;
	smtp_tx_reset(s);
	smtp_reply(s, "%s", reply);
	smtp_session_resume(s);
}

int
smtp_init(struct tern_env *env)
{
	(void)env;
	return 0;
}

void
smtp_drain(void)
{
	struct smtp_session *s, *next;

	for (s = smtp_sessions; s != NULL; s = next) {
		next = s->next;
		if ((s->state & (SMTP_S_INIT | SMTP_S_READY | SMTP_S_MAIL |
				 SMTP_S_RCPT)) && !conn_closing(s->c) &&
		    !conn_input_paused(s->c))
			smtp_session_close_421(s, "4.3.2 Service shutting "
						  "down");
	}
}

void
smtp_deinit(void)
{
}
