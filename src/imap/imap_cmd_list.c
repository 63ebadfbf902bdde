/* LIST (RFC 9051 6.3.9) with LIST-EXTENDED (RFC 5258: selection options
   SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE; return options
   CHILDREN, SUBSCRIBED, SPECIAL-USE, STATUS from RFC 5819, several
   patterns), CHILDREN attributes (RFC 3348), SPECIAL-USE attributes
   (RFC 6154) and LSUB (RFC 3501 6.3.9). Wildcards: "*" matches anything,
   "%" anything but the "/" delimiter. Parents that do not exist are
   listed as \NonExistent \Noselect when a pattern reaches them. The
   matcher has a step budget, so hostile patterns cannot take long. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

#define IMAP_LIST_MATCH_STEPS 200000
#define IMAP_LIST_PATTERNS_MAX 64

struct imap_list_entry {
	const char *name;
	const char *special_use;
	int64_t id;
	bool exists, subscribed, has_children, child_subscribed;
	bool sub_desc_matched; /* LSUB: a subscribed descendant is listed */
};

struct imap_list_ctx {
	struct imap_list_entry *e;
	size_t count, cap;
	/* options */
	bool sel_subscribed, sel_recursive, sel_special;
	bool ret_subscribed, ret_children, ret_special;
	unsigned status_items;
	bool lsub;
	const char **patterns;
	size_t npatterns;
};

static int
imap_list_match_at(const char *p, const char *n, unsigned long *steps)
{
	while (*p != '\0') {
		if (++*steps > IMAP_LIST_MATCH_STEPS)
			return 0;
		if (*p == '*' || *p == '%') {
			bool any = *p == '*';

			p++;
			for (;;) {
				if (imap_list_match_at(p, n, steps))
					return 1;
				if (*n == '\0' || (!any && *n == '/'))
					return 0;
				n++;
				if (++*steps > IMAP_LIST_MATCH_STEPS)
					return 0;
			}
		}
		if (*p != *n)
			return 0;
		p++;
		n++;
	}
	return *n == '\0';
}

static bool
imap_list_match(const struct imap_list_ctx *ctx, const char *name)
{
	unsigned long steps = 0;
	size_t i;

	for (i = 0; i < ctx->npatterns; i++) {
		if (imap_list_match_at(ctx->patterns[i], name, &steps))
			return true;
	}
	return false;
}

static struct imap_list_entry *
imap_list_add(struct imap_list_ctx *ctx, struct arena *a, const char *name)
{
	struct imap_list_entry *e;

	if (ctx->count == ctx->cap) {
		size_t cap = ctx->cap == 0 ? 64 : ctx->cap * 2;
		struct imap_list_entry *n = arena_alloc(a, cap * sizeof(*n));

		if (ctx->count > 0)
			memcpy(n, ctx->e, ctx->count * sizeof(*n));
		ctx->e = n;
		ctx->cap = cap;
	}
	e = &ctx->e[ctx->count++];
	memset(e, 0, sizeof(*e));
	e->name = name;
	return e;
}

/* Virtual entries for every ancestor of name. */
static void
imap_list_add_parents(struct imap_list_ctx *ctx, struct arena *a,
		      const char *name, bool exists, bool subscribed)
{
	const char *p;

	for (p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/')) {
		struct imap_list_entry *e;

		e = imap_list_add(ctx, a, arena_strndup(a, name,
							 (size_t)(p - name)));
		e->has_children = exists;
		e->child_subscribed = subscribed;
	}
}

static int
imap_list_cmp(const void *x, const void *y)
{
	const struct imap_list_entry *a = x, *b = y;
	bool ai = strcmp(a->name, "INBOX") == 0;
	bool bi = strcmp(b->name, "INBOX") == 0;

	if (ai != bi)
		return ai ? -1 : 1;
	return strcmp(a->name, b->name);
}

