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
   the caller scans. An ASCII needle of 5 to 48 characters is asked as
   its covering trigrams and tern_cover (below), the same rows as the
   phrase for a third of the work. The tables are in index.db, a
   database file of their own (store_fts_db.c says why and how the two
   files stay consistent). A new blob is noted inside the transaction
   that stores it (store_fts_add, once per blob, when its structure is
   parsed) and indexed after the COMMIT: by the index thread for the
   commit thread's batches (store_fts_hints, store_index.c), by the
   store itself otherwise (store_fts_index_held); the rows first, then
   the states below (store_fts_write_all). Rows of a collected blob are
   removed later (fts_gone, store_fts_gc). A blob not indexed (yet) has
   blobs.fts = 0 and is always a candidate; the index thread's pass at
   its start indexes those left over (store_fts_index_pending).

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
   above, for TEXT always candidates and never sure.

   A second FTS5 table, blob_hfts (schema step 11), serves the header
   keys SUBJECT, FROM, TO, CC and BCC: one column per field holding
   exactly what their exact check compares (mime_search_field: the
   first such field, unfolded, encoded-words decoded; the address
   fields as ENVELOPE parses them, schema step 13), so a needle with
   white space is answered too ("no such subject" in a Subject folded
   between the words). blobs.hfts says the same as blobs.fts, for those
   columns. 4 (too long to index; blobs.fts too) and 0 (not indexed
   yet) are always candidates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	uint8_t *p, *end;

	if (b->data == NULL)
		return false;
	p = b->data;
	end = b->data + b->len;
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

	st = store_fts_stmt(s, "INSERT OR REPLACE INTO blob_fts(rowid, hdr,"
			       " body) VALUES (?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
	sqlite3_bind_text(st, 2, buf_cstr(hdr), (int)hdr->len, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, buf_cstr(body), (int)body->len,
			  SQLITE_STATIC);
	return store_stmt_exec(s, st);
}

