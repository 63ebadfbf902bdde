/* NOTIFY delivery (RFC 5465). Store events (account, mailbox, modseq)
   reach every worker through imap_notify.c; here they become untagged
   responses for the sessions of this worker that asked with NOTIFY SET:
     - an unselected mailbox: "* STATUS box (MESSAGES n UIDNEXT n
       UIDVALIDITY n [UNSEEN n])" for MessageNew / MessageExpunge /
       FlagChange (5.2-5.4; never for the selected mailbox);
     - the selected mailbox: EXISTS / EXPUNGE / FETCH FLAGS between
       commands as well as in IDLE (5.1, 6.1: no EXPUNGE outside a
       command for selected-delayed), plus "FETCH (UID FLAGS)" of new
       messages when MessageNew asked for them;
     - MailboxName: "* LIST () "/" new", "* LIST (\NonExistent) "/" old",
       "* LIST () "/" new ("OLDNAME" (old))" (5.5, RFC 5258 OLDNAME);
     - SubscriptionChange: "* LIST (\Subscribed) ..." or "* LIST () ..."
       (5.6).
   Memory: one snapshot per account per worker (mailbox ids, names,
   counters, subscriptions), shared by all its sessions; a session keeps
   only its parsed filters, and a pending buffer only while a command
   runs (output held to the end of the command, bounded, then
   NOTIFICATIONOVERFLOW, 5.8). The event itself does not say what
   changed: comparing the counters with the snapshot does. */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

#define IMAP_WATCH_BUCKETS 1024

struct imap_watch_box {
	int64_t id;
	char *name;
	struct store_mailbox_status st;
};

struct imap_watch_acct {
	int64_t account_id;
	struct imap_watch_acct *next; /* hash chain */
	struct imap_notify *sessions;
	struct imap_watch_box *boxes;
	size_t count;
	char **subs;
	size_t nsubs;
};

static struct imap_watch_acct *imap_watch_table[IMAP_WATCH_BUCKETS];

static struct imap_watch_acct **
imap_watch_slot(int64_t account_id)
{
	struct imap_watch_acct **pp;

	pp = &imap_watch_table[(uint64_t)account_id % IMAP_WATCH_BUCKETS];
	while (*pp != NULL && (*pp)->account_id != account_id)
		pp = &(*pp)->next;
	return pp;
}

/* ---- the account snapshot ---- */

static void
imap_watch_boxes_free(struct imap_watch_box *boxes, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(boxes[i].name);
	free(boxes);
}

static void
imap_watch_subs_free(char **subs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(subs[i]);
	free(subs);
}

/* Load the mailbox list (and each one's counters when with_status). */
static int
imap_watch_load(struct store *st, int64_t account_id, bool with_status,
		struct imap_watch_box **boxes_r, size_t *count_r)
{
	struct store_mailbox *list;
	struct imap_watch_box *boxes;
	size_t n;

	if (store_mailbox_list(st, account_id, &list, &n) != STORE_OK)
		return -1;
	boxes = xcalloc(n + 1, sizeof(*boxes));
	for (size_t i = 0; i < n; i++) {
		boxes[i].id = list[i].id;
		boxes[i].name = xstrdup(list[i].name);
		boxes[i].st.uidvalidity = list[i].uidvalidity;
		boxes[i].st.uidnext = list[i].uidnext;
		if (with_status)
			(void)store_mailbox_status(st, list[i].id,
						   &boxes[i].st);
	}
	store_mailboxes_free(list, n);
	*boxes_r = boxes;
	*count_r = n;
	return 0;
}

static struct imap_watch_box *
imap_watch_find(struct imap_watch_box *boxes, size_t count, int64_t id)
{
	for (size_t i = 0; i < count; i++) {
		if (boxes[i].id == id)
			return &boxes[i];
	}
	return NULL;
}

static bool
imap_watch_subscribed(const struct imap_watch_acct *a, const char *name)
{
	for (size_t i = 0; i < a->nsubs; i++) {
		if (strcmp(a->subs[i], name) == 0)
			return true;
	}
	return false;
}

static bool
imap_watch_in_list(char **list, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(list[i], name) == 0)
			return true;
	}
	return false;
}

