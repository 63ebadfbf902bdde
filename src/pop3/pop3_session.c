/* POP3 sessions: the AUTHORIZATION / TRANSACTION / UPDATE states of RFC
   1939, pipelining (RFC 2449 6.6: commands are read and answered in
   order), multi-line responses streamed in slices as output drains, and
   the timeout (RFC 1939 3: an inactivity timer of at least 10 minutes
   that ends the session without UPDATE). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/arena.h"
#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/env.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "pop3/pop3.h"
#include "pop3/pop3_int.h"

static struct pop3_session *pop3_sessions;
/* pop3_drain() was called: a session busy at that moment (streaming or
   in a failed-login delay) says goodbye when it is done. */
static bool pop3_draining;
static void pop3_session_input(struct conn *c, void *ctx);
static void pop3_session_drained(struct conn *c, void *ctx);
static void pop3_session_closed(struct conn *c, void *ctx,
				enum conn_close_reason reason);
static void pop3_session_timeout(struct conn *c, void *ctx);

static const struct conn_handler pop3_handler = {
	.on_input = pop3_session_input,
	.on_drained = pop3_session_drained,
	.on_close = pop3_session_closed,
	.on_timeout = pop3_session_timeout,
};

int
pop3_init(struct tern_env *env)
{
	(void)env;
	return 0;
}

void
pop3_deinit(void)
{
}

static void __attribute__((format(printf, 3, 0)))
pop3_vreply(struct pop3_session *s, const char *status, const char *fmt,
	    va_list ap)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	if (n < 0)
		line[0] = '\0';
	conn_printf(s->c, "%s%s%s\r\n", status, line[0] != '\0' ? " " : "", line);
}

void
pop3_reply_ok(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3_vreply(s, "+OK", fmt, ap);
	va_end(ap);
}

void
pop3_reply_err(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3_vreply(s, "-ERR", fmt, ap);
	va_end(ap);
}

void
pop3_client_error(struct pop3_session *s, const char *msg)
{
	pop3_reply_err(s, "%s", msg);
	if (++s->errors >= POP3_ERRORS_MAX) {
		pop3_reply_err(s, "Too many errors, closing");
		log_info("pop3", conn_id(s->c), "too-many-errors");
		pop3_session_close(s);
	}
}

bool
pop3_session_plaintext_ok(const struct pop3_session *s)
{
	return conn_is_tls(s->c) ||
	       (s->env->cfg->plaintext_auth_loopback && conn_is_loopback(s->c));
}

bool
pop3_session_stls_ok(const struct pop3_session *s)
{
	return !conn_is_tls(s->c) && s->env->tls != NULL &&
	       s->listener->tls != CFG_TLS_IMPLICIT;
}

void
pop3_session_close(struct pop3_session *s)
{
	conn_close(s->c);
}

/* A stream or delay is over: read the next command, or close when the
   worker is shutting down (without UPDATE, like pop3_drain). */
static void
pop3_session_unbusy(struct pop3_session *s)
{
	s->busy = false;
	if (pop3_draining) {
		pop3_reply_err(s, "[SYS/TEMP] Server shutting down");
		pop3_session_close(s);
		return;
	}
	conn_resume_input(s->c);
}

/* ---- failed-login delay ---- */

static void
pop3_session_delay_fired(struct ev_loop *loop, void *ctx)
{
	struct pop3_session *s = ctx;

	(void)loop;
	s->delay = NULL;
	conn_write_str(s->c, s->delayed_reply);
	xfree(&s->delayed_reply);
	pop3_session_unbusy(s);
}

void
pop3_session_fail_delayed(struct pop3_session *s, const char *reply)
{
	unsigned ms = auth_throttle_delay_ms(s->env->throttle,
					     conn_peer_addr(s->c), s->user,
					     ev_now(s->env->loop));
	struct buf b;

	buf_init(&b, 1024);
	buf_printf(&b, "%s\r\n", reply);
	if (ms == 0) {
		conn_write(s->c, b.data, b.len);
		buf_free(&b);
		return;
	}
	s->delayed_reply = buf_steal(&b, NULL);
	s->busy = true;
	conn_pause_input(s->c);
	s->delay = ev_timer_add(s->env->loop, ms, pop3_session_delay_fired, s);
}

/* ---- streaming multi-line responses ---- */

static void
pop3_write_conn(void *ctx, const void *data, size_t len)
{
	conn_write(ctx, data, len);
}

/* One slice of LIST or UIDL lines. true when finished. */
static bool
pop3_stream_list(struct pop3_session *s)
{
	char uidl[64];
	unsigned lines = 0;

	while (s->list_next <= s->md.count && lines < POP3_LIST_SLICE_LINES) {
		uint32_t n = s->list_next++;
		const struct store_msg *m = pop3_maildrop_get(&s->md, n);
		if (m == NULL)
			continue;
		if (s->stream == POP3_STREAM_LIST) {
			conn_printf(s->c, "%u %llu\r\n", n,
				    (unsigned long long)m->size);
		} else {
			pop3_maildrop_uidl(&s->md, n, uidl, sizeof(uidl));
			conn_printf(s->c, "%u %s\r\n", n, uidl);
		}
		lines++;
	}
	return s->list_next > s->md.count;
}

