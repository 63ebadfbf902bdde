/* The queue process: drops privileges, opens its own store and runs the
   outbound queue (src/queue/) on its own event loop until SIGTERM. */
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/ev.h"
#include "lib/log.h"
#include "store/store.h"
#include "ternd/ternd.h"

/* XXX: the queue module is being written in parallel; until its header
   is in the tree, this process only waits for SIGTERM. */
#if __has_include("queue/queue.h")
#include "queue/queue.h"
#define TERND_HAVE_QUEUE 1
#endif

static void
queue_process_signal(struct ev_loop *loop, int fd, unsigned events, void *ctx)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)ctx;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT ||
		    si.ssi_signo == SIGUSR1)
			ev_stop(loop);
	}
}

void
queue_process_main(struct cfg *cfg, struct tls_ctx *tls,
		   struct ternd_listener *listeners, size_t listener_count)
{
	struct tern_env env = { 0 };
	const char *error;
	int sfd;

	/* The queue serves no listener: do not hold the sockets. */
	for (size_t i = 0; i < listener_count; i++)
		close(listeners[i].fd);

	log_set_process("queue");
	sfd = ternd_child_signals();
	if (sfd < 0 || ternd_child_enter(cfg) < 0)
		exit(1);
	env.loop = ev_loop_new();
	env.cfg = cfg;
	env.tls = tls;
	env.hostname = cfg->hostname;
	env.store = store_open(".", &error); /* cwd: ternd_child_enter */
	if (env.loop == NULL || env.store == NULL)
		fatal("queue cannot start: %s", env.store == NULL ? error : "loop");
	ev_fd_add(env.loop, sfd, EV_READ, queue_process_signal, NULL);
	ternd_child_sandbox(cfg);
#ifdef TERND_HAVE_QUEUE
	if (queue_main(&env) < 0)
		log_error("queue", NULL, "queue-failed");
#else
	ev_run(env.loop);
#endif
	store_close(&env.store);
	ev_loop_free(&env.loop);
	exit(0);
}