static int
store_fts_insert_fields(struct store *s, int64_t blob_id,
			const struct buf *fld)
{
	sqlite3_stmt *st;
	int i;

	st = store_fts_stmt(s, "INSERT OR REPLACE INTO blob_hfts(rowid,"
			       " f_subject, f_from, f_to, f_cc, f_bcc)"
			       " VALUES (?, ?, ?, ?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
	for (i = 0; i < STORE_HFTS_FIELDS; i++)
		sqlite3_bind_text(st, i + 2, buf_cstr(&fld[i]),
				  (int)fld[i].len, SQLITE_STATIC);
	return store_stmt_exec(s, st);
}

static void
store_fts_pending_free(struct store_fts_pending *p)
{
	buf_free(&p->hdr);
	buf_free(&p->body);
	for (int i = 0; i < STORE_HFTS_FIELDS; i++)
		buf_free(&p->fld[i]);
}

void
store_fts_discard(struct store *s, size_t mark)
{
	while (s->fts_count > mark)
		store_fts_pending_free(&s->fts_pending[--s->fts_count]);
	if (s->fts_count == 0) {
		free(s->fts_pending);
		s->fts_pending = NULL;
		s->fts_cap = 0;
	}
}

void
store_fts_defer(struct store *s)
{
	s->fts_deferred = true;
}

/* The blob's states now, read in tern.db outside any transaction there:
   *alive_r when it still exists with p's hash. */
static int
store_fts_blob_state(struct store *s, const struct store_fts_pending *p,
		     int *fts_r, int *hfts_r, bool *alive_r)
{
	sqlite3_stmt *st;
	int rc;

	*alive_r = false;
	st = store_stmt(s, "SELECT fts, hfts FROM blobs WHERE id = ?"
			   " AND hash = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, p->blob_id);
	sqlite3_bind_text(st, 2, p->hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*alive_r = true;
		*fts_r = sqlite3_column_int(st, 0);
		*hfts_r = sqlite3_column_int(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK
						     : store_sql_err(s, rc);
}

/* Phase 1: the rows of p[0..n) into index.db, one transaction committed
   with an fsync (synchronous=FULL there). Each blob's states are read
   in tern.db once this transaction holds index.db's write lock, so a
   column is written only for the blob that is there now with this
   hash and not indexed yet: rows from text read before the blob was
   collected and its id reused never replace the new blob's. Sets
   p->put_text and p->put_fields to what was written. */
static int
store_fts_write_rows(struct store *s, struct store_fts_pending *p, size_t n)
{
	int ret, fts = 0, hfts = 0;
	bool alive;

	ret = store_fts_db(s);
	if (ret == STORE_OK)
		ret = store_fts_exec(s, "BEGIN IMMEDIATE");
	for (size_t i = 0; i < n && ret == STORE_OK; i++) {
		p[i].put_text = p[i].put_fields = false;
		ret = store_fts_blob_state(s, &p[i], &fts, &hfts, &alive);
		if (ret != STORE_OK || !alive)
			continue;
		p[i].put_text = p[i].text && fts == STORE_FTS_NONE;
		p[i].put_fields = p[i].fields && hfts == STORE_FTS_NONE;
		if (p[i].put_text)
			ret = store_fts_insert_row(s, p[i].blob_id, &p[i].hdr,
						   &p[i].body);
		if (ret == STORE_OK && p[i].put_fields)
			ret = store_fts_insert_fields(s, p[i].blob_id,
						      p[i].fld);
	}
	if (ret == STORE_OK)
		ret = store_fts_exec(s, "COMMIT");
	if (ret != STORE_OK && s->fts_db != NULL &&
	    !sqlite3_get_autocommit(s->fts_db))
		(void)store_fts_exec(s, "ROLLBACK");
	return ret;
}

/* Set the blob's state column (blobs.hfts or blobs.fts) when it is
   still unindexed there and still the same blob (its id may have been
   collected and reused since): *claimed_r then. */
static int
store_fts_claim(struct store *s, const struct store_fts_pending *p, bool hfts,
		int state, bool *claimed_r)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, hfts ? "UPDATE blobs SET hfts = ? WHERE id = ?"
				  " AND hfts = 0 AND hash = ?"
				: "UPDATE blobs SET fts = ? WHERE id = ?"
				  " AND fts = 0 AND hash = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, p->blob_id);
	sqlite3_bind_text(st, 3, p->hash, -1, SQLITE_STATIC);
	ret = store_stmt_exec(s, st);
	*claimed_r = ret == STORE_OK && sqlite3_changes(s->db) > 0;
	return ret;
}

/* Phase 2: the states of p[0..n) in tern.db, for what phase 1 wrote (or
   a text too long to index: STORE_FTS_SKIPPED, no row), one transaction
   without an fsync (the next durable COMMIT of the process carries it;
   lost, the blob is indexed again). *orphans_r: some rows were written
   whose claim failed (the blob went, or another thread indexed it). */
static int
store_fts_claim_all(struct store *s, const struct store_fts_pending *p,
		    size_t n, bool *orphans_r)
{
	bool claimed;
	int ret;

	*orphans_r = false;
	ret = store_exec_cached(s, "PRAGMA synchronous=NORMAL");
	if (ret == STORE_OK)
		ret = store_exec(s, "BEGIN IMMEDIATE");
	for (size_t i = 0; i < n && ret == STORE_OK; i++) {
		if (p[i].put_text || p[i].state == STORE_FTS_SKIPPED) {
			ret = store_fts_claim(s, &p[i], false, p[i].state,
					      &claimed);
			*orphans_r = *orphans_r || (p[i].put_text && !claimed);
		}
		if (ret == STORE_OK &&
		    (p[i].put_fields || p[i].hstate == STORE_FTS_SKIPPED)) {
			ret = store_fts_claim(s, &p[i], true, p[i].hstate,
					      &claimed);
			*orphans_r = *orphans_r ||
				     (p[i].put_fields && !claimed);
		}
	}
	if (ret == STORE_OK)
		ret = store_exec(s, "COMMIT");
	if (ret != STORE_OK && !sqlite3_get_autocommit(s->db))
		(void)store_exec(s, "ROLLBACK");
	(void)store_exec_cached(s, "PRAGMA synchronous=FULL");
	return ret;
}

/* Run st (one id parameter) for each of ids[0..n). */
static int
store_fts_each_id(struct store *s, sqlite3_stmt *st, const int64_t *ids,
		  size_t n)
{
	int ret = st != NULL ? STORE_OK : STORE_ERR;

	for (size_t i = 0; i < n && ret == STORE_OK; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		ret = store_stmt_exec(s, st);
	}
	return ret;
}

/* Into gone[0..*count_r) the ids of ids[0..n) that no blob has now
   (read in tern.db). */
static int
store_fts_ids_gone(struct store *s, const int64_t *ids, size_t n,
		   int64_t *gone, size_t *count_r)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT 1 FROM blobs WHERE id = ?");
	int rc;

	*count_r = 0;
	if (st == NULL)
		return STORE_ERR;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			gone[(*count_r)++] = ids[i];
		else if (rc != SQLITE_ROW)
			return store_sql_err(s, rc);
	}
	return STORE_OK;
}

/* The rows of ids[0..n) out of index.db, for each id no blob has now
   (read once the write lock of index.db is held: a blob that takes the
   id later is indexed after this). */
static int
store_fts_remove_gone(struct store *s, const int64_t *ids, size_t n)
{
	int64_t *gone = xreallocarray(NULL, n + 1, sizeof(*gone));
	size_t ng = 0;
	int ret;

	ret = store_fts_db(s);
	if (ret == STORE_OK)
		ret = store_fts_exec(s, "BEGIN IMMEDIATE");
	if (ret == STORE_OK)
		ret = store_fts_ids_gone(s, ids, n, gone, &ng);
	if (ret == STORE_OK)
		ret = store_fts_each_id(s, store_fts_stmt(s, "DELETE FROM"
					" blob_fts WHERE rowid = ?"), gone, ng);
	if (ret == STORE_OK)
		ret = store_fts_each_id(s, store_fts_stmt(s, "DELETE FROM"
					" blob_hfts WHERE rowid = ?"), gone, ng);
	if (ret == STORE_OK)
		ret = store_fts_exec(s, "COMMIT");
	if (ret != STORE_OK && s->fts_db != NULL &&
	    !sqlite3_get_autocommit(s->fts_db))
		(void)store_fts_exec(s, "ROLLBACK");
	free(gone);
	return ret;
}

/* Both phases for p[0..n), then the rows whose claim failed out again
   when their blob is gone. */
static int
store_fts_write_all(struct store *s, struct store_fts_pending *p, size_t n)
{
	int64_t *written;
	size_t nw = 0;
	bool orphans;
	int ret;

	if (n == 0)
		return STORE_OK;
	ret = store_fts_write_rows(s, p, n);
	if (ret == STORE_OK)
		ret = store_fts_claim_all(s, p, n, &orphans);
	if (ret != STORE_OK || !orphans)
		return ret;
	written = xreallocarray(NULL, n, sizeof(*written));
	for (size_t i = 0; i < n; i++) {
		if (p[i].put_text || p[i].put_fields)
			written[nw++] = p[i].blob_id;
	}
	ret = store_fts_remove_gone(s, written, nw);
	free(written);
	return ret;
}

int
store_fts_gc(struct store *s, size_t max, size_t *done_r)
{
	sqlite3_stmt *st;
	int64_t *ids;
	size_t n = 0;
	int ret, rc;

	*done_r = 0;
	ids = xreallocarray(NULL, max + 1, sizeof(*ids));
	st = store_stmt(s, "SELECT id FROM fts_gone ORDER BY id LIMIT ?");
	if (st == NULL) {
		free(ids);
		return STORE_ERR;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK
						    : store_sql_err(s, rc);
	if (ret == STORE_OK && n > 0)
		ret = store_fts_remove_gone(s, ids, n);
	/* only once their rows are out (a crash before: done again) */
	if (ret == STORE_OK && n > 0) {
		ret = store_exec(s, "BEGIN IMMEDIATE");
		if (ret == STORE_OK)
			ret = store_fts_each_id(s, store_stmt(s, "DELETE FROM"
						" fts_gone WHERE id = ?"),
						ids, n);
		if (ret == STORE_OK)
			ret = store_exec(s, "COMMIT");
		if (ret != STORE_OK && !sqlite3_get_autocommit(s->db))
			(void)store_exec(s, "ROLLBACK");
	}
	free(ids);
	if (ret == STORE_OK)
		*done_r = n;
	return ret;
}

/* Drop the first n held entries, keeping the rest in order. */
static void
store_fts_drop_front(struct store *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_fts_pending_free(&s->fts_pending[i]);
	memmove(s->fts_pending, s->fts_pending + n,
		(s->fts_count - n) * sizeof(*s->fts_pending));
	s->fts_count -= n;
	s->fts_batch_mark = s->fts_batch_mark > n ? s->fts_batch_mark - n : 0;
	if (s->fts_count == 0)
		store_fts_discard(s, 0);
}

static void store_fts_read(struct store *s, const struct store_fts_hint *hints,
			   size_t n, struct store_fts_pending *out,
			   size_t *count_r);

int
store_fts_flush_deferred(struct store *s, size_t max_rows)
{
	size_t n = s->fts_count < max_rows ? s->fts_count : max_rows, k;
	struct store_fts_pending *p = s->fts_pending;
	int ret;

	if (n == 0 || s->batch || s->tx_depth > 0)
		return STORE_OK;
	/* the store's own notes (store_fts_add) are read first */
	for (size_t i = 0; i < n; i++) {
		struct store_fts_hint h = { .blob_id = p[i].blob_id };

		if (p[i].read)
			continue;
		memcpy(h.hash, p[i].hash, sizeof(h.hash));
		store_fts_read(s, &h, 1, &p[i], &k);
		if (k == 0) /* gone: nothing to write */
			memset(&p[i], 0, sizeof(p[i]));
	}
	ret = store_fts_write_all(s, p, n);
	store_fts_drop_front(s, n);
	return ret;
}

/* The header fields of blob_hfts, in column order. */
static const char *const store_fts_field_names[STORE_HFTS_FIELDS] = {
	"Subject", "From", "To", "Cc", "Bcc",
};

/* The blobs.hfts state of the decoded fields; turns NULs into
   spaces (store_fts_state). */
static int
store_fts_fields_state(struct buf *fld)
{
	bool nul = false, folds = false;
	int i;

	for (i = 0; i < STORE_HFTS_FIELDS; i++) {
		nul = store_fts_unnul(&fld[i]) || nul;
		if (!store_fts_utf8(fld[i].data, fld[i].len))
			return STORE_FTS_RAW;
		folds = folds || store_fts_ascii_folds(fld[i].data, fld[i].len);
	}
	return nul || folds ? STORE_FTS_INEXACT : STORE_FTS_EXACT;
}

/* Fill p->fld with the fields as SEARCH compares them
   (mime_search_field), and p->hstate. */
static void
store_fts_fields(const uint8_t *msg, size_t len, struct store_fts_pending *p)
{
	size_t total = 0, hlen = mime_search_header_len(msg, len);
	int i;

	for (i = 0; i < STORE_HFTS_FIELDS; i++) {
		buf_init(&p->fld[i], MIME_SEARCH_FIELD_MAX_BYTES);
		(void)mime_search_field(msg, hlen, store_fts_field_names[i],
					&p->fld[i]);
		total += p->fld[i].len;
	}
	if (total > STORE_FTS_INDEX_MAX_BYTES) {
		for (i = 0; i < STORE_HFTS_FIELDS; i++)
			buf_free(&p->fld[i]);
		p->hstate = STORE_FTS_SKIPPED; /* claimed without a row */
		return;
	}
	p->fields = true;
	p->hstate = store_fts_fields_state(p->fld);
}

/* The rows of one blob into *p: its text, its fields and their states
   (STORE_FTS_SKIPPED for what is too long to index). */
static void
store_fts_prepare(int64_t blob_id, const char *hash, const uint8_t *msg,
		  size_t len, struct store_fts_pending *p)
{
	memset(p, 0, sizeof(*p));
	p->blob_id = blob_id;
	p->read = true;
	snprintf(p->hash, sizeof(p->hash), "%s", hash);
	buf_init(&p->hdr, STORE_FTS_TEXT_MAX_BYTES);
	buf_init(&p->body, STORE_FTS_TEXT_MAX_BYTES);
	(void)mime_extract_headers(msg, len, &p->hdr);
	(void)mime_extract_text(msg, len, &p->body);
	if (p->hdr.len + p->body.len > STORE_FTS_INDEX_MAX_BYTES) {
		buf_free(&p->hdr);
		buf_free(&p->body);
		p->state = STORE_FTS_SKIPPED;
	} else {
		p->text = true;
		p->state = store_fts_state(&p->hdr, &p->body);
	}
	store_fts_fields(msg, len, p);
}

/* Hold e (taken) after the others. */
static void
store_fts_hold(struct store *s, const struct store_fts_pending *e)
{
	s->fts_pending = store_grow(s->fts_pending, &s->fts_cap, s->fts_count,
				    sizeof(*s->fts_pending));
	s->fts_pending[s->fts_count++] = *e;
}

void
store_fts_add(struct store *s, int64_t blob_id, const char *hash)
{
	struct store_fts_pending p;

	memset(&p, 0, sizeof(p));
	p.blob_id = blob_id;
	snprintf(p.hash, sizeof(p.hash), "%s", hash);
	store_fts_hold(s, &p);
}

void
store_fts_hints(struct store *s)
{
	s->fts_deferred = true;
	s->fts_hints = true;
}

void
store_fts_take_hints(struct store *s, struct store_fts_hint **out, size_t *cap,
		     size_t *count_r)
{
	size_t n = *count_r;

	for (size_t i = 0; i < s->fts_count; i++) {
		*out = store_grow(*out, cap, n, sizeof(**out));
		(*out)[n].blob_id = s->fts_pending[i].blob_id;
		memcpy((*out)[n].hash, s->fts_pending[i].hash,
		       sizeof((*out)[n].hash));
		n++;
	}
	*count_r = n;
	store_fts_discard(s, 0);
}

/* The text of hints[0..n) into out[0..), *count_r entries (blobs gone
   meanwhile are skipped). */
static void
store_fts_read(struct store *s, const struct store_fts_hint *hints, size_t n,
	       struct store_fts_pending *out, size_t *count_r)
{
	static const uint8_t empty[1];
	struct store_map map;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (!store_hash_valid(hints[i].hash) ||
		    store_blob_map(s, hints[i].hash, &map) != STORE_OK)
			continue;
		store_fts_prepare(hints[i].blob_id, hints[i].hash,
				  map.data != NULL ? map.data : empty, map.len,
				  &out[k++]);
		store_blob_unmap(&map);
	}
	*count_r = k;
}

int
store_fts_read_hints(struct store *s, const struct store_fts_hint *hints,
		     size_t n)
{
	struct store_fts_pending *p;
	size_t k;

	if (s->fts_count > 0 || s->batch || s->tx_depth > 0)
		return store_fail(s, STORE_INVALID, "index: rows held");
	p = xreallocarray(NULL, n + 1, sizeof(*p));
	store_fts_read(s, hints, n, p, &k);
	for (size_t i = 0; i < k; i++)
		store_fts_hold(s, &p[i]);
	free(p);
	return STORE_OK;
}

int
store_fts_index_hints(struct store *s, const struct store_fts_hint *hints,
		      size_t n)
{
	struct store_fts_pending *p;
	size_t k;
	int ret;

	if (n == 0)
		return STORE_OK;
	p = xreallocarray(NULL, n, sizeof(*p));
	store_fts_read(s, hints, n, p, &k);
	ret = store_fts_write_all(s, p, k);
	for (size_t i = 0; i < k; i++)
		store_fts_pending_free(&p[i]);
	free(p);
	return ret;
}

void
store_fts_index_held(struct store *s)
{
	struct store_fts_hint *hints = NULL;
	size_t cap = 0, n = 0;

	store_fts_take_hints(s, &hints, &cap, &n);
	/* best effort: a blob left out stays at 0, read by SEARCH, and is
	   indexed by the next store_fts_index_pending */
	(void)store_fts_index_hints(s, hints, n);
	free(hints);
}

int
store_fts_index_pending(struct store *s, int64_t *after, size_t max,
			size_t *count_r)
{
	struct store_fts_hint *hints;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc, ret;

	*count_r = 0;
	hints = xreallocarray(NULL, max + 1, sizeof(*hints));
	/* "fts != 1 OR hfts != 1" lets SQLite use the partial index */
	st = store_stmt(s, "SELECT id, hash FROM blobs"
			   " WHERE (fts != 1 OR hfts != 1)"
			   " AND (fts = 0 OR hfts = 0) AND has_meta = 1"
			   " AND id > ? ORDER BY id LIMIT ?");
	if (st == NULL) {
		free(hints);
		return STORE_ERR;
	}
	sqlite3_bind_int64(st, 1, *after);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max) {
		const unsigned char *h = sqlite3_column_text(st, 1);

		hints[n].blob_id = sqlite3_column_int64(st, 0);
		snprintf(hints[n].hash, sizeof(hints[n].hash), "%s",
			 h != NULL ? (const char *)h : "");
		n++;
	}
	sqlite3_reset(st);
	ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK
						    : store_sql_err(s, rc);
	if (ret == STORE_OK && n > 0) {
		*after = hints[n - 1].blob_id;
		ret = store_fts_index_hints(s, hints, n);
	}
	free(hints);
	if (ret == STORE_OK)
		*count_r = n;
	return ret;
}

