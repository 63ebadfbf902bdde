/* Tests for imap_msg_cache.c: a message put is found again with the
   same immutable fields (and no flags or keywords); the key is the
   mailbox, its UIDVALIDITY and the UID, so a different UIDVALIDITY (a
   mailbox id reused after DELETE) or another mailbox misses; a newer
   entry for the same slot replaces the older one; nothing is found
   before the first put or after deinit. */
#include <string.h>

#include "harness.h"
#include "imap/imap_int.h"
#include "store/store.h"

static struct store_msg
msg(uint32_t uid, int64_t id)
{
	struct store_msg m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.uid = uid;
	m.flags = STORE_FLAG_SEEN;
	m.modseq = 9;
	m.size = 1000 + uid;
	m.internaldate = 1700000000 + uid;
	m.savedate = 1700000100 + uid;
	memset(m.blob, 'a' + (int)(uid % 6), STORE_HASH_HEX_LEN);
	return m;
}

static void
test_imap_msg_cache(void)
{
	struct store_msg m = msg(7, 70), got;
	uint32_t uid;

	test_assert(!imap_msg_cache_get(3, 100, 7, &got));
	imap_msg_cache_put(3, 100, &m);
	test_assert(imap_msg_cache_get(3, 100, 7, &got));
	test_assert(got.id == 70 && got.uid == 7 && got.size == 1007);
	test_assert(got.internaldate == m.internaldate);
	test_assert(got.savedate == m.savedate);
	test_assert_strcmp(got.blob, m.blob);
	/* flags and modseq live in the session's view, not here */
	test_assert(got.flags == 0 && got.modseq == 0 && got.keywords == NULL);
	test_assert(!imap_msg_cache_get(3, 101, 7, &got));
	test_assert(!imap_msg_cache_get(4, 100, 7, &got));
	test_assert(!imap_msg_cache_get(3, 100, 8, &got));
	test_assert(!imap_msg_cache_get(0, 100, 7, &got));
	/* the same key again: the newer entry wins */
	m.id = 71;
	imap_msg_cache_put(3, 100, &m);
	test_assert(imap_msg_cache_get(3, 100, 7, &got) && got.id == 71);
	/* fill far past the table's size: every lookup is right or a miss */
	for (uid = 1; uid <= 20000; uid++) {
		struct store_msg x = msg(uid, uid);

		imap_msg_cache_put(5, 200, &x);
	}
	{
		unsigned hits = 0;

		for (uid = 1; uid <= 20000; uid++) {
			if (!imap_msg_cache_get(5, 200, uid, &got))
				continue;
			hits++;
			test_assert_idx(got.id == uid && got.size == 1000 + uid,
					uid);
		}
		test_assert(hits > 0);
		/* the last one put is always there */
		test_assert(imap_msg_cache_get(5, 200, 20000, &got));
	}
	imap_msg_cache_deinit();
	test_assert(!imap_msg_cache_get(5, 200, 20000, &got));
}

static const struct test_case tests[] = {
	{ "imap_msg_cache", test_imap_msg_cache },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