/* Produce output until the queue is full or the response is complete. */
static void
pop3_stream_run(struct pop3_session *s)
{
	bool done = false;

	while (!done && conn_output_pending(s->c) < CONN_OUTPUT_LOW_BYTES) {
		if (s->stream == POP3_STREAM_MSG)
			done = pop3_msg_fmt_run(&s->fmt, POP3_SLICE_BYTES,
						pop3_write_conn, s->c);
		else
			done = pop3_stream_list(s);
	}
	if (!done) {
		conn_want_drained(s->c);
		return;
	}
	conn_write_str(s->c, ".\r\n");
	if (s->stream == POP3_STREAM_MSG)
		store_blob_unmap(&s->map);
	s->stream = POP3_STREAM_NONE;
	pop3_session_unbusy(s);
}

void
pop3_session_stream_start(struct pop3_session *s, enum pop3_stream_kind kind)
{
	s->stream = kind;
	s->list_next = 1;
	s->busy = true;
	conn_pause_input(s->c);
	pop3_stream_run(s);
}

static void
pop3_session_drained(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;

	(void)c;
	if (s->stream != POP3_STREAM_NONE)
		pop3_stream_run(s);
}

/* ---- input ---- */

static void
pop3_session_command(struct pop3_session *s, struct strview line)
{
	struct pop3_cmdline cmd;
	const struct pop3_cmd *def;
	const char *error;

	if (pop3_parse_line(line, &cmd, &error) != POP3_PARSE_OK) {
		pop3_client_error(s, error);
		return;
	}
	def = pop3_cmd_find(cmd.name);
	if (def == NULL) {
		pop3_client_error(s, "Unknown command");
		return;
	}
	if ((def->states & s->state) == 0) {
		pop3_client_error(s, s->state == POP3_STATE_AUTHORIZATION ?
					     "Not logged in" :
					     "Command not valid in this state");
		return;
	}
	def->run(s, &cmd);
	arena_reset(s->cmd_arena);
}

static void
pop3_session_input(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;

	while (!s->busy && !conn_closing(c)) {
		struct strview line;
		size_t max = s->sasl != NULL ? POP3_SASL_LINE_MAX_BYTES :
					       POP3_LINE_MAX_BYTES;
		enum conn_line_res r;

		/* Commands per second: wait for a token (conn.h). */
		if (!conn_rate_ready(c))
			return;
		r = conn_read_line(c, max, &line, NULL);
		if (r == CONN_LINE_MORE)
			return;
		conn_rate_take(c);
		if (r == CONN_LINE_TOO_LONG) {
			if (s->sasl != NULL)
				pop3_auth_reset(s);
			pop3_client_error(s, "Line too long");
			continue;
		}
		if (s->sasl != NULL)
			pop3_auth_continue(s, line);
		else
			pop3_session_command(s, line);
	}
}

static void
pop3_session_timeout(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;

	(void)c;
	log_info("pop3", conn_id(s->c), "timeout user=%s",
		 s->account != NULL ? s->account : "-");
	pop3_reply_err(s, "Autologout; idle for too long");
	pop3_session_close(s);
}

static void
pop3_session_closed(struct conn *c, void *ctx, enum conn_close_reason reason)
{
	struct pop3_session *s = ctx;

	(void)c;
	log_info("pop3", conn_id(s->c), "disconnect reason=%d user=%s", (int)reason,
		 s->account != NULL ? s->account : "-");
	if (s->stream == POP3_STREAM_MSG)
		store_blob_unmap(&s->map);
	ev_timer_del(s->env->loop, &s->delay);
	if (s->update != NULL)
		s->update->s = NULL; /* QUIT's update completes without us */
	/* Never UPDATE here: only QUIT removes messages. */
	pop3_maildrop_close(&s->md);
	pop3_auth_reset(s);
	free(s->delayed_reply);
	free(s->account);
	arena_free(&s->cmd_arena);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		pop3_sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s);
}

/* RFC 3206 3: [SYS/TEMP] for a refusal that is worth retrying. */
static void
pop3_session_refuse(struct pop3_session *s)
{
	bool draining = s->env->draining;

	log_info("pop3", conn_id(s->c), "refused peer=%s reason=%s",
		 conn_peer_addr(s->c), draining ? "draining" : "connection-limit");
	pop3_reply_err(s, "[SYS/TEMP] %s", draining ? "Server shutting down" :
					      "Too many connections, try later");
	pop3_session_close(s);
}

void
pop3_session_start(struct tern_env *env, const struct cfg_listener *listener,
		   struct conn *c)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->env = env;
	s->listener = listener;
	s->c = c;
	s->state = POP3_STATE_AUTHORIZATION;
	s->md.lock_fd = -1;
	s->cmd_arena = arena_new("pop3 command", POP3_CMD_ARENA_BYTES);
	s->next = pop3_sessions;
	if (s->next != NULL)
		s->next->prev = s;
	pop3_sessions = s;
	conn_set_handler(c, &pop3_handler, s);
	conn_set_timeout(c, env->cfg->pop3_timeout_ms);
	conn_set_rate(c, env->cfg->command_rate, env->cfg->command_burst);
	if (env->draining ||
	    conn_server_count() > env->cfg->max_connections ||
	    conn_peer_count(c) > env->cfg->max_connections_per_ip) {
		pop3_session_refuse(s);
		return;
	}
	log_info("pop3", conn_id(c), "connect peer=%s listener=%s",
		 conn_peer_addr(c), listener->name);
	pop3_reply_ok(s, "tern POP3 server ready");
}

void
pop3_drain(void)
{
	pop3_draining = true;
	for (struct pop3_session *s = pop3_sessions; s != NULL; s = s->next) {
		if (s->busy || conn_closing(s->c))
			continue;
		pop3_reply_err(s, "[SYS/TEMP] Server shutting down");
		pop3_session_close(s);
	}
}
