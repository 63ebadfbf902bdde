/* Tests for store: accounts and default mailboxes, recipient resolution,
   delivery with dedup and quota accounting, flags and modseq, expunge and
   QRESYNC memory, copy/move, INBOX rename, and crash safety (a blob
   written but never committed leaves nothing visible and is cleaned up). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "store_test.h"
#include "lib/xalloc.h"
#include "store/store.h"

static const char msg1[] =
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.test\r\n"
	"Subject: hello\r\n"
	"Message-ID: <m1@example.org>\r\n"
	"Date: Tue, 01 Dec 2026 07:00:00 +0000\r\n"
	"\r\n"
	"body line\r\n";

static const char msg2[] =
	"From: carol@example.org\r\n"
	"Subject: second\r\n"
	"\r\n"
	"another body\r\n";

static struct store *
test_store_new(const char *sub)
{
	char dir[512];

	return test_store_open_sub(sub, dir, sizeof(dir));
}

static int64_t
test_account(struct store *s, const char *address, const char *plan)
{
	int64_t id = 0;
	const char *at = strchr(address, '@');

	if (store_domain_exists(s, at + 1) == 0)
		test_assert(store_domain_add(s, at + 1) == STORE_OK);
	test_assert(store_account_add(s, address, plan, "$argon2id$x", NULL,
				      &id) == STORE_OK);
	test_assert(id > 0);
	return id;
}

static int64_t
test_mailbox_id(struct store *s, int64_t account, const char *name)
{
	struct store_mailbox box;
	int64_t id;

	test_assert(store_mailbox_get(s, account, name, &box) == 1);
	id = box.id;
	store_mailbox_clear(&box);
	return id;
}

static void
test_store_accounts(void)
{
	struct store *s = test_store_new("accounts");
	struct store_account acct;
	struct store_mailbox *boxes;
	size_t n;
	int64_t id, dup;
	char *norm;

	test_assert(store_domain_add(s, "Example.TEST.") == STORE_OK);
	test_assert(store_domain_exists(s, "example.test") == 1);
	test_assert(store_domain_add(s, "example.test") == STORE_EXISTS);
	test_assert(store_domain_add(s, "bad..domain") == STORE_INVALID);
	test_assert(store_account_add(s, "x@nowhere.test", "standard", "h",
				      NULL, &id) == STORE_NOTFOUND);
	test_assert(store_account_add(s, "x@example.test", "noplan", "h",
				      NULL, &id) == STORE_NOTFOUND);
	id = test_account(s, "bob@example.test", "standard");
	test_assert(store_account_add(s, "bob@example.test", "standard", "h",
				      NULL, &dup) == STORE_EXISTS);

	norm = store_address_normalize("Bob@Example.Test.");
	test_assert_strcmp(norm, "bob@example.test");
	free(norm);
	test_assert(store_address_normalize("nodomain") == NULL);
	test_assert(store_address_normalize("@example.test") == NULL);

	test_assert(store_account_get(s, "bob@example.test", &acct) == 1);
	test_assert(acct.id == id);
	test_assert_strcmp(acct.plan, "standard");
	store_account_clear(&acct);
	test_assert(store_account_get(s, "nobody@example.test", &acct) == 0);

	/* Every account starts with the six special-use mailboxes. */
	test_assert(store_mailbox_list(s, id, &boxes, &n) == STORE_OK);
	test_assert(n == 6);
	for (size_t i = 0; i < n; i++) {
		test_assert_idx(boxes[i].uidvalidity != 0, i);
		test_assert_idx(boxes[i].uidnext == 1, i);
		if (strcmp(boxes[i].name, "INBOX") != 0)
			test_assert_idx(boxes[i].special_use != NULL, i);
	}
	store_mailboxes_free(boxes, n);

	test_assert(store_domain_del(s, "example.test") == STORE_INVALID);
	test_assert(store_account_del(s, "bob@example.test") == STORE_OK);
	test_assert(store_account_get(s, "bob@example.test", &acct) == 0);
	test_assert(store_domain_del(s, "example.test") == STORE_OK);
	store_close(&s);
}

