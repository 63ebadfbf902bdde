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
   parsed) and removed by a trigger when the blob row is collected
   (store_schema.c step 3). Blobs stored before the index existed have
   blobs.fts = 0 and are always candidates. */
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

static int
store_fts_insert(struct store *s, int64_t blob_id, const struct buf *hdr,
		 const struct buf *body)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "INSERT OR REPLACE INTO blob_fts(rowid, hdr, body)"
			   " VALUES (?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
	sqlite3_bind_text(st, 2, buf_cstr(hdr), (int)hdr->len, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, buf_cstr(body), (int)body->len,
			  SQLITE_STATIC);
	ret = store_stmt_exec(s, st);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "UPDATE blobs SET fts = 1 WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, blob_id);
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
	ret = store_fts_insert(s, blob_id, &hdr, &body);
	buf_free(&hdr);
	buf_free(&body);
	return ret;
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
	size_t cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*count_r == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			*uids_r = xreallocarray(*uids_r, cap, sizeof(**uids_r));
		}
		(*uids_r)[(*count_r)++] = store_col_u32(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sql_err(s, rc);
}

int
store_fts_candidates(struct store *s, int64_t mailbox_id, const char *needle,
		     bool with_header, uint32_t **uids_r, size_t *count_r)
{
	sqlite3_stmt *st;
	char *q;
	int ret;

	*uids_r = NULL;
	*count_r = 0;
	if (store_fts_chars(needle) < STORE_FTS_NEEDLE_MIN_CHARS)
		return 0;
	st = store_stmt(s, "SELECT m.uid FROM messages m"
			   " JOIN blobs b ON b.id = m.blob_id"
			   " WHERE m.mailbox_id = ?1 AND (b.fts = 0 OR"
			   " m.blob_id IN (SELECT rowid FROM blob_fts"
			   " WHERE blob_fts MATCH ?2)) ORDER BY m.uid");
	if (st == NULL)
		return STORE_ERR;
	q = store_fts_query(needle, with_header);
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_text(st, 2, q, -1, SQLITE_STATIC);
	ret = store_fts_collect(s, st, uids_r, count_r);
	sqlite3_clear_bindings(st);
	free(q);
	if (ret != STORE_OK) {
		xfree(uids_r);
		*count_r = 0;
		return ret;
	}
	return 1;
}
