/* Aliases and what SMTP asks of them: recipient resolution (account,
   then alias expanded recursively with loop and fan-out limits, then the
   "@domain" catch-all) and envelope sender ownership. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

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
		v = store_grow(v, &cap, n, sizeof(*v));
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
