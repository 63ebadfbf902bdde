/* Accounts and their quota. Addresses are stored normalised (lowercase,
   no trailing dot on the domain) so every lookup is one exact index
   match; callers normalise too, and this file does it again on every
   entry point. Local parts are limited to 64 bytes of printable ASCII
   without spaces (RFC 5321 4.5.3.1.1). Also the small row helpers the
   plan, domain and alias files share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

#define STORE_LOCAL_MAX_BYTES 64

/* ---- shared helpers ---- */

void
store_account_lower(char *p)
{
	for (; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
}

/* Step a one-column integer query: 1 row (value in *v_r), 0 none, error. */
int
store_account_step_int(struct store *s, sqlite3_stmt *st, int64_t *v_r)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW && v_r != NULL)
		*v_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
}

/* Every row's column 0 as an xmalloc'd string array. */
int
store_account_read_strings(struct store *s, sqlite3_stmt *st,
			   char ***strings_r, size_t *count_r, size_t max)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_DONE;

	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = store_grow(v, &cap, n, sizeof(*v));
		v[n] = store_col_strdup(st, 0);
		if (v[n] != NULL)
			n++;
	}
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE; /* stopped at max */
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_strings_free(v, n);
		return store_sql_err(s, rc);
	}
	*strings_r = v;
	*count_r = n;
	return STORE_OK;
}

void
store_strings_free(char **strings, size_t count)
{
	if (strings == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(strings[i]);
	free(strings);
}

uint64_t
store_col_u64(sqlite3_stmt *st, int i)
{
	int64_t v = sqlite3_column_int64(st, i);

	return v < 0 ? 0 : (uint64_t)v;
}

uint32_t
store_col_u32(sqlite3_stmt *st, int i)
{
	int64_t v = sqlite3_column_int64(st, i);

	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* ---- accounts ---- */

void
store_account_clear(struct store_account *acct)
{
	free(acct->address);
	free(acct->plan);
	free(acct->password_hash);
	free(acct->scram);
	memset(acct, 0, sizeof(*acct));
}

char *
store_address_normalize(const char *address)
{
	const char *at;
	char *a;
	size_t len;

	if (address == NULL)
		return NULL;
	at = strrchr(address, '@');
	if (at == NULL || at == address || at[1] == '\0')
		return NULL;
	a = xstrdup(address);
	len = strlen(a);
	if (a[len - 1] == '.')
		a[--len] = '\0';
	if (a[len - 1] == '@') {
		free(a);
		return NULL;
	}
	store_account_lower(a);
	return a;
}

/* A normalised address we are willing to store: sane local part and
   domain. Points *domain_r into address. */
bool
store_address_valid(const char *address, const char **domain_r)
{
	const char *at = strrchr(address, '@');

	if (at == NULL || at == address ||
	    (size_t)(at - address) > STORE_LOCAL_MAX_BYTES)
		return false;
	for (const char *p = address; p < at; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c >= 0x7f)
			return false;
	}
	*domain_r = at + 1;
	return store_domain_valid(at + 1);
}

/* Normalised and valid for storing, or NULL. */
char *
store_address_normalize_valid(const char *address, const char **domain_r)
{
	char *a = store_address_normalize(address);

	if (a != NULL && !store_address_valid(a, domain_r))
		xfree(&a);
	return a;
}

/* id of the account with a normalised address: 1, 0, error. */
int
store_account_id(struct store *s, const char *address, int64_t *id_r)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT id FROM accounts"
					 " WHERE address = ?");

	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	return store_account_step_int(s, st, id_r);
}

/* The mailboxes every account starts with (RFC 6154 special-use). */
static const struct {
	const char *name;
	const char *special_use;
} store_account_boxes[] = {
	{ "INBOX", NULL },	   { "Sent", "\\Sent" },
	{ "Drafts", "\\Drafts" },  { "Trash", "\\Trash" },
	{ "Junk", "\\Junk" },	   { "Archive", "\\Archive" },
};

