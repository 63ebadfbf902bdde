/* The SQLite schema of the store, as an ordered list of migrations.
   PRAGMA user_version holds the number of steps applied; store_open()
   applies the missing ones, each in its own transaction, so a database
   is always at a known version. Append new steps; never edit old ones.

   Default plans (step 1): sizes are binary (1 GB = 2^30 bytes);
   send_per_hour counts recipients per sliding hour; every plan allows
   50 MB messages (52428800 bytes, above the usual 25-35 MB limits of big
   providers so forwarded attachments pass) and 100 recipients per
   message (RFC 5321 4.5.3.1.8: the minimum a server must accept). */
#include <stdio.h>

#include "store/store_int.h"

static const char *const store_migrations[] = {
	/* 1: initial schema */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE plans(name TEXT PRIMARY KEY,"
	" quota_bytes INTEGER NOT NULL, quota_messages INTEGER NOT NULL,"
	" send_per_hour INTEGER NOT NULL, max_message_bytes INTEGER NOT NULL,"
	" max_recipients INTEGER NOT NULL);"
	"CREATE TABLE domains(id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE accounts(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" address TEXT NOT NULL UNIQUE,"
	" domain_id INTEGER NOT NULL REFERENCES domains(id),"
	" plan TEXT NOT NULL REFERENCES plans(name) ON UPDATE CASCADE,"
	" password_hash TEXT, scram TEXT, created INTEGER NOT NULL,"
	" used_bytes INTEGER NOT NULL DEFAULT 0,"
	" used_messages INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX accounts_domain ON accounts(domain_id);"
	"CREATE TABLE aliases(id INTEGER PRIMARY KEY,"
	" address TEXT NOT NULL, target TEXT NOT NULL,"
	" domain_id INTEGER NOT NULL REFERENCES domains(id),"
	" UNIQUE(address, target));"
	"CREATE INDEX aliases_target ON aliases(target);"
	"CREATE INDEX aliases_domain ON aliases(domain_id);"
	"CREATE TABLE mailboxes(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" account_id INTEGER NOT NULL REFERENCES accounts(id),"
	" name TEXT NOT NULL, special_use TEXT,"
	" uidvalidity INTEGER NOT NULL, uidnext INTEGER NOT NULL,"
	" highestmodseq INTEGER NOT NULL, UNIQUE(account_id, name));"
	"CREATE TABLE subscriptions(account_id INTEGER NOT NULL"
	" REFERENCES accounts(id) ON DELETE CASCADE, name TEXT NOT NULL,"
	" PRIMARY KEY(account_id, name)) WITHOUT ROWID;"
	"CREATE TABLE blobs(id INTEGER PRIMARY KEY,"
	" hash TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
	" refcount INTEGER NOT NULL, has_meta INTEGER NOT NULL DEFAULT 0,"
	" envelope TEXT, bodystructure TEXT, body TEXT, message_id TEXT,"
	" subject TEXT, from_addr TEXT, date INTEGER, header_len INTEGER,"
	" lines INTEGER);"
	"CREATE INDEX blobs_unreferenced ON blobs(refcount)"
	" WHERE refcount <= 0;"
	"CREATE TABLE messages(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
	" uid INTEGER NOT NULL,"
	" blob_id INTEGER NOT NULL REFERENCES blobs(id),"
	" flags INTEGER NOT NULL, keywords TEXT, modseq INTEGER NOT NULL,"
	" size INTEGER NOT NULL, internaldate INTEGER NOT NULL,"
	" savedate INTEGER NOT NULL, UNIQUE(mailbox_id, uid));"
	"CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);"
	"CREATE INDEX messages_blob ON messages(blob_id);"
	"CREATE TABLE expunged(mailbox_id INTEGER NOT NULL"
	" REFERENCES mailboxes(id) ON DELETE CASCADE,"
	" uid INTEGER NOT NULL, modseq INTEGER NOT NULL,"
	" PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);"
	"CREATE TABLE send_log(account_id INTEGER NOT NULL"
	" REFERENCES accounts(id) ON DELETE CASCADE,"
	" time INTEGER NOT NULL, count INTEGER NOT NULL);"
	"CREATE INDEX send_log_account ON send_log(account_id, time);"
	"CREATE TABLE queue(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" sender TEXT NOT NULL, envid TEXT, ret TEXT,"
	" blob_id INTEGER NOT NULL REFERENCES blobs(id),"
	" size INTEGER NOT NULL, created INTEGER NOT NULL,"
	" next_attempt INTEGER NOT NULL, attempts INTEGER NOT NULL);"
	"CREATE INDEX queue_due ON queue(next_attempt, id);"
	"CREATE INDEX queue_blob ON queue(blob_id);"
	"CREATE TABLE queue_rcpts(queue_id INTEGER NOT NULL"
	" REFERENCES queue(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
	" address TEXT NOT NULL, orcpt TEXT, notify TEXT,"
	" status INTEGER NOT NULL, last_reply TEXT,"
	" PRIMARY KEY(queue_id, idx)) WITHOUT ROWID;"
	"INSERT INTO plans VALUES"
	" ('essential', 10737418240, 0, 1000, 52428800, 100),"
	" ('standard', 26843545600, 0, 3000, 52428800, 100),"
	" ('professional', 64424509440, 0, 5000, 52428800, 100);",
	/* 2: \Recent (RFC 3501 2.3.2); messages stored before are old */
	"ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL"
	" DEFAULT 1;"
	"UPDATE mailboxes SET recent_uid = uidnext;",
	/* 3: per-domain Sent copy of submitted mail (NULL: the config's
	   smtp_save_sent) and the Message-ID index its duplicate check
	   uses */
	"ALTER TABLE domains ADD COLUMN save_sent INTEGER;"
	"CREATE INDEX blobs_message_id ON blobs(message_id)"
	" WHERE message_id IS NOT NULL;",
	/* 4: DKIM keys (RFC 6376 3.6.1 selectors; at most one active key
	   per domain, older ones kept for rotation), and the MAIL FROM
	   parameters the queue passes on (RFC 6152 BODY=, RFC 6531). */
	"CREATE TABLE dkim_keys(id INTEGER PRIMARY KEY,"
	" domain TEXT NOT NULL, selector TEXT NOT NULL,"
	" algorithm TEXT NOT NULL"
	" CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),"
	" private_key TEXT NOT NULL, created INTEGER NOT NULL,"
	" active INTEGER NOT NULL DEFAULT 0, UNIQUE(domain, selector));"
	"CREATE UNIQUE INDEX dkim_keys_active ON dkim_keys(domain)"
	" WHERE active = 1;"
	"ALTER TABLE queue ADD COLUMN body TEXT"
	" CHECK (body IN ('7BIT', '8BITMIME', 'BINARYMIME'));"
	"ALTER TABLE queue ADD COLUMN smtputf8 INTEGER NOT NULL DEFAULT 0;",
	/* 5: full-text index for SEARCH BODY/TEXT (store_fts.c); blobs
	   stored before it have fts = 0 and are always candidates, 2 marks
	   text that is not valid UTF-8 */
	"CREATE VIRTUAL TABLE blob_fts USING fts5(hdr, body,"
	" tokenize = 'trigram');"
	"ALTER TABLE blobs ADD COLUMN fts INTEGER NOT NULL DEFAULT 0;"
	"CREATE TRIGGER blobs_fts_gc AFTER DELETE ON blobs WHEN old.fts = 1"
	" BEGIN DELETE FROM blob_fts WHERE rowid = old.id; END;"
	"CREATE INDEX blobs_fts_pending ON blobs(id) WHERE fts != 1;",
	/* 6: the queue sent its one "delayed" DSN for the entry (RFC 3464
	   Action: delayed, cfg queue_delay_warning) */
	"ALTER TABLE queue ADD COLUMN delay_warned INTEGER NOT NULL DEFAULT 0;",
	/* 7: a covering index for loading a session's view at SELECT
	   (store_msg_list_view): uid, flags, modseq and keywords in uid
	   order without reading the table rows */
	"CREATE INDEX messages_view ON messages(mailbox_id, uid, flags,"
	" modseq, keywords);",
	/* 8: the SORT and THREAD keys of each blob (mime_sort.c),
	   computed once per blob (store_msg_meta_ensure) and kept in a
	   narrow table of their own, so SORT reads them without the wide
	   blobs rows; blobs.sort_keys = 1 once its row exists. Blobs stored
	   before are filled when the store is opened
	   (store_msg_sort_backfill, through blobs_sort_pending). */
	"ALTER TABLE blobs ADD COLUMN sort_keys INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE blob_sort(blob_id INTEGER PRIMARY KEY,"
	" date INTEGER, subject TEXT NOT NULL, reply INTEGER NOT NULL,"
	" from_mbox TEXT, to_mbox TEXT, cc_mbox TEXT, from_display TEXT,"
	" to_display TEXT, msgid TEXT, refs TEXT);"
	"CREATE TRIGGER blobs_sort_gc AFTER DELETE ON blobs"
	" BEGIN DELETE FROM blob_sort WHERE blob_id = old.id; END;"
	"CREATE INDEX blobs_sort_pending ON blobs(id)"
	" WHERE sort_keys = 0 AND has_meta = 1;",
	/* 9: blobs.fts = 1 now also promises that the indexed text holds
	   no character the trigram tokenizer folds to ASCII (U+017F,
	   U+212A) and no NUL, so ASCII needles need no exact check
	   (store_fts.c); rows with one become 3. Text with NUL was indexed
	   only up to the first NUL: such blobs become unindexed (0, always
	   checked). The trigger now also drops the index rows of blobs
	   with fts 2 and 3 (it missed those of 2). */
	"UPDATE blobs SET fts = 0 WHERE fts != 0 AND id IN"
	" (SELECT rowid FROM blob_fts WHERE instr(hdr, char(0))"
	" OR instr(body, char(0)));"
	"DELETE FROM blob_fts WHERE rowid IN"
	" (SELECT id FROM blobs WHERE fts = 0);"
	"UPDATE blobs SET fts = 3 WHERE fts = 1 AND id IN"
	" (SELECT rowid FROM blob_fts WHERE instr(hdr, char(383))"
	" OR instr(body, char(383)) OR instr(hdr, char(8490))"
	" OR instr(body, char(8490)));"
	"DROP TRIGGER blobs_fts_gc;"
	"CREATE TRIGGER blobs_fts_gc AFTER DELETE ON blobs WHEN old.fts != 0"
	" BEGIN DELETE FROM blob_fts WHERE rowid = old.id; END;"
	"DELETE FROM blob_fts WHERE rowid NOT IN (SELECT id FROM blobs);",
	/* 10: the hdr column of the index now also holds the MIME headers
	   of the body parts (SEARCH TEXT matches them). Rows indexed
	   before hold the top header only: fts_layout.old_max is the
	   highest id of such a blob, and TEXT reads the blobs up to it
	   (a new blob that reuses an id below is read too: only slower).
	   BODY trusts them as before. */
	"CREATE TABLE fts_layout(old_max INTEGER NOT NULL);"
	"INSERT INTO fts_layout SELECT coalesce(max(id), 0) FROM blobs"
	" WHERE fts != 0;",
	/* 11: the header fields SEARCH SUBJECT, FROM, TO, CC and BCC
	   compare with (mime_search_field: unfolded, decoded), one column
	   each in a second trigram index, so those keys are answered from
	   it, needles with white space too; blobs.hfts says how far it can
	   be trusted, as blobs.fts does for blob_fts (store_fts.c). Blobs
	   stored before have hfts = 0 (always candidates) until the store
	   is opened by this version (store_fts_field_backfill, through
	   blobs_hfts_pending). */
	"CREATE VIRTUAL TABLE blob_hfts USING fts5(f_subject, f_from, f_to,"
	" f_cc, f_bcc, tokenize = 'trigram');"
	"ALTER TABLE blobs ADD COLUMN hfts INTEGER NOT NULL DEFAULT 0;"
	"CREATE TRIGGER blobs_hfts_gc AFTER DELETE ON blobs"
	" WHEN old.hfts != 0"
	" BEGIN DELETE FROM blob_hfts WHERE rowid = old.id; END;"
	"CREATE INDEX blobs_hfts_pending ON blobs(id) WHERE hfts != 1;"
	/* and the blob -> UID map of a mailbox for the index matches:
	   one covering lookup each, or one pass in blob order */
	"CREATE INDEX messages_box_blob ON messages(mailbox_id,"
	" blob_id, uid);",
	/* 12: a persisted snapshot of a large mailbox's view
	   (store_view_snap.c): every message's uid, flags, modseq and
	   keywords as of the mailbox's HIGHESTMODSEQ modseq, packed in
	   data, so the first SELECT in a worker reads the snapshot and the
	   rows changed since (messages_modseq, expunged_modseq) instead of
	   every row. A cache: a row that is missing, older or unreadable
	   only costs a full read. Goes with its mailbox (the cascade, for
	   DELETE and account deletion alike). */
	"CREATE TABLE view_snap(mailbox_id INTEGER PRIMARY KEY"
	" REFERENCES mailboxes(id) ON DELETE CASCADE,"
	" uidvalidity INTEGER NOT NULL, modseq INTEGER NOT NULL,"
	" count INTEGER NOT NULL, data BLOB NOT NULL);",
	/* 13: the address sort keys now take a group's name when the field
	   starts with a group (mime_sort.c), as ENVELOPE's first address
	   structure is: the keys of every blob are computed again, by the
	   backfill of step 8 at the next store_open (store_msg_sort_backfill;
	   a message whose row is not filled yet has its keys computed at
	   command time, as before step 8). And SEARCH FROM/TO/CC/BCC now
	   compare the addresses as ENVELOPE parses them
	   (mime_search_field): the field index of step 11 is filled again
	   the same way (store_fts_field_backfill; hfts = 0 is read) */
	"DELETE FROM blob_sort;"
	"UPDATE blobs SET sort_keys = 0 WHERE sort_keys != 0;"
	"DELETE FROM blob_hfts;"
	"UPDATE blobs SET hfts = 0 WHERE hfts != 0;",
	/* 14: one partial index for the blobs that either full-text table
	   cannot serve exactly, instead of one per table: a new blob is in
	   both until the index thread writes its rows, so each of its
	   writes went to two B-trees; SQLite uses the one for "fts != 1"
	   and for "hfts != 1" alike. One WAL page fewer per APPEND (18.4
	   -> 17.4, docs/performance.md 1h). */
	"DROP INDEX IF EXISTS blobs_fts_pending;"
	"DROP INDEX IF EXISTS blobs_hfts_pending;"
	"CREATE INDEX IF NOT EXISTS blobs_index_pending ON blobs(id)"
	" WHERE fts != 1 OR hfts != 1;",
	/* 15: the full-text tables have a database file of their own,
	   index.db (store_fts_db.c: its own write lock and WAL). Their rows
	   are not copied over: every blob is indexed again there by the
	   index threads (store_fts_index_pending; until then SEARCH reads
	   those messages), all with the layout of step 10. A collected
	   blob's id goes to fts_gone, for store_fts_gc to remove its rows
	   (a trigger here cannot reach the other file). */
	"DROP TRIGGER IF EXISTS blobs_fts_gc;"
	"DROP TRIGGER IF EXISTS blobs_hfts_gc;"
	"DROP TABLE IF EXISTS blob_fts;"
	"DROP TABLE IF EXISTS blob_hfts;"
	"UPDATE blobs SET fts = 0, hfts = 0 WHERE fts != 0 OR hfts != 0;"
	"UPDATE fts_layout SET old_max = 0;"
	"CREATE TABLE IF NOT EXISTS fts_gone(id INTEGER PRIMARY KEY);"
	"CREATE TRIGGER IF NOT EXISTS blobs_fts_gone AFTER DELETE ON blobs"
	" BEGIN INSERT OR IGNORE INTO fts_gone(id) VALUES (old.id); END;",
	/* 16: small blobs live in pack files (store_pack.c): their row
	   names the pack and the offset there; pack NULL is a file of its
	   own under blobs/, as every blob was before. The columns:
	   store_columns. pack_gc: packs that lost rows since the last
	   look at them (store_pack_reclaim). */
	"CREATE INDEX IF NOT EXISTS blobs_pack ON blobs(pack, off)"
	" WHERE pack IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS pack_gc(pack INTEGER PRIMARY KEY);",
};

/* Columns a step of tern.db adds before its SQL, only when missing
   (ALTER TABLE has no IF NOT EXISTS): so the step can run again over a
   store that has them, as when a test sets user_version back to make
   an older store of a newer one. step: as numbered above. */
struct store_schema_column {
	int step;
	const char *table, *column, *decl;
};

static const struct store_schema_column store_columns[] = {
	{ 16, "blobs", "pack", "INTEGER" },
	{ 16, "blobs", "off", "INTEGER" },
};

/* index.db (store_fts_db.c), with its own user_version. */
static const char *const store_index_migrations[] = {
	/* 1: the full-text tables of schema step 15 */
	"CREATE VIRTUAL TABLE blob_fts USING fts5(hdr, body,"
	" tokenize = 'trigram');"
	"CREATE VIRTUAL TABLE blob_hfts USING fts5(f_subject, f_from, f_to,"
	" f_cc, f_bcc, tokenize = 'trigram');",
};

#define STORE_STEPS(a) (sizeof(a) / sizeof((a)[0]))

static int
store_schema_exec(struct store *s, sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : store_sql_err_db(s, db, rc);
}

static int
store_schema_version(struct store *s, sqlite3 *db, int *version_r)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sql_err_db(s, db, rc);
	rc = sqlite3_step(st);
	*version_r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err_db(s, db, rc);
}

