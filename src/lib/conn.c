/* Client connections: plain or TLS sockets on the event loop, a bounded
   input buffer with a line reader, a bounded output queue and an idle
   timeout. See conn.h for the event contract.

   on_close is never called from inside a session's own callback: closing
   is finished from a deferred call, so a session may close itself from
   anywhere without freeing memory its caller still uses.

   STARTTLS (RFC 3207 4.2, RFC 2595 3.1, RFC 9051 6.2.1): input buffered
   when the command is accepted is discarded; the socket is not read again
   until the reply has been flushed, and from then on only TLS reads it.

   Memory: an idle connection keeps no buffer. Reads go through a stack
   chunk so the input buffer is only as large as the bytes waiting, and
   input and output buffers are freed once empty: the empty buffers
   kept before were 0.4-0.5 KB of every connection in IDLE (measured,
   docs/performance.md), and a malloc per reply costs far less than the
   reply's send. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/shared_limits.h"
#include "lib/tls.h"
#include "lib/xalloc.h"

#define CONN_READ_CHUNK 16384
#define CONN_WRITE_CHUNK (256 * 1024)

enum conn_state {
	CONN_HANDSHAKE, /* TLS handshake in progress */
	CONN_OPEN,
	CONN_STARTTLS_FLUSH, /* flushing the STARTTLS reply in plaintext */
	CONN_CLOSING,	     /* flushing output before closing */
	CONN_DEAD,	     /* closed; on_close pending in a deferred call */
};

struct conn {
	struct ev_loop *loop;
	int fd;
	enum conn_state state;
	enum conn_close_reason reason;
	SSL *ssl;
	struct tls_ctx *pending_tls;
	const struct conn_handler *h;
	void *ctx;
	struct buf in, out;
	size_t in_off; /* bytes of in already consumed */
	size_t out_off; /* bytes of out already sent */
	bool paused, want_drained, discarding, input_scheduled;
	bool flush_scheduled, eof, ssl_read_wants_write;
	unsigned ev_mask;
	uint64_t timeout_ms, last_input_ms;
	uint64_t partial_since_ms; /* incomplete input unit since, 0: none */
	struct ev_timer *timer;
	/* commands per second: a token bucket in thousandths of a token */
	uint32_t rate_per_sec; /* 0: no limit */
	uint64_t rate_cap_milli, rate_tokens_milli, rate_last_ms;
	uint64_t rate_delayed; /* commands that had to wait */
	struct ev_timer *rate_timer;
	bool rate_wait; /* waiting for a token: on_input is held */
	bool close_eof; /* closing after the peer's EOF: flush, then EOF */
	struct conn_z *z; /* COMPRESS=DEFLATE, NULL until it starts */
	char id[9];
	char peer[INET6_ADDRSTRLEN];
	uint16_t peer_port, local_port;
	bool loopback;
};

/* COMPRESS state, apart from struct conn: most connections never use
   it, and every byte of struct conn is paid by each idle client. */
struct conn_z {
	z_stream in, out;
	struct buf raw; /* compressed input not yet inflated */
	size_t out_mark; /* out bytes before this are already compressed */
	bool out_live;	 /* the deflate state is allocated */
	bool lean;	 /* free it whenever all output is sent */
};

static size_t conn_live;
static uint32_t conn_next_id;
static uint64_t conn_tls_begun;

/* Live connections per peer address and in total are counted server-wide
   in the shared limits table (shared_limits.c); conn_live is this
   process's own count. */
size_t
conn_peer_count(const struct conn *c)
{
	return shared_limits_conn_peer(shared_limits_current(), c->peer);
}

size_t
conn_server_count(void)
{
	return shared_limits_conn_total(shared_limits_current());
}

static void conn_io(struct ev_loop *loop, int fd, unsigned events, void *ctx);
static void conn_update_interest(struct conn *c);
static void conn_schedule_input(struct conn *c);
static void conn_close_after_eof(struct conn *c);
static void conn_schedule_flush(struct conn *c);
static void conn_handshake(struct conn *c);
static int conn_recv(struct conn *c);

size_t
conn_count(void)
{
	return conn_live;
}

uint64_t
conn_tls_started(void)
{
	return conn_tls_begun;
}

