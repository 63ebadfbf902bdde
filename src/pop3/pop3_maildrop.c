/* The POP3 maildrop: the account's INBOX as it was at login, locked
   against a second POP3 session in any worker process (RFC 1939 8 allows
   refusing with "-ERR [IN-USE]", RFC 2449 8.1.2).

   UIDL (RFC 1939 7): "<uidvalidity>.<id>", where id is the store's global
   message id, which is never reused. It stays the same across sessions
   and whatever IMAP does to other messages; a message IMAP moves out of
   INBOX and back is a new message (new id), which is what a "leave mail
   on server" client should see. The uidvalidity part changes only if the
   INBOX is recreated, so ids from a recreated store never collide. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "pop3/pop3_int.h"

static int
pop3_maildrop_lock(struct pop3_maildrop *md, struct store *store)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/run", store_datadir(store));
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/run/pop3-%lld.lock",
		 store_datadir(store), (long long)md->account_id);
	md->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (md->lock_fd < 0)
		return -1;
	/* flock locks belong to the open file: they vanish when the
	   process dies, so a crashed worker never leaves a stale lock. */
	if (flock(md->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(md->lock_fd);
		md->lock_fd = -1;
		errno = e;
		return e == EWOULDBLOCK ? 1 : -1;
	}
	return 0;
}

enum pop3_maildrop_res
pop3_maildrop_open(struct pop3_maildrop *md, struct store *store,
		   const char *account, const char **error_r)
{
	struct store_account acct;
	struct store_mailbox box;
	int r;

	memset(md, 0, sizeof(*md));
	md->lock_fd = -1;
	r = store_account_get(store, account, &acct);
	if (r <= 0) {
		*error_r = "account lookup failed";
		return POP3_MAILDROP_ERR;
	}
	md->account_id = acct.id;
	store_account_clear(&acct);
	r = pop3_maildrop_lock(md, store);
	if (r > 0)
		return POP3_MAILDROP_IN_USE;
	if (r < 0) {
		*error_r = "cannot lock the maildrop";
		return POP3_MAILDROP_ERR;
	}
	if (store_mailbox_get(store, md->account_id, "INBOX", &box) != 1) {
		*error_r = "cannot open INBOX";
		pop3_maildrop_close(md);
		return POP3_MAILDROP_ERR;
	}
	md->mailbox_id = box.id;
	md->uidvalidity = box.uidvalidity;
	store_mailbox_clear(&box);
	if (store_msg_list(store, md->mailbox_id, 1, &md->msgs, &md->count) < 0) {
		*error_r = "cannot list INBOX";
		pop3_maildrop_close(md);
		return POP3_MAILDROP_ERR;
	}
	md->deleted = xcalloc(md->count + 1, sizeof(*md->deleted));
	pop3_maildrop_reset(md);
	return POP3_MAILDROP_OK;
}

/* On the commit thread (store_commit_run_fn), with its store. */
static int
pop3_update_run(struct store *st, struct store_commit_job *job)
{
	struct pop3_update *u = (struct pop3_update *)job;
	uint64_t modseq;

	return store_msg_expunge(st, u->mailbox_id, u->uids, u->count,
				 &modseq);
}

struct pop3_update *
pop3_maildrop_update(struct pop3_maildrop *md, store_commit_done_fn *done)
{
	struct pop3_update *u = xcalloc(1, sizeof(*u));

	u->job.run = pop3_update_run;
	u->job.done = done;
	u->mailbox_id = md->mailbox_id;
	u->uids = xcalloc(md->count + 1, sizeof(*u->uids));
	for (size_t i = 0; i < md->count; i++) {
		if (md->deleted[i])
			u->uids[u->count++] = md->msgs[i].uid;
	}
	u->lock_fd = md->lock_fd;
	md->lock_fd = -1;
	return u;
}

void
pop3_update_free(struct pop3_update **up)
{
	struct pop3_update *u = *up;

	if (u == NULL)
		return;
	if (u->lock_fd >= 0)
		close(u->lock_fd);
	free(u->uids);
	free(u);
	*up = NULL;
}

void
pop3_maildrop_unlock(struct pop3_maildrop *md)
{
	if (md->lock_fd >= 0) {
		close(md->lock_fd);
		md->lock_fd = -1;
	}
}

void
pop3_maildrop_close(struct pop3_maildrop *md)
{
	pop3_maildrop_unlock(md);
	if (md->msgs != NULL)
		store_msgs_free(md->msgs, md->count);
	free(md->deleted);
	md->msgs = NULL;
	md->deleted = NULL;
	md->count = 0;
}

const struct store_msg *
pop3_maildrop_get(const struct pop3_maildrop *md, uint32_t n)
{
	if (n == 0 || n > md->count || md->deleted[n - 1])
		return NULL;
	return &md->msgs[n - 1];
}

void
pop3_maildrop_mark(struct pop3_maildrop *md, uint32_t n)
{
	if (n == 0 || n > md->count || md->deleted[n - 1])
		return;
	md->deleted[n - 1] = true;
	md->live_count--;
	md->live_bytes -= md->msgs[n - 1].size;
}

void
pop3_maildrop_reset(struct pop3_maildrop *md)
{
	md->live_count = md->count;
	md->live_bytes = 0;
	for (size_t i = 0; i < md->count; i++) {
		md->deleted[i] = false;
		md->live_bytes += md->msgs[i].size;
	}
}

void
pop3_maildrop_uidl(const struct pop3_maildrop *md, uint32_t n, char *out,
		   size_t outlen)
{
	snprintf(out, outlen, "%u.%lld", md->uidvalidity,
		 (long long)md->msgs[n - 1].id);
}
