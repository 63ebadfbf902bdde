/* The POP3 command table (the index of the protocol) and the
   TRANSACTION commands of RFC 1939 5 and 7. */
#include <stdio.h>
#include <string.h>

#include "lib/conn.h"
#include "lib/env.h"
#include "lib/log.h"
#include "pop3/pop3_int.h"

#define AUTHZ POP3_STATE_AUTHORIZATION
#define TRANS POP3_STATE_TRANSACTION

static pop3_cmd_fn pop3_cmd_stat, pop3_cmd_list, pop3_cmd_retr,
	pop3_cmd_dele, pop3_cmd_noop, pop3_cmd_rset, pop3_cmd_quit,
	pop3_cmd_top, pop3_cmd_uidl;

static const struct pop3_cmd pop3_commands[] = {
	{ "USER", AUTHZ, pop3_cmd_user },
	{ "PASS", AUTHZ, pop3_cmd_pass },
	{ "AUTH", AUTHZ, pop3_cmd_auth },
	{ "STLS", AUTHZ, pop3_cmd_stls },
	{ "CAPA", AUTHZ | TRANS, pop3_cmd_capa },
	{ "QUIT", AUTHZ | TRANS, pop3_cmd_quit },
	{ "NOOP", TRANS, pop3_cmd_noop },
	{ "STAT", TRANS, pop3_cmd_stat },
	{ "LIST", TRANS, pop3_cmd_list },
	{ "RETR", TRANS, pop3_cmd_retr },
	{ "DELE", TRANS, pop3_cmd_dele },
	{ "RSET", TRANS, pop3_cmd_rset },
	{ "TOP", TRANS, pop3_cmd_top },
	{ "UIDL", TRANS, pop3_cmd_uidl },
};

const struct pop3_cmd *
pop3_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++) {
		if (strcmp(pop3_commands[i].name, name) == 0)
			return &pop3_commands[i];
	}
	return NULL;
}

/* Argument count check; answers the error itself. */
static bool
pop3_cmd_argc(struct pop3_session *s, const struct pop3_cmdline *cmd,
	      size_t min, size_t max)
{
	if (cmd->argc < min || cmd->argc > max || cmd->extra) {
		pop3_client_error(s, "Wrong number of arguments");
		return false;
	}
	return true;
}

/* The message an argument names, or NULL after answering -ERR. */
static const struct store_msg *
pop3_cmd_msg(struct pop3_session *s, struct strview arg, uint32_t *num_r)
{
	const struct store_msg *m = NULL;

	if (pop3_parse_msgnum(arg, (uint32_t)s->md.count, num_r) == 0)
		m = pop3_maildrop_get(&s->md, *num_r);
	if (m == NULL)
		pop3_client_error(s, "No such message");
	return m;
}

static void
pop3_cmd_noop(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	if (pop3_cmd_argc(s, cmd, 0, 0))
		pop3_reply_ok(s, "%s", "");
}

static void
pop3_cmd_stat(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	if (pop3_cmd_argc(s, cmd, 0, 0))
		pop3_reply_ok(s, "%zu %llu", s->md.live_count,
			      (unsigned long long)s->md.live_bytes);
}

static void
pop3_cmd_list(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	const struct store_msg *m;
	uint32_t n;

	if (!pop3_cmd_argc(s, cmd, 0, 1))
		return;
	if (cmd->argc == 0) {
		pop3_reply_ok(s, "%zu messages (%llu octets)", s->md.live_count,
			      (unsigned long long)s->md.live_bytes);
		pop3_session_stream_start(s, POP3_STREAM_LIST);
		return;
	}
	m = pop3_cmd_msg(s, cmd->args[0], &n);
	if (m != NULL)
		pop3_reply_ok(s, "%u %llu", n, (unsigned long long)m->size);
}

static void
pop3_cmd_uidl(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	char uidl[64];
	uint32_t n;

	if (!pop3_cmd_argc(s, cmd, 0, 1))
		return;
	if (cmd->argc == 0) {
		pop3_reply_ok(s, "%s", "");
		pop3_session_stream_start(s, POP3_STREAM_UIDL);
		return;
	}
	if (pop3_cmd_msg(s, cmd->args[0], &n) == NULL)
		return;
	pop3_maildrop_uidl(&s->md, n, uidl, sizeof(uidl));
	pop3_reply_ok(s, "%u %s", n, uidl);
}

