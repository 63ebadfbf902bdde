/* Plans, domains, accounts and aliases, and what SMTP asks of them:
   recipient resolution (account, then alias expanded recursively with
   loop and fan-out limits, then the "@domain" catch-all), envelope
   sender ownership and quota. Addresses are stored normalised
   (lowercase, no trailing dot on the domain) so every lookup is one
   exact index match; callers normalise too, and this file does it again
   on every entry point. Domain names are checked as LDH host names
   (RFC 1035 2.3.1, RFC 1123 2.1: labels of 1-63 letters, digits and
   inner hyphens, 253 bytes in all). Local parts are limited to 64 bytes
   of printable ASCII without spaces (RFC 5321 4.5.3.1.1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

#define STORE_DOMAIN_MAX_BYTES 253
#define STORE_LABEL_MAX_BYTES 63
#define STORE_LOCAL_MAX_BYTES 64

/* ---- shared helpers ---- */

static void
store_account_lower(char *p)
{
	for (; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
}

/* Step a one-column integer query: 1 row (value in *v_r), 0 none, error. */
static int
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
static int
store_account_read_strings(struct store *s, sqlite3_stmt *st,
			   char ***strings_r, size_t *count_r, size_t max)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_DONE;

	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
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

/* ---- plans ---- */

static bool
store_plan_name_valid(const char *name)
{
	size_t len = strnlen(name, STORE_NAME_MAX);

	return len > 0 && len < STORE_NAME_MAX;
}

int
store_plan_set(struct store *s, const struct store_plan *plan)
{
	sqlite3_stmt *st;
	struct store_tx tx;
	int ret;

	if (!store_plan_name_valid(plan->name))
		return store_fail(s, STORE_INVALID, "bad plan name");
	if (plan->quota_bytes > INT64_MAX || plan->quota_messages > INT64_MAX ||
	    plan->max_message_bytes > INT64_MAX)
		return store_fail(s, STORE_INVALID, "plan limit too large");
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "INSERT INTO plans(name, quota_bytes,"
			   " quota_messages, send_per_hour, max_message_bytes,"
			   " max_recipients) VALUES (?, ?, ?, ?, ?, ?)"
			   " ON CONFLICT(name) DO UPDATE SET"
			   " quota_bytes = excluded.quota_bytes,"
			   " quota_messages = excluded.quota_messages,"
			   " send_per_hour = excluded.send_per_hour,"
			   " max_message_bytes = excluded.max_message_bytes,"
			   " max_recipients = excluded.max_recipients");
	if (st == NULL) {
		ret = STORE_ERR;
	} else {
		sqlite3_bind_text(st, 1, plan->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)plan->quota_bytes);
		sqlite3_bind_int64(st, 3, (int64_t)plan->quota_messages);
		sqlite3_bind_int64(st, 4, plan->send_per_hour);
		sqlite3_bind_int64(st, 5, (int64_t)plan->max_message_bytes);
		sqlite3_bind_int64(st, 6, plan->max_recipients);
		ret = store_stmt_exec(s, st);
	}
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}

static uint64_t
store_col_u64(sqlite3_stmt *st, int i)
{
	int64_t v = sqlite3_column_int64(st, i);

	return v < 0 ? 0 : (uint64_t)v;
}

static uint32_t
store_col_u32(sqlite3_stmt *st, int i)
{
	int64_t v = sqlite3_column_int64(st, i);

	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Columns: name, quota_bytes, quota_messages, send_per_hour,
   max_message_bytes, max_recipients. */
static void
store_plan_row(sqlite3_stmt *st, struct store_plan *p)
{
	const unsigned char *name = sqlite3_column_text(st, 0);

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s",
		 name != NULL ? (const char *)name : "");
	p->quota_bytes = store_col_u64(st, 1);
	p->quota_messages = store_col_u64(st, 2);
	p->send_per_hour = store_col_u32(st, 3);
	p->max_message_bytes = store_col_u64(st, 4);
	p->max_recipients = store_col_u32(st, 5);
}