static void
test_store_rcpt(void)
{
	struct store *s = test_store_new("rcpt");
	const char *targets[] = { "bob@example.test", "alice@example.test",
				  "ext@remote.example" };
	const char *loop_a[] = { "loop-b@example.test" };
	const char *loop_b[] = { "loop-a@example.test", "bob@example.test" };
	const char *catchall[] = { "alice@example.test" };
	int64_t bob = test_account(s, "bob@example.test", "standard");
	int64_t alice = test_account(s, "alice@example.test", "standard");
	int64_t *ids;
	char **remote;
	size_t n, rn;

	test_assert(store_alias_add(s, "team@example.test", targets, 3) ==
		    STORE_OK);
	test_assert(store_rcpt_resolve(s, "bob@example.test", &ids, &n,
				       &remote, &rn) == STORE_RCPT_LOCAL);
	test_assert(n == 1 && ids[0] == bob && rn == 0);
	free(ids);
	store_strings_free(remote, rn);

	test_assert(store_rcpt_resolve(s, "team@example.test", &ids, &n,
				       &remote, &rn) == STORE_RCPT_LOCAL);
	test_assert(n == 2);
	test_assert(rn == 1 && strcmp(remote[0], "ext@remote.example") == 0);
	free(ids);
	store_strings_free(remote, rn);

	test_assert(store_rcpt_resolve(s, "nobody@example.test", &ids, &n,
				       &remote, &rn) == STORE_RCPT_UNKNOWN);
	free(ids);
	store_strings_free(remote, rn);
	test_assert(store_rcpt_resolve(s, "x@elsewhere.test", &ids, &n,
				       &remote, &rn) == STORE_RCPT_NOT_LOCAL);
	free(ids);
	store_strings_free(remote, rn);

	/* An alias loop terminates and still finds bob once. */
	test_assert(store_alias_add(s, "loop-a@example.test", loop_a, 1) ==
		    STORE_OK);
	test_assert(store_alias_add(s, "loop-b@example.test", loop_b, 2) ==
		    STORE_OK);
	test_assert(store_rcpt_resolve(s, "loop-a@example.test", &ids, &n,
				       &remote, &rn) == STORE_RCPT_LOCAL);
	test_assert(n == 1 && ids[0] == bob);
	free(ids);
	store_strings_free(remote, rn);

	/* A catch-all takes what nothing else does. */
	test_assert(store_alias_add(s, "@example.test", catchall, 1) ==
		    STORE_OK);
	test_assert(store_rcpt_resolve(s, "anything@example.test", &ids, &n,
				       &remote, &rn) == STORE_RCPT_LOCAL);
	test_assert(n == 1 && ids[0] == alice);
	free(ids);
	store_strings_free(remote, rn);

	test_assert(store_account_may_send_as(s, bob, "bob@example.test") == 1);
	test_assert(store_account_may_send_as(s, bob, "team@example.test") ==
		    1);
	test_assert(store_account_may_send_as(s, bob, "alice@example.test") ==
		    0);
	store_close(&s);
}