/* RETR and TOP: map the blob and stream it. */
static void
pop3_cmd_send(struct pop3_session *s, const struct store_msg *m, bool top,
	      uint32_t lines)
{
	int r = store_blob_map(s->env->store, m->blob, &s->map);

	if (r == STORE_NOTFOUND) {
		/* Expunged over IMAP since login (the maildrop is fixed at
		   login, RFC 1939 8) and no other message shares the blob:
		   gone for good, so no [SYS/TEMP] invitation to retry. */
		log_warn("pop3", conn_id(s->c), "blob-gone uid=%u blob=%s",
			 m->uid, m->blob);
		pop3_reply_err(s, "Message was removed by another session");
		return;
	}
	if (r < 0) {
		log_error("pop3", conn_id(s->c), "blob-map-failed blob=%s error=%s",
			  m->blob, store_last_error(s->env->store));
		pop3_reply_err(s, "[SYS/TEMP] Cannot read the message, try again");
		return;
	}
	if (top)
		pop3_reply_ok(s, "%s", "");
	else
		pop3_reply_ok(s, "%llu octets", (unsigned long long)m->size);
	pop3_msg_fmt_init(&s->fmt, s->map.data, s->map.len, top, lines);
	pop3_session_stream_start(s, POP3_STREAM_MSG);
}

static void
pop3_cmd_retr(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	const struct store_msg *m;
	uint32_t n;

	if (!pop3_cmd_argc(s, cmd, 1, 1))
		return;
	m = pop3_cmd_msg(s, cmd->args[0], &n);
	if (m != NULL)
		pop3_cmd_send(s, m, false, 0);
}

static void
pop3_cmd_top(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	const struct store_msg *m;
	uint32_t n, lines;

	if (!pop3_cmd_argc(s, cmd, 2, 2))
		return;
	if (parse_u32(cmd->args[1], UINT32_MAX, &lines) < 0) {
		pop3_client_error(s, "Invalid line count");
		return;
	}
	m = pop3_cmd_msg(s, cmd->args[0], &n);
	if (m != NULL)
		pop3_cmd_send(s, m, true, lines);
}

static void
pop3_cmd_dele(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	uint32_t n;

	if (!pop3_cmd_argc(s, cmd, 1, 1))
		return;
	if (pop3_cmd_msg(s, cmd->args[0], &n) == NULL)
		return;
	pop3_maildrop_mark(&s->md, n);
	pop3_reply_ok(s, "Message %u deleted", n);
}

static void
pop3_cmd_rset(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	if (!pop3_cmd_argc(s, cmd, 0, 0))
		return;
	pop3_maildrop_reset(&s->md);
	pop3_reply_ok(s, "%zu messages", s->md.live_count);
}

/* The UPDATE is durable or failed (store_commit_done_fn): answer QUIT
   and close, unless the client went away meanwhile. */
static void
pop3_cmd_quit_done(struct store_commit_job *job)
{
	struct pop3_update *u = (struct pop3_update *)job;
	struct pop3_session *s = u->s;

	if (job->result != STORE_OK) {
		log_error("pop3", u->id, "update-failed user=%s error=%s",
			  u->user, job->error);
		if (s != NULL)
			pop3_reply_err(s, "[SYS/TEMP] Messages could not be "
					  "removed; nothing was deleted");
	} else {
		log_info("pop3", u->id, "update user=%s removed=%zu",
			 u->user, u->count);
		if (s != NULL)
			pop3_reply_ok(s, "Bye, %zu message%s removed",
				      u->count, u->count == 1 ? "" : "s");
	}
	if (s == NULL) {
		log_info("pop3", u->id, "update-done-after-close");
	} else {
		s->update = NULL;
		pop3_session_close(s);
	}
	pop3_update_free(&u);
}

/* RFC 1939 6: QUIT in TRANSACTION enters UPDATE: the marked messages are
   removed durably before +OK; on failure nothing is removed. */
static void
pop3_cmd_quit(struct pop3_session *s, const struct pop3_cmdline *cmd)
{
	struct pop3_update *u;

	(void)cmd;
	if (s->state != POP3_STATE_TRANSACTION) {
		pop3_reply_ok(s, "Bye");
		pop3_session_close(s);
		return;
	}
	s->state = POP3_STATE_UPDATE;
	u = pop3_maildrop_update(&s->md, pop3_cmd_quit_done);
	snprintf(u->id, sizeof(u->id), "%s", conn_id(s->c));
	snprintf(u->user, sizeof(u->user), "%s", s->account);
	u->s = s;
	if (u->count == 0) {
		pop3_cmd_quit_done(&u->job); /* nothing to write */
		return;
	}
	s->update = u;
	s->busy = true;
	conn_pause_input(s->c);
	store_commit_submit(s->env->commit, &u->job);
}
