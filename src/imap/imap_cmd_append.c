/* APPEND (RFC 9051 6.3.12) with MULTIAPPEND (RFC 3502), LITERAL+ /
   literal8 (RFC 7888, RFC 3516), APPENDLIMIT (RFC 7889) and APPENDUID
   (RFC 4315), and UTF8 (~{n}) data (RFC 6855 4, after ENABLE
   UTF8=ACCEPT). The message literal is never held in memory: the parser
   hands it over (IMAP_PARSE_STREAM) and the bytes go straight from the
   connection into a store blob writer. At the end of the command the
   writers and the metadata of all its messages go to the worker's commit
   thread as one job (store_commit.c): the thread fsyncs the blobs and
   commits the job in one savepoint of its batch, shared with the other
   sessions' APPENDs and SMTP deliveries, so a MULTIAPPEND is all or
   nothing, and OK [APPENDUID] is sent only after that commit (fsync).
   The session waits (input paused); the loop serves the others.
   A refused synchronising literal is never requested; a refused
   non-synchronising one is skipped by the parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

struct imap_append_msg {
	char hash[STORE_HASH_HEX_LEN + 1];
	uint32_t uid; /* out of the commit */
	uint32_t flags;
	const char *keywords; /* command arena */
	int64_t date;
	uint64_t size;
};

struct imap_append {
	struct store_commit_job job; /* first: the job is the append */
	struct imap_session *s;
	bool pending;	/* on the commit thread */
	int64_t now;	/* when the command ended (Sent dedup window) */
	/* blobs[i] is message i's writer until the thread finished it */
	struct store_commit_blob *blobs;
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint64_t limit;
	struct store_blob_writer *w;
	uint64_t remaining, size;
	bool write_failed;
	struct imap_append_msg *msgs;
	size_t count, cap;
	size_t args_done;
	uint64_t pending_bytes;
	/* the message being received */
	uint32_t flags;
	const char *keywords;
	int64_t date;
	/* The target is the \Sent mailbox of a domain whose submitted mail
	   is saved there already: skip a copy that submission just made. */
	bool dedup_sent;
	/* The session has the target selected read-write (IMAP4rev1): the
	   job takes the new messages as \Recent in its own transaction
	   (recent_from..recent_to-1), so the session's sync after the OK
	   needs no write (and no fsync) on the loop. */
	bool claim_recent;
	uint32_t recent_from, recent_to;
};

/* How recent a submission's Sent copy must be for APPEND to take it as
   the same message (clients append right after sending). */
#define IMAP_APPEND_SENT_WINDOW_SECS 600
/* A MULTIAPPEND keeps at most this many blob files open for the commit
   thread; the files of the messages after them are closed when their
   literal ends (parked) and opened again by the thread for its fsync. */
#define IMAP_APPEND_OPEN_BLOBS_MAX 16

void
imap_append_free(struct imap_session *s)
{
	struct imap_append *a = s->append;

	if (a == NULL)
		return;
	if (a->w != NULL)
		store_blob_writer_abort(&a->w);
	for (size_t i = 0; i < a->count; i++) {
		if (a->blobs[i].w != NULL)
			store_blob_writer_abort(&a->blobs[i].w);
	}
	free(a->blobs);
	free(a->msgs);
	free(a);
	s->append = NULL;
}

static enum imap_cmd_res
imap_append_fail(struct imap_session *s, struct imap_cmd *cmd,
		 const char *reply)
{
	imap_append_free(s);
	imap_cmd_reply(cmd, "%s", reply);
	cmd->bad = reply[0] == 'B';
	return IMAP_CMD_DONE;
}

static int
imap_append_quota_ok(struct imap_session *s, struct imap_append *a,
		     uint64_t size)
{
	struct store_quota q;

	if (store_quota_get(s->env->store, s->account_id, &q) != STORE_OK)
		return -1;
	if (q.limit_bytes != 0 &&
	    (q.used_bytes > q.limit_bytes ||
	     a->pending_bytes > q.limit_bytes - q.used_bytes ||
	     size > q.limit_bytes - q.used_bytes - a->pending_bytes))
		return 0;
	if (q.limit_messages != 0 &&
	    q.used_messages + a->count + 1 > q.limit_messages)
		return 0;
	return 1;
}

