/* A per-worker cache of the view of a few large mailboxes, so that a
   SELECT (a QRESYNC reconnect above all) of a mailbox this worker has
   loaded before costs O(changes), not O(messages): the cached snapshot
   is brought up to date with the store's changes since its modseq
   (store_msg_changes: new and changed messages, expunged UIDs, RFC 7162
   bookkeeping the store keeps anyway), then copied into the session's
   own view. Each session still owns its view, so sequence numbers stay
   stable within a session until it is told of an expunge (RFC 9051
   7.5.1); only the starting point is shared.

   A snapshot holds every change up to its modseq; applying the same
   change twice is harmless (flags and keywords are set, not toggled;
   an expunged UID is removed if present), so a snapshot may safely be
   dated a little early (the mailbox row is read before the messages).
   Workers are single-threaded: the cache is module state of the
   process, no locks. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/xalloc.h"
#include "store/store.h"

static struct imap_view_snap imap_view_cache[IMAP_VIEW_CACHE_ENTRIES];
static uint64_t imap_view_cache_tick;

static void
imap_view_snap_clear(struct imap_view_snap *c)
{
	imap_msgs_free(c->msgs, c->count);
	free(c->keywords);
	memset(c, 0, sizeof(*c));
}

void
imap_view_cache_deinit(void)
{
	size_t i;

	for (i = 0; i < IMAP_VIEW_CACHE_ENTRIES; i++)
		imap_view_snap_clear(&imap_view_cache[i]);
}

static long
imap_view_snap_find(const struct imap_msg *msgs, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (msgs[mid].uid == uid)
			return (long)mid;
		if (msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int
imap_view_snap_cmp(const void *x, const void *y)
{
	const struct imap_msg *a = x, *b = y;

	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

static char *
imap_view_snap_kw(const char *kw)
{
	return kw != NULL && *kw != '\0' ? xstrdup(kw) : NULL;
}

/* Set or add each changed message (msgs ascending by UID). */
static void
imap_view_snap_changes(struct imap_view_snap *c, const struct store_msg *msgs,
		       size_t n)
{
	size_t i, old = c->count;
	bool unsorted = false;

	for (i = 0; i < n; i++) {
		long k = imap_view_snap_find(c->msgs, old, msgs[i].uid);
		struct imap_msg *m;

		if (k >= 0) {
			m = &c->msgs[k];
			free(m->keywords);
		} else {
			if (c->count == c->cap) {
				c->cap = c->cap < 64 ? 64 : c->cap * 2;
				c->msgs = xreallocarray(c->msgs, c->cap,
							sizeof(*c->msgs));
			}
			if (c->count > 0 &&
			    c->msgs[c->count - 1].uid > msgs[i].uid)
				unsorted = true;
			m = &c->msgs[c->count++];
			memset(m, 0, sizeof(*m));
			m->uid = msgs[i].uid;
		}
		m->flags = msgs[i].flags;
		m->modseq = msgs[i].modseq;
		m->keywords = imap_view_snap_kw(msgs[i].keywords);
	}
	/* New UIDs are above the old ones unless the snapshot missed a
	   message; keep it sorted either way. */
	if (unsorted)
		qsort(c->msgs, c->count, sizeof(*c->msgs), imap_view_snap_cmp);
}

/* Drop the expunged UIDs (ascending or not) in one pass. */
static void
imap_view_snap_expunge(struct imap_view_snap *c, const uint32_t *uids,
		       size_t n)
{
	size_t i, o = 0, gone = 0;

	for (i = 0; i < n; i++) {
		long k = imap_view_snap_find(c->msgs, c->count, uids[i]);

		if (k >= 0 && !c->msgs[k].expunged) {
			c->msgs[k].expunged = true; /* marks "drop" here */
			gone++;
		}
	}
	if (gone == 0)
		return;
	for (i = 0; i < c->count; i++) {
		if (c->msgs[i].expunged) {
			free(c->msgs[i].keywords);
			continue;
		}
		c->msgs[o++] = c->msgs[i];
	}
	c->count = o;
}

void
imap_view_snap_apply(struct imap_view_snap *c, const struct store_msg *msgs,
		     size_t n, const uint32_t *expunged, size_t nexp,
		     struct buf *keywords)
{
	size_t i;

