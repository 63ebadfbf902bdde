/* COPY (RFC 9051 6.4.7) and MOVE (RFC 6851, 9051 6.4.8) with COPYUID
   (RFC 4315 UIDPLUS). Quota is checked by the store for the whole set:
   NO [OVERQUOTA] and nothing is copied. MOVE reports COPYUID in an
   untagged OK, then EXPUNGE for each moved message (RFC 6851 4.3). The
   copy runs on the worker's commit thread (imap_session_commit): the
   replies follow its durable COMMIT. */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

static void
imap_copy_error(struct imap_session *s, struct imap_cmd *cmd, int r,
		const char *error)
{
	if (r == STORE_OVERQUOTA)
		imap_cmd_no(cmd, "NO [OVERQUOTA] Quota exceeded.");
	else if (r == STORE_NOSPACE)
		imap_cmd_no(cmd, "NO [OVERQUOTA] Not enough disk space.");
	else if (r == STORE_NOTFOUND)
		imap_cmd_no(cmd, "NO [TRYCREATE] Mailbox doesn't exist.");
	else {
		log_error("imap", s->id, "copy-failed code=%d error=%s", r,
			  error);
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
	}
}

/* "uidvalidity src dst" for COPYUID, skipping pairs without a new UID. */
static const char *
imap_copyuid(struct arena *a, uint32_t uidvalidity, const uint32_t *src,
	     const uint32_t *dst, size_t n)
{
	uint32_t *s2 = arena_alloc(a, (n + 1) * sizeof(*s2));
	uint32_t *d2 = arena_alloc(a, (n + 1) * sizeof(*d2));
	struct buf b;
	size_t i, k = 0;
	const char *r;

	for (i = 0; i < n; i++) {
		if (dst[i] == 0)
			continue;
		s2[k] = src[i];
		d2[k++] = dst[i];
	}
	if (k == 0)
		return NULL;
	buf_init(&b, IMAP_COMMAND_MAX_BYTES * 4);
	(void)buf_printf(&b, "%u ", uidvalidity);
	(void)imap_seqset_write(&b, s2, k);
	(void)buf_append_byte(&b, ' ');
	(void)imap_seqset_write(&b, d2, k);
	r = arena_strndup(a, (const char *)b.data, b.len);
	buf_free(&b);
	return r;
}

/* A COPY or MOVE: the store's copy runs on the commit thread
   (imap_session_commit); the replies follow the durable COMMIT. */
struct imap_copy_job {
	struct imap_commit ic; /* first */
	int64_t src_id, dst_id;
	uint32_t dst_uidvalidity;
	const uint32_t *uids; /* command arena */
	size_t k;
	bool move;
	uint32_t *new_uids; /* out of the thread (xmalloc'd) */
};

/* On the commit thread (store_commit_run_fn), with its store. */
static int
imap_copy_commit_run(struct store *st, struct store_commit_job *job)
{
	struct imap_copy_job *j = (struct imap_copy_job *)job;

	free(j->new_uids); /* from a first run of a failed batch */
	j->new_uids = NULL;
	return store_msg_copy(st, j->src_id, j->uids, j->k, j->dst_id,
			      j->move, &j->new_uids);
}

/* cmd->cleanup: the session went away before the reply. */
static void
imap_copy_cleanup(struct imap_cmd *cmd)
{
	struct imap_copy_job *j = cmd->ctx;

	free(j->new_uids);
	j->new_uids = NULL;
	cmd->cleanup = NULL;
}

/* cmd->cont once the copy is durable or failed. */
static enum imap_cmd_res
imap_copy_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_copy_job *j = cmd->ctx;
	const char *copyuid;

	if (j->ic.job.result != STORE_OK) {
		imap_copy_error(s, cmd, j->ic.job.result, j->ic.job.error);
		imap_copy_cleanup(cmd);
		return IMAP_CMD_DONE;
	}
	copyuid = imap_copyuid(cmd->arena, j->dst_uidvalidity, j->uids,
			       j->new_uids, j->k);
	imap_copy_cleanup(cmd);
	imap_notify_publish(s, j->dst_id);
	if (j->move) {
		imap_notify_publish(s, j->src_id);
		if (copyuid != NULL)
			imap_session_printf(s, "* OK [COPYUID %s] Moved UIDs.",
					    copyuid);
		imap_session_expunged(s, j->uids, j->k);
		imap_cmd_ok(cmd, "OK Move completed.");
	} else if (copyuid != NULL) {
		imap_cmd_reply(cmd, "OK [COPYUID %s] Copy completed.", copyuid);
	} else {
		imap_cmd_ok(cmd, "OK Copy completed.");
	}
	return IMAP_CMD_DONE;
}

static enum imap_cmd_res
imap_copy(struct imap_session *s, struct imap_cmd *cmd, bool move)
{
	struct imap_view *v = s->view;
	struct imap_copy_job *j;
	struct store_mailbox dst;
	const char *name, *error = NULL;
	size_t *idx, n, i, k = 0;
	uint32_t *uids;
	int r;

	if (cmd->argc != 2) {
		imap_cmd_bad(cmd, "BAD Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	if (imap_set_to_indexes(s, &cmd->args[0], cmd->uid, &idx, &n,
				&error) < 0 ||
	    (name = imap_mailbox_from_arg(s, &cmd->args[1], &error)) == NULL) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = error[0] == 'B';
		return IMAP_CMD_DONE;
	}
	if (move && v->readonly) {
		imap_cmd_no(cmd, "NO [READ-ONLY] Mailbox is read-only.");
		return IMAP_CMD_DONE;
	}
	r = store_mailbox_get(s->env->store, s->account_id, name, &dst);
	if (r != 1) {
		imap_copy_error(s, cmd, r == 0 ? STORE_NOTFOUND : r,
				store_last_error(s->env->store));
		return IMAP_CMD_DONE;
	}
	uids = arena_alloc(cmd->arena, (n > 0 ? n : 1) * sizeof(*uids));
	for (i = 0; i < n; i++) {
		if (!v->msgs[idx[i]].expunged)
			uids[k++] = v->msgs[idx[i]].uid;
	}
	if (k == 0) {
		store_mailbox_clear(&dst);
		imap_cmd_ok(cmd, "OK No messages found.");
		return IMAP_CMD_DONE;
	}
	j = arena_zalloc(cmd->arena, sizeof(*j));
	j->src_id = v->mailbox_id;
	j->dst_id = dst.id;
	j->dst_uidvalidity = dst.uidvalidity;
	j->uids = uids;
	j->k = k;
	j->move = move;
	store_mailbox_clear(&dst);
	cmd->ctx = j;
	cmd->cleanup = imap_copy_cleanup;
	j->ic.job.run = imap_copy_commit_run;
	return imap_session_commit(s, cmd, &j->ic, imap_copy_reply);
}

enum imap_cmd_res
imap_cmd_copy(struct imap_session *s, struct imap_cmd *cmd)
{
	return imap_copy(s, cmd, false);
}

enum imap_cmd_res
imap_cmd_move(struct imap_session *s, struct imap_cmd *cmd)
{
	return imap_copy(s, cmd, true);
}