static int
store_schema_has_column(struct store *s, sqlite3 *db,
			const struct store_schema_column *c, bool *has_r)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?)"
				    " WHERE name = ?", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sql_err_db(s, db, rc);
	sqlite3_bind_text(st, 1, c->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->column, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*has_r = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK
						     : store_sql_err_db(s, db, rc);
}

/* The columns of store_columns for step (1-based) that db lacks. */
static int
store_schema_columns(struct store *s, sqlite3 *db, int step)
{
	char sql[256];
	bool has = false;
	int ret = STORE_OK;

	for (size_t i = 0; i < STORE_STEPS(store_columns) && ret == STORE_OK;
	     i++) {
		const struct store_schema_column *c = &store_columns[i];

		if (c->step != step)
			continue;
		ret = store_schema_has_column(s, db, c, &has);
		if (ret != STORE_OK || has)
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s",
			 c->table, c->column, c->decl);
		ret = store_schema_exec(s, db, sql);
	}
	return ret;
}

static int
store_schema_step(struct store *s, sqlite3 *db, const char *const *steps,
		  int version)
{
	char sql[64];
	int ret, cur;

	ret = store_schema_exec(s, db, "BEGIN IMMEDIATE");
	if (ret != STORE_OK)
		return ret;
	/* Another process may have migrated while we waited for the lock. */
	ret = store_schema_version(s, db, &cur);
	if (ret == STORE_OK && cur == version && steps == store_migrations)
		ret = store_schema_columns(s, db, version + 1);
	if (ret == STORE_OK && cur == version)
		ret = store_schema_exec(s, db, steps[version]);
	if (ret == STORE_OK && cur == version) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
			 version + 1);
		ret = store_schema_exec(s, db, sql);
	}
	if (ret == STORE_OK)
		ret = store_schema_exec(s, db, "COMMIT");
	if (ret != STORE_OK && !sqlite3_get_autocommit(db))
		(void)store_schema_exec(s, db, "ROLLBACK");
	return ret;
}

/* Every step of steps[0..count) that db has not applied yet. */
static int
store_schema_apply(struct store *s, sqlite3 *db, const char *const *steps,
		   size_t count)
{
	int version, ret;

	for (;;) {
		ret = store_schema_version(s, db, &version);
		if (ret != STORE_OK)
			return ret;
		if (version < 0 || (size_t)version > count)
			return store_fail(s, STORE_ERR,
					  "database schema version %d is newer "
					  "than this program (%zu)",
					  version, count);
		if ((size_t)version == count)
			return STORE_OK;
		ret = store_schema_step(s, db, steps, version);
		if (ret != STORE_OK)
			return ret;
	}
}

int
store_schema_migrate(struct store *s)
{
	return store_schema_apply(s, s->db, store_migrations,
				  STORE_STEPS(store_migrations));
}

int
store_schema_migrate_index(struct store *s)
{
	return store_schema_apply(s, s->fts_db, store_index_migrations,
				  STORE_STEPS(store_index_migrations));
}
