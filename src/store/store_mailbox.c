/* Mailboxes of an account: name rules (UTF-8, '/' levels, INBOX folded),
   CREATE with its missing parents, DELETE, RENAME with children and the
   special INBOX rename, subscriptions, STATUS counts and the \Recent
   claim (RFC 3501 2.3.2: one compare-and-swap of recent_uid).
   UIDVALIDITY comes from one server-wide counter in the meta table (key
   "uidvalidity"): max(unix time, last value + 1), so it is never 0 and
   never repeats, even for a mailbox deleted and re-created in a second.
   A new mailbox starts with UIDNEXT 1 and HIGHESTMODSEQ 1 (RFC 7162:
   nonzero). Subscriptions are bare names: DELETE and RENAME leave them
   alone (RFC 9051 6.3.7: never removed unilaterally). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

/* A client cannot create mailboxes without bound (parents created by one
   CREATE may exceed it by STORE_MAILBOX_DEPTH_MAX - 1). */
#define STORE_MAILBOXES_MAX 10000

/* RFC 6154 special-use attributes, in their canonical spelling. */
static const char *const store_special_uses[] = {
	"\\All", "\\Archive", "\\Drafts", "\\Flagged",
	"\\Junk", "\\Sent", "\\Trash",
};

#define STORE_MAILBOX_COLS                                               \
	"m.id, m.account_id, m.name, m.special_use, m.uidvalidity,"      \
	" m.uidnext, m.highestmodseq, EXISTS(SELECT 1 FROM subscriptions" \
	" u WHERE u.account_id = m.account_id AND u.name = m.name),"   \
	" m.recent_uid"

/* A mailbox to rename: its id and its new name. */
struct store_mailbox_move {
	int64_t id;
	char *name;
};

/* ---- names ---- */

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0
   (overlong forms, surrogates and values above U+10FFFF are invalid). */
static size_t
store_utf8_len(const unsigned char *p, size_t left)
{
	uint32_t cp;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	cp = p[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return n;
}

static const char *
store_mailbox_name_chars(const char *name, size_t len)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t i = 0, n;

	while (i < len) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return "Mailbox name contains control characters.";
		n = store_utf8_len(p + i, len - i);
		if (n == 0)
			return "Mailbox name is not valid UTF-8.";
		i += n;
	}
	return NULL;
}

static const char *
store_mailbox_name_levels(const char *name, size_t len)
{
	size_t start = 0, depth = 0, n;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '/')
			continue;
		n = i - start;
		if (n == 0)
			return "Mailbox name has an empty hierarchy level.";
		if (name[start] == '.' &&
		    (n == 1 || (n == 2 && name[start + 1] == '.')))
			return "Mailbox name has a \".\" or \"..\" level.";
		if (++depth > STORE_MAILBOX_DEPTH_MAX)
			return "Mailbox name has too many hierarchy levels.";
		start = i + 1;
	}
	return NULL;
}

/* NULL when name is valid, else why not (a static string). */
static const char *
store_mailbox_name_error(const char *name)
{
	size_t len;
	const char *error;

	if (name == NULL || name[0] == '\0')
		return "Mailbox name is empty.";
	len = strnlen(name, STORE_MAILBOX_NAME_MAX + 1);
	if (len > STORE_MAILBOX_NAME_MAX)
		return "Mailbox name is too long.";
	if (name[0] == '/')
		return "Mailbox name starts with the hierarchy delimiter.";
	if (name[len - 1] == '/')
		return "Mailbox name ends with the hierarchy delimiter.";
	error = store_mailbox_name_chars(name, len);
	return error != NULL ? error : store_mailbox_name_levels(name, len);
}

char *
store_mailbox_name_normalize(const char *name, const char **error_r)
{
	const char *error = store_mailbox_name_error(name);
	char *norm;

	if (error != NULL) {
		if (error_r != NULL)
			*error_r = error;
		return NULL;
	}
	norm = xstrdup(name);
	/* RFC 9051 5.1: INBOX is case-insensitive, also as a parent. */
	if (strncasecmp(norm, "INBOX", 5) == 0 &&
	    (norm[5] == '\0' || norm[5] == '/'))
		memcpy(norm, "INBOX", 5);
	return norm;
}

