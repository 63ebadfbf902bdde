/* Tests for the full-text index (store_fts.c): candidates per mailbox
   for substrings of decoded text and header, short needles, quotes in
   the needle, one row per deduplicated blob, rows gone with the blob,
   text that is not valid UTF-8, the "sure" candidates whose match needs
   no exact check, and (against the SQLite linked in) that only U+017F
   and U+212A fold to ASCII in the trigram tokenizer; the index written
   after the COMMIT for the commit thread (store_fts_defer); needles
   asked as covering trigrams (tern_cover) against a substring check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "harness.h"
#include "store_test.h"
#include "store/store_int.h"

static struct store *
fts_store(int64_t *inbox_r, int64_t *other_r)
{
	char dir[512];
	struct store_mailbox box;
	struct store *s;
	int64_t acct = 0;

	s = test_store_open_sub("fts", dir, sizeof(dir));
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

static void
fts_list(char *out, size_t cap, const uint32_t *uids, size_t n)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < n && o < cap - 12; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%u",
				      i > 0 ? "," : "", uids[i]);
}

/* The candidates as "1,3" (or "-" when the index cannot answer); with
   sure, "1,3 sure 1" lists the sure ones too. */
static const char *
fts_query(struct store *s, int64_t box, const char *needle, bool hdr,
	  bool sure)
{
	static char out[512];
	char sl[256];
	struct store_fts_result res;
	int r = store_fts_candidates(
		s, box, needle,
		(hdr ? STORE_FTS_HEADER : 0) | (sure ? STORE_FTS_SURE : 0),
		&res);

	test_assert(r >= 0);
	if (r == 0)
		return "-";
	fts_list(out, 256, res.uids, res.count);
	if (sure) {
		fts_list(sl, sizeof(sl), res.sure, res.nsure);
		snprintf(out + strlen(out), sizeof(out) - strlen(out),
			 " sure %s", sl);
	} else {
		test_assert(res.nsure == 0);
	}
	store_fts_result_free(&res);
	return out;
}