/* needle[0..len) as an FTS5 phrase ("" doubles a quote inside it). */
static void
store_fts_phrase(struct buf *q, const char *needle, size_t len)
{
	(void)buf_append_byte(q, '"');
	for (size_t i = 0; i < len; i++) {
		if (needle[i] == '"')
			(void)buf_append_byte(q, '"');
		(void)buf_append_byte(q, (uint8_t)needle[i]);
	}
	(void)buf_append_byte(q, '"');
}

/* FTS5 query: column filter (NULL: every column) and the needle as one
   phrase; with words, every piece of the needle between white space
   that the index can answer (STORE_FTS_NEEDLE_MIN_CHARS) as a phrase
   of its own, all required. NULL when no piece is long enough. */
static char *
store_fts_query(const char *needle, const char *columns, bool words)
{
	struct buf q;
	size_t n, pieces = 0;
	char *piece;

	buf_init(&q, strlen(needle) * 2 + 32);
	if (columns != NULL) {
		(void)buf_append_str(&q, columns);
		(void)buf_append_str(&q, words ? " : (" : " : ");
	}
	if (!words) {
		store_fts_phrase(&q, needle, strlen(needle));
		return buf_steal(&q, NULL);
	}
	for (const char *p = needle; *p != '\0'; p += n) {
		p += strspn(p, STORE_FTS_SPACE);
		n = strcspn(p, STORE_FTS_SPACE);
		if (n == 0)
			continue;
		piece = xstrndup(p, n);
		if (store_fts_chars(piece) >= STORE_FTS_NEEDLE_MIN_CHARS) {
			(void)buf_append_byte(&q, ' ');
			store_fts_phrase(&q, p, n);
			pieces++;
		}
		free(piece);
	}
	(void)buf_append_byte(&q, ')');
	if (pieces == 0) {
		buf_free(&q);
		return NULL;
	}
	return buf_steal(&q, NULL);
}