int
store_plan_get(struct store *s, const char *name, struct store_plan *plan_r)
{
	sqlite3_stmt *st;
	int rc;

	memset(plan_r, 0, sizeof(*plan_r));
	if (name == NULL || !store_plan_name_valid(name))
		return 0;
	st = store_stmt(s, "SELECT name, quota_bytes, quota_messages,"
			   " send_per_hour, max_message_bytes, max_recipients"
			   " FROM plans WHERE name = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_plan_row(st, plan_r);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
}

int
store_plan_list(struct store *s, struct store_plan **plans_r,
		size_t *count_r)
{
	struct store_plan *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*plans_r = NULL;
	*count_r = 0;
	st = store_stmt(s, "SELECT name, quota_bytes, quota_messages,"
			   " send_per_hour, max_message_bytes, max_recipients"
			   " FROM plans ORDER BY name");
	if (st == NULL)
		return STORE_ERR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		store_plan_row(st, &v[n++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_sql_err(s, rc);
	}
	*plans_r = v;
	*count_r = n;
	return STORE_OK;
}

/* ---- domains ---- */

static bool
store_domain_label_valid(const char *p, size_t len)
{
	if (len == 0 || len > STORE_LABEL_MAX_BYTES)
		return false;
	if (p[0] == '-' || p[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

/* Is a lowercase name without trailing dot a sane host name? */
static bool
store_domain_valid(const char *name)
{
	size_t len = strlen(name);
	const char *p = name, *end = name + len;

	if (len == 0 || len > STORE_DOMAIN_MAX_BYTES)
		return false;
	for (;;) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t label = dot != NULL ? (size_t)(dot - p)
					   : (size_t)(end - p);

		if (!store_domain_label_valid(p, label))
			return false;
		if (dot == NULL)
			return true;
		p = dot + 1;
	}
}

/* Lowercase, one trailing dot dropped, validated: xmalloc'd or NULL. */
static char *
store_domain_normalize(const char *domain)
{
	char *d = xstrdup(domain);
	size_t len = strlen(d);

	if (len > 0 && d[len - 1] == '.')
		d[len - 1] = '\0';
	store_account_lower(d);
	if (!store_domain_valid(d)) {
		free(d);
		return NULL;
	}
	return d;
}

/* id of a normalised domain: 1 found, 0 not, error. */
static int
store_domain_id(struct store *s, const char *name, int64_t *id_r)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT id FROM domains"
					 " WHERE name = ?");

	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return store_account_step_int(s, st, id_r);
}

int
store_domain_add(struct store *s, const char *domain)
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
	ret = store_domain_id(s, d, NULL);
	if (ret > 0)
		ret = store_fail(s, STORE_EXISTS, "domain %s exists", d);
	if (ret == 0) {
		st = store_stmt(s, "INSERT INTO domains(name) VALUES (?)");
		ret = STORE_ERR;
		if (st != NULL) {
			sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
			ret = store_stmt_exec(s, st);
		}
	}
	free(d);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}

/* Inside the transaction: refuse while accounts or aliases use it. */
static int
store_domain_del_id(struct store *s, const char *name, int64_t id)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "SELECT 1 FROM accounts WHERE domain_id = ?"
			   " UNION ALL SELECT 1 FROM aliases"
			   " WHERE domain_id = ? LIMIT 1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, id);
	ret = store_account_step_int(s, st, NULL);
	if (ret < 0)
		return ret;
	if (ret > 0)
		return store_fail(s, STORE_INVALID,
				  "domain %s still has accounts or aliases",
				  name);
	st = store_stmt(s, "DELETE FROM domains WHERE id = ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, id);
	return store_stmt_exec(s, st);
}

int
store_domain_del(struct store *s, const char *domain)
{
	char *d = store_domain_normalize(domain);
	struct store_tx tx;
	int64_t id = 0;
	int ret;

	if (d == NULL)
		return store_fail(s, STORE_NOTFOUND, "no such domain");
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK) {
		free(d);
		return ret;
	}
	ret = store_domain_id(s, d, &id);
	if (ret == 0)
		ret = store_fail(s, STORE_NOTFOUND, "no domain %s", d);
	else if (ret > 0)
		ret = store_domain_del_id(s, d, id);
	free(d);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}

int
store_domain_exists(struct store *s, const char *domain)
{
	char *d = store_domain_normalize(domain);
	int ret;

	if (d == NULL)
		return 0;
	ret = store_domain_id(s, d, NULL);
	free(d);
	return ret;
}

int
store_domain_list(struct store *s, char ***names_r, size_t *count_r)
{
	sqlite3_stmt *st;

	*names_r = NULL;
	*count_r = 0;
	st = store_stmt(s, "SELECT name FROM domains ORDER BY name");
	if (st == NULL)
		return STORE_ERR;
	return store_account_read_strings(s, st, names_r, count_r, SIZE_MAX);
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
static bool
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
static char *
store_address_normalize_valid(const char *address, const char **domain_r)
{
	char *a = store_address_normalize(address);

	if (a != NULL && !store_address_valid(a, domain_r))
		xfree(&a);
	return a;
}

/* id of the account with a normalised address: 1, 0, error. */
static int
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
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			ids = xreallocarray(ids, cap, sizeof(*ids));
		}
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
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
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

