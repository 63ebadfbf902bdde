/* The domains tern receives mail for. Names are checked as LDH host
   names (RFC 1035 2.3.1, RFC 1123 2.1: labels of 1-63 letters, digits
   and inner hyphens, 253 bytes in all), stored lowercase without a
   trailing dot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

#define STORE_DOMAIN_MAX_BYTES 253
#define STORE_LABEL_MAX_BYTES 63

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
bool
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
char *
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
int
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
