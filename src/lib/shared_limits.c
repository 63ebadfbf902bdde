/* Server-wide limits in shared memory: connections per address and in
   total, and login failures per key, shared by every worker.

   Layout (one mapping, sizes fixed at creation):
     header     magic, sizes, the SipHash key, the slots in use
     slots      per worker slot: total, row 0[buckets], row 1[buckets]
     failures   fail_entries x { tag, state }

   Connections. A worker only ever changes its own slot, one atomic
   counter at a time; a server-wide count is the sum over the slots in
   use (at most SHARED_LIMITS_SLOTS_MAX, in practice the worker count).
   When a worker dies, whatever it held is exactly what its slot holds,
   so the master zeroes the slot (shared_limits_slot_clear) and the
   limit recovers at once, whatever instruction the worker died on: no
   server-wide counter can be left half-updated.

   An address is hashed (SipHash-2-4, key random per server) to one
   bucket in each of two rows; both buckets count the connection, and
   the address's count is the smaller of the two sums (a count-min
   sketch). Buckets are shared by colliding addresses, so a collision can
   only raise a count: the limit gets stricter for the colliders, never
   looser. Two different addresses must collide in both rows to be
   confused, and the random key keeps a client from choosing addresses
   that do.

   Concurrency: a connection is added before its limit is checked, and
   every operation is sequentially consistent. Of N connections racing
   for the last place, the one whose last increment comes last in that
   order sees all N; so more than the limit are never accepted together
   (several may be refused, which errs on the strict side).

   Login failures: open addressing over a 64-bit keyed hash of the key
   (a "tag"; two keys with the same tag would share a count: 2^-64).
   Each entry packs failures (high 32 bits) and the time of the last
   failure (low 32 bits, seconds) into one atomic word, updated with a
   compare-and-swap loop, so expiry and increment never race. A new key
   takes the first empty entry of its probe window; a full window evicts
   its expired or least recently failed entry (as the old per-worker
   table evicted its oldest), which forgets that key's count. Entries are
   never emptied again, so a key is never found beyond an empty entry. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/shared_limits.h"
#include "lib/xalloc.h"

#define SHARED_LIMITS_MAGIC 0x7465726e4c494d31ULL /* "ternLIM1" */
#define SHARED_LIMITS_EVICT_TRIES 4

struct shared_limits_fail {
	_Atomic uint64_t tag;	/* 0: empty */
	_Atomic uint64_t state; /* failures << 32 | last failure (s) */
};

struct shared_limits_hdr {
	uint64_t magic;
	uint64_t key[2];
	uint32_t slots, buckets, fail_entries;
	_Atomic uint32_t slots_used; /* highest attached slot + 1 */
};

/* The process-local handle; the mapping itself is shared. */
struct shared_limits {
	struct shared_limits_hdr *hdr;
	_Atomic uint32_t *cells; /* slots x (1 + 2 * buckets) */
	struct shared_limits_fail *fail;
	size_t size;
	unsigned slot;
	/* The geometry and key, copied out of the shared header: every
	   worker can write the mapping, so a compromised one could change
	   the header, and the master (root) must not size its writes (slot
	   clearing) by numbers it wrote. */
	unsigned slots, buckets, fail_entries;
	uint64_t key[2];
};

static struct shared_limits *shared_limits_cur;

/* ---- SipHash-2-4 ---- */

#define SHARED_LIMITS_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void
shared_limits_sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = SHARED_LIMITS_ROTL(v[1], 13);
	v[1] ^= v[0];
	v[0] = SHARED_LIMITS_ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = SHARED_LIMITS_ROTL(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = SHARED_LIMITS_ROTL(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = SHARED_LIMITS_ROTL(v[1], 17);
	v[1] ^= v[2];
	v[2] = SHARED_LIMITS_ROTL(v[2], 32);
}

static void
shared_limits_sipmix(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	shared_limits_sipround(v);
	shared_limits_sipround(v);
	v[0] ^= m;
}

static uint64_t
shared_limits_hash(const struct shared_limits *sl, const char *s)
{
	const uint64_t *k = sl->key;
	uint64_t v[4] = { k[0] ^ 0x736f6d6570736575ULL,
			  k[1] ^ 0x646f72616e646f6dULL,
			  k[0] ^ 0x6c7967656e657261ULL,
			  k[1] ^ 0x7465646279746573ULL };
	size_t len = strlen(s), i;
	uint64_t m;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, s + i, 8);
		shared_limits_sipmix(v, m);
	}
	m = (uint64_t)len << 56;
	for (size_t j = 0; i + j < len; j++)
		m |= (uint64_t)(uint8_t)s[i + j] << (8 * j);
	shared_limits_sipmix(v, m);
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		shared_limits_sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- lifecycle ---- */