static void
conn_fill_addrs(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	c->peer[0] = '\0';
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &sin->sin_addr, c->peer, sizeof(c->peer));
			c->peer_port = ntohs(sin->sin_port);
			c->loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			const uint8_t *a = s6->sin6_addr.s6_addr;
			c->peer_port = ntohs(s6->sin6_port);
			if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
				inet_ntop(AF_INET, a + 12, c->peer, sizeof(c->peer));
				c->loopback = a[12] == 127;
			} else {
				inet_ntop(AF_INET6, &s6->sin6_addr, c->peer,
					  sizeof(c->peer));
				c->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
			}
		}
	}
	if (c->peer[0] == '\0')
		snprintf(c->peer, sizeof(c->peer), "unknown");
	len = sizeof(ss);
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			c->local_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			c->local_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
}

static int
conn_tls_begin(struct conn *c, struct tls_ctx *tls)
{
	conn_tls_begun++;
	c->ssl = SSL_new(tls_ctx_ssl_ctx(tls));
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	SSL_set_accept_state(c->ssl);
	c->state = CONN_HANDSHAKE;
	return 0;
}

struct conn *
conn_new(struct ev_loop *loop, int fd, struct tls_ctx *tls)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->fd = fd;
	c->state = CONN_OPEN;
	buf_init(&c->in, CONN_INPUT_MAX_BYTES);
	buf_init(&c->out, CONN_OUTPUT_MAX_BYTES);
	snprintf(c->id, sizeof(c->id), "%08x",
		 ((unsigned)getpid() << 20) ^ ++conn_next_id);
	conn_fill_addrs(c);
	shared_limits_conn_add(shared_limits_current(), c->peer);
	c->last_input_ms = ev_now_ms(loop);
	conn_live++;
	if (tls != NULL && conn_tls_begin(c, tls) < 0) {
		log_warn("conn", c->id, "tls-setup-failed");
		SSL_free(c->ssl);
		c->ssl = NULL;
		c->state = CONN_CLOSING;
	}
	if (ev_fd_add(loop, fd, EV_READ, conn_io, c) < 0) {
		log_error("conn", c->id, "ev-add-failed error=%s",
			  strerror(errno));
		c->state = CONN_CLOSING;
	}
	c->ev_mask = EV_READ;
	if (c->state == CONN_CLOSING)
		conn_abort(c, CONN_CLOSE_ERROR);
	return c;
}

void
conn_set_handler(struct conn *c, const struct conn_handler *h, void *ctx)
{
	c->h = h;
	c->ctx = ctx;
}

const char *
conn_id(const struct conn *c)
{
	return c->id;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return c->peer;
}

uint16_t
conn_peer_port(const struct conn *c)
{
	return c->peer_port;
}

bool
conn_is_loopback(const struct conn *c)
{
	return c->loopback;
}

uint16_t
conn_local_port(const struct conn *c)
{
	return c->local_port;
}

/* ---- closing ---- */

static void
conn_free(struct conn *c)
{
	ev_timer_del(c->loop, &c->timer);
	ev_timer_del(c->loop, &c->rate_timer);
	ev_defer_cancel(c->loop, NULL, c);
	if (c->z != NULL) {
		inflateEnd(&c->z->in);
		if (c->z->out_live)
			deflateEnd(&c->z->out);
		buf_free(&c->z->raw);
		free(c->z);
	}
	buf_free(&c->in);
	buf_free(&c->out);
	shared_limits_conn_remove(shared_limits_current(), c->peer);
	free(c);
	conn_live--;
}

static void
conn_finish(struct ev_loop *loop, void *ctx)
{
	struct conn *c = ctx;

	(void)loop;
	if (c->h != NULL && c->h->on_close != NULL)
		c->h->on_close(c, c->ctx, c->reason);
	conn_free(c);
}