static void
test_store_delivery(void)
{
	struct store *s = test_store_new("deliver");
	struct store_plan tiny = { .name = "tiny", .quota_bytes = 300 };
	int64_t bob, carol;
	struct store_delivery d[2];
	struct store_quota q;
	struct store_msg *msgs;
	struct store_msg_meta meta;
	struct store_map map;
	char hash[STORE_HASH_HEX_LEN + 1], hash2[STORE_HASH_HEX_LEN + 1];
	size_t n;

	test_assert(store_plan_set(s, &tiny) == STORE_OK);
	bob = test_account(s, "bob@example.test", "standard");
	carol = test_account(s, "carol@example.test", "tiny");
	test_assert(store_blob_write(s, msg1, sizeof(msg1) - 1, hash) ==
		    STORE_OK);
	/* Identical bytes get the same blob. */
	test_assert(store_blob_write(s, msg1, sizeof(msg1) - 1, hash2) ==
		    STORE_OK);
	test_assert_strcmp(hash, hash2);

	memset(d, 0, sizeof(d));
	d[0].account_id = bob;
	d[1].account_id = carol;
	test_assert(store_batch_begin(s) == STORE_OK);
	test_assert(store_deliver(s, hash, 1764572400, d, 2) == STORE_OK);
	test_assert(store_batch_commit(s) == STORE_OK);
	test_assert(d[0].result == STORE_OK && d[0].uid == 1);
	test_assert(d[1].result == STORE_OK && d[1].uid == 1);

	test_assert(store_quota_get(s, carol, &q) == STORE_OK);
	test_assert(q.used_messages == 1);
	test_assert(q.used_bytes == sizeof(msg1) - 1);
	test_assert(q.limit_bytes == 300);

	/* Carol's plan has room for one message only: hers fails alone. */
	memset(d, 0, sizeof(d));
	d[0].account_id = carol;
	d[1].account_id = bob;
	test_assert(store_deliver(s, hash, 1764572400, d, 2) == STORE_OK);
	test_assert(d[0].result == STORE_OVERQUOTA);
	test_assert(d[1].result == STORE_OK && d[1].uid == 2);

	test_assert(store_msg_list(s, d[1].mailbox_id, 1, &msgs, &n) ==
		    STORE_OK);
	test_assert(n == 2);
	if (n == 2) {
		test_assert(msgs[0].uid == 1 && msgs[1].uid == 2);
		test_assert(msgs[0].size == sizeof(msg1) - 1);
		test_assert(msgs[1].modseq > msgs[0].modseq);
		test_assert_strcmp(msgs[0].blob, hash);
	}
	store_msgs_free(msgs, n);
	/* a UID range reads only its rows */
	test_assert(store_msg_list_range(s, d[1].mailbox_id, 2, 2, &msgs,
					 &n) == STORE_OK);
	test_assert(n == 1 && msgs[0].uid == 2);
	store_msgs_free(msgs, n);
	test_assert(store_msg_list_range(s, d[1].mailbox_id, 1, 1, &msgs,
					 &n) == STORE_OK);
	test_assert(n == 1 && msgs[0].uid == 1);
	store_msgs_free(msgs, n);
	test_assert(store_msg_list_range(s, d[1].mailbox_id, 3, 9, &msgs,
					 &n) == STORE_OK);
	test_assert(n == 0);
	store_msgs_free(msgs, n);

	/* The structure was parsed once, at delivery. */
	test_assert(store_msg_meta(s, hash, &meta) == 1);
	test_assert(meta.envelope != NULL &&
		    strstr(meta.envelope, "\"hello\"") != NULL);
	test_assert(meta.bodystructure != NULL);
	test_assert_strcmp(meta.subject, "hello");
	store_msg_meta_clear(&meta);

	test_assert(store_blob_map(s, hash, &map) == STORE_OK);
	test_assert_memeq(map.data, map.len, msg1, sizeof(msg1) - 1);
	store_blob_unmap(&map);
	store_close(&s);
}

