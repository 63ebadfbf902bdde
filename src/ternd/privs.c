/* Privilege dropping and child-process signal set-up. A child changes
   into the data directory while still root, then drops to the configured
   user (cfg->user) before touching any socket, and from then on reaches
   the store only by relative paths: the directories above the data
   directory (/root/..., a 0700 temporary directory) need not be
   traversable by that user. An empty user keeps the user that started
   ternd. Security: the data directory is writable by that user, so the
   master (root) never follows a symlink there when it hands files over,
   and opens the store there only with that user's ids. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/sandbox.h"
#include "lib/xalloc.h"
#include "ternd/ternd.h"

#define TERND_NFTW_FDS 16

int
ternd_user_lookup(const char *user, uid_t *uid_r, gid_t *gid_r)
{
	struct passwd *pw;

	if (getuid() != 0 || user == NULL || user[0] == '\0')
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		log_error("ternd", NULL, "unknown-user user=%s (create it, or set user = in the config)",
			  user);
		return -1;
	}
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return 1;
}

int
ternd_child_enter(const struct cfg *cfg)
{
	pid_t parent = getppid();
	uid_t uid;
	gid_t gid;
	int r;

	/* As root, before the drop: the path may lead through directories
	   the run-as user cannot search. Relative paths from here on. */
	if (chdir(cfg->data_dir) < 0) {
		log_error("ternd", NULL, "chdir-failed path=%s error=\"%s\"",
			  cfg->data_dir, strerror(errno));
		return -1;
	}
	r = ternd_user_lookup(cfg->user, &uid, &gid);
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
	/* The kernel clears the parent-death signal when the uids change
	   (found with this work: after a SIGKILL of the master, its workers
	   and queue lived on): set it again, and leave if the master died
	   in between. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent) {
		log_error("ternd", NULL, "master-gone");
		return -1;
	}
	return 0;
}

void
ternd_child_sandbox(const struct cfg *cfg)
{
	const char *error;

	if (!cfg->seccomp) {
		log_info("ternd", NULL, "seccomp-off (seccomp = no)");
		return;
	}
	if (sandbox_enter(&error) < 0) {
		log_error("ternd", NULL, "seccomp-failed error=\"%s\" "
			  "(set seccomp = no to run without it)", error);
		exit(1);
	}
	log_debug("ternd", NULL, "seccomp-on sanitizer_build=%s",
		  sandbox_sanitizer_build() ? "yes" : "no");
}

/* Keep root's supplementary groups to restore them after the switch. */
static int
ternd_user_save_groups(struct ternd_user_saved *saved)
{
	int n = getgroups(0, NULL);

	if (n < 0)
		return -1;
	saved->groups = xcalloc((size_t)n + 1, sizeof(gid_t));
	saved->group_count = getgroups(n, saved->groups);
	return saved->group_count < 0 ? -1 : 0;
}

static int
ternd_user_switch(const char *user, struct ternd_user_saved *saved)
{
	uid_t uid;
	gid_t gid;
	int r = ternd_user_lookup(user, &uid, &gid);

	if (r <= 0)
		return r;
	if (ternd_user_save_groups(saved) < 0) {
		log_error("ternd", NULL, "getgroups-failed error=\"%s\"",
			  strerror(errno));
		return -1;
	}
	/* From here ternd_user_leave restores root's ids and groups. */
	saved->switched = true;
	if (setgroups(1, &gid) < 0 || setegid(gid) < 0 || seteuid(uid) < 0) {
		log_error("ternd", NULL, "seteuid-failed user=%s error=\"%s\"",
			  user, strerror(errno));
		return -1;
	}
	return 0;
}

int
ternd_user_enter(const char *user, const char *dir,
		 struct ternd_user_saved *saved_r)
{
	memset(saved_r, 0, sizeof(*saved_r));
	/* O_PATH: fchdir back works even from an unreadable cwd. */
	saved_r->cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (saved_r->cwd_fd < 0 || chdir(dir) < 0) {
		log_error("ternd", NULL, "chdir-failed path=%s error=\"%s\"",
			  dir, strerror(errno));
		(void)ternd_user_leave(saved_r);
		return -1;
	}
	if (ternd_user_switch(user, saved_r) < 0) {
		(void)ternd_user_leave(saved_r);
		return -1;
	}
	return 0;
}

int
ternd_user_leave(struct ternd_user_saved *saved)
{
	int ret = 0;

	if (saved->switched &&
	    (seteuid(0) < 0 || setegid(0) < 0 ||
	     setgroups((size_t)saved->group_count, saved->groups) < 0)) {
		log_error("ternd", NULL, "seteuid-failed back to root "
			  "error=\"%s\"", strerror(errno));
		ret = -1;
	}
	saved->switched = false;
	free(saved->groups);
	saved->groups = NULL;
	if (saved->cwd_fd >= 0) {
		if (fchdir(saved->cwd_fd) < 0)
			ret = -1;
		close(saved->cwd_fd);
		saved->cwd_fd = -1;
	}
	return ret;
}

int
ternd_user_begin(const struct cfg *cfg, struct ternd_user_saved *saved_r)
{
	return ternd_user_enter(cfg->user, cfg->data_dir, saved_r);
}

static uid_t ternd_nftw_uid;
static gid_t ternd_nftw_gid;

static int
ternd_chown_one(const char *path, const struct stat *st, int type,
		struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (lchown(path, ternd_nftw_uid, ternd_nftw_gid) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* A data directory still root's (the quickstart run as root before it
   chose a user, or made by root's ternctl): hand the whole tree over,
   deepest first, so that nobody else can write in it during the walk.
   FTW_PHYS: links are changed themselves, never followed. */
static int
ternd_chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	ternd_nftw_uid = uid;
	ternd_nftw_gid = gid;
	return nftw(dir, ternd_chown_one, TERND_NFTW_FDS,
		    FTW_PHYS | FTW_DEPTH) == 0 ? 0 : -1;
}

int
ternd_data_handover(const char *user, const char *dir)
{
	static const char *const names[] = { "tern.db", "tern.db-wal",
					     "tern.db-shm", "index.db",
					     "index.db-wal", "index.db-shm",
					     "blobs", "packs", "tmp", "run",
					     "dkim" };
	char path[4096];
	struct stat st;
	uid_t uid;
	gid_t gid;
	int r = ternd_user_lookup(user, &uid, &gid);

	if (r <= 0)
		return r;
	if (lstat(dir, &st) < 0)
		return -1;
	if (st.st_uid == 0 && uid != 0)
		return ternd_chown_tree(dir, uid, gid);
	if (chown(dir, uid, gid) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		/* lchown: the directory belongs to the run-as user, who could
		   plant a symlink to make root chown any file on reload. */
		if (lchown(path, uid, gid) < 0 && errno != ENOENT)
			return -1;
	}
	return 0;
}

int
ternd_chown_data(const struct cfg *cfg)
{
	return ternd_data_handover(cfg->user, cfg->data_dir);
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
