#ifndef TERN_LIB_SHARED_LIMITS_H
#define TERN_LIB_SHARED_LIMITS_H
/* Server-wide connection counts and login-failure counters in one
   fixed-size shared-memory table (mmap MAP_SHARED|MAP_ANONYMOUS). The
   master creates it before it forks, the workers inherit it and update it
   with C11 atomics; nothing is allocated after creation and no lock is
   taken. See shared_limits.c for the layout and the guarantees. */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Worker slots: a process counts its connections in its own slot. */
#define SHARED_LIMITS_SLOTS_MAX 256U
/* Buckets per hash row for connection counts per address (two rows). */
#define SHARED_LIMITS_BUCKETS_DEFAULT 4096U
/* Login-failure entries looked at for one key (linear probing). */
#define SHARED_LIMITS_FAIL_PROBE 16U

struct shared_limits;

/* slots: worker slots (at least 1, at most SHARED_LIMITS_SLOTS_MAX);
   buckets: per row, at least 1; fail_entries: login-failure entries (0:
   none). NULL with *error_r set when the mapping fails. */
struct shared_limits *shared_limits_new(unsigned slots, unsigned buckets,
					unsigned fail_entries,
					const char **error_r);
void shared_limits_free(struct shared_limits **sl);

/* The table this process uses for its connections (conn.c) and its
   throttle (auth_throttle.c). When none was set, the first call creates
   a private one-slot table (unit tests, single-process use). */
void shared_limits_set_current(struct shared_limits *sl);
struct shared_limits *shared_limits_current(void);
/* The current table if one was set or created, else NULL. */
struct shared_limits *shared_limits_current_if_any(void);

/* Worker: count this process's connections in slot. Master: the slot's
   process is gone; forget its connections (exact, see the .c). */
void shared_limits_attach(struct shared_limits *sl, unsigned slot);
void shared_limits_slot_clear(struct shared_limits *sl, unsigned slot);
unsigned shared_limits_slots(const struct shared_limits *sl);
/* The shared mapping (every attached process can write all of it) and
   its size: for tests that play a compromised worker. */
void *shared_limits_mapping(const struct shared_limits *sl, size_t *size_r);

/* Connections. add/remove use the attached slot (slot 0 if none). The
   counts are server-wide and never lower than the true count. */
void shared_limits_conn_add(struct shared_limits *sl, const char *addr);
void shared_limits_conn_remove(struct shared_limits *sl, const char *addr);
uint32_t shared_limits_conn_peer(const struct shared_limits *sl,
				 const char *addr);
uint32_t shared_limits_conn_total(const struct shared_limits *sl);
/* The connections of one slot (tests, status). */
uint32_t shared_limits_conn_slot_total(const struct shared_limits *sl,
				       unsigned slot);

/* Login failures per key (e.g. "i:192.0.2.1", "u:user"). A key's count
   restarts from zero once window_secs have passed since its last
   failure. fail_count never reports less than the key's failures, except
   after an eviction (see the .c). */
unsigned shared_limits_fail_capacity(const struct shared_limits *sl);
void shared_limits_fail_add(struct shared_limits *sl, const char *key,
			    time_t now, unsigned window_secs);
void shared_limits_fail_clear(struct shared_limits *sl, const char *key);
uint32_t shared_limits_fail_count(const struct shared_limits *sl,
				  const char *key, time_t now,
				  unsigned window_secs);

#endif
