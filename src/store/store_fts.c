/* The full-text index behind IMAP SEARCH BODY and TEXT (RFC 9051
   6.4.4): one SQLite FTS5 row per blob (blobs are deduplicated, so one
   row serves every mailbox holding the message), rowid = blobs.id, with
   two columns: hdr, the top header and the MIME headers of the body
   parts with RFC 2047 encoded-words decoded (mime_extract_headers), and
   body, the decoded text of the text/ parts
   (mime_extract_text: base64 and quoted-printable undone, charsets
   converted to UTF-8, HTML markup removed). These are exactly the bytes
   imap_search.c compares, so the index can serve as a candidate filter.

   The trigram tokenizer (SQLite 3.34+) indexes every 3-character
   sequence, case-folded, so a phrase query for the needle matches
   every row that contains it as a substring, as IMAP requires (not
   only whole words). Needles shorter than 3 characters cannot use it:
   the caller scans. The row is written inside the delivery/APPEND
   transaction (store_msg.c, once per blob, when its structure is
   parsed; inside a batch, all rows together before its COMMIT) and
   removed by a trigger when the blob row is collected (store_schema.c
   steps 5 and 9). Blobs stored before the index existed have blobs.fts
   = 0 and are always candidates.

   blobs.fts says how far the index can be trusted (STORE_FTS_*):
   - 1: the text is valid UTF-8 and holds no character that the
     tokenizer folds to ASCII. Then, for an ASCII needle, a phrase match
     is exactly "the text contains the needle, ASCII case-insensitively"
     (the exact check of imap_search.c): each matched character of the
     text folds to an ASCII character of the needle, and only ASCII
     characters do. Such matches are returned as sure.
   - 3: valid UTF-8 with such a character (U+017F LONG S folds to "s",
     U+212A KELVIN SIGN to "k"; tests/unit/test_store_fts.c checks the
     linked SQLite for every other code point): "<U+212A>elvin"
     matches "kelvin" in the index but not in the exact check. Or with
     NUL bytes: the tokenizer stops at the first NUL, so they are
     indexed as spaces, and "a b" matches "a<NUL>b" in the index only.
     Such matches are candidates only.
   - 2: not valid UTF-8 (raw 8-bit headers): tokenized with character
     boundaries that can differ from the needle's when the needle is not
     ASCII; such blobs are candidates for every non-ASCII needle, so the
     index never drops a match. Candidates only.
   A non-ASCII needle is never sure: the index folds Unicode case, the
   exact check only ASCII. Blobs indexed when hdr held only the top
   header (ids up to fts_layout.old_max, schema step 10) are for BODY as
   above, for TEXT always candidates and never sure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store_int.h"

/* Characters (not bytes) of UTF-8 text s. */
static size_t
store_fts_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	}
	return n;
}

static bool
store_fts_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