static struct imap_watch_acct *
imap_watch_acct_get(struct store *st, int64_t account_id)
{
	struct imap_watch_acct **pp = imap_watch_slot(account_id), *a = *pp;

	if (a != NULL)
		return a;
	a = xcalloc(1, sizeof(*a));
	a->account_id = account_id;
	if (imap_watch_load(st, account_id, true, &a->boxes, &a->count) < 0 ||
	    store_subscription_list(st, account_id, &a->subs, &a->nsubs) !=
		    STORE_OK) {
		imap_watch_boxes_free(a->boxes, a->count);
		free(a);
		return NULL;
	}
	*pp = a;
	return a;
}

static void
imap_watch_acct_put(struct imap_watch_acct *a)
{
	struct imap_watch_acct **pp;

	if (a->sessions != NULL)
		return;
	pp = imap_watch_slot(a->account_id);
	*pp = a->next;
	imap_watch_boxes_free(a->boxes, a->count);
	imap_watch_subs_free(a->subs, a->nsubs);
	free(a);
}

/* ---- sessions ---- */

void
imap_watch_remove(struct imap_session *s)
{
	struct imap_notify *n = s->notify;
	struct imap_watch_acct *a;

	if (n == NULL)
		return;
	a = n->acct;
	if (a != NULL) {
		if (n->prev != NULL)
			n->prev->next = n->next;
		else
			a->sessions = n->next;
		if (n->next != NULL)
			n->next->prev = n->prev;
		imap_watch_acct_put(a);
	}
	imap_notify_free(&s->notify);
}

int
imap_watch_add(struct imap_session *s, struct imap_notify *n)
{
	struct imap_watch_acct *a;

	imap_watch_remove(s);
	a = imap_watch_acct_get(s->env->store, s->account_id);
	if (a == NULL) {
		log_error("imap", s->id, "notify-load-failed error=%s",
			  store_last_error(s->env->store));
		imap_notify_free(&n);
		return -1;
	}
	n->s = s;
	n->acct = a;
	n->next = a->sessions;
	if (a->sessions != NULL)
		a->sessions->prev = n;
	a->sessions = n;
	s->notify = n;
	return 0;
}

/* ---- output ---- */

static bool
imap_watch_busy(const struct imap_session *s)
{
	return s->cmd != NULL;
}

/* Send now, or hold until the running command has answered. */
static void
imap_watch_out(struct imap_session *s, const struct buf *b)
{
	struct imap_notify *n = s->notify;

	if (!imap_watch_busy(s)) {
		imap_session_write(s, b->data, b->len);
		return;
	}
	if (n->overflow)
		return;
	if (n->pending == NULL) {
		n->pending = xcalloc(1, sizeof(*n->pending));
		buf_init(n->pending, IMAP_NOTIFY_PENDING_MAX_BYTES);
	}
	if (buf_append(n->pending, b->data, b->len) < 0)
		n->overflow = true;
}

static void imap_watch_new_send(struct imap_session *s);

/* After each command: the held output, then MessageNew fetch-att for
   messages the command itself brought into the view (an event that came
   while it ran, or a NOOP that synced before the event was read). */
void
imap_watch_flush(struct imap_session *s)
{
	struct imap_notify *n = s->notify;

	if (n == NULL || s->closing || imap_watch_busy(s))
		return;
	if (n->overflow) {
		imap_session_printf(s, "* OK [NOTIFICATIONOVERFLOW] Too many "
				       "notifications, NOTIFY is off.");
		imap_watch_remove(s);
		return;
	}
	if (n->pending != NULL) {
		imap_session_write(s, n->pending->data, n->pending->len);
		buf_free(n->pending);
		xfree(&n->pending);
	}
	imap_watch_new_send(s);
}

/* now: part of the running command's own output (NOTIFY SET STATUS).
   HIGHESTMODSEQ once the client enabled CONDSTORE or QRESYNC
   (RFC 5465 5.2-5.4 with RFC 7162 3.1.3). */