/* Parse "[flags] [date] literal" starting at args_done and start
   receiving the literal. */
static enum imap_cmd_res
imap_append_message(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_append *a = s->append;
	const struct imap_arg *args;
	const char *error;
	size_t argc, i;
	uint64_t size;
	int q;

	args = imap_parser_args(s->parser, &argc);
	i = a->args_done;
	a->flags = 0;
	a->keywords = NULL;
	a->date = ev_now(s->env->loop);
	if (i < argc && args[i].type == IMAP_ARG_LIST) {
		if (imap_flags_parse(cmd->arena, args[i].list, args[i].count,
				     false, &a->flags, &a->keywords,
				     &error) < 0)
			return imap_append_fail(s, cmd, error);
		i++;
	}
	if (i < argc && imap_arg_is_string(&args[i])) {
		if (imap_date_time_parse(args[i].str, &a->date) < 0)
			return imap_append_fail(s, cmd, "BAD Invalid "
							"date-time.");
		i++;
	}
	if (i + 1 != argc || args[i].type != IMAP_ARG_STREAM)
		return imap_append_fail(s, cmd, "BAD Invalid APPEND "
						"arguments.");
	if (args[i].utf8_data && !s->utf8)
		return imap_append_fail(s, cmd, "NO UTF8 APPEND data needs "
						"ENABLE UTF8=ACCEPT.");
	size = args[i].stream_size;
	a->args_done = argc;
	if (size > a->limit)
		return imap_append_fail(s, cmd, "NO [TOOBIG] Message too "
						"large.");
	if (size == 0)
		return imap_append_fail(s, cmd, "NO Can't save a zero byte "
						"message.");
	if (a->count >= IMAP_APPEND_MAX_MESSAGES)
		return imap_append_fail(s, cmd, "NO [LIMIT] Too many "
						"messages.");
	q = imap_append_quota_ok(s, a, size);
	if (q <= 0)
		return imap_append_fail(s, cmd, q == 0 ?
			"NO [OVERQUOTA] Quota exceeded." :
			"NO [UNAVAILABLE] Internal error, try again later.");
	a->w = store_blob_writer_new(s->env->store);
	a->size = a->remaining = size;
	a->write_failed = a->w == NULL;
	if (imap_parser_literal_sync(s->parser))
		imap_session_printf(s, "+ OK");
	s->mode = IMAP_INPUT_STREAM;
	return IMAP_CMD_WAIT;
}

/* The message whose literal ended: its writer goes to the commit
   thread (which fills in the hash). */
static void
imap_append_msg_add(struct imap_append *a, struct store_blob_writer *w)
{
	struct imap_append_msg *m;

	if (a->count == a->cap) {
		a->cap = a->cap == 0 ? 4 : a->cap * 2;
		a->msgs = xreallocarray(a->msgs, a->cap, sizeof(*a->msgs));
		a->blobs = xreallocarray(a->blobs, a->cap, sizeof(*a->blobs));
	}
	memset(&a->blobs[a->count], 0, sizeof(a->blobs[a->count]));
	a->blobs[a->count].w = w;
	m = &a->msgs[a->count++];
	m->hash[0] = '\0';
	m->flags = a->flags;
	m->keywords = a->keywords;
	m->date = a->date;
	m->size = a->size;
	a->pending_bytes += a->size;
}

void
imap_append_input(struct imap_session *s)
{
	struct imap_append *a = s->append;
	const uint8_t *data;
	size_t len = conn_input_peek(s->c, &data);

	if (len > a->remaining)
		len = (size_t)a->remaining;
	if (!a->write_failed &&
	    store_blob_writer_write(a->w, data, len) != STORE_OK)
		a->write_failed = true;
	conn_input_consume(s->c, len);
	a->remaining -= len;
	if (a->remaining > 0)
		return;
	imap_parser_stream_done(s->parser);
	s->mode = IMAP_INPUT_CMD;
	if (a->write_failed) {
		if (a->w != NULL)
			store_blob_writer_abort(&a->w);
		return;
	}
	if (a->count >= IMAP_APPEND_OPEN_BLOBS_MAX &&
	    store_blob_writer_park(a->w) != STORE_OK) {
		store_blob_writer_abort(&a->w);
		a->write_failed = true;
		return;
	}
	imap_append_msg_add(a, a->w);
	a->w = NULL;
}

