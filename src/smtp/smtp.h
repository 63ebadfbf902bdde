#ifndef TERN_SMTP_H
#define TERN_SMTP_H
/* The SMTP server of tern: inbound mail for local domains (listener
   protocol "smtp", port 25) and mail submission by authenticated users
   ("submission", ports 587 with STARTTLS and 465 with implicit TLS).
   Local recipients are delivered into their INBOX (group commit: the 250
   to DATA/BDAT LAST is sent only after the message is on disk); remote
   recipients go into the durable outbound queue. The worker process
   (src/ternd/) calls these four functions; everything else is private. */
#include "lib/env.h"

struct cfg_listener;
struct conn;

/* Once per worker process. 0, or -1 on failure. */
int smtp_init(struct tern_env *env);
/* An accepted connection on an smtp or submission listener: the session
   takes c (sets its handler, sends the greeting; on a limit it answers
   421 and closes). Matches tern_session_start_fn. */
void smtp_session_start(struct tern_env *env,
			const struct cfg_listener *listener, struct conn *c);
/* SIGTERM: idle sessions get "421 4.3.2" and are closed; a session in
   the middle of DATA/BDAT or waiting for its commit finishes it first. */
void smtp_drain(void);
/* Once per worker at exit (sessions must be gone). */
void smtp_deinit(void);

#endif
