/* A per-worker cache of what never changes about a message once it is
   in a mailbox: its global id, size, INTERNALDATE, SAVEDATE and blob.
   A FETCH of a message this worker has fetched before (a client that
   opens the same mail again, two devices of one user on one worker)
   then needs no store query at all; the flags come from the session's
   view as always.

   The key is (mailbox id, UIDVALIDITY, UID): a UID is never reused
   within one UIDVALIDITY (RFC 9051 2.3.1.1), and UIDVALIDITY values are
   unique across the store (store_mailbox_uidvalidity), so a mailbox id
   reused after a DELETE cannot alias an old entry. A session only looks
   up UIDs of its own view, whose mailbox belongs to its account.

   An entry may outlive its message (expunged by another session): the
   session may still be served it until it is told of the expunge (RFC
   9051 7.5.1 allows either); once the blob is gone, FETCH skips it as
   expunged, like a row the store no longer has.

   Direct-mapped, fixed size, allocated at first use; workers are
   single-threaded, so no locks. */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "store/store.h"
#include "lib/xalloc.h"

#define IMAP_MSG_CACHE_SLOTS 2048 /* power of two; about 240 KB */

struct imap_msg_cache_ent {
	int64_t mailbox_id; /* 0: empty slot */
	uint32_t uidvalidity, uid;
	int64_t id;
	uint64_t size;
	int64_t internaldate, savedate;
	char blob[STORE_HASH_HEX_LEN + 1];
};

static struct imap_msg_cache_ent *imap_msg_cache;

static struct imap_msg_cache_ent *
imap_msg_cache_slot(int64_t mailbox_id, uint32_t uid)
{
	uint64_t h = (uint64_t)mailbox_id * 0x9e3779b97f4a7c15ULL ^ uid;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return &imap_msg_cache[h & (IMAP_MSG_CACHE_SLOTS - 1)];
}

bool
imap_msg_cache_get(int64_t mailbox_id, uint32_t uidvalidity, uint32_t uid,
		   struct store_msg *m)
{
	const struct imap_msg_cache_ent *e;

	if (imap_msg_cache == NULL || mailbox_id == 0)
		return false;
	e = imap_msg_cache_slot(mailbox_id, uid);
	if (e->mailbox_id != mailbox_id || e->uidvalidity != uidvalidity ||
	    e->uid != uid)
		return false;
	memset(m, 0, sizeof(*m));
	m->id = e->id;
	m->uid = uid;
	m->size = e->size;
	m->internaldate = e->internaldate;
	m->savedate = e->savedate;
	memcpy(m->blob, e->blob, sizeof(m->blob));
	return true;
}

void
imap_msg_cache_put(int64_t mailbox_id, uint32_t uidvalidity,
		   const struct store_msg *m)
{
	struct imap_msg_cache_ent *e;

	if (mailbox_id == 0)
		return;
	if (imap_msg_cache == NULL)
		imap_msg_cache = xcalloc(IMAP_MSG_CACHE_SLOTS,
					 sizeof(*imap_msg_cache));
	e = imap_msg_cache_slot(mailbox_id, m->uid);
	e->mailbox_id = mailbox_id;
	e->uidvalidity = uidvalidity;
	e->uid = m->uid;
	e->id = m->id;
	e->size = m->size;
	e->internaldate = m->internaldate;
	e->savedate = m->savedate;
	memcpy(e->blob, m->blob, sizeof(e->blob));
}

void
imap_msg_cache_deinit(void)
{
	free(imap_msg_cache);
	imap_msg_cache = NULL;
}
