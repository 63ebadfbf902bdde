/* THREAD and UID THREAD (RFC 5256 4 and 5) with the ORDEREDSUBJECT and
   REFERENCES algorithms, on the messages that match the search
   criteria.

   ORDEREDSUBJECT: sort by base subject (2.1), then sent date (2.2);
   each run of one subject is a thread whose first message is the
   parent of the others; threads ordered by their first message's date.

   REFERENCES (the steps of RFC 5256 5): (1) link messages and dummy
   containers through References (else the first Message-ID of
   In-Reply-To), refusing links that would make a loop (a message's
   own last reference replaces the parent other messages presumed for
   it, and when that link would loop it is left with none); a missing or
   duplicate Message-ID makes the message unique; (2) the root set is
   every container without a parent; (3) dummies without children go,
   dummies with children are replaced by them, except a root dummy with
   more than one child; (4) roots sorted by sent date, a dummy by its
   first child's; (5) roots with the same base subject are merged
   (dummy, then non-reply wins the subject table); (6) every sibling
   list sorted by sent date. Equal dates keep mailbox order.

   Every structure is bounded by the number of messages times
   (1 + IMAP_THREAD_REFS_MAX). */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_sort.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

struct imap_thr {
	struct imap_sort_msg *msg; /* NULL: dummy */
	const char *id;
	struct imap_thr *parent, *kids, *next; /* children list */
	struct imap_thr *last;		      /* last child */
	size_t ri;			      /* index in the root set */
	bool dead;
};

struct imap_thr_set {
	struct imap_thr *nodes;
	size_t n, cap;
	/* Message-ID hash table: open addressing, indexes into nodes + 1 */
	size_t *tab, tabsize;
};

/* ---- containers and the id table ---- */

static uint64_t
imap_thr_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct imap_thr *
imap_thr_new(struct imap_thr_set *t)
{
	if (t->n == t->cap)
		panic("imap thread: container budget exceeded");
	memset(&t->nodes[t->n], 0, sizeof(t->nodes[0]));
	return &t->nodes[t->n++];
}

/* The container of id, created as a dummy when missing. */
static struct imap_thr *
imap_thr_get(struct imap_thr_set *t, const char *id)
{
	size_t i = imap_thr_hash(id) & (t->tabsize - 1);
	struct imap_thr *c;

	while (t->tab[i] != 0) {
		c = &t->nodes[t->tab[i] - 1];
		if (strcmp(c->id, id) == 0)
			return c;
		i = (i + 1) & (t->tabsize - 1);
	}
	c = imap_thr_new(t);
	c->id = id;
	t->tab[i] = (size_t)(c - t->nodes) + 1;
	return c;
}

/* Is a the same as b or one of b's descendants? A chain longer than
   IMAP_THREAD_DEPTH_MAX counts as yes, so hostile References cannot
   make linking quadratic (the link is not made). */
static bool
imap_thr_below(const struct imap_thr *a, const struct imap_thr *b)
{
	size_t steps = 0;

	for (; a != NULL; a = a->parent) {
		if (a == b || ++steps > IMAP_THREAD_DEPTH_MAX)
			return true;
	}
	return false;
}

/* Cut the parent links of containers whose depth is a multiple of
   IMAP_THREAD_DEPTH_MAX, so no tree is deeper than that and the
   recursive steps below stay within a small stack. Linear: depths are
   memoised. */
static void
imap_thr_depth_cut(struct imap_thr_set *t)
{
	size_t *depth = xcalloc(t->n, sizeof(*depth)), i, n, d;
	struct imap_thr **stack = xcalloc(t->n + 1, sizeof(*stack)), *c;

	for (i = 0; i < t->n; i++) {
		n = 0;
		for (c = &t->nodes[i]; c != NULL && depth[c - t->nodes] == 0;
		     c = c->parent)
			stack[n++] = c;
		d = c != NULL ? depth[c - t->nodes] : 0;
		while (n > 0)
			depth[stack[--n] - t->nodes] = ++d;
	}
	for (i = 0; i < t->n; i++) {
		if (depth[i] > 1 && (depth[i] - 1) % IMAP_THREAD_DEPTH_MAX == 0)
			t->nodes[i].parent = NULL;
	}
	free(stack);
	free(depth);
}

/* ---- step 1 ---- */