/* ---- aliases ---- */

/* "local@domain" or "@domain", normalised and valid: xmalloc'd or NULL.
   *domain_r points into the result. */
static char *
store_alias_normalize(const char *address, const char **domain_r)
{
	char *d, *a;
	size_t len;

	if (address == NULL)
		return NULL;
	if (address[0] != '@')
		return store_address_normalize_valid(address, domain_r);
	d = store_domain_normalize(address + 1);
	if (d == NULL)
		return NULL;
	len = strlen(d) + 2;
	a = xmalloc(len);
	snprintf(a, len, "@%s", d);
	free(d);
	*domain_r = a + 1;
	return a;
}

static int
store_alias_insert(struct store *s, const char *address, int64_t domain_id,
		   char *const *targets, size_t count)
{
	sqlite3_stmt *st;
	int ret;

	for (size_t i = 0; i < count; i++) {
		st = store_stmt(s, "INSERT OR IGNORE INTO aliases(address,"
				   " target, domain_id) VALUES (?, ?, ?)");
		if (st == NULL)
			return STORE_ERR;
		sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, targets[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, domain_id);
		ret = store_stmt_exec(s, st);
		if (ret != STORE_OK)
			return ret;
	}
	return STORE_OK;
}

static int
store_alias_add_tx(struct store *s, const char *address, const char *domain,
		   char *const *targets, size_t count)
{
	int64_t domain_id = 0;
	int ret = store_domain_id(s, domain, &domain_id);

	if (ret == 0)
		return store_fail(s, STORE_NOTFOUND, "no domain %s", domain);
	if (ret < 0)
		return ret;
	return store_alias_insert(s, address, domain_id, targets, count);
}

/* Normalised targets, or NULL when one is not a valid address. */
static char **
store_alias_targets_normalize(const char *const *targets, size_t count)
{
	char **v = xcalloc(count, sizeof(*v));
	const char *domain;

	for (size_t i = 0; i < count; i++) {
		v[i] = store_address_normalize_valid(targets[i], &domain);
		if (v[i] == NULL) {
			store_strings_free(v, i);
			return NULL;
		}
	}
	return v;
}

int
store_alias_add(struct store *s, const char *address,
		const char *const *targets, size_t count)
{
	const char *domain = NULL;
	char *a, **t;
	struct store_tx tx;
	int ret;

	if (count == 0 || count > STORE_ALIAS_TARGETS_MAX)
		return store_fail(s, STORE_INVALID, "bad alias target count");
	a = store_alias_normalize(address, &domain);
	if (a == NULL)
		return store_fail(s, STORE_INVALID, "bad alias address");
	t = store_alias_targets_normalize(targets, count);
	if (t == NULL) {
		free(a);
		return store_fail(s, STORE_INVALID, "bad alias target");
	}
	ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_alias_add_tx(s, a, domain, t, count);
		if (ret != STORE_OK)
			store_tx_rollback(s, &tx);
		else
			ret = store_tx_commit(s, &tx);
	}
	store_strings_free(t, count);
	free(a);
	return ret;
}

int
store_alias_del(struct store *s, const char *address)
{
	const char *domain;
	char *a = store_alias_normalize(address, &domain);
	sqlite3_stmt *st;
	struct store_tx tx;
	int ret;

	if (a == NULL)
		return store_fail(s, STORE_NOTFOUND, "no such alias");
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK) {
		free(a);
		return ret;
	}
	st = store_stmt(s, "DELETE FROM aliases WHERE address = ?");
	ret = STORE_ERR;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
		ret = store_stmt_exec(s, st);
	}
	if (ret == STORE_OK && sqlite3_changes(s->db) == 0)
		ret = store_fail(s, STORE_NOTFOUND, "no alias %s", a);
	free(a);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}

int
store_alias_list(struct store *s, struct store_alias **aliases_r,
		 size_t *count_r)
{
	struct store_alias *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*aliases_r = NULL;
	*count_r = 0;
	st = store_stmt(s, "SELECT address, target FROM aliases"
			   " ORDER BY address, target");
	if (st == NULL)
		return STORE_ERR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n].address = store_col_strdup(st, 0);
		v[n].target = store_col_strdup(st, 1);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_aliases_free(v, n);
		return store_sql_err(s, rc);
	}
	*aliases_r = v;
	*count_r = n;
	return STORE_OK;
}

