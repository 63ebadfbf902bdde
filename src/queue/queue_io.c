/* An outbound SMTP connection: non-blocking connect, a bounded input
   buffer with a line reader, a bounded output queue, client-side TLS
   after STARTTLS (RFC 3207 4.2: the plaintext input buffered before the
   handshake is thrown away) and an idle timeout.
   XXX: lib/conn is server-side only (accepted sockets, SSL accept
   state); this is its small client twin. If lib/conn gains a connect
   and a client STARTTLS, the SMTP client can move onto it.
   The peer's certificate is checked (chain against the CA store, name
   against the host) but a failure does not end the handshake; the SMTP
   client decides: opportunistic TLS to an MX goes on (RFC 7435), a
   smarthost that must verify is given up. DANE/MTA-STS would go here.
   Events are reported only from loop callbacks; the user may free the
   io from inside its callback (a depth counter defers the free). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lib/ev.h"
#include "lib/tls.h"
#include "lib/xalloc.h"
#include "queue/queue_int.h"

#define QUEUE_IO_READ_CHUNK 16384

enum queue_io_state {
	QUEUE_IO_S_CONNECTING,
	QUEUE_IO_S_OPEN,
	QUEUE_IO_S_HANDSHAKE,
	QUEUE_IO_S_DEAD,
};

struct queue_io {
	struct ev_loop *loop;
	int fd;
	enum queue_io_state state;
	SSL *ssl;
	queue_io_fn *fn;
	void *ctx;
	struct buf in, out;
	size_t in_off, out_off;
	unsigned mask;
	bool discarding, want_drained, ssl_wants_write;
	bool loopback;
	int depth;
	bool free_pending;
	uint64_t timeout_ms, last_ms;
	struct ev_timer *timer, *fail_timer;
	int connect_errno;
	const char *error;
	char peer[INET6_ADDRSTRLEN + 8];
};

static void
queue_io_destroy(struct queue_io *io)
{
	ev_timer_del(io->loop, &io->timer);
	ev_timer_del(io->loop, &io->fail_timer);
	if (io->fd >= 0) {
		ev_fd_del(io->loop, io->fd);
		close(io->fd);
	}
	if (io->ssl != NULL)
		SSL_free(io->ssl);
	buf_free(&io->in);
	buf_free(&io->out);
	free(io);
}

void
queue_io_free(struct queue_io **iop)
{
	struct queue_io *io = *iop;

	if (io == NULL)
		return;
	*iop = NULL;
	if (io->depth > 0) {
		io->free_pending = true;
		/* Stop all I/O now; the memory goes when the callback ends. */
		ev_timer_del(io->loop, &io->timer);
		ev_timer_del(io->loop, &io->fail_timer);
		if (io->fd >= 0)
			ev_fd_del(io->loop, io->fd);
		io->state = QUEUE_IO_S_DEAD;
		return;
	}
	queue_io_destroy(io);
}

/* Report an event; false when the io was freed meanwhile. */
static bool
queue_io_fire(struct queue_io *io, enum queue_io_event ev)
{
	io->depth++;
	io->fn(io, ev, io->ctx);
	io->depth--;
	if (io->free_pending && io->depth == 0) {
		queue_io_destroy(io);
		return false;
	}
	return !io->free_pending;
}

static void
queue_io_fail(struct queue_io *io, const char *error)
{
	if (io->state == QUEUE_IO_S_DEAD)
		return;
	io->error = error;
	io->state = QUEUE_IO_S_DEAD;
	ev_timer_del(io->loop, &io->timer);
	ev_fd_del(io->loop, io->fd);
	(void)queue_io_fire(io, QUEUE_IO_ERROR);
}

static void
queue_io_interest(struct queue_io *io, unsigned mask)
{
	if (io->state == QUEUE_IO_S_DEAD || mask == io->mask)
		return;
	if (ev_fd_mod(io->loop, io->fd, mask) == 0)
		io->mask = mask;
}

/* The steady-state interest: read always, write while output waits. */
static void
queue_io_update(struct queue_io *io)
{
	unsigned mask = EV_READ;

	if (io->state != QUEUE_IO_S_OPEN)
		return;
	if (io->out_off < io->out.len || io->ssl_wants_write)
		mask |= EV_WRITE;
	queue_io_interest(io, mask);
}

