/* Tests for lib/ev and lib/conn over socketpairs: timers and deferred
   calls, the bounded line reader (CRLF, bare LF, over-long lines, NUL),
   pipelined input, output, pause/resume, close and peer EOF. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "lib/conn.h"
#include "lib/ev.h"

/* ---- ev ---- */

static char ev_trace[64];

static void
ev_mark(struct ev_loop *loop, void *ctx)
{
	size_t n = strlen(ev_trace);
	(void)loop;
	if (n + 1 < sizeof(ev_trace)) {
		ev_trace[n] = *(const char *)ctx;
		ev_trace[n + 1] = '\0';
	}
}

static void
test_ev_timers(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct ev_timer *t;

	ev_trace[0] = '\0';
	ev_timer_add(loop, 30, ev_mark, "c");
	ev_timer_add(loop, 10, ev_mark, "a");
	t = ev_timer_add(loop, 20, ev_mark, "x");
	ev_timer_add(loop, 20, ev_mark, "b");
	ev_timer_del(loop, &t);
	test_assert(t == NULL);
	ev_defer(loop, ev_mark, "0");
	for (int i = 0; i < 50 && strlen(ev_trace) < 4; i++)
		ev_run_once(loop, 100);
	test_assert_strcmp(ev_trace, "0abc");
	ev_loop_free(&loop);
}

/* ---- conn ---- */

struct sess {
	struct conn *c;
	char lines[20][64];
	int nlines, too_long, bare_lf, closed, reason;
	bool pause_after_first, rate;
};

static void
sess_input(struct conn *c, void *ctx)
{
	struct sess *s = ctx;
	struct strview line;
	bool bare;

	for (;;) {
		enum conn_line_res r;
		if (s->rate && !conn_rate_ready(c))
			return;
		r = conn_read_line(c, 16, &line, &bare);
		if (r == CONN_LINE_MORE)
			return;
		if (s->rate)
			conn_rate_take(c);
		if (r == CONN_LINE_TOO_LONG) {
			s->too_long++;
			conn_write_str(c, "TOO LONG\r\n");
			continue;
		}
		if (bare)
			s->bare_lf++;
		if (s->nlines < 20) {
			memcpy(s->lines[s->nlines], line.p, line.len);
			s->lines[s->nlines][line.len] = '\0';
			s->nlines++;
		}
		conn_printf(c, "ECHO %.*s\r\n", (int)line.len, line.p);
		if (s->pause_after_first) {
			conn_pause_input(c);
			return;
		}
	}
}

static void
sess_close(struct conn *c, void *ctx, enum conn_close_reason reason)
{
	struct sess *s = ctx;
	(void)c;
	s->closed++;
	s->reason = (int)reason;
}

static const struct conn_handler sess_handler = {
	.on_input = sess_input,
	.on_close = sess_close,
};

static struct conn *
sess_open(struct ev_loop *loop, struct sess *s, int *peer_r)
{
	int sv[2];

	memset(s, 0, sizeof(*s));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	s->c = conn_new(loop, sv[0], NULL);
	conn_set_handler(s->c, &sess_handler, s);
	*peer_r = sv[1];
	return s->c;
}

static void
spin(struct ev_loop *loop, int rounds)
{
	for (int i = 0; i < rounds; i++)
		ev_run_once(loop, 10);
}

