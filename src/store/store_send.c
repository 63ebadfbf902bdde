/* Sending limits: the send_log table records how many recipients each
   account sent at which time, so SMTP submission can enforce the plan's
   send_per_hour over a sliding window (smtp_deliver_check_rate asks for
   the last 3600 seconds). Recording also prunes the account's rows older
   than STORE_SEND_KEEP_SECS, so the table stays small without a separate
   cleanup job. Times are unix seconds given by the caller (the event
   loop's cached clock), which keeps the functions testable. */
#include "store/store_int.h"

/* Longest window anyone asks about (ternctl shows the last hour). */
#define STORE_SEND_KEEP_SECS 86400

int
store_send_count(struct store *s, int64_t account_id, int64_t since,
		 uint64_t *count_r)
{
	sqlite3_stmt *st;
	int64_t sum = 0;
	int rc;

	*count_r = 0;
	st = store_stmt(s, "SELECT COALESCE(SUM(count), 0) FROM send_log"
			   " WHERE account_id = ? AND time >= ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, since);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		sum = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_sql_err(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc);
	*count_r = sum < 0 ? 0 : (uint64_t)sum;
	return STORE_OK;
}

static int
store_send_insert(struct store *s, int64_t account_id, int64_t now,
		  uint32_t count)
{
	sqlite3_stmt *st;
	int ret;

	st = store_stmt(s, "INSERT INTO send_log(account_id, time, count)"
			   " VALUES (?, ?, ?)");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, count);
	ret = store_stmt_exec(s, st);
	if (ret != STORE_OK)
		return ret;
	st = store_stmt(s, "DELETE FROM send_log"
			   " WHERE account_id = ? AND time < ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, now - STORE_SEND_KEEP_SECS);
	return store_stmt_exec(s, st);
}

int
store_send_record(struct store *s, int64_t account_id, int64_t now,
		  uint32_t count)
{
	struct store_tx tx;
	int ret;

	if (count == 0)
		return STORE_OK;
	ret = store_tx_begin(s, &tx);
	if (ret != STORE_OK)
		return ret;
	ret = store_send_insert(s, account_id, now, count);
	if (ret != STORE_OK) {
		store_tx_rollback(s, &tx);
		return ret;
	}
	return store_tx_commit(s, &tx);
}

int
store_send_oldest(struct store *s, int64_t account_id, int64_t since,
		  int64_t *time_r)
{
	sqlite3_stmt *st;
	int rc;

	*time_r = 0;
	st = store_stmt(s, "SELECT MIN(time) FROM send_log"
			   " WHERE account_id = ? AND time >= ?");
	if (st == NULL)
		return STORE_ERR;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, since);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*time_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_sql_err(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc);
	return STORE_OK;
}
