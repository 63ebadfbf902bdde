/* Tests for the store's outbound queue: add/get/due/list, per-recipient
   updates, removal once every recipient is final (and the blob file
   collected), delete, argument checks and nesting inside a batch. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store/store.h"

static const char test_msg[] = "From: a@example.org\r\n\r\nhello\r\n";

static struct store *
test_queue_open(char *hash_r)
{
	const char *error = NULL;
	struct store *s = store_open(test_tmpdir(), &error);

	test_assert(s != NULL);
	if (s == NULL)
		return NULL;
	test_assert(store_blob_write(s, test_msg, sizeof(test_msg) - 1,
				     hash_r) == STORE_OK);
	return s;
}

/* An entry with two recipients, due at `when`; rcpts points at r. */
static void
test_queue_entry(struct store_queue_entry *e, struct store_queue_rcpt *r,
		 const char *hash, int64_t when)
{
	memset(e, 0, sizeof(*e));
	memset(r, 0, 2 * sizeof(*r));
	r[0].address = "x@remote.example";
	r[0].orcpt = "rfc822;x@remote.example";
	r[0].notify = "FAILURE";
	r[1].address = "y@remote.example";
	e->sender = "a@example.org";
	e->envid = "ENV1";
	e->ret = "HDRS";
	e->body = "8BITMIME";
	e->smtputf8 = true;
	memcpy(e->blob, hash, sizeof(e->blob));
	e->created = 1000;
	e->next_attempt = when;
	e->rcpts = r;
	e->rcpt_count = 2;
}

static int64_t
test_queue_add(struct store *s, const char *hash, int64_t when)
{
	struct store_queue_entry e;
	struct store_queue_rcpt r[2];
	int64_t id = 0;

	test_queue_entry(&e, r, hash, when);
	test_assert(store_queue_add(s, &e, &id) == STORE_OK);
	test_assert(id > 0);
	return id;
}

static bool
test_queue_blob_exists(struct store *s, const char *hash)
{
	struct store_map map;
	int ret = store_blob_map(s, hash, &map);

	test_assert(ret == STORE_OK || ret == STORE_NOTFOUND);
	store_blob_unmap(&map);
	return ret == STORE_OK;
}

static void
test_store_queue_add_get(void)
{
	char hash[STORE_HASH_HEX_LEN + 1];
	struct store *s = test_queue_open(hash);
	struct store_queue_entry e, *es;
	size_t n;
	int64_t id;

	if (s == NULL)
		return;
	id = test_queue_add(s, hash, 1000);
	test_assert(store_queue_get(s, id, &e) == 1);
	test_assert(e.id == id);
	test_assert_strcmp(e.sender, "a@example.org");
	test_assert_strcmp(e.envid, "ENV1");
	test_assert_strcmp(e.ret, "HDRS");
	test_assert_strcmp(e.blob, hash);
	test_assert(e.size == sizeof(test_msg) - 1);
	test_assert(e.created == 1000 && e.next_attempt == 1000);
	test_assert(e.attempts == 0);
	test_assert_strcmp(e.body, "8BITMIME");
	test_assert(e.smtputf8);
	test_assert(e.rcpt_count == 2);
	if (e.rcpt_count == 2) {
		test_assert_strcmp(e.rcpts[0].address, "x@remote.example");
		test_assert_strcmp(e.rcpts[0].orcpt, "rfc822;x@remote.example");
		test_assert_strcmp(e.rcpts[0].notify, "FAILURE");
		test_assert(e.rcpts[0].status == 0);
		test_assert(e.rcpts[0].last_reply == NULL);
		test_assert_strcmp(e.rcpts[1].address, "y@remote.example");
		test_assert(e.rcpts[1].orcpt == NULL);
		test_assert(e.rcpts[1].notify == NULL);
	}
	store_queue_entry_clear(&e);
	test_assert(e.sender == NULL && e.rcpts == NULL);
	test_assert(store_queue_get(s, id + 100, &e) == 0);
	store_queue_entry_clear(&e);

	test_assert(store_queue_due(s, 999, 10, &es, &n) == STORE_OK);
	test_assert(n == 0);
	store_queue_entries_free(es, n);
	test_assert(store_queue_due(s, 1000, 10, &es, &n) == STORE_OK);
	test_assert(n == 1 && es[0].id == id && es[0].rcpt_count == 2);
	store_queue_entries_free(es, n);
	test_assert(store_queue_list(s, &es, &n) == STORE_OK);
	test_assert(n == 1 && es[0].id == id && es[0].rcpt_count == 2);
	store_queue_entries_free(es, n);
	store_close(&s);
}