static size_t
read_all(int fd, char *out, size_t max)
{
	size_t n = 0;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t r = read(fd, out + n, max - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	return n;
}

static void
test_conn_lines(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct sess s;
	int peer;
	char out[1024];
	static const char in[] = "one\r\ntwo\nthree-is-far-too-long-for-16\r\n"
				 "fo\0r\r\nfive\r\n";

	sess_open(loop, &s, &peer);
	test_assert(write(peer, in, sizeof(in) - 1) == (ssize_t)sizeof(in) - 1);
	spin(loop, 5);
	test_assert(s.nlines == 4);
	test_assert_strcmp(s.lines[0], "one");
	test_assert_strcmp(s.lines[1], "two");
	test_assert(s.bare_lf == 1);
	test_assert(s.too_long == 1);
	test_assert(memcmp(s.lines[2], "fo\0r", 4) == 0);
	test_assert_strcmp(s.lines[3], "five");
	read_all(peer, out, sizeof(out));
	/* %.*s stops at the NUL: the session must check for NUL itself */
	test_assert_strcmp(out, "ECHO one\r\nECHO two\r\nTOO LONG\r\nECHO fo\r\n"
				"ECHO five\r\n");
	close(peer);
	spin(loop, 5);
	test_assert(s.closed == 1);
	test_assert(s.reason == CONN_CLOSE_EOF);
	ev_loop_free(&loop);
}

static void
test_conn_long_line_across_reads(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct sess s;
	int peer;
	char big[4000];

	sess_open(loop, &s, &peer);
	memset(big, 'x', sizeof(big));
	test_assert(write(peer, big, sizeof(big)) == sizeof(big));
	spin(loop, 3);
	test_assert(write(peer, big, sizeof(big)) == sizeof(big));
	test_assert(write(peer, "\r\nok\r\n", 6) == 6);
	spin(loop, 5);
	test_assert(s.too_long == 1);
	test_assert(s.nlines == 1);
	test_assert_strcmp(s.lines[0], "ok");
	conn_close(s.c);
	spin(loop, 3);
	test_assert(s.closed == 1 && s.reason == CONN_CLOSE_NORMAL);
	close(peer);
	ev_loop_free(&loop);
}

static void
test_conn_pause_resume(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct sess s;
	int peer;

	sess_open(loop, &s, &peer);
	s.pause_after_first = true;
	test_assert(write(peer, "a\r\nb\r\nc\r\n", 9) == 9);
	spin(loop, 5);
	test_assert(s.nlines == 1);
	test_assert(conn_input_paused(s.c));
	s.pause_after_first = false;
	conn_resume_input(s.c);
	spin(loop, 5);
	test_assert(s.nlines == 3);
	conn_abort(s.c, CONN_CLOSE_ERROR);
	spin(loop, 2);
	test_assert(s.closed == 1 && s.reason == CONN_CLOSE_ERROR);
	close(peer);
	ev_loop_free(&loop);
}

static void
test_conn_output_limit(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct sess s;
	int peer;
	static char chunk[1 << 20];

	sess_open(loop, &s, &peer);
	/* The peer never reads: past the limit the connection is dropped
	   instead of growing. */
	for (int i = 0; i < 40 && s.closed == 0; i++) {
		conn_write(s.c, chunk, sizeof(chunk));
		spin(loop, 1);
	}
	spin(loop, 2);
	test_assert(s.closed == 1);
	test_assert(s.reason == CONN_CLOSE_OVERFLOW);
	close(peer);
	ev_loop_free(&loop);
}

static void
test_conn_peer_count(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct sess a, b;
	int pa, pb;

	sess_open(loop, &a, &pa);
	sess_open(loop, &b, &pb);
	test_assert(conn_peer_count(a.c) == 2);
	test_assert(conn_count() == 2);
	conn_abort(a.c, CONN_CLOSE_NORMAL);
	spin(loop, 2);
	test_assert(conn_peer_count(b.c) == 1);
	conn_abort(b.c, CONN_CLOSE_NORMAL);
	spin(loop, 2);
	test_assert(conn_count() == 0);
	close(pa);
	close(pb);
	ev_loop_free(&loop);
}

/* Slowloris: a byte every 60 ms keeps an idle timeout of 200 ms from
   firing, but a line that is still incomplete after 200 ms times out. A
   client sending whole lines at the same pace is never cut. */
static void
test_conn_partial_line_timeout(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct sess s, ok;
	int peer, peer_ok, i;

	sess_open(loop, &s, &peer);
	sess_open(loop, &ok, &peer_ok);
	conn_set_timeout(s.c, 200);
	conn_set_timeout(ok.c, 200);
	for (i = 0; i < 12 && s.closed == 0; i++) {
		test_assert(write(peer, "x", 1) == 1);
		test_assert(write(peer_ok, "y\n", 2) == 2);
		for (int j = 0; j < 6; j++)
			ev_run_once(loop, 10);
	}
	test_assert(s.closed == 1 && s.reason == CONN_CLOSE_TIMEOUT);
	test_assert(i <= 6);
	test_assert(ok.closed == 0);
	test_assert(ok.nlines >= 3);
	conn_abort(ok.c, CONN_CLOSE_NORMAL);
	spin(loop, 2);
	close(peer);
	close(peer_ok);
	ev_loop_free(&loop);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Commands per second: 20 a second with a burst of 4. Sixteen lines sent
   at once: the first four go at once, the other twelve need at least
   12/20 s; all are answered in order, and the peer's EOF after them is
   acted on only after the last one ran. A connection without a rate is
   not held at all. */
static void
test_conn_rate(void)
{
	struct ev_loop *loop = ev_loop_new();
	struct sess s, free_s;
	int peer, peer_free, i;
	char in[16 * 4 + 1], out[2048], want[2048];
	uint64_t t0, t_all;
	size_t wl = 0;

	sess_open(loop, &s, &peer);
	sess_open(loop, &free_s, &peer_free);
	s.rate = true;
	free_s.rate = true; /* asks, but no rate was set: always ready */
	conn_set_rate(s.c, 20, 4);
	for (i = 0; i < 16; i++) {
		snprintf(in + i * 4, 5, "%02d\r\n", i);
		wl += (size_t)snprintf(want + wl, sizeof(want) - wl,
				       "ECHO %02d\r\n", i);
	}
	t0 = mono_ms();
	test_assert(write(peer, in, 64) == 64);
	test_assert(write(peer_free, in, 64) == 64);
	shutdown(peer, SHUT_WR);
	spin(loop, 3);
	test_assert(free_s.nlines == 16);
	test_assert(s.nlines >= 4 && s.nlines < 16);
	test_assert(conn_rate_waiting(s.c));
	for (i = 0; i < 300 && s.nlines < 16; i++)
		ev_run_once(loop, 10);
	t_all = mono_ms();
	test_assert(s.nlines == 16);
	test_assert(t_all - t0 >= 12 * 1000 / 20 - 20);
	for (i = 0; i < 16; i++) {
		char w[4];
		snprintf(w, sizeof(w), "%02d", i);
		test_assert_idx(strcmp(s.lines[i], w) == 0, i);
	}
	spin(loop, 5);
	read_all(peer, out, sizeof(out));
	test_assert_strcmp(out, want);
	test_assert(s.closed == 1 && s.reason == CONN_CLOSE_EOF);
	conn_abort(free_s.c, CONN_CLOSE_NORMAL);
	spin(loop, 2);
	close(peer);
	close(peer_free);
	ev_loop_free(&loop);
}

static const struct test_case tests[] = {
	{ "conn_rate", test_conn_rate },
	{ "ev_timers", test_ev_timers },
	{ "conn_lines", test_conn_lines },
	{ "conn_long_line_across_reads", test_conn_long_line_across_reads },
	{ "conn_pause_resume", test_conn_pause_resume },
	{ "conn_output_limit", test_conn_output_limit },
	{ "conn_peer_count", test_conn_peer_count },
	{ "conn_partial_line_timeout", test_conn_partial_line_timeout },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
