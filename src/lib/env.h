#ifndef TERN_ENV_H
#define TERN_ENV_H
/* What every protocol session gets from its worker process: the loop, the
   immutable config, the process's store handle, the auth cache and login
   throttle, and the TLS context. The types are only declared here so that
   lib does not depend on the modules above it. */
#include <stdbool.h>

struct ev_loop;
struct cfg;
struct cfg_listener;
struct store;
struct store_commit;
struct auth_cache;
struct auth_throttle;
struct tls_ctx;
struct conn;

struct tern_env {
	struct ev_loop *loop;
	const struct cfg *cfg;
	struct store *store;
	/* the worker's commit thread: durable writes of SMTP and APPEND */
	struct store_commit *commit;
	struct auth_cache *auth_cache;
	struct auth_throttle *throttle;
	struct tls_ctx *tls; /* NULL when no certificate is configured */
	const char *hostname;
	/* Set by the worker on SIGTERM: sessions finish their current
	   command and say goodbye. */
	bool draining;
};

/* Each protocol module exports a start function with this shape; the
   worker calls it for every accepted connection (after the implicit-TLS
   handshake has been started by conn_new). */
typedef void tern_session_start_fn(struct tern_env *env,
				   const struct cfg_listener *listener,
				   struct conn *c);

#endif