/* ---- timeout ---- */

static void
queue_io_timer(struct ev_loop *loop, void *ctx)
{
	struct queue_io *io = ctx;
	uint64_t idle = ev_now_ms(loop) - io->last_ms;

	io->timer = NULL;
	if (io->timeout_ms == 0 || io->state == QUEUE_IO_S_DEAD)
		return;
	if (idle < io->timeout_ms) {
		io->timer = ev_timer_add(loop, io->timeout_ms - idle,
					 queue_io_timer, io);
		return;
	}
	io->error = "timeout";
	(void)queue_io_fire(io, QUEUE_IO_TIMEOUT);
}

void
queue_io_set_timeout(struct queue_io *io, uint64_t ms)
{
	io->timeout_ms = ms;
	io->last_ms = ev_now_ms(io->loop);
	ev_timer_del(io->loop, &io->timer);
	if (ms > 0 && io->state != QUEUE_IO_S_DEAD)
		io->timer = ev_timer_add(io->loop, ms, queue_io_timer, io);
}

static void
queue_io_progress(struct queue_io *io)
{
	io->last_ms = ev_now_ms(io->loop);
}

/* ---- output ---- */

int
queue_io_write(struct queue_io *io, const void *data, size_t len)
{
	if (io->state == QUEUE_IO_S_DEAD)
		return -1;
	if (io->out_off > 0 && io->out_off == io->out.len) {
		buf_reset(&io->out);
		io->out_off = 0;
	}
	if (buf_append(&io->out, data, len) < 0)
		return -1;
	queue_io_update(io);
	return 0;
}

int
queue_io_write_buf(struct queue_io *io, const struct buf *b)
{
	return queue_io_write(io, b->data, b->len);
}

size_t
queue_io_pending(const struct queue_io *io)
{
	return io->out.len - io->out_off;
}

void
queue_io_want_drained(struct queue_io *io)
{
	io->want_drained = true;
}

