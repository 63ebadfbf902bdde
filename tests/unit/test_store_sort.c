/* Tests for store_msg_list_view (the view loaded at SELECT) and for the
   stored SORT/THREAD keys (store_sort.c, mime_sort.c):
   for a table of crafted messages the keys store_msg_sort_keys returns
   equal the ones computed from the header (mime_sort_keys_parse), with a
   few known values checked too; blobs without stored keys (as before
   schema step 8) get the same keys computed on the fly, and are filled
   when the store is opened again. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store_test.h"
#include "lib/arena.h"
#include "mime/mime.h"
#include "store/store.h"

static const char *const sort_msgs[] = {
	"From: Alice Martin <alice@example.org>\r\n"
	"To: Bob <bob@example.test>, carol@example.test\r\n"
	"Cc: dave@example.net\r\n"
	"Subject: Re: [list] Fwd: hello (fwd)\r\n"
	"Message-ID: <a1@example.org>\r\n"
	"References: <r1@x> <r2@x>\r\n"
	"In-Reply-To: <r2@x>\r\n"
	"Date: Tue, 01 Dec 2026 07:00:00 +0100\r\n"
	"\r\n"
	"body\r\n",
	/* encoded words, group first, no Date, In-Reply-To only */
	"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\r\n"
	"To: team: x@example.org, y@example.org;\r\n"
	"Subject: =?UTF-8?B?w6RyZ2Vy?=\r\n"
	"In-Reply-To: junk <p1@x> <p2@x>\r\n"
	"\r\n"
	"body\r\n",
	/* folded subject with tabs, [fwd: ...] wrapper, no display name */
	"From: solo@example.org\r\n"
	"Subject: [fwd: Re:\r\n\t  the  plan ]\r\n"
	"\r\n",
	/* nothing at all */
	"\r\nonly a body\r\n",
	/* empty display name, group with nobody, bad Message-ID */
	"From: \"\" <e@example.org>\r\n"
	"To: undisclosed-recipients:;\r\n"
	"Message-ID: no-brackets@example.org\r\n"
	"Subject: RE: re: Fw: [a] [b] x\r\n"
	"\r\n",
	/* Cc starting with a group, To with a mailbox */
	"Cc: crew: m@example.org;, n@example.org\r\n"
	"To: n@example.org, crew: m@example.org;\r\n"
	"\r\n",
};
#define SORT_MSGS_COUNT (sizeof(sort_msgs) / sizeof(sort_msgs[0]))

static struct store *
test_sort_open(const char *dir)
{
	return test_store_open_dir(dir);
}

static int64_t
test_sort_inbox(struct store *s)
{
	struct store_mailbox box;
	int64_t account = 0, id;

	test_assert(store_domain_add(s, "example.test") == STORE_OK);
	test_assert(store_account_add(s, "u@example.test", "standard",
				      "$argon2id$x", NULL,
				      &account) == STORE_OK);
	test_assert(store_mailbox_get(s, account, "INBOX", &box) == 1);
	id = box.id;
	store_mailbox_clear(&box);
	return id;
}

static void
test_sort_streq(const char *got, const char *want, size_t i)
{
	bool same = (got == NULL && want == NULL) ||
		    (got != NULL && want != NULL && strcmp(got, want) == 0);

	test_assert_idx(same, i);
	if (!same)
		fprintf(stderr, "  message %zu: got %s, want %s\n", i,
			got ? got : "NULL", want ? want : "NULL");
}

/* Every stored key equals the computed one. */
static void
test_sort_compare(const struct store_sort_msg *m, const char *raw, size_t i)
{
	const char *end = strstr(raw, "\r\n\r\n");
	size_t hlen = end == NULL ? strlen(raw) : (size_t)(end - raw) + 4;
	struct mime_sort_keys k;

	if (raw[0] == '\r')
		hlen = 2;
	mime_sort_keys_parse((const uint8_t *)raw, hlen, &k);
	test_sort_streq(m->subject, k.subject, i);
	test_assert_idx(m->reply == k.reply, i);
	test_sort_streq(m->from, k.from, i);
	test_sort_streq(m->to, k.to, i);
	test_sort_streq(m->cc, k.cc, i);
	test_sort_streq(m->dfrom, k.dfrom, i);
	test_sort_streq(m->dto, k.dto, i);
	test_sort_streq(m->msgid, k.msgid, i);
	test_sort_streq(m->refs, k.refs, i);
	test_assert_idx(m->size == strlen(raw), i);
	test_assert_idx(m->internaldate == 1764572400 + (int64_t)i, i);
	mime_sort_keys_free(&k);
}