static void
imap_watch_send_status(struct imap_session *s, const char *name,
		       const struct store_mailbox_status *st, bool unseen,
		       bool now)
{
	struct buf b;

	buf_init(&b, STORE_MAILBOX_NAME_MAX * 8 + 256);
	(void)buf_append_str(&b, "* STATUS ");
	(void)imap_write_mailbox(s, &b, name);
	(void)buf_printf(&b, " (MESSAGES %u UIDNEXT %u UIDVALIDITY %u",
			 st->messages, st->uidnext, st->uidvalidity);
	if (unseen)
		(void)buf_printf(&b, " UNSEEN %u", st->unseen);
	if (s->condstore)
		(void)buf_printf(&b, " HIGHESTMODSEQ %llu",
				 (unsigned long long)st->highestmodseq);
	(void)buf_append_str(&b, ")\r\n");
	if (now)
		imap_session_write(s, b.data, b.len);
	else
		imap_watch_out(s, &b);
	buf_free(&b);
}

/* "* LIST (attrs) "/" name [("OLDNAME" (old))]" */
static void
imap_watch_send_list(struct imap_session *s, const char *attrs,
		     const char *name, const char *oldname)
{
	struct buf b;

	buf_init(&b, STORE_MAILBOX_NAME_MAX * 16 + 256);
	(void)buf_printf(&b, "* LIST (%s) \"/\" ", attrs);
	(void)imap_write_mailbox(s, &b, name);
	if (oldname != NULL) {
		(void)buf_append_str(&b, " (\"OLDNAME\" (");
		(void)imap_write_mailbox(s, &b, oldname);
		(void)buf_append_str(&b, "))");
	}
	(void)buf_append_str(&b, "\r\n");
	imap_watch_out(s, &b);
	buf_free(&b);
}

static bool
imap_watch_is_selected(const struct imap_session *s, int64_t mailbox_id)
{
	return s->view != NULL && s->view->mailbox_id == mailbox_id;
}

void
imap_watch_status_all(struct imap_session *s)
{
	struct imap_watch_acct *a = s->notify->acct;
	struct store_mailbox_status st;

	for (size_t i = 0; i < a->count; i++) {
		struct imap_watch_box *box = &a->boxes[i];
		unsigned ev = imap_notify_events(
			s->notify, box->name,
			imap_watch_subscribed(a, box->name));

		if (!(ev & IMAP_NEV_MESSAGE) ||
		    imap_watch_is_selected(s, box->id))
			continue;
		if (store_mailbox_status(s->env->store, box->id, &st) ==
		    STORE_OK)
			imap_watch_send_status(s, box->name, &st,
					       (ev & IMAP_NEV_FLAGS) != 0, true);
	}
}

/* ---- the selected mailbox ---- */

/* MessageNew fetch-att for the messages past last_uid: parsed items
   through the FETCH code, or UID/FLAGS here. */
static void
imap_watch_send_new(struct imap_session *s, uint32_t last_uid)
{
	struct imap_view *v = s->view;
	unsigned f = s->notify->fetch;
	struct buf b;

	if (v != NULL && s->notify->fetch_items != NULL) {
		size_t *idx = xcalloc(v->count + 1, sizeof(*idx)), n = 0;

		for (size_t i = 0; i < v->count; i++) {
			if (v->msgs[i].uid > last_uid && !v->msgs[i].expunged)
				idx[n++] = i;
		}
		imap_fetch_notify_write(s, s->notify->fetch_items, idx, n);
		free(idx);
		return;
	}
	if (f == 0 || v == NULL)
		return;
	buf_init(&b, 64 * 1024);
	for (size_t i = 0; i < v->count; i++) {
		struct imap_msg *m = &v->msgs[i];

		if (m->uid <= last_uid || m->expunged)
			continue;
		buf_reset(&b);
		(void)buf_printf(&b, "* %zu FETCH (", i + 1);
		if (f & IMAP_NFETCH_UID)
			(void)buf_printf(&b, "UID %u%s", m->uid,
					 (f & IMAP_NFETCH_FLAGS) ? " " : "");
		if (f & IMAP_NFETCH_FLAGS) {
			(void)buf_append_str(&b, "FLAGS (");
			(void)imap_write_flags(&b, imap_msg_flags(s, m),
					       m->keywords);
			(void)buf_append_byte(&b, ')');
		}
		/* RFC 7162 3.1: unsolicited FETCH carries MODSEQ */
		if (s->condstore)
			(void)buf_printf(&b, " MODSEQ (%llu)",
					 (unsigned long long)m->modseq);
		if (buf_append_str(&b, ")\r\n") == 0)
			imap_session_write(s, b.data, b.len);
	}
	buf_free(&b);
}