/* 1 all sent, 0 would block, -1 error. */
static int
queue_io_send(struct queue_io *io)
{
	while (io->out_off < io->out.len) {
		size_t n = io->out.len - io->out_off;
		ssize_t w;

		if (n > QUEUE_BODY_CHUNK_BYTES)
			n = QUEUE_BODY_CHUNK_BYTES;
		if (io->ssl != NULL) {
			int r, e;
			ERR_clear_error();
			r = SSL_write(io->ssl, io->out.data + io->out_off,
				      (int)n);
			if (r <= 0) {
				e = SSL_get_error(io->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					return 0;
				return -1;
			}
			w = r;
		} else {
			w = send(io->fd, io->out.data + io->out_off, n,
				 MSG_NOSIGNAL);
			if (w < 0)
				return errno == EAGAIN || errno == EINTR ? 0 :
									   -1;
		}
		io->out_off += (size_t)w;
		queue_io_progress(io);
	}
	buf_reset(&io->out);
	io->out_off = 0;
	return 1;
}

/* ---- input ---- */

/* 1 got bytes, 0 nothing, -1 error or EOF (io->error set). */
static int
queue_io_recv(struct queue_io *io)
{
	int got = 0;

	if (io->in_off > 0) {
		buf_consume(&io->in, io->in_off);
		io->in_off = 0;
	}
	io->ssl_wants_write = false;
	while (io->in.len < QUEUE_IO_INPUT_MAX_BYTES) {
		uint8_t *p = buf_reserve(&io->in, QUEUE_IO_READ_CHUNK);
		ssize_t n;

		if (p == NULL)
			break;
		if (io->ssl != NULL) {
			int r, e;
			ERR_clear_error();
			r = SSL_read(io->ssl, p, QUEUE_IO_READ_CHUNK);
			if (r <= 0) {
				e = SSL_get_error(io->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					break;
				if (e == SSL_ERROR_WANT_WRITE) {
					io->ssl_wants_write = true;
					break;
				}
				io->error = e == SSL_ERROR_ZERO_RETURN ||
							    e == SSL_ERROR_SYSCALL ?
						    "connection closed" :
						    "TLS error";
				return got ? 1 : -1;
			}
			n = r;
		} else {
			n = recv(io->fd, p, QUEUE_IO_READ_CHUNK, 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				io->error = n == 0 ? "connection closed" :
						     "connection reset";
				return got ? 1 : -1;
			}
		}
		buf_commit(&io->in, (size_t)n);
		queue_io_progress(io);
		got = 1;
	}
	return got;
}

enum queue_io_line
queue_io_read_line(struct queue_io *io, size_t max, struct strview *line_r)
{
	const uint8_t *p = io->in.data + io->in_off, *lf;
	size_t avail = io->in.len - io->in_off, len;

	lf = avail == 0 ? NULL : memchr(p, '\n', avail);
	if (lf == NULL) {
		if (avail > max + 1) {
			io->in_off += avail;
			io->discarding = true;
		}
		return QUEUE_IO_LINE_MORE;
	}
	len = (size_t)(lf - p);
	io->in_off += len + 1;
	if (io->discarding) {
		io->discarding = false;
		return QUEUE_IO_LINE_TOO_LONG;
	}
	if (len > 0 && p[len - 1] == '\r')
		len--;
	if (len > max)
		return QUEUE_IO_LINE_TOO_LONG;
	*line_r = sv_make(p, len);
	return QUEUE_IO_LINE_OK;
}

/* ---- TLS ---- */

static void
queue_io_handshake(struct queue_io *io)
{
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(io->ssl);
	if (r == 1) {
		io->state = QUEUE_IO_S_OPEN;
		queue_io_progress(io);
		queue_io_update(io);
		(void)queue_io_fire(io, QUEUE_IO_TLS_OK);
		return;
	}
	e = SSL_get_error(io->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		queue_io_interest(io, e == SSL_ERROR_WANT_READ ? EV_READ :
								 EV_WRITE);
		return;
	}
	queue_io_fail(io, "TLS handshake failed");
}

int
queue_io_starttls(struct queue_io *io, const char *host)
{
	void *ctx = tls_client_ssl_ctx();
	unsigned char addr[16];

	if (ctx == NULL || io->ssl != NULL || io->state != QUEUE_IO_S_OPEN)
		return -1;
	io->ssl = SSL_new(ctx);
	if (io->ssl == NULL || SSL_set_fd(io->ssl, io->fd) != 1)
		return -1;
	SSL_set_connect_state(io->ssl);
	/* RFC 6066 3: SNI carries names, never addresses. */
	if (host != NULL && host[0] != '\0' &&
	    inet_pton(AF_INET, host, addr) != 1 &&
	    inet_pton(AF_INET6, host, addr) != 1)
		SSL_set_tlsext_host_name(io->ssl, host);
	if (host != NULL && host[0] != '\0' &&
	    tls_client_expect_host(io->ssl, host) < 0)
		return -1;
	/* RFC 3207 4.2: nothing read before TLS may count afterwards. */
	io->in_off = io->in.len;
	io->discarding = false;
	io->state = QUEUE_IO_S_HANDSHAKE;
	queue_io_interest(io, EV_WRITE);
	return 0;
}

bool
queue_io_is_tls(const struct queue_io *io)
{
	return io->ssl != NULL;
}

bool
queue_io_tls_verified(const struct queue_io *io, char *reason, size_t size)
{
	if (io->ssl == NULL) {
		snprintf(reason, size, "no-tls");
		return false;
	}
	return tls_client_verified(io->ssl, reason, size);
}

const char *
queue_io_tls_version(const struct queue_io *io)
{
	return io->ssl != NULL ? SSL_get_version(io->ssl) : NULL;
}

const char *
queue_io_error(const struct queue_io *io)
{
	return io->error != NULL ? io->error : "no error";
}

const char *
queue_io_peer(const struct queue_io *io)
{
	return io->peer;
}

bool
queue_io_peer_is_loopback(const struct queue_io *io)
{
	return io->loopback;
}

/* ---- events ---- */

static void
queue_io_connected(struct queue_io *io)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (io->connect_errno != 0)
		err = io->connect_errno;
	else if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		queue_io_fail(io, err == ECONNREFUSED ? "connection refused" :
				  err == ETIMEDOUT    ? "connection timed out" :
				  err == EHOSTUNREACH || err == ENETUNREACH ?
						      "host unreachable" :
						      "connect failed");
		return;
	}
	io->state = QUEUE_IO_S_OPEN;
	queue_io_progress(io);
	queue_io_update(io);
	(void)queue_io_fire(io, QUEUE_IO_CONNECTED);
}