static void
test_store_flags_expunge(void)
{
	struct store *s = test_store_new("flags");
	int64_t bob = test_account(s, "bob@example.test", "standard");
	int64_t inbox = test_mailbox_id(s, bob, "inbox");
	char hash[STORE_HASH_HEX_LEN + 1], hash2[STORE_HASH_HEX_LEN + 1];
	uint32_t uid1, uid2, uids[2], *modified = NULL, *expunged = NULL;
	size_t nmod = 0, n, nexp;
	uint64_t modseq, before;
	struct store_mailbox_status st;
	struct store_msg *msgs;
	struct store_quota q;
	struct store_map map;

	test_assert(store_blob_write(s, msg1, sizeof(msg1) - 1, hash) ==
		    STORE_OK);
	test_assert(store_blob_write(s, msg2, sizeof(msg2) - 1, hash2) ==
		    STORE_OK);
	test_assert(store_msg_append(s, inbox, hash, STORE_FLAG_SEEN, NULL,
				     1764572400, &uid1) == STORE_OK);
	test_assert(store_msg_append(s, inbox, hash2, 0, "$Label1", 1764572400,
				     &uid2) == STORE_OK);
	test_assert(uid1 == 1 && uid2 == 2);
	test_assert(store_mailbox_status(s, inbox, &st) == STORE_OK);
	test_assert(st.messages == 2 && st.unseen == 1 && st.uidnext == 3);
	before = st.highestmodseq;

	/* \Recent: one session takes 1..2; a stale claim loses */
	test_assert(st.recent == 2);
	test_assert(store_mailbox_claim_recent(s, inbox, 1, 3) == 1);
	test_assert(store_mailbox_claim_recent(s, inbox, 1, 3) == 0);
	test_assert(store_mailbox_claim_recent(s, inbox, 3, 3) == 0);
	test_assert(store_mailbox_status(s, inbox, &st) == STORE_OK);
	test_assert(st.recent == 0);

	uids[0] = uid1;
	uids[1] = uid2;
	test_assert(store_msg_set_flags(s, inbox, uids, 2, STORE_FLAGS_ADD,
					STORE_FLAG_FLAGGED, NULL, 0, &modseq,
					&modified, &nmod) == STORE_OK);
	test_assert(modseq > before && nmod == 0);
	free(modified);
	modified = NULL;

	/* CONDSTORE: UNCHANGEDSINCE older than the message's modseq fails
	   for that message only. */
	test_assert(store_msg_set_flags(s, inbox, uids, 2, STORE_FLAGS_ADD,
					STORE_FLAG_DELETED, NULL, before,
					&modseq, &modified, &nmod) == STORE_OK);
	test_assert(nmod == 2);
	free(modified);
	modified = NULL;
	test_assert(store_msg_set_flags(s, inbox, &uid1, 1, STORE_FLAGS_ADD,
					STORE_FLAG_DELETED, NULL, 0, &modseq,
					&modified, &nmod) == STORE_OK);
	free(modified);
	before = modseq;

	/* of both, only uid1 has \Deleted: uid2 stays */
	test_assert(store_msg_expunge_deleted(s, inbox, uids, 2, &modseq) ==
		    STORE_OK);
	test_assert(modseq > before);
	test_assert(store_msg_changes(s, inbox, before, &msgs, &n, &expunged,
				      &nexp) == STORE_OK);
	test_assert(nexp == 1 && expunged[0] == uid1);
	store_msgs_free(msgs, n);
	free(expunged);

	test_assert(store_quota_get(s, bob, &q) == STORE_OK);
	test_assert(q.used_messages == 1 && q.used_bytes == sizeof(msg2) - 1);
	/* The last reference went away: the blob file is gone. */
	test_assert(store_blob_map(s, hash, &map) == STORE_NOTFOUND);
	store_close(&s);
}

static void
test_store_copy_rename(void)
{
	struct store *s = test_store_new("copy");
	int64_t bob = test_account(s, "bob@example.test", "standard");
	int64_t inbox = test_mailbox_id(s, bob, "INBOX");
	int64_t archive = test_mailbox_id(s, bob, "Archive"), moved;
	char hash[STORE_HASH_HEX_LEN + 1];
	uint32_t uid, *new_uids = NULL;
	struct store_mailbox_status st;
	struct store_quota q;
	struct store_mailbox box;
	const char *error = NULL;

	test_assert(store_blob_write(s, msg1, sizeof(msg1) - 1, hash) ==
		    STORE_OK);
	test_assert(store_msg_append(s, inbox, hash, 0, NULL, 1764572400,
				     &uid) == STORE_OK);
	test_assert(store_msg_copy(s, inbox, &uid, 1, archive, false,
				   &new_uids) == STORE_OK);
	test_assert(new_uids != NULL && new_uids[0] == 1);
	free(new_uids);
	test_assert(store_quota_get(s, bob, &q) == STORE_OK);
	test_assert(q.used_messages == 2);
	test_assert(store_msg_copy(s, inbox, &uid, 1, archive, true,
				   &new_uids) == STORE_OK);
	test_assert(new_uids != NULL && new_uids[0] == 2);
	free(new_uids);
	test_assert(store_mailbox_status(s, inbox, &st) == STORE_OK);
	test_assert(st.messages == 0);
	test_assert(store_quota_get(s, bob, &q) == STORE_OK);
	test_assert(q.used_messages == 2);

	/* Names: bad ones refused, parents created, INBOX rename moves the
	   messages and leaves an empty INBOX. */
	test_assert(store_mailbox_create(s, bob, "a//b", NULL, NULL, &error) ==
		    STORE_INVALID);
	test_assert(store_mailbox_create(s, bob, "x/../y", NULL, NULL,
					 &error) == STORE_INVALID);
	test_assert(store_mailbox_create(s, bob, "Work/2026", NULL, NULL,
					 &error) == STORE_OK);
	test_assert(store_mailbox_get(s, bob, "Work", &box) == 1);
	store_mailbox_clear(&box);
	test_assert(store_mailbox_create(s, bob, "Work", NULL, NULL, &error) ==
		    STORE_EXISTS);
	test_assert(store_mailbox_delete(s, bob, "INBOX") == STORE_INVALID);

	test_assert(store_msg_append(s, inbox, hash, 0, NULL, 1764572400,
				     &uid) == STORE_OK);
	test_assert(store_mailbox_rename(s, bob, "INBOX", "Old", &error) ==
		    STORE_OK);
	moved = test_mailbox_id(s, bob, "Old");
	test_assert(store_mailbox_status(s, moved, &st) == STORE_OK);
	test_assert(st.messages == 1);
	test_assert(store_mailbox_status(s, inbox, &st) == STORE_OK);
	test_assert(st.messages == 0 && st.uidnext > uid);
	test_assert(store_mailbox_rename(s, bob, "Work", "Job", &error) ==
		    STORE_OK);
	test_assert(store_mailbox_get(s, bob, "Job/2026", &box) == 1);
	store_mailbox_clear(&box);
	test_assert(store_mailbox_get(s, bob, "Work/2026", &box) == 0);
	store_close(&s);
}