void
conn_abort(struct conn *c, enum conn_close_reason reason)
{
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	c->reason = reason;
	ev_fd_del(c->loop, c->fd);
	ev_timer_del(c->loop, &c->timer);
	ev_timer_del(c->loop, &c->rate_timer);
	if (c->rate_delayed > 0)
		log_info("conn", c->id, "rate-limited-total delayed=%llu",
			 (unsigned long long)c->rate_delayed);
	if (c->ssl != NULL) {
		if (reason == CONN_CLOSE_NORMAL)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	/* Cancel pending input/flush calls; then finish from the loop. */
	c->input_scheduled = c->flush_scheduled = false;
	ev_defer(c->loop, conn_finish, c);
}

void
conn_close(struct conn *c)
{
	if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	if (c->out.len == c->out_off)
		conn_abort(c, CONN_CLOSE_NORMAL);
	else
		conn_schedule_flush(c);
}

bool
conn_closing(const struct conn *c)
{
	return c->state == CONN_CLOSING || c->state == CONN_DEAD;
}

/* ---- timeout ---- */

static void
conn_timeout_fire(struct ev_loop *loop, void *ctx)
{
	struct conn *c = ctx;
	uint64_t from = c->last_input_ms, idle;

	/* Slowloris: an incomplete command ages from its first byte. */
	if (c->partial_since_ms != 0 && c->partial_since_ms < from)
		from = c->partial_since_ms;
	idle = ev_now_ms(loop) - from;

	c->timer = NULL;
	if (c->timeout_ms == 0 || c->state == CONN_DEAD)
		return;
	if (idle < c->timeout_ms) {
		/* Input arrived since the timer was armed: re-arm for the
		   rest instead of re-heaping on every read. */
		c->timer = ev_timer_add(loop, c->timeout_ms - idle,
					conn_timeout_fire, c);
		return;
	}
	if (c->state == CONN_OPEN && c->h != NULL && c->h->on_timeout != NULL) {
		c->h->on_timeout(c, c->ctx);
		/* The session must close; make sure it does. */
		if (c->state == CONN_OPEN)
			conn_close(c);
		if (c->state == CONN_CLOSING)
			c->timer = ev_timer_add(loop, 10000, conn_timeout_fire, c);
		return;
	}
	conn_abort(c, CONN_CLOSE_TIMEOUT);
}

void
conn_set_timeout(struct conn *c, uint64_t ms)
{
	c->timeout_ms = ms;
	c->last_input_ms = ev_now_ms(c->loop);
	ev_timer_del(c->loop, &c->timer);
	if (ms > 0 && c->state != CONN_DEAD)
		c->timer = ev_timer_add(c->loop, ms, conn_timeout_fire, c);
}

/* ---- input ---- */

static void
conn_input_call(struct ev_loop *loop, void *ctx)
{
	struct conn *c = ctx;

	(void)loop;
	if (!c->input_scheduled)
		return;
	c->input_scheduled = false;
	if (c->state != CONN_OPEN || c->paused || c->rate_wait || c->h == NULL)
		return;
	if (conn_input_len(c) > 0 || c->discarding)
		c->h->on_input(c, c->ctx);
	/* Everything taken and the session not waiting: free the buffer
	   now rather than at the next read, which for a client in IDLE
	   can be hours away (64 bytes or more of every idle connection).
	   A paused session may still hold views into it until it resumes. */
	if (c->state == CONN_OPEN && !c->paused && !c->rate_wait &&
	    c->in_off == c->in.len && c->in.cap > 0) {
		buf_free(&c->in);
		c->in_off = 0;
	}
	/* TLS may hold decrypted bytes we could not take while the input
	   buffer was full; the socket will not signal them. */
	if (c->state == CONN_OPEN && c->ssl != NULL && !c->paused &&
	    !c->rate_wait && SSL_pending(c->ssl) > 0 && conn_input_len(c) < CONN_INPUT_MAX_BYTES / 2) {
		if (conn_recv(c) < 0) {
			conn_abort(c, CONN_CLOSE_ERROR);
			return;
		}
		conn_schedule_input(c);
	}
	if (c->state == CONN_OPEN && c->eof && !c->paused && !c->rate_wait)
		conn_close_after_eof(c);
	else
		conn_update_interest(c);
}

/* The peer half-closed and every command it sent ran: send the replies
   still queued (a client that pipelines and then shuts down its sending
   side still reads them), then close with CONN_CLOSE_EOF. */
static void
conn_close_after_eof(struct conn *c)
{
	if (c->out_off == c->out.len) {
		conn_abort(c, CONN_CLOSE_EOF);
		return;
	}
	c->state = CONN_CLOSING;
	c->close_eof = true;
	conn_schedule_flush(c);
}

static void
conn_schedule_input(struct conn *c)
{
	if (c->input_scheduled || c->state != CONN_OPEN)
		return;
	c->input_scheduled = true;
	ev_defer(c->loop, conn_input_call, c);
}

/* Unconsumed input starts at in.data + in_off; the buffer is compacted
   only before the socket is read, so pipelined lines cost no memmove. */
static const uint8_t *
conn_in_ptr(const struct conn *c)
{
	return c->in.data + c->in_off;
}

size_t
conn_input_len(const struct conn *c)
{
	return c->in.len - c->in_off;
}

size_t
conn_input_peek(struct conn *c, const uint8_t **data_r)
{
	*data_r = conn_in_ptr(c);
	return conn_input_len(c);
}

void
conn_input_consume(struct conn *c, size_t n)
{
	size_t avail = conn_input_len(c);

	/* Only advance: views handed out stay valid until the buffer is
	   compacted before the next socket read. */
	c->in_off += n > avail ? avail : n;
}

void
conn_input_partial(struct conn *c, bool partial)
{
	if (!partial)
		c->partial_since_ms = 0;
	else if (c->partial_since_ms == 0)
		c->partial_since_ms = ev_now_ms(c->loop);
}

static enum conn_line_res
conn_read_line_more(struct conn *c)
{
	conn_input_partial(c, c->discarding || conn_input_len(c) > 0);
	return CONN_LINE_MORE;
}

enum conn_line_res
conn_read_line(struct conn *c, size_t max, struct strview *line_r,
	       bool *bare_lf_r)
{
	const uint8_t *p = conn_in_ptr(c), *lf;
	size_t avail = conn_input_len(c), len;

	lf = avail == 0 ? NULL : memchr(p, '\n', avail);
	if (c->discarding) {
		if (lf == NULL) {
			conn_input_consume(c, avail);
			return conn_read_line_more(c);
		}
		conn_input_consume(c, (size_t)(lf - p) + 1);
		c->discarding = false;
		conn_input_partial(c, false);
		return CONN_LINE_TOO_LONG;
	}
	if (lf == NULL) {
		if (avail > max + 1) {
			/* No LF within the limit: drop what we have and keep
			   dropping up to the next LF. */
			conn_input_consume(c, avail);
			c->discarding = true;
		}
		return conn_read_line_more(c);
	}
	conn_input_partial(c, false);
	len = (size_t)(lf - p);
	if (bare_lf_r != NULL)
		*bare_lf_r = len == 0 || p[len - 1] != '\r';
	if (len > 0 && p[len - 1] == '\r')
		len--;
	conn_input_consume(c, (size_t)(lf - p) + 1);
	if (len > max)
		return CONN_LINE_TOO_LONG;
	/* The bytes stay in place until the next socket read compacts the
	   buffer, which cannot happen before the caller returns. */
	*line_r = sv_make(p, len);
	return CONN_LINE_OK;
}

void
conn_pause_input(struct conn *c)
{
	c->paused = true;
}

void
conn_resume_input(struct conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	conn_update_interest(c);
	if (conn_input_len(c) > 0 || c->eof)
		conn_schedule_input(c);
}

bool
conn_input_paused(const struct conn *c)
{
	return c->paused;
}

/* ---- commands per second ---- */

/* A token bucket per connection: rate_per_sec tokens a second, at most
   the burst saved up, one token per command. A client that runs out is
   not answered an error: its next command waits (on_input is held, input
   is buffered as while paused), so a pipelining client is slowed down to
   the rate and every command still gets its normal reply. Counting in
   thousandths of a token keeps the refill exact at any rate without
   floating point. */
void
conn_set_rate(struct conn *c, uint32_t per_sec, uint32_t burst)
{
	c->rate_per_sec = per_sec;
	if (burst == 0)
		burst = 1;
	c->rate_cap_milli = (uint64_t)burst * 1000;
	c->rate_tokens_milli = c->rate_cap_milli;
	c->rate_last_ms = ev_now_ms(c->loop);
}

static void
conn_rate_refill(struct conn *c)
{
	uint64_t now = ev_now_ms(c->loop), add;

	if (now <= c->rate_last_ms)
		return;
	/* ms * tokens/s = thousandths of a token; elapsed is bounded by
	   the cap check, so the product cannot overflow in practice, but
	   cap the elapsed time first anyway. */
	add = now - c->rate_last_ms;
	if (add > c->rate_cap_milli)
		add = c->rate_cap_milli;
	add *= c->rate_per_sec;
	c->rate_last_ms = now;
	if (add >= c->rate_cap_milli - c->rate_tokens_milli)
		c->rate_tokens_milli = c->rate_cap_milli;
	else
		c->rate_tokens_milli += add;
}

static void
conn_rate_fire(struct ev_loop *loop, void *ctx)
{
	struct conn *c = ctx;

	(void)loop;
	c->rate_timer = NULL;
	c->rate_wait = false;
	if (c->state != CONN_OPEN)
		return;
	conn_update_interest(c);
	if (conn_input_len(c) > 0 || c->eof || c->discarding)
		conn_schedule_input(c);
}

bool
conn_rate_ready(struct conn *c)
{
	uint64_t missing, ms;

	if (c->rate_per_sec == 0)
		return true;
	if (c->rate_wait)
		return false;
	/* Nothing buffered: the read finds no command anyway. */
	if (conn_input_len(c) == 0 && !c->discarding)
		return true;
	conn_rate_refill(c);
	if (c->rate_tokens_milli >= 1000)
		return true;
	missing = 1000 - c->rate_tokens_milli;
	/* round up: waking early would only re-arm the timer */
	ms = (missing + c->rate_per_sec - 1) / c->rate_per_sec;
	if (c->rate_delayed++ == 0)
		log_info("conn", c->id, "rate-limited peer=%s rate=%u burst=%llu",
			 c->peer, c->rate_per_sec,
			 (unsigned long long)(c->rate_cap_milli / 1000));
	c->rate_wait = true;
	c->rate_timer = ev_timer_add(c->loop, ms, conn_rate_fire, c);
	return false;
}

void
conn_rate_take(struct conn *c)
{
	if (c->rate_per_sec == 0)
		return;
	conn_rate_refill(c);
	c->rate_tokens_milli = c->rate_tokens_milli >= 1000 ?
				       c->rate_tokens_milli - 1000 : 0;
}

bool
conn_rate_waiting(const struct conn *c)
{
	return c->rate_wait;
}

/* ---- output ---- */

void
conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->state == CONN_DEAD || len == 0)
		return;
	if (c->out_off > 0 && c->out_off == c->out.len) {
		buf_reset(&c->out);
		c->out_off = 0;
		if (c->z != NULL)
			c->z->out_mark = 0;
	}
	if (buf_append(&c->out, data, len) < 0) {
		/* The client does not read what it asked for. */
		log_warn("conn", c->id, "output-overflow pending=%zu",
			 c->out.len - c->out_off);
		conn_abort(c, CONN_CLOSE_OVERFLOW);
		return;
	}
	conn_schedule_flush(c);
}

