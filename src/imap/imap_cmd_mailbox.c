/* Mailbox management: CREATE (RFC 9051 6.3.4, with USE from RFC 6154
   CREATE-SPECIAL-USE), DELETE (6.3.5), RENAME (6.3.6, INBOX moves its
   messages), SUBSCRIBE / UNSUBSCRIBE (6.3.7, 6.3.8) and STATUS (6.3.11,
   SIZE from RFC 8438, RECENT always 0: tern keeps no \Recent, as RFC
   9051 allows; MAILBOXID from RFC 8474 4). Response codes from RFC
   5530. CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE write on the
   worker's commit thread (imap_session_commit), like STORE: the reply
   follows the durable COMMIT and the event loop never waits for the
   disk. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/log.h"
#include "store/store.h"

static const char *const imap_special_uses[] = {
	"\\All", "\\Archive", "\\Drafts", "\\Flagged",
	"\\Junk", "\\Sent", "\\Trash",
};

static const char *
imap_mailbox_arg(struct imap_session *s, struct imap_cmd *cmd, size_t i)
{
	const char *error, *name;

	name = imap_mailbox_from_arg(s, &cmd->args[i], &error);
	if (name == NULL) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = error[0] == 'B';
	}
	return name;
}

static void
imap_store_error(struct imap_session *s, struct imap_cmd *cmd, int r,
		 const char *error)
{
	switch (r) {
	case STORE_NOTFOUND:
		imap_cmd_no(cmd, "NO [NONEXISTENT] Mailbox doesn't exist.");
		break;
	case STORE_EXISTS:
		imap_cmd_no(cmd, "NO [ALREADYEXISTS] Mailbox already exists.");
		break;
	case STORE_INVALID:
		imap_cmd_reply(cmd, "NO [CANNOT] %s",
			       error != NULL && error[0] != '\0'
				       ? error
				       : "Invalid mailbox name.");
		break;
	case STORE_OVERQUOTA:
		imap_cmd_no(cmd, "NO [OVERQUOTA] Quota exceeded.");
		break;
	case STORE_NOSPACE:
		imap_cmd_no(cmd, "NO [OVERQUOTA] Not enough disk space.");
		break;
	default:
		log_error("imap", s->id, "store-error code=%d error=%s", r,
			  error != NULL ? error : "-");
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		break;
	}
}

/* A change of the mailbox list, run on the commit thread. */
enum imap_mbox_op {
	IMAP_MBOX_CREATE,
	IMAP_MBOX_DELETE,
	IMAP_MBOX_RENAME,
	IMAP_MBOX_SUBSCRIBE,
	IMAP_MBOX_UNSUBSCRIBE,
};

struct imap_mbox_job {
	struct imap_commit ic; /* first */
	enum imap_mbox_op op;
	int64_t account_id;
	const char *name, *to, *use; /* in the command's arena */
	int64_t id; /* out: CREATE's new mailbox */
};

/* On the commit thread (store_commit_run_fn), with its store; an error
   text is in job->error (store_commit_job_fail). */
static int
imap_mbox_run(struct store *st, struct store_commit_job *job)
{
	struct imap_mbox_job *j = (struct imap_mbox_job *)job;
	const char *error = NULL;
	int r = STORE_INVALID;

	switch (j->op) {
	case IMAP_MBOX_CREATE:
		r = store_mailbox_create(st, j->account_id, j->name, j->use,
					 &j->id, &error);
		break;
	case IMAP_MBOX_DELETE:
		r = store_mailbox_delete(st, j->account_id, j->name);
		break;
	case IMAP_MBOX_RENAME:
		r = store_mailbox_rename(st, j->account_id, j->name, j->to,
					 &error);
		break;
	case IMAP_MBOX_SUBSCRIBE:
	case IMAP_MBOX_UNSUBSCRIBE:
		r = store_mailbox_subscribe(st, j->account_id, j->name,
					    j->op == IMAP_MBOX_SUBSCRIBE);
		/* unsubscribing what is not subscribed is fine */
		if (r == STORE_NOTFOUND && j->op == IMAP_MBOX_UNSUBSCRIBE)
			r = STORE_OK;
		break;
	}
	return r;
}

