/* STORE and UID STORE (RFC 9051 6.4.6): FLAGS / +FLAGS / -FLAGS with
   .SILENT, system flags and keywords. The untagged FETCH responses carry
   the flags as the store has them after the change; UID STORE adds the
   UID (RFC 9051 6.4.9). UNCHANGEDSINCE (RFC 7162 3.1.3): messages changed
   after it are left alone and named in OK [MODIFIED set]; with CONDSTORE
   on, the FETCH responses carry MODSEQ, and .SILENT still reports the
   new MODSEQ of each changed message. The write runs on the worker's
   commit thread in a group-committed batch (imap_session_commit): the
   replies go out once it is durable, and the loop serves the other
   connections during its fsync. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

static bool
imap_store_item(const char *item, enum store_flag_op *op_r, bool *silent_r)
{
	const char *p = item;

	*op_r = STORE_FLAGS_SET;
	if (*p == '+') {
		*op_r = STORE_FLAGS_ADD;
		p++;
	} else if (*p == '-') {
		*op_r = STORE_FLAGS_REMOVE;
		p++;
	}
	if (strncasecmp(p, "FLAGS", 5) != 0)
		return false;
	p += 5;
	*silent_r = strcasecmp(p, ".SILENT") == 0;
	return *p == '\0' || *silent_r;
}

static bool
imap_uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uids[mid] == uid)
			return true;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Read back our changed messages (uids ascending) into the view; other
   sessions' changes are left to the sync after the command. */
static int
imap_store_refresh(struct imap_session *s, const uint32_t *uids, size_t n)
{
	struct imap_view *v = s->view;
	struct store_msg *msgs = NULL;
	uint32_t *exp = NULL;
	size_t nm = 0, ne = 0, i;
	long idx;

	if (store_msg_changes(s->env->store, v->mailbox_id, v->modseq, &msgs,
			      &nm, &exp, &ne) < 0)
		return -1;
	for (i = 0; i < nm; i++) {
		if (!imap_uid_in(uids, n, msgs[i].uid))
			continue;
		idx = imap_view_find_uid(v, msgs[i].uid);
		if (idx < 0 || v->msgs[idx].expunged)
			continue;
		/* keywords another session set may come with ours: FLAGS
		   first (RFC 9051 7.3.5), then the FETCH that shows them */
		imap_view_keywords_add(s, msgs[i].keywords);
		imap_view_set_flags(v, (size_t)idx, msgs[i].flags,
				    msgs[i].keywords);
		v->msgs[idx].modseq = msgs[i].modseq;
	}
	store_msgs_free(msgs, nm);
	free(exp);
	return 0;
}

/* OK [MODIFIED set] with the sequence numbers (UIDs for UID STORE) of
   the messages the condition kept from changing (RFC 7162 3.1.3). */
static void
imap_store_modified(struct imap_session *s, struct imap_cmd *cmd,
		    const uint32_t *modified, size_t nmod)
{
	uint32_t *nums = arena_alloc(cmd->arena, (nmod + 1) * sizeof(*nums));
	struct buf b;
	size_t i, k = 0;
	long idx;

	for (i = 0; i < nmod; i++) {
		idx = imap_view_find_uid(s->view, modified[i]);
		if (cmd->uid)
			nums[k++] = modified[i];
		else if (idx >= 0)
			nums[k++] = (uint32_t)idx + 1;
	}
	buf_init(&b, IMAP_COMMAND_MAX_BYTES);
	(void)imap_seqset_write(&b, nums, k);
	imap_cmd_reply(cmd, "OK [MODIFIED %s] Conditional STORE failed.",
		       buf_cstr(&b));
	buf_free(&b);
}

/* Untagged FETCH for each message of idx[] not in modified[]. */
static void
imap_store_report(struct imap_session *s, struct imap_cmd *cmd,
		  const size_t *idx, size_t n, const uint64_t *old_modseq,
		  const uint32_t *modified, size_t nmod, bool silent)
{
	struct imap_view *v = s->view;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct imap_msg *m = &v->msgs[idx[i]];

		if (m->expunged || imap_uid_in(modified, nmod, m->uid))
			continue;
		if (!silent)
			imap_view_send_flags(s, idx[i], cmd->uid);
		else if (s->condstore && m->modseq != old_modseq[i])
			imap_condstore_send_modseq(s, idx[i], cmd->uid);
	}
}

/* "STORE set (UNCHANGEDSINCE n) item flags": parse the modifier and
   drop it from the arguments, so the rest reads as without it. */
static int
imap_store_modifiers(struct imap_session *s, struct imap_cmd *cmd,
		     uint64_t *since_r, bool *cond_r)
{
	*cond_r = false;
	if (cmd->argc < 2 || cmd->args[1].type != IMAP_ARG_LIST)
		return 0;
	if (imap_condstore_store_modifiers(s, cmd, &cmd->args[1], since_r) <
	    0)
		return -1;
	*cond_r = true;
	cmd->args[1] = cmd->args[0];
	cmd->args++;
	cmd->argc--;
	return 0;
}

/* A STORE: its write goes to the commit thread (imap_session_commit),
   the untagged FETCH and the tagged reply follow once it is durable. */
struct imap_store_job {
	struct imap_flag_job fj; /* first */
	/* for the reply */
	const size_t *idx;
	size_t n;
	const uint64_t *old_modseq;
	bool silent;
};