static struct imap_thr *
imap_thr_msg_container(struct imap_thr_set *t, struct imap_sort_msg *m)
{
	struct imap_thr *c = NULL;

	if (m->msgid != NULL)
		c = imap_thr_get(t, m->msgid);
	if (c == NULL || c->msg != NULL)
		c = imap_thr_new(t); /* missing or duplicate: unique */
	c->msg = m;
	return c;
}

static void
imap_thr_link_msg(struct imap_thr_set *t, struct imap_sort_msg *m)
{
	struct imap_thr *c = imap_thr_msg_container(t, m), *prev = NULL, *r;
	size_t i;

	for (i = 0; i < m->nrefs; i++) {
		r = imap_thr_get(t, m->refs[i]);
		/* (1)(B): link each reference to the one before it unless
		   it has a parent or that would make a loop */
		if (prev != NULL && r->parent == NULL && r != prev &&
		    !imap_thr_below(prev, r))
			r->parent = prev;
		prev = r;
	}
	/* (1)(C): the last reference (none: no parent) is the parent.
	   A parent presumed from another message's References is broken
	   off first, and the new link is not made when it would make a
	   loop, so the message may be left without one. */
	c->parent = NULL;
	if (prev != NULL && !imap_thr_below(prev, c))
		c->parent = prev;
}

static void
imap_thr_add_kid(struct imap_thr *p, struct imap_thr *k)
{
	k->parent = p;
	k->next = NULL;
	if (p->last != NULL)
		p->last->next = k;
	else
		p->kids = k;
	p->last = k;
}

/* ---- steps 3, 4 and 6 ---- */

/* (3) Prune the sibling list starting at first; root: the top level. */
static struct imap_thr *
imap_thr_prune(struct imap_thr *first, struct imap_thr *parent, bool root)
{
	struct imap_thr *head = NULL, *tail = NULL, *c, *next, *k, *kn;

	for (c = first; c != NULL; c = next) {
		next = c->next;
		c->kids = imap_thr_prune(c->kids, c, false);
		for (c->last = c->kids; c->last != NULL && c->last->next;
		     c->last = c->last->next)
			;
		if (c->msg == NULL && c->kids == NULL)
			continue;
		if (c->msg == NULL && !(root && c->kids->next != NULL)) {
			for (k = c->kids; k != NULL; k = kn) {
				kn = k->next;
				k->parent = parent;
				k->next = NULL;
				if (tail != NULL)
					tail->next = k;
				else
					head = k;
				tail = k;
			}
			continue;
		}
		c->next = NULL;
		if (tail != NULL)
			tail->next = c;
		else
			head = c;
		tail = c;
	}
	return head;
}

/* The message that dates a container: itself, or its first child's. */
static const struct imap_sort_msg *
imap_thr_dater(const struct imap_thr *c)
{
	while (c != NULL && c->msg == NULL)
		c = c->kids;
	return c != NULL ? c->msg : NULL;
}

static int
imap_thr_cmp(const void *x, const void *y)
{
	const struct imap_thr *cx = *(struct imap_thr *const *)x;
	const struct imap_thr *cy = *(struct imap_thr *const *)y;
	const struct imap_sort_msg *a = imap_thr_dater(cx);
	const struct imap_sort_msg *b = imap_thr_dater(cy);

	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* (4)/(6): sort the children of every container below p, then p's. */
static void
imap_thr_sort_kids(struct imap_thr *p, struct imap_thr **tmp)
{
	struct imap_thr *k;
	size_t n = 0, i;

	for (k = p->kids; k != NULL; k = k->next)
		imap_thr_sort_kids(k, tmp);
	for (k = p->kids; k != NULL; k = k->next)
		tmp[n++] = k;
	if (n < 2)
		return;
	qsort(tmp, n, sizeof(*tmp), imap_thr_cmp);
	p->kids = tmp[0];
	for (i = 0; i + 1 < n; i++)
		tmp[i]->next = tmp[i + 1];
	tmp[n - 1]->next = NULL;
	p->last = tmp[n - 1];
}

/* ---- step 5 ---- */

static const char *
imap_thr_subject(const struct imap_thr *c)
{
	const struct imap_sort_msg *m = c->msg != NULL ? c->msg :
				       c->kids != NULL ? c->kids->msg : NULL;

	return m != NULL ? m->subject : "";
}

static bool
imap_thr_reply(const struct imap_thr *c)
{
	return c->msg != NULL && c->msg->reply;
}

/* Index of the root with this subject in the table (linear probe on a
   hash of the i;ascii-casemap form), or where to put it. */
static size_t
imap_thr_slot(struct imap_thr **tab, size_t size, const char *subj)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (const char *p = subj; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch >= 'a' && ch <= 'z')
			ch -= 32;
		h = (h ^ ch) * 1099511628211ull;
	}
	for (i = h & (size - 1); tab[i] != NULL; i = (i + 1) & (size - 1)) {
		if (imap_sort_strcmp(imap_thr_subject(tab[i]), subj) == 0)
			break;
	}
	return i;
}

