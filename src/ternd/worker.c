/* A worker process: one event loop serving every protocol on the
   inherited listening sockets. SIGTERM: stop accepting, let protocols say
   goodbye to idle sessions, wait for the rest (bounded), exit. SIGUSR1
   (the master reloaded): stop accepting and exit once every connection
   has ended on its own. */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"
#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "store/store.h"
#include "ternd/ternd.h"

#define WORKER_ACCEPT_BATCH 64
#define WORKER_DRAIN_MS 8000
#define WORKER_RETIRE_MS (60ULL * 60 * 1000)
/* The loop's own SQLite connection checkpoints the WAL only past this
   many frames: twice the commit thread's threshold (8000, after its
   batches, on the index thread), so the loop does it only when that one
   fell behind, never in the normal course of a burst. */
#define WORKER_LOOP_CHECKPOINT_FRAMES 16000
/* Heap trimming after TLS handshakes (worker_trim_tick): checked every
   WORKER_TRIM_TICK_MS, at least every WORKER_TRIM_MAX_MS under a steady
   stream of handshakes. */
#define WORKER_TRIM_TICK_MS 1000
#define WORKER_TRIM_MAX_MS 30000

struct worker {
	struct tern_env env;
	struct ternd_listener *listeners;
	size_t listener_count;
	int sigfd;
	bool accepting;
	uint64_t drain_deadline;
	/* conn_tls_started() at the last trim and at the last tick */
	uint64_t trim_tls, tick_tls;
	uint64_t trim_ms;
};

static struct worker worker;

static void
worker_accept(struct ev_loop *loop, int fd, unsigned events, void *ctx)
{
	struct ternd_listener *l = ctx;
	const struct ternd_protocol *proto = ternd_protocol(l->cfg->protocol);

	(void)events;
	for (int i = 0; i < WORKER_ACCEPT_BATCH; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int on = 1;
		struct conn *c;

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("worker", NULL, "accept-failed listener=%s error=\"%s\"",
					 l->cfg->name, strerror(errno));
			return;
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		c = conn_new(loop, cfd, l->cfg->tls == CFG_TLS_IMPLICIT ?
						worker.env.tls : NULL);
		/* max_connections is server-wide (counted in conn_new, so
		   racing workers cannot both take the last place). Plaintext
		   listeners let the protocol say it is busy; on implicit TLS
		   that would cost a handshake, so close at once. */
		if (l->cfg->tls == CFG_TLS_IMPLICIT &&
		    conn_server_count() > worker.env.cfg->max_connections) {
			log_warn("worker", conn_id(c), "connection-limit listener=%s max=%u",
				 l->cfg->name, worker.env.cfg->max_connections);
			conn_abort(c, CONN_CLOSE_ERROR);
			continue;
		}
		if (proto == NULL || proto->start == NULL) {
			log_error("worker", conn_id(c), "protocol-missing listener=%s",
				  l->cfg->name);
			conn_abort(c, CONN_CLOSE_ERROR);
			continue;
		}
		proto->start(&worker.env, l->cfg, c);
	}
}

/* Each TLS handshake allocates about 34 KB (record buffers, key
   exchange, certificate messages) and frees it when done. When many run
   at once, the long-lived state of the connections that stay (about
   15 KB each, mostly OpenSSL's) lands between those freed blocks, and
   glibc keeps the free pages in the middle of the heap resident: 1.4 KB
   per idle connection after 3,000 handshakes 300 at a time
   (docs/performance.md, "Idle IMAP connections in detail").
   malloc_trim(0) hands those pages back (MADV_DONTNEED). It runs after
   a burst, when a tick saw no new handshake, or every
   WORKER_TRIM_MAX_MS while they keep coming; never when there were none
   since the last trim. */
static void
worker_trim_tick(struct ev_loop *loop, void *ctx)
{
	uint64_t tls = conn_tls_started();
	uint64_t now = ev_now_ms(loop);

	(void)ctx;
	if (tls != worker.trim_tls &&
	    (tls == worker.tick_tls || now - worker.trim_ms >= WORKER_TRIM_MAX_MS)) {
		malloc_trim(0);
		ev_update_time(loop);
		log_debug("worker", NULL, "heap-trimmed handshakes=%llu ms=%llu",
			  (unsigned long long)(tls - worker.trim_tls),
			  (unsigned long long)(ev_now_ms(loop) - now));
		worker.trim_tls = tls;
		worker.trim_ms = now;
	}
	worker.tick_tls = tls;
	/* the loop's own connection: its page cache after a burst */
	store_rest_if_idle(worker.env.store);
	ev_timer_add(loop, WORKER_TRIM_TICK_MS, worker_trim_tick, NULL);
}

static void
worker_stop_accepting(void)
{
	if (!worker.accepting)
		return;
	worker.accepting = false;
	for (size_t i = 0; i < worker.listener_count; i++) {
		ev_fd_del(worker.env.loop, worker.listeners[i].fd);
		close(worker.listeners[i].fd);
	}
}