/* The known values of the table above. */
static void
test_sort_known(const struct store_sort_msg *m)
{
	test_assert_strcmp(m[0].subject, "hello");
	test_assert(m[0].reply);
	test_assert_strcmp(m[0].from, "alice");
	test_assert_strcmp(m[0].dfrom, "Alice Martin");
	test_assert_strcmp(m[0].to, "bob");
	test_assert_strcmp(m[0].cc, "dave");
	test_assert_strcmp(m[0].msgid, "<a1@example.org>");
	test_assert_strcmp(m[0].refs, "<r1@x> <r2@x>");
	test_assert(m[0].date == 1796104800);
	test_assert_strcmp(m[1].subject, "\xc3\xa4rger");
	test_assert(!m[1].reply);
	test_assert_strcmp(m[1].dfrom, "J\xc3\xb6rg");
	/* a group first: its name, as ENVELOPE's first address */
	test_assert_strcmp(m[1].to, "team");
	test_assert_strcmp(m[1].dto, "team");
	test_assert(m[1].msgid == NULL);
	test_assert_strcmp(m[1].refs, "<p1@x>");
	test_assert(m[1].date == -1);
	test_assert_strcmp(m[2].subject, "the plan");
	test_assert(m[2].reply);
	test_assert_strcmp(m[2].dfrom, "solo@example.org");
	test_assert_strcmp(m[3].subject, "");
	test_assert(m[3].from == NULL && m[3].dfrom == NULL);
	test_assert(m[3].refs == NULL);
	test_assert_strcmp(m[4].dfrom, "e@example.org");
	test_assert_strcmp(m[4].to, "undisclosed-recipients");
	test_assert_strcmp(m[4].dto, "undisclosed-recipients");
	test_assert(m[4].msgid == NULL);
	test_assert_strcmp(m[4].subject, "x");
	test_assert_strcmp(m[5].cc, "crew");
	test_assert_strcmp(m[5].to, "n");
	test_assert_strcmp(m[5].dto, "n@example.org");
}

static void
test_sort_check_all(struct store *s, int64_t box, bool known)
{
	struct arena *a = arena_new("test", 4096);
	struct store_sort_msg *m = NULL;
	size_t n = 0, i;

	test_assert(store_msg_sort_keys(s, box,
					STORE_SORT_NEED_ADDR |
						STORE_SORT_NEED_REFS,
					a, &m, &n) == STORE_OK);
	test_assert(n == SORT_MSGS_COUNT);
	for (i = 0; i < n && i < SORT_MSGS_COUNT; i++) {
		test_assert_idx(m[i].uid == i + 1, i);
		test_sort_compare(&m[i], sort_msgs[i], i);
	}
	if (known && n == SORT_MSGS_COUNT)
		test_sort_known(m);
	/* Without the flags only the subject and the numbers come. */
	test_assert(store_msg_sort_keys(s, box, 0, a, &m, &n) == STORE_OK);
	test_assert(n == SORT_MSGS_COUNT && m[0].from == NULL &&
		    m[0].refs == NULL && strcmp(m[0].subject, "hello") == 0);
	arena_free(&a);
}

static int test_sort_unfilled(const char *dir, bool clear);

/* A store in dir with the table appended to a new account's INBOX;
   *box_r is that mailbox. */
static struct store *
test_sort_fill(const char *dir, int64_t *box_r)
{
	struct store *s = test_sort_open(dir);
	size_t i;

	*box_r = test_sort_inbox(s);
	for (i = 0; i < SORT_MSGS_COUNT; i++) {
		char hash[STORE_HASH_HEX_LEN + 1];
		uint32_t uid = 0;

		test_assert(store_blob_write(s, sort_msgs[i],
					     strlen(sort_msgs[i]),
					     hash) == STORE_OK);
		test_assert(store_msg_append(s, *box_r, hash, 0, NULL,
					     1764572400 + (int64_t)i,
					     &uid) == STORE_OK);
		test_assert_idx(uid == i + 1, i);
	}
	return s;
}

static void
test_store_sort_keys(void)
{
	char dir[512];
	struct store *s;
	int64_t box;

	snprintf(dir, sizeof(dir), "%s/sortkeys", test_tmpdir());
	s = test_sort_fill(dir, &box);
	/* stored at append, not computed at SORT time */
	test_assert(test_sort_unfilled(dir, false) == 0);
	test_sort_check_all(s, box, true);
	store_close(&s);
}

/* Count of blobs whose keys are not stored, read with SQLite directly;
   clear = true first marks every blob as stored before step 8. */