/* Normalise name into *norm_r or record why not (STORE_INVALID). */
static int
store_mailbox_name(struct store *s, const char *name, char **norm_r)
{
	const char *error = NULL;

	*norm_r = store_mailbox_name_normalize(name, &error);
	if (*norm_r == NULL)
		return store_fail(s, STORE_INVALID, "%s", error);
	return STORE_OK;
}

/* Is name the mailbox top or one of its descendants? */
static bool
store_mailbox_name_under(const char *name, const char *top)
{
	size_t len = strlen(top);

	return strncmp(name, top, len) == 0 &&
	       (name[len] == '\0' || name[len] == '/');
}

/* ---- helpers ---- */

static int
store_mailbox_ret(struct store *s, int ret, const char **error_r)
{
	if (ret != STORE_OK && error_r != NULL)
		*error_r = store_last_error(s);
	return ret;
}

/* Commit the transaction when ret is STORE_OK, else roll it back. */
static int
store_mailbox_tx_end(struct store *s, struct store_tx *tx, int ret)
{
	if (ret != STORE_OK) {
		store_tx_rollback(s, tx);
		return ret;
	}
	return store_tx_commit(s, tx);
}

/* Run sql (a string literal) with one integer parameter. */
static int
store_mailbox_exec_id(struct store *s, const char *sql, int64_t id)
{
	sqlite3_stmt *st = store_stmt(s, sql);

	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	return store_stmt_exec(s, st);
}

/* 1 and *id_r when the account has a mailbox of this (normalised)
   name, 0 when not, or an error. */
static int
store_mailbox_find(struct store *s, int64_t account_id, const char *name,
		   int64_t *id_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "SELECT id FROM mailboxes"
			   " WHERE account_id = ? AND name = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
}

/* ---- reading ---- */

void
store_mailbox_clear(struct store_mailbox *box)
{
	free(box->name);
	free(box->special_use);
	memset(box, 0, sizeof(*box));
}

void
store_mailboxes_free(struct store_mailbox *boxes, size_t count)
{
	for (size_t i = 0; i < count; i++)
		store_mailbox_clear(&boxes[i]);
	free(boxes);
}

/* Fill box from a row of STORE_MAILBOX_COLS. */
static void
store_mailbox_row(sqlite3_stmt *st, struct store_mailbox *box)
{
	box->id = sqlite3_column_int64(st, 0);
	box->account_id = sqlite3_column_int64(st, 1);
	box->name = store_col_strdup(st, 2);
	box->special_use = store_col_strdup(st, 3);
	box->uidvalidity = (uint32_t)sqlite3_column_int64(st, 4);
	box->uidnext = (uint32_t)sqlite3_column_int64(st, 5);
	box->highestmodseq = (uint64_t)sqlite3_column_int64(st, 6);
	box->subscribed = sqlite3_column_int(st, 7) != 0;
	box->recent_uid = (uint32_t)sqlite3_column_int64(st, 8);
	if (box->name == NULL)
		box->name = xstrdup("");
}

/* Step a bound single-row lookup: 1 found, 0 not, or an error. */
static int
store_mailbox_get_one(struct store *s, sqlite3_stmt *st,
		      struct store_mailbox *box_r)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		store_mailbox_row(st, box_r);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
}

int
store_mailbox_list(struct store *s, int64_t account_id,
		   struct store_mailbox **boxes_r, size_t *count_r)
{
	struct store_mailbox *boxes = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*boxes_r = NULL;
	*count_r = 0;
	st = store_stmt(s, "SELECT " STORE_MAILBOX_COLS " FROM mailboxes m"
			   " WHERE m.account_id = ? ORDER BY m.name");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		boxes = store_grow(boxes, &cap, n, sizeof(*boxes));
		store_mailbox_row(st, &boxes[n++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_mailboxes_free(boxes, n);
		return store_sql_err(s, rc);
	}
	*boxes_r = boxes;
	*count_r = n;
	return STORE_OK;
}

int
store_mailbox_get(struct store *s, int64_t account_id, const char *name,
		  struct store_mailbox *box_r)
{
	sqlite3_stmt *st;
	char *norm;
	int ret;

