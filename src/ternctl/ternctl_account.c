/* ternctl account add|passwd|plan|del|list|show|import */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "lib/xalloc.h"
#include "store/store.h"
#include "ternctl/ternctl.h"

static int
ternctl_account_need_plan(struct ternctl *t, const char *plan)
{
	struct store_plan p;
	int ret = store_plan_get(t->store, plan, &p);

	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "plan lookup");
	if (ret == 0)
		return ternctl_util_fail("unknown plan %s: see 'ternctl plan list'",
					 plan);
	return TERNCTL_EXIT_OK;
}

/* Create address with the given hashes after the common checks. */
static int
ternctl_account_create(struct ternctl *t, const char *address,
		       const char *plan, const char *hash, const char *scram)
{
	int ret = ternctl_util_need_domain(t, ternctl_util_address_domain(address));

	if (ret != TERNCTL_EXIT_OK)
		return ret;
	ret = ternctl_account_need_plan(t, plan);
	if (ret != TERNCTL_EXIT_OK)
		return ret;
	ret = store_account_add(t->store, address, plan, hash, scram, NULL);
	if (ret == STORE_EXISTS)
		return ternctl_util_fail("account %s exists already", address);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "creating the account");
	printf("account %s added (plan %s)\n", address, plan);
	return TERNCTL_EXIT_OK;
}

int
ternctl_account_add(struct ternctl *t, const struct ternctl_args *a)
{
	char *address = ternctl_util_address(a->pos[0], false);
	const char *plan = ternctl_args_opt(a, "plan");
	char *password = NULL, *hash = NULL, *scram = NULL;
	int ret = TERNCTL_EXIT_FAIL;

	if (address == NULL)
		return TERNCTL_EXIT_USAGE;
	if (plan == NULL)
		plan = TERNCTL_PLAN_DEFAULT;
	/* Check before asking for a password. */
	ret = ternctl_util_need_domain(t, ternctl_util_address_domain(address));
	if (ret != TERNCTL_EXIT_OK)
		goto out;
	password = ternctl_util_read_password(ternctl_args_flag(a, "password-stdin"));
	if (password == NULL) {
		ret = TERNCTL_EXIT_FAIL;
		goto out;
	}
	hash = auth_password_hash(password);
	scram = auth_scram_secrets_make(password, AUTH_SCRAM_ITERATIONS_DEFAULT);
	if (hash == NULL) {
		ret = ternctl_util_fail("hashing the password failed");
		goto out;
	}
	ret = ternctl_account_create(t, address, plan, hash, scram);
out:
	ternctl_util_secret_free(&password);
	free(hash);
	free(scram);
	free(address);
	return ret;
}

/* Accept what auth_password_verify understands. */
static bool
ternctl_account_hash_ok(const char *h)
{
	static const char *const prefixes[] = {
		"$argon2id$", "$argon2i$", "$6$", "$5$", "$y$", "$2b$", "$2y$",
		"$1$", "{ARGON2ID}", "{SHA512-CRYPT}", "{SHA256-CRYPT}",
		"{BLF-CRYPT}", "{CRYPT}", "{MD5-CRYPT}",
	};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0)
			return auth_password_verify(h, "", 0) >= 0;
	}
	return false;
}

int
ternctl_account_import(struct ternctl *t, const struct ternctl_args *a)
{
	char *address = ternctl_util_address(a->pos[0], false);
	const char *plan = ternctl_args_opt(a, "plan");
	char *hash;
	int ret;

	if (address == NULL)
		return TERNCTL_EXIT_USAGE;
	hash = ternctl_util_read_line("password hash");
	if (hash == NULL) {
		free(address);
		return TERNCTL_EXIT_FAIL;
	}
	if (!ternctl_account_hash_ok(hash)) {
		ret = ternctl_util_fail("unsupported password hash: expected "
					"argon2, $6$, $5$, $y$, $2b$ or $1$ crypt");
	} else {
		/* No SCRAM secrets can be derived from a hash: SCRAM logins
		   work after the next password change. */
		ret = ternctl_account_create(t, address,
					     plan != NULL ? plan : TERNCTL_PLAN_DEFAULT,
					     hash, NULL);
	}
	ternctl_util_secret_free(&hash);
	free(address);
	return ret;
}

