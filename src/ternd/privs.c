/* Privilege dropping and child-process signal set-up. A child drops to
   the configured user (cfg->user) before touching any socket; an empty
   user keeps the user that started ternd (the quickstart's choice).
   Security: the data directory is writable by that user, so the master
   (root) never follows a symlink there when it hands files over. */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "ternd/ternd.h"

static int
ternd_lookup_user(const struct cfg *cfg, uid_t *uid_r, gid_t *gid_r)
{
	struct passwd *pw;

	if (getuid() != 0 || cfg->user == NULL || cfg->user[0] == '\0')
		return 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		log_error("ternd", NULL, "unknown-user user=%s (create it, or set user = in the config)",
			  cfg->user);
		return -1;
	}
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return 1;
}

int
ternd_drop_privileges(const struct cfg *cfg)
{
	uid_t uid;
	gid_t gid;
	int r = ternd_lookup_user(cfg, &uid, &gid);

	if (r <= 0)
		return r;
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		log_error("ternd", NULL, "drop-privileges-failed user=%s error=\"%s\"",
			  cfg->user, strerror(errno));
		return -1;
	}
	/* Make sure there is no way back. */
	if (setuid(0) == 0) {
		log_error("ternd", NULL, "drop-privileges-failed regained root");
		return -1;
	}
	return 0;
}

int
ternd_user_begin(const struct cfg *cfg)
{
	uid_t uid;
	gid_t gid;
	int r = ternd_lookup_user(cfg, &uid, &gid);

	if (r <= 0)
		return r;
	if (setegid(gid) < 0 || seteuid(uid) < 0) {
		log_error("ternd", NULL, "seteuid-failed user=%s error=\"%s\"",
			  cfg->user, strerror(errno));
		(void)ternd_user_end(cfg);
		return -1;
	}
	return 0;
}

int
ternd_user_end(const struct cfg *cfg)
{
	if (getuid() != 0 || cfg->user == NULL || cfg->user[0] == '\0')
		return 0;
	if (seteuid(0) < 0 || setegid(0) < 0) {
		log_error("ternd", NULL, "seteuid-failed back to root "
			  "error=\"%s\"", strerror(errno));
		return -1;
	}
	return 0;
}

int
ternd_chown_data(const struct cfg *cfg)
{
	static const char *const names[] = { "tern.db", "tern.db-wal",
					     "tern.db-shm", "blobs", "tmp",
					     "run", "dkim" };
	char path[4096];
	uid_t uid;
	gid_t gid;
	int r = ternd_lookup_user(cfg, &uid, &gid);

	if (r <= 0)
		return r;
	if (chown(cfg->data_dir, uid, gid) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, names[i]);
		/* lchown: the directory belongs to the run-as user, who could
		   plant a symlink to make root chown any file on reload. */
		if (lchown(path, uid, gid) < 0 && errno != ENOENT)
			return -1;
	}
	return 0;
}

int
ternd_child_signals(void)
{
	sigset_t set;

	/* Die with the master rather than linger holding the sockets. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}
