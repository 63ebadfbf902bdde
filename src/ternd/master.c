/* The master process: binds every listener, loads the certificate
   chains (never a private key: the keys process it forks holds them,
   keys_process.c, and every worker signs through its own channel to
   it), has the store opened once (migrations, plan sync), forks the
   workers and the queue process, and supervises them: a child that
   dies is logged and restarted; SIGHUP re-reads the config and certificates and replaces
   the workers gracefully (old workers finish their connections); SIGTERM
   stops everything within 10 seconds.

   The master keeps root (when started as root) only to bind ports and read
   keys on reload; it never parses network input. Children change into
   the data directory and drop to the configured user before they touch
   a socket (privs.c).

   Connection counts and login failures are server-wide: the master maps
   the shared limits table (lib/shared_limits.h) before the first fork;
   each worker counts its connections in its own slot, and when a worker
   dies the master zeroes that slot, so its connections stop counting. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "lib/log.h"
#include "lib/shared_limits.h"
#include "lib/tls.h"
#include "lib/tls_keys.h"
#include "lib/xalloc.h"
#include "store/store.h"
#include "ternd/ternd.h"

#define MASTER_STOP_SECS 10
/* workers and the queue, plus the keys processes of the generations
   still alive */
#define MASTER_CHILDREN_MAX 320
#define MASTER_WORKERS_MAX 256

enum child_kind { CHILD_WORKER, CHILD_QUEUE, CHILD_KEYS };

struct child {
	pid_t pid;
	enum child_kind kind;
	int index;
	int slot; /* shared limits slot of a worker, -1 for the queue */
	unsigned generation;
	time_t started;
};

struct master {
	const struct ternd_options *opt;
	struct cfg *cfg;
	struct tls_ctx *tls;
	struct ternd_listener *listeners;
	size_t listener_count;
	struct shared_limits *limits;
	/* control socket of the current generation's keys process (-1:
	   none, no certificate configured) */
	int keys_ctl;
	struct child children[MASTER_CHILDREN_MAX];
	size_t child_count;
	unsigned generation;
	unsigned restarts_recent;
	time_t restart_window;
	bool stopping;
	/* old configs kept alive until their workers are gone */
	struct cfg *old_cfgs[16];
	struct tls_ctx *old_tls[16];
	size_t old_count;
};

