/* epoll event loop with a timer heap and deferred calls; see ev.h.
   Registered fds live in an array indexed by fd (fds are small and
   dense), as in Redis' ae.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/ev.h"
#include "lib/xalloc.h"

#define EV_BATCH 256

struct ev_fdrec {
	ev_fd_fn *fn;
	void *ctx;
	unsigned events;
	bool used;
};

struct ev_timer {
	uint64_t when;
	uint64_t seq; /* FIFO order among equal deadlines */
	size_t heap_idx;
	ev_call_fn *fn;
	void *ctx;
};

struct ev_defer_rec {
	ev_call_fn *fn;
	void *ctx;
};

struct ev_loop {
	int epfd;
	bool stop;
	struct ev_fdrec *fds;
	size_t nfds;
	struct ev_timer **heap;
	size_t heap_len, heap_cap;
	uint64_t timer_seq;
	struct ev_defer_rec *defers;
	size_t defer_len, defer_cap;
	uint64_t now_ms;
	time_t now;
};

struct ev_loop *
ev_loop_new(void)
{
	struct ev_loop *loop = xcalloc(1, sizeof(*loop));

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	ev_update_time(loop);
	return loop;
}

void
ev_loop_free(struct ev_loop **loopp)
{
	struct ev_loop *loop = *loopp;

	if (loop == NULL)
		return;
	close(loop->epfd);
	for (size_t i = 0; i < loop->heap_len; i++)
		free(loop->heap[i]);
	free(loop->heap);
	free(loop->fds);
	free(loop->defers);
	free(loop);
	*loopp = NULL;
}

int64_t
ev_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
ev_update_time(struct ev_loop *loop)
{
	loop->now_ms = (uint64_t)(ev_clock_us() / 1000);
	loop->now = time(NULL);
}

uint64_t
ev_now_ms(struct ev_loop *loop)
{
	return loop->now_ms;
}

time_t
ev_now(struct ev_loop *loop)
{
	return loop->now;
}

static uint32_t
ev_epoll_mask(unsigned events)
{
	return ((events & EV_READ) ? EPOLLIN | EPOLLRDHUP : 0) |
	       ((events & EV_WRITE) ? EPOLLOUT : 0);
}

int
ev_fd_add(struct ev_loop *loop, int fd, unsigned events, ev_fd_fn *fn,
	  void *ctx)
{
	struct epoll_event ee = { 0 };

	if (fd < 0)
		return -1;
	if ((size_t)fd >= loop->nfds) {
		size_t n = loop->nfds == 0 ? 64 : loop->nfds;
		while (n <= (size_t)fd)
			n *= 2;
		loop->fds = xreallocarray(loop->fds, n, sizeof(*loop->fds));
		memset(loop->fds + loop->nfds, 0,
		       (n - loop->nfds) * sizeof(*loop->fds));
		loop->nfds = n;
	}
	ee.events = ev_epoll_mask(events);
	ee.data.fd = fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
		return -1;
	loop->fds[fd] = (struct ev_fdrec){ fn, ctx, events, true };
	return 0;
}

int
ev_fd_mod(struct ev_loop *loop, int fd, unsigned events)
{
	struct epoll_event ee = { 0 };

	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].used)
		return -1;
	if (loop->fds[fd].events == events)
		return 0;
	ee.events = ev_epoll_mask(events);
	ee.data.fd = fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ee) < 0)
		return -1;
	loop->fds[fd].events = events;
	return 0;
}

void
ev_fd_del(struct ev_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].used)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&loop->fds[fd], 0, sizeof(loop->fds[fd]));
}

/* ---- timer heap ---- */

static bool
ev_timer_before(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void
ev_heap_set(struct ev_loop *loop, size_t i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->heap_idx = i;
}

static void
ev_heap_up(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!ev_timer_before(t, loop->heap[parent]))
			break;
		ev_heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	ev_heap_set(loop, i, t);
}

static void
ev_heap_down(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= loop->heap_len)
			break;
		if (c + 1 < loop->heap_len &&
		    ev_timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!ev_timer_before(loop->heap[c], t))
			break;
		ev_heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	ev_heap_set(loop, i, t);
}

static void
ev_heap_remove(struct ev_loop *loop, struct ev_timer *t)
{
	size_t i = t->heap_idx;
	struct ev_timer *last = loop->heap[--loop->heap_len];

	if (last == t)
		return;
	ev_heap_set(loop, i, last);
	ev_heap_up(loop, i);
	ev_heap_down(loop, last->heap_idx);
}

