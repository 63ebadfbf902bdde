/* Tests for the persisted view snapshot of a mailbox (store_view_snap.c,
   schema step 12): the blob's round trip with keywords; truncated,
   corrupt, foreign (other magic or byte order) blobs refused by the
   reader and ignored by a load, which then reads every row and writes a
   good snapshot over the bad one; the merge of a snapshot with flag,
   keyword, expunge and delivery changes made after it gives exactly the
   view a full read gives (store_msg_list_view), for several mixes,
   with and without a rewrite; the thresholds; an older snapshot never
   replaces a newer one; the row goes with its mailbox (DELETE, INBOX
   rename, account deletion); expunged UIDs come sorted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store_test.h"
#include "lib/xalloc.h"
#include "store/store_int.h"

static const char test_msg[] = "Subject: x\r\n\r\nbody\r\n";

/* ---- a view as a list, to compare ---- */

struct test_vmsg {
	uint32_t uid, flags;
	uint64_t modseq;
	char *kw; /* NULL: none ("" is stored as none) */
};

struct test_view {
	struct test_vmsg *m;
	size_t n, cap;
	int stop_at; /* > 0: the callback fails at that message */
};

static int
test_view_add(void *ctx, const struct store_view_msg *m)
{
	struct test_view *v = ctx;

	if (v->stop_at > 0 && (int)v->n + 1 == v->stop_at)
		return -1;
	if (v->n == v->cap) {
		v->cap = v->cap == 0 ? 64 : v->cap * 2;
		v->m = xreallocarray(v->m, v->cap, sizeof(*v->m));
	}
	v->m[v->n].uid = m->uid;
	v->m[v->n].flags = m->flags;
	v->m[v->n].modseq = m->modseq;
	v->m[v->n].kw = m->keywords != NULL && *m->keywords != '\0'
				? xstrdup(m->keywords)
				: NULL;
	v->n++;
	return 0;
}

static void
test_view_free(struct test_view *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->m[i].kw);
	free(v->m);
	memset(v, 0, sizeof(*v));
}

static bool
test_view_eq(const struct test_view *a, const struct test_view *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct test_vmsg *x = &a->m[i], *y = &b->m[i];

		if (x->uid != y->uid || x->flags != y->flags ||
		    x->modseq != y->modseq ||
		    (x->kw == NULL) != (y->kw == NULL) ||
		    (x->kw != NULL && strcmp(x->kw, y->kw) != 0)) {
			fprintf(stderr, "view differs at %zu: uid %u/%u flags "
				"%u/%u modseq %llu/%llu kw %s/%s\n", i, x->uid,
				y->uid, x->flags, y->flags,
				(unsigned long long)x->modseq,
				(unsigned long long)y->modseq,
				x->kw ? x->kw : "-", y->kw ? y->kw : "-");
			return false;
		}
	}
	return true;
}

/* ---- a store with one account ---- */

struct test_box {
	struct store *s;
	int64_t acct, inbox;
	char dir[512];
	char hash[STORE_HASH_HEX_LEN + 1];
};

static void
test_box_open(struct test_box *t, const char *sub)
{
	struct store_mailbox box;

	memset(t, 0, sizeof(*t));
	t->s = test_store_open_sub(sub, t->dir, sizeof(t->dir));
	test_assert(store_domain_add(t->s, "example.test") == STORE_OK);
	test_assert(store_account_add(t->s, "a@example.test", "standard",
				      "$argon2id$x", NULL,
				      &t->acct) == STORE_OK);
	test_assert(store_mailbox_get(t->s, t->acct, "INBOX", &box) == 1);
	t->inbox = box.id;
	store_mailbox_clear(&box);
	test_assert(store_blob_write(t->s, test_msg, sizeof(test_msg) - 1,
				     t->hash) == STORE_OK);
}

/* n messages into mailbox id, in one batch (one fsync); every 7th with
   keywords. */
static void
test_fill(struct test_box *t, int64_t id, int n)
{
	uint32_t uid;

	test_assert(store_batch_begin(t->s) == STORE_OK);
	for (int i = 0; i < n; i++) {
		uint32_t flags = i % 3 == 0 ? STORE_FLAG_SEEN : 0;
		const char *kw = i % 7 == 0 ? "$a $b" : NULL;

		test_assert_idx(store_msg_append(t->s, id, t->hash, flags, kw,
						 1764572400, &uid) == STORE_OK,
				i);
	}
	test_assert(store_batch_commit(t->s) == STORE_OK);
}