static int
master_bind(const struct cfg_listener *l, const char **error_r)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, on = 1, off = 0;

	if (inet_pton(AF_INET, l->address,
		      &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)l->port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, l->address,
			     &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)l->port);
		len = sizeof(*s6);
	} else {
		*error_r = "address is not an IPv4 or IPv6 literal";
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

/* Bind the listeners of cfg, reusing sockets of the same address:port
   from the previous set (reload). */
static int
master_bind_all(struct master *m, struct cfg *cfg,
		struct ternd_listener **out_r, size_t *count_r)
{
	struct ternd_listener *ls = xcalloc(cfg->listener_count + 1, sizeof(*ls));

	for (size_t i = 0; i < cfg->listener_count; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		const char *error;
		ls[i].cfg = l;
		ls[i].fd = -1;
		for (size_t j = 0; j < m->listener_count; j++) {
			const struct cfg_listener *o = m->listeners[j].cfg;
			if (m->listeners[j].fd >= 0 && o->port == l->port &&
			    strcmp(o->address, l->address) == 0) {
				ls[i].fd = m->listeners[j].fd;
				m->listeners[j].fd = -1;
			}
		}
		if (ls[i].fd < 0)
			ls[i].fd = master_bind(l, &error);
		if (ls[i].fd < 0) {
			log_error("master", NULL, "bind-failed listener=%s address=%s port=%u error=\"%s\"",
				  l->name, l->address, l->port, error);
			for (size_t k = 0; k < i; k++)
				close(ls[k].fd);
			free(ls);
			return -1;
		}
	}
	*out_r = ls;
	*count_r = cfg->listener_count;
	return 0;
}

/* Create or migrate the store and sync the config's plans into it.
   Runs in a child that dropped root (master_prepare_store); the working
   directory is the data directory. */
static int
master_sync_store(const struct cfg *cfg)
{
	const char *error;
	struct store *s = store_open(".", &error);

	if (s == NULL) {
		log_error("master", NULL, "store-open-failed path=%s error=\"%s\"",
			  cfg->data_dir, error);
		return -1;
	}
	for (size_t i = 0; i < cfg->plan_count; i++) {
		const struct cfg_plan *cp = &cfg->plans[i];
		struct store_plan p = { 0 };
		snprintf(p.name, sizeof(p.name), "%s", cp->name);
		p.quota_bytes = cp->quota_bytes;
		p.quota_messages = cp->quota_messages;
		p.send_per_hour = cp->send_per_hour;
		p.max_message_bytes = cp->max_message_bytes;
		p.max_recipients = cp->max_recipients;
		if (store_plan_set(s, &p) != STORE_OK)
			log_warn("master", NULL, "plan-sync-failed plan=%s", p.name);
	}
	store_close(&s);
	return 0;
}

/* Run the store sync in a child that changes into the data directory
   and drops root for good, like a worker, and wait for it. The database
   is written by the workers: a compromised worker could leave a crafted
   file, and SQLite's parser must then not run with root's real ids in
   the master (it did, under ternd_user_begin's effective ids, before).
   0 when the child synced, -1 otherwise (it logged why). */
static int
master_sync_store_child(const struct cfg *cfg)
{
	pid_t pid = fork();
	int status = 0;

	if (pid < 0) {
		log_error("master", NULL, "fork-failed error=\"%s\"",
			  strerror(errno));
		return -1;
	}
	if (pid == 0) {
		log_set_process("store-sync");
		if (ternd_child_enter(cfg) < 0 || master_sync_store(cfg) < 0)
			_exit(1);
		log_info("master", NULL, "store-synced uid=%u euid=%u",
			 (unsigned)getuid(), (unsigned)geteuid());
		/* _exit: the master's atexit work is not the child's */
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			log_error("master", NULL, "store-sync-lost error=\"%s\"",
				  strerror(errno));
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_error("master", NULL, "store-sync-failed status=%d", status);
		return -1;
	}
	return 0;
}

/* Open the store once: create and migrate it, sync the plans of the
   config, and make sure the data dir belongs to the run-as user. The
   directory is handed over first and the store is opened by a child
   running as that user, from inside it: root never opens or parses
   files inside a directory someone else controls, and that user needs
   no access to its parents. */
static int
master_prepare_store(const struct cfg *cfg)
{

	if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST) {
		log_error("master", NULL, "data-dir-failed path=%s error=\"%s\"",
			  cfg->data_dir, strerror(errno));
		return -1;
	}
	if (ternd_chown_data(cfg) < 0) {
		log_error("master", NULL, "chown-data-failed path=%s error=\"%s\"",
			  cfg->data_dir, strerror(errno));
		return -1;
	}
	return master_sync_store_child(cfg);
}

/* run/ belongs to the run-as user: the pid file is written as that
   user from inside the data directory (ternd_user_begin), never by root
   through a link planted there. */
static void
master_write_pidfile(const struct cfg *cfg)
{
	struct ternd_user_saved saved;
	char line[32];
	int fd;

	if (ternd_user_begin(cfg, &saved) < 0)
		return;
	mkdir("run", 0700);
	fd = open("run/ternd.pid",
		  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd >= 0) {
		snprintf(line, sizeof(line), "%ld\n", (long)getpid());
		if (write(fd, line, strlen(line)) < 0)
			log_warn("master", NULL, "pidfile-write-failed");
		close(fd);
	}
	if (ternd_user_leave(&saved) < 0)
		fatal("master cannot return to root after the pid file");
}

static unsigned
master_worker_count(const struct cfg *cfg)
{
	long n = cfg->workers;

	if (n == 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > MASTER_WORKERS_MAX)
		n = MASTER_WORKERS_MAX;
	return (unsigned)n;
}

/* The lowest shared limits slot no live worker holds (-1: none). */
static int
master_free_slot(const struct master *m)
{
	for (unsigned s = 0; s < shared_limits_slots(m->limits); s++) {
		bool used = false;
		for (size_t i = 0; i < m->child_count && !used; i++)
			used = m->children[i].slot == (int)s;
		if (!used)
			return (int)s;
	}
	return -1;
}

static const char *
master_kind_name(enum child_kind kind)
{
	return kind == CHILD_WORKER ? "worker" :
	       kind == CHILD_QUEUE  ? "queue" : "keys";
}

