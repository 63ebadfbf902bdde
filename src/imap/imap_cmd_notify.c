/* NOTIFY (RFC 5465): "NOTIFY NONE" (3.2) and "NOTIFY SET [STATUS]
   event-group..." (3.1, 8 ABNF). Filters (6): selected,
   selected-delayed, inboxes, personal, subscribed, subtree, mailboxes.
   Events (5): MessageNew [(fetch-att)] and MessageExpunge (always both,
   5.2/5.3), FlagChange (5.4, needs both), MailboxName (5.5),
   SubscriptionChange (5.6). Unsupported events (AnnotationChange,
   MailboxMetadataChange, ServerMetadataChange) answer
   NO [BADEVENT (supported...)] (3.1). MessageNew fetch-att is valid with
   selected filters only: UID and FLAGS alone are two bits; other items
   (ENVELOPE, BODY.PEEK[HEADER.FIELDS (...)], ...) are parsed by the
   FETCH parser into a small arena of the session's NOTIFY state. A mailbox
   that several groups name gets the events of the first. This file
   only parses and matches; imap_watch.c delivers. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/xalloc.h"

#define IMAP_NOTIFY_BADEVENT                                                \
	"NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName " \
	"SubscriptionChange)] Event not supported."

/* Parse result: the reply to give when not OK. */
struct imap_notify_parse {
	struct imap_session *s;
	struct arena *a; /* the command's */
	struct imap_notify *n;
	const char *reply; /* NULL: fine */
	bool bad;
	size_t names;
};

static void
imap_notify_fail(struct imap_notify_parse *p, const char *reply, bool bad)
{
	if (p->reply != NULL)
		return;
	p->reply = reply;
	p->bad = bad;
}

void
imap_notify_free(struct imap_notify **np)
{
	struct imap_notify *n = *np;

	if (n == NULL)
		return;
	for (size_t i = 0; i < n->ngroups; i++) {
		for (size_t j = 0; j < n->groups[i].count; j++)
			free(n->groups[i].names[j]);
		free(n->groups[i].names);
	}
	free(n->groups);
	arena_free(&n->fetch_arena);
	if (n->pending != NULL) {
		buf_free(n->pending);
		free(n->pending);
	}
	free(n);
	*np = NULL;
}

static const struct {
	const char *name;
	enum imap_notify_filter filter;
} imap_notify_filters[] = {
	{ "selected", IMAP_NF_SELECTED },
	{ "selected-delayed", IMAP_NF_SELECTED_DELAYED },
	{ "inboxes", IMAP_NF_INBOXES },
	{ "personal", IMAP_NF_PERSONAL },
	{ "subscribed", IMAP_NF_SUBSCRIBED },
	{ "subtree", IMAP_NF_SUBTREE },
	{ "mailboxes", IMAP_NF_MAILBOXES },
};

static bool
imap_notify_is_selected(enum imap_notify_filter f)
{
	return f == IMAP_NF_SELECTED || f == IMAP_NF_SELECTED_DELAYED;
}

static void
imap_notify_add_name(struct imap_notify_parse *p, struct imap_notify_group *g,
		     const struct imap_arg *a)
{
	const char *error, *name;

	if (!imap_arg_is_astring(a)) {
		imap_notify_fail(p, "BAD Mailbox name expected.", true);
		return;
	}
	if (++p->names > IMAP_NOTIFY_NAMES_MAX) {
		imap_notify_fail(p, "BAD Too many mailboxes in NOTIFY.", true);
		return;
	}
	name = imap_mailbox_from_arg(p->s, a, &error);
	if (name == NULL) {
		imap_notify_fail(p, error, error[0] == 'B');
		return;
	}
	g->names = xreallocarray(g->names, g->count + 1, sizeof(*g->names));
	g->names[g->count++] = xstrdup(name);
}

static void
imap_notify_parse_names(struct imap_notify_parse *p,
			struct imap_notify_group *g, const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_LIST) {
		imap_notify_add_name(p, g, a);
		return;
	}
	if (a->count == 0)
		imap_notify_fail(p, "BAD Empty mailbox list.", true);
	for (size_t i = 0; i < a->count && p->reply == NULL; i++)
		imap_notify_add_name(p, g, &a->list[i]);
}