/* A crash after the blob is on disk but before the metadata commit: no
   message is visible, and a later open removes the orphan once it is
   older than the grace period. */
static void
test_store_crash_orphan(void)
{
	struct store *s = test_store_new("crash");
	int64_t bob = test_account(s, "bob@example.test", "standard");
	int64_t inbox = test_mailbox_id(s, bob, "INBOX");
	char hash[STORE_HASH_HEX_LEN + 1], path[1024], dir[512];
	struct store_mailbox_status st;
	struct store_map map;
	struct timeval old[2] = { { 1000000, 0 }, { 1000000, 0 } };
	struct store_blob_writer *w;
	uint64_t size;

	w = store_blob_writer_new(s);
	test_assert(store_blob_writer_write(w, msg2, 10) == STORE_OK);
	test_assert(store_blob_writer_write(w, msg2 + 10, sizeof(msg2) - 11) ==
		    STORE_OK);
	test_assert(store_blob_writer_finish(&w, hash, &size) == STORE_OK);
	test_assert(size == sizeof(msg2) - 1);
	/* "Crash": the process goes away without committing anything. */
	snprintf(dir, sizeof(dir), "%s", store_datadir(s));
	store_close(&s);

	s = store_open(dir, NULL);
	test_assert(s != NULL);
	test_assert(store_mailbox_status(s, inbox, &st) == STORE_OK);
	test_assert(st.messages == 0);
	/* Within the grace period the blob is kept for a writer that may
	   still commit; age it (and the journals) past the grace period. */
	test_assert(store_blob_map(s, hash, &map) == STORE_OK);
	store_blob_unmap(&map);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", dir, hash, hash + 2);
	test_assert(utimes(path, old) == 0);
	store_close(&s);
	{
		char cmd[1200];

		snprintf(cmd, sizeof(cmd),
			 "touch -d @1000000 %s/tmp/* 2>/dev/null", dir);
		test_assert(system(cmd) == 0);
	}
	s = store_open(dir, NULL);
	test_assert(s != NULL);
	test_assert(store_blob_map(s, hash, &map) == STORE_NOTFOUND);
	store_close(&s);
}

static void
test_store_send_limits(void)
{
	struct store *s = test_store_new("send");
	int64_t bob = test_account(s, "bob@example.test", "essential");
	uint64_t count;
	int64_t oldest;

	test_assert(store_send_record(s, bob, 1000, 3) == STORE_OK);
	test_assert(store_send_record(s, bob, 2000, 4) == STORE_OK);
	test_assert(store_send_count(s, bob, 500, &count) == STORE_OK);
	test_assert(count == 7);
	test_assert(store_send_count(s, bob, 1500, &count) == STORE_OK);
	test_assert(count == 4);
	test_assert(store_send_oldest(s, bob, 500, &oldest) == STORE_OK);
	test_assert(oldest == 1000);
	test_assert(store_send_oldest(s, bob, 3000, &oldest) == STORE_OK);
	test_assert(oldest == 0);
	store_close(&s);
}