static void
master_add_child(struct master *m, enum child_kind kind, int index,
		 int slot, pid_t pid, unsigned generation)
{
	struct child *c = &m->children[m->child_count++];

	c->pid = pid;
	c->kind = kind;
	c->index = index;
	c->slot = slot;
	c->generation = generation;
	c->started = time(NULL);
	log_info("master", NULL, "child-started kind=%s index=%d pid=%ld",
		 master_kind_name(kind), index, (long)pid);
}

/* Start the keys process for cfg (none without certificates): 0 with
   *ctl_r and *pid_r (-1 when there is none), or -1 (logged). Not yet in
   the children table: master_add_child once it is kept. */
static int
master_keys_start(struct master *m, const struct cfg *cfg, int *ctl_r,
		  pid_t *pid_r)
{
	*ctl_r = -1;
	*pid_r = -1;
	if (cfg->cert_count == 0)
		return 0;
	if (m->child_count >= MASTER_CHILDREN_MAX) {
		log_error("master", NULL, "keys-start-failed error=\"too many children\"");
		return -1;
	}
	*pid_r = keys_process_start(cfg, ctl_r);
	return *pid_r < 0 ? -1 : 0;
}

static void
master_spawn(struct master *m, enum child_kind kind, int index)
{
	int slot = -1, chan = -1;
	pid_t pid;

	if (m->child_count >= MASTER_CHILDREN_MAX)
		return;
	if (kind == CHILD_WORKER && (slot = master_free_slot(m)) < 0) {
		log_error("master", NULL, "no-limits-slot index=%d", index);
		return;
	}
	if (slot >= 0)
		shared_limits_slot_clear(m->limits, (unsigned)slot);
	/* A worker signs its TLS handshakes through its own channel to
	   the keys process; the queue serves no TLS and gets none. */
	if (kind == CHILD_WORKER && m->tls != NULL &&
	    keys_process_channel(m->keys_ctl, &chan) < 0)
		log_error("master", NULL, "keys-channel-failed index=%d error=\"%s\"",
			  index, strerror(errno));
	pid = fork();
	if (pid < 0) {
		log_error("master", NULL, "fork-failed error=\"%s\"", strerror(errno));
		if (chan >= 0)
			close(chan);
		return;
	}
	if (pid == 0) {
		/* the master's link to the keys process is not the child's */
		if (m->keys_ctl >= 0)
			close(m->keys_ctl);
		tls_keys_set_channel(chan);
		if (kind == CHILD_WORKER)
			shared_limits_attach(m->limits, (unsigned)slot);
		else
			shared_limits_set_current(NULL);
		if (kind == CHILD_WORKER)
			worker_main(m->cfg, m->listeners, m->listener_count,
				    m->tls, index);
		queue_process_main(m->cfg, m->tls, m->listeners,
				   m->listener_count);
	}
	if (chan >= 0)
		close(chan);
	master_add_child(m, kind, index, slot, pid, m->generation);
}

static void
master_spawn_all(struct master *m)
{
	unsigned n = master_worker_count(m->cfg);

	for (unsigned i = 0; i < n; i++)
		master_spawn(m, CHILD_WORKER, (int)i + 1);
	master_spawn(m, CHILD_QUEUE, 0);
}

static struct child *
master_find_child(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->child_count; i++) {
		if (m->children[i].pid == pid)
			return &m->children[i];
	}
	return NULL;
}

static void
master_signal_children(struct master *m, int sig, bool old_only)
{
	for (size_t i = 0; i < m->child_count; i++) {
		if (!old_only || m->children[i].generation != m->generation)
			kill(m->children[i].pid, sig);
	}
}

/* Make the keys process (pid, ctl) the current one and replace every
   worker and the queue: the new children sign through it, the old ones
   finish their connections with the old one, which exits after them. */
static void
master_next_generation(struct master *m, pid_t keys_pid, int keys_ctl)
{
	if (m->keys_ctl >= 0)
		close(m->keys_ctl);
	m->keys_ctl = keys_ctl;
	m->generation++;
	if (keys_pid > 0)
		master_add_child(m, CHILD_KEYS, 0, -1, keys_pid, m->generation);
	master_signal_children(m, SIGUSR1, true);
	master_spawn_all(m);
}

/* The current keys process died: the workers' channels are gone with
   it, so a new one is started with the same config and every worker is
   replaced (a channel cannot be handed to a running, filtered worker). */