/* MessageNew's fetch-att list (selected filters only). */
static void
imap_notify_parse_fetch(struct imap_notify_parse *p,
			const struct imap_arg *a)
{
	const char *error = NULL;
	unsigned bits = 0;
	size_t i;

	for (i = 0; i < a->count; i++) {
		if (imap_arg_is_atom(&a->list[i], "UID"))
			bits |= IMAP_NFETCH_UID;
		else if (imap_arg_is_atom(&a->list[i], "FLAGS"))
			bits |= IMAP_NFETCH_FLAGS;
		else
			break;
	}
	if (a->count > 0 && i == a->count) {
		p->n->fetch = bits;
		return;
	}
	arena_free(&p->n->fetch_arena);
	p->n->fetch_arena = arena_new("notify-fetch", 512);
	p->n->fetch_items = imap_fetch_parse_notify(p->a, p->n->fetch_arena,
						    a, &error);
	if (p->n->fetch_items == NULL)
		imap_notify_fail(p, error, error[0] == 'B');
}

static unsigned
imap_notify_event_bit(struct imap_notify_parse *p, const struct imap_arg *a)
{
	static const struct {
		const char *name;
		unsigned bit;
	} evs[] = {
		{ "MessageNew", IMAP_NEV_NEW },
		{ "MessageExpunge", IMAP_NEV_EXPUNGE },
		{ "FlagChange", IMAP_NEV_FLAGS },
		{ "MailboxName", IMAP_NEV_NAME },
		{ "SubscriptionChange", IMAP_NEV_SUBS },
	};

	if (a->type != IMAP_ARG_ATOM) {
		imap_notify_fail(p, "BAD Event name expected.", true);
		return 0;
	}
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (strcasecmp(a->str, evs[i].name) == 0)
			return evs[i].bit;
	}
	imap_notify_fail(p, IMAP_NOTIFY_BADEVENT, false);
	return 0;
}

static void
imap_notify_parse_events(struct imap_notify_parse *p,
			 struct imap_notify_group *g, const struct imap_arg *a)
{
	bool sel = imap_notify_is_selected(g->filter);

	if (imap_arg_is_atom(a, "NONE"))
		return;
	if (a->type != IMAP_ARG_LIST || a->count == 0) {
		imap_notify_fail(p, "BAD Event list expected.", true);
		return;
	}
	for (size_t i = 0; i < a->count && p->reply == NULL; i++) {
		unsigned bit = imap_notify_event_bit(p, &a->list[i]);

		g->events |= bit;
		if (bit != IMAP_NEV_NEW || i + 1 >= a->count ||
		    a->list[i + 1].type != IMAP_ARG_LIST)
			continue;
		if (!sel)
			imap_notify_fail(p, "BAD MessageNew fetch-att is only "
					    "allowed for selected.", true);
		else
			imap_notify_parse_fetch(p, &a->list[i + 1]);
		i++;
	}
}

/* RFC 5465 5: both message count events or neither, FlagChange only
   with them, and no mailbox events for the selected mailbox. */
static void
imap_notify_check_group(struct imap_notify_parse *p,
			const struct imap_notify_group *g)
{
	unsigned ev = g->events;
	bool nw = (ev & IMAP_NEV_NEW) != 0, ex = (ev & IMAP_NEV_EXPUNGE) != 0;

	if (nw != ex)
		imap_notify_fail(p, "BAD MessageNew and MessageExpunge go "
				    "together.", true);
	else if ((ev & IMAP_NEV_FLAGS) && !nw)
		imap_notify_fail(p, "BAD FlagChange needs MessageNew and "
				    "MessageExpunge.", true);
	else if (imap_notify_is_selected(g->filter) &&
		 (ev & (IMAP_NEV_NAME | IMAP_NEV_SUBS)))
		imap_notify_fail(p, "BAD Only message events apply to the "
				    "selected mailbox.", true);
}

static bool
imap_notify_parse_filter(struct imap_notify_parse *p,
			 struct imap_notify_group *g, const struct imap_arg *a)
{
	for (size_t i = 0; i < sizeof(imap_notify_filters) /
				       sizeof(imap_notify_filters[0]);
	     i++) {
		if (imap_arg_is_atom(a, imap_notify_filters[i].name)) {
			g->filter = imap_notify_filters[i].filter;
			return true;
		}
	}
	imap_notify_fail(p, "BAD Unknown mailbox filter.", true);
	return false;
}