static uint32_t
imap_watch_last_uid(const struct imap_view *v)
{
	return v->count > 0 ? v->msgs[v->count - 1].uid : 0;
}

/* MessageNew for the view's messages past what was sent or known. A
   newly selected mailbox only sets the mark: what SELECT showed is not
   new. */
static void
imap_watch_new_send(struct imap_session *s)
{
	struct imap_notify *n = s->notify;
	struct imap_view *v = s->view;
	uint32_t last;
	bool delayed;

	if (v == NULL) {
		n->new_box = 0;
		return;
	}
	last = imap_watch_last_uid(v);
	if (n->new_box != v->mailbox_id) {
		n->new_box = v->mailbox_id;
		n->new_uid = last;
		return;
	}
	if (last <= n->new_uid)
		return;
	if (imap_notify_selected_events(n, &delayed) & IMAP_NEV_NEW)
		imap_watch_send_new(s, n->new_uid);
	n->new_uid = last;
}

static void
imap_watch_selected(struct imap_session *s)
{
	struct imap_notify *n = s->notify;
	bool delayed;
	unsigned ev = imap_notify_selected_events(n, &delayed);

	if (ev == 0 || imap_watch_busy(s) || s->closing ||
	    (s->mode != IMAP_INPUT_CMD && s->mode != IMAP_INPUT_IDLE))
		return;
	if (n->new_box != s->view->mailbox_id) {
		n->new_box = s->view->mailbox_id;
		n->new_uid = imap_watch_last_uid(s->view);
	}
	if (imap_session_sync(s, !delayed, false) < 0 || s->closing)
		return;
	imap_watch_new_send(s);
}

/* ---- message events of one mailbox ---- */

/* What changed between the snapshot and now (IMAP_NEV_* bits). */
static unsigned
imap_watch_classify(const struct store_mailbox_status *old,
		    const struct store_mailbox_status *now)
{
	unsigned what = 0;
	uint32_t added = now->uidnext - old->uidnext;

	if (now->uidvalidity != old->uidvalidity)
		return IMAP_NEV_MESSAGE;
	if (now->uidnext != old->uidnext)
		what |= IMAP_NEV_NEW;
	if (now->messages < old->messages ||
	    now->messages - old->messages < added)
		what |= IMAP_NEV_EXPUNGE;
	if (what == 0 && (now->highestmodseq != old->highestmodseq ||
			  now->unseen != old->unseen))
		what |= IMAP_NEV_FLAGS;
	return what;
}

static struct imap_watch_box *
imap_watch_box_get(struct imap_watch_acct *a, struct store *st, int64_t id)
{
	struct imap_watch_box *box = imap_watch_find(a->boxes, a->count, id);
	struct store_mailbox mb;

	if (box != NULL)
		return box;
	/* created after the snapshot: the list event is still on its way */
	if (store_mailbox_get_by_id(st, id, &mb) != 1)
		return NULL;
	a->boxes = xreallocarray(a->boxes, a->count + 1, sizeof(*a->boxes));
	box = &a->boxes[a->count++];
	memset(box, 0, sizeof(*box));
	box->id = id;
	box->name = xstrdup(mb.name);
	box->st.uidvalidity = mb.uidvalidity;
	box->st.uidnext = 1;
	store_mailbox_clear(&mb);
	return box;
}

static void
imap_watch_mailbox(struct imap_watch_acct *a, struct store *st, int64_t id)
{
	struct imap_watch_box *box = imap_watch_box_get(a, st, id);
	struct store_mailbox_status now;
	struct imap_notify *n, *next;
	unsigned what;

	if (box == NULL || store_mailbox_status(st, id, &now) != STORE_OK)
		return;
	what = imap_watch_classify(&box->st, &now);
	box->st = now;
	for (n = a->sessions; n != NULL; n = next) {
		struct imap_session *s = n->s;
		unsigned ev;

		next = n->next;
		if (imap_watch_is_selected(s, id)) {
			imap_watch_selected(s);
			continue;
		}
		ev = imap_notify_events(n, box->name,
					imap_watch_subscribed(a, box->name));
		if ((ev & what) != 0 && !s->closing)
			imap_watch_send_status(s, box->name, &now,
					       (ev & IMAP_NEV_FLAGS) != 0,
					       false);
	}
}