struct ev_timer *
ev_timer_add(struct ev_loop *loop, uint64_t ms, ev_call_fn *fn, void *ctx)
{
	struct ev_timer *t = xmalloc(sizeof(*t));

	t->when = loop->now_ms + ms;
	t->seq = loop->timer_seq++;
	t->fn = fn;
	t->ctx = ctx;
	if (loop->heap_len == loop->heap_cap) {
		loop->heap_cap = loop->heap_cap == 0 ? 64 : loop->heap_cap * 2;
		loop->heap = xreallocarray(loop->heap, loop->heap_cap,
					   sizeof(*loop->heap));
	}
	ev_heap_set(loop, loop->heap_len++, t);
	ev_heap_up(loop, t->heap_idx);
	return t;
}

void
ev_timer_del(struct ev_loop *loop, struct ev_timer **tp)
{
	if (*tp == NULL)
		return;
	ev_heap_remove(loop, *tp);
	free(*tp);
	*tp = NULL;
}

void
ev_timer_reset(struct ev_loop *loop, struct ev_timer *t, uint64_t ms)
{
	ev_heap_remove(loop, t);
	t->when = loop->now_ms + ms;
	t->seq = loop->timer_seq++;
	ev_heap_set(loop, loop->heap_len++, t);
	ev_heap_up(loop, t->heap_idx);
}

static void
ev_run_timers(struct ev_loop *loop)
{
	while (loop->heap_len > 0 && loop->heap[0]->when <= loop->now_ms) {
		struct ev_timer *t = loop->heap[0];
		ev_call_fn *fn = t->fn;
		void *ctx = t->ctx;

		ev_heap_remove(loop, t);
		free(t);
		fn(loop, ctx);
	}
}

/* ---- deferred calls ---- */

void
ev_defer(struct ev_loop *loop, ev_call_fn *fn, void *ctx)
{
	if (loop->defer_len == loop->defer_cap) {
		loop->defer_cap = loop->defer_cap == 0 ? 16 : loop->defer_cap * 2;
		loop->defers = xreallocarray(loop->defers, loop->defer_cap,
					     sizeof(*loop->defers));
	}
	loop->defers[loop->defer_len++] = (struct ev_defer_rec){ fn, ctx };
}

void
ev_defer_cancel(struct ev_loop *loop, ev_call_fn *fn, void *ctx)
{
	for (size_t i = 0; i < loop->defer_len; i++) {
		if ((fn == NULL || loop->defers[i].fn == fn) &&
		    loop->defers[i].ctx == ctx)
			loop->defers[i].fn = NULL;
	}
}

static void
ev_run_defers(struct ev_loop *loop)
{
	/* Index-based: a call may append more calls (and realloc). */
	for (size_t i = 0; i < loop->defer_len; i++) {
		struct ev_defer_rec d = loop->defers[i];
		if (d.fn != NULL)
			d.fn(loop, d.ctx);
	}
	loop->defer_len = 0;
}

/* ---- running ---- */

static int
ev_next_timeout(struct ev_loop *loop, int timeout_ms)
{
	uint64_t until;

	if (loop->defer_len > 0)
		return 0;
	if (loop->heap_len == 0)
		return timeout_ms;
	until = loop->heap[0]->when <= loop->now_ms ?
			0 : loop->heap[0]->when - loop->now_ms;
	if (until > 60000)
		until = 60000;
	if (timeout_ms >= 0 && (uint64_t)timeout_ms < until)
		return timeout_ms;
	return (int)until;
}

int
ev_run_once(struct ev_loop *loop, int timeout_ms)
{
	struct epoll_event evs[EV_BATCH];
	int n;

	n = epoll_wait(loop->epfd, evs, EV_BATCH,
		       ev_next_timeout(loop, timeout_ms));
	if (n < 0 && errno != EINTR)
		return -1;
	ev_update_time(loop);
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		unsigned events = 0;
		struct ev_fdrec *r;

		if ((size_t)fd >= loop->nfds || !loop->fds[fd].used)
			continue;
		r = &loop->fds[fd];
		if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			events |= EV_READ;
		if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			events |= EV_WRITE;
		events &= r->events | ((evs[i].events & (EPOLLHUP | EPOLLERR)) ?
					       EV_READ | EV_WRITE : 0);
		if (events != 0)
			r->fn(loop, fd, events, r->ctx);
	}
	ev_run_timers(loop);
	ev_run_defers(loop);
	return 0;
}

int
ev_run(struct ev_loop *loop)
{
	loop->stop = false;
	while (!loop->stop) {
		if (ev_run_once(loop, -1) < 0)
			return -1;
	}
	return 0;
}

void
ev_stop(struct ev_loop *loop)
{
	loop->stop = true;
}

bool
ev_stopped(const struct ev_loop *loop)
{
	return loop->stop;
}