static void
imap_list_merge(struct imap_list_ctx *ctx)
{
	size_t i, o = 0;

	if (ctx->count == 0)
		return;
	qsort(ctx->e, ctx->count, sizeof(*ctx->e), imap_list_cmp);
	for (i = 1; i < ctx->count; i++) {
		struct imap_list_entry *d = &ctx->e[o], *e = &ctx->e[i];

		if (strcmp(d->name, e->name) != 0) {
			ctx->e[++o] = *e;
			continue;
		}
		d->exists |= e->exists;
		d->subscribed |= e->subscribed;
		d->has_children |= e->has_children;
		d->child_subscribed |= e->child_subscribed;
		if (e->special_use != NULL)
			d->special_use = e->special_use;
		if (e->exists)
			d->id = e->id;
	}
	ctx->count = o + 1;
}

static int
imap_list_collect(struct imap_session *s, struct imap_list_ctx *ctx)
{
	struct arena *a = imap_cmd_arena(s);
	struct store_mailbox *boxes = NULL;
	char **subs = NULL;
	size_t nboxes = 0, nsubs = 0, i;

	if (store_mailbox_list(s->env->store, s->account_id, &boxes,
			       &nboxes) < 0)
		return -1;
	if (store_subscription_list(s->env->store, s->account_id, &subs,
				    &nsubs) < 0) {
		store_mailboxes_free(boxes, nboxes);
		return -1;
	}
	for (i = 0; i < nboxes; i++) {
		struct imap_list_entry *e;

		e = imap_list_add(ctx, a, arena_strdup(a, boxes[i].name));
		e->exists = true;
		e->id = boxes[i].id;
		e->special_use = boxes[i].special_use != NULL ?
					 arena_strdup(a, boxes[i].special_use) :
					 NULL;
		imap_list_add_parents(ctx, a, e->name, true, false);
	}
	for (i = 0; i < nsubs; i++) {
		struct imap_list_entry *e;

		e = imap_list_add(ctx, a, arena_strdup(a, subs[i]));
		e->subscribed = true;
		imap_list_add_parents(ctx, a, e->name, false, true);
	}
	store_mailboxes_free(boxes, nboxes);
	store_strings_free(subs, nsubs);
	imap_list_merge(ctx);
	return 0;
}

static void
imap_list_attr(struct buf *b, const char *attr)
{
	if (b->len > 0)
		(void)buf_append_byte(b, ' ');
	(void)buf_append_str(b, attr);
}

static void
imap_list_write_entry(struct imap_session *s, struct imap_list_ctx *ctx,
		      const struct imap_list_entry *e, bool childinfo)
{
	struct buf attrs, line;

	buf_init(&attrs, 1024);
	if (ctx->lsub ? !e->exists || !e->subscribed : !e->exists) {
		imap_list_attr(&attrs, ctx->lsub ? "\\Noselect" :
				       "\\NonExistent \\Noselect");
	}
	if (!ctx->lsub) {
		imap_list_attr(&attrs, e->has_children ? "\\HasChildren" :
							 "\\HasNoChildren");
		if (e->subscribed && (ctx->ret_subscribed || ctx->sel_subscribed))
			imap_list_attr(&attrs, "\\Subscribed");
		if (e->special_use != NULL)
			imap_list_attr(&attrs, e->special_use);
	}
	buf_init(&line, STORE_MAILBOX_NAME_MAX * 8 + 2048);
	(void)buf_printf(&line, "* %s (%s) \"/\" ", ctx->lsub ? "LSUB" : "LIST",
			 buf_cstr(&attrs));
	(void)imap_write_mailbox(s, &line, e->name);
	if (childinfo)
		(void)buf_append_str(&line, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	(void)buf_append_str(&line, "\r\n");
	imap_session_write(s, line.data, line.len);
	if (ctx->status_items != 0 && e->exists) {
		buf_reset(&line);
		(void)buf_append_str(&line, "* STATUS ");
		(void)imap_write_mailbox(s, &line, e->name);
		(void)buf_append_byte(&line, ' ');
		if (imap_status_write(s, &line, e->id, ctx->status_items) == 0 &&
		    buf_append_str(&line, "\r\n") == 0)
			imap_session_write(s, line.data, line.len);
	}
	buf_free(&line);
	buf_free(&attrs);
}

/* RFC 3501 6.3.9: LSUB "%" returns the unsubscribed parent "foo" of a
   subscribed "foo/bar" (as \\Noselect) when the pattern reaches no
   subscribed descendant of it. Mark the ancestors of every subscribed
   name the pattern matches: those are not listed in its place. */
static void
imap_lsub_mark_ancestors(struct imap_list_ctx *ctx)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct imap_list_entry key, *anc;
	const char *p;
	size_t i, n;

	memset(&key, 0, sizeof(key));
	key.name = name;
	for (i = 0; i < ctx->count; i++) {
		const struct imap_list_entry *d = &ctx->e[i];

		if (!d->subscribed || strchr(d->name, '/') == NULL ||
		    !imap_list_match(ctx, d->name))
			continue;
		for (p = strchr(d->name, '/'); p != NULL;
		     p = strchr(p + 1, '/')) {
			n = (size_t)(p - d->name);
			if (n >= sizeof(name))
				break;
			memcpy(name, d->name, n);
			name[n] = '\0';
			anc = bsearch(&key, ctx->e, ctx->count, sizeof(*ctx->e),
				      imap_list_cmp);
			if (anc != NULL)
				anc->sub_desc_matched = true;
		}
	}
}