static enum imap_cmd_res
imap_mbox_submit(struct imap_session *s, struct imap_cmd *cmd,
		 enum imap_mbox_op op, const char *name, const char *to,
		 const char *use, imap_cmd_fn *reply)
{
	struct imap_mbox_job *j = arena_zalloc(cmd->arena, sizeof(*j));

	j->op = op;
	j->account_id = s->account_id;
	j->name = name;
	j->to = to;
	j->use = use;
	j->ic.job.run = imap_mbox_run;
	cmd->ctx = j;
	return imap_session_commit(s, cmd, &j->ic, reply);
}

/* The job's result, answered as an error when it failed: 0 when it did
   not. */
static int
imap_mbox_failed(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_mbox_job *j = cmd->ctx;

	if (j->ic.job.result == STORE_OK)
		return 0;
	imap_store_error(s, cmd, j->ic.job.result, j->ic.job.error);
	return -1;
}

static bool
imap_create_use(struct imap_cmd *cmd, const struct imap_arg *opt,
		const char **use_r)
{
	size_t i, j;

	/* (USE (\Sent)) */
	if (opt->type != IMAP_ARG_LIST || opt->count != 2 ||
	    !imap_arg_is_atom(&opt->list[0], "USE") ||
	    opt->list[1].type != IMAP_ARG_LIST ||
	    opt->list[1].count > 1) {
		imap_cmd_bad(cmd, "BAD Invalid CREATE parameters.");
		return false;
	}
	for (i = 0; i < opt->list[1].count; i++) {
		const struct imap_arg *u = &opt->list[1].list[i];

		for (j = 0; j < sizeof(imap_special_uses) /
					sizeof(imap_special_uses[0]);
		     j++) {
			if (u->type == IMAP_ARG_ATOM &&
			    strcasecmp(u->str, imap_special_uses[j]) == 0)
				*use_r = imap_special_uses[j];
		}
		if (*use_r == NULL) {
			imap_cmd_no(cmd, "NO [USEATTR] Unsupported special-use "
					 "attribute.");
			return false;
		}
	}
	return true;
}

static enum imap_cmd_res
imap_create_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_mbox_job *j = cmd->ctx;
	char oid[IMAP_OBJECTID_MAX_BYTES];

	if (imap_mbox_failed(s, cmd) < 0)
		return IMAP_CMD_DONE;
	imap_notify_publish(s, 0);
	imap_objectid_mailbox(oid, sizeof(oid), j->id);
	/* RFC 8474 4.1 */
	imap_cmd_reply(cmd, "OK [MAILBOXID (%s)] Create completed.", oid);
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_create(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *name, *use = NULL, *error = NULL;
	struct imap_arg tmp;

	if (cmd->argc < 1 || cmd->argc > 2 ||
	    !imap_arg_is_astring(&cmd->args[0])) {
		imap_cmd_bad(cmd, "BAD Invalid CREATE arguments.");
		return IMAP_CMD_DONE;
	}
	if (cmd->argc == 2 && !imap_create_use(cmd, &cmd->args[1], &use))
		return IMAP_CMD_DONE;
	/* RFC 9051 6.3.4: a trailing delimiter only declares intent */
	tmp = cmd->args[0];
	if (tmp.len > 1 && tmp.str[tmp.len - 1] == '/')
		tmp.str = arena_strndup(cmd->arena, tmp.str, --tmp.len);
	name = imap_mailbox_from_arg(s, &tmp, &error);
	if (name == NULL) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = error[0] == 'B';
		return IMAP_CMD_DONE;
	}
	return imap_mbox_submit(s, cmd, IMAP_MBOX_CREATE, name, NULL, use,
				imap_create_reply);
}