int
ternctl_account_passwd(struct ternctl *t, const struct ternctl_args *a)
{
	char *address = ternctl_util_address(a->pos[0], false);
	struct store_account acct;
	char *password = NULL, *hash = NULL, *scram = NULL;
	int ret;

	if (address == NULL)
		return TERNCTL_EXIT_USAGE;
	ret = store_account_get(t->store, address, &acct);
	if (ret <= 0) {
		ret = ret < 0 ? ternctl_util_store_fail(t, ret, "account lookup") :
				ternctl_util_fail("unknown account %s", address);
		goto out;
	}
	store_account_clear(&acct);
	password = ternctl_util_read_password(ternctl_args_flag(a, "password-stdin"));
	if (password == NULL) {
		ret = TERNCTL_EXIT_FAIL;
		goto out;
	}
	hash = auth_password_hash(password);
	scram = auth_scram_secrets_make(password, AUTH_SCRAM_ITERATIONS_DEFAULT);
	ret = hash == NULL ? STORE_ERR :
			     store_account_set_password(t->store, address, hash, scram);
	if (ret < 0)
		ret = ternctl_util_store_fail(t, ret, "setting the password");
	else
		printf("password of %s changed\n", address);
out:
	ternctl_util_secret_free(&password);
	free(hash);
	free(scram);
	free(address);
	return ret;
}

int
ternctl_account_plan(struct ternctl *t, const struct ternctl_args *a)
{
	char *address = ternctl_util_address(a->pos[0], false);
	const char *plan = a->pos[1];
	int ret;

	if (address == NULL)
		return TERNCTL_EXIT_USAGE;
	ret = ternctl_account_need_plan(t, plan);
	if (ret == TERNCTL_EXIT_OK) {
		ret = store_account_set_plan(t->store, address, plan);
		if (ret == STORE_NOTFOUND)
			ret = ternctl_util_fail("unknown account %s", address);
		else if (ret < 0)
			ret = ternctl_util_store_fail(t, ret, "changing the plan");
		else
			printf("account %s is now on plan %s\n", address, plan);
	}
	free(address);
	return ret;
}

int
ternctl_account_del(struct ternctl *t, const struct ternctl_args *a)
{
	char *address = ternctl_util_address(a->pos[0], false);
	int ret;

	if (address == NULL)
		return TERNCTL_EXIT_USAGE;
	ret = store_account_del(t->store, address);
	if (ret == STORE_NOTFOUND)
		ret = ternctl_util_fail("unknown account %s", address);
	else if (ret < 0)
		ret = ternctl_util_store_fail(t, ret, "deleting the account");
	else
		printf("account %s deleted\n", address);
	free(address);
	return ret;
}

int
ternctl_account_list(struct ternctl *t, const struct ternctl_args *a)
{
	const char *domain = a->pos_count > 0 ? a->pos[0] : NULL;
	struct store_account *accts;
	size_t count;
	int ret;

	if (domain != NULL) {
		ret = ternctl_util_need_domain(t, domain);
		if (ret != TERNCTL_EXIT_OK)
			return ret;
	}
	ret = store_account_list(t->store, domain, &accts, &count);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "listing accounts");
	for (size_t i = 0; i < count; i++) {
		struct store_quota q = { 0 };
		char used[32];
		store_quota_get(t->store, accts[i].id, &q);
		printf("%-40s %-14s %s\n", accts[i].address, accts[i].plan,
		       ternctl_util_bytes(q.used_bytes, used, sizeof(used)));
	}
	store_accounts_free(accts, count);
	return TERNCTL_EXIT_OK;
}

int
ternctl_account_show(struct ternctl *t, const struct ternctl_args *a)
{
	char *address = ternctl_util_address(a->pos[0], false);
	struct store_account acct;
	struct store_quota q = { 0 };
	struct store_plan plan = { 0 };
	uint64_t sent = 0;
	char b1[32], b2[32], b3[32];
	int64_t now = (int64_t)time(NULL);
	int ret;

	if (address == NULL)
		return TERNCTL_EXIT_USAGE;
	ret = store_account_get(t->store, address, &acct);
	if (ret <= 0) {
		ret = ret < 0 ? ternctl_util_store_fail(t, ret, "account lookup") :
				ternctl_util_fail("unknown account %s", address);
		free(address);
		return ret;
	}
	if (store_quota_get(t->store, acct.id, &q) < 0 ||
	    store_send_count(t->store, acct.id, now - 3600, &sent) < 0 ||
	    store_plan_get(t->store, acct.plan, &plan) < 0) {
		ret = ternctl_util_store_fail(t, STORE_ERR, "reading the account");
	} else {
		printf("account   %s\n", acct.address);
		printf("plan      %s\n", acct.plan);
		printf("storage   %s of %s\n",
		       ternctl_util_bytes(q.used_bytes, b1, sizeof(b1)),
		       ternctl_util_limit_bytes(q.limit_bytes, b2, sizeof(b2)));
		printf("messages  %llu of %s\n", (unsigned long long)q.used_messages,
		       ternctl_util_limit_count(q.limit_messages, b3, sizeof(b3)));
		printf("sent      %llu in the last hour of %s\n",
		       (unsigned long long)sent,
		       ternctl_util_limit_count(plan.send_per_hour, b1, sizeof(b1)));
		printf("created   %s\n", ternctl_util_time(acct.created, b2, sizeof(b2)));
		ret = TERNCTL_EXIT_OK;
	}
	store_account_clear(&acct);
	free(address);
	return ret;
}
