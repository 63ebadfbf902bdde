/* Tests for imap_view_cache.c's snapshot update: store changes (flag and
   keyword changes, new messages, a message the snapshot missed) and
   expunged UIDs (present, absent, twice) give the mailbox as the store
   has it, UIDs stay ascending, the keyword set grows, and applying the
   same changes again changes nothing. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "imap/imap_int.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "store/store.h"

static void
snap_init(struct imap_view_snap *c, const uint32_t *uids, size_t n)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->mailbox_id = 1;
	c->cap = n;
	c->msgs = xcalloc(n, sizeof(*c->msgs));
	for (i = 0; i < n; i++) {
		c->msgs[i].uid = uids[i];
		c->msgs[i].modseq = 1;
	}
	c->count = n;
	c->msgs[1].keywords = xstrdup("$old");
}

static void
snap_free(struct imap_view_snap *c)
{
	size_t i;

	for (i = 0; i < c->count; i++)
		free(c->msgs[i].keywords);
	free(c->msgs);
	free(c->keywords);
}

static struct store_msg
chg(uint32_t uid, uint32_t flags, const char *kw, uint64_t modseq)
{
	struct store_msg m;

	memset(&m, 0, sizeof(m));
	m.uid = uid;
	m.flags = flags;
	m.keywords = (char *)kw;
	m.modseq = modseq;
	return m;
}

static void
snap_check(const struct imap_view_snap *c)
{
	static const uint32_t want[] = { 1, 3, 4, 6, 7, 8, 11, 12 };
	size_t i;

	test_assert(c->count == sizeof(want) / sizeof(want[0]));
	for (i = 0; i < c->count && i < sizeof(want) / sizeof(want[0]); i++)
		test_assert_idx(c->msgs[i].uid == want[i], i);
	/* uid 3: flags and keyword set; uid 1 unchanged */
	test_assert(c->msgs[0].flags == 0 && c->msgs[0].modseq == 1);
	test_assert(c->msgs[1].flags == STORE_FLAG_SEEN);
	test_assert(c->msgs[1].modseq == 5);
	test_assert_strcmp(c->msgs[1].keywords, "$a");
	/* uid 6 was missed by the snapshot: inserted in order */
	test_assert(c->msgs[3].modseq == 6);
	test_assert(c->msgs[6].keywords == NULL);
	test_assert_strcmp(c->msgs[7].keywords, "$b $a");
	test_assert(c->msgs[7].flags == STORE_FLAG_FLAGGED);
}

static void
test_imap_view_snap_apply(void)
{
	static const uint32_t uids[] = { 1, 2, 3, 4, 5, 7, 8 };
	static const uint32_t gone[] = { 5, 2, 99, 5 };
	struct store_msg ch[4];
	struct imap_view_snap c;
	struct buf kw;

	snap_init(&c, uids, sizeof(uids) / sizeof(uids[0]));
	/* uid 2 had $old; clearing it is a change to the set, not here */
	ch[0] = chg(3, STORE_FLAG_SEEN, "$a", 5);
	ch[1] = chg(6, 0, "", 6);
	ch[2] = chg(11, 0, NULL, 7);
	ch[3] = chg(12, STORE_FLAG_FLAGGED, "$b $a", 8);
	buf_init(&kw, IMAP_VIEW_KEYWORDS_MAX_BYTES);
	(void)buf_append_str(&kw, "$old");
	imap_view_snap_apply(&c, ch, 4, gone, 4, &kw);
	snap_check(&c);
	test_assert_strcmp(buf_cstr(&kw), "$old $a $b");
	/* the same changes again: nothing moves */
	imap_view_snap_apply(&c, ch, 4, gone, 4, &kw);
	snap_check(&c);
	test_assert_strcmp(buf_cstr(&kw), "$old $a $b");
	/* nothing to apply */
	imap_view_snap_apply(&c, NULL, 0, NULL, 0, &kw);
	snap_check(&c);
	/* expunging everything leaves an empty snapshot */
	{
		static const uint32_t all[] = { 1, 3, 4, 6, 7, 8, 11, 12 };

		imap_view_snap_apply(&c, NULL, 0, all, 8, &kw);
		test_assert(c.count == 0);
	}
	buf_free(&kw);
	snap_free(&c);
}

static const struct test_case tests[] = {
	{ "imap_view_snap_apply", test_imap_view_snap_apply },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