static void
worker_check_done(struct ev_loop *loop, void *ctx)
{
	(void)ctx;
	if (conn_count() == 0 || ev_now_ms(loop) >= worker.drain_deadline) {
		if (conn_count() > 0)
			log_warn("worker", NULL, "drain-timeout open=%zu", conn_count());
		ev_stop(loop);
		return;
	}
	ev_timer_add(loop, 100, worker_check_done, NULL);
}

static void
worker_drain(bool say_goodbye, uint64_t ms)
{
	bool first = worker.accepting;

	worker_stop_accepting();
	worker.env.draining = true;
	if (say_goodbye) {
		for (int p = 0; p <= CFG_PROTO_POP3; p++) {
			const struct ternd_protocol *proto = ternd_protocol(p);
			if (proto != NULL && proto->drain != NULL)
				proto->drain();
		}
	}
	worker.drain_deadline = ev_now_ms(worker.env.loop) + ms;
	if (first)
		worker_check_done(worker.env.loop, NULL);
}

static void
worker_signal(struct ev_loop *loop, int fd, unsigned events, void *ctx)
{
	struct signalfd_siginfo si;

	(void)loop;
	(void)events;
	(void)ctx;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("worker", NULL, "draining connections=%zu", conn_count());
			worker_drain(true, WORKER_DRAIN_MS);
		} else if (si.ssi_signo == SIGUSR1) {
			log_info("worker", NULL, "retiring connections=%zu", conn_count());
			worker_drain(false, WORKER_RETIRE_MS);
		}
	}
}

static void
worker_setup_env(struct cfg *cfg, struct tls_ctx *tls)
{
	const char *error;

	worker.env.loop = ev_loop_new();
	worker.env.cfg = cfg;
	worker.env.tls = tls;
	worker.env.hostname = cfg->hostname;
	worker.env.store = store_open(".", &error); /* cwd: ternd_child_enter */
	if (worker.env.loop == NULL || worker.env.store == NULL)
		fatal("worker cannot start: %s",
		      worker.env.store == NULL ? error : "event loop");
	worker.env.commit = store_commit_new(worker.env.loop, ".", &error);
	if (worker.env.commit == NULL)
		fatal("worker cannot start: %s", error);
	/* the commit thread checkpoints, after its batches */
	store_set_autocheckpoint(worker.env.store, WORKER_LOOP_CHECKPOINT_FRAMES);
	worker.env.auth_cache = auth_cache_new(
		cfg->auth_cache_entries > 0 ? cfg->auth_cache_entries : 1,
		(unsigned)(cfg->auth_cache_ttl_ms / 1000));
	worker.env.throttle = auth_throttle_new(AUTH_THROTTLE_MAX_ENTRIES_DEFAULT);
}

void
worker_main(struct cfg *cfg, struct ternd_listener *listeners,
	    size_t listener_count, struct tls_ctx *tls, int index)
{
	char name[32];

	snprintf(name, sizeof(name), "worker%d", index);
	log_set_process(name);
	worker.sigfd = ternd_child_signals();
	if (worker.sigfd < 0 || ternd_child_enter(cfg) < 0)
		exit(1);
	worker.listeners = listeners;
	worker.listener_count = listener_count;
	worker_setup_env(cfg, tls);
	for (int p = 0; p <= CFG_PROTO_POP3; p++) {
		const struct ternd_protocol *proto = ternd_protocol(p);
		if (proto != NULL && proto->init != NULL &&
		    proto->init(&worker.env) < 0)
			fatal("protocol %s failed to initialise", proto->name);
	}
	ev_fd_add(worker.env.loop, worker.sigfd, EV_READ, worker_signal, NULL);
	for (size_t i = 0; i < listener_count; i++)
		ev_fd_add(worker.env.loop, listeners[i].fd, EV_READ,
			  worker_accept, &listeners[i]);
	worker.accepting = true;
	worker.trim_ms = ev_now_ms(worker.env.loop);
	ev_timer_add(worker.env.loop, WORKER_TRIM_TICK_MS, worker_trim_tick, NULL);
	/* Everything opened that start-up needs: from here on no new
	   process, no exec, no ptrace (docs/security.md). */
	ternd_child_sandbox(cfg);
	ev_run(worker.env.loop);
	/* Whatever is on the commit thread becomes durable (or fails)
	   before the worker exits: nothing acknowledged is lost. */
	store_commit_free(&worker.env.commit);
	for (int p = 0; p <= CFG_PROTO_POP3; p++) {
		const struct ternd_protocol *proto = ternd_protocol(p);
		if (proto != NULL && proto->deinit != NULL)
			proto->deinit();
	}
	store_close(&worker.env.store);
	auth_cache_free(&worker.env.auth_cache);
	auth_throttle_free(&worker.env.throttle);
	log_info("worker", NULL, "exit");
	exit(0);
}
