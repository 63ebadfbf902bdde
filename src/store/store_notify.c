/* Change notification between processes on one machine (IMAP IDLE and
   NOTIFY, RFC 2177 / RFC 5465): each listening process binds a
   non-blocking AF_UNIX datagram socket DATADIR/run/notify-<pid>-<n>.sock;
   a publisher sends one fixed-size datagram to every such socket. A
   socket that refuses (ECONNREFUSED: its process is gone) is unlinked; a
   full one (EAGAIN) is skipped, its reader resyncs on its next command.
   Events of a transaction are sent only after its commit. The directory
   is 0700, so only our own uid can send; datagrams of the wrong size or
   magic are ignored anyway. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

#define STORE_NOTIFY_MAGIC 0x314e4554u /* "TEN1" */
#define STORE_NOTIFY_PREFIX "notify-"
#define STORE_NOTIFY_SUFFIX ".sock"
/* An mtime older than this is taken as settled (see peers_refresh). */
#define STORE_NOTIFY_SETTLE_SECS 2

struct store_notify_wire {
	uint32_t magic;
	uint32_t reserved;
	int64_t account_id;
	int64_t mailbox_id;
	uint64_t modseq;
};

static int
store_notify_addr(struct sockaddr_un *sun, const char *path)
{
	size_t len = strlen(path);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (len >= sizeof(sun->sun_path))
		return -1;
	memcpy(sun->sun_path, path, len + 1);
	return 0;
}

int
store_notify_open(struct store *s)
{
	static unsigned counter;
	char path[STORE_PATH_MAX];
	struct sockaddr_un sun;
	struct timespec ts;
	int fd;

	if (s->notify_fd >= 0)
		return s->notify_fd;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(path, sizeof(path), "%s/run/" STORE_NOTIFY_PREFIX "%ld-%u-%lx"
		 STORE_NOTIFY_SUFFIX, s->datadir, (long)getpid(), counter++,
		 (unsigned long)ts.tv_nsec);
	if (store_notify_addr(&sun, path) < 0) {
		store_fail(s, STORE_ERR, "notify socket path too long");
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		store_fail(s, STORE_ERR, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		store_fail(s, STORE_ERR, "bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	s->notify_fd = fd;
	s->notify_path = xstrdup(path);
	return fd;
}

static void
store_notify_peers_free(struct store *s)
{
	for (size_t i = 0; i < s->peer_count; i++)
		free(s->peers[i]);
	free(s->peers);
	s->peers = NULL;
	s->peer_count = 0;
	s->peers_valid = false;
}

void
store_notify_close(struct store *s)
{
	if (s->notify_fd >= 0) {
		close(s->notify_fd);
		unlink(s->notify_path);
	}
	if (s->send_fd >= 0)
		close(s->send_fd);
	free(s->notify_path);
	s->notify_path = NULL;
	store_notify_peers_free(s);
	s->notify_fd = s->send_fd = -1;
}

static bool
store_notify_is_socket_name(const char *name)
{
	size_t len = strlen(name), sl = sizeof(STORE_NOTIFY_SUFFIX) - 1;

	return strncmp(name, STORE_NOTIFY_PREFIX,
		       sizeof(STORE_NOTIFY_PREFIX) - 1) == 0 &&
	       len > sl && strcmp(name + len - sl, STORE_NOTIFY_SUFFIX) == 0;
}

/* Send events to one socket; false when the socket is dead. */
static bool
store_notify_send(struct store *s, const char *path,
		  const struct store_notify_event *evs, size_t count)
{
	struct sockaddr_un sun;

	if (store_notify_addr(&sun, path) < 0)
		return true;
	for (size_t i = 0; i < count; i++) {
		struct store_notify_wire w = {
			STORE_NOTIFY_MAGIC, 0, evs[i].account_id,
			evs[i].mailbox_id, evs[i].modseq
		};

		if (sendto(s->send_fd, &w, sizeof(w), MSG_DONTWAIT,
			   (struct sockaddr *)&sun, sizeof(sun)) >= 0)
			continue;
		if (errno == ECONNREFUSED)
			return false;
		if (errno == EAGAIN || errno == ENOENT)
			return true; /* saturated or gone: skip the rest */
	}
	return true;
}

/* List the notification sockets again if run/ changed since the last
   listing (a socket bound or unlinked changes its mtime): a commit
   costs one stat, not a directory scan. Directory timestamps come from
   a coarse clock, so two changes close together can leave one mtime:
   while the mtime is recent the directory is listed every time. */
static void
store_notify_peers_refresh(struct store *s)
{
	char dir[STORE_PATH_MAX], path[STORE_PATH_MAX];
	size_t cap = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int n;

	snprintf(dir, sizeof(dir), "%s/run", s->datadir);
	if (stat(dir, &st) < 0) {
		store_notify_peers_free(s);
		return;
	}
	if (s->peers_valid &&
	    st.st_mtim.tv_sec == s->peers_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == s->peers_mtime.tv_nsec &&
	    store_now() - (int64_t)st.st_mtim.tv_sec > STORE_NOTIFY_SETTLE_SECS)
		return;
	store_notify_peers_free(s);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!store_notify_is_socket_name(de->d_name))
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		s->peers = store_grow(s->peers, &cap, s->peer_count,
				      sizeof(*s->peers));
		s->peers[s->peer_count++] = xstrdup(path);
	}
	closedir(d);
	s->peers_mtime = st.st_mtim;
	s->peers_valid = true;
}

static void
store_notify_send_all(struct store *s, const struct store_notify_event *evs,
		      size_t count)
{
	if (s->send_fd < 0)
		s->send_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->send_fd < 0)
		return;
	store_notify_peers_refresh(s);
	for (size_t i = 0; i < s->peer_count; i++) {
		if (!store_notify_send(s, s->peers[i], evs, count)) {
			/* its process is gone; the unlink makes the next
			   publish list the directory again */
			unlink(s->peers[i]);
			s->peers_valid = false;
		}
	}
}

void
store_notify_publish(struct store *s, const struct store_notify_event *ev)
{
	store_notify_send_all(s, ev, 1);
}

void
store_notify_flush(struct store *s)
{
	/* called between transactions: every event pending is committed
	   (a rollback took its own back, store_post_discard) */
	if (s->event_count > 0)
		store_notify_send_all(s, s->events, s->event_count);
	s->event_count = 0;
	s->event_committed = 0;
}

void
store_notify_defer(struct store *s)
{
	s->notify_deferred = true;
}

int
store_notify_read(struct store *s, struct store_notify_event *ev_r)
{
	struct store_notify_wire w;
	ssize_t n;

	if (s->notify_fd < 0)
		return -1;
	for (;;) {
		n = recv(s->notify_fd, &w, sizeof(w),
			 MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		if ((size_t)n != sizeof(w) || w.magic != STORE_NOTIFY_MAGIC)
			continue; /* not ours: drop it */
		ev_r->account_id = w.account_id;
		ev_r->mailbox_id = w.mailbox_id;
		ev_r->modseq = w.modseq;
		return 1;
	}
}