static void
test_store_sent(void)
{
	struct store *s = test_store_new("sent");
	int64_t bob = test_account(s, "bob@example.test", "standard");
	int64_t sent = test_mailbox_id(s, bob, "Sent");
	char hash[STORE_HASH_HEX_LEN + 1], other[STORE_HASH_HEX_LEN + 1];
	uint32_t uid = 0, found = 0;
	int value;

	test_assert(store_sent_get(s, "example.test", &value) == 1);
	test_assert(value == -1);
	test_assert(store_sent_set(s, "Example.Test", 1) == STORE_OK);
	test_assert(store_sent_get(s, "example.test", &value) == 1);
	test_assert(value == 1);
	test_assert(store_sent_set(s, "nowhere.test", 0) == STORE_NOTFOUND);
	test_assert(store_sent_get(s, "nowhere.test", &value) == 0);

	test_assert(store_blob_write(s, msg1, sizeof(msg1) - 1, hash) ==
		    STORE_OK);
	test_assert(store_blob_write(s, msg2, sizeof(msg2) - 1, other) ==
		    STORE_OK);
	test_assert(store_sent_find(s, sent, hash, 0, &found) == 0);
	test_assert(store_msg_append(s, sent, hash, STORE_FLAG_SEEN, NULL,
				     1764572400, &uid) == STORE_OK);
	test_assert(store_sent_find(s, sent, hash, 0, &found) == 1);
	test_assert(found == uid);
	/* Too old for the window, or no Message-ID at all: no match. */
	test_assert(store_sent_find(s, sent, hash, INT64_MAX, &found) == 0);
	test_assert(store_sent_find(s, sent, other, 0, &found) == 0);
	store_close(&s);
}

/* ternd's children open the store as "." from inside the data directory
   (its parents may be closed to them): the database, its WAL and the
   blobs are the ones an absolute open sees. */
static void
test_store_relative_datadir(void)
{
	struct store *s = test_store_new("relative");
	char dir[512], hash[STORE_HASH_HEX_LEN + 1];
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	store_close(&s);
	snprintf(dir, sizeof(dir), "%s/relative", test_tmpdir());
	test_assert(cwd >= 0 && chdir(dir) == 0);
	s = store_open(".", NULL);
	test_assert(s != NULL);
	if (s != NULL) {
		test_assert(store_domain_add(s, "relative.test") == STORE_OK);
		test_assert(store_blob_write(s, msg1, sizeof(msg1) - 1, hash) ==
			    STORE_OK);
		store_close(&s);
	}
	test_assert(access("tern.db-wal", F_OK) == 0 ||
		    access("tern.db", F_OK) == 0);
	test_assert(fchdir(cwd) == 0);
	close(cwd);
	s = test_store_new("relative");
	test_assert(store_domain_exists(s, "relative.test") == 1);
	store_close(&s);
}

/* store_blob_map_cached: the same bytes as store_blob_map, served from
   the cache once read (even with the file gone: blobs never change, and
   a removed one is a message expunged elsewhere); a blob over the
   cache's size limit is read from the file each time. */
static void
test_store_blob_cache(void)
{
	struct store *s = test_store_new("blobcache");
	static const char small[] = "Subject: x\r\n\r\nsmall body\r\n";
	char hash[STORE_HASH_HEX_LEN + 1], big_hash[STORE_HASH_HEX_LEN + 1];
	char path[1024];
	size_t big_len = 40 * 1024;
	uint8_t *big = xmalloc(big_len);
	struct store_map map;

	memset(big, 'b', big_len);
	test_assert(store_blob_write(s, small, sizeof(small) - 1, hash) ==
		    STORE_OK);
	test_assert(store_blob_write(s, big, big_len, big_hash) == STORE_OK);
	for (int round = 0; round < 2; round++) {
		test_assert(store_blob_map_cached(s, hash, &map) == STORE_OK);
		test_assert_memeq(map.data, map.len, small, sizeof(small) - 1);
		store_blob_unmap(&map);
		test_assert(store_blob_map_cached(s, big_hash, &map) ==
			    STORE_OK);
		test_assert_memeq(map.data, map.len, big, big_len);
		store_blob_unmap(&map);
	}
	snprintf(path, sizeof(path), "%s/blobcache/blobs/%.2s/%s",
		 test_tmpdir(), hash, hash + 2);
	test_assert(unlink(path) == 0);
	snprintf(path, sizeof(path), "%s/blobcache/blobs/%.2s/%s",
		 test_tmpdir(), big_hash, big_hash + 2);
	test_assert(unlink(path) == 0);
	/* the small one is cached, the big one never was */
	test_assert(store_blob_map_cached(s, hash, &map) == STORE_OK);
	test_assert_memeq(map.data, map.len, small, sizeof(small) - 1);
	store_blob_unmap(&map);
	test_assert(store_blob_map(s, hash, &map) == STORE_NOTFOUND);
	test_assert(store_blob_map_cached(s, big_hash, &map) ==
		    STORE_NOTFOUND);
	test_assert(store_blob_map_cached(s, "zz", &map) == STORE_INVALID);
	free(big);
	store_close(&s);
}