static int
store_account_add_boxes(struct store *s, int64_t account_id)
{
	sqlite3_stmt *st;
	int64_t box_id;
	int ret;

	for (size_t i = 0; i < sizeof(store_account_boxes) /
					sizeof(store_account_boxes[0]);
	     i++) {
		ret = store_mailbox_insert(s, account_id,
					   store_account_boxes[i].name,
					   store_account_boxes[i].special_use,
					   &box_id);
		if (ret != STORE_OK)
			return ret;
		st = store_stmt(s, "INSERT OR IGNORE INTO subscriptions"
				   "(account_id, name) VALUES (?, ?)");
		if (st == NULL)
			return STORE_ERR;
		sqlite3_bind_int64(st, 1, account_id);
		sqlite3_bind_text(st, 2, store_account_boxes[i].name, -1,
				  SQLITE_STATIC);
		ret = store_stmt_exec(s, st);
		if (ret != STORE_OK)
			return ret;
	}
	return STORE_OK;
}

/* Inside the transaction: checks, the row, then its mailboxes. */
static int
store_account_insert(struct store *s, const char *address,
		     const char *domain, const char *plan,
		     const char *password_hash, const char *scram,
		     int64_t *id_r)
{
	struct store_plan p;
	sqlite3_stmt *st;
	int64_t domain_id = 0;
	int ret;

	ret = store_domain_id(s, domain, &domain_id);
	if (ret == 0)
		return store_fail(s, STORE_NOTFOUND, "no domain %s", domain);
	if (ret < 0)
		return ret;
	ret = store_plan_get(s, plan, &p);
	if (ret == 0)
		return store_fail(s, STORE_NOTFOUND, "no plan %s", plan);
	if (ret < 0)
		return ret;
	ret = store_account_id(s, address, NULL);
	if (ret > 0)
		return store_fail(s, STORE_EXISTS, "account %s exists",
				  address);
	if (ret < 0)
		return ret;
	st = store_stmt(s, "INSERT INTO accounts(address, domain_id, plan,"
			   " password_hash, scram, created)"
			   " VALUES (?, ?, ?, ?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, domain_id);
	sqlite3_bind_text(st, 3, plan, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, password_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, scram, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, store_now());
	ret = store_stmt_exec(s, st);
	if (ret != STORE_OK)
		return ret;
	*id_r = sqlite3_last_insert_rowid(s->db);
	return store_account_add_boxes(s, *id_r);
}

int
store_account_add(struct store *s, const char *address, const char *plan,
		  const char *password_hash, const char *scram, int64_t *id_r)
{
	const char *domain = NULL;
	char *a = store_address_normalize_valid(address, &domain);
	struct store_tx tx;
	int64_t id = 0;
	int ret;

	if (a == NULL)
		return store_fail(s, STORE_INVALID, "bad address");
	if (plan == NULL) {
		free(a);
		return store_fail(s, STORE_INVALID, "no plan given");
	}
	ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_account_insert(s, a, domain, plan, password_hash,
					   scram, &id);
		if (ret != STORE_OK)
			store_tx_rollback(s, &tx);
		else
			ret = store_tx_commit(s, &tx);
	}
	free(a);
	if (ret == STORE_OK && id_r != NULL)
		*id_r = id;
	return ret;
}

/* Columns: id, address, plan, password_hash, scram, created. */
static void
store_account_row(sqlite3_stmt *st, struct store_account *acct)
{
	acct->id = sqlite3_column_int64(st, 0);
	acct->address = store_col_strdup(st, 1);
	acct->plan = store_col_strdup(st, 2);
	acct->password_hash = store_col_strdup(st, 3);
	acct->scram = store_col_strdup(st, 4);
	acct->created = sqlite3_column_int64(st, 5);
}

static int
store_account_get_one(struct store *s, sqlite3_stmt *st,
		      struct store_account *acct_r)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		store_account_row(st, acct_r);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
}

int
store_account_get(struct store *s, const char *address,
		  struct store_account *acct_r)
{
	char *a = store_address_normalize(address);
	sqlite3_stmt *st;
	int ret;

