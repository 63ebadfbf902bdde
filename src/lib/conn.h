#ifndef TERN_CONN_H
#define TERN_CONN_H
/* A client connection: plain or TLS (non-blocking OpenSSL on the socket),
   a bounded input buffer with a line reader, and a bounded output queue.
   The protocol session sees a few events (OpenSMTPD's ioev):

     on_input    new bytes are buffered; read lines or raw bytes, and
                 consume what was used. Called again after new bytes
                 arrive, or after conn_resume_input() when input remains.
     on_drained  the output queue fell below CONN_OUTPUT_LOW_BYTES (a long
                 FETCH/RETR producer continues) -- only when asked for with
                 conn_want_drained().
     on_close    the connection is gone (peer closed, error, timeout, or
                 after conn_close() flushed). The session frees itself
                 here; the conn is freed right after the callback returns.

   Output is always queued; it is sent when the socket is writable. A
   client that does not read its responses cannot grow server memory
   without bound: past CONN_OUTPUT_MAX_BYTES queued the connection is
   dropped. Producers of large responses must check conn_output_pending()
   and continue from on_drained. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/strview.h"

struct ev_loop;
struct tls_ctx;
struct conn;

#define CONN_INPUT_MAX_BYTES (256 * 1024)
#define CONN_OUTPUT_LOW_BYTES (64 * 1024)
#define CONN_OUTPUT_MAX_BYTES (16 * 1024 * 1024)

enum conn_close_reason {
	CONN_CLOSE_NORMAL,  /* conn_close() finished flushing */
	CONN_CLOSE_EOF,	    /* peer closed */
	CONN_CLOSE_ERROR,   /* socket or TLS error */
	CONN_CLOSE_TIMEOUT, /* idle timeout expired */
	CONN_CLOSE_OVERFLOW /* output queue limit exceeded */
};

struct conn_handler {
	void (*on_input)(struct conn *c, void *ctx);
	void (*on_drained)(struct conn *c, void *ctx);
	void (*on_close)(struct conn *c, void *ctx,
			 enum conn_close_reason reason);
	/* Optional: called when the idle timeout expires, instead of closing
	   at once, so the protocol can say goodbye ("421", "* BYE"). It
	   should queue its reply and call conn_close(). */
	void (*on_timeout)(struct conn *c, void *ctx);
};

/* Take ownership of an accepted non-blocking socket. tls: NULL for plain;
   otherwise a server-side TLS handshake starts at once (implicit TLS) and
   on_input is called only after it completes. */
struct conn *conn_new(struct ev_loop *loop, int fd, struct tls_ctx *tls);
void conn_set_handler(struct conn *c, const struct conn_handler *h,
		      void *ctx);
/* An id for log lines (8 hex digits). */
const char *conn_id(const struct conn *c);

/* Peer address as text ("127.0.0.1", "::1"), its port, and whether it is
   a loopback address (127.0.0.0/8, ::1, ::ffff:127.x). */
const char *conn_peer_addr(const struct conn *c);
uint16_t conn_peer_port(const struct conn *c);
bool conn_is_loopback(const struct conn *c);
uint16_t conn_local_port(const struct conn *c);

/* ---- input ---- */
enum conn_line_res {
	CONN_LINE_OK,	    /* *line_r is one line without its CRLF/LF */
	CONN_LINE_MORE,	    /* no complete line buffered yet */
	CONN_LINE_TOO_LONG, /* a line exceeded max: it is being discarded
			       up to its LF; report once, answer the
			       protocol's error, and keep reading */
};
/* Read one line of at most max bytes (excluding the line end). The view
   points into the input buffer and stays valid until the next call that
   reads or consumes input. *bare_lf_r (may be NULL) says the line ended in
   LF without CR. The line is consumed. A NUL byte is returned as part of
   the line: the protocol rejects it. */
enum conn_line_res conn_read_line(struct conn *c, size_t max,
				  struct strview *line_r, bool *bare_lf_r);
/* Raw access for DATA, BDAT chunks and literals. */
size_t conn_input_peek(struct conn *c, const uint8_t **data_r);
void conn_input_consume(struct conn *c, size_t n);
size_t conn_input_len(const struct conn *c);
/* Stop calling on_input (a command is waiting for a commit or a delay);
   input keeps being buffered up to CONN_INPUT_MAX_BYTES, then the socket
   is no longer read. Resuming calls on_input soon if input is buffered. */
