/* The Sent copy of submitted mail (issue 3): a per-domain switch (NULL
   in the row: follow the config's smtp_save_sent) and the duplicate
   check by Message-ID, so a client that APPENDs its own copy to Sent
   before or after submitting does not end up with two. The lookup goes
   through the blobs.message_id index, then the message's mailbox. */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store_int.h"

/* Message-IDs are short; a longer field is not worth matching. */
#define STORE_SENT_MSGID_MAX_BYTES 998

int
store_sent_set(struct store *s, const char *domain, int value)
{
	char *d = store_domain_normalize(domain);
	sqlite3_stmt *st;
	struct store_tx tx;
	int ret;

	if (d == NULL)
		return store_fail(s, STORE_INVALID, "bad domain name");
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK) {
		free(d);
		return ret;
	}
	st = store_stmt(s, "UPDATE domains SET save_sent = ? WHERE name = ?");
	if (st == NULL) {
		ret = STORE_ERR;
		goto out;
	}
	if (value < 0)
		sqlite3_bind_null(st, 1);
	else
		sqlite3_bind_int(st, 1, value > 0);
	sqlite3_bind_text(st, 2, d, -1, SQLITE_STATIC);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK && sqlite3_changes(s->db) == 0)
		ret = store_fail(s, STORE_NOTFOUND, "unknown domain %s", d);
out:
	if (ret == STORE_OK)
		ret = store_tx_commit(s, &tx);
	else
		store_tx_rollback(s, &tx);
	free(d);
	return ret;
}

int
store_sent_get(struct store *s, const char *domain, int *value_r)
{
	char *d = store_domain_normalize(domain);
	sqlite3_stmt *st;
	int rc;

	*value_r = -1;
	if (d == NULL)
		return 0;
	st = store_stmt(s, "SELECT save_sent FROM domains WHERE name = ?");
	if (st == NULL) {
		free(d);
		return STORE_ERR;
	}
	sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*value_r = sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	free(d);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
}

/* The Message-ID field of a blob (as mime_info_parse stores it), or NULL. */
static char *
store_sent_message_id(struct store *s, const char *blob)
{
	struct store_map map;
	struct buf b;
	char *id = NULL;

	if (store_blob_map(s, blob, &map) != STORE_OK)
		return NULL;
	buf_init(&b, STORE_SENT_MSGID_MAX_BYTES);
	if (mime_header_get(map.data, map.len, "Message-ID", &b) == 1 &&
	    b.len > 0)
		id = xstrdup(buf_cstr(&b));
	buf_free(&b);
	store_blob_unmap(&map);
	return id;
}

int
store_sent_find(struct store *s, int64_t mailbox_id, const char *blob,
		int64_t since, uint32_t *uid_r)
{
	char *msgid = store_sent_message_id(s, blob);
	sqlite3_stmt *st;
	int rc;

	if (msgid == NULL)
		return 0;
	st = store_stmt(s, "SELECT m.uid FROM blobs b"
			   " JOIN messages m ON m.blob_id = b.id"
			   " WHERE b.message_id = ? AND m.mailbox_id = ?"
			   " AND m.savedate >= ? ORDER BY m.uid DESC LIMIT 1");
	if (st == NULL) {
		free(msgid);
		return STORE_ERR;
	}
	sqlite3_bind_text(st, 1, msgid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, mailbox_id);
	sqlite3_bind_int64(st, 3, since);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*uid_r = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	free(msgid);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
}