static const char *
fts_cands(struct store *s, int64_t box, const char *needle, bool hdr)
{
	return fts_query(s, box, needle, hdr, false);
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

static int
fts_blob_state(struct store *s, int64_t box, uint32_t uid)
{
	sqlite3_stmt *st;
	int state = -1;

	test_assert(sqlite3_prepare_v2(s->db, "SELECT b.fts FROM messages m"
				       " JOIN blobs b ON b.id = m.blob_id"
				       " WHERE m.mailbox_id = ? AND m.uid = ?",
				       -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, box);
	sqlite3_bind_int64(st, 2, uid);
	if (sqlite3_step(st) == SQLITE_ROW)
		state = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return state;
}

static int
fts_rows(struct store *s)
{
	sqlite3_stmt *st;
	int n = -1;

	test_assert(store_fts_db(s) == STORE_OK);
	test_assert(sqlite3_prepare_v2(s->fts_db,
				       "SELECT count(*) FROM blob_fts", -1, &st,
				       NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The commit thread's store (store_fts_defer): a batch commits its blobs
   unindexed (fts 0: candidates, read by SEARCH); the rows and states come
   with store_fts_flush_deferred, skipping a blob collected meanwhile; a
   batch rolled back after one that committed drops only its own rows. */
static void
test_store_fts_deferred(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);
	uint32_t uid = 1;

	store_fts_defer(s);
	test_assert(store_batch_begin(s) == STORE_OK);
	test_assert(fts_append(s, inbox, m1) == 1);
	test_assert(fts_append(s, other, m2) == 1);
	test_assert(store_batch_commit(s) == STORE_OK);
	test_assert(fts_blob_state(s, inbox, 1) == STORE_FTS_NONE);
	test_assert(fts_blob_state(s, other, 1) == STORE_FTS_NONE);
	test_assert(fts_rows(s) == 0);
	/* unindexed: a candidate for everything */
	test_assert_strcmp(fts_cands(s, inbox, "nothere", false), "1");
	/* m2's only message goes, its blob is collected before the flush */
	test_assert(store_msg_expunge(s, other, &uid, 1, NULL) == STORE_OK);
	test_assert(store_batch_begin(s) == STORE_OK);
	test_assert(fts_append(s, inbox, m3) == 2);
	test_assert(store_batch_commit(s) == STORE_OK);
	test_assert(store_batch_begin(s) == STORE_OK);
	test_assert(fts_append(s, inbox, "Subject: gone\r\n\r\nrolled\r\n") ==
		    3);
	store_batch_rollback(s);
	/* in transactions of max_rows: m1 (m2's row skipped), then m3 */
	test_assert(store_fts_flush_deferred(s, 2) == STORE_OK);
	test_assert(fts_rows(s) == 1);
	test_assert(fts_blob_state(s, inbox, 2) == STORE_FTS_NONE);
	test_assert(store_fts_flush_deferred(s, 100) == STORE_OK);
	test_assert(fts_rows(s) == 2); /* m1 and m3 */
	test_assert(fts_blob_state(s, inbox, 1) == STORE_FTS_EXACT);
	test_assert(fts_blob_state(s, inbox, 2) == STORE_FTS_RAW);
	test_assert_strcmp(fts_cands(s, inbox, "zebras", false), "1");
	test_assert_strcmp(fts_cands(s, inbox, "nothere", false), "");
	/* nothing held any more */
	test_assert(store_fts_flush_deferred(s, 100) == STORE_OK);
	test_assert(fts_rows(s) == 2);
	store_close(&s);
}

/* Kelvin sign and long s: the index matches "kelvin" and "ask" (folded
   to ASCII) where the exact check does not, so those are candidates but
   never sure. Raw 8-bit text is never sure either. */
static const char m4[] = "Subject: plain\r\n\r\n"
			 "\xe2\x84\xaa" "elvin a\xc5\xbfk\r\n";
static const char m5[] = "Subject: kelvin\r\n\r\n"
			 "kelvin ask caf\xc3\xa9\r\n";
static const char m6[] = "Subject: kelvin \xe9\r\n\r\nkelvin\r\n";

static void
test_store_fts_sure(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);

	test_assert(fts_append(s, inbox, m4) == 1);
	test_assert(fts_append(s, inbox, m5) == 2);
	test_assert(fts_append(s, inbox, m6) == 3);
	test_assert_strcmp(fts_query(s, inbox, "kelvin", false, true),
			   "1,2,3 sure 2");
	test_assert_strcmp(fts_query(s, inbox, "KELVIN", true, true),
			   "1,2,3 sure 2");
	test_assert_strcmp(fts_query(s, inbox, "ASK", false, true),
			   "1,2 sure 2");
	test_assert_strcmp(fts_query(s, inbox, "Caf\xc3\xa9", false, true),
			   "2,3 sure ");
	test_assert_strcmp(fts_query(s, inbox, "kelvin", true, false),
			   "1,2,3");
	store_close(&s);
}

/* The hdr column holds the MIME headers of the parts too: TEXT finds
   an attachment's filename (sure), BODY does not. */
static const char m7[] =
	"Subject: with attachment\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
	"--b\r\nContent-Type: application/pdf; name=\"=?utf-8?Q?Bilan?=.pdf\"\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--b--\r\n";

static void
test_store_fts_part_headers(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);

	test_assert(fts_append(s, inbox, m7) == 1);
	test_assert_strcmp(fts_query(s, inbox, "bilan.pdf", true, true),
			   "1 sure 1");
	test_assert_strcmp(fts_query(s, inbox, "application/pdf", true, true),
			   "1 sure 1");
	test_assert_strcmp(fts_query(s, inbox, "bilan.pdf", false, true),
			   " sure ");
	store_close(&s);
}

/* Every code point from U+0080 to U+1FFFF (all case pairs of Unicode
   lie below) in a trigram table, 4096 per row between "q"s: the rows
   an ASCII trigram "qXq" matches hold a character folding to X. Only
   U+017F ("s") and U+212A ("k") may, as store_fts.c assumes. */
static void
test_store_fts_ascii_folds(void)
{
	sqlite3 *db;
	sqlite3_stmt *ins, *q;
	char text[4096 * 6 + 8], query[8];
	uint32_t c, row, first;
	size_t o;
	int x, rc;

	test_assert(sqlite3_open(":memory:", &db) == SQLITE_OK);
	test_assert(sqlite3_exec(db, "CREATE VIRTUAL TABLE t USING fts5(x,"
				     " tokenize = 'trigram')",
				 NULL, NULL, NULL) == SQLITE_OK);
	test_assert(sqlite3_prepare_v2(db, "INSERT INTO t(rowid, x)"
					   " VALUES (?, ?)",
				       -1, &ins, NULL) == SQLITE_OK);
	for (first = 0x80, row = 0; first < 0x20000; first += 4096, row++) {
		o = 0;
		text[o++] = 'q';
		for (c = first; c < first + 4096; c++) {
			if (c >= 0xd800 && c <= 0xdfff)
				continue;
			if (c < 0x800) {
				text[o++] = (char)(0xc0 | (c >> 6));
			} else if (c < 0x10000) {
				text[o++] = (char)(0xe0 | (c >> 12));
				text[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			} else {
				text[o++] = (char)(0xf0 | (c >> 18));
				text[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
				text[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			}
			text[o++] = (char)(0x80 | (c & 0x3f));
			text[o++] = 'q';
		}
		sqlite3_bind_int64(ins, 1, row);
		sqlite3_bind_text(ins, 2, text, (int)o, SQLITE_STATIC);
		test_assert(sqlite3_step(ins) == SQLITE_DONE);
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	test_assert(sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ?",
				       -1, &q, NULL) == SQLITE_OK);
	for (x = 0x21; x < 0x7f; x++) {
		if (x == '"')
			continue;
		snprintf(query, sizeof(query), "\"q%cq\"", x);
		sqlite3_bind_text(q, 1, query, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			int64_t r = sqlite3_column_int64(q, 0);

			/* U+017F is in row 0, U+212A in row 2 */
			test_assert((r == 0 && (x == 's' || x == 'S')) ||
				    (r == 2 && (x == 'k' || x == 'K')));
		}
		test_assert(rc == SQLITE_DONE);
		sqlite3_reset(q);
	}
	/* both do fold (else store_fts.c is only more careful than needed) */
	sqlite3_bind_text(q, 1, "\"qsq\"", -1, SQLITE_STATIC);
	test_assert(sqlite3_step(q) == SQLITE_ROW);
	sqlite3_reset(q);
	sqlite3_bind_text(q, 1, "\"qKq\"", -1, SQLITE_STATIC);
	test_assert(sqlite3_step(q) == SQLITE_ROW);
	sqlite3_reset(q);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* Text over STORE_FTS_INDEX_MAX_BYTES is not indexed: the blob is a
   candidate for every needle, never a sure match. */
static void
test_store_fts_too_long(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);
	size_t n = STORE_FTS_INDEX_MAX_BYTES + 100, hl;
	char *big = malloc(n + 64);

	test_assert(big != NULL);
	hl = (size_t)snprintf(big, 64, "Subject: long\r\n\r\n");
	memset(big + hl, 'a', n);
	memcpy(big + hl + n / 2, " zebras ", 8);
	big[hl + n] = '\0';
	test_assert(fts_append(s, inbox, "Subject: short\r\n\r\nzebras\r\n")
		    == 1);
	test_assert(fts_append(s, inbox, big) == 2);
	test_assert_strcmp(fts_query(s, inbox, "zebras", false, true),
			   "1,2 sure 1");
	test_assert_strcmp(fts_query(s, inbox, "okapis", false, true),
			   "2 sure ");
	free(big);
	store_close(&s);
}

/* Header-field candidates (blob_hfts) as "1,3 sure 1", "-" when the
   field index cannot answer. */
static const char *
fts_field(struct store *s, int64_t box, const char *field,
	  const char *needle)
{
	static char out[512];
	char sl[256];
	struct store_fts_result res;
	int r = store_fts_field_candidates(s, box, field, needle,
					   STORE_FTS_SURE, &res);

	test_assert(r >= 0);
	if (r == 0)
		return "-";
	fts_list(out, 256, res.uids, res.count);
	fts_list(sl, sizeof(sl), res.sure, res.nsure);
	snprintf(out + strlen(out), sizeof(out) - strlen(out), " sure %s", sl);
	store_fts_result_free(&res);
	return out;
}

static void
test_store_fts_fields(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);

	test_assert(fts_append(s, inbox,
			       "Subject: no such\r\n subject\r\n"
			       "From: =?utf-8?Q?J=C3=B6rg_M?="
			       " <j@example.de>\r\n"
			       "To: x@example.org\r\n\r\nsubject body\r\n")
		    == 1);
	test_assert(fts_append(s, inbox, m3) == 2);
	test_assert(fts_append(s, inbox,
			       "Subject: xno suchx\r\nCc: such subject\r\n"
			       "\r\nno such subject\r\n") == 3);
	/* unfolded and decoded, so a needle with spaces is exact */
	test_assert_strcmp(fts_field(s, inbox, "Subject", "no such subject"),
			   "1 sure 1");
	test_assert_strcmp(fts_field(s, inbox, "SUBJECT", "NO SUCH"),
			   "1,3 sure 1,3");
	test_assert_strcmp(fts_field(s, inbox, "cc", "such subject"),
			   "3 sure 3");
	/* not ASCII: never sure, and 2 (not UTF-8) is a candidate */
	test_assert_strcmp(fts_field(s, inbox, "From", "j\xc3\xb6rg m"),
			   "1,2 sure ");
	test_assert_strcmp(fts_field(s, inbox, "To", "subject"), " sure ");
	/* 2: its header is not UTF-8, a candidate for non-ASCII needles */
	test_assert_strcmp(fts_field(s, inbox, "Subject", "af\xc3\xa9"),
			   "2 sure ");
	test_assert_strcmp(fts_field(s, inbox, "Subject", "caf"),
			   "2 sure ");
	test_assert_strcmp(fts_field(s, inbox, "Subject", "no"), "-");
	test_assert_strcmp(fts_field(s, inbox, "X-Other", "subject"), "-");
	test_assert_strcmp(fts_field(s, other, "Subject", "such"), " sure ");
	/* other fields: each piece of 3 or more characters in hdr */
	{
		struct store_fts_result res;

		test_assert(store_fts_candidates(s, inbox, "no such subject",
						 STORE_FTS_WORDS, &res) == 1);
		test_assert(res.count == 2 && res.uids[0] == 1 &&
			    res.uids[1] == 3 && res.nsure == 0);
		store_fts_result_free(&res);
		test_assert(store_fts_candidates(s, inbox, "body",
						 STORE_FTS_WORDS, &res) == 1);
		test_assert(res.count == 0);
		store_fts_result_free(&res);
		test_assert(store_fts_candidates(s, inbox, "no a\tsu",
						 STORE_FTS_WORDS, &res) == 0);
	}
	/* a blob left unindexed (hfts 0) is a candidate until the pass
	   over such blobs (the index thread's, at its start) indexes it */
	test_assert(store_exec(s, "UPDATE blobs SET hfts = 0") == STORE_OK);
	test_assert(store_fts_exec(s, "DELETE FROM blob_hfts") == STORE_OK);
	test_assert_strcmp(fts_field(s, inbox, "Subject", "no such subject"),
			   "1,2,3 sure ");
	{
		int64_t after = 0;
		size_t n = 0, total = 0;

		do {
			test_assert(store_fts_index_pending(s, &after, 2, &n) ==
				    STORE_OK);
			total += n;
		} while (n > 0);
		test_assert(total == 3);
	}
	test_assert_strcmp(fts_field(s, inbox, "Subject", "no such subject"),
			   "1 sure 1");
	store_close(&s);
}

/* Matches are mapped to UIDs by a lookup each when they are few
   against the mailbox, by a merge pass when many: both give the same
   UIDs, also for one blob held twice by the mailbox. */
static void
test_store_fts_lookup_merge(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);
	const char *dup = "Subject: n7\r\n\r\nwordz7q filler\r\n";
	char msg[128], want[512];
	size_t o = 0;
	int i;

	for (i = 1; i <= 3 * STORE_FTS_LOOKUP_RATIO; i++) {
		snprintf(msg, sizeof(msg),
			 "Subject: n%d\r\n\r\nwordz%dq filler\r\n", i, i);
		test_assert(fts_append(s, inbox, msg) == (uint32_t)i);
	}
	/* the same blob again: uid 61 */
	test_assert(fts_append(s, inbox, dup) == (uint32_t)i);
	test_assert(fts_append(s, other, dup) == 1);
	/* 1 match against 61: lookups */
	test_assert_strcmp(fts_query(s, inbox, "wordz7q", false, true),
			   "7,61 sure 7,61");
	/* 3 of 61 (3 * 20 >= 61): the merge */
	test_assert_strcmp(fts_query(s, inbox, "z1", false, true), "-");
	test_assert_strcmp(fts_query(s, inbox, "rdz1", false, true),
			   "1,10,11,12,13,14,15,16,17,18,19 sure "
			   "1,10,11,12,13,14,15,16,17,18,19");
	test_assert_strcmp(fts_query(s, inbox, "wordz5", false, true),
			   "5,50,51,52,53,54,55,56,57,58,59 sure "
			   "5,50,51,52,53,54,55,56,57,58,59");
	for (i = 1; i <= 3 * STORE_FTS_LOOKUP_RATIO + 1; i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%d",
				      i > 1 ? "," : "", i);
	test_assert_strcmp(fts_cands(s, inbox, "filler", false), want);
	test_assert_strcmp(fts_cands(s, other, "filler", false), "1");
	test_assert_strcmp(fts_cands(s, other, "wordz7q", false), "1");
	store_close(&s);
}

/* Random text over few letters (and a space), so that needles match in
   part and trigrams repeat: seeded, the same every run. */
static void
fts_random(uint32_t *seed, char *out, size_t len)
{
	static const char letters[] = "xyzXYZ ";

	for (size_t i = 0; i < len; i++) {
		*seed = *seed * 1103515245u + 12345u;
		out[i] = letters[(*seed >> 16) % (sizeof(letters) - 1)];
	}
	out[len] = '\0';
}

/* The UIDs 1..n whose text a (or b, unless NULL) contains needle, ASCII
   case-insensitively. */
static void
fts_expect(char *out, size_t cap, char a[][128], char b[][128], int n,
	   const char *needle)
{
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < n && o < cap - 12; i++) {
		if (strcasestr(a[i], needle) != NULL ||
		    (b != NULL && strcasestr(b[i], needle) != NULL))
			o += (size_t)snprintf(out + o, cap - o, "%s%d",
					      o > 0 ? "," : "", i + 1);
	}
}

/* ASCII needles of 5 to 48 characters are asked as covering trigrams
   (tern_cover checks their offsets); shorter and longer ones as the
   phrase. Every length, for BODY, TEXT (header and body columns) and
   the Subject field: exactly the messages whose text holds the needle,
   all sure. */
static void
test_store_fts_cover(void)
{
	enum { N = 60 };
	/* subj: no space at either end (the field is compared trimmed) */
	static char body[N][128], subj[N][128], hdr[N][128];
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);
	char msg[256], needle[96], want[512], sure[1100];
	uint32_t seed = 7;
	int i, len, k;

	for (i = 0; i < N; i++) {
		fts_random(&seed, body[i], 80);
		fts_random(&seed, subj[i], 20);
		subj[i][0] = subj[i][19] = 'x';
		snprintf(hdr[i], sizeof(hdr[i]), "Subject: %s", subj[i]);
		snprintf(msg, sizeof(msg), "Subject: %s\r\n\r\n%s\r\n",
			 subj[i], body[i]);
		test_assert(fts_append(s, inbox, msg) == (uint32_t)i + 1);
	}
	for (len = 3; len <= 60; len++) {
		for (k = 0; k < 6; k++) {
			/* a piece of a body, or random (mostly no match) */
			if (k < 3)
				snprintf(needle, sizeof(needle), "%.*s", len,
					 body[(len * 7 + k) % N] + 80 - len);
			else
				fts_random(&seed, needle, (size_t)len);
			fts_expect(want, sizeof(want), body, NULL, N, needle);
			snprintf(sure, sizeof(sure), "%s sure %s", want, want);
			test_assert_strcmp(fts_query(s, inbox, needle, false,
						     true), sure);
			fts_expect(want, sizeof(want), body, hdr, N, needle);
			snprintf(sure, sizeof(sure), "%s sure %s", want, want);
			test_assert_strcmp(fts_query(s, inbox, needle, true,
						     true), sure);
			if (len > 20)
				continue;
			snprintf(needle, sizeof(needle), "%.*s", len,
				 k < 3 ? subj[(len + k) % N] : "yzy Xzy xxZ yy");
			fts_expect(want, sizeof(want), subj, NULL, N, needle);
			snprintf(sure, sizeof(sure), "%s sure %s", want, want);
			test_assert_strcmp(fts_field(s, inbox, "Subject",
						     needle), sure);
		}
	}
	store_close(&s);
}

/* The merge pass keeps the mailbox's (blob, UID) pairs: a search after
   a change made through another handle (a delivery, EXPUNGE, MOVE, a
   duplicate blob) sees it, and a search inside a transaction that then
   rolls back leaves nothing behind. */
static void
test_store_fts_box_pairs(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other), *s2;
	const char *error = NULL;
	char dir[512], msg[128], want[512];
	struct store_tx tx;
	uint32_t uid = 3, *moved = NULL;
	size_t o = 0;
	int i;

	for (i = 1; i <= 40; i++) {
		snprintf(msg, sizeof(msg), "Subject: p%d\r\n\r\nfiller %d\r\n",
			 i, i);
		test_assert(fts_append(s, inbox, msg) == (uint32_t)i);
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%d",
				      i > 1 ? "," : "", i);
	}
	test_assert_strcmp(fts_cands(s, inbox, "filler", false), want);
	test_assert_strcmp(fts_cands(s, inbox, "filler", false), want);
	snprintf(dir, sizeof(dir), "%s/fts", test_tmpdir());
	s2 = store_open(dir, &error);
	test_assert(s2 != NULL);
	test_assert(fts_append(s2, inbox, "Subject: p7\r\n\r\nfiller 7\r\n")
		    == 41);
	test_assert(store_msg_expunge(s2, inbox, &uid, 1, NULL) == STORE_OK);
	uid = 5;
	test_assert(store_msg_copy(s2, inbox, &uid, 1, other, true, &moved) ==
		    STORE_OK);
	free(moved);
	test_assert_strcmp(fts_cands(s, inbox, "filler", false),
			   "1,2,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,"
			   "21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,"
			   "37,38,39,40,41");
	test_assert_strcmp(fts_cands(s, other, "filler", false), "1");
	store_close(&s2);
	/* inside a transaction of the caller: not kept (after the rollback
	   another EXPUNGE brings the mailbox to the same uidnext and
	   modseq with other pairs) */
	test_assert(store_tx_begin(s, &tx) == STORE_OK);
	uid = 10;
	test_assert(store_msg_expunge(s, inbox, &uid, 1, NULL) == STORE_OK);
	test_assert(strstr(fts_cands(s, inbox, "filler", false), ",9,11,") !=
		    NULL);
	store_tx_rollback(s, &tx);
	uid = 11;
	test_assert(store_msg_expunge(s, inbox, &uid, 1, NULL) == STORE_OK);
	test_assert(strstr(fts_cands(s, inbox, "filler", false), ",9,10,12,") !=
		    NULL);
	store_close(&s);
}

