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

/* Drop root to the configured user (no-op when not root). 0 or -1. */
int ternd_drop_privileges(const struct cfg *cfg);
/* When root with a run-as user: give the data directory, the database
   files and the first-level folders to that user. 0 or -1. */
int ternd_chown_data(const struct cfg *cfg);
/* Master only, around its own store access: act with the run-as user's
   effective uid and gid (root's capabilities are gone meanwhile), so a
   link planted in the data directory cannot make root write elsewhere.
   No-op when not root or user is empty. 0, or -1 (logged). */
int ternd_user_begin(const struct cfg *cfg);
int ternd_user_end(const struct cfg *cfg);
/* Install signal handling for a child: returns a signalfd for SIGTERM,
   SIGINT, SIGHUP, SIGUSR1, or -1. */
int ternd_child_signals(void);

#endif