/* Covering trigrams of a needle of len characters: one at every third
   character and one ending at the last. */
static int
store_fts_cover_count(int len)
{
	return (len + 2) / 3;
}

static int
store_fts_cover_at(int len, int n, int i)
{
	return i < n - 1 ? 3 * i : len - 3;
}

/* FTS5 query for an ASCII needle (a character per byte): its covering
   trigrams, all required (tern_cover then checks their offsets). NULL
   when the needle is not ASCII, too short to save a doclist or has too
   many of them: ask the phrase. */
static char *
store_fts_cover_query(const char *needle, const char *columns)
{
	size_t len = strlen(needle);
	struct buf q;
	int n;

	if (!store_fts_ascii(needle) || len < STORE_FTS_COVER_MIN_CHARS ||
	    len > 3 * STORE_FTS_COVER_MAX)
		return NULL;
	n = store_fts_cover_count((int)len);
	if (n > STORE_FTS_COVER_MAX)
		return NULL;
	buf_init(&q, len * 4 + 32);
	if (columns != NULL) {
		(void)buf_append_str(&q, columns);
		(void)buf_append_str(&q, " : ");
	}
	(void)buf_append_byte(&q, '(');
	for (int i = 0; i < n; i++) {
		if (i > 0)
			(void)buf_append_str(&q, " AND ");
		store_fts_phrase(&q, needle + store_fts_cover_at((int)len, n, i),
				 3);
	}
	(void)buf_append_byte(&q, ')');
	return buf_steal(&q, NULL);
}