static void
test_store_queue_update(void)
{
	char hash[STORE_HASH_HEX_LEN + 1];
	struct store *s = test_queue_open(hash);
	struct store_queue_entry e, *es;
	size_t n;
	int64_t id;

	if (s == NULL)
		return;
	id = test_queue_add(s, hash, 1000);
	test_assert(store_queue_get(s, id, &e) == 1);
	test_assert(!e.delay_warned);
	if (e.rcpt_count != 2) {
		store_queue_entry_clear(&e);
		store_close(&s);
		return;
	}
	/* One delivered, one deferred: the entry stays. */
	e.rcpts[0].status = 2;
	e.rcpts[0].last_reply = strdup("250 2.0.0 ok");
	e.rcpts[1].last_reply = strdup("451 4.7.1 try later");
	e.attempts = 1;
	e.next_attempt = 2000;
	e.delay_warned = true;
	test_assert(store_queue_update(s, &e) == STORE_OK);
	store_queue_entry_clear(&e);

	test_assert(store_queue_get(s, id, &e) == 1);
	test_assert(e.attempts == 1 && e.next_attempt == 2000);
	test_assert(e.delay_warned);
	test_assert(e.rcpt_count == 2);
	if (e.rcpt_count == 2) {
		test_assert(e.rcpts[0].status == 2);
		test_assert_strcmp(e.rcpts[0].last_reply, "250 2.0.0 ok");
		test_assert(e.rcpts[1].status == 0);
		test_assert_strcmp(e.rcpts[1].last_reply,
				   "451 4.7.1 try later");
	}
	test_assert(store_queue_due(s, 1500, 10, &es, &n) == STORE_OK);
	test_assert(n == 0);
	store_queue_entries_free(es, n);
	test_assert(test_queue_blob_exists(s, hash));

	/* Both final: the entry and its blob go. */
	if (e.rcpt_count == 2) {
		e.rcpts[1].status = 5;
		free(e.rcpts[1].last_reply);
		e.rcpts[1].last_reply = strdup("550 5.1.1 no such user");
	}
	e.attempts = 2;
	test_assert(store_queue_update(s, &e) == STORE_OK);
	store_queue_entry_clear(&e);
	test_assert(store_queue_get(s, id, &e) == 0);
	test_assert(store_queue_list(s, &es, &n) == STORE_OK);
	test_assert(n == 0);
	store_queue_entries_free(es, n);
	test_assert(!test_queue_blob_exists(s, hash));
	store_close(&s);
}

static void
test_store_queue_update_missing(void)
{
	char hash[STORE_HASH_HEX_LEN + 1];
	struct store *s = test_queue_open(hash);
	struct store_queue_entry e;
	struct store_queue_rcpt r[2];

	if (s == NULL)
		return;
	test_queue_entry(&e, r, hash, 1000);
	e.id = 42;
	test_assert(store_queue_update(s, &e) == STORE_NOTFOUND);
	store_close(&s);
}

static void
test_store_queue_delete(void)
{
	char hash[STORE_HASH_HEX_LEN + 1];
	struct store *s = test_queue_open(hash);
	struct store_queue_entry *es;
	size_t n;
	int64_t id1, id2;

	if (s == NULL)
		return;
	/* Two entries share the blob: it lives until the second goes. */
	id1 = test_queue_add(s, hash, 1000);
	id2 = test_queue_add(s, hash, 1000);
	test_assert(id2 > id1);
	test_assert(store_queue_delete(s, id1) == STORE_OK);
	test_assert(store_queue_delete(s, id1) == STORE_NOTFOUND);
	test_assert(test_queue_blob_exists(s, hash));
	test_assert(store_queue_list(s, &es, &n) == STORE_OK);
	test_assert(n == 1 && es[0].id == id2);
	store_queue_entries_free(es, n);
	test_assert(store_queue_delete(s, id2) == STORE_OK);
	test_assert(!test_queue_blob_exists(s, hash));
	test_assert(store_queue_list(s, &es, &n) == STORE_OK);
	test_assert(n == 0);
	store_queue_entries_free(es, n);
	store_close(&s);
}

