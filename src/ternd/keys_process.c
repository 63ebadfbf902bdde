/* The keys process: the only process that holds the TLS private keys
   (docs/security.md, "The keys process"). The master forks one per
   generation (start, each SIGHUP reload) before that generation's
   workers. It reads the key files while still root, reports to the
   master on its control socket, drops to the run-as user, becomes
   non-dumpable, installs its seccomp allow list (lib/sandbox.h) and then
   only answers signing requests (lib/tls_keys.h): one SOCK_SEQPACKET
   channel per worker, whose other end the master passes to it over the
   control socket (SCM_RIGHTS) when it forks that worker. It reads no
   network byte and holds no other descriptor. It exits when the master
   closed the control socket (a newer generation replaced it) and the
   last of its workers is gone. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/sandbox.h"
#include "lib/tls_keys.h"
#include "ternd/ternd.h"

/* channels one keys process serves: a generation's workers, their
   restarts (a dead worker's channel closes) */
#define KEYS_CHANNELS_MAX 512
#define KEYS_START_TIMEOUT_MS 30000
#define KEYS_CTL_FD 3

enum { KEYS_READY = 'K', KEYS_FAILED = 'E', KEYS_MSG_CHANNEL = 'C' };

struct keys_state {
	struct tls_keys_holder *holder;
	struct pollfd fds[KEYS_CHANNELS_MAX + 1]; /* [0]: control */
	size_t count;
};

static void
keys_report(char status)
{
	if (write(KEYS_CTL_FD, &status, 1) != 1)
		_exit(1);
}

/* A message on the control socket: one byte and a channel descriptor.
   0, or -1 when the master closed it. */
static int
keys_ctl_read(struct keys_state *k)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	char b;
	struct iovec iov = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(KEYS_CTL_FD, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	int fd = -1;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (c != NULL && c->cmsg_level == SOL_SOCKET &&
	    c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (fd < 0)
		return 0;
	if (b != KEYS_MSG_CHANNEL || k->count >= KEYS_CHANNELS_MAX) {
		log_error("keys", NULL, "channel-refused channels=%zu", k->count);
		close(fd);
		return 0;
	}
	k->fds[1 + k->count].fd = fd;
	k->fds[1 + k->count].events = POLLIN;
	k->count++;
	return 0;
}

/* Answer what is queued on channel i. 0, or -1 when it is closed. */
static int
keys_channel_read(struct keys_state *k, size_t i)
{
	uint8_t in[TLS_KEYS_MSG_MAX_BYTES + 1], out[TLS_KEYS_MSG_MAX_BYTES];
	struct tls_keys_msg resp;
	int fd = k->fds[1 + i].fd;

	/* bounded: a worker has one request outstanding at a time */
	for (int round = 0; round < 16; round++) {
		ssize_t n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
		int m;

		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		/* a datagram longer than the maximum arrives cut to
		   sizeof(in) and is refused as malformed */
		tls_keys_holder_answer(k->holder, in, (size_t)n, &resp);
		m = tls_keys_pack(&resp, out, sizeof(out));
		/* a worker that does not read its answers loses them */
		if (m > 0)
			(void)send(fd, out, (size_t)m, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	return 0;
}

static void
keys_drop_channel(struct keys_state *k, size_t i)
{
	close(k->fds[1 + i].fd);
	k->fds[1 + i] = k->fds[k->count];
	k->count--;
}

static void
keys_loop(struct keys_state *k)
{
	k->fds[0].fd = KEYS_CTL_FD;
	k->fds[0].events = POLLIN;
	while (k->fds[0].fd >= 0 || k->count > 0) {
		if (poll(k->fds, k->count + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("keys", NULL, "poll-failed error=\"%s\"",
				  strerror(errno));
			return;
		}
		if (k->fds[0].revents != 0 && keys_ctl_read(k) < 0) {
			close(KEYS_CTL_FD);
			k->fds[0].fd = -1; /* poll skips it */
		}
		for (size_t i = k->count; i > 0; i--) {
			short ev = k->fds[i].revents;
			if (ev == 0)
				continue;
			if ((ev & POLLIN) == 0 || keys_channel_read(k, i - 1) < 0)
				keys_drop_channel(k, i - 1);
		}
	}
}

static void __attribute__((noreturn))
keys_process_main(const struct cfg *cfg, int ctl)
{
	static struct keys_state k;
	const char *error;
	sigset_t none;

	log_set_process("keys");
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* SIGTERM (the master stopping) ends it; a reload's SIGUSR1 to the
	   old generation must not: its workers still sign through it. */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Nothing of the master's but the control socket and stderr: no
	   listener, no other generation's control socket. */
	if (ctl != KEYS_CTL_FD && dup2(ctl, KEYS_CTL_FD) < 0)
		_exit(1);
	close_range(KEYS_CTL_FD + 1, ~0U, 0);
	k.holder = tls_keys_holder_new(cfg, &error);
	if (k.holder == NULL) {
		log_error("keys", NULL, "keys-failed error=\"%s\"", error);
		keys_report(KEYS_FAILED);
		_exit(1);
	}
	if (ternd_child_enter(cfg) < 0) {
		keys_report(KEYS_FAILED);
		_exit(1);
	}
	/* Not even the run-as user (the workers) may read its memory
	   through /proc or ptrace it. */
	prctl(PR_SET_DUMPABLE, 0);
	log_info("keys", NULL, "ready keys=%zu uid=%u", cfg->cert_count,
		 (unsigned)getuid());
	if (cfg->seccomp && sandbox_enter_keys(&error) < 0) {
		log_error("keys", NULL, "seccomp-failed error=\"%s\" "
			  "(set seccomp = no to run without it)", error);
		keys_report(KEYS_FAILED);
		_exit(1);
	}
	keys_report(KEYS_READY);
	keys_loop(&k);
	tls_keys_holder_free(&k.holder);
	_exit(0);
}

pid_t
keys_process_start(const struct cfg *cfg, int *ctl_r)
{
	struct pollfd pfd;
	char status = 0;
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("master", NULL, "keys-start-failed error=\"%s\"",
			  strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("master", NULL, "fork-failed error=\"%s\"",
			  strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		keys_process_main(cfg, sv[1]);
	}
	close(sv[1]);
	/* One status byte, the only thing the master ever reads from it. */
	pfd.fd = sv[0];
	pfd.events = POLLIN;
	while (poll(&pfd, 1, KEYS_START_TIMEOUT_MS) < 0 && errno == EINTR)
		;
	if ((pfd.revents & POLLIN) == 0 || read(sv[0], &status, 1) != 1 ||
	    status != KEYS_READY) {
		log_error("master", NULL, "keys-start-failed pid=%ld", (long)pid);
		close(sv[0]);
		kill(pid, SIGKILL);
		return -1;
	}
	*ctl_r = sv[0];
	return pid;
}

int
keys_process_channel(int ctl, int *fd_r)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	char b = KEYS_MSG_CHANNEL;
	struct iovec iov = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c;
	int sv[2];

	if (ctl < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	memset(cm.buf, 0, sizeof(cm.buf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &sv[1], sizeof(int));
	if (sendmsg(ctl, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[1]);
	*fd_r = sv[0];
	return 0;
}