	imap_view_snap_changes(c, msgs, n);
	imap_view_snap_expunge(c, expunged, nexp);
	for (i = 0; i < n; i++)
		imap_keywords_merge(keywords, msgs[i].keywords);
}

static struct imap_view_snap *
imap_view_cache_get(const struct store_mailbox *box)
{
	size_t i;

	for (i = 0; i < IMAP_VIEW_CACHE_ENTRIES; i++) {
		struct imap_view_snap *c = &imap_view_cache[i];

		if (c->mailbox_id == box->id) {
			if (c->uidvalidity == box->uidvalidity)
				return c;
			imap_view_snap_clear(c);
		}
	}
	return NULL;
}

/* Copy the snapshot into v (whose other fields are set). */
static void
imap_view_snap_copy(const struct imap_view_snap *c, struct imap_view *v)
{
	size_t i;

	v->count = c->count;
	v->cap = c->count > 0 ? c->count : 16;
	v->msgs = xreallocarray(NULL, v->cap, sizeof(*v->msgs));
	if (c->count > 0)
		memcpy(v->msgs, c->msgs, c->count * sizeof(*v->msgs));
	for (i = 0; i < c->count; i++) {
		if (v->msgs[i].keywords != NULL)
			v->msgs[i].keywords = xstrdup(v->msgs[i].keywords);
	}
	v->keywords = xstrdup(c->keywords != NULL ? c->keywords : "");
}

int
imap_view_cache_load(struct store *st, const struct store_mailbox *box,
		     struct imap_view *v)
{
	struct imap_view_snap *c = imap_view_cache_get(box);
	struct store_msg *msgs = NULL;
	uint32_t *expunged = NULL;
	size_t n = 0, nexp = 0;
	struct buf kw;

	if (c == NULL)
		return 0;
	if (box->highestmodseq != c->modseq) {
		if (store_msg_changes(st, box->id, c->modseq, &msgs, &n,
				      &expunged, &nexp) < 0)
			return -1;
		buf_init(&kw, IMAP_VIEW_KEYWORDS_MAX_BYTES);
		if (c->keywords != NULL)
			(void)buf_append_str(&kw, c->keywords);
		imap_view_snap_apply(c, msgs, n, expunged, nexp, &kw);
		free(c->keywords);
		c->keywords = buf_steal(&kw, NULL);
		store_msgs_free(msgs, n);
		free(expunged);
		/* every change up to the mailbox row read before is in */
		if (box->highestmodseq > c->modseq)
			c->modseq = box->highestmodseq;
	}
	c->used = ++imap_view_cache_tick;
	imap_view_snap_copy(c, v);
	return 1;
}

void
imap_view_cache_put(const struct store_mailbox *box,
		    const struct imap_view *v)
{
	struct imap_view_snap *c = NULL;
	size_t i;

	if (v->count < IMAP_VIEW_CACHE_MIN_MSGS ||
	    v->count > IMAP_VIEW_CACHE_MAX_MSGS)
		return;
	for (i = 0; i < IMAP_VIEW_CACHE_ENTRIES; i++) {
		struct imap_view_snap *e = &imap_view_cache[i];

		if (e->mailbox_id == box->id) {
			c = e;
			break;
		}
		if (c == NULL || e->mailbox_id == 0 ||
		    (c->mailbox_id != 0 && e->used < c->used))
			c = e;
	}
	imap_view_snap_clear(c);
	c->mailbox_id = box->id;
	c->uidvalidity = box->uidvalidity;
	c->modseq = box->highestmodseq;
	c->count = c->cap = v->count;
	c->msgs = xreallocarray(NULL, c->cap, sizeof(*c->msgs));
	for (i = 0; i < v->count; i++) {
		c->msgs[i] = v->msgs[i];
		c->msgs[i].expunged = false;
		c->msgs[i].recent = false;
		if (c->msgs[i].keywords != NULL)
			c->msgs[i].keywords = xstrdup(c->msgs[i].keywords);
	}
	c->keywords = xstrdup(v->keywords != NULL ? v->keywords : "");
	c->used = ++imap_view_cache_tick;
}