static void
master_keys_lost(struct master *m)
{
	int ctl;
	pid_t pid;

	if (master_keys_start(m, m->cfg, &ctl, &pid) < 0) {
		log_error("master", NULL, "keys-restart-failed");
		return;
	}
	master_next_generation(m, pid, ctl);
	log_info("master", NULL, "keys-restarted generation=%u", m->generation);
}

/* Reap children; restart those of the current generation. */
static void
master_reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = master_find_child(m, pid);
		struct child dead;

		if (c == NULL)
			continue;
		dead = *c;
		*c = m->children[--m->child_count];
		if (WIFSIGNALED(status))
			log_warn("master", NULL, "child-died kind=%s pid=%ld signal=%d",
				 master_kind_name(dead.kind), (long)pid,
				 WTERMSIG(status));
		else
			log_info("master", NULL, "child-exited kind=%s pid=%ld status=%d",
				 master_kind_name(dead.kind), (long)pid,
				 WEXITSTATUS(status));
		if (dead.slot >= 0) {
			log_info("master", NULL, "limits-slot-cleared slot=%d connections=%u",
				 dead.slot, shared_limits_conn_slot_total(
						    m->limits, (unsigned)dead.slot));
			shared_limits_slot_clear(m->limits, (unsigned)dead.slot);
		}
		if (m->stopping || dead.generation != m->generation)
			continue;
		/* Crash loop protection: at most 10 restarts a minute. */
		time_t now = time(NULL);
		if (now - m->restart_window > 60) {
			m->restart_window = now;
			m->restarts_recent = 0;
		}
		if (++m->restarts_recent > 10) {
			log_error("master", NULL, "restart-throttled kind=%s",
				  master_kind_name(dead.kind));
			sleep(1);
		}
		if (dead.kind == CHILD_KEYS)
			master_keys_lost(m);
		else
			master_spawn(m, dead.kind, dead.index);
	}
}

/* SIGHUP: new config and certificates, new workers; the old workers stop
   accepting and exit when their connections are done. */
static void
master_reload(struct master *m)
{
	char err[1024];
	struct cfg *cfg = cfg_load(m->cfg->path, err, sizeof(err));
	struct tls_ctx *tls = NULL;
	struct ternd_listener *ls;
	size_t count;
	const char *error;
	int keys_ctl;
	pid_t keys_pid;

	if (cfg == NULL) {
		log_error("master", NULL, "reload-failed error=\"%s\"", err);
		return;
	}
	if (cfg->cert_count > 0 && (tls = tls_ctx_new(cfg, &error)) == NULL) {
		log_error("master", NULL, "reload-failed error=\"%s\"", error);
		cfg_free(&cfg);
		return;
	}
	if (tls_client_init(cfg->queue_tls_ca_file, &error) < 0) {
		log_error("master", NULL, "reload-failed error=\"%s\"", error);
		tls_ctx_free(&tls);
		cfg_free(&cfg);
		return;
	}
	if (master_prepare_store(cfg) < 0 ||
	    master_keys_start(m, cfg, &keys_ctl, &keys_pid) < 0) {
		log_error("master", NULL, "reload-failed error=\"see above\"");
		tls_ctx_free(&tls);
		cfg_free(&cfg);
		return;
	}
	if (master_bind_all(m, cfg, &ls, &count) < 0) {
		log_error("master", NULL, "reload-failed error=\"see above\"");
		/* with its control socket closed and no channel, the new
		   keys process exits at once (reaped as unknown) */
		if (keys_ctl >= 0)
			close(keys_ctl);
		tls_ctx_free(&tls);
		cfg_free(&cfg);
		return;
	}
	for (size_t i = 0; i < m->listener_count; i++) {
		if (m->listeners[i].fd >= 0)
			close(m->listeners[i].fd);
	}
	free(m->listeners);
	m->listeners = ls;
	m->listener_count = count;
	if (m->old_count < 16) {
		m->old_cfgs[m->old_count] = m->cfg;
		m->old_tls[m->old_count++] = m->tls;
	}
	m->cfg = cfg;
	m->tls = tls;
	log_set_level(cfg->log_level);
	master_next_generation(m, keys_pid, keys_ctl);
	log_info("master", NULL, "reloaded generation=%u", m->generation);
}