static void
shared_limits_random_key(uint64_t key[2])
{
	if (getrandom(key, 2 * sizeof(key[0]), 0) ==
	    (ssize_t)(2 * sizeof(key[0])))
		return;
	/* No entropy: collisions could be chosen, which only makes the
	   limits stricter for the chooser's own addresses. */
	key[0] = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	key[1] = (uint64_t)time(NULL) * 0xc2b2ae3d27d4eb4fULL;
}

struct shared_limits *
shared_limits_new(unsigned slots, unsigned buckets, unsigned fail_entries,
		  const char **error_r)
{
	struct shared_limits *sl;
	size_t ncells, size;
	void *p;

	if (slots < 1)
		slots = 1;
	if (slots > SHARED_LIMITS_SLOTS_MAX)
		slots = SHARED_LIMITS_SLOTS_MAX;
	if (buckets < 1)
		buckets = 1;
	ncells = (size_t)slots * (1 + 2 * (size_t)buckets);
	size = sizeof(struct shared_limits_hdr) + ncells * sizeof(uint32_t);
	size = (size + 15) & ~(size_t)15;
	size += (size_t)fail_entries * sizeof(struct shared_limits_fail);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		*error_r = strerror(errno);
		return NULL;
	}
	sl = xcalloc(1, sizeof(*sl));
	sl->hdr = p;
	sl->size = size;
	sl->hdr->magic = SHARED_LIMITS_MAGIC;
	sl->hdr->slots = sl->slots = slots;
	sl->hdr->buckets = sl->buckets = buckets;
	sl->hdr->fail_entries = sl->fail_entries = fail_entries;
	atomic_init(&sl->hdr->slots_used, 1);
	shared_limits_random_key(sl->key);
	memcpy(sl->hdr->key, sl->key, sizeof(sl->key));
	sl->cells = (_Atomic uint32_t *)(sl->hdr + 1);
	sl->fail = (struct shared_limits_fail *)
		((char *)p + size -
		 (size_t)fail_entries * sizeof(struct shared_limits_fail));
	/* Anonymous mappings start zeroed: every count is 0, every entry
	   empty. */
	return sl;
}

void
shared_limits_free(struct shared_limits **slp)
{
	struct shared_limits *sl = *slp;

	if (sl == NULL)
		return;
	if (shared_limits_cur == sl)
		shared_limits_cur = NULL;
	munmap(sl->hdr, sl->size);
	free(sl);
	*slp = NULL;
}

void
shared_limits_set_current(struct shared_limits *sl)
{
	shared_limits_cur = sl;
}

struct shared_limits *
shared_limits_current_if_any(void)
{
	return shared_limits_cur;
}

struct shared_limits *
shared_limits_current(void)
{
	const char *error;

	if (shared_limits_cur == NULL) {
		shared_limits_cur = shared_limits_new(
			1, SHARED_LIMITS_BUCKETS_DEFAULT, 0, &error);
		if (shared_limits_cur == NULL)
			fatal("shared limits table: %s", error);
	}
	return shared_limits_cur;
}

void *
shared_limits_mapping(const struct shared_limits *sl, size_t *size_r)
{
	*size_r = sl->size;
	return sl->hdr;
}

unsigned
shared_limits_slots(const struct shared_limits *sl)
{
	return sl->slots;
}

void
shared_limits_attach(struct shared_limits *sl, unsigned slot)
{
	if (slot >= sl->slots)
		panic("shared limits slot %u out of range", slot);
	sl->slot = slot;
	/* raise slots_used to slot + 1 */
	uint32_t used = atomic_load(&sl->hdr->slots_used);
	while (used < slot + 1 &&
	       !atomic_compare_exchange_weak(&sl->hdr->slots_used, &used,
					     slot + 1))
		;
}

/* ---- connections ---- */