void conn_pause_input(struct conn *c);
void conn_resume_input(struct conn *c);
bool conn_input_paused(const struct conn *c);

/* ---- commands per second ---- */
/* A token bucket: per_sec commands a second on average, bursts of up to
   burst (at least 1) at full speed. per_sec 0 (the default): no limit.
   The bucket starts full. */
void conn_set_rate(struct conn *c, uint32_t per_sec, uint32_t burst);
/* Call before reading the next command. true: go ahead, read it, and
   call conn_rate_take() once it is complete. false: no token left; the
   caller returns from on_input without reading, and on_input is called
   again once a token has refilled (input keeps being buffered meanwhile,
   up to CONN_INPUT_MAX_BYTES, as while paused; the peer's EOF is acted
   on only after the buffered commands ran). */
bool conn_rate_ready(struct conn *c);
/* Count one command read. */
void conn_rate_take(struct conn *c);
bool conn_rate_waiting(const struct conn *c);

/* ---- output ---- */
void conn_write(struct conn *c, const void *data, size_t len);
void conn_write_str(struct conn *c, const char *s);
void conn_printf(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
size_t conn_output_pending(const struct conn *c);
/* Ask for one on_drained call when pending output drops below
   CONN_OUTPUT_LOW_BYTES (immediately, from the loop, if it already is). */
void conn_want_drained(struct conn *c);

/* ---- TLS ---- */
/* Start a server-side TLS handshake after the protocol queued its "go
   ahead" reply (which is sent in plaintext first). Any plaintext input
   already buffered is discarded (RFC 3207 section 4.2; the STARTTLS
   command-injection family). 0, or -1 when TLS is not available. */
int conn_starttls(struct conn *c, struct tls_ctx *tls);
bool conn_is_tls(const struct conn *c);
/* "TLSv1.3", "TLS_AES_256_GCM_SHA384", or NULL when plain. */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);
int conn_tls_cipher_bits(const struct conn *c);
/* For SCRAM channel binding later: not supported yet. */

/* ---- compression (IMAP COMPRESS=DEFLATE, RFC 4978) ---- */
/* From now on, input is inflated and output deflated (raw deflate).
   Pending output is flushed uncompressed first. 0 or -1. */
int conn_compress_start(struct conn *c);
/* lean: the compressor's state (about 256 KB) is freed each time all
   output is sent and made again for the next output, losing only the
   shared history. For connections that mostly wait (IMAP IDLE). */
void conn_compress_lean(struct conn *c, bool lean);

/* ---- lifetime ---- */
/* Idle timeout: the connection is closed (or on_timeout called) when no
   input arrives for ms milliseconds. 0 disables. */
void conn_set_timeout(struct conn *c, uint64_t ms);
/* Slowloris guard: while an input unit (a command) is incomplete, the
   idle timeout counts from when the unit began, not from its last byte,
   so a client trickling a byte at a time is cut at the timeout as well.
   conn_read_line() keeps this itself (a partial line is a unit); a
   protocol with its own parser calls conn_input_partial(c, true) while a
   command waits for more bytes and false once it is complete or streams
   a literal (literal bytes only obey the idle rule). */
void conn_input_partial(struct conn *c, bool partial);
/* Flush queued output, then close (on_close with CONN_CLOSE_NORMAL).
   Input is no longer processed. */
void conn_close(struct conn *c);
/* Close at once without flushing (on_close is still called). */
void conn_abort(struct conn *c, enum conn_close_reason reason);
bool conn_closing(const struct conn *c);

/* Number of live connections in this process (for draining and status). */
size_t conn_count(void);
/* TLS handshakes begun in this process so far (implicit TLS and
   STARTTLS); the worker gives their freed memory back after a burst. */
uint64_t conn_tls_started(void);
/* Server-wide, over every worker (shared_limits.c): live connections from
   the same peer address as c (c included; never less than the true
   count, possibly more after a hash collision), and in total. */
size_t conn_peer_count(const struct conn *c);
size_t conn_server_count(void);

#endif
