/* Retry timing for temporary failures (RFC 5321 4.5.4.1: retry after at
   least 30 minutes is the classic advice, give up after 4-5 days): the
   first retry after queue_retry_min, doubling after each failure up to
   queue_retry_max, and a last attempt exactly at queue_max_age, after
   which the message bounces (RFC 5321 4.5.4.1, 6.1: a DSN, not silence).
   Pure functions of the clock values they are given. Store times are
   unix seconds; delays are rounded up to whole seconds. */
#include "queue/queue_int.h"

uint64_t
queue_retry_delay_ms(uint64_t min_ms, uint64_t max_ms, uint32_t attempts)
{
	uint64_t d = min_ms;

	if (min_ms > max_ms)
		return max_ms;
	for (uint32_t i = 1; i < attempts; i++) {
		if (d > max_ms / 2) {
			d = max_ms;
			break;
		}
		d *= 2;
	}
	return d < max_ms ? d : max_ms;
}

static int64_t
queue_retry_secs(uint64_t ms)
{
	uint64_t s = ms / 1000 + (ms % 1000 != 0);

	if (s == 0)
		s = 1;
	return s > (uint64_t)INT32_MAX ? INT32_MAX : (int64_t)s;
}

bool
queue_retry_schedule(int64_t created, int64_t now, uint32_t attempts,
		     uint64_t min_ms, uint64_t max_ms, uint64_t max_age_ms,
		     int64_t *next_r)
{
	int64_t expire = created + queue_retry_secs(max_age_ms);
	int64_t next;

	if (now >= expire)
		return false;
	next = now + queue_retry_secs(queue_retry_delay_ms(min_ms, max_ms,
							   attempts));
	*next_r = next < expire ? next : expire;
	return true;
}
