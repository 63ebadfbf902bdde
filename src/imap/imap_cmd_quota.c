/* QUOTA (RFC 9208): one quota root "" per account with the resources
   STORAGE (KiB) and MESSAGE; GETQUOTA and GETQUOTAROOT. SETQUOTA is not
   offered (plans are set by the administrator). */
#include <string.h>

#include "imap/imap_int.h"
#include "store/store.h"

/* Append "(STORAGE u l MESSAGE u l)"; 0 when there are no limits. */
static int
imap_quota_list(struct imap_session *s, struct buf *b)
{
	struct store_quota q;
	bool any = false;

	if (store_quota_get(s->env->store, s->account_id, &q) != STORE_OK)
		return -1;
	if (q.limit_bytes == 0 && q.limit_messages == 0)
		return 0;
	(void)buf_append_str(b, "* QUOTA \"\" (");
	if (q.limit_bytes != 0) {
		(void)buf_printf(b, "STORAGE %llu %llu",
				 (unsigned long long)(q.used_bytes / 1024),
				 (unsigned long long)(q.limit_bytes / 1024));
		any = true;
	}
	if (q.limit_messages != 0)
		(void)buf_printf(b, "%sMESSAGE %llu %llu", any ? " " : "",
				 (unsigned long long)q.used_messages,
				 (unsigned long long)q.limit_messages);
	(void)buf_append_str(b, ")\r\n");
	return 1;
}

enum imap_cmd_res
imap_cmd_getquota(struct imap_session *s, struct imap_cmd *cmd)
{
	struct buf b;
	int r;

	if (cmd->argc != 1 || !imap_arg_is_astring(&cmd->args[0])) {
		imap_cmd_bad(cmd, "BAD Invalid GETQUOTA arguments.");
		return IMAP_CMD_DONE;
	}
	if (cmd->args[0].len != 0) {
		imap_cmd_no(cmd, "NO [NONEXISTENT] Quota root doesn't exist.");
		return IMAP_CMD_DONE;
	}
	buf_init(&b, 1024);
	r = imap_quota_list(s, &b);
	if (r < 0)
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error.");
	else if (r == 0)
		imap_cmd_no(cmd, "NO [NONEXISTENT] No quota.");
	else {
		imap_session_write(s, b.data, b.len);
		imap_cmd_ok(cmd, "OK Getquota completed.");
	}
	buf_free(&b);
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_mailbox box;
	const char *name, *error;
	struct buf b, q;
	int r;

	if (cmd->argc != 1) {
		imap_cmd_bad(cmd, "BAD Invalid GETQUOTAROOT arguments.");
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
		imap_cmd_no(cmd, r == 0 ? "NO [NONEXISTENT] Mailbox doesn't "
					  "exist." :
					  "NO [UNAVAILABLE] Internal error.");
		return IMAP_CMD_DONE;
	}
	buf_init(&b, STORE_MAILBOX_NAME_MAX * 8 + 1024);
	buf_init(&q, 1024);
	(void)buf_append_str(&b, "* QUOTAROOT ");
	(void)imap_write_mailbox(s, &b, box.name);
	store_mailbox_clear(&box);
	r = imap_quota_list(s, &q);
	if (r > 0)
		(void)buf_append_str(&b, " \"\"");
	(void)buf_append_str(&b, "\r\n");
	if (r < 0) {
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error.");
	} else {
		imap_session_write(s, b.data, b.len);
		imap_session_write(s, q.data, q.len);
		imap_cmd_ok(cmd, "OK Getquotaroot completed.");
	}
	buf_free(&b);
	buf_free(&q);
	return IMAP_CMD_DONE;
}