void
store_aliases_free(struct store_alias *aliases, size_t count)
{
	if (aliases == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(aliases[i].address);
		free(aliases[i].target);
	}
	free(aliases);
}

/* ---- recipient resolution ---- */

/* One expansion: results so far and the aliases already expanded with
   the shallowest depth they were reached at. An alias is expanded again
   only when reached higher up (its subtree was cut by the depth limit
   before), so loops end and the work stays bounded. */
struct store_resolve {
	struct store *s;
	bool want_remote;
	int64_t *ids;
	size_t id_count, id_cap;
	char **remote;
	size_t remote_count, remote_cap;
	char **seen;
	unsigned *seen_depth;
	size_t seen_count, seen_cap;
	size_t expansions;
};

static void
store_resolve_free(struct store_resolve *r)
{
	free(r->ids);
	store_strings_free(r->remote, r->remote_count);
	store_strings_free(r->seen, r->seen_count);
	free(r->seen_depth);
	memset(r, 0, sizeof(*r));
}

static bool
store_resolve_full(const struct store_resolve *r)
{
	return r->id_count + r->remote_count >= STORE_ALIAS_TARGETS_MAX;
}

static bool
store_resolve_in(char *const *v, size_t n, const char *str)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i], str) == 0)
			return true;
	}
	return false;
}

static void
store_resolve_push(char ***v, size_t *n, size_t *cap, const char *str)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 8 : *cap * 2;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	(*v)[(*n)++] = xstrdup(str);
}

static void
store_resolve_add_id(struct store_resolve *r, int64_t id)
{
	for (size_t i = 0; i < r->id_count; i++) {
		if (r->ids[i] == id)
			return;
	}
	if (store_resolve_full(r))
		return;
	if (r->id_count == r->id_cap) {
		r->id_cap = r->id_cap == 0 ? 8 : r->id_cap * 2;
		r->ids = xreallocarray(r->ids, r->id_cap, sizeof(*r->ids));
	}
	r->ids[r->id_count++] = id;
}

static void
store_resolve_add_remote(struct store_resolve *r, const char *address)
{
	if (!r->want_remote || store_resolve_full(r) ||
	    store_resolve_in(r->remote, r->remote_count, address))
		return;
	store_resolve_push(&r->remote, &r->remote_count, &r->remote_cap,
			   address);
}

/* Must the alias be expanded (now) at this depth? Records the visit. */
static bool
store_resolve_visit(struct store_resolve *r, const char *address,
		    unsigned depth)
{
	size_t i;

	for (i = 0; i < r->seen_count; i++) {
		if (strcmp(r->seen[i], address) == 0)
			break;
	}
	if (i < r->seen_count && r->seen_depth[i] <= depth)
		return false;
	if (r->expansions >= STORE_ALIAS_TARGETS_MAX)
		return false; /* enough work for one address */
	r->expansions++;
	if (i < r->seen_count) {
		r->seen_depth[i] = depth;
		return true;
	}
	if (r->seen_count == r->seen_cap) {
		/* the capacity store_resolve_push is about to choose */
		size_t cap = r->seen_cap == 0 ? 8 : r->seen_cap * 2;

		r->seen_depth = xreallocarray(r->seen_depth, cap,
					      sizeof(*r->seen_depth));
	}
	r->seen_depth[r->seen_count] = depth;
	store_resolve_push(&r->seen, &r->seen_count, &r->seen_cap, address);
	return true;
}

static int store_resolve_alias(struct store_resolve *r, const char *address,
			       unsigned depth);

/* One alias target: an account, another alias, or a remote address. */
static int
store_resolve_target(struct store_resolve *r, const char *target,
		     unsigned depth)
{
	char *t = store_address_normalize(target);
	int64_t id = 0;
	int ret;

	if (t == NULL)
		return STORE_OK;
	ret = store_domain_id(r->s, strrchr(t, '@') + 1, NULL);
	if (ret == 0) {
		store_resolve_add_remote(r, t);
	} else if (ret > 0) {
		ret = store_account_id(r->s, t, &id);
		if (ret > 0)
			store_resolve_add_id(r, id);
		else if (ret == 0 && depth < STORE_ALIAS_DEPTH_MAX)
			ret = store_resolve_alias(r, t, depth + 1);
	}
	free(t);
	return ret < 0 ? ret : STORE_OK;
}

/* The targets of an alias (at most STORE_ALIAS_TARGETS_MAX), read whole
   before recursing since the statement is shared. */
