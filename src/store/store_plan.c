/* Plans: storage and message quota, sending limit, message size and
   recipient limits. ternd writes the config's plans at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store_int.h"

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
		v = store_grow(v, &cap, n, sizeof(*v));
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