static void
imap_thr_merge(struct imap_thr_set *t, struct imap_thr **roots, size_t r,
	       struct imap_thr **slot)
{
	struct imap_thr *cur = roots[r], *tab = *slot, *d, *k, *kn;

	if (cur->msg == NULL && tab->msg == NULL) {
		for (k = cur->kids; k != NULL; k = kn) {
			kn = k->next;
			imap_thr_add_kid(tab, k);
		}
		cur->dead = true;
	} else if (tab->msg == NULL ||
		   (imap_thr_reply(cur) && !imap_thr_reply(tab))) {
		imap_thr_add_kid(tab, cur);
		cur->dead = true;
	} else {
		d = imap_thr_new(t);
		/* the dummy takes the table message's place in the roots */
		d->ri = tab->ri;
		roots[d->ri] = d;
		imap_thr_add_kid(d, tab);
		imap_thr_add_kid(d, cur);
		cur->dead = true;
		*slot = d;
	}
}

static void
imap_thr_subjects(struct imap_thr_set *t, struct imap_thr **roots, size_t n)
{
	size_t size = 16, i, j;
	struct imap_thr **tab;

	while (size < n * 2)
		size *= 2;
	tab = xcalloc(size, sizeof(*tab));
	for (i = 0; i < n; i++) {
		const char *subj = imap_thr_subject(roots[i]);
		struct imap_thr *c = roots[i];

		if (subj[0] == '\0')
			continue;
		j = imap_thr_slot(tab, size, subj);
		if (tab[j] == NULL ||
		    (tab[j]->msg != NULL &&
		     (c->msg == NULL ||
		      (imap_thr_reply(tab[j]) && !imap_thr_reply(c)))))
			tab[j] = c;
	}
	for (i = 0; i < n; i++) {
		const char *subj = imap_thr_subject(roots[i]);

		if (subj[0] == '\0' || roots[i]->dead)
			continue;
		j = imap_thr_slot(tab, size, subj);
		if (tab[j] != roots[i])
			imap_thr_merge(t, roots, i, &tab[j]);
	}
	free(tab);
}

/* ---- output ---- */

static void
imap_thr_write(struct buf *b, const struct imap_thr *c, bool uid)
{
	const struct imap_thr *k;

	if (c->msg != NULL) {
		(void)buf_printf(b, "%u", uid ? c->msg->uid
					       : (uint32_t)c->msg->idx + 1);
		if (c->kids != NULL)
			(void)buf_append_byte(b, ' ');
	}
	if (c->kids != NULL && (c->kids->next == NULL)) {
		imap_thr_write(b, c->kids, uid);
		return;
	}
	for (k = c->kids; k != NULL; k = k->next) {
		(void)buf_append_byte(b, '(');
		imap_thr_write(b, k, uid);
		(void)buf_append_byte(b, ')');
	}
}

static void
imap_thr_output(struct imap_session *s, struct imap_cmd *cmd,
		struct imap_thr *top)
{
	struct imap_thr *c;
	struct buf b;

	buf_init(&b, CONN_OUTPUT_MAX_BYTES / 2);
	(void)buf_append_str(&b, "* THREAD");
	if (top->kids != NULL)
		(void)buf_append_byte(&b, ' ');
	for (c = top->kids; c != NULL; c = c->next) {
		(void)buf_append_byte(&b, '(');
		imap_thr_write(&b, c, cmd->uid);
		(void)buf_append_byte(&b, ')');
	}
	(void)buf_append_str(&b, "\r\n");
	imap_session_write(s, b.data, b.len);
	buf_free(&b);
}

/* ---- the algorithms ---- */

static void
imap_thr_set_init(struct imap_thr_set *t, const struct imap_sort_msg *m,
		  size_t n)
{
	size_t refs = 0, i;

	for (i = 0; i < n; i++)
		refs += m[i].nrefs;
	/* messages, references, step 5 dummies, the top */
	t->cap = 2 * n + refs + 1;
	t->nodes = xcalloc(t->cap, sizeof(*t->nodes));
	t->n = 0;
	for (t->tabsize = 16; t->tabsize < 2 * (n + refs);)
		t->tabsize *= 2;
	t->tab = xcalloc(t->tabsize, sizeof(*t->tab));
}

