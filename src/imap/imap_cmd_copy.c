/* COPY (RFC 9051 6.4.7) and MOVE (RFC 6851, 9051 6.4.8) with COPYUID
   (RFC 4315 UIDPLUS). Quota is checked by the store for the whole set:
   NO [OVERQUOTA] and nothing is copied. MOVE reports COPYUID in an
   untagged OK, then EXPUNGE for each moved message (RFC 6851 4.3). */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

static void
imap_copy_error(struct imap_session *s, struct imap_cmd *cmd, int r)
{
	if (r == STORE_OVERQUOTA)
		imap_cmd_no(cmd, "NO [OVERQUOTA] Quota exceeded.");
	else if (r == STORE_NOSPACE)
		imap_cmd_no(cmd, "NO [OVERQUOTA] Not enough disk space.");
	else if (r == STORE_NOTFOUND)
		imap_cmd_no(cmd, "NO [TRYCREATE] Mailbox doesn't exist.");
	else {
		log_error("imap", s->id, "copy-failed code=%d error=%s", r,
			  store_last_error(s->env->store));
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

static enum imap_cmd_res
imap_copy(struct imap_session *s, struct imap_cmd *cmd, bool move)
{
	struct imap_view *v = s->view;
	struct store_mailbox dst;
	const char *name, *error = NULL, *copyuid;
	size_t *idx, n, i, k = 0;
	uint32_t *uids, *new_uids = NULL;
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
		imap_copy_error(s, cmd, r == 0 ? STORE_NOTFOUND : r);
		return IMAP_CMD_DONE;
	}
	uids = arena_alloc(cmd->arena, (n > 0 ? n : 1) * sizeof(*uids));
	for (i = 0; i < n; i++) {
		if (!v->msgs[idx[i]].expunged)
			uids[k++] = v->msgs[idx[i]].uid;
	}
	if (k == 0) {
		store_mailbox_clear(&dst);
		imap_cmd_ok(cmd, move ? "OK No messages found." :
					"OK No messages found.");
		return IMAP_CMD_DONE;
	}
	r = store_msg_copy(s->env->store, v->mailbox_id, uids, k, dst.id, move,
			   &new_uids);
	if (r != STORE_OK) {
		store_mailbox_clear(&dst);
		imap_copy_error(s, cmd, r);
		return IMAP_CMD_DONE;
	}
	copyuid = imap_copyuid(cmd->arena, dst.uidvalidity, uids, new_uids, k);
	imap_notify_publish(s, dst.id);
	store_mailbox_clear(&dst);
	free(new_uids);
	if (move) {
		imap_notify_publish(s, v->mailbox_id);
		if (copyuid != NULL)
			imap_session_printf(s, "* OK [COPYUID %s] Moved UIDs.",
					    copyuid);
		imap_session_expunged(s, uids, k);
		imap_cmd_ok(cmd, "OK Move completed.");
	} else if (copyuid != NULL) {
		imap_cmd_reply(cmd, "OK [COPYUID %s] Copy completed.", copyuid);
	} else {
		imap_cmd_ok(cmd, "OK Copy completed.");
	}
	return IMAP_CMD_DONE;
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