static void
queue_io_connect_late(struct ev_loop *loop, void *ctx)
{
	struct queue_io *io = ctx;

	(void)loop;
	io->fail_timer = NULL;
	queue_io_connected(io);
}

static bool
queue_io_on_write(struct queue_io *io)
{
	int r = queue_io_send(io);

	if (r < 0) {
		queue_io_fail(io, "write failed");
		return false;
	}
	if (io->want_drained && queue_io_pending(io) < QUEUE_BODY_CHUNK_BYTES) {
		io->want_drained = false;
		if (!queue_io_fire(io, QUEUE_IO_DRAINED))
			return false;
	}
	return io->state == QUEUE_IO_S_OPEN;
}

static void
queue_io_on_fd(struct ev_loop *loop, int fd, unsigned events, void *ctx)
{
	struct queue_io *io = ctx;
	int r;

	(void)loop;
	(void)fd;
	if (io->state == QUEUE_IO_S_CONNECTING) {
		queue_io_connected(io);
		return;
	}
	if (io->state == QUEUE_IO_S_HANDSHAKE) {
		queue_io_handshake(io);
		return;
	}
	if (io->state != QUEUE_IO_S_OPEN)
		return;
	if (((events & EV_WRITE) || io->ssl_wants_write) &&
	    !queue_io_on_write(io))
		return;
	if (events & EV_READ) {
		r = queue_io_recv(io);
		if (r < 0) {
			queue_io_fail(io, io->error);
			return;
		}
		if (r > 0 && !queue_io_fire(io, QUEUE_IO_INPUT))
			return;
		/* A close after the last bytes: report it next round. */
		if (r > 0 && io->error != NULL && io->state == QUEUE_IO_S_OPEN) {
			queue_io_fail(io, io->error);
			return;
		}
	}
	queue_io_update(io);
}

static void
queue_io_peer_text(struct queue_io *io, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN] = "?";
	uint16_t port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
		io->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
		io->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	}
	snprintf(io->peer, sizeof(io->peer), "%s:%u", a, port);
}

struct queue_io *
queue_io_connect(struct ev_loop *loop, const struct sockaddr_storage *addr,
		 queue_io_fn *fn, void *ctx, const char **error_r)
{
	struct queue_io *io;
	socklen_t len = addr->ss_family == AF_INET6 ?
				sizeof(struct sockaddr_in6) :
				sizeof(struct sockaddr_in);
	int fd, one = 1;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		*error_r = strerror(errno);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	io = xcalloc(1, sizeof(*io));
	io->loop = loop;
	io->fd = fd;
	io->fn = fn;
	io->ctx = ctx;
	buf_init(&io->in, QUEUE_IO_INPUT_MAX_BYTES + QUEUE_IO_READ_CHUNK);
	buf_init(&io->out, QUEUE_IO_OUTPUT_MAX_BYTES);
	queue_io_peer_text(io, addr);
	io->state = QUEUE_IO_S_CONNECTING;
	if (connect(fd, (const struct sockaddr *)addr, len) < 0 &&
	    errno != EINPROGRESS)
		io->connect_errno = errno;
	if (ev_fd_add(loop, fd, io->connect_errno != 0 ? 0 : EV_WRITE,
		      queue_io_on_fd, io) < 0) {
		*error_r = strerror(errno);
		queue_io_destroy(io);
		return NULL;
	}
	/* Report a connect that failed at once from the loop, like any. */
	if (io->connect_errno != 0) {
		io->fail_timer = ev_timer_add(loop, 0, queue_io_connect_late,
					      io);
		io->mask = 0;
		return io;
	}
	io->mask = EV_WRITE;
	return io;
}