void
conn_write_str(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		conn_write(c, small, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	conn_write(c, big, (size_t)n);
	free(big);
}

size_t
conn_output_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}

static void
conn_drained_call(struct ev_loop *loop, void *ctx)
{
	struct conn *c = ctx;

	(void)loop;
	if (c->state != CONN_OPEN || !c->want_drained ||
	    conn_output_pending(c) >= CONN_OUTPUT_LOW_BYTES)
		return;
	c->want_drained = false;
	if (c->h != NULL && c->h->on_drained != NULL)
		c->h->on_drained(c, c->ctx);
}

void
conn_want_drained(struct conn *c)
{
	c->want_drained = true;
	if (conn_output_pending(c) < CONN_OUTPUT_LOW_BYTES)
		ev_defer(c->loop, conn_drained_call, c);
}

/* Raw deflate (RFC 4978 3), the server's window of 32 KB. */
static int
conn_deflate_init(z_stream *z)
{
	memset(z, 0, sizeof(*z));
	return deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			    Z_DEFAULT_STRATEGY) == Z_OK ? 0 : -1;
}

/* Compress pending plaintext output into a new buffer (COMPRESS). */
static int
conn_deflate_out(struct conn *c, const uint8_t *p, size_t len,
		 struct buf *dst)
{
	c->z->out.next_in = (Bytef *)p;
	c->z->out.avail_in = (uInt)len;
	do {
		uint8_t *o = buf_reserve(dst, 16384);
		if (o == NULL)
			return -1;
		c->z->out.next_out = o;
		c->z->out.avail_out = 16384;
		if (deflate(&c->z->out, Z_SYNC_FLUSH) == Z_STREAM_ERROR)
			return -1;
		buf_commit(dst, 16384 - c->z->out.avail_out);
	} while (c->z->out.avail_out == 0 || c->z->out.avail_in > 0);
	return 0;
}