static int
test_sort_unfilled(const char *dir, bool clear)
{
	char path[600];
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	snprintf(path, sizeof(path), "%s/tern.db", dir);
	test_assert(sqlite3_open(path, &db) == SQLITE_OK);
	if (clear)
		test_assert(sqlite3_exec(db,
					 "UPDATE blobs SET sort_keys = 0;"
					 "DELETE FROM blob_sort;",
					 NULL, NULL, NULL) == SQLITE_OK);
	/* flagged as unfilled, or without a row of keys */
	test_assert(sqlite3_prepare_v2(db,
				       "SELECT count(*) FROM blobs b"
				       " WHERE b.sort_keys = 0 OR NOT EXISTS"
				       " (SELECT 1 FROM blob_sort k"
				       " WHERE k.blob_id = b.id)",
				       -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void
test_store_sort_backfill(void)
{
	char dir[512];
	struct store *s;
	int64_t box;

	snprintf(dir, sizeof(dir), "%s/sortfill", test_tmpdir());
	s = test_sort_fill(dir, &box);
	store_close(&s);
	test_assert(test_sort_unfilled(dir, true) == (int)SORT_MSGS_COUNT);
	/* Opening fills them; the result is the same. */
	s = test_sort_open(dir);
	test_assert(test_sort_unfilled(dir, false) == 0);
	test_sort_check_all(s, box, true);
	store_close(&s);
}

/* Schema step 13: keys stored by a version before it (planted here as
   stale values at version 12) are computed again when the store is
   opened. */
static void
test_store_sort_step13(void)
{
	char dir[512], path[600];
	struct store *s;
	sqlite3 *db;
	int64_t box;

	snprintf(dir, sizeof(dir), "%s/sortstep13", test_tmpdir());
	s = test_sort_fill(dir, &box);
	store_close(&s);
	snprintf(path, sizeof(path), "%s/tern.db", dir);
	test_assert(sqlite3_open(path, &db) == SQLITE_OK);
	test_assert(sqlite3_exec(db,
				 "UPDATE blob_sort SET to_mbox = 'stale',"
				 " cc_mbox = 'stale', to_display = 'stale';"
				 /* version 12 had its field index here; step
				    15 moves it to index.db */
				 "CREATE TABLE blob_hfts(x);"
				 "PRAGMA user_version = 12;",
				 NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	s = test_sort_open(dir);
	test_assert(test_sort_unfilled(dir, false) == 0);
	test_sort_check_all(s, box, true);
	store_close(&s);
}

static void
test_store_sort_unfilled(void)
{
	char dir[512];
	struct store *s;
	int64_t box;

	/* Rows still unfilled while the store is open (another process
	   cleared them here) are computed from the messages. */
	snprintf(dir, sizeof(dir), "%s/sortlazy", test_tmpdir());
	s = test_sort_fill(dir, &box);
	test_assert(test_sort_unfilled(dir, true) == (int)SORT_MSGS_COUNT);
	test_sort_check_all(s, box, true);
	store_close(&s);
}

struct view_walk {
	uint32_t uids[16];
	char kw[16][32];
	uint64_t modseq[16];
	size_t n, stop_at;
};

static int
view_walk_one(void *ctx, const struct store_view_msg *m)
{
	struct view_walk *w = ctx;

	if (w->n == w->stop_at || w->n == 16)
		return -1;
	w->uids[w->n] = m->uid;
	w->modseq[w->n] = m->modseq;
	snprintf(w->kw[w->n], sizeof(w->kw[0]), "%s",
		 m->keywords != NULL ? m->keywords : "-");
	w->n++;
	return 0;
}

/* store_msg_list_view (the SELECT load through the covering index of
   schema step 7): every message from uid_min on, in UID order, with its
   keywords; a callback's -1 stops the walk with an error. */
static void
test_store_list_view(void)
{
	char dir[512];
	struct view_walk w;
	struct store *s;
	uint32_t uid = 2, *modified = NULL;
	size_t nmod = 0;
	uint64_t modseq = 0;
	int64_t box;

	snprintf(dir, sizeof(dir), "%s/listview", test_tmpdir());
	s = test_sort_fill(dir, &box);
	test_assert(store_msg_set_flags(s, box, &uid, 1, STORE_FLAGS_ADD,
					STORE_FLAG_SEEN, "$Label1", 0, &modseq,
					&modified, &nmod) == STORE_OK);
	free(modified);
	memset(&w, 0, sizeof(w));
	w.stop_at = 99;
	test_assert(store_msg_list_view(s, box, 1, view_walk_one, &w) ==
		    STORE_OK);
	test_assert(w.n == SORT_MSGS_COUNT);
	test_assert(w.uids[0] == 1 && w.uids[4] == 5);
	test_assert_strcmp(w.kw[0], "-");
	test_assert_strcmp(w.kw[1], "$Label1");
	test_assert(w.modseq[1] == modseq && w.modseq[0] < modseq);
	memset(&w, 0, sizeof(w));
	w.stop_at = 99;
	test_assert(store_msg_list_view(s, box, 4, view_walk_one, &w) ==
		    STORE_OK);
	test_assert(w.n == SORT_MSGS_COUNT - 3 && w.uids[0] == 4);
	memset(&w, 0, sizeof(w));
	w.stop_at = 1;
	test_assert(store_msg_list_view(s, box, 1, view_walk_one, &w) ==
		    STORE_ERR);
	test_assert(w.n == 1);
	store_close(&s);
}

static const struct test_case tests[] = {
	{ "store_list_view", test_store_list_view },
	{ "store_sort_keys", test_store_sort_keys },
	{ "store_sort_backfill", test_store_sort_backfill },
	{ "store_sort_unfilled", test_store_sort_unfilled },
	{ "store_sort_step13", test_store_sort_step13 },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
