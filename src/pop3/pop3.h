#ifndef TERN_POP3_H
#define TERN_POP3_H
/* The POP3 server of tern (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC
   5034 AUTH). The maildrop is the account's INBOX, fixed at login; DELE
   marks, QUIT removes the marked messages durably and only then answers
   +OK. The worker process (src/ternd/) calls these four functions. */
#include "lib/env.h"

struct cfg_listener;
struct conn;

int pop3_init(struct tern_env *env);
void pop3_session_start(struct tern_env *env,
			const struct cfg_listener *listener, struct conn *c);
/* SIGTERM: sessions are closed without UPDATE (nothing is deleted), with
   "-ERR [SYS/TEMP] shutting down": at once, or for a session in the
   middle of a response or a failed-login delay, when that is done. */
void pop3_drain(void);
void pop3_deinit(void);

#endif