/* tern_cover(table, col, len): does the row hold the needle of len
   characters whose covering trigrams are the query's phrases, in
   order: each at its offset (store_fts_cover_at) from the first, in one
   column (col, or any when col < 0)? The trigram tokenizer emits one
   token per character, the three characters from there, so those
   trigrams at those offsets fix every character of the needle: exactly
   the rows of the phrase of all len - 2 trigrams, from a third of the
   doclists (a phrase query costs about the same per trigram). */
static void
store_fts_cover_fn(const Fts5ExtensionApi *api, Fts5Context *fts,
		   sqlite3_context *ctx, int nval, sqlite3_value **val)
{
	Fts5PhraseIter it[STORE_FTS_COVER_MAX];
	int col[STORE_FTS_COVER_MAX], off[STORE_FTS_COVER_MAX];
	int n = api->xPhraseCount(fts), want, len, at, i;

	want = nval == 2 ? sqlite3_value_int(val[0]) : 0;
	len = nval == 2 ? sqlite3_value_int(val[1]) : 0;
	if (n < 1 || n > STORE_FTS_COVER_MAX ||
	    store_fts_cover_count(len) != n) {
		sqlite3_result_error(ctx, "tern_cover: bad arguments", -1);
		return;
	}
	for (i = 0; i < n; i++) {
		if (api->xPhraseFirst(fts, i, &it[i], &col[i], &off[i]) !=
		    SQLITE_OK) {
			sqlite3_result_error_nomem(ctx);
			return;
		}
	}
	/* each phrase's instances come in (column, offset) order */
	for (; col[0] >= 0; api->xPhraseNext(fts, &it[0], &col[0], &off[0])) {
		if (want >= 0 && col[0] != want)
			continue;
		for (i = 1; i < n; i++) {
			at = off[0] + store_fts_cover_at(len, n, i);
			while (col[i] >= 0 && (col[i] < col[0] ||
					       (col[i] == col[0] && off[i] < at)))
				api->xPhraseNext(fts, &it[i], &col[i], &off[i]);
			if (col[i] != col[0] || off[i] != at)
				break;
		}
		if (i == n) {
			sqlite3_result_int(ctx, 1);
			return;
		}
	}
	sqlite3_result_int(ctx, 0);
}