static enum imap_cmd_res
imap_delete_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_mbox_job *j = cmd->ctx;

	if (imap_mbox_failed(s, cmd) < 0)
		return IMAP_CMD_DONE;
	if (s->view != NULL && strcmp(s->view->name, j->name) == 0) {
		imap_session_unselect(s);
		if (s->rev2)
			imap_session_printf(s, "* OK [CLOSED] Mailbox "
					    "deleted.");
	}
	imap_notify_publish(s, 0);
	imap_cmd_ok(cmd, "OK Delete completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_delete(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *name;

	if (cmd->argc != 1) {
		imap_cmd_bad(cmd, "BAD Invalid DELETE arguments.");
		return IMAP_CMD_DONE;
	}
	if ((name = imap_mailbox_arg(s, cmd, 0)) == NULL)
		return IMAP_CMD_DONE;
	if (strcmp(name, "INBOX") == 0) {
		imap_cmd_no(cmd, "NO [CANNOT] INBOX can't be deleted.");
		return IMAP_CMD_DONE;
	}
	return imap_mbox_submit(s, cmd, IMAP_MBOX_DELETE, name, NULL, NULL,
				imap_delete_reply);
}

static enum imap_cmd_res
imap_rename_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	if (imap_mbox_failed(s, cmd) < 0)
		return IMAP_CMD_DONE;
	imap_notify_publish(s, 0);
	imap_cmd_ok(cmd, "OK Rename completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_rename(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *from, *to;

	if (cmd->argc != 2) {
		imap_cmd_bad(cmd, "BAD Invalid RENAME arguments.");
		return IMAP_CMD_DONE;
	}
	if ((from = imap_mailbox_arg(s, cmd, 0)) == NULL ||
	    (to = imap_mailbox_arg(s, cmd, 1)) == NULL)
		return IMAP_CMD_DONE;
	if (strcmp(to, "INBOX") == 0) {
		imap_cmd_no(cmd, "NO [ALREADYEXISTS] INBOX already exists.");
		return IMAP_CMD_DONE;
	}
	return imap_mbox_submit(s, cmd, IMAP_MBOX_RENAME, from, to, NULL,
				imap_rename_reply);
}

static enum imap_cmd_res
imap_subscribe_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_mbox_job *j = cmd->ctx;

	if (imap_mbox_failed(s, cmd) < 0)
		return IMAP_CMD_DONE;
	imap_cmd_ok(cmd, j->op == IMAP_MBOX_SUBSCRIBE
				 ? "OK Subscribe completed."
				 : "OK Unsubscribe completed.");
	return IMAP_CMD_DONE;
}

