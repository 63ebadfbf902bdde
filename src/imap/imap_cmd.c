/* The command table: the index of the IMAP protocol (RFC 9051 6, RFC 3501
   6 and the extensions listed in imap_session_capability()). Each row:
   name, states it is valid in, sync flags, handler. UID (RFC 9051 6.4.9)
   re-dispatches to FETCH/STORE/SEARCH/COPY/MOVE/EXPUNGE/SORT/THREAD
   with uid set. */
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "imap/imap_sort.h"

#define A IMAP_STATES_ANY
#define AU IMAP_STATES_AUTHED
#define N IMAP_STATE_NOAUTH
#define SEL IMAP_STATE_SELECTED
#define SEQ IMAP_CMDF_USES_SEQS
#define NS IMAP_CMDF_NO_SYNC

static const struct imap_cmd_def imap_cmds[] = {
	{ "APPEND", AU, 0, imap_cmd_append },
	{ "AUTHENTICATE", N, NS, imap_cmd_authenticate },
	{ "CAPABILITY", A, 0, imap_cmd_capability },
	{ "CHECK", SEL, 0, imap_cmd_check },
	{ "CLOSE", SEL, NS, imap_cmd_close },
	{ "COMPRESS", AU, NS, imap_cmd_compress },
	{ "COPY", SEL, SEQ, imap_cmd_copy },
	{ "CREATE", AU, 0, imap_cmd_create },
	{ "DELETE", AU, 0, imap_cmd_delete },
	{ "ENABLE", AU, 0, imap_cmd_enable },
	{ "EXAMINE", AU, NS, imap_cmd_examine },
	{ "EXPUNGE", SEL, 0, imap_cmd_expunge },
	{ "FETCH", SEL, SEQ, imap_cmd_fetch },
	{ "GETQUOTA", AU, 0, imap_cmd_getquota },
	{ "GETQUOTAROOT", AU, 0, imap_cmd_getquotaroot },
	{ "ID", A, 0, imap_cmd_id },
	{ "IDLE", AU, 0, imap_cmd_idle },
	{ "LIST", AU, 0, imap_cmd_list },
	{ "LOGIN", N, NS, imap_cmd_login },
	{ "LOGOUT", A, NS, imap_cmd_logout },
	{ "LSUB", AU, 0, imap_cmd_lsub },
	{ "MOVE", SEL, SEQ, imap_cmd_move },
	{ "NAMESPACE", AU, 0, imap_cmd_namespace },
	{ "NOOP", A, 0, imap_cmd_noop },
	{ "NOTIFY", AU, 0, imap_cmd_notify },
	{ "RENAME", AU, 0, imap_cmd_rename },
	{ "SEARCH", SEL, SEQ, imap_cmd_search },
	{ "SELECT", AU, NS, imap_cmd_select },
	{ "SORT", SEL, SEQ, imap_cmd_sort },
	{ "STARTTLS", N, NS, imap_cmd_starttls },
	{ "STATUS", AU, 0, imap_cmd_status },
	{ "STORE", SEL, SEQ, imap_cmd_store },
	{ "SUBSCRIBE", AU, 0, imap_cmd_subscribe },
	{ "THREAD", SEL, SEQ, imap_cmd_thread },
	{ "UID", SEL, SEQ, imap_cmd_uid },
	{ "UNSELECT", SEL, NS, imap_cmd_unselect },
	{ "UNSUBSCRIBE", AU, 0, imap_cmd_unsubscribe },
};

const struct imap_cmd_def *
imap_cmd_find(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < sizeof(imap_cmds) / sizeof(imap_cmds[0]); i++) {
		if (strcasecmp(imap_cmds[i].name, name) == 0)
			return &imap_cmds[i];
	}
	return NULL;
}

enum imap_cmd_res
imap_cmd_uid(struct imap_session *s, struct imap_cmd *cmd)
{
	static const char *const subs[] = { "FETCH", "STORE",  "SEARCH",
					    "COPY",  "MOVE",   "EXPUNGE",
					    "SORT",  "THREAD" };
	const struct imap_cmd_def *def = NULL;
	size_t i;

	if (cmd->argc < 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_cmd_bad(cmd, "BAD Missing UID command.");
		return IMAP_CMD_DONE;
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcasecmp(cmd->args[0].str, subs[i]) == 0)
			def = imap_cmd_find(subs[i]);
	}
	if (def == NULL) {
		imap_cmd_bad(cmd, "BAD Unknown UID command.");
		return IMAP_CMD_DONE;
	}
	cmd->def = def;
	cmd->name = def->name;
	cmd->uid = true;
	cmd->args++;
	cmd->argc--;
	return def->run(s, cmd);
}
