/* The full-text index behind IMAP SEARCH BODY and TEXT (RFC 9051
   6.4.4): one SQLite FTS5 row per blob (blobs are deduplicated, so one
   row serves every mailbox holding the message), rowid = blobs.id, with
   two columns: hdr, the top header with RFC 2047 encoded-words decoded
   (mime_decode_words), and body, the decoded text of the text/ parts
   (mime_extract_text: base64 and quoted-printable undone, charsets
   converted to UTF-8, HTML markup removed). These are exactly the bytes
   imap_search.c compares, so the index can serve as a candidate filter.

   The trigram tokenizer (SQLite 3.34+) indexes every 3-character
   sequence, case-folded, so a phrase query for the needle matches
   every row that contains it as a substring, as IMAP requires (not
   only whole words). Needles shorter than 3 characters cannot use it:
   the caller scans. The row is written inside the delivery/APPEND
   transaction (store_msg.c, once per blob, when its structure is
   parsed; inside a batch, all rows at its COMMIT) and removed by a trigger when the blob row is collected
   (store_schema.c step 3). Blobs stored before the index existed have
   blobs.fts = 0 and are always candidates.

   Text that is not valid UTF-8 (raw 8-bit headers) is tokenized with
   character boundaries that can differ from the needle's when the
   needle is not ASCII; such blobs get blobs.fts = 2 and are candidates
   for every non-ASCII needle, so the index never drops a match. */
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

/* The row now, or, inside a batch, at its COMMIT: FTS5 flushes its
   pending terms into a new segment at every SAVEPOINT, and a batch has
   several per message, so writing the rows together at the end makes one
   segment per batch instead of several per message. (A savepoint rolled
   back drops its share, see store_tx_rollback.) Takes hdr and body. */
static int
store_fts_insert(struct store *s, int64_t blob_id, struct buf *hdr,
		 struct buf *body)
{
	struct store_fts_pending *p;
	int ret;

	if (!s->batch || s->fts_bytes > STORE_FTS_PENDING_MAX_BYTES) {
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
	s->fts_bytes += hdr->len + body->len;
	return STORE_OK;
}

static int
store_fts_mark(struct store *s, int64_t blob_id, const struct buf *hdr,
	       const struct buf *body)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "UPDATE blobs SET fts = ? WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int(st, 1,
			 store_fts_utf8(hdr->data, hdr->len) &&
					 store_fts_utf8(body->data, body->len)
				 ? 1
				 : 2);
	sqlite3_bind_int64(st, 2, blob_id);
	return store_stmt_exec(s, st);
}

int
store_fts_add(struct store *s, int64_t blob_id, const uint8_t *msg,
	      size_t len)
{
	struct mime_section sec;
	struct buf hdr, body;
	size_t hlen = len;
	int ret;

	if (mime_section_find(msg, len, NULL, 0, &sec) == 1)
		hlen = sec.header_len;
	buf_init(&hdr, hlen * 2 + 64);
	buf_init(&body, STORE_FTS_TEXT_MAX_BYTES);
	(void)mime_decode_words(&hdr, (const char *)msg, hlen);
	(void)mime_extract_text(msg, len, &body);
	ret = store_fts_mark(s, blob_id, &hdr, &body);
	if (ret != STORE_OK) {
		buf_free(&hdr);
		buf_free(&body);
		return ret;
	}
	return store_fts_insert(s, blob_id, &hdr, &body);
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

static int
store_fts_collect(struct store *s, sqlite3_stmt *st, uint32_t **uids_r,
		  size_t *count_r)
{
	size_t cap = *count_r; /* appends: the array holds at least that */
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*count_r == cap) {
			cap = cap < 128 ? 256 : cap * 2;
			*uids_r = xreallocarray(*uids_r, cap, sizeof(**uids_r));
		}
		(*uids_r)[(*count_r)++] = store_col_u32(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
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
		  uint32_t **uids_r, size_t *count_r)
{
	sqlite3_stmt *st;
	int ret;

	/* CROSS JOIN keeps the FTS scan outside: otherwise SQLite runs
	   the MATCH once per message of the mailbox */
	st = store_stmt(s, "SELECT m.uid FROM blob_fts f"
			   " CROSS JOIN messages m ON m.blob_id = f.rowid"
			   " WHERE blob_fts MATCH ?2 AND m.mailbox_id = ?1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_text(st, 2, query, -1, SQLITE_STATIC);
	ret = store_fts_collect(s, st, uids_r, count_r);
	sqlite3_clear_bindings(st);
	return ret;
}

/* Messages whose blob the index cannot rule out: not indexed, or (for a
   non-ASCII needle) indexed from text that is not valid UTF-8. Uses the
   partial index blobs_fts_pending. */
static int
store_fts_pending(struct store *s, int64_t mailbox_id, bool ascii,
		  uint32_t **uids_r, size_t *count_r)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "SELECT m.uid FROM blobs b"
			   " CROSS JOIN messages m ON m.blob_id = b.id"
			   " WHERE b.fts != 1 AND (b.fts = 0 OR ?2)"
			   " AND m.mailbox_id = ?1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, !ascii);
	return store_fts_collect(s, st, uids_r, count_r);
}

int
store_fts_candidates(struct store *s, int64_t mailbox_id, const char *needle,
		     bool with_header, uint32_t **uids_r, size_t *count_r)
{
	bool started;
	char *q;
	int ret;

	*uids_r = NULL;
	*count_r = 0;
	if (store_fts_chars(needle) < STORE_FTS_NEEDLE_MIN_CHARS)
		return 0;
	q = store_fts_query(needle, with_header);
	ret = store_read_begin(s, &started);
	if (ret == STORE_OK)
		ret = store_fts_matches(s, mailbox_id, q, uids_r, count_r);
	if (ret == STORE_OK)
		ret = store_fts_pending(s, mailbox_id, store_fts_ascii(needle),
					uids_r, count_r);
	store_read_end(s, started);
	free(q);
	if (ret != STORE_OK) {
		xfree(uids_r);
		*count_r = 0;
		return ret;
	}
	store_fts_uniq(*uids_r, count_r);
	return 1;
}
