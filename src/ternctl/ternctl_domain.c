/* ternctl domain add|del|list|save-sent */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "ternctl/ternctl.h"
#include "lib/xalloc.h"

/* Lowercase, no trailing dot, validated; xmalloc'd or NULL (printed). */
static char *
ternctl_domain_arg(const char *arg)
{
	char *d = xstrdup(arg);
	size_t n = strlen(d);
	const char *why;

	if (n > 0 && d[n - 1] == '.')
		d[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] - 'A' + 'a');
	if (ternctl_util_domain_check(d, &why) < 0) {
		ternctl_util_usage("bad domain '%s': %s", arg, why);
		free(d);
		return NULL;
	}
	return d;
}

int
ternctl_domain_add(struct ternctl *t, const struct ternctl_args *a)
{
	char *d = ternctl_domain_arg(a->pos[0]);
	int ret;

	if (d == NULL)
		return TERNCTL_EXIT_USAGE;
	ret = store_domain_add(t->store, d);
	if (ret == STORE_EXISTS)
		ret = ternctl_util_fail("domain %s exists already", d);
	else if (ret < 0)
		ret = ternctl_util_store_fail(t, ret, "adding the domain");
	else
		printf("domain %s added\n", d);
	free(d);
	return ret < 0 ? TERNCTL_EXIT_FAIL : ret;
}

int
ternctl_domain_del(struct ternctl *t, const struct ternctl_args *a)
{
	char *d = ternctl_domain_arg(a->pos[0]);
	int ret;

	if (d == NULL)
		return TERNCTL_EXIT_USAGE;
	ret = store_domain_del(t->store, d);
	if (ret == STORE_NOTFOUND)
		ret = ternctl_util_fail("unknown domain %s", d);
	else if (ret == STORE_INVALID)
		ret = ternctl_util_fail("domain %s still has accounts or aliases: "
					"delete them first ('ternctl account list %s')",
					d, d);
	else if (ret < 0)
		ret = ternctl_util_store_fail(t, ret, "deleting the domain");
	else
		printf("domain %s deleted\n", d);
	free(d);
	return ret < 0 ? TERNCTL_EXIT_FAIL : ret;
}

int
ternctl_domain_list(struct ternctl *t, const struct ternctl_args *a)
{
	char **names;
	size_t count;
	int ret = store_domain_list(t->store, &names, &count);

	(void)a;
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "listing domains");
	for (size_t i = 0; i < count; i++)
		printf("%s\n", names[i]);
	store_strings_free(names, count);
	return TERNCTL_EXIT_OK;
}

/* "yes" 1, "no" 0, "default" -1, else -2. */
static int
ternctl_domain_switch(const char *arg)
{
	if (strcmp(arg, "yes") == 0)
		return 1;
	if (strcmp(arg, "no") == 0)
		return 0;
	if (strcmp(arg, "default") == 0)
		return -1;
	return -2;
}

int
ternctl_domain_save_sent(struct ternctl *t, const struct ternctl_args *a)
{
	int value = ternctl_domain_switch(a->pos[1]);
	char *d;
	int ret;

	if (value == -2)
		return ternctl_util_usage("bad value '%s': say yes, no or "
					  "default", a->pos[1]);
	d = ternctl_domain_arg(a->pos[0]);
	if (d == NULL)
		return TERNCTL_EXIT_USAGE;
	ret = store_sent_set(t->store, d, value);
	if (ret == STORE_NOTFOUND)
		ret = ternctl_util_fail("unknown domain %s", d);
	else if (ret < 0)
		ret = ternctl_util_store_fail(t, ret, "changing the domain");
	else
		printf("domain %s: save-sent %s\n", d, a->pos[1]);
	free(d);
	return ret < 0 ? TERNCTL_EXIT_FAIL : ret;
}