static _Atomic uint32_t *
shared_limits_slot_cells(const struct shared_limits *sl, unsigned slot)
{
	return sl->cells + (size_t)slot * (1 + 2 * (size_t)sl->buckets);
}

static void
shared_limits_buckets(const struct shared_limits *sl, const char *addr,
		      size_t b_r[2])
{
	uint64_t h = shared_limits_hash(sl, addr);
	uint32_t n = sl->buckets;

	/* cell 0 of a slot is its total; row 0 follows, then row 1 */
	b_r[0] = 1 + (uint32_t)h % n;
	b_r[1] = 1 + n + (uint32_t)(h >> 32) % n;
}

void
shared_limits_slot_clear(struct shared_limits *sl, unsigned slot)
{
	_Atomic uint32_t *cells;
	size_t n;

	if (slot >= sl->slots)
		return;
	cells = shared_limits_slot_cells(sl, slot);
	n = 1 + 2 * (size_t)sl->buckets;
	for (size_t i = 0; i < n; i++)
		atomic_store(&cells[i], 0);
}

static void
shared_limits_conn_change(struct shared_limits *sl, const char *addr,
			  bool add)
{
	_Atomic uint32_t *cells = shared_limits_slot_cells(sl, sl->slot);
	size_t b[2];

	shared_limits_buckets(sl, addr, b);
	if (add) {
		atomic_fetch_add(&cells[0], 1);
		atomic_fetch_add(&cells[b[0]], 1);
		atomic_fetch_add(&cells[b[1]], 1);
		return;
	}
	/* Never below zero, even if the caller's bookkeeping were wrong. */
	for (int i = 0; i < 3; i++) {
		_Atomic uint32_t *cell = &cells[i == 0 ? 0 : b[i - 1]];
		uint32_t v = atomic_load(cell);
		while (v > 0 && !atomic_compare_exchange_weak(cell, &v, v - 1))
			;
	}
}

void
shared_limits_conn_add(struct shared_limits *sl, const char *addr)
{
	shared_limits_conn_change(sl, addr, true);
}

void
shared_limits_conn_remove(struct shared_limits *sl, const char *addr)
{
	shared_limits_conn_change(sl, addr, false);
}