/* ---- the mailbox list and subscriptions ---- */

static void
imap_watch_name_event(struct imap_watch_acct *a, const char *attrs,
		      const char *name, const char *oldname)
{
	struct imap_notify *n;

	for (n = a->sessions; n != NULL; n = n->next) {
		unsigned ev = imap_notify_events(
			n, name, imap_watch_subscribed(a, name));

		if (oldname != NULL)
			ev |= imap_notify_events(
				n, oldname, imap_watch_subscribed(a, oldname));
		if ((ev & IMAP_NEV_NAME) && !n->s->closing)
			imap_watch_send_list(n->s, attrs, name, oldname);
	}
}

static void
imap_watch_subs_event(struct imap_watch_acct *a, const char *name,
		      bool subscribed)
{
	struct imap_notify *n;

	for (n = a->sessions; n != NULL; n = n->next) {
		/* the filter sees the state either side of the change */
		unsigned ev = imap_notify_events(n, name, true) |
			      imap_notify_events(n, name, false);

		if ((ev & IMAP_NEV_SUBS) && !n->s->closing)
			imap_watch_send_list(n->s,
					     subscribed ? "\\Subscribed" : "",
					     name, NULL);
	}
}

static void
imap_watch_list_diff(struct imap_watch_acct *a, struct imap_watch_box *nb,
		     size_t ncount)
{
	for (size_t i = 0; i < ncount; i++) {
		struct imap_watch_box *old =
			imap_watch_find(a->boxes, a->count, nb[i].id);

		if (old == NULL)
			imap_watch_name_event(a, "", nb[i].name, NULL);
		else if (strcmp(old->name, nb[i].name) != 0)
			imap_watch_name_event(a, "", nb[i].name, old->name);
		if (old != NULL)
			nb[i].st = old->st;
	}
	for (size_t i = 0; i < a->count; i++) {
		if (imap_watch_find(nb, ncount, a->boxes[i].id) == NULL)
			imap_watch_name_event(a, "\\NonExistent",
					      a->boxes[i].name, NULL);
	}
}

static void
imap_watch_subs_diff(struct imap_watch_acct *a, char **subs, size_t nsubs)
{
	for (size_t i = 0; i < nsubs; i++) {
		if (!imap_watch_in_list(a->subs, a->nsubs, subs[i]))
			imap_watch_subs_event(a, subs[i], true);
	}
	for (size_t i = 0; i < a->nsubs; i++) {
		if (!imap_watch_in_list(subs, nsubs, a->subs[i]))
			imap_watch_subs_event(a, a->subs[i], false);
	}
}

static void
imap_watch_list(struct imap_watch_acct *a, struct store *st)
{
	struct imap_watch_box *nb;
	char **subs;
	size_t ncount, nsubs;

	if (imap_watch_load(st, a->account_id, false, &nb, &ncount) < 0)
		return;
	if (store_subscription_list(st, a->account_id, &subs, &nsubs) !=
	    STORE_OK) {
		imap_watch_boxes_free(nb, ncount);
		return;
	}
	imap_watch_list_diff(a, nb, ncount);
	imap_watch_boxes_free(a->boxes, a->count);
	a->boxes = nb;
	a->count = ncount;
	imap_watch_subs_diff(a, subs, nsubs);
	imap_watch_subs_free(a->subs, a->nsubs);
	a->subs = subs;
	a->nsubs = nsubs;
}

void
imap_watch_event(const struct store_notify_event *ev)
{
	struct imap_watch_acct *a = *imap_watch_slot(ev->account_id);
	struct store *st;

	if (a == NULL || a->sessions == NULL)
		return;
	st = a->sessions->s->env->store;
	if (ev->mailbox_id == 0)
		imap_watch_list(a, st);
	else
		imap_watch_mailbox(a, st, ev->mailbox_id);
}