	memset(acct_r, 0, sizeof(*acct_r));
	if (a == NULL)
		return 0;
	st = store_stmt(s, "SELECT id, address, plan, password_hash, scram,"
			   " created FROM accounts WHERE address = ?");
	if (st == NULL) {
		free(a);
		return STORE_ERR;
	}
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	ret = store_account_get_one(s, st, acct_r);
	free(a);
	return ret;
}

int
store_account_get_by_id(struct store *s, int64_t id,
			struct store_account *acct_r)
{
	sqlite3_stmt *st;

	memset(acct_r, 0, sizeof(*acct_r));
	st = store_stmt(s, "SELECT id, address, plan, password_hash, scram,"
			   " created FROM accounts WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	return store_account_get_one(s, st, acct_r);
}

/* Run a prepared UPDATE in its own (nestable) transaction; no changed
   row is STORE_NOTFOUND. */
static int
store_account_update(struct store *s, sqlite3_stmt *st,
		     const char *address)
{
	int ret = store_stmt_exec(s, st);

	if (ret == STORE_OK && sqlite3_changes(s->db) == 0)
		ret = store_fail(s, STORE_NOTFOUND, "no account %s", address);
	return ret;
}

int
store_account_set_password(struct store *s, const char *address,
			   const char *password_hash, const char *scram)
{
	char *a = store_address_normalize(address);
	sqlite3_stmt *st;
	struct store_tx tx;
	int ret;

	if (a == NULL)
		return store_fail(s, STORE_NOTFOUND, "no such account");
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK) {
		free(a);
		return ret;
	}
	st = store_stmt(s, "UPDATE accounts SET password_hash = ?, scram = ?"
			   " WHERE address = ?");
	ret = STORE_ERR;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, password_hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, scram, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, a, -1, SQLITE_STATIC);
		ret = store_account_update(s, st, a);
	}
	free(a);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}

static int
store_account_set_plan_tx(struct store *s, const char *address,
			  const char *plan)
{
	struct store_plan p;
	sqlite3_stmt *st;
	int ret;

	ret = store_plan_get(s, plan, &p);
	if (ret == 0)
		return store_fail(s, STORE_NOTFOUND, "no plan %s", plan);
	if (ret < 0)
		return ret;
	st = store_stmt(s, "UPDATE accounts SET plan = ? WHERE address = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, p.name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, address, -1, SQLITE_STATIC);
	return store_account_update(s, st, address);
}

int
store_account_set_plan(struct store *s, const char *address,
		       const char *plan)
{
	char *a = store_address_normalize(address);
	struct store_tx tx;
	int ret;

	if (a == NULL)
		return store_fail(s, STORE_NOTFOUND, "no such account");
	ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_account_set_plan_tx(s, a, plan);
		if (ret != STORE_OK)
			store_tx_rollback(s, &tx);
		else
			ret = store_tx_commit(s, &tx);
	}
	free(a);
	return ret;
}

/* Purge every mailbox's messages (blob references, quota). The ids are
   read first: the purge runs statements of its own. */