static bool
test_gen_same(const struct store_changes_gen *a,
	      const struct store_changes_gen *b)
{
	return a->global == b->global && a->slot == b->slot;
}

/* store_changes_read: a commit from another connection that changes a
   mailbox (APPEND, flags, expunge, delete) changes its generations,
   after the commit; a rolled-back batch and a change to another mailbox
   do not. */
static void
test_store_changes(void)
{
	struct store *s = test_store_new("changes");
	struct store *w;
	int64_t bob = test_account(s, "bob@example.test", "standard");
	int64_t inbox = test_mailbox_id(s, bob, "inbox");
	int64_t junk = test_mailbox_id(s, bob, "Junk");
	static const char m[] = "Subject: c\r\n\r\nbody\r\n";
	char hash[STORE_HASH_HEX_LEN + 1], path[512];
	struct store_changes_gen g0, g1, j0, j1;
	uint32_t uid, uid2;
	uint64_t modseq;

	snprintf(path, sizeof(path), "%s/changes", test_tmpdir());
	w = store_open(path, NULL);
	test_assert(w != NULL);
	test_assert(store_blob_write(w, m, sizeof(m) - 1, hash) == STORE_OK);
	test_assert(store_changes_read(s, inbox, &g0));
	test_assert(store_changes_read(s, junk, &j0));
	test_assert(store_changes_read(s, inbox, &g1) &&
		    test_gen_same(&g0, &g1));

	test_assert(store_msg_append(w, inbox, hash, 0, NULL, 1764572400,
				     &uid) == STORE_OK);
	test_assert(store_changes_read(s, inbox, &g1) &&
		    !test_gen_same(&g0, &g1));
	/* the trigger names the mailbox: the global count stays */
	test_assert(g1.global == g0.global);
	test_assert(store_changes_read(s, junk, &j1) && test_gen_same(&j0, &j1));

	g0 = g1;
	test_assert(store_batch_begin(w) == STORE_OK);
	test_assert(store_msg_append(w, inbox, hash, 0, NULL, 1764572400,
				     &uid2) == STORE_OK);
	store_batch_rollback(w);
	test_assert(store_changes_read(s, inbox, &g1) && test_gen_same(&g0, &g1));

	test_assert(store_msg_set_flags(w, inbox, &uid, 1, STORE_FLAGS_ADD,
					STORE_FLAG_FLAGGED, NULL, 0, &modseq,
					NULL, NULL) == STORE_OK);
	test_assert(store_changes_read(s, inbox, &g1) &&
		    !test_gen_same(&g0, &g1));
	g0 = g1;
	test_assert(store_msg_expunge(w, inbox, &uid, 1, &modseq) == STORE_OK);
	test_assert(store_changes_read(s, inbox, &g1) &&
		    !test_gen_same(&g0, &g1));
	test_assert(store_changes_read(s, junk, &j1) && test_gen_same(&j0, &j1));
	test_assert(store_mailbox_delete(w, bob, "Junk") == STORE_OK);
	test_assert(store_changes_read(s, junk, &j1) &&
		    !test_gen_same(&j0, &j1));
	store_close(&w);
	store_close(&s);
}

static const struct test_case tests[] = {
	{ "store_relative_datadir", test_store_relative_datadir },
	{ "store_sent", test_store_sent },
	{ "store_accounts", test_store_accounts },
	{ "store_rcpt", test_store_rcpt },
	{ "store_delivery", test_store_delivery },
	{ "store_blob_cache", test_store_blob_cache },
	{ "store_changes", test_store_changes },
	{ "store_flags_expunge", test_store_flags_expunge },
	{ "store_copy_rename", test_store_copy_rename },
	{ "store_crash_orphan", test_store_crash_orphan },
	{ "store_send_limits", test_store_send_limits },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