	memset(box_r, 0, sizeof(*box_r));
	/* No mailbox can have an invalid name: not found. */
	if (store_mailbox_name(s, name, &norm) != STORE_OK)
		return 0;
	st = store_stmt(s, "SELECT " STORE_MAILBOX_COLS " FROM mailboxes m"
			   " WHERE m.account_id = ? AND m.name = ?");
	if (st == NULL) {
		free(norm);
		return STORE_ERR;
	}
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, norm, -1, SQLITE_STATIC);
	ret = store_mailbox_get_one(s, st, box_r);
	free(norm);
	return ret;
}

int
store_mailbox_get_by_id(struct store *s, int64_t mailbox_id,
			struct store_mailbox *box_r)
{
	sqlite3_stmt *st;

	memset(box_r, 0, sizeof(*box_r));
	st = store_stmt(s, "SELECT " STORE_MAILBOX_COLS " FROM mailboxes m"
			   " WHERE m.id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	return store_mailbox_get_one(s, st, box_r);
}

int
store_mailbox_view_snapshot(struct store *s, int64_t mailbox_id,
			    struct store_mailbox *box_r,
			    store_msg_view_fn *fn, void *ctx,
			    struct store_view_load *load_r)
{
	struct store_view_load load;
	bool started;
	int r;

	memset(box_r, 0, sizeof(*box_r));
	memset(&load, 0, sizeof(load));
	/* one the last call kept and nobody wrote: before the read */
	(void)store_view_snap_flush(s, NULL);
	/* BEGIN is deferred: the snapshot starts with the mailbox row */
	if (store_read_begin(s, &started) != STORE_OK)
		return STORE_ERR;
	r = store_mailbox_get_by_id(s, mailbox_id, box_r);
	if (r == 1 && store_view_snap_load(s, box_r, fn, ctx, &load) !=
			      STORE_OK) {
		store_mailbox_clear(box_r);
		store_view_snap_drop(s);
		r = STORE_ERR;
	}
	store_read_end(s, started);
	if (load_r != NULL)
		*load_r = load;
	return r;
}

/* ---- internal: insert, modseq ---- */

/* Next value of the server-wide UIDVALIDITY counter (see top). */
static int
store_mailbox_uidvalidity(struct store *s, uint32_t *uidvalidity_r)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	int rc;

	st = store_stmt(s, "INSERT INTO meta(key, value)"
			   " VALUES ('uidvalidity', ?)"
			   " ON CONFLICT(key) DO UPDATE"
			   " SET value = max(excluded.value, value + 1)"
			   " RETURNING value");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, store_now());
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sql_err(s, rc);
	/* XXX year 2106: UIDVALIDITY is 32 bits (RFC 9051 2.3.1.1) */
	if (v <= 0 || v > (int64_t)UINT32_MAX)
		return store_fail(s, STORE_ERR, "UIDVALIDITY counter "
				  "exhausted (%lld)", (long long)v);
	*uidvalidity_r = (uint32_t)v;
	return STORE_OK;
}

int
store_mailbox_insert(struct store *s, int64_t account_id, const char *name,
		     const char *special_use, int64_t *id_r)
{
	uint32_t uidvalidity = 0;
	sqlite3_stmt *st;
	int ret;

	ret = store_mailbox_uidvalidity(s, &uidvalidity);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "INSERT INTO mailboxes(account_id, name,"
			   " special_use, uidvalidity, uidnext, highestmodseq)"
			   " VALUES (?, ?, ?, ?, 1, 1)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (special_use != NULL)
		sqlite3_bind_text(st, 3, special_use, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, uidvalidity);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK && id_r != NULL)
		*id_r = sqlite3_last_insert_rowid(s->db);
	return ret;
}