static void
test_flags(struct test_box *t, int64_t id, const uint32_t *uids, size_t n,
	   enum store_flag_op op, uint32_t flags, const char *kw)
{
	uint64_t modseq;

	test_assert(store_msg_set_flags(t->s, id, uids, n, op, flags, kw, 0,
					&modseq, NULL, NULL) == STORE_OK);
}

static void
test_expunge(struct test_box *t, int64_t id, const uint32_t *uids, size_t n)
{
	uint64_t modseq;

	test_assert(store_msg_expunge(t->s, id, uids, n, &modseq) == STORE_OK);
}

/* The view through store_mailbox_view_snapshot (then its snapshot
   written, as the read thread does), and a full read to compare. */
static int
test_load(struct store *s, int64_t id, struct test_view *v,
	  struct store_view_load *load)
{
	struct store_mailbox box;
	int r;

	memset(v, 0, sizeof(*v));
	r = store_mailbox_view_snapshot(s, id, &box, test_view_add, v, load);
	if (r == 1)
		store_mailbox_clear(&box);
	test_assert(store_view_snap_flush(s, NULL) >= 0);
	return r;
}

static void
test_full(struct store *s, int64_t id, struct test_view *v)
{
	memset(v, 0, sizeof(*v));
	test_assert(store_msg_list_view(s, id, 1, test_view_add, v) ==
		    STORE_OK);
}

/* Load, compare with a full read; the load's figures in *load. */
static void
test_check(struct test_box *t, int64_t id, struct store_view_load *load)
{
	struct test_view got, want;

	test_assert(test_load(t->s, id, &got, load) == 1);
	test_full(t->s, id, &want);
	test_assert(test_view_eq(&got, &want));
	test_assert(load->from_snap + load->from_rows == got.n);
	test_view_free(&got);
	test_view_free(&want);
}