/* Strict UTF-8 (no overlongs, surrogates or values above U+10FFFF). */
static bool
store_fts_utf8(const uint8_t *p, size_t len)
{
	size_t i = 0, n, k;
	uint32_t c;

	while (i < len) {
		c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : 0;
		if (n == 0 || c > 0xf4 || len - i <= n)
			return false;
		c &= 0x3fu >> n;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			c = (c << 6) | (p[i + k] & 0x3fu);
		}
		if ((n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
		    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

/* Does valid UTF-8 text p hold a character the trigram tokenizer folds
   to ASCII (U+017F, U+212A)? */
static bool
store_fts_ascii_folds(const uint8_t *p, size_t len)
{
	if (len == 0)
		return false;
	return memmem(p, len, "\xc5\xbf", 2) != NULL ||
	       memmem(p, len, "\xe2\x84\xaa", 3) != NULL;
}

/* NUL bytes to spaces (the tokenizer would stop at the first):
   true if there were any. */
static bool
store_fts_unnul(struct buf *b)
{
	bool any = false;
	uint8_t *p = b->data, *end = b->data + b->len;

	while (p != NULL && p < end &&
	       (p = memchr(p, '\0', (size_t)(end - p))) != NULL) {
		*p++ = ' ';
		any = true;
	}
	return any;
}

/* The blobs.fts value for this text (STORE_FTS_*). Call it before the
   text is indexed: it turns NULs into spaces. */
static int
store_fts_state(struct buf *hdr, struct buf *body)
{
	bool nul = store_fts_unnul(hdr);

	nul = store_fts_unnul(body) || nul;
	if (!store_fts_utf8(hdr->data, hdr->len) ||
	    !store_fts_utf8(body->data, body->len))
		return STORE_FTS_RAW;
	if (nul || store_fts_ascii_folds(hdr->data, hdr->len) ||
	    store_fts_ascii_folds(body->data, body->len))
		return STORE_FTS_INEXACT;
	return STORE_FTS_EXACT;
}

static int
store_fts_insert_row(struct store *s, int64_t blob_id, const struct buf *hdr,
		     const struct buf *body)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "INSERT OR REPLACE INTO blob_fts(rowid, hdr, body)"
			   " VALUES (?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
	sqlite3_bind_text(st, 2, buf_cstr(hdr), (int)hdr->len, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, buf_cstr(body), (int)body->len,
			  SQLITE_STATIC);
	return store_stmt_exec(s, st);
}

static void
store_fts_pending_free(struct store_fts_pending *p)
{
	buf_free(&p->hdr);
	buf_free(&p->body);
}

void
store_fts_discard(struct store *s, size_t mark)
{
	while (s->fts_count > mark) {
		struct store_fts_pending *p = &s->fts_pending[--s->fts_count];

		s->fts_bytes -= p->hdr.len + p->body.len;
		store_fts_pending_free(p);
	}
	if (s->fts_count == 0) {
		free(s->fts_pending);
		s->fts_pending = NULL;
		s->fts_cap = 0;
		s->fts_bytes = 0;
	}
}

int
store_fts_flush(struct store *s)
{
	int ret = STORE_OK;

	for (size_t i = 0; i < s->fts_count && ret == STORE_OK; i++)
		ret = store_fts_insert_row(s, s->fts_pending[i].blob_id,
					   &s->fts_pending[i].hdr,
					   &s->fts_pending[i].body);
	if (ret == STORE_OK)
		store_fts_discard(s, 0);
	return ret;
}

static int store_fts_mark(struct store *s, int64_t blob_id, int state);

void
store_fts_defer(struct store *s)
{
	s->fts_deferred = true;
}

/* Mark the blob, still unindexed and alive, then write its row: 1 done,
   0 skipped, or an error. */
static int
store_fts_write_deferred(struct store *s, const struct store_fts_pending *p)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "UPDATE blobs SET fts = ? WHERE id = ? AND fts = 0"
			   " AND hash = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int(st, 1, p->state);
	sqlite3_bind_int64(st, 2, p->blob_id);
	sqlite3_bind_text(st, 3, p->hash, -1, SQLITE_STATIC);
	ret = store_stmt_exec(s, st);
	if (ret != STORE_OK || sqlite3_changes(s->db) == 0)
		return ret;
	ret = store_fts_insert_row(s, p->blob_id, &p->hdr, &p->body);
	return ret == STORE_OK ? 1 : ret;
}

/* Drop the first n held rows (written), keeping the rest in order. */
static void
store_fts_drop_front(struct store *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		s->fts_bytes -= s->fts_pending[i].hdr.len +
				s->fts_pending[i].body.len;
		store_fts_pending_free(&s->fts_pending[i]);
	}
	memmove(s->fts_pending, s->fts_pending + n,
		(s->fts_count - n) * sizeof(*s->fts_pending));
	s->fts_count -= n;
	s->fts_batch_mark = s->fts_batch_mark > n ? s->fts_batch_mark - n : 0;
	if (s->fts_count == 0)
		store_fts_discard(s, 0);
}

int
store_fts_flush_deferred(struct store *s, size_t max_rows)
{
	size_t n = s->fts_count < max_rows ? s->fts_count : max_rows;
	int ret;

	if (n == 0 || s->batch || s->tx_depth > 0)
		return STORE_OK;
	/* the index can be rebuilt; only the blob and its message must be
	   durable before a reply */
	ret = store_exec_cached(s, "PRAGMA synchronous=NORMAL");
	if (ret == STORE_OK)
		ret = store_exec(s, "BEGIN IMMEDIATE");
	for (size_t i = 0; i < n && ret == STORE_OK; i++) {
		int r = store_fts_write_deferred(s, &s->fts_pending[i]);

		ret = r < 0 ? r : STORE_OK;
	}
	if (ret == STORE_OK)
		ret = store_exec(s, "COMMIT");
	if (ret != STORE_OK && !sqlite3_get_autocommit(s->db))
		(void)store_exec(s, "ROLLBACK");
	(void)store_exec_cached(s, "PRAGMA synchronous=FULL");
	store_fts_drop_front(s, n);
	return ret;
}

/* The row now, or, inside a batch, at its COMMIT: FTS5 flushes its
   pending terms into a new segment at every SAVEPOINT, and a batch has
   several per message, so writing the rows together at the end makes one
   segment per batch instead of several per message. (A savepoint rolled
   back drops its share, see store_tx_rollback.) Takes hdr and body. */
static int
store_fts_insert(struct store *s, int64_t blob_id, const char *hash,
		 struct buf *hdr, struct buf *body, int state)
{
	struct store_fts_pending *p;
	int ret;

