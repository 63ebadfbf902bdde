/* ternctl alias add|del|list */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/store.h"
#include "ternctl/ternctl.h"

int
ternctl_alias_add(struct ternctl *t, const struct ternctl_args *a)
{
	char *address = ternctl_util_address(a->pos[0], true);
	char **targets;
	size_t n = a->pos_count - 1;
	int ret = TERNCTL_EXIT_OK;

	if (address == NULL)
		return TERNCTL_EXIT_USAGE;
	targets = xcalloc(n, sizeof(*targets));
	for (size_t i = 0; i < n && ret == TERNCTL_EXIT_OK; i++) {
		targets[i] = ternctl_util_address(a->pos[i + 1], false);
		if (targets[i] == NULL)
			ret = TERNCTL_EXIT_USAGE;
	}
	if (ret == TERNCTL_EXIT_OK)
		ret = ternctl_util_need_domain(t, ternctl_util_address_domain(address));
	if (ret == TERNCTL_EXIT_OK) {
		int r = store_alias_add(t->store, address,
					(const char *const *)targets, n);
		if (r < 0)
			ret = ternctl_util_store_fail(t, r, "adding the alias");
		else
			printf("alias %s added (%zu target%s)\n", address, n,
			       n == 1 ? "" : "s");
	}
	for (size_t i = 0; i < n; i++)
		free(targets[i]);
	free(targets);
	free(address);
	return ret;
}

int
ternctl_alias_del(struct ternctl *t, const struct ternctl_args *a)
{
	char *address = ternctl_util_address(a->pos[0], true);
	int ret;

	if (address == NULL)
		return TERNCTL_EXIT_USAGE;
	ret = store_alias_del(t->store, address);
	if (ret == STORE_NOTFOUND)
		ret = ternctl_util_fail("unknown alias %s", address);
	else if (ret < 0)
		ret = ternctl_util_store_fail(t, ret, "deleting the alias");
	else
		printf("alias %s deleted\n", address);
	free(address);
	return ret;
}

int
ternctl_alias_list(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_alias *al;
	size_t count;
	int ret = store_alias_list(t->store, &al, &count);

	(void)a;
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "listing aliases");
	/* Rows come sorted by address: print one line per address. */
	for (size_t i = 0; i < count; i++) {
		if (i == 0 || strcmp(al[i].address, al[i - 1].address) != 0)
			printf("%s%s -> %s", i == 0 ? "" : "\n", al[i].address,
			       al[i].target);
		else
			printf(", %s", al[i].target);
	}
	if (count > 0)
		printf("\n");
	store_aliases_free(al, count);
	return TERNCTL_EXIT_OK;
}
