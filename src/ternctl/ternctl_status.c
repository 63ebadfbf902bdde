/* ternctl status, config show, config check */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cfg.h"
#include "lib/strview.h"
#include "store/store.h"
#include "ternctl/ternctl.h"

/* pid of a running ternd from DATADIR/run/ternd.pid, or 0. */
static long
ternctl_status_pid(const char *datadir)
{
	char path[4096], line[32] = "";
	uint64_t pid;
	FILE *f;

	snprintf(path, sizeof(path), "%s/run/ternd.pid", datadir);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	if (parse_u64_cstr(line, 4194304, &pid) < 0 || pid == 0)
		return 0;
	/* EPERM: it runs, as root, and we switched to the data's owner. */
	return kill((pid_t)pid, 0) == 0 || errno == EPERM ? (long)pid : 0;
}

int
ternctl_status_show(struct ternctl *t, const struct ternctl_args *a)
{
	char **domains;
	struct store_account *accts;
	struct store_queue_entry *qs;
	size_t nd, na, nq;
	uint64_t bytes = 0, msgs = 0;
	int64_t oldest = 0;
	char b[32], tm[64];
	long pid;

	(void)a;
	if (store_domain_list(t->store, &domains, &nd) < 0 ||
	    store_account_list(t->store, NULL, &accts, &na) < 0)
		return ternctl_util_store_fail(t, STORE_ERR, "reading the store");
	if (store_queue_list(t->store, &qs, &nq) < 0) {
		store_strings_free(domains, nd);
		store_accounts_free(accts, na);
		return ternctl_util_store_fail(t, STORE_ERR, "reading the queue");
	}
	for (size_t i = 0; i < na; i++) {
		struct store_quota q = { 0 };
		if (store_quota_get(t->store, accts[i].id, &q) == 0) {
			bytes += q.used_bytes;
			msgs += q.used_messages;
		}
	}
	for (size_t i = 0; i < nq; i++) {
		if (oldest == 0 || qs[i].created < oldest)
			oldest = qs[i].created;
	}
	pid = ternctl_status_pid(store_datadir(t->store));
	printf("ternd     %s", pid != 0 ? "running" : "not running");
	if (pid != 0)
		printf(" (pid %ld)", pid);
	printf("\ndata dir  %s\ndomains   %zu\naccounts  %zu\n", t->datadir, nd, na);
	printf("messages  %llu (%s)\n", (unsigned long long)msgs,
	       ternctl_util_bytes(bytes, b, sizeof(b)));
	printf("queue     %zu message%s", nq, nq == 1 ? "" : "s");
	if (nq > 0)
		printf(", oldest %s", ternctl_util_time(oldest, tm, sizeof(tm)));
	printf("\n");
	store_strings_free(domains, nd);
	store_accounts_free(accts, na);
	store_queue_entries_free(qs, nq);
	return TERNCTL_EXIT_OK;
}

int
ternctl_config_show(struct ternctl *t, const struct ternctl_args *a)
{
	cfg_dump(t->cfg, stdout, ternctl_args_flag(a, "non-default"));
	return TERNCTL_EXIT_OK;
}

int
ternctl_config_check(struct ternctl *t, const struct ternctl_args *a)
{
	char err[1024];
	struct cfg *c = cfg_load(t->config_path, err, sizeof(err));

	(void)a;
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
		return TERNCTL_EXIT_FAIL;
	}
	printf("%s: ok\n", t->config_path);
	cfg_free(&c);
	return TERNCTL_EXIT_OK;
}