/* On the commit thread (store_commit_run_fn), with its store. */
int
imap_flag_job_run(struct store *st, struct store_commit_job *job)
{
	struct imap_flag_job *j = (struct imap_flag_job *)job;

	imap_flag_job_clear(j); /* from a first run of a failed batch */
	return store_msg_set_flags(st, j->mailbox_id, j->uids, j->k, j->op,
				   j->flags, j->keywords, j->since, &j->modseq,
				   &j->modified, &j->nmod);
}

void
imap_flag_job_clear(struct imap_flag_job *j)
{
	free(j->modified);
	j->modified = NULL;
	j->nmod = 0;
}

/* cmd->cleanup: the session went away before the reply. */
static void
imap_store_cleanup(struct imap_cmd *cmd)
{
	struct imap_store_job *j = cmd->ctx;

	imap_flag_job_clear(&j->fj);
	cmd->cleanup = NULL;
}

/* The untagged responses and the tagged reply (cmd->cont once the write
   is durable, or at once when there was nothing to write). */
static enum imap_cmd_res
imap_store_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_store_job *j = cmd->ctx;

	if (j->fj.k > 0) {
		int r = j->fj.ic.job.result;

		if (r != STORE_OK || imap_store_refresh(s, j->fj.uids, j->fj.k) < 0) {
			log_error("imap", s->id, "store-flags-failed error=%s",
				  r != STORE_OK ? j->fj.ic.job.error :
						  store_last_error(
							  s->env->store));
			imap_store_cleanup(cmd);
			imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try "
					 "again later.");
			return IMAP_CMD_DONE;
		}
		imap_notify_publish(s, j->fj.mailbox_id);
		if (j->fj.op != STORE_FLAGS_REMOVE)
			imap_view_keywords_add(s, j->fj.keywords);
	}
	imap_store_report(s, cmd, j->idx, j->n, j->old_modseq, j->fj.modified,
			  j->fj.nmod, j->silent);
	if (j->fj.nmod > 0)
		imap_store_modified(s, cmd, j->fj.modified, j->fj.nmod);
	else
		imap_cmd_ok(cmd, "OK Store completed.");
	imap_store_cleanup(cmd);
	return IMAP_CMD_DONE;
}

/* The UIDs to change, and the old MODSEQ of each message of the set. */
static void
imap_store_targets(struct imap_session *s, struct imap_cmd *cmd,
		   struct imap_store_job *j)
{
	struct imap_view *v = s->view;
	size_t n = j->n > 0 ? j->n : 1;
	uint32_t *uids = arena_alloc(cmd->arena, n * sizeof(*uids));
	uint64_t *old = arena_alloc(cmd->arena, n * sizeof(*old));

	j->fj.k = 0;
	for (size_t i = 0; i < j->n; i++) {
		old[i] = v->msgs[j->idx[i]].modseq;
		if (!v->msgs[j->idx[i]].expunged)
			uids[j->fj.k++] = v->msgs[j->idx[i]].uid;
	}
	j->fj.uids = uids;
	j->old_modseq = old;
}

enum imap_cmd_res
imap_cmd_store(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_view *v = s->view;
	struct imap_store_job *j;
	const struct imap_arg *fl;
	const char *error = NULL, *keywords;
	enum store_flag_op op;
	size_t *idx, n, nfl;
	uint32_t flags;
	uint64_t since = 0;
	bool silent, cond;

	if (imap_store_modifiers(s, cmd, &since, &cond) < 0)
		return IMAP_CMD_DONE;
	if (cmd->argc < 3 || cmd->args[1].type != IMAP_ARG_ATOM ||
	    !imap_store_item(cmd->args[1].str, &op, &silent)) {
		imap_cmd_bad(cmd, "BAD Invalid STORE arguments.");
		return IMAP_CMD_DONE;
	}
	fl = &cmd->args[2];
	nfl = cmd->argc - 2;
	if (fl->type == IMAP_ARG_LIST) {
		if (cmd->argc != 3) {
			imap_cmd_bad(cmd, "BAD Invalid STORE arguments.");
			return IMAP_CMD_DONE;
		}
		nfl = fl->count;
		fl = fl->list;
	}
	if (imap_flags_parse(cmd->arena, fl, nfl, true, &flags, &keywords,
			     &error) < 0 ||
	    imap_set_to_indexes(s, &cmd->args[0], cmd->uid, &idx, &n,
				&error) < 0) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = error[0] == 'B';
		return IMAP_CMD_DONE;
	}
	if (v->readonly) {
		imap_cmd_no(cmd, "NO [READ-ONLY] Mailbox is read-only.");
		return IMAP_CMD_DONE;
	}
	j = arena_zalloc(cmd->arena, sizeof(*j));
	j->fj.mailbox_id = v->mailbox_id;
	j->fj.op = op;
	j->fj.flags = flags;
	j->fj.keywords = keywords;
	j->fj.since = since;
	j->idx = idx;
	j->n = n;
	j->silent = silent;
	imap_store_targets(s, cmd, j);
	cmd->ctx = j;
	cmd->cleanup = imap_store_cleanup;
	if (cond && since == 0 && j->fj.k > 0) {
		/* RFC 7162 3.1.3: UNCHANGEDSINCE 0 fails for every message
		   (each has a MODSEQ >= 1); the store reads 0 as "none" */
		j->fj.modified = xcalloc(j->fj.k, sizeof(*j->fj.modified));
		memcpy(j->fj.modified, j->fj.uids, j->fj.k * sizeof(*j->fj.uids));
		j->fj.nmod = j->fj.k;
		j->fj.k = 0;
	}
	if (j->fj.k == 0)
		return imap_store_reply(s, cmd);
	j->fj.ic.job.run = imap_flag_job_run;
	return imap_session_commit(s, cmd, &j->fj.ic, imap_store_reply);
}