int
store_fts_register(sqlite3 *db)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	(void)sqlite3_step(st);
	rc = sqlite3_finalize(st);
	if (rc == SQLITE_OK && api == NULL)
		rc = SQLITE_ERROR;
	if (rc == SQLITE_OK)
		rc = api->xCreateFunction(api, "tern_cover", NULL,
					  store_fts_cover_fn, NULL);
	return rc;
}

/* An index query: the MATCH text and, when cover_len > 0, the
   arguments of tern_cover. */
struct store_fts_query {
	char *match;
	int cover_col, cover_len;
};

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

/* Sort (unless sorted already: the usual case, as UIDs and blob ids
   both grow with delivery) and drop duplicates (a UID can come from
   both queries). */
static void
store_fts_uniq(uint32_t *uids, size_t *count)
{
	size_t i, o = 0;

	if (*count == 0)
		return;
	for (i = 1; i < *count && uids[i - 1] <= uids[i]; i++)
		;
	if (i < *count)
		qsort(uids, *count, sizeof(*uids), store_fts_u32_cmp);
	for (i = 0; i < *count; i++) {
		if (o == 0 || uids[o - 1] != uids[i])
			uids[o++] = uids[i];
	}
	*count = o;
}

/* A growing array of blob ids (FTS rowids, ascending). */
struct store_fts_ids {
	int64_t *ids;
	size_t count, cap;
};

static void
store_fts_push_id(struct store_fts_ids *u, int64_t id)
{
	if (u->count == u->cap) {
		u->cap = u->cap < 128 ? 256 : u->cap * 2;
		u->ids = xreallocarray(u->ids, u->cap, sizeof(*u->ids));
	}
	u->ids[u->count++] = id;
}

/* The blob ids the index matches, over every mailbox (rowid order), from
   index.db (its own snapshot, taken now: after the states were read). */
static int
store_fts_rowids(struct store *s, bool fields, const struct store_fts_query *q,
		 struct store_fts_ids *ids)
{
	sqlite3_stmt *st;
	int rc;

