/* STORE and UID STORE (RFC 9051 6.4.6): FLAGS / +FLAGS / -FLAGS with
   .SILENT, system flags and keywords. The untagged FETCH responses carry
   the flags as the store has them after the change; UID STORE adds the
   UID (RFC 9051 6.4.9). */
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
		imap_view_set_flags(v, (size_t)idx, msgs[i].flags,
				    msgs[i].keywords);
	}
	store_msgs_free(msgs, nm);
	free(exp);
	return 0;
}

enum imap_cmd_res
imap_cmd_store(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_view *v = s->view;
	const struct imap_arg *fl;
	const char *error = NULL, *keywords;
	enum store_flag_op op;
	size_t *idx, n, i, nfl, k = 0;
	uint32_t flags, *uids;
	uint64_t modseq;
	uint32_t *modified = NULL;
	size_t nmod = 0;
	bool silent;
	int r;

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
	uids = arena_alloc(cmd->arena, (n > 0 ? n : 1) * sizeof(*uids));
	for (i = 0; i < n; i++) {
		if (!v->msgs[idx[i]].expunged)
			uids[k++] = v->msgs[idx[i]].uid;
	}
	if (k > 0) {
		r = store_msg_set_flags(s->env->store, v->mailbox_id, uids, k,
					op, flags, keywords, 0, &modseq,
					&modified, &nmod);
		free(modified);
		if (r != STORE_OK || imap_store_refresh(s, uids, k) < 0) {
			log_error("imap", s->id, "store-flags-failed error=%s",
				  store_last_error(s->env->store));
			imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try "
					 "again later.");
			return IMAP_CMD_DONE;
		}
		imap_notify_publish(s, v->mailbox_id);
		if (op != STORE_FLAGS_REMOVE)
			imap_view_keywords_add(s, keywords);
	}
	for (i = 0; i < n && !silent; i++) {
		if (!v->msgs[idx[i]].expunged)
			imap_view_send_flags(s, idx[i], cmd->uid);
	}
	imap_cmd_ok(cmd, "OK Store completed.");
	return IMAP_CMD_DONE;
}