static void
test_store_queue_due_order(void)
{
	static const int64_t whens[] = { 30, 10, 20, 10 };
	char hash[STORE_HASH_HEX_LEN + 1];
	struct store *s = test_queue_open(hash);
	struct store_queue_entry *es;
	int64_t ids[4];
	size_t n;

	if (s == NULL)
		return;
	for (size_t i = 0; i < 4; i++)
		ids[i] = test_queue_add(s, hash, whens[i]);
	test_assert(store_queue_due(s, 25, 10, &es, &n) == STORE_OK);
	test_assert(n == 3);
	if (n == 3) {
		test_assert(es[0].id == ids[1]);
		test_assert(es[1].id == ids[3]);
		test_assert(es[2].id == ids[2]);
	}
	store_queue_entries_free(es, n);
	test_assert(store_queue_due(s, 100, 2, &es, &n) == STORE_OK);
	test_assert(n == 2 && es[0].id == ids[1] && es[1].id == ids[3]);
	store_queue_entries_free(es, n);
	test_assert(store_queue_due(s, 100, 0, &es, &n) == STORE_OK);
	test_assert(n == 0 && es == NULL);
	test_assert(store_queue_list(s, &es, &n) == STORE_OK);
	test_assert(n == 4);
	for (size_t i = 0; i < n && i < 4; i++)
		test_assert_idx(es[i].id == ids[i], i);
	store_queue_entries_free(es, n);
	store_close(&s);
}

static void
test_store_queue_invalid(void)
{
	static const char zero[] = "00000000000000000000000000000000"
				   "00000000000000000000000000000000";
	char hash[STORE_HASH_HEX_LEN + 1];
	struct store *s = test_queue_open(hash);
	struct store_queue_entry e, got;
	struct store_queue_rcpt r[2];
	int64_t id = 0;
	size_t n;
	struct store_queue_entry *es;

	if (s == NULL)
		return;
	test_queue_entry(&e, r, hash, 1000);
	e.sender = NULL;
	test_assert(store_queue_add(s, &e, &id) == STORE_INVALID);
	e.sender = "";
	e.rcpt_count = 0;
	test_assert(store_queue_add(s, &e, &id) == STORE_INVALID);
	e.rcpt_count = 2;
	memcpy(e.blob, zero, sizeof(e.blob));
	test_assert(store_queue_add(s, &e, &id) == STORE_NOTFOUND);
	test_assert(store_queue_list(s, &es, &n) == STORE_OK);
	test_assert(n == 0);
	store_queue_entries_free(es, n);

	/* "" is the null sender (bounces), kept as "". */
	memcpy(e.blob, hash, sizeof(e.blob));
	e.size = 12345;
	test_assert(store_queue_add(s, &e, &id) == STORE_OK);
	test_assert(store_queue_get(s, id, &got) == 1);
	test_assert_strcmp(got.sender, "");
	test_assert(got.size == 12345);
	store_queue_entry_clear(&got);
	store_close(&s);
}

static void
test_store_queue_batch(void)
{
	char hash[STORE_HASH_HEX_LEN + 1];
	struct store *s = test_queue_open(hash);
	struct store_queue_entry *es;
	size_t n;
	int64_t id;

	if (s == NULL)
		return;
	test_assert(store_batch_begin(s) == STORE_OK);
	(void)test_queue_add(s, hash, 1000);
	store_batch_rollback(s);
	test_assert(store_queue_list(s, &es, &n) == STORE_OK);
	test_assert(n == 0);
	store_queue_entries_free(es, n);

	test_assert(store_batch_begin(s) == STORE_OK);
	id = test_queue_add(s, hash, 1000);
	test_assert(store_queue_delete(s, id + 1) == STORE_NOTFOUND);
	test_assert(store_batch_commit(s) == STORE_OK);
	test_assert(store_queue_list(s, &es, &n) == STORE_OK);
	test_assert(n == 1 && es[0].id == id);
	store_queue_entries_free(es, n);
	store_close(&s);
}

static const struct test_case tests[] = {
	{ "store_queue_add_get", test_store_queue_add_get },
	{ "store_queue_update", test_store_queue_update },
	{ "store_queue_update_missing", test_store_queue_update_missing },
	{ "store_queue_delete", test_store_queue_delete },
	{ "store_queue_due_order", test_store_queue_due_order },
	{ "store_queue_invalid", test_store_queue_invalid },
	{ "store_queue_batch", test_store_queue_batch },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