int
store_mailbox_bump_modseq(struct store *s, int64_t mailbox_id,
			  uint64_t *modseq_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(s, "UPDATE mailboxes"
			   " SET highestmodseq = highestmodseq + 1"
			   " WHERE id = ? RETURNING highestmodseq");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && modseq_r != NULL)
		*modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no mailbox %lld",
				  (long long)mailbox_id);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

/* ---- create ---- */

static int
store_mailbox_special_use(struct store *s, const char *use,
			  const char **canon_r)
{
	*canon_r = NULL;
	if (use == NULL)
		return STORE_OK;
	for (size_t i = 0; i < sizeof(store_special_uses) /
				       sizeof(store_special_uses[0]);
	     i++) {
		if (strcasecmp(use, store_special_uses[i]) == 0) {
			*canon_r = store_special_uses[i];
			return STORE_OK;
		}
	}
	return store_fail(s, STORE_INVALID,
			  "Unsupported special-use attribute.");
}

/* The account exists and is below STORE_MAILBOXES_MAX. */
static int
store_mailbox_account_check(struct store *s, int64_t account_id)
{
	sqlite3_stmt *st;
	int64_t exists = 0, count = 0;
	int rc;

	st = store_stmt(s, "SELECT EXISTS(SELECT 1 FROM accounts"
			   " WHERE id = ?1), (SELECT count(*) FROM mailboxes"
			   " WHERE account_id = ?1)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		exists = sqlite3_column_int64(st, 0);
		count = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_sql_err(s, rc);
	if (!exists)
		return store_fail(s, STORE_NOTFOUND, "No such account.");
	if (count >= STORE_MAILBOXES_MAX)
		return store_fail(s, STORE_OVERQUOTA, "Too many mailboxes.");
	return STORE_OK;
}

static int
store_mailbox_ensure(struct store *s, int64_t account_id, const char *name)
{
	int64_t id;
	int ret = store_mailbox_find(s, account_id, name, &id);

	if (ret < 0)
		return ret;
	if (ret > 0)
		return STORE_OK;
	return store_mailbox_insert(s, account_id, name, NULL, NULL);
}

/* Create the missing parent levels of a normalised name (RFC 9051
   6.3.4). */
static int
store_mailbox_parents(struct store *s, int64_t account_id, const char *name)
{
	char buf[STORE_MAILBOX_NAME_MAX + 1];
	size_t len = strlen(name);
	int ret;

	if (len > STORE_MAILBOX_NAME_MAX)
		return store_fail(s, STORE_INVALID,
				  "Mailbox name is too long.");
	memcpy(buf, name, len + 1);
	for (size_t i = 1; i < len; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		ret = store_mailbox_ensure(s, account_id, buf);
		buf[i] = '/';
		if (ret != STORE_OK)
			return ret;
	}
	return STORE_OK;
}

static int
store_mailbox_create_tx(struct store *s, int64_t account_id,
			const char *name, const char *use, int64_t *id_r)
{
	int64_t id;
	int ret = store_mailbox_account_check(s, account_id);

	if (ret != STORE_OK)
		return ret;
	ret = store_mailbox_find(s, account_id, name, &id);
	if (ret > 0)
		return store_fail(s, STORE_EXISTS, "Mailbox already exists.");
	if (ret < 0)
		return ret;
	ret = store_mailbox_parents(s, account_id, name);
	if (ret == STORE_OK)
		ret = store_mailbox_insert(s, account_id, name, use, id_r);
	if (ret == STORE_OK)
		store_event_add(s, account_id, 0, 0);
	return ret;
}

int
store_mailbox_create(struct store *s, int64_t account_id, const char *name,
		     const char *special_use, int64_t *id_r,
		     const char **error_r)
{
	const char *use = NULL;
	struct store_tx tx;
	char *norm;
	int ret;

	ret = store_mailbox_name(s, name, &norm);
	if (ret == STORE_OK)
		ret = store_mailbox_special_use(s, special_use, &use);
	if (ret == STORE_OK)
		ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_mailbox_create_tx(s, account_id, norm, use, id_r);
		ret = store_mailbox_tx_end(s, &tx, ret);
	}
	free(norm);
	return store_mailbox_ret(s, ret, error_r);
}

