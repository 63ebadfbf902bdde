#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H
/* The outbound queue: delivers the messages that the SMTP server queued
   in the store (store_queue_*) to the recipients' mail exchangers, or to
   the configured smarthost, retries temporary failures with back-off and
   returns permanent failures to the sender as RFC 3464 DSNs.

   It runs in its own process (src/ternd/queue_process.c) on the event
   loop of env; it polls the store for due entries, so `ternctl queue
   flush|retry` only has to make entries due. See docs/queue.md. */

struct tern_env;

/* Run the queue on env->loop until ev_stop() is called on it (SIGTERM),
   then release everything. Uses env->cfg (queue_* keys, dns_resolver,
   remote_smtp_port), env->store and env->hostname. Returns 0, or -1 when
   the queue cannot start (the DNS resolver failed to initialise); the
   reason is logged. */
int queue_main(struct tern_env *env);

#endif
