/* Tests for the full-text index (store_fts.c): candidates per mailbox
   for substrings of decoded text and header, short needles, quotes in
   the needle, one row per deduplicated blob, rows gone with the blob,
   and text that is not valid UTF-8. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store/store_int.h"

static struct store *
fts_store(int64_t *inbox_r, int64_t *other_r)
{
	char dir[512];
	const char *error = NULL;
	struct store_mailbox box;
	struct store *s;
	int64_t acct = 0;

	snprintf(dir, sizeof(dir), "%s/fts", test_tmpdir());
	s = store_open(dir, &error);
	if (s == NULL) {
		fprintf(stderr, "store_open: %s\n", error);
		exit(1);
	}
	test_assert(store_domain_add(s, "example.test") == STORE_OK);
	test_assert(store_account_add(s, "f@example.test", "standard", "h",
				      NULL, &acct) == STORE_OK);
	test_assert(store_mailbox_get(s, acct, "INBOX", &box) == 1);
	*inbox_r = box.id;
	store_mailbox_clear(&box);
	test_assert(store_mailbox_get(s, acct, "Archive", &box) == 1);
	*other_r = box.id;
	store_mailbox_clear(&box);
	return s;
}

static uint32_t
fts_append(struct store *s, int64_t box, const char *msg)
{
	char hash[STORE_HASH_HEX_LEN + 1];
	uint32_t uid = 0;

	test_assert(store_blob_write(s, msg, strlen(msg), hash) == STORE_OK);
	test_assert(store_msg_append(s, box, hash, 0, NULL, 0, &uid) ==
		    STORE_OK);
	return uid;
}

/* The candidates as "1,3" (or "-" when the index cannot answer). */
static const char *
fts_cands(struct store *s, int64_t box, const char *needle, bool hdr)
{
	static char out[256];
	uint32_t *uids;
	size_t n, i, o = 0;
	int r = store_fts_candidates(s, box, needle, hdr, &uids, &n);

	test_assert(r >= 0);
	if (r == 0)
		return "-";
	out[0] = '\0';
	for (i = 0; i < n && o < sizeof(out) - 12; i++)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%u",
				      i > 0 ? "," : "", uids[i]);
	free(uids);
	return out;
}

static const char m1[] =
	"Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= hello\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\n"
	/* base64 of: Quokka says "qq" to zebras */
	"UXVva2thIHNheXMgInFxIiB0byB6ZWJyYXM=\r\n";
static const char m2[] =
	"Subject: other\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	"zeb=\r\nras and more\r\n";
static const char m3[] = "Subject: caf\xc3\xa9\xa9\r\n\r\nbody\r\n";

static void
test_store_fts_candidates(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);

	test_assert(fts_append(s, inbox, m1) == 1);
	test_assert(fts_append(s, inbox, m2) == 2);
	test_assert(fts_append(s, inbox, m3) == 3);
	test_assert_strcmp(fts_cands(s, inbox, "zebras", false), "1,2");
	test_assert_strcmp(fts_cands(s, inbox, "ZEBRA", false), "1,2");
	test_assert_strcmp(fts_cands(s, inbox, "okka", false), "1");
	test_assert_strcmp(fts_cands(s, inbox, "hello", false), "");
	test_assert_strcmp(fts_cands(s, inbox, "hello", true), "1");
	test_assert_strcmp(fts_cands(s, inbox, "Gr\xc3\xbc\xc3\x9f" "e", true),
			   "1,3"); /* 3: not UTF-8, kept for non-ASCII */
	test_assert_strcmp(fts_cands(s, inbox, "caf\xc3\xa9", true), "3");
	test_assert_strcmp(fts_cands(s, inbox, "\"qq\"", false), "1");
	test_assert_strcmp(fts_cands(s, inbox, "s \"q", false), "1");
	test_assert_strcmp(fts_cands(s, inbox, "qq", false), "-");
	test_assert_strcmp(fts_cands(s, inbox, "\xc3\xbc\xc3\x9f", false),
			   "-");
	test_assert_strcmp(fts_cands(s, other, "zebras", false), "");
	store_close(&s);
}

static void
test_store_fts_dedup_gc(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);
	uint32_t uid;

	uid = fts_append(s, inbox, m2);
	test_assert(fts_append(s, other, m2) == 1);
	test_assert_strcmp(fts_cands(s, other, "zebras", false), "1");
	test_assert(store_msg_expunge(s, inbox, &uid, 1, NULL) == STORE_OK);
	test_assert_strcmp(fts_cands(s, inbox, "zebras", false), "");
	test_assert_strcmp(fts_cands(s, other, "zebras", false), "1");
	uid = 1;
	test_assert(store_msg_expunge(s, other, &uid, 1, NULL) == STORE_OK);
	/* the blob is collected and a new copy is indexed afresh */
	test_assert(fts_append(s, inbox, m2) == 2);
	test_assert_strcmp(fts_cands(s, inbox, "zebras", false), "2");
	store_close(&s);
}

/* Inside a batch the rows are written at its COMMIT; a savepoint rolled
   back drops its rows, a batch rolled back drops them all. */
static void
test_store_fts_batch(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);
	struct store_tx tx;

	test_assert(store_batch_begin(s) == STORE_OK);
	test_assert(fts_append(s, inbox, m1) == 1);
	test_assert(store_tx_begin(s, &tx) == STORE_OK);
	test_assert(fts_append(s, other, m2) == 1);
	store_tx_rollback(s, &tx);
	test_assert(store_batch_commit(s) == STORE_OK);
	test_assert_strcmp(fts_cands(s, inbox, "zebras", false), "1");
	test_assert_strcmp(fts_cands(s, other, "zebras", false), "");
	test_assert(store_batch_begin(s) == STORE_OK);
	test_assert(fts_append(s, inbox, m3) == 2);
	store_batch_rollback(s);
	test_assert_strcmp(fts_cands(s, inbox, "caf\xc3\xa9", true), "");
	/* and the same message later, outside a batch, is indexed */
	test_assert(fts_append(s, inbox, m3) == 2);
	test_assert_strcmp(fts_cands(s, inbox, "caf\xc3\xa9", true), "2");
	store_close(&s);
}

static const struct test_case tests[] = {
	{ "store_fts_batch", test_store_fts_batch },
	{ "store_fts_candidates", test_store_fts_candidates },
	{ "store_fts_dedup_gc", test_store_fts_dedup_gc },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
