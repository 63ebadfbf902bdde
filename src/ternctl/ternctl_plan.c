/* ternctl plan list, and syncing the config's plans into the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cfg.h"
#include "store/store.h"
#include "ternctl/ternctl.h"

int
ternctl_plan_list(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_plan *plans;
	size_t count;
	char q[32], m[32], s[32], r[32], sz[32];
	int ret = store_plan_list(t->store, &plans, &count);

	(void)a;
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "listing plans");
	printf("%-14s %-11s %-10s %-10s %-11s %s\n", "plan", "quota",
	       "messages", "sends/h", "max size", "max rcpts");
	for (size_t i = 0; i < count; i++) {
		const struct store_plan *p = &plans[i];
		printf("%-14s %-11s %-10s %-10s %-11s %s\n", p->name,
		       ternctl_util_limit_bytes(p->quota_bytes, q, sizeof(q)),
		       ternctl_util_limit_count(p->quota_messages, m, sizeof(m)),
		       ternctl_util_limit_count(p->send_per_hour, s, sizeof(s)),
		       p->max_message_bytes == 0 ? "default" :
			       ternctl_util_bytes(p->max_message_bytes, sz, sizeof(sz)),
		       p->max_recipients == 0 ? "default" :
			       ternctl_util_limit_count(p->max_recipients, r, sizeof(r)));
	}
	free(plans);
	return TERNCTL_EXIT_OK;
}

int
ternctl_plan_sync(struct ternctl *t)
{
	for (size_t i = 0; i < t->cfg->plan_count; i++) {
		const struct cfg_plan *cp = &t->cfg->plans[i];
		struct store_plan p = { 0 };
		int ret;

		snprintf(p.name, sizeof(p.name), "%s", cp->name);
		p.quota_bytes = cp->quota_bytes;
		p.quota_messages = cp->quota_messages;
		p.send_per_hour = cp->send_per_hour;
		p.max_message_bytes = cp->max_message_bytes;
		p.max_recipients = cp->max_recipients;
		ret = store_plan_set(t->store, &p);
		if (ret < 0)
			return ternctl_util_store_fail(t, ret, "syncing plans");
	}
	return TERNCTL_EXIT_OK;
}
