#ifndef TERN_TERND_H
#define TERN_TERND_H
/* ternd: the master (binds, loads keys, forks and supervises), the
   workers (one event loop each, every protocol) and the queue process. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/cfg.h"
#include "lib/env.h"

struct tls_ctx;

/* A bound listening socket inherited by the workers. */
struct ternd_listener {
	const struct cfg_listener *cfg;
	int fd;
};

struct ternd_options {
	const char *config_path;
	bool check_only;
	/* quickstart */
	const char *quickstart_dir;
	const char *quickstart_domain;
	const char *quickstart_listen;
	long quickstart_base; /* -1: from the config */
};

/* Protocol entry points, indexed by enum cfg_proto. */
struct ternd_protocol {
	const char *name;
	int (*init)(struct tern_env *env);
	tern_session_start_fn *start;
	void (*drain)(void);
	void (*deinit)(void);
};
const struct ternd_protocol *ternd_protocol(enum cfg_proto proto);

/* Prepare DIR (config, certificate, store, demo domain and account) and
   return the config path to run with (xmalloc'd), or NULL with a message
   printed. */
char *quickstart_prepare(const struct ternd_options *opt);
/* Print how to connect a mail client. */
void quickstart_summary(const struct cfg *cfg, const char *dir);

/* Run the master until SIGTERM. Exit status. */
int master_run(const struct ternd_options *opt, struct cfg *cfg);

/* Body of a worker process; never returns. */
void worker_main(struct cfg *cfg, struct ternd_listener *listeners,
		 size_t listener_count, struct tls_ctx *tls, int index)
	__attribute__((noreturn));
/* Body of the queue process; never returns. */
void queue_process_main(struct cfg *cfg, struct tls_ctx *tls,
			struct ternd_listener *listeners, size_t listener_count)
	__attribute__((noreturn));

/* The keys process (keys_process.c), the only holder of the TLS private
   keys: fork it for cfg and wait (bounded) for its start-up report (keys
   loaded and matching their certificates, root dropped, filter on). Its
   pid with *ctl_r, the master's control socket; -1 (logged) otherwise. */
pid_t keys_process_start(const struct cfg *cfg, int *ctl_r);
/* A new signing channel: one end is passed to the keys process over
   ctl, the other end returned in *fd_r for the child about to be forked
   (lib/tls_keys.h tls_keys_set_channel). 0 or -1. */
int keys_process_channel(int ctl, int *fd_r);

/* Look up the run-as user: 1 with its ids, 0 when there is nothing to
   switch (not root, or user empty), -1 when unknown (logged). */
int ternd_user_lookup(const char *user, uid_t *uid_r, gid_t *gid_r);
/* In a child: chdir into cfg->data_dir (still as root), then drop root
   to the configured user for good (no-op when not root or user is
   empty). The store is then reached as ".". 0 or -1 (logged). */
int ternd_child_enter(const struct cfg *cfg);
/* When root with a run-as user: give dir (a data directory) to that
   user: the whole tree when it is still root's, else the directory, the
   database files and the first-level folders, never following links.
   0 or -1 (errno set). */
int ternd_data_handover(const char *user, const char *dir);
/* ternd_data_handover() of cfg's user and data directory. */
int ternd_chown_data(const struct cfg *cfg);

/* What ternd_user_enter() changed, for ternd_user_leave(). */
struct ternd_user_saved {
	int cwd_fd;
	bool switched;
	gid_t *groups;
	int group_count;
};
/* Around root's own access to a data directory: chdir into dir (as
   root, so its parents need not be searchable by user), then act with
   the user's effective uid, gid and only group (root's capabilities are
   gone meanwhile), so a link planted in the directory cannot make root
   write elsewhere. Reach the directory as "." until ternd_user_leave(),
   which restores root's ids, groups and the previous working directory.
   Without a user to switch to only the directory changes. 0, or -1
   (logged; nothing left changed). */
int ternd_user_enter(const char *user, const char *dir,
		     struct ternd_user_saved *saved_r);
int ternd_user_leave(struct ternd_user_saved *saved);
/* ternd_user_enter() of cfg's user and data directory. */
int ternd_user_begin(const struct cfg *cfg, struct ternd_user_saved *saved_r);
/* Last step of a child's start (sockets inherited, store open, root
   dropped): the seccomp filter of lib/sandbox.h unless cfg->seccomp is
   off. Exits the process when the filter cannot be installed: running
   without the sandbox the operator asked for is not a fallback. */
void ternd_child_sandbox(const struct cfg *cfg);
/* Install signal handling for a child: returns a signalfd for SIGTERM,
   SIGINT, SIGHUP, SIGUSR1, or -1. */
int ternd_child_signals(void);

#endif