/* One value of a query on connection db (-1: no row). */
static int
fts_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int v = -1;

	test_assert(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The index has a file of its own (schema step 15, store_fts_db.c):
   tern.db holds no full-text table; a message is stored while another
   connection holds index.db's write lock (its rows then wait: the blob
   stays at 0, a candidate), and rows are written while another holds
   tern.db's (only their states wait for it). */
static void
test_store_fts_own_file(void)
{
	int64_t inbox, other, after = 0;
	struct store *s = fts_store(&inbox, &other);
	char path[600];
	sqlite3 *idx, *main;
	size_t n = 0;

	test_assert(fts_append(s, inbox, m1) == 1);
	test_assert(fts_rows(s) == 1);
	test_assert(fts_int(s->db, "SELECT count(*) FROM sqlite_master"
				   " WHERE name IN ('blob_fts', 'blob_hfts')") == 0);
	snprintf(path, sizeof(path), "%s/index.db", store_datadir(s));
	test_assert(sqlite3_open(path, &idx) == SQLITE_OK);
	test_assert(sqlite3_exec(idx, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
		    SQLITE_OK);
	s->busy_limit_ms = 50;
	test_assert(fts_append(s, inbox, m2) == 2);
	test_assert(fts_blob_state(s, inbox, 2) == STORE_FTS_NONE);
	test_assert_strcmp(fts_cands(s, inbox, "zebras", false), "1,2");
	test_assert(sqlite3_exec(idx, "COMMIT", NULL, NULL, NULL) ==
		    SQLITE_OK);
	sqlite3_close(idx);
	/* tern.db locked: the rows go in, the state waits */
	snprintf(path, sizeof(path), "%s/tern.db", store_datadir(s));
	test_assert(sqlite3_open(path, &main) == SQLITE_OK);
	test_assert(sqlite3_exec(main, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
		    SQLITE_OK);
	test_assert(store_fts_index_pending(s, &after, 10, &n) == STORE_BUSY);
	test_assert(fts_rows(s) == 2);
	test_assert(sqlite3_exec(main, "COMMIT", NULL, NULL, NULL) ==
		    SQLITE_OK);
	sqlite3_close(main);
	test_assert(fts_blob_state(s, inbox, 2) == STORE_FTS_NONE);
	after = 0;
	test_assert(store_fts_index_pending(s, &after, 10, &n) == STORE_OK);
	test_assert(n == 1);
	test_assert(fts_blob_state(s, inbox, 2) == STORE_FTS_EXACT);
	test_assert(fts_rows(s) == 2);
	test_assert(store_fts_index_pending(s, &after, 10, &n) == STORE_OK);
	test_assert(n == 0);
	/* index.db removed: nothing of it is trusted at the next open */
	snprintf(path, sizeof(path), "%s", store_datadir(s));
	store_close(&s);
	{
		char f[700];

		snprintf(f, sizeof(f), "%s/index.db", path);
		test_assert(unlink(f) == 0);
		snprintf(f, sizeof(f), "%s/index.db-wal", path);
		(void)unlink(f);
		snprintf(f, sizeof(f), "%s/index.db-shm", path);
		(void)unlink(f);
	}
	s = test_store_open_dir(path);
	test_assert(fts_blob_state(s, inbox, 1) == STORE_FTS_NONE);
	test_assert(fts_blob_state(s, inbox, 2) == STORE_FTS_NONE);
	test_assert(fts_rows(s) == 0);
	test_assert_strcmp(fts_cands(s, inbox, "nothere", false), "1,2");
	store_close(&s);
}

/* A collected blob's rows leave index.db with store_fts_gc (its id
   noted in fts_gone), not before; a noted id that a blob holds again
   keeps its rows. */
static void
test_store_fts_gc(void)
{
	int64_t inbox, other;
	struct store *s = fts_store(&inbox, &other);
	uint32_t uid;
	size_t done = 0;
	char sql[128];

	uid = fts_append(s, inbox, m2);
	test_assert(fts_append(s, inbox, m1) == 2);
	test_assert(fts_rows(s) == 2);
	test_assert(store_msg_expunge(s, inbox, &uid, 1, NULL) == STORE_OK);
	test_assert(fts_int(s->db, "SELECT count(*) FROM fts_gone") == 1);
	test_assert(fts_rows(s) == 2);
	test_assert(store_fts_gc(s, 10, &done) == STORE_OK);
	test_assert(done == 1);
	test_assert(fts_rows(s) == 1);
	test_assert(fts_int(s->db, "SELECT count(*) FROM fts_gone") == 0);
	test_assert(store_fts_gc(s, 10, &done) == STORE_OK);
	test_assert(done == 0);
	/* m1's id noted as if collected and reused: its rows stay */
	snprintf(sql, sizeof(sql), "INSERT INTO fts_gone SELECT blob_id FROM"
		 " messages WHERE mailbox_id = %lld", (long long)inbox);
	test_assert(store_exec(s, sql) == STORE_OK);
	test_assert(store_fts_gc(s, 10, &done) == STORE_OK);
	test_assert(done == 1);
	test_assert(fts_rows(s) == 1);
	test_assert_strcmp(fts_cands(s, inbox, "zebras", false), "2");
	store_close(&s);
}

/* Schema step 15 on a store of step 14: the full-text tables leave
   tern.db, every blob is unindexed (a candidate) until the pass over
   them indexes it into index.db. */
static void
test_store_fts_step15(void)
{
	int64_t inbox, other, after = 0;
	struct store *s = fts_store(&inbox, &other);
	char dir[512];
	size_t n = 0;

	test_assert(fts_append(s, inbox, m1) == 1);
	snprintf(dir, sizeof(dir), "%s", store_datadir(s));
	test_assert(store_exec(s,
			       "CREATE VIRTUAL TABLE main.blob_fts USING"
			       " fts5(hdr, body, tokenize = 'trigram');"
			       "INSERT INTO main.blob_fts(rowid, hdr, body)"
			       " SELECT id, 'old', 'old' FROM blobs;"
			       "DROP TRIGGER blobs_fts_gone;"
			       "DROP TABLE fts_gone;"
			       "PRAGMA user_version = 14;") == STORE_OK);
	store_close(&s);
	s = test_store_open_dir(dir);
	test_assert(fts_int(s->db, "SELECT count(*) FROM sqlite_master"
				   " WHERE name IN ('blob_fts', 'blob_hfts')") == 0);
	test_assert(fts_int(s->db, "SELECT count(*) FROM fts_gone") == 0);
	test_assert(fts_blob_state(s, inbox, 1) == STORE_FTS_NONE);
	test_assert_strcmp(fts_cands(s, inbox, "nothere", false), "1");
	test_assert(store_fts_index_pending(s, &after, 10, &n) == STORE_OK);
	test_assert(n == 1);
	test_assert(fts_blob_state(s, inbox, 1) == STORE_FTS_EXACT);
	test_assert_strcmp(fts_cands(s, inbox, "zebras", false), "1");
	test_assert_strcmp(fts_cands(s, inbox, "nothere", false), "");
	store_close(&s);
}

static const struct test_case tests[] = {
	{ "store_fts_box_pairs", test_store_fts_box_pairs },
	{ "store_fts_cover", test_store_fts_cover },
	{ "store_fts_lookup_merge", test_store_fts_lookup_merge },
	{ "store_fts_fields", test_store_fts_fields },
	{ "store_fts_too_long", test_store_fts_too_long },
	{ "store_fts_batch", test_store_fts_batch },
	{ "store_fts_deferred", test_store_fts_deferred },
	{ "store_fts_candidates", test_store_fts_candidates },
	{ "store_fts_sure", test_store_fts_sure },
	{ "store_fts_part_headers", test_store_fts_part_headers },
	{ "store_fts_ascii_folds", test_store_fts_ascii_folds },
	{ "store_fts_dedup_gc", test_store_fts_dedup_gc },
	{ "store_fts_own_file", test_store_fts_own_file },
	{ "store_fts_gc", test_store_fts_gc },
	{ "store_fts_step15", test_store_fts_step15 },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