	if (q->cover_len > 0)
		st = store_fts_stmt(s, fields ? "SELECT rowid FROM blob_hfts"
					    " WHERE blob_hfts MATCH ?1 AND"
					    " tern_cover(blob_hfts, ?2, ?3)"
					  : "SELECT rowid FROM blob_fts"
					    " WHERE blob_fts MATCH ?1 AND"
					    " tern_cover(blob_fts, ?2, ?3)");
	else
		st = store_fts_stmt(s, fields ? "SELECT rowid FROM blob_hfts"
					    " WHERE blob_hfts MATCH ?"
					  : "SELECT rowid FROM blob_fts"
					    " WHERE blob_fts MATCH ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, q->match, -1, SQLITE_STATIC);
	if (q->cover_len > 0) {
		sqlite3_bind_int(st, 2, q->cover_col);
		sqlite3_bind_int(st, 3, q->cover_len);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_fts_push_id(ids, sqlite3_column_int64(st, 0));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? STORE_OK : store_fts_sql_err(s, rc);
}

/* A mailbox's (blob id, UID) pairs in blob order, as the merge pass
   read them, and the mailbox's uidnext and highestmodseq then. They are
   still its pairs while both stay the same: every message added takes
   UIDs from uidnext, every one removed (EXPUNGE, MOVE, INBOX renamed)
   bumps the modseq, and mailbox ids are never reused (AUTOINCREMENT). */
struct store_fts_box {
	int64_t mailbox_id, uidnext, modseq;
	int64_t *blobs;
	uint32_t *uids;
	size_t count, cap;
};

void
store_fts_box_free(struct store *s)
{
	if (s->fts_box == NULL)
		return;
	free(s->fts_box->blobs);
	free(s->fts_box->uids);
	xfree(&s->fts_box);
}

/* The mailbox's uidnext and highestmodseq (0, 0 when it is gone). */
static int
store_fts_box_state(struct store *s, int64_t mailbox_id, int64_t *uidnext_r,
		    int64_t *modseq_r)
{
	sqlite3_stmt *st;
	int rc;

	*uidnext_r = *modseq_r = 0;
	st = store_stmt(s, "SELECT uidnext, highestmodseq FROM mailboxes"
			   " WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*uidnext_r = sqlite3_column_int64(st, 0);
		*modseq_r = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK
						     : store_sql_err(s, rc);
}

/* The UIDs of the mailbox's messages on blobs ids[0..): one lookup per
   blob in messages_box_blob. */
static int
store_fts_lookup(struct store *s, int64_t mailbox_id,
		 const struct store_fts_ids *ids, struct store_fts_uids *cand)
{
	sqlite3_stmt *st;
	int rc = SQLITE_DONE;

	st = store_stmt(s, "SELECT uid FROM messages"
			   " WHERE mailbox_id = ? AND blob_id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	for (size_t i = 0; i < ids->count; i++) {
		sqlite3_bind_int64(st, 2, ids->ids[i]);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			store_fts_push(cand, store_col_u32(st, 0));
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			break;
	}
	return rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
}

/* Read the mailbox's pairs in blob order (the covering index
   messages_box_blob) into s->fts_box. */
static int
store_fts_box_read(struct store *s, int64_t mailbox_id, int64_t uidnext,
		   int64_t modseq)
{
	struct store_fts_box *b;
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT blob_id, uid FROM messages"
			   " INDEXED BY messages_box_blob"
			   " WHERE mailbox_id = ? ORDER BY blob_id");
	if (st == NULL)
		return STORE_ERR;
	if (s->fts_box == NULL)
		s->fts_box = xcalloc(1, sizeof(*s->fts_box));
	b = s->fts_box;
	b->mailbox_id = 0; /* invalid until read whole */
	b->count = 0;
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (b->count == b->cap) {
			b->cap = b->cap < 128 ? 256 : b->cap * 2;
			b->blobs = xreallocarray(b->blobs, b->cap,
						 sizeof(*b->blobs));
			b->uids = xreallocarray(b->uids, b->cap,
						sizeof(*b->uids));
		}
		b->blobs[b->count] = sqlite3_column_int64(st, 0);
		b->uids[b->count++] = store_col_u32(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	b->mailbox_id = mailbox_id;
	b->uidnext = uidnext;
	b->modseq = modseq;
	return STORE_OK;
}

/* The same by one pass over the mailbox's pairs, merged with the
   ascending ids; the pairs are read again only when the mailbox changed
   since the last pass (or inside a caller's transaction, which may
   still roll back: then they are not kept either). */
static int
store_fts_merge(struct store *s, int64_t mailbox_id, int64_t uidnext,
		int64_t modseq, bool keep, const struct store_fts_ids *ids,
		struct store_fts_uids *cand)
{
	const struct store_fts_box *b = s->fts_box;
	size_t i, k = 0;
	int ret;

	if (!keep || b == NULL || b->mailbox_id != mailbox_id ||
	    b->uidnext != uidnext || b->modseq != modseq) {
		ret = store_fts_box_read(s, mailbox_id, uidnext, modseq);
		if (ret != STORE_OK)
			return ret;
		b = s->fts_box;
	}
	for (i = 0; i < b->count && k < ids->count; i++) {
		while (k < ids->count && ids->ids[k] < b->blobs[i])
			k++;
		if (k < ids->count && ids->ids[k] == b->blobs[i])
			store_fts_push(cand, b->uids[i]);
	}
	if (!keep)
		s->fts_box->mailbox_id = 0;
	return STORE_OK;
}

/* Messages of the mailbox whose blob the index matches. The index is
   asked first (its rows serve every mailbox); few matches are then
   looked up one by one, many (as a needle in every message gives) are
   found in one pass over the mailbox's pairs, which costs a twentieth
   of a lookup per message, and less when they are still in memory.
   keep: this is the read transaction of our own (store_read_begin). */
static int
store_fts_matches(struct store *s, int64_t mailbox_id, bool fields,
		  const struct store_fts_query *q, bool keep,
		  struct store_fts_uids *cand)
{
	struct store_fts_ids ids = { 0 };
	int64_t uidnext = 0, modseq = 0;
	int ret;

	ret = store_fts_rowids(s, fields, q, &ids);
	if (ret == STORE_OK && ids.count > 0)
		ret = store_fts_box_state(s, mailbox_id, &uidnext, &modseq);
	if (ret == STORE_OK && ids.count > 0) {
		/* uidnext - 1: an upper bound of the messages */
		if ((int64_t)ids.count * STORE_FTS_LOOKUP_RATIO < uidnext - 1)
			ret = store_fts_lookup(s, mailbox_id, &ids, cand);
		else
			ret = store_fts_merge(s, mailbox_id, uidnext, modseq,
					      keep, &ids, cand);
	}
	free(ids.ids);
	return ret;
}

/* Messages of the mailbox whose blob is not STORE_FTS_EXACT in the
   index (blobs.fts, or blobs.hfts for the fields; few: the partial
   index blobs_index_pending holds those blobs, and those of the other
   column). Into pending go those the index cannot rule out: not
   indexed, or (for a non-ASCII needle) indexed from text that is not
   valid UTF-8. Into inexact go all of them: their matches are not sure. */
static int
store_fts_not_exact(struct store *s, int64_t mailbox_id, bool fields,
		    bool ascii, struct store_fts_uids *pending,
		    struct store_fts_uids *inexact)
{
	sqlite3_stmt *st;
	uint32_t uid;
	int rc, fts;

	/* "fts != 1" lets SQLite use the partial index */
	st = store_stmt(s, fields ? "SELECT m.uid, b.hfts FROM blobs b"
				    " CROSS JOIN messages m"
				    " ON m.blob_id = b.id"
				    " WHERE b.hfts != 1 AND m.mailbox_id = ?1"
				  : "SELECT m.uid, b.fts FROM blobs b"
				    " CROSS JOIN messages m"
				    " ON m.blob_id = b.id"
				    " WHERE b.fts != 1 AND m.mailbox_id = ?1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uid = store_col_u32(st, 0);
		fts = sqlite3_column_int(st, 1);
		if (fts == STORE_FTS_NONE || fts == STORE_FTS_SKIPPED ||
		    (!ascii && fts == STORE_FTS_RAW))
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

/* The candidates of needle in one index: the text (blob_fts, columns
   as given, col their index for tern_cover or -1 for all) or the header
   fields (blob_hfts, one column). */
static int
store_fts_run(struct store *s, int64_t mailbox_id, const char *needle,
	      bool fields, const char *columns, int col, unsigned flags,
	      struct store_fts_result *res)
{
	struct store_fts_uids cand = { 0 }, sure = { 0 }, pending = { 0 },
			      inexact = { 0 };
	struct store_fts_query q = { .cover_col = col };
	bool started, ascii, words = (flags & STORE_FTS_WORDS) != 0;
	size_t i;
	int ret;

	memset(res, 0, sizeof(*res));
	if (store_fts_chars(needle) < STORE_FTS_NEEDLE_MIN_CHARS)
		return 0;
	ascii = store_fts_ascii(needle);
	q.match = words ? NULL : store_fts_cover_query(needle, columns);
	if (q.match != NULL)
		q.cover_len = (int)strlen(needle);
	else
		q.match = store_fts_query(needle, columns, words);
	if (q.match == NULL)
		return 0;
	/* The states first, then the rows (index.db): a blob's state is
	   set only after its rows were committed (store_fts_write_all), so
	   the rows read later are there for every state read here. */
	ret = store_read_begin(s, &started);
	if (ret == STORE_OK)
		ret = store_fts_not_exact(s, mailbox_id, fields, ascii,
					  &pending, &inexact);
	if (ret == STORE_OK && !fields && (flags & STORE_FTS_HEADER) &&
	    (flags & STORE_FTS_PARTS))
		ret = store_fts_old_headers(s, mailbox_id, &pending, &inexact);
	if (ret == STORE_OK)
		ret = store_fts_matches(s, mailbox_id, fields, &q, started,
					&cand);
	store_read_end(s, started);
	free(q.match);
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

int
store_fts_candidates(struct store *s, int64_t mailbox_id, const char *needle,
		     unsigned flags, struct store_fts_result *res)
{
	const char *cols = "body";
	int col = 1;

	/* hdr and body are every column: without a filter FTS5 skips the
	   column checks (a fifth of a phrase query over 100,000 rows) */
	if (flags & STORE_FTS_HEADER) {
		cols = NULL;
		col = -1;
	}
	if (flags & STORE_FTS_WORDS) {
		cols = "hdr";
		col = 0;
		flags &= ~(unsigned)STORE_FTS_SURE;
	}
	return store_fts_run(s, mailbox_id, needle, false, cols, col, flags,
			     res);
}

int
store_fts_field_candidates(struct store *s, int64_t mailbox_id,
			   const char *field, const char *needle,
			   unsigned flags, struct store_fts_result *res)
{
	static const char *const cols[STORE_HFTS_FIELDS] = {
		"f_subject", "f_from", "f_to", "f_cc", "f_bcc",
	};

	memset(res, 0, sizeof(*res));
	for (int i = 0; i < STORE_HFTS_FIELDS; i++) {
		if (strcasecmp(field, store_fts_field_names[i]) == 0)
			return store_fts_run(s, mailbox_id, needle, true,
					     cols[i], i, flags & STORE_FTS_SURE,
					     res);
	}
	return 0;
}

void
store_fts_result_free(struct store_fts_result *res)
{
	xfree(&res->uids);
	xfree(&res->sure);
	res->count = res->nsure = 0;
}
