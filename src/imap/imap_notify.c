/* Push for IDLE (RFC 2177; RFC 9051 6.3.13): one store notification
   socket per worker process, watched by the loop from imap_init(). The
   store publishes an event to every process for each change, so a
   delivery or flag change made by another worker, the SMTP server or
   ternctl reaches the IDLE sessions of this one at once; each session on
   that mailbox then syncs its view and sends EXISTS/EXPUNGE/FETCH. */
#include <stdlib.h>

#include "imap/imap.h"
#include "imap/imap_int.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "store/store.h"

static struct tern_env *imap_notify_env;
static int imap_notify_fd = -1;
static struct imap_session *imap_idle_head;

void
imap_notify_idle_add(struct imap_session *s)
{
	if (s->idle_prev != NULL || imap_idle_head == s)
		return;
	s->idle_next = imap_idle_head;
	if (imap_idle_head != NULL)
		imap_idle_head->idle_prev = s;
	imap_idle_head = s;
}

void
imap_notify_idle_remove(struct imap_session *s)
{
	if (s->idle_prev != NULL)
		s->idle_prev->idle_next = s->idle_next;
	else if (imap_idle_head == s)
		imap_idle_head = s->idle_next;
	else
		return;
	if (s->idle_next != NULL)
		s->idle_next->idle_prev = s->idle_prev;
	s->idle_prev = s->idle_next = NULL;
}

void
imap_notify_publish(struct imap_session *s, int64_t mailbox_id)
{
	struct store_notify_event ev = {
		.account_id = s->account_id,
		.mailbox_id = mailbox_id,
		.modseq = 0,
	};

	store_notify_publish(s->env->store, &ev);
}

static void
imap_notify_dispatch(const struct store_notify_event *ev)
{
	struct imap_session *s, *next;

	/* XXX: a walk over the IDLE sessions of this worker per event;
	   a per-mailbox index is the next step for 100k idlers. */
	for (s = imap_idle_head; s != NULL; s = next) {
		next = s->idle_next;
		if (s->view == NULL || s->view->mailbox_id != ev->mailbox_id)
			continue;
		imap_session_notify(s);
	}
}

static void
imap_notify_read(struct ev_loop *loop, int fd, unsigned events, void *ctx)
{
	struct store_notify_event ev;
	unsigned n = 0;

	(void)loop;
	(void)fd;
	(void)events;
	(void)ctx;
	/* bounded per wakeup so one busy mailbox cannot starve the loop */
	while (n++ < 1000 &&
	       store_notify_read(imap_notify_env->store, &ev) == 1) {
		imap_watch_event(&ev); /* NOTIFY (imap_watch.c) */
		if (ev.mailbox_id != 0)
			imap_notify_dispatch(&ev);
	}
}

int
imap_init(struct tern_env *env)
{
	imap_notify_env = env;
	if (imap_select_init(env) < 0)
		return -1;
	imap_notify_fd = store_notify_open(env->store);
	if (imap_notify_fd < 0) {
		log_warn("imap", "-", "notify-open-failed error=%s",
			 store_last_error(env->store));
		return -1;
	}
	if (ev_fd_add(env->loop, imap_notify_fd, EV_READ, imap_notify_read,
		      NULL) < 0) {
		log_warn("imap", "-", "notify-watch-failed");
		imap_notify_fd = -1;
		return -1;
	}
	return 0;
}

void
imap_deinit(void)
{
	if (imap_notify_fd >= 0 && imap_notify_env != NULL)
		ev_fd_del(imap_notify_env->loop, imap_notify_fd);
	imap_notify_fd = -1;
	imap_notify_env = NULL;
	imap_select_deinit();
	imap_view_cache_deinit();
	imap_msg_cache_deinit();
}