/* Does submission save copies into this mailbox (issue 3: per-domain
   setting, else the config's smtp_save_sent)? */
static bool
imap_append_sent_saved(struct imap_session *s,
		       const struct store_mailbox *box)
{
	const char *at = s->user != NULL ? strrchr(s->user, '@') : NULL;
	int value = -1;

	if (box->special_use == NULL ||
	    strcasecmp(box->special_use, "\\Sent") != 0 || at == NULL)
		return false;
	if (store_sent_get(s->env->store, at + 1, &value) < 0)
		value = -1;
	return value < 0 ? s->env->cfg->smtp_save_sent : value == 1;
}

/* 1 when submission saved this message a moment ago (*uid_r: its UID).
   On the commit thread, with its store. */
static int
imap_append_already_sent(struct store *st, struct imap_append *a,
			 const char *hash, uint32_t *uid_r)
{
	int64_t since = a->now - IMAP_APPEND_SENT_WINDOW_SECS;

	if (!a->dedup_sent)
		return 0;
	return store_sent_find(st, a->mailbox_id, hash, since, uid_r) == 1;
}

/* Take the new messages (and any older ones nobody took yet) as \Recent
   for the appending session, in the job's transaction. */
static int
imap_append_claim_recent(struct store *st, struct imap_append *a)
{
	uint32_t last = 0;
	int r;

	a->recent_from = a->recent_to = 0;
	if (!a->claim_recent)
		return STORE_OK;
	for (size_t i = 0; i < a->count; i++) {
		if (a->msgs[i].uid > last)
			last = a->msgs[i].uid;
	}
	if (last == 0 || last == UINT32_MAX)
		return STORE_OK;
	r = store_mailbox_claim_recent_upto(st, a->mailbox_id, last + 1,
					    &a->recent_from);
	if (r < 0)
		return r;
	if (r == 1)
		a->recent_to = last + 1;
	return STORE_OK;
}

/* The metadata of every message (store_commit_run_fn), on the commit
   thread inside its batch: all or nothing (the job's savepoint). */
static int
imap_append_commit_run(struct store *st, struct store_commit_job *job)
{
	struct imap_append *a = (struct imap_append *)job;
	size_t i;
	int r;

	for (i = 0; i < a->count; i++) {
		struct imap_append_msg *m = &a->msgs[i];

		if (a->blobs[i].hash[0] != '\0')
			memcpy(m->hash, a->blobs[i].hash, sizeof(m->hash));
		m->uid = 0;
		if (imap_append_already_sent(st, a, m->hash, &m->uid))
			continue;
		r = store_msg_append(st, a->mailbox_id, m->hash, m->flags,
				     m->keywords, m->date, &m->uid);
		if (r != STORE_OK)
			return r;
	}
	return imap_append_claim_recent(st, a);
}

/* Hand the UIDs the job took as \Recent to the view (its sync before
   the tagged OK marks them). */
static void
imap_append_recent_taken(struct imap_session *s, const struct imap_append *a)
{
	struct imap_view *v = s->view;

	if (a->recent_to == 0 || v == NULL || v->mailbox_id != a->mailbox_id)
		return;
	/* Normally the sync before the previous OK took the previous claim
	   already; never join two claims with UIDs of others between. */
	if (v->claim_to != a->recent_from)
		v->claim_from = a->recent_from;
	v->claim_to = a->recent_to;
}

