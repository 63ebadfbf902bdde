/* ternctl: the admin command line of tern. The table below is the index:
   each row is a "noun verb ARGS" pattern, its handler and its help line
   (OpenSMTPD smtpctl, Dovecot doveadm). ternctl opens its own store on
   the data directory, so it is safe to run while ternd runs: SQLite (WAL)
   serialises writers between the processes.
   Security: run as root on a data directory owned by another user (the
   tern user), ternctl first changes into it, then switches to that user,
   so that files it creates stay usable by ternd and the directories
   above need not be searchable by that user; the store is then reached
   as ".". Passwords never come from argv. */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cfg.h"
#include "lib/log.h"
#include "store/store.h"
#include "ternctl/ternctl.h"

#define S TERNCTL_F_STORE
#define SC (TERNCTL_F_STORE | TERNCTL_F_CREATE)

static const struct ternctl_cmd ternctl_commands[] = {
	{ "domain add DOMAIN", SC, ternctl_domain_add,
	  "Receive mail for DOMAIN (creates the data directory if needed)." },
	{ "domain del DOMAIN", S, ternctl_domain_del,
	  "Stop serving DOMAIN; it must have no accounts or aliases left." },
	{ "domain list", S, ternctl_domain_list,
	  "List the domains, one per line." },
	{ "domain save-sent DOMAIN VALUE", S, ternctl_domain_save_sent,
	  "Copy mail submitted from DOMAIN into the sender's Sent folder: "
	  "yes, no, or default (the config's smtp_save_sent)." },
	{ "account add ADDRESS [--plan P] [--password-stdin]", SC,
	  ternctl_account_add,
	  "Create an account (plan " TERNCTL_PLAN_DEFAULT " unless --plan); "
	  "the password is prompted twice, or read as one line from stdin." },
	{ "account passwd ADDRESS [--password-stdin]", S,
	  ternctl_account_passwd,
	  "Set a new password (prompted, or one line from stdin)." },
	{ "account plan ADDRESS PLAN", S, ternctl_account_plan,
	  "Move the account to another plan." },
	{ "account del ADDRESS", S, ternctl_account_del,
	  "Delete the account with all its mail and the aliases to it." },
	{ "account list [DOMAIN]", S, ternctl_account_list,
	  "List accounts (of one domain) with plan and storage used." },
	{ "account show ADDRESS", S, ternctl_account_show,
	  "Show plan, storage and messages against the quota, mail sent in "
	  "the last hour, aliases and mailboxes." },
	{ "account import ADDRESS --hash-stdin [--plan P]", SC,
	  ternctl_account_import,
	  "Create an account from an existing password hash read from stdin "
	  "(argon2, $6$, $5$, $y$, $2b$ crypt, optionally {SCHEME}-prefixed "
	  "as in Dovecot)." },
	{ "alias add ADDRESS TARGET...", S, ternctl_alias_add,
	  "Forward ADDRESS (or @domain, the catch-all) to the targets." },
	{ "alias del ADDRESS", S, ternctl_alias_del, "Delete an alias." },
	{ "alias list", S, ternctl_alias_list,
	  "List aliases as 'address -> target, ...'." },
	{ "plan list", S, ternctl_plan_list,
	  "List plans: quota, messages, sends per hour, message size and "
	  "recipient limits." },
	{ "queue list", S, ternctl_queue_list,
	  "List the outbound queue." },
	{ "queue show ID", S, ternctl_queue_show,
	  "Show one queued message with each recipient's status." },
	{ "queue delete ID", S, ternctl_queue_delete,
	  "Remove a message from the queue without sending a bounce." },
	{ "queue retry ID", S, ternctl_queue_retry,
	  "Make the next delivery attempt of one message due now." },
	{ "queue flush", S, ternctl_queue_flush,
	  "Make the next delivery attempt of every queued message due now." },
	{ "dkim generate DOMAIN [--selector S] [--algorithm rsa|ed25519]", S,
	  ternctl_dkim_generate,
	  "Make a DKIM signing key (2048-bit RSA by default) that becomes "
	  "the domain's active key, and print the DNS TXT record to "
	  "publish." },
	{ "dkim show DOMAIN", S, ternctl_dkim_show,
	  "Show the domain's active DKIM key and its DNS TXT record." },
	{ "dkim list", S, ternctl_dkim_list,
	  "List every DKIM key: domain, selector, algorithm, created, "
	  "active." },
	{ "status", S, ternctl_status_show,
	  "Domains, accounts, messages, storage, queue, and whether ternd "
	  "runs." },
	{ "config show [--non-default]", TERNCTL_F_CONFIG, ternctl_config_show,
	  "Print the configuration (only changed keys with --non-default)." },
	{ "config check", 0, ternctl_config_check,
	  "Parse the configuration file and report the first error." },
	{ NULL, 0, NULL, NULL },
};