/* ---- delete ---- */

/* Children stay: they are mailboxes of their own, and LIST shows the
   deleted parent as a non-existent level (RFC 9051 6.3.5). */
static int
store_mailbox_delete_tx(struct store *s, int64_t account_id,
			const char *name)
{
	int64_t id;
	int ret = store_mailbox_find(s, account_id, name, &id);

	if (ret == 0)
		return store_fail(s, STORE_NOTFOUND, "Mailbox doesn't exist.");
	if (ret < 0)
		return ret;
	ret = store_msg_purge_mailbox(s, id);
	if (ret == STORE_OK)
		ret = store_mailbox_exec_id(s, "DELETE FROM expunged"
					       " WHERE mailbox_id = ?", id);
	if (ret == STORE_OK)
		ret = store_mailbox_exec_id(s, "DELETE FROM mailboxes"
					       " WHERE id = ?", id);
	if (ret == STORE_OK) {
		store_event_add(s, account_id, 0, 0);
		store_event_add(s, account_id, id, 0);
	}
	return ret;
}

int
store_mailbox_delete(struct store *s, int64_t account_id, const char *name)
{
	struct store_tx tx;
	char *norm;
	int ret;

	ret = store_mailbox_name(s, name, &norm);
	if (ret == STORE_OK && strcmp(norm, "INBOX") == 0)
		ret = store_fail(s, STORE_INVALID, "INBOX can't be deleted.");
	if (ret == STORE_OK)
		ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_mailbox_delete_tx(s, account_id, norm);
		ret = store_mailbox_tx_end(s, &tx, ret);
	}
	free(norm);
	return ret;
}

/* ---- rename ---- */

static void
store_mailbox_moves_free(struct store_mailbox_move *moves, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(moves[i].name);
	free(moves);
}

/* New name of the mailbox old (from or below it), validated. */
static int
store_mailbox_target(struct store *s, const char *old, const char *from,
		     const char *to, char **target_r)
{
	const char *rest = old + strlen(from), *error;
	size_t tlen = strlen(to), rlen = strlen(rest);
	char *t;

	*target_r = NULL;
	if (tlen + rlen > STORE_MAILBOX_NAME_MAX)
		return store_fail(s, STORE_INVALID, "New mailbox name of "
				  "a child would be too long.");
	t = xmalloc(tlen + rlen + 1);
	memcpy(t, to, tlen);
	memcpy(t + tlen, rest, rlen + 1);
	error = store_mailbox_name_error(t);
	if (error != NULL) {
		free(t);
		return store_fail(s, STORE_INVALID, "%s", error);
	}
	*target_r = t;
	return STORE_OK;
}

/* Collect from and its children with their new names, shortest first:
   when `to` is an ancestor of `from`, a child's new name may be the
   current name of a shorter source, which has moved on by then. */
static int
store_mailbox_moves(struct store *s, int64_t account_id, const char *from,
		    const char *to, struct store_mailbox_move **moves_r,
		    size_t *count_r)
{
	struct store_mailbox_move *moves = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, ret = STORE_OK;

	/* [from/, from0) is exactly the names below from/ ('0' follows
	   '/' in ASCII), and the UNIQUE(account_id, name) index serves it. */
	st = store_stmt(s, "SELECT id, name FROM mailboxes"
			   " WHERE account_id = ?1 AND (name = ?2"
			   " OR (name >= (?2 || '/') AND name < (?2 || '0')))"
			   " ORDER BY length(name), name");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
	while (ret == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *old = (const char *)sqlite3_column_text(st, 1);

		moves = store_grow(moves, &cap, n, sizeof(*moves));
		moves[n].id = sqlite3_column_int64(st, 0);
		ret = store_mailbox_target(s, old != NULL ? old : from, from,
					   to, &moves[n].name);
		n++;
	}
	sqlite3_reset(st);
	if (ret == STORE_OK && rc != SQLITE_DONE)
		ret = store_sql_err(s, rc);
	*moves_r = moves;
	*count_r = n;
	return ret;
}