/* Write as much as the socket takes. 1 all sent, 0 would block, -1 error. */
static int
conn_send(struct conn *c)
{
	while (c->out_off < c->out.len) {
		size_t n = c->out.len - c->out_off;
		ssize_t w;

		if (n > CONN_WRITE_CHUNK)
			n = CONN_WRITE_CHUNK;
		if (c->ssl != NULL) {
			int r;
			ERR_clear_error();
			r = SSL_write(c->ssl, c->out.data + c->out_off, (int)n);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					return 0;
				return -1;
			}
			w = r;
		} else {
			w = send(c->fd, c->out.data + c->out_off, n,
				 MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return 0;
				return -1;
			}
		}
		c->out_off += (size_t)w;
	}
	buf_free(&c->out);
	c->out_off = 0;
	return 1;
}

/* Move fresh plaintext output through the compressor, if any. */
static int
conn_compress_pending(struct conn *c)
{
	struct buf z;

	if (c->z == NULL || c->z->out_mark == c->out.len)
		return 0;
	if (!c->z->out_live && conn_deflate_init(&c->z->out) < 0)
		return -1;
	c->z->out_live = true;
	buf_init(&z, CONN_OUTPUT_MAX_BYTES);
	if (conn_deflate_out(c, c->out.data + c->z->out_mark,
			     c->out.len - c->z->out_mark, &z) < 0) {
		buf_free(&z);
		return -1;
	}
	c->out.len = c->z->out_mark;
	if (buf_append(&c->out, z.data, z.len) < 0) {
		buf_free(&z);
		return -1;
	}
	buf_free(&z);
	c->z->out_mark = c->out.len;
	return 0;
}