/* The stored snapshot's modseq, or -1 when there is none. */
static int64_t
test_snap_modseq(struct store *s, int64_t id)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	test_assert(sqlite3_prepare_v2(s->db, "SELECT modseq FROM view_snap"
					      " WHERE mailbox_id = ?",
				       -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int64_t
test_snap_rows(struct store *s)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	test_assert(sqlite3_prepare_v2(s->db, "SELECT count(*) FROM view_snap",
				       -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static uint64_t
test_highestmodseq(struct store *s, int64_t id)
{
	struct store_mailbox box;
	uint64_t v;

	test_assert(store_mailbox_get_by_id(s, id, &box) == 1);
	v = box.highestmodseq;
	store_mailbox_clear(&box);
	return v;
}

/* ---- the blob ---- */

static const struct store_view_msg test_codec_msgs[] = {
	{ 1, STORE_FLAG_SEEN, 5, NULL },
	{ 2, 0, 7, "$a" },
	{ 9, STORE_FLAG_FLAGGED | STORE_FLAG_DELETED, 3, "" },
	{ 10, 0, 12, "$Forwarded $Junk work" },
	{ 4000000000u, STORE_FLAG_DRAFT, 1ull << 40, NULL },
	{ 4000000001u, 0, 2, "x" },
};
#define TEST_CODEC_N (sizeof(test_codec_msgs) / sizeof(test_codec_msgs[0]))

static uint8_t *
test_codec_blob(size_t *len_r)
{
	struct store_view_snap_enc e;

	memset(&e, 0, sizeof(e));
	for (size_t i = 0; i < TEST_CODEC_N; i++)
		store_view_snap_enc_add(&e, &test_codec_msgs[i]);
	return store_view_snap_enc_finish(&e, len_r);
}

static void
test_view_snap_codec(void)
{
	struct store_view_snap_enc e;
	struct store_view_snap_rd rd;
	struct store_view_msg m;
	const struct store_view_msg *w;
	size_t len, i = 0;
	uint8_t *data = test_codec_blob(&len);

	test_assert(data != NULL);
	/* header, 6 records, 3 keyword entries ("" is none) */
	test_assert(len == 16 + 6 * 16 + (8 + 3) + (8 + 22) + (8 + 2));
	test_assert(store_view_snap_open(&rd, data, len, TEST_CODEC_N));
	while (store_view_snap_next(&rd, &m)) {
		test_assert_idx(i < TEST_CODEC_N, i);
		if (i >= TEST_CODEC_N)
			break;
		w = &test_codec_msgs[i];
		test_assert_idx(m.uid == w->uid && m.flags == w->flags &&
					m.modseq == w->modseq,
				i);
		if (w->keywords == NULL || *w->keywords == '\0')
			test_assert_idx(m.keywords == NULL, i);
		else
			test_assert_idx(m.keywords != NULL &&
						!strcmp(m.keywords, w->keywords),
					i);
		i++;
	}
	test_assert(i == TEST_CODEC_N);
	free(data);

	/* an empty view */
	memset(&e, 0, sizeof(e));
	data = store_view_snap_enc_finish(&e, &len);
	test_assert(data != NULL && len == 16);
	test_assert(store_view_snap_open(&rd, data, len, 0));
	test_assert(!store_view_snap_next(&rd, &m));
	test_assert(!store_view_snap_open(&rd, data, len, 1));
	free(data);

	/* UIDs out of order cannot be read back: no blob */
	memset(&e, 0, sizeof(e));
	store_view_snap_enc_add(&e, &test_codec_msgs[1]);
	store_view_snap_enc_add(&e, &test_codec_msgs[0]);
	test_assert(store_view_snap_enc_finish(&e, &len) == NULL);
}

static void
test_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Open and read all of it (under ASan: nothing read outside). */
static bool
test_open_walk(const uint8_t *data, size_t len, uint32_t count)
{
	struct store_view_snap_rd rd;
	struct store_view_msg m;
	size_t n = 0, kwbytes = 0;

	if (!store_view_snap_open(&rd, data, len, count))
		return false;
	while (store_view_snap_next(&rd, &m)) {
		if (m.keywords != NULL)
			kwbytes += strlen(m.keywords);
		n++;
	}
	test_assert(n == count && kwbytes < len);
	return true;
}

static void
test_view_snap_corrupt(void)
{
	/* offsets in the codec blob: records at 16, keyword entries from
	   112 (record 1 "$a", record 3, record 5 "x") */
	enum { REC = 16, KW = 16 + 6 * 16, KW2 = KW + 8 + 3 };
	size_t len, i;
	uint8_t *good = test_codec_blob(&len), *b = xmalloc(len + 1);
	uint32_t magic;

	test_assert(test_open_walk(good, len, TEST_CODEC_N));
	/* every truncation, and one byte more */
	for (i = 0; i < len; i++)
		test_assert_idx(!test_open_walk(good, i, TEST_CODEC_N), i);
	memcpy(b, good, len);
	b[len] = 0;
	test_assert(!test_open_walk(b, len + 1, TEST_CODEC_N));
	test_assert(!store_view_snap_open(&(struct store_view_snap_rd){ 0 },
					  NULL, 0, 0));
	/* another count than the row's */
	test_assert(!test_open_walk(good, len, TEST_CODEC_N - 1));
	test_assert(!test_open_walk(good, len, TEST_CODEC_N + 1));

#define TEST_MUTATE(stmt)                                        \
	do {                                                     \
		memcpy(b, good, len);                            \
		stmt;                                            \
		test_assert(!test_open_walk(b, len, TEST_CODEC_N)); \
	} while (0)
	/* another format version, the other byte order, the reserved word */
	memcpy(&magic, good, 4);
	TEST_MUTATE(test_put32(b, magic + 1));
	TEST_MUTATE(test_put32(b, __builtin_bswap32(magic)));
	TEST_MUTATE(test_put32(b + 12, 1));
	/* UIDs: 0, equal, descending */
	TEST_MUTATE(test_put32(b + REC, 0));
	TEST_MUTATE(test_put32(b + REC + 16, 1));
	TEST_MUTATE(test_put32(b + REC + 5 * 16, 3));
	/* keyword entries: index out of range, not ascending, length 0,
	   past the end, no NUL at its end, a NUL inside; count off */
	TEST_MUTATE(test_put32(b + KW, 6));
	TEST_MUTATE(test_put32(b + KW2, 1));
	TEST_MUTATE(test_put32(b + KW + 4, 0));
	TEST_MUTATE(test_put32(b + KW + 4, 0xffffffffu));
	TEST_MUTATE(test_put32(b + KW + 4, 2));
	TEST_MUTATE(b[KW + 8 + 1] = '\0');
	TEST_MUTATE(b[len - 1] = 'y');
	TEST_MUTATE(test_put32(b + 8, 2));
	TEST_MUTATE(test_put32(b + 8, 4));
	TEST_MUTATE(test_put32(b + 4, 0xffffffffu));
#undef TEST_MUTATE
	/* any single byte changed: refused, or read without a fault */
	for (i = 0; i < len; i++) {
		for (unsigned v = 0; v < 256; v += 51) {
			memcpy(b, good, len);
			b[i] ^= (uint8_t)(v | 1);
			(void)test_open_walk(b, len, TEST_CODEC_N);
		}
	}
	free(b);
	free(good);
}

/* A bad row is ignored (a full read), and the load writes a good one
   over it even at the same modseq. */
static void
test_view_snap_bad_row(void)
{
	static const char *const bad[] = {
		"UPDATE view_snap SET data = x'00'",
		"UPDATE view_snap SET data = substr(data, 1, length(data) - 1)",
		"UPDATE view_snap SET count = count + 1",
		"UPDATE view_snap SET uidvalidity = uidvalidity + 1",
		"UPDATE view_snap SET modseq = modseq + 100",
		"UPDATE view_snap SET data = 'text'",
	};
	struct store_view_load load;
	struct test_box t;
	uint64_t h;

	test_box_open(&t, "bad");
	store_view_snap_limits(t.s, 1, 1000);
	test_fill(&t, t.inbox, 40);
	test_check(&t, t.inbox, &load);
	test_assert(!load.snap_used && load.snap_save);
	h = test_highestmodseq(t.s, t.inbox);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_assert_idx(sqlite3_exec(t.s->db, bad[i], NULL, NULL,
					     NULL) == SQLITE_OK,
				i);
		test_check(&t, t.inbox, &load);
		test_assert_idx(!load.snap_used && load.from_rows == 40 &&
					load.snap_save,
				i);
		test_assert_idx(test_snap_modseq(t.s, t.inbox) == (int64_t)h,
				i);
		test_check(&t, t.inbox, &load);
		test_assert_idx(load.snap_used && load.from_snap == 40 &&
					load.from_rows == 0 && !load.snap_save,
				i);
	}
	store_close(&t.s);
}

/* ---- the merge ---- */

/* One mix of changes after the snapshot, then a load must equal a full
   read. */
static void
test_merge_mix(struct test_box *t, int mix, size_t *gone_r)
{
	uint32_t u[8];
	uint32_t uid;

	*gone_r = 0;
	switch (mix) {
	case 0: /* flags only, first and last message too */
		u[0] = 1, u[1] = 50, u[2] = 120;
		test_flags(t, t->inbox, u, 3, STORE_FLAGS_ADD,
			   STORE_FLAG_FLAGGED, NULL);
		test_flags(t, t->inbox, u + 1, 1, STORE_FLAGS_REMOVE,
			   STORE_FLAG_SEEN, NULL);
		break;
	case 1: /* expunges: the first, the last, a run in between */
		u[0] = 1, u[1] = 60, u[2] = 61, u[3] = 62, u[4] = 120;
		test_expunge(t, t->inbox, u, 5);
		*gone_r = 5;
		break;
	case 2: /* new messages, one of them changed and one expunged */
		test_fill(t, t->inbox, 5);
		u[0] = 122;
		test_flags(t, t->inbox, u, 1, STORE_FLAGS_ADD, 0, "$new");
		u[0] = 123;
		test_expunge(t, t->inbox, u, 1);
		break;
	case 3: /* keywords: added, one removed, all removed (7 had $a $b) */
		u[0] = 2, u[1] = 8, u[2] = 15;
		test_flags(t, t->inbox, u, 1, STORE_FLAGS_ADD, 0, "$x $y");
		test_flags(t, t->inbox, u + 1, 1, STORE_FLAGS_REMOVE, 0, "$a");
		test_flags(t, t->inbox, u + 2, 1, STORE_FLAGS_SET, 0, NULL);
		break;
	default: /* all of it, a message changed then expunged */
		u[0] = 30, u[1] = 31;
		test_flags(t, t->inbox, u, 2, STORE_FLAGS_SET,
			   STORE_FLAG_ANSWERED, "$done");
		u[0] = 31, u[1] = 40;
		test_expunge(t, t->inbox, u, 2);
		test_assert(store_msg_append(t->s, t->inbox, t->hash, 0,
					     "$late", 1764572400,
					     &uid) == STORE_OK);
		u[0] = 43;
		test_flags(t, t->inbox, u, 1, STORE_FLAGS_ADD,
			   STORE_FLAG_DRAFT, "$k");
		*gone_r = 2;
		break;
	}
}

static void
test_merge_run(const char *sub, uint32_t max_delta)
{
	struct store_view_load load;
	struct test_box t;
	size_t gone, gone_total = 0;

	test_box_open(&t, sub);
	store_view_snap_limits(t.s, 1, max_delta);
	test_fill(&t, t.inbox, 120);
	test_check(&t, t.inbox, &load);
	test_assert(!load.snap_used && load.from_rows == 120);
	test_assert(test_snap_modseq(t.s, t.inbox) ==
		    (int64_t)test_highestmodseq(t.s, t.inbox));
	for (int mix = 0; mix < 5; mix++) {
		test_merge_mix(&t, mix, &gone);
		gone_total += gone;
		test_check(&t, t.inbox, &load);
		test_assert_idx(load.snap_used, mix);
		if (max_delta == 0) {
			/* rewritten every time: at the mailbox's modseq */
			test_assert_idx(load.snap_save && load.expunged == gone,
					mix);
			test_assert_idx(test_snap_modseq(t.s, t.inbox) ==
						(int64_t)test_highestmodseq(
							t.s, t.inbox),
					mix);
		} else {
			/* the first snapshot, the changes add up */
			test_assert_idx(!load.snap_save &&
						load.expunged == gone_total,
					mix);
		}
	}
	/* nothing changed since: all from the snapshot */
	test_check(&t, t.inbox, &load);
	if (max_delta == 0)
		test_assert(load.snap_used && load.from_rows == 0 &&
			    load.expunged == 0);
	/* every message expunged */
	{
		struct test_view all;
		uint32_t *uids;

		test_full(t.s, t.inbox, &all);
		uids = xreallocarray(NULL, all.n, sizeof(*uids));
		for (size_t i = 0; i < all.n; i++)
			uids[i] = all.m[i].uid;
		test_expunge(&t, t.inbox, uids, all.n);
		test_check(&t, t.inbox, &load);
		test_assert(load.snap_used && load.from_snap == 0 &&
			    load.from_rows == 0);
		free(uids);
		test_view_free(&all);
	}
	store_close(&t.s);
}

static void
test_view_snap_merge(void)
{
	test_merge_run("merge", 1000);
	test_merge_run("merge-rewrite", 0);
}

/* The callback failing stops the load: an error, no snapshot kept. */
static void
test_view_snap_fn_fails(void)
{
	struct store_view_load load;
	struct store_mailbox box;
	struct test_view v;
	struct test_box t;

	test_box_open(&t, "fnfail");
	store_view_snap_limits(t.s, 1, 1000);
	test_fill(&t, t.inbox, 20);
	memset(&v, 0, sizeof(v));
	v.stop_at = 10;
	test_assert(store_mailbox_view_snapshot(t.s, t.inbox, &box,
						test_view_add, &v, &load) ==
		    STORE_ERR);
	test_view_free(&v);
	test_assert(t.s->snap_out == NULL);
	test_check(&t, t.inbox, &load); /* written now */
	memset(&v, 0, sizeof(v));
	v.stop_at = 10;
	test_assert(store_mailbox_view_snapshot(t.s, t.inbox, &box,
						test_view_add, &v, &load) ==
		    STORE_ERR);
	test_view_free(&v);
	store_close(&t.s);
}

/* ---- when one is written ---- */

static void
test_view_snap_thresholds(void)
{
	struct store_view_load load;
	struct test_box t;
	uint32_t u[12];

	test_box_open(&t, "limits");
	test_fill(&t, t.inbox, 30);
	/* the defaults: far below STORE_VIEW_SNAP_MIN_MSGS */
	test_check(&t, t.inbox, &load);
	test_assert(!load.snap_used && !load.snap_save);
	test_assert(test_snap_modseq(t.s, t.inbox) == -1);
	store_view_snap_limits(t.s, 31, 10);
	test_check(&t, t.inbox, &load);
	test_assert(!load.snap_save && test_snap_rows(t.s) == 0);
	store_view_snap_limits(t.s, 30, 10);
	test_check(&t, t.inbox, &load);
	test_assert(load.snap_save && test_snap_rows(t.s) == 1);
	/* 10 rows changed and expunged since: read from the snapshot */
	for (int i = 0; i < 12; i++)
		u[i] = (uint32_t)(i + 1);
	test_flags(&t, t.inbox, u, 6, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
		   NULL);
	test_expunge(&t, t.inbox, u + 6, 4);
	test_check(&t, t.inbox, &load);
	test_assert(load.snap_used && load.from_rows == 6 &&
		    load.expunged == 4 && !load.snap_save);
	/* 11: a new one */
	test_expunge(&t, t.inbox, u + 10, 1);
	test_check(&t, t.inbox, &load);
	test_assert(load.snap_used && load.snap_save);
	test_check(&t, t.inbox, &load);
	test_assert(load.snap_used && load.from_rows == 0 &&
		    load.from_snap == 25 && !load.snap_save);
	/* a mailbox that shrank below the size keeps its snapshot current */
	store_view_snap_limits(t.s, 1000, 0);
	test_expunge(&t, t.inbox, u + 11, 1);
	test_check(&t, t.inbox, &load);
	test_assert(load.snap_used && load.snap_save);
	test_assert(test_snap_modseq(t.s, t.inbox) ==
		    (int64_t)test_highestmodseq(t.s, t.inbox));
	store_close(&t.s);
}

/* A snapshot kept at an older modseq and written after a newer one
   does not replace it. */
static void
test_view_snap_older(void)
{
	struct store_view_load load;
	struct store_mailbox box;
	struct test_view v;
	struct store_view_snap_write w;
	struct test_box t;
	struct store *s2;
	uint32_t u = 5;
	int64_t newer;

	test_box_open(&t, "older");
	store_view_snap_limits(t.s, 1, 1000);
	test_fill(&t, t.inbox, 25);
	s2 = store_open(t.dir, NULL);
	test_assert(s2 != NULL);
	store_view_snap_limits(s2, 1, 1000);
	/* s2 reads first and keeps its snapshot unwritten */
	memset(&v, 0, sizeof(v));
	test_assert(store_mailbox_view_snapshot(s2, t.inbox, &box,
						test_view_add, &v, &load) == 1);
	store_mailbox_clear(&box);
	test_view_free(&v);
	test_assert(load.snap_save && s2->snap_out != NULL);
	/* a change, and a newer snapshot written by the first store */
	test_flags(&t, t.inbox, &u, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
		   "$later");
	test_check(&t, t.inbox, &load);
	newer = test_snap_modseq(t.s, t.inbox);
	test_assert(newer == (int64_t)test_highestmodseq(t.s, t.inbox));
	test_assert(store_view_snap_flush(s2, &w) == 1);
	test_assert(s2->snap_out == NULL && !w.written);
	test_assert(w.modseq < (uint64_t)newer && w.count == 25);
	test_assert(test_snap_modseq(t.s, t.inbox) == newer);
	/* and the view is still right */
	test_check(&t, t.inbox, &load);
	test_assert(load.snap_used && load.from_rows == 0);
	store_close(&s2);
	store_close(&t.s);
}

/* ---- the row goes with its mailbox ---- */

static void
test_view_snap_delete(void)
{
	struct store_view_load load;
	struct store_mailbox box;
	struct test_view v;
	struct test_box t;
	int64_t big, other;
	const char *error = NULL;

	test_box_open(&t, "delete");
	store_view_snap_limits(t.s, 1, 1000);
	test_assert(store_mailbox_create(t.s, t.acct, "Big", NULL, &big,
					 &error) == STORE_OK);
	test_assert(store_mailbox_create(t.s, t.acct, "Other", NULL, &other,
					 &error) == STORE_OK);
	test_fill(&t, big, 10);
	test_fill(&t, other, 10);
	test_fill(&t, t.inbox, 10);
	test_check(&t, big, &load);
	test_check(&t, other, &load);
	test_check(&t, t.inbox, &load);
	test_assert(test_snap_rows(t.s) == 3);
	test_assert(store_mailbox_delete(t.s, t.acct, "Big") == STORE_OK);
	test_assert(test_snap_modseq(t.s, big) == -1);
	test_assert(test_snap_rows(t.s) == 2);

	/* a snapshot kept for a mailbox deleted before it is written */
	test_assert(sqlite3_exec(t.s->db, "DELETE FROM view_snap", NULL,
				 NULL, NULL) == SQLITE_OK);
	memset(&v, 0, sizeof(v));
	test_assert(store_mailbox_view_snapshot(t.s, other, &box,
						test_view_add, &v, &load) == 1);
	store_mailbox_clear(&box);
	test_view_free(&v);
	test_assert(t.s->snap_out != NULL);
	test_assert(store_mailbox_delete(t.s, t.acct, "Other") == STORE_OK);
	test_assert(store_view_snap_flush(t.s, NULL) < 0);
	test_assert(test_snap_rows(t.s) == 0);

	/* RENAME INBOX: the snapshot of INBOX says all of it went */
	test_check(&t, t.inbox, &load);
	test_assert(test_snap_rows(t.s) == 1);
	test_assert(store_mailbox_rename(t.s, t.acct, "INBOX", "Old",
					 &error) == STORE_OK);
	test_check(&t, t.inbox, &load);
	test_assert(load.snap_used && load.expunged == 10 &&
		    load.from_snap == 0 && load.from_rows == 0);
	test_fill(&t, t.inbox, 3);
	test_check(&t, t.inbox, &load);
	test_assert(load.snap_used && load.from_rows == 3);
	test_assert(store_mailbox_get(t.s, t.acct, "Old", &box) == 1);
	test_check(&t, box.id, &load);
	test_assert(!load.snap_used && load.from_rows == 10);
	store_mailbox_clear(&box);
	test_assert(test_snap_rows(t.s) == 2);

	/* the account's deletion takes them all */
	test_assert(store_account_del(t.s, "a@example.test") == STORE_OK);
	test_assert(test_snap_rows(t.s) == 0);
	store_close(&t.s);
}

/* UIDs expunged after a modseq come in ascending UID order (the merge
   and VANISHED rely on it), also when a later expunge took lower UIDs:
   the query reads them in modseq order. */
static void
test_view_snap_expunged_order(void)
{
	static const uint32_t first[] = { 9, 10 }, then[] = { 2, 3 };
	struct test_box t;
	uint32_t *uids = NULL;
	size_t n = 0;
	uint64_t since;

	test_box_open(&t, "order");
	test_fill(&t, t.inbox, 12);
	since = test_highestmodseq(t.s, t.inbox);
	test_expunge(&t, t.inbox, first, 2);
	test_expunge(&t, t.inbox, then, 2);
	test_assert(store_msg_vanished(t.s, t.inbox, since, &uids, &n) ==
		    STORE_OK);
	test_assert(n == 4 && uids[0] == 2 && uids[1] == 3 && uids[2] == 9 &&
		    uids[3] == 10);
	free(uids);
	store_close(&t.s);
}

static const struct test_case tests[] = {
	{ "view_snap_expunged_order", test_view_snap_expunged_order },
	{ "view_snap_codec", test_view_snap_codec },
	{ "view_snap_corrupt", test_view_snap_corrupt },
	{ "view_snap_bad_row", test_view_snap_bad_row },
	{ "view_snap_merge", test_view_snap_merge },
	{ "view_snap_fn_fails", test_view_snap_fn_fails },
	{ "view_snap_thresholds", test_view_snap_thresholds },
	{ "view_snap_older", test_view_snap_older },
	{ "view_snap_delete", test_view_snap_delete },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