/* No new name may be taken by a mailbox that does not move itself. */
static int
store_mailbox_moves_free_check(struct store *s, int64_t account_id,
			       const char *from,
			       const struct store_mailbox_move *moves,
			       size_t count)
{
	int64_t id;
	int ret;

	for (size_t i = 0; i < count; i++) {
		ret = store_mailbox_find(s, account_id, moves[i].name, &id);
		if (ret < 0)
			return ret;
		if (ret > 0 && !store_mailbox_name_under(moves[i].name, from))
			return store_fail(s, STORE_EXISTS,
					  "Mailbox already exists.");
	}
	return STORE_OK;
}

static int
store_mailbox_set_name(struct store *s, int64_t id, const char *name)
{
	sqlite3_stmt *st;

	st = store_stmt(s, "UPDATE mailboxes SET name = ? WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	return store_stmt_exec(s, st);
}

static int
store_mailbox_rename_check(struct store *s, int64_t account_id,
			   const char *from, const char *to)
{
	int64_t id;
	int ret = store_mailbox_find(s, account_id, from, &id);

	if (ret == 0)
		return store_fail(s, STORE_NOTFOUND, "Mailbox doesn't exist.");
	if (ret < 0)
		return ret;
	if (strcmp(from, to) == 0)
		return store_fail(s, STORE_EXISTS, "Mailbox already exists.");
	if (store_mailbox_name_under(to, from))
		return store_fail(s, STORE_INVALID, "Can't rename a mailbox "
				  "into one of its children.");
	return STORE_OK;
}

/* Rename from and its children in place: they keep id, UIDVALIDITY,
   messages and special-use. */
static int
store_mailbox_rename_tree(struct store *s, int64_t account_id,
			  const char *from, const char *to)
{
	struct store_mailbox_move *moves = NULL;
	size_t n = 0;
	int ret;

	ret = store_mailbox_rename_check(s, account_id, from, to);
	if (ret == STORE_OK)
		ret = store_mailbox_moves(s, account_id, from, to, &moves, &n);
	if (ret == STORE_OK)
		ret = store_mailbox_moves_free_check(s, account_id, from,
						     moves, n);
	for (size_t i = 0; i < n && ret == STORE_OK; i++)
		ret = store_mailbox_set_name(s, moves[i].id, moves[i].name);
	if (ret == STORE_OK)
		ret = store_mailbox_parents(s, account_id, to);
	if (ret == STORE_OK)
		store_event_add(s, account_id, 0, 0);
	store_mailbox_moves_free(moves, n);
	return ret;
}

/* Move every INBOX message into dst keeping UIDs and modseqs; INBOX
   records them as expunged at a new modseq for QRESYNC clients. */
static int
store_mailbox_inbox_move(struct store *s, int64_t inbox, int64_t dst,
			 uint64_t *modseq_r)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "UPDATE mailboxes SET (uidnext, highestmodseq,"
			   " recent_uid) = (SELECT uidnext, highestmodseq,"
			   " recent_uid FROM mailboxes WHERE id = ?1)"
			   " WHERE id = ?2");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, inbox);
	sqlite3_bind_int64(st, 2, dst);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK)
		ret = store_mailbox_bump_modseq(s, inbox, modseq_r);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "INSERT OR REPLACE INTO expunged(mailbox_id, uid,"
			   " modseq) SELECT mailbox_id, uid, ?2 FROM messages"
			   " WHERE mailbox_id = ?1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, inbox);
	sqlite3_bind_int64(st, 2, (int64_t)*modseq_r);
	ret = store_stmt_exec(s, st);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "UPDATE messages SET mailbox_id = ?2"
			   " WHERE mailbox_id = ?1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, inbox);
	sqlite3_bind_int64(st, 2, dst);
	return store_stmt_exec(s, st);
}

