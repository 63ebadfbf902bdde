#ifndef TERN_EV_H
#define TERN_EV_H
/* The event loop: one per process, epoll-based (Redis' ae.c in spirit).
   fd interest, one-shot timers (a min-heap, so 100k connection timeouts
   are cheap), deferred calls run after the current batch of events, and a
   cached clock read once per iteration. Not thread-safe. */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define EV_READ 1u
#define EV_WRITE 2u

struct ev_loop;
struct ev_timer;

typedef void ev_fd_fn(struct ev_loop *loop, int fd, unsigned events,
		      void *ctx);
typedef void ev_call_fn(struct ev_loop *loop, void *ctx);

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop **loopp);

/* Watch fd for events (EV_READ|EV_WRITE). One callback per fd. 0 or -1. */
int ev_fd_add(struct ev_loop *loop, int fd, unsigned events, ev_fd_fn *fn,
	      void *ctx);
/* Change the watched events (0 = none, but stay registered). */
int ev_fd_mod(struct ev_loop *loop, int fd, unsigned events);
void ev_fd_del(struct ev_loop *loop, int fd);

/* A one-shot timer firing after ms milliseconds. The timer is freed after
   it fires; keep the pointer only while it is pending. */
struct ev_timer *ev_timer_add(struct ev_loop *loop, uint64_t ms,
			      ev_call_fn *fn, void *ctx);
/* Cancel a pending timer and set *tp to NULL (NULL is fine). */
void ev_timer_del(struct ev_loop *loop, struct ev_timer **tp);
/* Re-arm a pending timer to fire ms from now. */
void ev_timer_reset(struct ev_loop *loop, struct ev_timer *t, uint64_t ms);

/* Run fn(ctx) after the events of this iteration (group commit uses it).
   Calls added while running deferred calls run in the same round. */
void ev_defer(struct ev_loop *loop, ev_call_fn *fn, void *ctx);
/* Remove pending deferred calls with this fn (NULL: any) and ctx. */
void ev_defer_cancel(struct ev_loop *loop, ev_call_fn *fn, void *ctx);

/* Monotonic milliseconds and wall-clock seconds, cached per iteration. */
uint64_t ev_now_ms(struct ev_loop *loop);
time_t ev_now(struct ev_loop *loop);
void ev_update_time(struct ev_loop *loop);
/* Monotonic microseconds read now, not cached: for threads and timings
   inside one iteration. */
int64_t ev_clock_us(void);

/* Run until ev_stop(). 0, or -1 on an epoll failure. */
int ev_run(struct ev_loop *loop);
/* Run one iteration waiting at most timeout_ms (-1 = until an event). */
int ev_run_once(struct ev_loop *loop, int timeout_ms);
void ev_stop(struct ev_loop *loop);
bool ev_stopped(const struct ev_loop *loop);

#endif