#undef S
#undef SC

static int
ternctl_main_load_config(struct ternctl *t)
{
	char err[1024];

	if (t->cfg != NULL)
		return TERNCTL_EXIT_OK;
	t->cfg = cfg_load(t->config_path, err, sizeof(err));
	if (t->cfg == NULL)
		return ternctl_util_fail("%s%s", err, t->config_given ? "" :
					 " (pass -c CONFIG, or -d DATADIR to "
					 "use a data directory directly)");
	return TERNCTL_EXIT_OK;
}

/* Run as the owner of the data directory when root and it is not root's:
   SQLite's -wal/-shm files created by root would lock ternd out. */
static int
ternctl_main_become_owner(const struct stat *st)
{
	if (geteuid() != 0 || st->st_uid == 0)
		return TERNCTL_EXIT_OK;
	if (setgroups(0, NULL) < 0 || setgid(st->st_gid) < 0 ||
	    setuid(st->st_uid) < 0)
		return ternctl_util_fail("cannot switch to the owner (uid %u) "
					 "of the data directory: %s",
					 (unsigned int)st->st_uid,
					 strerror(errno));
	return TERNCTL_EXIT_OK;
}

static int
ternctl_main_datadir(struct ternctl *t, unsigned int flags)
{
	struct stat st;

	if (stat(t->datadir, &st) < 0 && errno == ENOENT &&
	    (flags & TERNCTL_F_CREATE) != 0) {
		if (mkdir(t->datadir, 0700) < 0)
			return ternctl_util_fail("cannot create the data "
						 "directory %s: %s", t->datadir,
						 strerror(errno));
		if (stat(t->datadir, &st) < 0)
			return ternctl_util_fail("%s: %s", t->datadir,
						 strerror(errno));
	} else if (stat(t->datadir, &st) < 0) {
		return ternctl_util_fail("data directory %s: %s (start with "
					 "'ternctl -d %s domain add DOMAIN' "
					 "to create one)", t->datadir,
					 strerror(errno), t->datadir);
	}
	if (!S_ISDIR(st.st_mode))
		return ternctl_util_fail("%s is not a directory", t->datadir);
	/* Before the switch: the owner may not reach it from here. */
	if (chdir(t->datadir) < 0)
		return ternctl_util_fail("cannot enter the data directory "
					 "%s: %s", t->datadir, strerror(errno));
	return ternctl_main_become_owner(&st);
}

static int
ternctl_main_open(struct ternctl *t, unsigned int flags)
{
	const char *error = NULL;
	int ret;

	if (t->datadir == NULL) {
		ret = ternctl_main_load_config(t);
		if (ret != TERNCTL_EXIT_OK)
			return ret;
		t->datadir = t->cfg->data_dir;
		if (t->datadir == NULL)
			return ternctl_util_fail("%s sets no data_dir",
						 t->config_path);
	}
	ret = ternctl_main_datadir(t, flags);
	if (ret != TERNCTL_EXIT_OK)
		return ret;
	t->store = store_open(".", &error); /* cwd: ternctl_main_datadir */
	if (t->store == NULL)
		return ternctl_util_fail("cannot open the store in %s: %s",
					 t->datadir,
					 error != NULL ? error : "unknown error");
	if (t->cfg != NULL)
		return ternctl_plan_sync(t);
	return TERNCTL_EXIT_OK;
}