static void
conn_flush(struct conn *c)
{
	int r;

	if (c->state == CONN_DEAD || c->state == CONN_HANDSHAKE)
		return;
	if (conn_compress_pending(c) < 0) {
		conn_abort(c, CONN_CLOSE_ERROR);
		return;
	}
	r = conn_send(c);
	if (c->z != NULL)
		c->z->out_mark = c->out.len;
	if (r == 1 && c->z != NULL && c->z->lean && c->z->out_live) {
		/* everything sent ends in a sync flush, on a byte boundary: a
		   fresh raw deflate stream may follow (no back-references) */
		deflateEnd(&c->z->out);
		c->z->out_live = false;
	}
	if (r < 0) {
		conn_abort(c, CONN_CLOSE_ERROR);
		return;
	}
	if (r == 1) {
		if (c->state == CONN_CLOSING) {
			conn_abort(c, c->close_eof ? CONN_CLOSE_EOF :
						     CONN_CLOSE_NORMAL);
			return;
		}
		if (c->state == CONN_STARTTLS_FLUSH) {
			struct tls_ctx *tls = c->pending_tls;
			c->pending_tls = NULL;
			if (conn_tls_begin(c, tls) < 0) {
				conn_abort(c, CONN_CLOSE_ERROR);
				return;
			}
			conn_handshake(c);
			return;
		}
	}
	if (c->want_drained && conn_output_pending(c) < CONN_OUTPUT_LOW_BYTES)
		ev_defer(c->loop, conn_drained_call, c);
	conn_update_interest(c);
}

static void
conn_flush_call(struct ev_loop *loop, void *ctx)
{
	struct conn *c = ctx;

	(void)loop;
	if (!c->flush_scheduled)
		return;
	c->flush_scheduled = false;
	conn_flush(c);
}

/* Coalesce the writes of one loop iteration into one send. */
static void
conn_schedule_flush(struct conn *c)
{
	if (c->flush_scheduled || c->state == CONN_DEAD)
		return;
	c->flush_scheduled = true;
	ev_defer(c->loop, conn_flush_call, c);
}