static enum imap_cmd_res
imap_subscribe(struct imap_session *s, struct imap_cmd *cmd, bool on)
{
	const char *name;

	if (cmd->argc != 1) {
		imap_cmd_bad(cmd, "BAD Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	if ((name = imap_mailbox_arg(s, cmd, 0)) == NULL)
		return IMAP_CMD_DONE;
	return imap_mbox_submit(s, cmd,
				on ? IMAP_MBOX_SUBSCRIBE : IMAP_MBOX_UNSUBSCRIBE,
				name, NULL, NULL, imap_subscribe_reply);
}

enum imap_cmd_res
imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *cmd)
{
	return imap_subscribe(s, cmd, true);
}

enum imap_cmd_res
imap_cmd_unsubscribe(struct imap_session *s, struct imap_cmd *cmd)
{
	return imap_subscribe(s, cmd, false);
}

/* ---- STATUS ---- */

static const struct {
	const char *name;
	unsigned item;
} imap_status_names[] = {
	{ "MESSAGES", IMAP_STATUS_MESSAGES },
	{ "UIDNEXT", IMAP_STATUS_UIDNEXT },
	{ "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY },
	{ "UNSEEN", IMAP_STATUS_UNSEEN },
	{ "DELETED", IMAP_STATUS_DELETED },
	{ "SIZE", IMAP_STATUS_SIZE },
	{ "RECENT", IMAP_STATUS_RECENT },
	{ "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
	{ "APPENDLIMIT", IMAP_STATUS_APPENDLIMIT },
	{ "MAILBOXID", IMAP_STATUS_MAILBOXID },
};

int
imap_status_items_parse(const struct imap_arg *list, unsigned *items_r)
{
	size_t i, j;

	*items_r = 0;
	if (list->type != IMAP_ARG_LIST || list->count == 0)
		return -1;
	for (i = 0; i < list->count; i++) {
		unsigned found = 0;

		for (j = 0; j < sizeof(imap_status_names) /
					sizeof(imap_status_names[0]);
		     j++) {
			if (imap_arg_is_atom(&list->list[i],
					     imap_status_names[j].name))
				found = imap_status_names[j].item;
		}
		if (found == 0)
			return -1;
		*items_r |= found;
	}
	return 0;
}

int
imap_status_write(struct imap_session *s, struct buf *out,
		  int64_t mailbox_id, unsigned items)
{
	struct store_mailbox_status st;
	bool first = true;
	int r;

	r = store_mailbox_status(s->env->store, mailbox_id, &st);
	if (r != STORE_OK)
		return r;
#define IMAP_STATUS_ITEM(flag, fmt, val)                                  \
	do {                                                              \
		if (items & (flag)) {                                     \
			(void)buf_printf(out, first ? "(" fmt : " " fmt,  \
					 val);                            \
			first = false;                                    \
		}                                                         \
	} while (0)
	IMAP_STATUS_ITEM(IMAP_STATUS_MESSAGES, "MESSAGES %u", st.messages);
	IMAP_STATUS_ITEM(IMAP_STATUS_RECENT, "RECENT %u", st.recent);
	IMAP_STATUS_ITEM(IMAP_STATUS_UIDNEXT, "UIDNEXT %u", st.uidnext);
	IMAP_STATUS_ITEM(IMAP_STATUS_UIDVALIDITY, "UIDVALIDITY %u",
			 st.uidvalidity);
	IMAP_STATUS_ITEM(IMAP_STATUS_UNSEEN, "UNSEEN %u", st.unseen);
	IMAP_STATUS_ITEM(IMAP_STATUS_DELETED, "DELETED %u", st.deleted);
	IMAP_STATUS_ITEM(IMAP_STATUS_SIZE, "SIZE %llu",
			 (unsigned long long)st.size);
	IMAP_STATUS_ITEM(IMAP_STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
			 (unsigned long long)st.highestmodseq);
	IMAP_STATUS_ITEM(IMAP_STATUS_APPENDLIMIT, "APPENDLIMIT %llu",
			 (unsigned long long)imap_session_append_limit(s));
	if (items & IMAP_STATUS_MAILBOXID) {
		char id[IMAP_OBJECTID_MAX_BYTES];

		imap_objectid_mailbox(id, sizeof(id), mailbox_id);
		IMAP_STATUS_ITEM(IMAP_STATUS_MAILBOXID, "MAILBOXID (%s)", id);
	}
	/* RFC 7162 3.1: STATUS HIGHESTMODSEQ enables CONDSTORE */
	if (items & IMAP_STATUS_HIGHESTMODSEQ)
		imap_condstore_enable(s);
#undef IMAP_STATUS_ITEM
	(void)buf_append_byte(out, ')');
	return 0;
}

enum imap_cmd_res
imap_cmd_status(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_mailbox box;
	const char *name;
	unsigned items;
	struct buf b;
	int r;

	if (cmd->argc != 2 ||
	    imap_status_items_parse(&cmd->args[1], &items) < 0) {
		imap_cmd_bad(cmd, "BAD Invalid STATUS arguments.");
		return IMAP_CMD_DONE;
	}
	if ((name = imap_mailbox_arg(s, cmd, 0)) == NULL)
		return IMAP_CMD_DONE;
	r = store_mailbox_get(s->env->store, s->account_id, name, &box);
	if (r != 1) {
		imap_store_error(s, cmd, r == 0 ? STORE_NOTFOUND : r, NULL);
		return IMAP_CMD_DONE;
	}
	buf_init(&b, STORE_MAILBOX_NAME_MAX * 8 + 1024);
	(void)buf_append_str(&b, "* STATUS ");
	(void)imap_write_mailbox(s, &b, box.name);
	(void)buf_append_byte(&b, ' ');
	r = imap_status_write(s, &b, box.id, items);
	store_mailbox_clear(&box);
	if (r != 0) {
		buf_free(&b);
		imap_store_error(s, cmd, r, NULL);
		return IMAP_CMD_DONE;
	}
	(void)buf_append_str(&b, "\r\n");
	imap_session_write(s, b.data, b.len);
	buf_free(&b);
	imap_cmd_ok(cmd, "OK Status completed.");
	return IMAP_CMD_DONE;
}