static void
imap_list_output(struct imap_session *s, struct imap_list_ctx *ctx)
{
	size_t i;

	if (ctx->lsub)
		imap_lsub_mark_ancestors(ctx);
	for (i = 0; i < ctx->count; i++) {
		const struct imap_list_entry *e = &ctx->e[i];
		bool childinfo = false;

		if (!imap_list_match(ctx, e->name))
			continue;
		if (ctx->sel_subscribed && !e->subscribed) {
			if (!ctx->sel_recursive || !e->child_subscribed)
				continue;
			childinfo = true;
		}
		if (ctx->lsub && !e->subscribed &&
		    (!e->child_subscribed || e->sub_desc_matched))
			continue;
		if (!ctx->sel_subscribed && !ctx->lsub && !e->exists &&
		    !e->has_children)
			continue; /* only subscribed, not existing */
		if (ctx->sel_special && (e->special_use == NULL || !e->exists))
			continue;
		imap_list_write_entry(s, ctx, e, childinfo);
	}
}

/* Decode a reference or pattern to UTF-8 (arena). NULL when invalid. */
static const char *
imap_list_decode(struct imap_session *s, const struct imap_arg *arg)
{
	struct buf b;
	char *r;

	if (!imap_arg_is_astring(arg))
		return NULL;
	buf_init(&b, 64 * 1024);
	if (s->utf8 ? (!imap_utf8_valid(arg->str, arg->len) ||
		       buf_append(&b, arg->str, arg->len) < 0) :
		      imap_mutf7_decode(&b, arg->str, arg->len) < 0) {
		buf_free(&b);
		return NULL;
	}
	r = arena_strndup(imap_cmd_arena(s), buf_cstr(&b), b.len);
	buf_free(&b);
	return r;
}

static bool
imap_list_add_pattern(struct imap_session *s, struct imap_list_ctx *ctx,
		      const char *ref, const struct imap_arg *arg)
{
	const char *pat = imap_list_decode(s, arg);
	char *full;

	if (arg->type == IMAP_ARG_LIST || !imap_arg_is_astring(arg))
		return false;
	if (ctx->npatterns >= IMAP_LIST_PATTERNS_MAX)
		return false;
	if (pat == NULL)
		pat = "\x01"; /* matches nothing */
	full = arena_printf(imap_cmd_arena(s), "%s%s", ref, pat);
	if (strncasecmp(full, "INBOX", 5) == 0 &&
	    (full[5] == '\0' || full[5] == '/'))
		memcpy(full, "INBOX", 5);
	ctx->patterns[ctx->npatterns++] = full;
	return true;
}

static bool
imap_list_selection(struct imap_list_ctx *ctx, const struct imap_arg *l)
{
	size_t i;

	for (i = 0; i < l->count; i++) {
		const struct imap_arg *o = &l->list[i];

		if (imap_arg_is_atom(o, "SUBSCRIBED"))
			ctx->sel_subscribed = true;
		else if (imap_arg_is_atom(o, "RECURSIVEMATCH"))
			ctx->sel_recursive = true;
		else if (imap_arg_is_atom(o, "SPECIAL-USE"))
			ctx->sel_special = true;
		else if (!imap_arg_is_atom(o, "REMOTE"))
			return false;
	}
	/* RFC 5258 3.1: RECURSIVEMATCH alone is an error */
	return !ctx->sel_recursive || ctx->sel_subscribed || ctx->sel_special;
}