static int
store_alias_targets(struct store *s, const char *address, char ***targets_r,
		    size_t *count_r)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT target FROM aliases"
					 " WHERE address = ? ORDER BY id");

	*targets_r = NULL;
	*count_r = 0;
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	return store_account_read_strings(s, st, targets_r, count_r,
					  STORE_ALIAS_TARGETS_MAX);
}

/* Expand the alias address. 1 it has targets, 0 it is no alias, error. */
static int
store_resolve_alias(struct store_resolve *r, const char *address,
		    unsigned depth)
{
	char **targets;
	size_t n;
	int ret;

	if (!store_resolve_visit(r, address, depth))
		return 1;
	ret = store_alias_targets(r->s, address, &targets, &n);
	if (ret != STORE_OK)
		return ret;
	for (size_t i = 0; i < n && ret == STORE_OK && !store_resolve_full(r);
	     i++)
		ret = store_resolve_target(r, targets[i], depth);
	store_strings_free(targets, n);
	if (ret != STORE_OK)
		return ret;
	return n > 0 ? 1 : 0;
}

/* The kind of a normalised address, results in r. */
static int
store_rcpt_lookup(struct store_resolve *r, const char *address)
{
	const char *domain = strrchr(address, '@') + 1;
	int64_t id = 0;
	char *catchall;
	size_t len;
	int ret;

	ret = store_domain_id(r->s, domain, NULL);
	if (ret <= 0)
		return ret < 0 ? ret : STORE_RCPT_NOT_LOCAL;
	ret = store_account_id(r->s, address, &id);
	if (ret > 0)
		store_resolve_add_id(r, id);
	else if (ret == 0)
		ret = store_resolve_alias(r, address, 1);
	if (ret == 0) {
		/* No account, no alias: the catch-all of the domain. */
		len = strlen(domain) + 2;
		catchall = xmalloc(len);
		snprintf(catchall, len, "@%s", domain);
		ret = store_resolve_alias(r, catchall, 1);
		free(catchall);
	}
	if (ret < 0)
		return ret;
	return r->id_count > 0 || r->remote_count > 0 ? STORE_RCPT_LOCAL
						       : STORE_RCPT_UNKNOWN;
}

int
store_rcpt_resolve(struct store *s, const char *address, int64_t **ids_r,
		   size_t *count_r, char ***remote_r, size_t *remote_count_r)
{
	struct store_resolve r = { .s = s, .want_remote = remote_r != NULL };
	char *a = store_address_normalize(address);
	bool started;
	int kind = STORE_ERR;

	*ids_r = NULL;
	*count_r = 0;
	if (remote_r != NULL)
		*remote_r = NULL;
	if (remote_count_r != NULL)
		*remote_count_r = 0;
	if (a == NULL)
		return STORE_RCPT_UNKNOWN; /* no address: nobody here */
	if (store_read_begin(s, &started) == STORE_OK) {
		kind = store_rcpt_lookup(&r, a);
		store_read_end(s, started);
	}
	free(a);
	if (kind == STORE_RCPT_LOCAL) {
		*ids_r = r.ids;
		*count_r = r.id_count;
		r.ids = NULL;
		if (remote_r != NULL) {
			*remote_r = r.remote;
			if (remote_count_r != NULL)
				*remote_count_r = r.remote_count;
			r.remote = NULL;
			r.remote_count = 0;
		}
	}
	store_resolve_free(&r);
	return kind;
}

/* The address is account_id's own, or an exact alias resolving to it. */
static int
store_may_send_lookup(struct store_resolve *r, int64_t account_id,
		      const char *address)
{
	int64_t id = 0;
	int ret = store_account_id(r->s, address, &id);

	if (ret != 0)
		return ret < 0 ? ret : id == account_id;
	ret = store_resolve_alias(r, address, 1);
	if (ret <= 0)
		return ret;
	for (size_t i = 0; i < r->id_count; i++) {
		if (r->ids[i] == account_id)
			return 1;
	}
	return 0;
}

int
store_account_may_send_as(struct store *s, int64_t account_id,
			  const char *address)
{
	struct store_resolve r = { .s = s, .want_remote = false };
	char *a = store_address_normalize(address);
	bool started;
	int ret;

	if (a == NULL)
		return 0;
	ret = store_read_begin(s, &started);
	if (ret == STORE_OK) {
		ret = store_may_send_lookup(&r, account_id, a);
		store_read_end(s, started);
	}
	store_resolve_free(&r);
	free(a);
	return ret;
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