/* The command's reply once the commit thread is done (cmd->cont). */
static enum imap_cmd_res
imap_append_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_append *a = s->append;
	int r = a->job.result;
	uint32_t *uids;
	struct buf b;
	size_t i;

	if (r != STORE_OK && !a->job.blobs_ok) {
		log_error("imap", s->id, "append-write-failed error=%s",
			  a->job.error);
		return imap_append_fail(s, cmd, "NO [UNAVAILABLE] Internal "
						"error, try again later.");
	}
	if (r != STORE_OK) {
		if (r == STORE_OVERQUOTA || r == STORE_NOSPACE)
			return imap_append_fail(s, cmd, "NO [OVERQUOTA] Quota "
							"exceeded.");
		if (r == STORE_NOTFOUND)
			return imap_append_fail(s, cmd, "NO [TRYCREATE] "
							"Mailbox doesn't "
							"exist.");
		log_error("imap", s->id, "append-failed code=%d error=%s", r,
			  a->job.error);
		return imap_append_fail(s, cmd, "NO [UNAVAILABLE] Internal "
						"error, try again later.");
	}
	/* the commit thread told every process of the new messages */
	imap_append_recent_taken(s, a);
	uids = arena_alloc(cmd->arena, a->count * sizeof(*uids));
	for (i = 0; i < a->count; i++)
		uids[i] = a->msgs[i].uid;
	buf_init(&b, IMAP_COMMAND_MAX_BYTES);
	(void)imap_seqset_write(&b, uids, a->count);
	imap_cmd_reply(cmd, "OK [APPENDUID %u %s] Append completed.",
		       a->uidvalidity, buf_cstr(&b));
	buf_free(&b);
	log_info("imap", s->id, "append mailbox_id=%lld count=%zu batch=%zu",
		 (long long)a->mailbox_id, a->count, a->job.batch_size);
	imap_append_free(s);
	return IMAP_CMD_DONE;
}

/* Back on the loop (store_commit_done_fn). */
static void
imap_append_commit_done(struct store_commit_job *job)
{
	struct imap_append *a = (struct imap_append *)job;
	struct imap_session *s = a->s;

	a->pending = false;
	if (imap_session_dead(s))
		return; /* it closed meanwhile: now freed */
	imap_session_resume(s);
}

static enum imap_cmd_res
imap_append_finish(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_append *a = s->append;

	if (a->write_failed) {
		log_error("imap", s->id, "append-write-failed error=%s",
			  store_last_error(s->env->store));
		return imap_append_fail(s, cmd, "NO [UNAVAILABLE] Internal "
						"error, try again later.");
	}
	a->s = s;
	a->now = (int64_t)ev_now(s->env->loop);
	a->job.run = imap_append_commit_run;
	a->job.done = imap_append_commit_done;
	a->job.blobs = a->blobs;
	a->job.blob_count = a->count;
	a->pending = true;
	cmd->cont = imap_append_reply;
	store_commit_submit(s->env->commit, &a->job);
	return IMAP_CMD_WAIT;
}

bool
imap_append_pending(const struct imap_session *s)
{
	return s->append != NULL && s->append->pending;
}

/* Called when the parser has more after a literal: another message
   (STREAM) or the end of the command. */
static enum imap_cmd_res
imap_append_continue(struct imap_session *s, struct imap_cmd *cmd)
{
	size_t argc;

	(void)imap_parser_args(s->parser, &argc);
	if (imap_parser_in_stream(s->parser) || argc > s->append->args_done)
		return imap_append_message(s, cmd);
	return imap_append_finish(s, cmd);
}

enum imap_cmd_res
imap_cmd_append(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_mailbox box;
	struct imap_append *a;
	const char *name, *error;
	int r;

	if (cmd->argc < 2 || cmd->args[cmd->argc - 1].type != IMAP_ARG_STREAM) {
		imap_cmd_bad(cmd, "BAD Invalid APPEND arguments.");
		return IMAP_CMD_DONE;
	}
	name = imap_mailbox_from_arg(s, &cmd->args[0], &error);
	if (name == NULL) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = error[0] == 'B';
		return IMAP_CMD_DONE;
	}
	r = store_mailbox_get(s->env->store, s->account_id, name, &box);
	if (r != 1) {
		imap_cmd_no(cmd, r == 0 ? "NO [TRYCREATE] Mailbox doesn't "
					  "exist." :
					  "NO [UNAVAILABLE] Internal error.");
		return IMAP_CMD_DONE;
	}
	a = xcalloc(1, sizeof(*a));
	a->mailbox_id = box.id;
	a->uidvalidity = box.uidvalidity;
	a->dedup_sent = imap_append_sent_saved(s, &box);
	a->claim_recent = s->state == IMAP_STATE_SELECTED && s->view != NULL &&
			  s->view->mailbox_id == box.id &&
			  !s->view->readonly && !s->rev2;
	a->limit = imap_session_append_limit(s);
	a->args_done = 1;
	store_mailbox_clear(&box);
	s->append = a;
	cmd->cont = imap_append_continue;
	return imap_append_message(s, cmd);
}