/* The sum of one cell over every slot in use. */
static uint32_t
shared_limits_sum(const struct shared_limits *sl, size_t cell)
{
	uint32_t used = atomic_load(&sl->hdr->slots_used);
	uint64_t sum = 0;

	if (used > sl->slots)
		used = sl->slots;
	for (unsigned s = 0; s < used; s++)
		sum += atomic_load(&shared_limits_slot_cells(sl, s)[cell]);
	return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

uint32_t
shared_limits_conn_peer(const struct shared_limits *sl, const char *addr)
{
	size_t b[2];
	uint32_t r0, r1;

	shared_limits_buckets(sl, addr, b);
	r0 = shared_limits_sum(sl, b[0]);
	r1 = shared_limits_sum(sl, b[1]);
	return r0 < r1 ? r0 : r1;
}

uint32_t
shared_limits_conn_total(const struct shared_limits *sl)
{
	return shared_limits_sum(sl, 0);
}

uint32_t
shared_limits_conn_slot_total(const struct shared_limits *sl, unsigned slot)
{
	if (slot >= sl->slots)
		return 0;
	return atomic_load(&shared_limits_slot_cells(sl, slot)[0]);
}

/* ---- login failures ---- */

#define SHARED_LIMITS_FAILURES(st) ((uint32_t)((st) >> 32))
#define SHARED_LIMITS_LAST(st) ((uint32_t)(st))

static uint32_t
shared_limits_secs(time_t now)
{
	if (now < 0)
		return 0;
	return (uint64_t)now > UINT32_MAX ? UINT32_MAX : (uint32_t)now;
}

static bool
shared_limits_expired(uint64_t st, uint32_t now, unsigned window)
{
	uint32_t last = SHARED_LIMITS_LAST(st);

	return SHARED_LIMITS_FAILURES(st) == 0 ||
		(now > last && now - last >= window);
}

unsigned
shared_limits_fail_capacity(const struct shared_limits *sl)
{
	return sl->fail_entries;
}

static uint64_t
shared_limits_tag(const struct shared_limits *sl, const char *key)
{
	uint64_t tag = shared_limits_hash(sl, key);

	return tag != 0 ? tag : 1;
}

static struct shared_limits_fail *
shared_limits_fail_at(const struct shared_limits *sl, uint64_t tag,
		      unsigned i)
{
	uint32_t n = sl->fail_entries;

	return &sl->fail[(size_t)((tag + i) % n)];
}

/* The entry of tag, or NULL. */
static struct shared_limits_fail *
shared_limits_fail_find(const struct shared_limits *sl, uint64_t tag)
{
	unsigned probe = SHARED_LIMITS_FAIL_PROBE;

	if (sl->fail_entries == 0)
		return NULL;
	if (probe > sl->fail_entries)
		probe = sl->fail_entries;
	for (unsigned i = 0; i < probe; i++) {
		struct shared_limits_fail *e = shared_limits_fail_at(sl, tag, i);
		uint64_t t = atomic_load(&e->tag);
		if (t == tag)
			return e;
		if (t == 0)
			return NULL;
	}
	return NULL;
}

/* Find tag's entry or claim one for it: the first empty entry of the
   window (so two workers adding the same new key meet on the same
   entry), else evict the expired or least recent one. */
static struct shared_limits_fail *
shared_limits_fail_claim(struct shared_limits *sl, uint64_t tag,
			 uint32_t now, unsigned window)
{
	unsigned probe = SHARED_LIMITS_FAIL_PROBE;
	struct shared_limits_fail *victim = NULL;

	if (probe > sl->fail_entries)
		probe = sl->fail_entries;
	for (int attempt = 0; attempt < SHARED_LIMITS_EVICT_TRIES; attempt++) {
		uint64_t victim_tag = 0, victim_last = UINT64_MAX;

		for (unsigned i = 0; i < probe; i++) {
			struct shared_limits_fail *e =
				shared_limits_fail_at(sl, tag, i);
			uint64_t t = atomic_load(&e->tag), st, last;
			if (t == 0 && atomic_compare_exchange_strong(
					      &e->tag, &t, tag))
				return e;
			if (t == tag)
				return e;
			st = atomic_load(&e->state);
			last = shared_limits_expired(st, now, window) ?
				0 : SHARED_LIMITS_LAST(st);
			if (last < victim_last) {
				victim = e;
				victim_tag = t;
				victim_last = last;
			}
		}
		if (atomic_compare_exchange_strong(&victim->tag, &victim_tag,
						   tag)) {
			atomic_store(&victim->state, 0);
			return victim;
		}
	}
	/* Still racing: share the victim's count (stricter for both). */
	return victim;
}

void
shared_limits_fail_add(struct shared_limits *sl, const char *key,
		       time_t now, unsigned window_secs)
{
	uint32_t secs = shared_limits_secs(now);
	struct shared_limits_fail *e;
	uint64_t st, next;

	if (sl->fail_entries == 0)
		return;
	e = shared_limits_fail_claim(sl, shared_limits_tag(sl, key), secs,
				     window_secs);
	st = atomic_load(&e->state);
	do {
		uint32_t f = SHARED_LIMITS_FAILURES(st);
		uint32_t last = SHARED_LIMITS_LAST(st);
		if (shared_limits_expired(st, secs, window_secs)) {
			f = 0;
			last = 0;
		}
		if (f < UINT32_MAX)
			f++;
		if (secs > last)
			last = secs;
		next = (uint64_t)f << 32 | last;
	} while (!atomic_compare_exchange_weak(&e->state, &st, next));
}

void
shared_limits_fail_clear(struct shared_limits *sl, const char *key)
{
	struct shared_limits_fail *e =
		shared_limits_fail_find(sl, shared_limits_tag(sl, key));

	if (e != NULL)
		atomic_store(&e->state, 0);
}

uint32_t
shared_limits_fail_count(const struct shared_limits *sl, const char *key,
			 time_t now, unsigned window_secs)
{
	struct shared_limits_fail *e =
		shared_limits_fail_find(sl, shared_limits_tag(sl, key));
	uint64_t st;

	if (e == NULL)
		return 0;
	st = atomic_load(&e->state);
	if (shared_limits_expired(st, shared_limits_secs(now), window_secs))
		return 0;
	return SHARED_LIMITS_FAILURES(st);
}