/* ---- socket events ---- */

static void
conn_update_interest(struct conn *c)
{
	unsigned mask = 0;

	if (c->state == CONN_DEAD)
		return;
	if (c->state == CONN_HANDSHAKE) {
		mask = c->ev_mask; /* set by the handshake step */
	} else {
		bool room = c->in.len - c->in_off < CONN_INPUT_MAX_BYTES;
		if ((c->state == CONN_OPEN && room && !c->eof) ||
		    c->ssl_read_wants_write)
			mask |= EV_READ;
		if (c->state == CONN_STARTTLS_FLUSH)
			mask &= ~EV_READ;
		/* A flush due later in this loop pass sends what it can
		   and asks for EV_WRITE itself if the socket is full;
		   asking now would cost two epoll_ctl per reply. */
		if (c->out_off < c->out.len &&
		    (!c->flush_scheduled || (c->ev_mask & EV_WRITE)))
			mask |= EV_WRITE;
	}
	if (mask != c->ev_mask && ev_fd_mod(c->loop, c->fd, mask) == 0)
		c->ev_mask = mask;
}

static void
conn_handshake(struct conn *c)
{
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->state = CONN_OPEN;
		c->ev_mask = 0;
		log_debug("conn", c->id, "tls-ok version=%s cipher=%s",
			  SSL_get_version(c->ssl),
			  SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)));
		conn_update_interest(c);
		conn_schedule_flush(c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		unsigned mask = e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
		if (ev_fd_mod(c->loop, c->fd, mask) == 0)
			c->ev_mask = mask;
		return;
	}
	log_info("conn", c->id, "tls-handshake-failed peer=%s error=%s",
		 c->peer, ERR_reason_error_string(ERR_peek_last_error()) ?
				  ERR_reason_error_string(ERR_peek_last_error()) :
				  "eof");
	conn_abort(c, CONN_CLOSE_ERROR);
}

/* Inflate compressed bytes in z->raw into the input buffer. */
static int
conn_inflate_in(struct conn *c)
{
	c->z->in.next_in = c->z->raw.data;
	c->z->in.avail_in = (uInt)c->z->raw.len;
	while (c->z->in.avail_in > 0) {
		uint8_t *o = buf_reserve(&c->in, 16384);
		int r;
		if (o == NULL)
			break; /* input full: keep the rest compressed */
		c->z->in.next_out = o;
		c->z->in.avail_out = 16384;
		r = inflate(&c->z->in, Z_SYNC_FLUSH);
		if (r != Z_OK && r != Z_BUF_ERROR)
			return -1;
		buf_commit(&c->in, 16384 - c->z->in.avail_out);
		if (r == Z_BUF_ERROR && c->z->in.avail_out > 0)
			break;
	}
	buf_consume(&c->z->raw, c->z->raw.len - c->z->in.avail_in);
	return 0;
}

/* Read what the socket has. 1 got bytes, 0 nothing now, -1 error, and
   c->eof set when the peer closed. */
static int
conn_recv(struct conn *c)
{
	struct buf *dst = c->z != NULL ? &c->z->raw : &c->in;
	int got = 0;

	/* Views into the input die here, as documented: compact, or free
	   the buffer once it was used up. */
	if (c->in_off == c->in.len && c->in.cap > 0) {
		buf_free(&c->in);
		c->in_off = 0;
	} else if (c->in_off > 0) {
		buf_consume(&c->in, c->in_off);
		c->in_off = 0;
	}
	c->ssl_read_wants_write = false;
	while (dst->len < CONN_INPUT_MAX_BYTES) {
		size_t room = CONN_INPUT_MAX_BYTES - dst->len;
		uint8_t p[CONN_READ_CHUNK];
		ssize_t n;

		if (c->ssl != NULL) {
			int r;
			ERR_clear_error();
			r = SSL_read(c->ssl, p, (int)(room < CONN_READ_CHUNK ?
							      room : CONN_READ_CHUNK));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					break;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->ssl_read_wants_write = true;
					break;
				}
				if (e == SSL_ERROR_ZERO_RETURN ||
				    (e == SSL_ERROR_SYSCALL && errno == 0)) {
					c->eof = true;
					break;
				}
				return -1;
			}
			n = r;
		} else {
			n = recv(c->fd, p, room < CONN_READ_CHUNK ?
						   room : CONN_READ_CHUNK, 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return -1;
			}
			if (n == 0) {
				c->eof = true;
				break;
			}
		}
		/* room was checked: only as many bytes as arrived */
		if (buf_append(dst, p, (size_t)n) < 0)
			return -1;
		got = 1;
		if (c->ssl == NULL && (size_t)n < CONN_READ_CHUNK)
			break;
	}
	if (c->z != NULL && c->z->raw.len > 0 && conn_inflate_in(c) < 0)
		return -1;
	return got;
}