	if (!s->batch || s->fts_bytes > STORE_FTS_PENDING_MAX_BYTES) {
		if (s->fts_deferred) {
			/* past the bound: this one now, in the batch */
			ret = store_fts_mark(s, blob_id, state);
			if (ret == STORE_OK)
				ret = store_fts_insert_row(s, blob_id, hdr,
							   body);
			buf_free(hdr);
			buf_free(body);
			return ret;
		}
		ret = s->batch ? store_fts_flush(s) : STORE_OK;
		if (ret == STORE_OK)
			ret = store_fts_insert_row(s, blob_id, hdr, body);
		buf_free(hdr);
		buf_free(body);
		return ret;
	}
	s->fts_pending = store_grow(s->fts_pending, &s->fts_cap, s->fts_count,
				    sizeof(*s->fts_pending));
	p = &s->fts_pending[s->fts_count++];
	p->blob_id = blob_id;
	p->hdr = *hdr;
	p->body = *body;
	p->state = state;
	snprintf(p->hash, sizeof(p->hash), "%s", hash);
	s->fts_bytes += hdr->len + body->len;
	return STORE_OK;
}

static int
store_fts_mark(struct store *s, int64_t blob_id, int state)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "UPDATE blobs SET fts = ? WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, blob_id);
	return store_stmt_exec(s, st);
}

int
store_fts_add(struct store *s, int64_t blob_id, const char *hash,
	      const uint8_t *msg, size_t len)
{
	struct buf hdr, body;
	int ret, state;

	buf_init(&hdr, STORE_FTS_TEXT_MAX_BYTES);
	buf_init(&body, STORE_FTS_TEXT_MAX_BYTES);
	(void)mime_extract_headers(msg, len, &hdr);
	(void)mime_extract_text(msg, len, &body);
	if (hdr.len + body.len > STORE_FTS_INDEX_MAX_BYTES) {
		buf_free(&hdr);
		buf_free(&body);
		return store_fts_mark(s, blob_id, STORE_FTS_NONE);
	}
	state = store_fts_state(&hdr, &body);
	/* deferred: marked with its row, after the COMMIT */
	ret = s->fts_deferred ? STORE_OK : store_fts_mark(s, blob_id, state);
	if (ret != STORE_OK) {
		buf_free(&hdr);
		buf_free(&body);
		return ret;
	}
	return store_fts_insert(s, blob_id, hash, &hdr, &body, state);
}

/* FTS5 query: column filter and the needle as one phrase ("" doubles a
   quote inside it). */
static char *
store_fts_query(const char *needle, bool with_header)
{
	struct buf q;

	buf_init(&q, strlen(needle) * 2 + 32);
	(void)buf_append_str(&q, with_header ? "{hdr body} : \"" : "body : \"");
	for (const char *p = needle; *p != '\0'; p++) {
		if (*p == '"')
			(void)buf_append_byte(&q, '"');
		(void)buf_append_byte(&q, (uint8_t)*p);
	}
	(void)buf_append_byte(&q, '"');
	return buf_steal(&q, NULL);
}

/* A growing UID array. */
struct store_fts_uids {
	uint32_t *uids;
	size_t count, cap;
};

static void
store_fts_push(struct store_fts_uids *u, uint32_t uid)
{
	if (u->count == u->cap) {
		u->cap = u->cap < 128 ? 256 : u->cap * 2;
		u->uids = xreallocarray(u->uids, u->cap, sizeof(*u->uids));
	}
	u->uids[u->count++] = uid;
}

static int
store_fts_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort and drop duplicates (a UID can come from both queries). */
static void
store_fts_uniq(uint32_t *uids, size_t *count)
{
	size_t i, o = 0;

	if (*count == 0)
		return;
	qsort(uids, *count, sizeof(*uids), store_fts_u32_cmp);
	for (i = 0; i < *count; i++) {
		if (o == 0 || uids[o - 1] != uids[i])
			uids[o++] = uids[i];
	}
	*count = o;
}

/* Messages of the mailbox whose blob the index matches: cost follows
   the matches (FTS doclists, then messages_blob), not the mailbox. */
static int
store_fts_matches(struct store *s, int64_t mailbox_id, const char *query,
		  struct store_fts_uids *cand)
{
	sqlite3_stmt *st;
	int rc;