/* RFC 9051 6.3.6: a new mailbox (new UIDVALIDITY) receives the
   messages, INBOX stays with its UIDVALIDITY and UIDNEXT, and its
   children are not renamed. */
static int
store_mailbox_rename_inbox(struct store *s, int64_t account_id,
			   const char *to)
{
	int64_t inbox, id;
	uint64_t modseq = 0;
	int ret = store_mailbox_find(s, account_id, "INBOX", &inbox);

	if (ret == 0)
		return store_fail(s, STORE_NOTFOUND, "Mailbox doesn't exist.");
	if (ret < 0)
		return ret;
	ret = store_mailbox_find(s, account_id, to, &id);
	if (ret > 0)
		return store_fail(s, STORE_EXISTS, "Mailbox already exists.");
	if (ret == STORE_OK)
		ret = store_mailbox_parents(s, account_id, to);
	if (ret == STORE_OK)
		ret = store_mailbox_insert(s, account_id, to, NULL, &id);
	if (ret == STORE_OK)
		ret = store_mailbox_inbox_move(s, inbox, id, &modseq);
	if (ret == STORE_OK) {
		store_event_add(s, account_id, 0, 0);
		store_event_add(s, account_id, inbox, modseq);
	}
	return ret;
}

int
store_mailbox_rename(struct store *s, int64_t account_id,
		     const char *old_name, const char *new_name,
		     const char **error_r)
{
	char *from = NULL, *to = NULL;
	struct store_tx tx;
	int ret;

	ret = store_mailbox_name(s, old_name, &from);
	if (ret == STORE_OK)
		ret = store_mailbox_name(s, new_name, &to);
	if (ret == STORE_OK)
		ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		if (strcmp(from, "INBOX") == 0)
			ret = store_mailbox_rename_inbox(s, account_id, to);
		else
			ret = store_mailbox_rename_tree(s, account_id, from,
							to);
		ret = store_mailbox_tx_end(s, &tx, ret);
	}
	free(from);
	free(to);
	return store_mailbox_ret(s, ret, error_r);
}

/* ---- subscriptions ---- */

static int
store_mailbox_subscribe_tx(struct store *s, int64_t account_id,
			   const char *name, bool subscribe)
{
	sqlite3_stmt *st;
	int ret;

	if (subscribe)
		st = store_stmt(s, "INSERT OR IGNORE INTO"
				   " subscriptions(account_id, name)"
				   " VALUES (?, ?)");
	else
		st = store_stmt(s, "DELETE FROM subscriptions"
				   " WHERE account_id = ? AND name = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	ret = store_stmt_exec(s, st);
	if (ret == STORE_OK && sqlite3_changes(s->db) > 0)
		store_event_add(s, account_id, 0, 0);
	return ret;
}

/* Idempotent: subscribing twice or unsubscribing a name that is not
   subscribed is STORE_OK. */
int
store_mailbox_subscribe(struct store *s, int64_t account_id,
			const char *name, bool subscribe)
{
	struct store_tx tx;
	char *norm;
	int ret;

	ret = store_mailbox_name(s, name, &norm);
	if (ret == STORE_OK)
		ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_mailbox_subscribe_tx(s, account_id, norm,
						 subscribe);
		ret = store_mailbox_tx_end(s, &tx, ret);
	}
	free(norm);
	return ret;
}

int
store_subscription_list(struct store *s, int64_t account_id,
			char ***names_r, size_t *count_r)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*names_r = NULL;
	*count_r = 0;
	st = store_stmt(s, "SELECT name FROM subscriptions"
			   " WHERE account_id = ? ORDER BY name");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		names = store_grow(names, &cap, n, sizeof(*names));
		names[n] = store_col_strdup(st, 0);
		if (names[n] != NULL)
			n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_strings_free(names, n);
		return store_sql_err(s, rc);
	}
	*names_r = names;
	*count_r = n;
	return STORE_OK;
}