static void
master_stop(struct master *m)
{
	time_t deadline = time(NULL) + MASTER_STOP_SECS;

	m->stopping = true;
	/* The keys processes are not signalled: a draining worker may still
	   finish a handshake. With the control socket closed, each exits
	   once its workers have (or is killed at the deadline below). */
	if (m->keys_ctl >= 0)
		close(m->keys_ctl);
	m->keys_ctl = -1;
	for (size_t i = 0; i < m->child_count; i++) {
		if (m->children[i].kind != CHILD_KEYS)
			kill(m->children[i].pid, SIGTERM);
	}
	while (m->child_count > 0 && time(NULL) < deadline) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		master_reap(m);
	}
	if (m->child_count > 0) {
		log_warn("master", NULL, "stop-timeout killing=%zu", m->child_count);
		master_signal_children(m, SIGKILL, false);
		while (m->child_count > 0 && waitpid(-1, NULL, 0) > 0)
			master_reap(m);
	}
}

int
master_run(const struct ternd_options *opt, struct cfg *cfg)
{
	struct master m = { .opt = opt, .cfg = cfg, .keys_ctl = -1 };
	const char *error;
	sigset_t set;
	pid_t keys_pid;
	int sfd;

	if (cfg->cert_count > 0 && (m.tls = tls_ctx_new(cfg, &error)) == NULL) {
		log_error("master", NULL, "tls-failed error=\"%s\"", error);
		return 1;
	}
	/* The queue's CA store (queue_tls_ca_file or the system's), read
	   here like the keys: the file may be readable by root only, and a
	   bad one fails the start instead of a queue restart loop. The
	   queue process inherits the context through fork. */
	if (tls_client_init(cfg->queue_tls_ca_file, &error) < 0) {
		log_error("master", NULL, "tls-failed error=\"%s\"", error);
		tls_ctx_free(&m.tls);
		return 1;
	}
	if (master_prepare_store(cfg) < 0 ||
	    master_bind_all(&m, cfg, &m.listeners, &m.listener_count) < 0) {
		/* A port in use is an ordinary failure: exit clean, without
		   a LeakSanitizer report. */
		tls_ctx_free(&m.tls);
		return 1;
	}
	m.limits = shared_limits_new(SHARED_LIMITS_SLOTS_MAX,
				     SHARED_LIMITS_BUCKETS_DEFAULT,
				     AUTH_THROTTLE_MAX_ENTRIES_DEFAULT, &error);
	if (m.limits == NULL) {
		log_error("master", NULL, "limits-table-failed error=\"%s\"", error);
		return 1;
	}
	shared_limits_set_current(m.limits);
	master_write_pidfile(cfg);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		log_error("master", NULL, "signalfd-failed");
		return 1;
	}
	if (master_keys_start(&m, cfg, &m.keys_ctl, &keys_pid) < 0) {
		close(sfd);
		for (size_t i = 0; i < m.listener_count; i++)
			close(m.listeners[i].fd);
		free(m.listeners);
		tls_ctx_free(&m.tls);
		shared_limits_free(&m.limits);
		return 1;
	}
	log_info("master", NULL, "started pid=%ld listeners=%zu workers=%u",
		 (long)getpid(), m.listener_count, master_worker_count(cfg));
	if (keys_pid > 0)
		master_add_child(&m, CHILD_KEYS, 0, -1, keys_pid, m.generation);
	master_spawn_all(&m);
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));

		if (n != sizeof(si)) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		if (si.ssi_signo == SIGCHLD) {
			master_reap(&m);
		} else if (si.ssi_signo == SIGHUP) {
			master_reload(&m);
		} else {
			log_info("master", NULL, "stopping signal=%u", si.ssi_signo);
			break;
		}
	}
	master_stop(&m);
	close(sfd);
	for (size_t i = 0; i < m.listener_count; i++)
		close(m.listeners[i].fd);
	free(m.listeners);
	tls_ctx_free(&m.tls);
	shared_limits_free(&m.limits);
	for (size_t i = 0; i < m.old_count; i++) {
		if (m.old_cfgs[i] != cfg)
			cfg_free(&m.old_cfgs[i]);
		tls_ctx_free(&m.old_tls[i]);
	}
	if (m.cfg != cfg)
		cfg_free(&m.cfg);
	log_info("master", NULL, "stopped");
	return 0;
}