	/* CROSS JOIN keeps the FTS scan outside: otherwise SQLite runs
	   the MATCH once per message of the mailbox */
	st = store_stmt(s, "SELECT m.uid FROM blob_fts f"
			   " CROSS JOIN messages m ON m.blob_id = f.rowid"
			   " WHERE blob_fts MATCH ?2 AND m.mailbox_id = ?1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_text(st, 2, query, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_fts_push(cand, store_col_u32(st, 0));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
}

/* Messages of the mailbox whose blob is not STORE_FTS_EXACT (few: the
   partial index blobs_fts_pending holds exactly those blobs). Into
   pending go those the index cannot rule out: not indexed, or (for a
   non-ASCII needle) indexed from text that is not valid UTF-8. Into
   inexact go all of them: their matches are not sure. */
static int
store_fts_not_exact(struct store *s, int64_t mailbox_id, bool ascii,
		    struct store_fts_uids *pending,
		    struct store_fts_uids *inexact)
{
	sqlite3_stmt *st;
	uint32_t uid;
	int rc, fts;

	/* "fts != 1" lets SQLite use the partial index */
	st = store_stmt(s, "SELECT m.uid, b.fts FROM blobs b"
			   " CROSS JOIN messages m ON m.blob_id = b.id"
			   " WHERE b.fts != 1 AND m.mailbox_id = ?1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uid = store_col_u32(st, 0);
		fts = sqlite3_column_int(st, 1);
		if (fts == STORE_FTS_NONE || (!ascii && fts == STORE_FTS_RAW))
			store_fts_push(pending, uid);
		store_fts_push(inexact, uid);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
}

/* For TEXT: messages of the mailbox whose blob was indexed without the
   part headers (schema step 10) are pending and inexact. Nothing to do
   (one tiny read) on a store that never had such blobs. */
static int
store_fts_old_headers(struct store *s, int64_t mailbox_id,
		      struct store_fts_uids *pending,
		      struct store_fts_uids *inexact)
{
	sqlite3_stmt *st;
	int64_t old_max = 0;
	uint32_t uid;
	int rc;

	st = store_stmt(s, "SELECT old_max FROM fts_layout");
	if (st == NULL)
		return STORE_ERR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		old_max = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	if (old_max <= 0)
		return STORE_OK;
	st = store_stmt(s, "SELECT uid FROM messages"
			   " WHERE mailbox_id = ?1 AND blob_id <= ?2");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, old_max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uid = store_col_u32(st, 0);
		store_fts_push(pending, uid);
		store_fts_push(inexact, uid);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
}

/* sure = the matches (sorted) that are not inexact (sorted). */
static void
store_fts_sure(const struct store_fts_uids *match,
	       const struct store_fts_uids *inexact, struct store_fts_uids *sure)
{
	size_t i, k = 0;

	for (i = 0; i < match->count; i++) {
		while (k < inexact->count && inexact->uids[k] < match->uids[i])
			k++;
		if (k < inexact->count && inexact->uids[k] == match->uids[i])
			continue;
		store_fts_push(sure, match->uids[i]);
	}
}

int
store_fts_candidates(struct store *s, int64_t mailbox_id, const char *needle,
		     unsigned flags, struct store_fts_result *res)
{
	struct store_fts_uids cand = { 0 }, sure = { 0 }, pending = { 0 },
			      inexact = { 0 };
	bool started, ascii;
	char *q;
	size_t i;
	int ret;

	memset(res, 0, sizeof(*res));
	if (store_fts_chars(needle) < STORE_FTS_NEEDLE_MIN_CHARS)
		return 0;
	ascii = store_fts_ascii(needle);
	q = store_fts_query(needle, (flags & STORE_FTS_HEADER) != 0);
	ret = store_read_begin(s, &started);
	if (ret == STORE_OK)
		ret = store_fts_matches(s, mailbox_id, q, &cand);
	if (ret == STORE_OK)
		ret = store_fts_not_exact(s, mailbox_id, ascii, &pending,
					  &inexact);
	if (ret == STORE_OK && (flags & STORE_FTS_HEADER) &&
	    (flags & STORE_FTS_PARTS))
		ret = store_fts_old_headers(s, mailbox_id, &pending, &inexact);
	store_read_end(s, started);
	free(q);
	if (ret == STORE_OK) {
		store_fts_uniq(cand.uids, &cand.count);
		store_fts_uniq(inexact.uids, &inexact.count);
		if (ascii && (flags & STORE_FTS_SURE))
			store_fts_sure(&cand, &inexact, &sure);
		for (i = 0; i < pending.count; i++)
			store_fts_push(&cand, pending.uids[i]);
		store_fts_uniq(cand.uids, &cand.count);
	}
	free(pending.uids);
	free(inexact.uids);
	if (ret != STORE_OK) {
		free(cand.uids);
		free(sure.uids);
		return ret;
	}
	res->uids = cand.uids;
	res->count = cand.count;
	res->sure = sure.uids;
	res->nsure = sure.count;
	return 1;
}

void
store_fts_result_free(struct store_fts_result *res)
{
	xfree(&res->uids);
	xfree(&res->sure);
	res->count = res->nsure = 0;
}