/* ---- status ---- */

int
store_mailbox_status(struct store *s, int64_t mailbox_id,
		     struct store_mailbox_status *st_r)
{
	sqlite3_stmt *st;
	int rc;

	memset(st_r, 0, sizeof(*st_r));
	/* One statement: one consistent snapshot. */
	st = store_stmt(s, "SELECT m.uidnext, m.uidvalidity,"
			   " m.highestmodseq, count(g.id),"
			   " coalesce(sum((g.flags & ?2) = 0), 0),"
			   " coalesce(sum((g.flags & ?3) != 0), 0),"
			   " coalesce(sum(g.size), 0),"
			   " coalesce(sum(g.uid >= m.recent_uid), 0)"
			   " FROM mailboxes m LEFT JOIN messages g"
			   " ON g.mailbox_id = m.id"
			   " WHERE m.id = ?1 GROUP BY m.id");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, STORE_FLAG_SEEN);
	sqlite3_bind_int(st, 3, STORE_FLAG_DELETED);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		st_r->uidnext = (uint32_t)sqlite3_column_int64(st, 0);
		st_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		st_r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 2);
		st_r->messages = (uint32_t)sqlite3_column_int64(st, 3);
		st_r->unseen = (uint32_t)sqlite3_column_int64(st, 4);
		st_r->deleted = (uint32_t)sqlite3_column_int64(st, 5);
		st_r->size = (uint64_t)sqlite3_column_int64(st, 6);
		st_r->recent = (uint32_t)sqlite3_column_int64(st, 7);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no mailbox %lld",
				  (long long)mailbox_id);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}

int
store_mailbox_claim_recent(struct store *s, int64_t mailbox_id,
			   uint32_t from_uid, uint32_t to_uid)
{
	sqlite3_stmt *st;
	bool relaxed, changed;
	int ret;

	if (to_uid <= from_uid)
		return 0;
	st = store_stmt(s, "UPDATE mailboxes SET recent_uid = ?3"
			   " WHERE id = ?1 AND recent_uid = ?2");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, from_uid);
	sqlite3_bind_int64(st, 3, to_uid);
	/* A claim on its own is not fsynced (WAL, synchronous=NORMAL): it
	   is durable with the next commit that is, and losing it in a
	   power cut only shows those messages as \Recent once more. The
	   event loop must not wait for the disk to answer a SELECT or a
	   NOOP. */
	relaxed = sqlite3_get_autocommit(s->db) &&
		  store_exec_cached(s, "PRAGMA synchronous=NORMAL") ==
			  STORE_OK;
	ret = store_stmt_exec(s, st);
	changed = ret == STORE_OK && sqlite3_changes(s->db) > 0;
	if (relaxed)
		(void)store_exec_cached(s, "PRAGMA synchronous=FULL");
	if (ret != STORE_OK)
		return ret;
	return changed ? 1 : 0;
}

int
store_mailbox_claim_recent_upto(struct store *s, int64_t mailbox_id,
				uint32_t to_uid, uint32_t *from_r)
{
	sqlite3_stmt *st;
	int rc;
	uint32_t from = 0;

	*from_r = 0;
	st = store_stmt(s, "SELECT recent_uid FROM mailboxes WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		from = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no mailbox %lld",
				  (long long)mailbox_id);
	if (rc != SQLITE_ROW)
		return store_sql_err(s, rc);
	if (from >= to_uid)
		return 0;
	st = store_stmt(s, "UPDATE mailboxes SET recent_uid = ?2"
			   " WHERE id = ?1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, to_uid);
	rc = store_stmt_exec(s, st);
	if (rc != STORE_OK)
		return rc;
	*from_r = from;
	return 1;
}