static void
conn_io(struct ev_loop *loop, int fd, unsigned events, void *ctx)
{
	struct conn *c = ctx;
	int r;

	(void)loop;
	(void)fd;
	if (c->state == CONN_DEAD)
		return;
	if (c->state == CONN_HANDSHAKE) {
		conn_handshake(c);
		if (c->state != CONN_OPEN)
			return;
		c->last_input_ms = ev_now_ms(c->loop);
	}
	if ((events & EV_WRITE) || c->ssl_read_wants_write)
		conn_flush(c);
	if (c->state == CONN_DEAD)
		return;
	if ((events & EV_READ) && c->state == CONN_OPEN) {
		r = conn_recv(c);
		if (r < 0) {
			conn_abort(c, CONN_CLOSE_ERROR);
			return;
		}
		if (r > 0)
			c->last_input_ms = ev_now_ms(c->loop);
		if (r > 0 || c->eof)
			conn_schedule_input(c);
	} else if ((events & EV_READ) && c->state == CONN_CLOSING &&
		   !c->close_eof) {
		/* Drain and ignore; notice a peer that went away. */
		char sink[4096];
		if (c->ssl == NULL && recv(c->fd, sink, sizeof(sink), 0) == 0) {
			conn_abort(c, CONN_CLOSE_EOF);
			return;
		}
	}
	conn_update_interest(c);
}

/* ---- TLS ---- */

int
conn_starttls(struct conn *c, struct tls_ctx *tls)
{
	if (tls == NULL || c->ssl != NULL || c->state != CONN_OPEN)
		return -1;
	/* Whatever the client pipelined after the command was sent in
	   plaintext and must never be executed inside TLS. */
	conn_input_consume(c, conn_input_len(c));
	c->discarding = false;
	c->pending_tls = tls;
	c->state = CONN_STARTTLS_FLUSH;
	conn_schedule_flush(c);
	conn_update_interest(c);
	return 0;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}

const char *
conn_tls_version(const struct conn *c)
{
	return c->ssl != NULL ? SSL_get_version(c->ssl) : NULL;
}

const char *
conn_tls_cipher(const struct conn *c)
{
	return c->ssl != NULL ?
		       SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)) :
		       NULL;
}

int
conn_tls_cipher_bits(const struct conn *c)
{
	return c->ssl != NULL ?
		       SSL_CIPHER_get_bits(SSL_get_current_cipher(c->ssl), NULL) :
		       0;
}

/* ---- compression (RFC 4978) ---- */

void
conn_compress_lean(struct conn *c, bool lean)
{
	if (c->z == NULL)
		return;
	c->z->lean = lean;
	if (lean && c->z->out_live && conn_output_pending(c) == 0) {
		deflateEnd(&c->z->out);
		c->z->out_live = false;
	}
}

int
conn_compress_start(struct conn *c)
{
	if (c->z != NULL || c->state != CONN_OPEN)
		return -1;
	c->z = xcalloc(1, sizeof(*c->z));
	buf_init(&c->z->raw, CONN_INPUT_MAX_BYTES);
	if (inflateInit2(&c->z->in, -15) != Z_OK ||
	    conn_deflate_init(&c->z->out) < 0)
		return -1;
	c->z->out_live = true;
	/* Output queued so far (the tagged OK) goes out uncompressed; input
	   buffered after the command is already compressed. */
	c->z->out_mark = c->out.len;
	if (conn_input_len(c) > 0) {
		buf_append(&c->z->raw, conn_in_ptr(c), conn_input_len(c));
		conn_input_consume(c, conn_input_len(c));
		if (conn_inflate_in(c) < 0)
			return -1;
	}
	return 0;
}