static int
store_account_purge(struct store *s, int64_t account_id)
{
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, ret = STORE_OK;

	st = store_stmt(s, "SELECT id FROM mailboxes WHERE account_id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ids = store_grow(ids, &cap, n, sizeof(*ids));
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		ret = store_sql_err(s, rc);
	for (size_t i = 0; i < n && ret == STORE_OK; i++)
		ret = store_msg_purge_mailbox(s, ids[i]);
	free(ids);
	return ret;
}

/* The statements that remove an account's rows, in dependency order;
   each takes ?1 = account id, ?2 = address. */
static const char *const store_account_del_sql[] = {
	("DELETE FROM expunged WHERE mailbox_id IN"
	 " (SELECT id FROM mailboxes WHERE account_id = ?1)"),
	"DELETE FROM mailboxes WHERE account_id = ?1",
	"DELETE FROM subscriptions WHERE account_id = ?1",
	"DELETE FROM send_log WHERE account_id = ?1",
	"DELETE FROM aliases WHERE target = ?2",
	"DELETE FROM accounts WHERE id = ?1",
};

static int
store_account_del_tx(struct store *s, const char *address)
{
	sqlite3_stmt *st;
	int64_t id = 0;
	int ret;

	ret = store_account_id(s, address, &id);
	if (ret == 0)
		return store_fail(s, STORE_NOTFOUND, "no account %s", address);
	if (ret < 0)
		return ret;
	ret = store_account_purge(s, id);
	for (size_t i = 0; ret == STORE_OK &&
			   i < sizeof(store_account_del_sql) /
				       sizeof(store_account_del_sql[0]);
	     i++) {
		st = store_stmt(s, store_account_del_sql[i]);
		if (st == NULL)
			return STORE_ERR;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, address, -1, SQLITE_STATIC);
		ret = store_stmt_exec(s, st);
	}
	if (ret == STORE_OK)
		store_event_add(s, id, 0, 0);
	return ret;
}

int
store_account_del(struct store *s, const char *address)
{
	char *a = store_address_normalize(address);
	struct store_tx tx;
	int ret;

	if (a == NULL)
		return store_fail(s, STORE_NOTFOUND, "no such account");
	ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_account_del_tx(s, a);
		if (ret != STORE_OK)
			store_tx_rollback(s, &tx);
		else
			ret = store_tx_commit(s, &tx);
	}
	free(a);
	return ret;
}

static int
store_account_read_list(struct store *s, sqlite3_stmt *st,
			struct store_account **accts_r, size_t *count_r)
{
	struct store_account *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = store_grow(v, &cap, n, sizeof(*v));
		store_account_row(st, &v[n++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_accounts_free(v, n);
		return store_sql_err(s, rc);
	}
	*accts_r = v;
	*count_r = n;
	return STORE_OK;
}

int
store_account_list(struct store *s, const char *domain,
		   struct store_account **accts_r, size_t *count_r)
{
	char *d = NULL;
	sqlite3_stmt *st;
	int ret;

	*accts_r = NULL;
	*count_r = 0;
	if (domain == NULL) {
		st = store_stmt(s, "SELECT id, address, plan, password_hash,"
				   " scram, created FROM accounts"
				   " ORDER BY address");
	} else {
		d = store_domain_normalize(domain);
		if (d == NULL)
			return STORE_OK; /* no such domain: no accounts */
		st = store_stmt(s, "SELECT a.id, a.address, a.plan,"
				   " a.password_hash, a.scram, a.created"
				   " FROM accounts a JOIN domains d"
				   " ON d.id = a.domain_id WHERE d.name = ?"
				   " ORDER BY a.address");
		if (st != NULL)
			sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
	}
	ret = st == NULL ? STORE_ERR
			 : store_account_read_list(s, st, accts_r, count_r);
	free(d);
	return ret;
}

void
store_accounts_free(struct store_account *accts, size_t count)
{
	if (accts == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_account_clear(&accts[i]);
	free(accts);
}
/* ---- quota ---- */

int
store_quota_get(struct store *s, int64_t account_id,
		struct store_quota *quota_r)
{
	sqlite3_stmt *st;
	int rc;

	memset(quota_r, 0, sizeof(*quota_r));
	st = store_stmt(s, "SELECT a.used_bytes, a.used_messages,"
			   " p.quota_bytes, p.quota_messages FROM accounts a"
			   " LEFT JOIN plans p ON p.name = a.plan"
			   " WHERE a.id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		quota_r->used_bytes = store_col_u64(st, 0);
		quota_r->used_messages = store_col_u64(st, 1);
		quota_r->limit_bytes = store_col_u64(st, 2);
		quota_r->limit_messages = store_col_u64(st, 3);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no account %lld",
				  (long long)account_id);
	return rc == SQLITE_ROW ? STORE_OK : store_sql_err(s, rc);
}