static bool
imap_list_return(struct imap_list_ctx *ctx, const struct imap_arg *l)
{
	size_t i;

	if (l->type != IMAP_ARG_LIST)
		return false;
	for (i = 0; i < l->count; i++) {
		const struct imap_arg *o = &l->list[i];

		if (imap_arg_is_atom(o, "SUBSCRIBED")) {
			ctx->ret_subscribed = true;
		} else if (imap_arg_is_atom(o, "CHILDREN")) {
			ctx->ret_children = true;
		} else if (imap_arg_is_atom(o, "SPECIAL-USE")) {
			ctx->ret_special = true;
		} else if (imap_arg_is_atom(o, "STATUS") && i + 1 < l->count &&
			   l->list[i + 1].type == IMAP_ARG_LIST) {
			if (imap_status_items_parse(&l->list[i + 1],
						    &ctx->status_items) < 0)
				return false;
			i++;
		} else {
			return false;
		}
	}
	return true;
}

static enum imap_cmd_res
imap_list_run(struct imap_session *s, struct imap_cmd *cmd, bool lsub)
{
	struct imap_list_ctx ctx;
	const struct imap_arg *args = cmd->args;
	size_t argc = cmd->argc, i;
	const char *ref;

	memset(&ctx, 0, sizeof(ctx));
	ctx.lsub = lsub;
	ctx.patterns = arena_alloc(cmd->arena, IMAP_LIST_PATTERNS_MAX *
						       sizeof(char *));
	if (!lsub && argc > 0 && args[0].type == IMAP_ARG_LIST) {
		if (!imap_list_selection(&ctx, &args[0]))
			goto bad;
		args++;
		argc--;
	}
	if (argc < 2 || (ref = imap_list_decode(s, &args[0])) == NULL)
		goto bad;
	if (args[1].type == IMAP_ARG_LIST && !lsub) {
		for (i = 0; i < args[1].count; i++) {
			if (!imap_list_add_pattern(s, &ctx, ref,
						   &args[1].list[i]))
				goto bad;
		}
	} else if (!imap_list_add_pattern(s, &ctx, ref, &args[1])) {
		goto bad;
	}
	if (argc == 4 && !lsub && imap_arg_is_atom(&args[2], "RETURN")) {
		if (!imap_list_return(&ctx, &args[3]))
			goto bad;
	} else if (argc != 2) {
		goto bad;
	}
	if (!lsub && ctx.npatterns == 1 && args[1].type != IMAP_ARG_LIST &&
	    args[1].len == 0) {
		/* RFC 9051 6.3.9: the delimiter and root */
		imap_session_printf(s, "* LIST (\\Noselect) \"/\" \"\"");
		imap_cmd_ok(cmd, "OK List completed.");
		return IMAP_CMD_DONE;
	}
	if (imap_list_collect(s, &ctx) < 0) {
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	imap_list_output(s, &ctx);
	imap_cmd_ok(cmd, lsub ? "OK Lsub completed." : "OK List completed.");
	return IMAP_CMD_DONE;
bad:
	imap_cmd_bad(cmd, "BAD Invalid LIST arguments.");
	return IMAP_CMD_DONE;
}

void
imap_list_write_one(struct imap_session *s, const char *name)
{
	struct imap_list_ctx ctx;
	size_t i;

	memset(&ctx, 0, sizeof(ctx));
	if (imap_list_collect(s, &ctx) < 0)
		return;
	for (i = 0; i < ctx.count; i++) {
		if (ctx.e[i].exists && strcmp(ctx.e[i].name, name) == 0) {
			imap_list_write_entry(s, &ctx, &ctx.e[i], false);
			return;
		}
	}
}

enum imap_cmd_res
imap_cmd_list(struct imap_session *s, struct imap_cmd *cmd)
{
	return imap_list_run(s, cmd, false);
}

enum imap_cmd_res
imap_cmd_lsub(struct imap_session *s, struct imap_cmd *cmd)
{
	return imap_list_run(s, cmd, true);
}
