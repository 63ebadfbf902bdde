#ifndef TERN_IMAP_H
#define TERN_IMAP_H
/* imap: the IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) server of tern.
   The worker calls imap_init() once at start, imap_session_start() for
   each connection accepted on an IMAP listener (the conn is then owned by
   the session, which frees itself from the conn's on_close), imap_drain()
   on SIGTERM and imap_deinit() at exit. */
#include "lib/env.h"

/* Open per-process resources: the store notification socket watched by
   the loop for IDLE push. 0, or -1 (the worker then runs without push;
   sessions still see changes at their next command). */
int imap_init(struct tern_env *env);
/* Matches tern_session_start_fn: set the handler, send the greeting. */
void imap_session_start(struct tern_env *env,
			const struct cfg_listener *listener, struct conn *c);
/* SIGTERM: sessions without a running command get "* BYE" and are
   closed; busy ones close after their current command. */
void imap_drain(void);
void imap_deinit(void);

#endif