static int
ternctl_main_unknown(int argc, char **argv)
{
	if (ternctl_cmd_noun_known(ternctl_commands, argv[0])) {
		if (argc == 1)
			fprintf(stderr, "ternctl: '%s' needs a command\n",
				argv[0]);
		else
			fprintf(stderr, "ternctl: unknown command '%s %s'\n",
				argv[0], argv[1]);
		ternctl_cmd_help(ternctl_commands, argv[0], true);
		return TERNCTL_EXIT_USAGE;
	}
	return ternctl_util_usage("unknown command '%s': run 'ternctl help' "
				  "for the list", argv[0]);
}

static int
ternctl_main_help(int argc, char **argv)
{
	if (argc > 1 && !ternctl_cmd_noun_known(ternctl_commands, argv[1]))
		return ternctl_util_usage("no commands for '%s': run "
					  "'ternctl help' for the list",
					  argv[1]);
	ternctl_cmd_help(ternctl_commands, argc > 1 ? argv[1] : NULL, false);
	return TERNCTL_EXIT_OK;
}

static int
ternctl_main_run(struct ternctl *t, int argc, char **argv)
{
	const struct ternctl_cmd *cmd;
	struct ternctl_args args;
	int ret;

	if (strcmp(argv[0], "help") == 0)
		return ternctl_main_help(argc, argv);
	cmd = ternctl_cmd_find(ternctl_commands, argc, argv);
	if (cmd == NULL)
		return ternctl_main_unknown(argc, argv);
	ret = ternctl_cmd_parse(cmd, argc, argv, &args);
	if (ret == TERNCTL_EXIT_OK && (cmd->flags & TERNCTL_F_CONFIG) != 0)
		ret = ternctl_main_load_config(t);
	if (ret == TERNCTL_EXIT_OK && (cmd->flags & TERNCTL_F_STORE) != 0)
		ret = ternctl_main_open(t, cmd->flags);
	if (ret == TERNCTL_EXIT_OK)
		ret = cmd->run(t, &args);
	ternctl_cmd_args_free(&args);
	return ret;
}

/* Global options come before the command (getopt stops at the first
   non-option, "+"). */
static int
ternctl_main_options(struct ternctl *t, int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "+c:d:h")) != -1) {
		switch (c) {
		case 'c':
			t->config_path = optarg;
			t->config_given = true;
			break;
		case 'd':
			t->datadir = optarg;
			break;
		case 'h':
			ternctl_cmd_help(ternctl_commands, NULL, false);
			exit(TERNCTL_EXIT_OK);
		default:
			fprintf(stderr, "usage: ternctl [-c CONFIG | -d "
					"DATADIR] COMMAND (see 'ternctl "
					"help')\n");
			return TERNCTL_EXIT_USAGE;
		}
	}
	if (t->config_given && t->datadir != NULL)
		return ternctl_util_usage("use either -c CONFIG or -d DATADIR,"
					  " not both");
	return TERNCTL_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct ternctl t = { .config_path = TERNCTL_CONFIG_DEFAULT };
	int ret;

	log_set_process("ternctl");
	ret = ternctl_main_options(&t, argc, argv);
	if (ret != TERNCTL_EXIT_OK)
		return ret;
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		ternctl_cmd_help(ternctl_commands, NULL, true);
		return TERNCTL_EXIT_USAGE;
	}
	ret = ternctl_main_run(&t, argc, argv);
	if (t.store != NULL)
		store_close(&t.store);
	cfg_free(&t.cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ternctl: writing the output failed\n");
		return TERNCTL_EXIT_FAIL;
	}
	return ret;
}
