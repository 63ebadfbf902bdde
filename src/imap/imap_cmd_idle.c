/* IDLE (RFC 2177, RFC 9051 6.3.13): "+ idling", then updates are pushed
   from imap_notify.c as they happen, until the client sends DONE. While
   idling no command runs: the command arena is freed and the session
   costs its struct, its view and the connection buffers. */
#include <stdlib.h>

#include "imap/imap_int.h"
#include "lib/conn.h"
#include "lib/xalloc.h"

enum imap_cmd_res
imap_cmd_idle(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->argc != 0) {
		imap_cmd_bad(cmd, "BAD IDLE takes no arguments.");
		return IMAP_CMD_DONE;
	}
	if (s->state == IMAP_STATE_SELECTED)
		(void)imap_session_sync(s, true, false);
	if (s->closing)
		return IMAP_CMD_DETACH;
	imap_session_printf(s, "+ idling");
	free(s->idle_tag);
	s->idle_tag = xstrdup(cmd->tag);
	s->idling = true;
	s->mode = IMAP_INPUT_IDLE;
	imap_notify_idle_add(s);
	conn_compress_lean(s->c, true); /* COMPRESS: no 256 KB while idle */
	return IMAP_CMD_DETACH;
}

void
imap_idle_line(struct imap_session *s, struct strview line)
{
	imap_notify_idle_remove(s);
	conn_compress_lean(s->c, false);
	s->idling = false;
	s->mode = IMAP_INPUT_CMD;
	if (s->state == IMAP_STATE_SELECTED)
		(void)imap_session_sync(s, true, false);
	if (!s->closing) {
		if (sv_eq_ci_cstr(line, "DONE"))
			imap_session_printf(s, "%s OK Idle completed.",
					    s->idle_tag);
		else
			imap_session_printf(s, "%s BAD Expected DONE.",
					    s->idle_tag);
	}
	xfree(&s->idle_tag);
	if (s->env->draining)
		imap_session_bye(s, "Server shutting down.");
}