static void
imap_notify_parse_group(struct imap_notify_parse *p, const struct imap_arg *a)
{
	struct imap_notify *n = p->n;
	struct imap_notify_group *g;
	bool names;

	if (a->type != IMAP_ARG_LIST || a->count < 2) {
		imap_notify_fail(p, "BAD Event group expected.", true);
		return;
	}
	if (n->ngroups >= IMAP_NOTIFY_GROUPS_MAX) {
		imap_notify_fail(p, "BAD Too many event groups.", true);
		return;
	}
	n->groups = xreallocarray(n->groups, n->ngroups + 1,
				  sizeof(*n->groups));
	g = &n->groups[n->ngroups++];
	memset(g, 0, sizeof(*g));
	if (!imap_notify_parse_filter(p, g, &a->list[0]))
		return;
	names = g->filter == IMAP_NF_SUBTREE || g->filter == IMAP_NF_MAILBOXES;
	if (a->count != (names ? 3u : 2u)) {
		imap_notify_fail(p, "BAD Invalid event group.", true);
		return;
	}
	if (names)
		imap_notify_parse_names(p, g, &a->list[1]);
	if (p->reply == NULL)
		imap_notify_parse_events(p, g, &a->list[a->count - 1]);
	if (p->reply == NULL)
		imap_notify_check_group(p, g);
}

static void
imap_notify_check_selected_once(struct imap_notify_parse *p)
{
	size_t seen = 0;

	for (size_t i = 0; i < p->n->ngroups; i++)
		seen += imap_notify_is_selected(p->n->groups[i].filter);
	if (seen > 1)
		imap_notify_fail(p, "BAD selected given twice.", true);
}

static enum imap_cmd_res
imap_cmd_notify_set(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_notify_parse p = { .s = s, .a = cmd->arena };
	size_t i = 1;

	p.n = xcalloc(1, sizeof(*p.n));
	if (i < cmd->argc && imap_arg_is_atom(&cmd->args[i], "STATUS")) {
		p.n->status = true;
		i++;
	}
	if (i >= cmd->argc)
		imap_notify_fail(&p, "BAD Event group expected.", true);
	for (; i < cmd->argc && p.reply == NULL; i++)
		imap_notify_parse_group(&p, &cmd->args[i]);
	if (p.reply == NULL)
		imap_notify_check_selected_once(&p);
	if (p.reply != NULL) {
		imap_notify_free(&p.n);
		cmd->reply = p.reply;
		cmd->bad = p.bad;
		return IMAP_CMD_DONE;
	}
	if (imap_watch_add(s, p.n) < 0) {
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	if (s->notify->status)
		imap_watch_status_all(s);
	imap_cmd_ok(cmd, "OK NOTIFY completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_notify(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->argc == 1 && imap_arg_is_atom(&cmd->args[0], "NONE")) {
		imap_watch_remove(s);
		imap_cmd_ok(cmd, "OK NOTIFY completed.");
		return IMAP_CMD_DONE;
	}
	if (cmd->argc >= 1 && imap_arg_is_atom(&cmd->args[0], "SET"))
		return imap_cmd_notify_set(s, cmd);
	imap_cmd_bad(cmd, "BAD NOTIFY SET or NOTIFY NONE expected.");
	return IMAP_CMD_DONE;
}

/* ---- matching ---- */

static bool
imap_notify_name_in(const struct imap_notify_group *g, const char *name,
		    bool subtree)
{
	for (size_t i = 0; i < g->count; i++) {
		size_t len = strlen(g->names[i]);

		if (strcmp(g->names[i], name) == 0)
			return true;
		if (subtree && strncmp(g->names[i], name, len) == 0 &&
		    name[len] == '/')
			return true;
	}
	return false;
}

static bool
imap_notify_group_matches(const struct imap_notify_group *g,
			  const char *name, bool subscribed)
{
	switch (g->filter) {
	case IMAP_NF_SELECTED:
	case IMAP_NF_SELECTED_DELAYED:
		return false;
	case IMAP_NF_INBOXES:
		return strcmp(name, "INBOX") == 0;
	case IMAP_NF_PERSONAL:
		return true;
	case IMAP_NF_SUBSCRIBED:
		return subscribed;
	case IMAP_NF_SUBTREE:
		return imap_notify_name_in(g, name, true);
	case IMAP_NF_MAILBOXES:
		return imap_notify_name_in(g, name, false);
	}
	return false;
}

unsigned
imap_notify_events(const struct imap_notify *n, const char *name,
		   bool subscribed)
{
	for (size_t i = 0; i < n->ngroups; i++) {
		if (imap_notify_group_matches(&n->groups[i], name, subscribed))
			return n->groups[i].events;
	}
	return 0;
}

unsigned
imap_notify_selected_events(const struct imap_notify *n, bool *delayed_r)
{
	*delayed_r = false;
	for (size_t i = 0; i < n->ngroups; i++) {
		if (imap_notify_is_selected(n->groups[i].filter)) {
			*delayed_r = n->groups[i].filter ==
				     IMAP_NF_SELECTED_DELAYED;
			return n->groups[i].events;
		}
	}
	return 0;
}
