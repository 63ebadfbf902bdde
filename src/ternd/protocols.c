/* The table of protocol modules, indexed by enum cfg_proto. SMTP and
   submission share one module; the session looks at the listener. */
#include <stddef.h>

#include "ternd/ternd.h"

/* XXX: while the protocol modules are being written in parallel, a module
   whose header is not in the tree yet is left out (its listeners refuse
   connections with a log line). Remove once all of them have landed. */
#if __has_include("smtp/smtp.h")
#include "smtp/smtp.h"
#define TERND_SMTP { "smtp", smtp_init, smtp_session_start, smtp_drain, smtp_deinit }
#define TERND_SUBMISSION { "submission", NULL, smtp_session_start, NULL, NULL }
#else
#define TERND_SMTP { "smtp", NULL, NULL, NULL, NULL }
#define TERND_SUBMISSION { "submission", NULL, NULL, NULL, NULL }
#endif
#if __has_include("imap/imap.h")
#include "imap/imap.h"
#define TERND_IMAP { "imap", imap_init, imap_session_start, imap_drain, imap_deinit }
#else
#define TERND_IMAP { "imap", NULL, NULL, NULL, NULL }
#endif
#if __has_include("pop3/pop3.h")
#include "pop3/pop3.h"
#define TERND_POP3 { "pop3", pop3_init, pop3_session_start, pop3_drain, pop3_deinit }
#else
#define TERND_POP3 { "pop3", NULL, NULL, NULL, NULL }
#endif

static const struct ternd_protocol ternd_protocols[] = {
	[CFG_PROTO_SMTP] = TERND_SMTP,
	[CFG_PROTO_SUBMISSION] = TERND_SUBMISSION,
	[CFG_PROTO_IMAP] = TERND_IMAP,
	[CFG_PROTO_POP3] = TERND_POP3,
};

const struct ternd_protocol *
ternd_protocol(enum cfg_proto proto)
{
	if ((size_t)proto >= sizeof(ternd_protocols) / sizeof(ternd_protocols[0]))
		return NULL;
	return &ternd_protocols[proto];
}