static void
imap_thr_set_free(struct imap_thr_set *t)
{
	free(t->nodes);
	free(t->tab);
}

static void
imap_thr_references(struct imap_thr_set *t, struct imap_sort_msg *m,
		    size_t n, struct imap_thr *top, struct imap_thr **tmp)
{
	struct imap_thr **roots;
	size_t i, nroots = 0, nnodes;

	for (i = 0; i < n; i++)
		imap_thr_link_msg(t, &m[i]);
	imap_thr_depth_cut(t);
	/* (2) the root set, with children lists built from the parents */
	nnodes = t->n;
	for (i = 0; i < nnodes; i++) {
		struct imap_thr *c = &t->nodes[i];

		imap_thr_add_kid(c->parent != NULL ? c->parent : top, c);
	}
	top->kids = imap_thr_prune(top->kids, top, true);
	imap_thr_sort_kids(top, tmp);
	/* (5) over the sorted root set */
	nroots = 0;
	for (struct imap_thr *c = top->kids; c != NULL; c = c->next)
		nroots++;
	roots = xcalloc(nroots + 1, sizeof(*roots));
	nroots = 0;
	for (struct imap_thr *c = top->kids; c != NULL; c = c->next) {
		c->ri = nroots;
		roots[nroots++] = c;
	}
	imap_thr_subjects(t, roots, nroots);
	top->kids = top->last = NULL;
	for (i = 0; i < nroots; i++) {
		if (!roots[i]->dead)
			imap_thr_add_kid(top, roots[i]);
	}
	free(roots);
	imap_thr_sort_kids(top, tmp);
}

static int
imap_thr_subject_cmp(const void *x, const void *y)
{
	const struct imap_sort_msg *a = x, *b = y;
	int c = imap_sort_strcmp(a->subject, b->subject);

	if (c != 0)
		return c;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void
imap_thr_orderedsubject(struct imap_thr_set *t, struct imap_sort_msg *m,
			size_t n, struct imap_thr *top, struct imap_thr **tmp)
{
	struct imap_thr *root = NULL, *c;
	size_t i;

	qsort(m, n, sizeof(*m), imap_thr_subject_cmp);
	for (i = 0; i < n; i++) {
		c = imap_thr_new(t);
		c->msg = &m[i];
		if (root != NULL &&
		    imap_sort_strcmp(root->msg->subject, m[i].subject) == 0) {
			imap_thr_add_kid(root, c);
		} else {
			imap_thr_add_kid(top, c);
			root = c;
		}
	}
	/* children are in date order already; order the threads */
	imap_thr_sort_kids(top, tmp);
}

enum imap_cmd_res
imap_cmd_thread(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_thr_set t;
	struct imap_thr top = { 0 }, **tmp;
	struct imap_sort_msg *msgs;
	struct imap_search *se;
	size_t *idx = NULL, n = 0;
	bool refs;

	if (cmd->argc < 1 || (!imap_arg_is_atom(&cmd->args[0], "REFERENCES") &&
			      !imap_arg_is_atom(&cmd->args[0],
						"ORDEREDSUBJECT"))) {
		imap_cmd_bad(cmd, "BAD Unknown threading algorithm.");
		return IMAP_CMD_DONE;
	}
	refs = imap_arg_is_atom(&cmd->args[0], "REFERENCES");
	se = imap_sort_criteria(s, cmd, cmd->args + 1, cmd->argc - 1);
	if (se == NULL)
		return IMAP_CMD_DONE;
	if (imap_search_match(s, se, cmd->arena, &idx, &n) < 0 ||
	    imap_sort_load(s, cmd->arena, idx, n,
			   refs ? IMAP_SORT_NEED_REFS : 0, &msgs) < 0) {
		log_error("imap", s->id, "thread-failed error=%s",
			  store_last_error(s->env->store));
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	imap_thr_set_init(&t, msgs, n);
	tmp = xcalloc(t.cap + 1, sizeof(*tmp));
	if (refs)
		imap_thr_references(&t, msgs, n, &top, tmp);
	else
		imap_thr_orderedsubject(&t, msgs, n, &top, tmp);
	imap_thr_output(s, cmd, &top);
	free(tmp);
	imap_thr_set_free(&t);
	imap_cmd_ok(cmd, "OK Thread completed.");
	return IMAP_CMD_DONE;
}
