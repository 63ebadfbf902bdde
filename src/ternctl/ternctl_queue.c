/* ternctl queue list|show|delete|retry|flush: the outbound queue. The
   queue process polls the store, so making an entry due is enough. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lib/strview.h"
#include "store/store.h"
#include "ternctl/ternctl.h"

static int
ternctl_queue_id(const char *arg, int64_t *id_r)
{
	uint64_t n;

	if (parse_u64_cstr(arg, INT64_MAX, &n) < 0 || n == 0)
		return ternctl_util_usage("bad queue id '%s': expected a number "
					  "from 'ternctl queue list'", arg);
	*id_r = (int64_t)n;
	return TERNCTL_EXIT_OK;
}

static size_t
ternctl_queue_pending(const struct store_queue_entry *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->rcpt_count; i++)
		n += e->rcpts[i].status == 0;
	return n;
}

int
ternctl_queue_list(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_queue_entry *es;
	size_t count;
	char c[64], n[64];
	int ret = store_queue_list(t->store, &es, &count);

	(void)a;
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "listing the queue");
	for (size_t i = 0; i < count; i++) {
		printf("%-8lld %-24s <%s> %zu/%zu recipients pending, %u attempts, next %s\n",
		       (long long)es[i].id,
		       ternctl_util_time(es[i].created, c, sizeof(c)),
		       es[i].sender, ternctl_queue_pending(&es[i]),
		       es[i].rcpt_count, es[i].attempts,
		       ternctl_util_time(es[i].next_attempt, n, sizeof(n)));
	}
	if (count == 0)
		printf("queue is empty\n");
	store_queue_entries_free(es, count);
	return TERNCTL_EXIT_OK;
}

int
ternctl_queue_show(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_queue_entry e;
	char c[64], n[64], sz[32];
	int64_t id = 0;
	int ret = ternctl_queue_id(a->pos[0], &id);

	if (ret != TERNCTL_EXIT_OK)
		return ret;
	ret = store_queue_get(t->store, id, &e);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "reading the queue");
	if (ret == 0)
		return ternctl_util_fail("no queued message %lld", (long long)id);
	printf("id        %lld\nsender    <%s>\nsize      %s\ncreated   %s\n"
	       "attempts  %u\nnext      %s\n",
	       (long long)e.id, e.sender,
	       ternctl_util_bytes(e.size, sz, sizeof(sz)),
	       ternctl_util_time(e.created, c, sizeof(c)), e.attempts,
	       ternctl_util_time(e.next_attempt, n, sizeof(n)));
	for (size_t i = 0; i < e.rcpt_count; i++) {
		const struct store_queue_rcpt *r = &e.rcpts[i];
		printf("rcpt      <%s> %s%s%s\n", r->address,
		       r->status == 0 ? "pending" : r->status == 2 ? "delivered" :
							       "failed",
		       r->last_reply != NULL ? ": " : "",
		       r->last_reply != NULL ? r->last_reply : "");
	}
	store_queue_entry_clear(&e);
	return TERNCTL_EXIT_OK;
}

int
ternctl_queue_delete(struct ternctl *t, const struct ternctl_args *a)
{
	int64_t id = 0;
	int ret = ternctl_queue_id(a->pos[0], &id);

	if (ret != TERNCTL_EXIT_OK)
		return ret;
	ret = store_queue_delete(t->store, id);
	if (ret == STORE_NOTFOUND)
		return ternctl_util_fail("no queued message %lld", (long long)id);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "deleting from the queue");
	printf("queued message %lld deleted\n", (long long)id);
	return TERNCTL_EXIT_OK;
}

static int
ternctl_queue_make_due(struct ternctl *t, struct store_queue_entry *e)
{
	e->next_attempt = (int64_t)time(NULL);
	return store_queue_update(t->store, e);
}

int
ternctl_queue_retry(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_queue_entry e;
	int64_t id = 0;
	int ret = ternctl_queue_id(a->pos[0], &id);

	if (ret != TERNCTL_EXIT_OK)
		return ret;
	ret = store_queue_get(t->store, id, &e);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "reading the queue");
	if (ret == 0)
		return ternctl_util_fail("no queued message %lld", (long long)id);
	ret = ternctl_queue_make_due(t, &e);
	store_queue_entry_clear(&e);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "updating the queue");
	printf("queued message %lld is due now\n", (long long)id);
	return TERNCTL_EXIT_OK;
}

int
ternctl_queue_flush(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_queue_entry *es;
	size_t count;
	int ret = store_queue_list(t->store, &es, &count);

	(void)a;
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "listing the queue");
	for (size_t i = 0; i < count && ret >= 0; i++)
		ret = ternctl_queue_make_due(t, &es[i]);
	store_queue_entries_free(es, count);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "updating the queue");
	printf("%zu queued message%s due now\n", count, count == 1 ? " is" : "s are");
	return TERNCTL_EXIT_OK;
}
