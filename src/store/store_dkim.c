/* DKIM signing keys per domain (RFC 6376 3.6.1: the selector names the
   DNS record SELECTOR._domainkey.DOMAIN that holds the public key; RFC
   8463 adds ed25519-sha256). A domain may keep several keys so a new
   selector can be published before the old one is withdrawn; the partial
   unique index dkim_keys_active allows one active key per domain, which
   is the one the queue signs with. Security: the PEM private key lives
   in the database, which store_open creates 0600; it is never logged. */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

#define STORE_DKIM_SELECT \
	"SELECT domain, selector, algorithm, private_key, created, active" \
	" FROM dkim_keys"

void
store_dkim_key_clear(struct store_dkim_key *key)
{
	free(key->domain);
	free(key->selector);
	free(key->algorithm);
	if (key->private_key != NULL) {
		/* Do not leave private key bytes in freed memory. */
		memset(key->private_key, 0, strlen(key->private_key));
		free(key->private_key);
	}
	memset(key, 0, sizeof(*key));
}

void
store_dkim_keys_free(struct store_dkim_key *keys, size_t count)
{
	if (keys == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_dkim_key_clear(&keys[i]);
	free(keys);
}

/* Lowercase without a trailing dot, xmalloc'd. */
static char *
store_dkim_domain(const char *domain)
{
	char *d = xstrdup(domain);
	size_t n = strlen(d);

	if (n > 0 && d[n - 1] == '.')
		d[--n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] - 'A' + 'a');
	}
	return d;
}

/* RFC 6376 3.1: selector = sub-domain *( "." sub-domain ); we allow
   letters, digits, '-' and '.', not at either end. */
static bool
store_dkim_selector_valid(const char *sel)
{
	size_t n = strlen(sel);

	if (n == 0 || n > STORE_DKIM_SELECTOR_MAX || sel[0] == '.' ||
	    sel[0] == '-' || sel[n - 1] == '.' || sel[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = sel[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return strstr(sel, "..") == NULL;
}

static int
store_dkim_check(struct store *s, const struct store_dkim_key *key)
{
	if (key->domain == NULL || key->domain[0] == '\0' ||
	    strlen(key->domain) > 253)
		return store_fail(s, STORE_INVALID, "bad DKIM domain");
	if (key->selector == NULL || !store_dkim_selector_valid(key->selector))
		return store_fail(s, STORE_INVALID, "bad DKIM selector");
	if (key->algorithm == NULL ||
	    (strcmp(key->algorithm, "rsa-sha256") != 0 &&
	     strcmp(key->algorithm, "ed25519-sha256") != 0))
		return store_fail(s, STORE_INVALID, "bad DKIM algorithm");
	if (key->private_key == NULL || key->private_key[0] == '\0')
		return store_fail(s, STORE_INVALID, "empty DKIM private key");
	return STORE_OK;
}

static int
store_dkim_insert(struct store *s, const struct store_dkim_key *key,
		  const char *domain)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "UPDATE dkim_keys SET active = 0"
			   " WHERE domain = ? AND active = 1");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	ret = store_stmt_exec(s, st);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "INSERT INTO dkim_keys(domain, selector, algorithm,"
			   " private_key, created, active)"
			   " VALUES (?, ?, ?, ?, ?, 1)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key->selector, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, key->algorithm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, key->private_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5,
			   key->created != 0 ? key->created : store_now());
	return store_stmt_exec(s, st);
}

int
store_dkim_set(struct store *s, const struct store_dkim_key *key)
{
	struct store_tx tx;
	char *domain;
	int ret;

	ret = store_dkim_check(s, key);
	if (ret != STORE_OK)
		return ret;
	domain = store_dkim_domain(key->domain);
	ret = store_tx_begin(s, &tx);
	if (ret == STORE_OK) {
		ret = store_dkim_insert(s, key, domain);
		if (ret == STORE_OK)
			ret = store_tx_commit(s, &tx);
		else
			store_tx_rollback(s, &tx);
	}
	free(domain);
	return ret;
}

static void
store_dkim_row(sqlite3_stmt *st, struct store_dkim_key *k)
{
	k->domain = store_col_strdup(st, 0);
	k->selector = store_col_strdup(st, 1);
	k->algorithm = store_col_strdup(st, 2);
	k->private_key = store_col_strdup(st, 3);
	k->created = sqlite3_column_int64(st, 4);
	k->active = sqlite3_column_int(st, 5) != 0;
}

int
store_dkim_get(struct store *s, const char *domain,
	       struct store_dkim_key *key_r)
{
	sqlite3_stmt *st;
	char *d;
	int rc;

	memset(key_r, 0, sizeof(*key_r));
	st = store_stmt(s, STORE_DKIM_SELECT
			" WHERE domain = ? AND active = 1");
	if (st == NULL)
		return STORE_ERR;
	d = store_dkim_domain(domain);
	sqlite3_bind_text(st, 1, d, -1, SQLITE_TRANSIENT);
	free(d);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_dkim_row(st, key_r);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sql_err(s, rc);
}

int
store_dkim_list(struct store *s, const char *domain,
		struct store_dkim_key **keys_r, size_t *count_r)
{
	struct store_dkim_key *ks = NULL;
	sqlite3_stmt *st;
	size_t n = 0, cap = 0;
	char *d = domain != NULL ? store_dkim_domain(domain) : NULL;
	int rc;

	*keys_r = NULL;
	*count_r = 0;
	st = store_stmt(s, STORE_DKIM_SELECT
			" WHERE ?1 IS NULL OR domain = ?1"
			" ORDER BY domain, created DESC, id DESC");
	if (st == NULL) {
		free(d);
		return STORE_ERR;
	}
	sqlite3_bind_text(st, 1, d, -1, SQLITE_TRANSIENT);
	free(d);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ks = store_grow(ks, &cap, n, sizeof(*ks));
		memset(&ks[n], 0, sizeof(ks[n]));
		store_dkim_row(st, &ks[n++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_dkim_keys_free(ks, n);
		return store_sql_err(s, rc);
	}
	*keys_r = ks;
	*count_r = n;
	return STORE_OK;
}
