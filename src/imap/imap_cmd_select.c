/* SELECT / EXAMINE (RFC 9051 6.3.2, 6.3.3; RFC 3501 6.3.1 for the
   IMAP4rev1 extras RECENT (SELECT takes the new messages as \Recent,
   EXAMINE only looks) and UNSEEN; the LIST response for IMAP4rev2
   clients), CLOSE (6.4.1), UNSELECT (RFC 3691,
   9051 6.4.2), CHECK (RFC 3501 6.4.1), EXPUNGE (6.4.3) and UID EXPUNGE
   (RFC 4315, 9051 6.4.9): their removal runs on the commit thread
   (imap_session_commit), the reply follows the durable COMMIT. The
   view is loaded once at SELECT; later
   changes come through imap_session_sync(). The view of a large
   mailbox that the worker's cache (imap_view_cache.c) does not hold is
   read on the worker's read thread (store_reader.c), mailbox row and
   messages in one snapshot, while the loop serves the other
   connections; the session reads no further command until it is in.
   SELECT parameters CONDSTORE and QRESYNC (RFC 7162 3.1.8, 3.2.5) and
   the CLOSED response (3.2.11) are handled with imap_condstore.c. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

void
imap_keywords_merge(struct buf *all, const char *kw)
{
	const char *p = kw;

	while (p != NULL && *p != '\0') {
		const char *e = strchr(p, ' ');
		size_t n = e == NULL ? strlen(p) : (size_t)(e - p);
		const char *q = buf_cstr(all);
		bool found = false;

		while (*q != '\0' && !found) {
			const char *qe = strchr(q, ' ');
			size_t qn = qe == NULL ? strlen(q) : (size_t)(qe - q);

			found = qn == n && strncasecmp(q, p, n) == 0;
			q += qn;
			if (*q == ' ')
				q++;
		}
		if (!found && n > 0) {
			if (all->len > 0)
				(void)buf_append_byte(all, ' ');
			(void)buf_append(all, p, n);
		}
		p += n;
		if (*p == ' ')
			p++;
	}
}

struct imap_view_loader {
	struct imap_view *v;
	struct buf kw;
};

/* One message from the store straight into the view's array. */
static int
imap_view_load_one(void *ctx, const struct store_view_msg *sm)
{
	struct imap_view_loader *l = ctx;
	struct imap_view *v = l->v;
	struct imap_msg *m;

	if (v->count == v->cap) {
		v->cap *= 2;
		v->msgs = xreallocarray(v->msgs, v->cap, sizeof(*v->msgs));
	}
	m = &v->msgs[v->count++];
	memset(m, 0, sizeof(*m));
	m->uid = sm->uid;
	m->flags = sm->flags;
	m->modseq = sm->modseq;
	/* Only messages with keywords cost an allocation. */
	if (sm->keywords != NULL && *sm->keywords != '\0') {
		m->keywords = xstrdup(sm->keywords);
		imap_keywords_merge(&l->kw, m->keywords);
	}
	return 0;
}

/* Give back the unused tail of an array grown by doubling, which an
   idle session would otherwise keep. */
static void
imap_view_trim(struct imap_view *v)
{
	if (v->cap - v->count > v->count / 4 + 16) {
		v->cap = v->count > 0 ? v->count : 16;
		v->msgs = xreallocarray(v->msgs, v->cap, sizeof(*v->msgs));
	}
}

static void
imap_view_loader_init(struct imap_view_loader *l, struct imap_view *v)
{
	v->cap = 16;
	v->msgs = xreallocarray(NULL, v->cap, sizeof(*v->msgs));
	l->v = v;
	buf_init(&l->kw, IMAP_VIEW_KEYWORDS_MAX_BYTES);
}

/* The whole view from the store (into v, whose msgs is NULL); a large
   one is kept in the worker's cache for the next SELECT. */
static int
imap_view_load_store(struct imap_session *s, const struct store_mailbox *box,
		     struct imap_view *v)
{
	struct imap_view_loader l;

	imap_view_loader_init(&l, v);
	if (store_msg_list_view(s->env->store, box->id, 1, imap_view_load_one,
				&l) < 0) {
		buf_free(&l.kw);
		return -1;
	}
	imap_view_trim(v);
	v->keywords = buf_steal(&l.kw, NULL);
	imap_view_cache_put(box, v);
	return 0;
}

static struct imap_view *
imap_view_new(const struct store_mailbox *box, bool readonly)
{
	struct imap_view *v = xcalloc(1, sizeof(*v));

	v->mailbox_id = box->id;
	v->readonly = readonly;
	v->uidvalidity = box->uidvalidity;
	v->uidnext = box->uidnext;
	v->modseq = box->highestmodseq;
	v->name = xstrdup(box->name);
	return v;
}

static void
imap_view_install(struct imap_session *s, struct imap_view *v,
		  uint32_t recent_uid)
{
	s->view = v;
	s->state = IMAP_STATE_SELECTED;
	imap_view_take_recent(s, recent_uid);
}

/* ---- the read thread: large views off the loop ---- */

static struct store_reader *imap_select_reader;
/* Test hook (TERN_TEST_VIEW_LOAD_HOLD, read at start): while the file
   it names exists, a view loaded on the read thread is held after its
   snapshot was read; "<file>.held" exists meanwhile. */
static char *imap_select_hold;

/* A view being read on the read thread for a SELECT. The command's
   ctx; freed by its cont, or by cleanup when the session goes first. */
struct imap_select_job {
	struct store_reader_job job; /* first */
	struct imap_session *s;
	int64_t mailbox_id;
	bool readonly;
	struct imap_qresync q; /* known: in the command arena */
	/* out, written by the thread */
	int found; /* 1, 0 (gone meanwhile), STORE_ERR */
	struct store_mailbox box;
	struct imap_view data; /* msgs, count, cap, keywords */
	/* for the log: when submitted, how long the read took, and
	   where the view came from (the persisted snapshot or rows) */
	int64_t submit_us, read_us;
	struct store_view_load load;
};

static void
imap_view_free_msgs(struct imap_view *v)
{
	imap_msgs_free(v->msgs, v->count);
	free(v->keywords);
	memset(v, 0, sizeof(*v));
}

static void
imap_select_job_free(struct imap_select_job *j)
{
	store_mailbox_clear(&j->box);
	imap_view_free_msgs(&j->data);
	free(j);
}

static void
imap_select_job_cleanup(struct imap_cmd *cmd)
{
	imap_select_job_free(cmd->ctx);
	cmd->ctx = NULL;
}

static void
imap_select_hold_wait(void)
{
	char held[4096];
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int fd, i;

	if (imap_select_hold == NULL || access(imap_select_hold, F_OK) != 0)
		return;
	if (snprintf(held, sizeof(held), "%s.held", imap_select_hold) >=
	    (int)sizeof(held))
		return;
	fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	/* bounded: 30 s at most */
	for (i = 0; i < 3000 && access(imap_select_hold, F_OK) == 0; i++)
		nanosleep(&ts, NULL);
	(void)unlink(held);
}

/* On the read thread, with its store: the snapshot into the job. */
static int
imap_select_job_run(struct store *st, struct store_reader_job *job)
{
	struct imap_select_job *j = (struct imap_select_job *)job;
	struct imap_view_loader l;
	int64_t start = ev_clock_us();

	imap_view_loader_init(&l, &j->data);
	j->found = store_mailbox_view_snapshot(st, j->mailbox_id, &j->box,
					       imap_view_load_one, &l,
					       &j->load);
	j->read_us = ev_clock_us() - start;
	if (j->found < 0) {
		buf_free(&l.kw);
		return STORE_ERR;
	}
	imap_view_trim(&j->data);
	j->data.keywords = buf_steal(&l.kw, NULL);
	imap_select_hold_wait();
	return STORE_OK;
}

/* Back on the loop. */
static void
imap_select_job_done(struct store_reader_job *job)
{
	struct imap_select_job *j = (struct imap_select_job *)job;
	struct imap_session *s = j->s;

	s->load_pending = false;
	log_info("imap", s->id, "view-loaded mailbox_id=%lld messages=%zu "
		 "snapshot=%d from_snapshot=%zu from_rows=%zu "
		 "expunged_since=%zu snapshot_save=%d read_ms=%.1f "
		 "wait_ms=%.1f", (long long)j->mailbox_id, j->data.count,
		 j->load.snap_used, j->load.from_snap, j->load.from_rows,
		 j->load.expunged, j->load.snap_save,
		 (double)j->read_us / 1000.0,
		 (double)(ev_clock_us() - j->submit_us) / 1000.0);
	if (s->dead)
		log_info("imap", s->id, "view-load-done-after-close");
	if (imap_session_dead(s))
		return; /* freed, the job with it (cleanup) */
	imap_session_resume(s);
}

int
imap_select_init(struct tern_env *env)
{
	const char *error, *hold = getenv("TERN_TEST_VIEW_LOAD_HOLD");

	imap_select_reader = store_reader_new(env->loop,
					      store_datadir(env->store),
					      &error);
	if (imap_select_reader == NULL) {
		log_warn("imap", "-", "view-reader-failed error=%s", error);
		return -1;
	}
	if (hold != NULL && *hold != '\0')
		imap_select_hold = xstrdup(hold);
	return 0;
}

void
imap_select_deinit(void)
{
	store_reader_free(&imap_select_reader);
	xfree(&imap_select_hold);
}

static enum imap_cmd_res imap_select_loaded(struct imap_session *s,
					    struct imap_cmd *cmd);

/* Hand the load of box's view to the read thread: the SELECT goes on
   in imap_select_loaded. */
static enum imap_cmd_res
imap_select_async(struct imap_session *s, struct imap_cmd *cmd,
		  const struct store_mailbox *box, bool readonly,
		  const struct imap_qresync *q)
{
	struct imap_select_job *j = xcalloc(1, sizeof(*j));

	j->job.run = imap_select_job_run;
	j->job.done = imap_select_job_done;
	j->s = s;
	j->mailbox_id = box->id;
	j->readonly = readonly;
	j->q = *q;
	cmd->ctx = j;
	cmd->cont = imap_select_loaded;
	cmd->cleanup = imap_select_job_cleanup;
	s->load_pending = true;
	j->submit_us = ev_clock_us();
	store_reader_submit(imap_select_reader, &j->job);
	return IMAP_CMD_WAIT;
}

static void
imap_select_flags(struct imap_session *s)
{
	struct imap_view *v = s->view;
	const char *kw = v->keywords != NULL ? v->keywords : "";
	const char *sp = *kw != '\0' ? " " : "";

	imap_session_printf(s, "* FLAGS (\\Answered \\Flagged \\Deleted "
			    "\\Seen \\Draft%s%s)", sp, kw);
	if (v->readonly)
		imap_session_printf(s, "* OK [PERMANENTFLAGS ()] Read-only "
				    "mailbox.");
	else
		imap_session_printf(s, "* OK [PERMANENTFLAGS (\\Answered "
				    "\\Flagged \\Deleted \\Seen \\Draft%s%s "
				    "\\*)] Flags permitted.", sp, kw);
}

void
imap_view_keywords_add(struct imap_session *s, const char *kw)
{
	struct imap_view *v = s->view;
	struct buf all;
	size_t before;

	if (v == NULL || kw == NULL || *kw == '\0')
		return;
	buf_init(&all, IMAP_VIEW_KEYWORDS_MAX_BYTES);
	if (v->keywords != NULL)
		(void)buf_append_str(&all, v->keywords);
	before = all.len;
	imap_keywords_merge(&all, kw);
	if (all.len == before) {
		buf_free(&all);
		return;
	}
	free(v->keywords);
	v->keywords = buf_steal(&all, NULL);
	imap_select_flags(s);
}

static void
imap_select_untagged(struct imap_session *s)
{
	struct imap_view *v = s->view;
	size_t i;

	imap_select_flags(s);
	imap_session_printf(s, "* %zu EXISTS", v->count);
	if (s->rev2) {
		imap_list_write_one(s, v->name);
	} else {
		imap_session_printf(s, "* %zu RECENT",
				    imap_view_recent_count(v));
		for (i = 0; i < v->count; i++) {
			if ((v->msgs[i].flags & STORE_FLAG_SEEN) == 0) {
				imap_session_printf(s, "* OK [UNSEEN %zu] "
						    "First unseen.", i + 1);
				break;
			}
		}
	}
	imap_session_printf(s, "* OK [UIDVALIDITY %u] UIDs valid",
			    v->uidvalidity);
	imap_session_printf(s, "* OK [UIDNEXT %u] Predicted next UID",
			    v->uidnext);
}

/* The view is in: the untagged responses, the QRESYNC part, the OK. */
static enum imap_cmd_res
imap_select_reply(struct imap_session *s, struct imap_cmd *cmd,
		  const struct imap_qresync *q, bool readonly)
{
	imap_select_untagged(s);
	if (imap_condstore_select_sync(s, q) < 0) {
		log_error("imap", s->id, "qresync-failed error=%s",
			  store_last_error(s->env->store));
		imap_session_unselect(s);
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	imap_cmd_ok(cmd, readonly ? "OK [READ-ONLY] Examine completed." :
				    "OK [READ-WRITE] Select completed.");
	return IMAP_CMD_DONE;
}

/* The read thread's snapshot (cmd->ctx) becomes the session's view. */
static enum imap_cmd_res
imap_select_loaded(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_select_job *j = cmd->ctx;
	struct imap_view *v;
	enum imap_cmd_res res = IMAP_CMD_DONE;

	cmd->cleanup = NULL;
	cmd->ctx = NULL;
	if (j->job.result != STORE_OK) {
		log_error("imap", s->id, "select-failed error=%s",
			  j->job.error);
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
	} else if (j->found == 0 || j->box.account_id != s->account_id) {
		/* deleted while it was read */
		imap_cmd_no(cmd, "NO [NONEXISTENT] Mailbox doesn't exist.");
	} else {
		v = imap_view_new(&j->box, j->readonly);
		v->msgs = j->data.msgs;
		v->count = j->data.count;
		v->cap = j->data.cap;
		v->keywords = j->data.keywords;
		memset(&j->data, 0, sizeof(j->data));
		imap_view_cache_put(&j->box, v);
		imap_view_install(s, v, j->box.recent_uid);
		res = imap_select_reply(s, cmd, &j->q, j->readonly);
	}
	imap_select_job_free(j);
	return res;
}

/* The view of box: from the worker's cache or, for a small mailbox,
   from the store at once; a large one from the read thread. */
static enum imap_cmd_res
imap_select_load(struct imap_session *s, struct imap_cmd *cmd,
		 const struct store_mailbox *box, bool readonly,
		 const struct imap_qresync *q)
{
	struct imap_view *v = imap_view_new(box, readonly);
	int r = imap_view_cache_load(s->env->store, box, v);

	if (r == 0 && imap_select_reader != NULL &&
	    box->uidnext > IMAP_VIEW_THREAD_MIN_UIDS) {
		imap_view_free(&v);
		return imap_select_async(s, cmd, box, readonly, q);
	}
	if (r == 0 && imap_view_load_store(s, box, v) < 0)
		r = -1;
	if (r < 0) {
		imap_view_free(&v);
		log_error("imap", s->id, "select-failed error=%s",
			  store_last_error(s->env->store));
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	imap_view_install(s, v, box->recent_uid);
	return imap_select_reply(s, cmd, q, readonly);
}

static enum imap_cmd_res
imap_select(struct imap_session *s, struct imap_cmd *cmd, bool readonly)
{
	struct store_mailbox box;
	struct imap_qresync q;
	const char *name, *error;
	enum imap_cmd_res res;
	int r;

	if (cmd->argc < 1 || cmd->argc > 2) {
		imap_cmd_bad(cmd, "BAD Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	memset(&q, 0, sizeof(q));
	if (cmd->argc == 2 &&
	    imap_condstore_select_params(s, cmd, &cmd->args[1], &q) < 0)
		return IMAP_CMD_DONE;
	if (s->view != NULL) {
		imap_session_unselect(s);
		if (s->rev2 || s->qresync)
			imap_session_printf(s, "* OK [CLOSED] Previous "
					    "mailbox closed.");
	}
	name = imap_mailbox_from_arg(s, &cmd->args[0], &error);
	if (name == NULL) {
		imap_cmd_reply(cmd, "%s", error);
		cmd->bad = error[0] == 'B';
		return IMAP_CMD_DONE;
	}
	r = store_mailbox_get(s->env->store, s->account_id, name, &box);
	if (r == 0) {
		imap_cmd_no(cmd, "NO [NONEXISTENT] Mailbox doesn't exist.");
		return IMAP_CMD_DONE;
	}
	if (r < 0) {
		log_error("imap", s->id, "select-failed error=%s",
			  store_last_error(s->env->store));
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return IMAP_CMD_DONE;
	}
	res = imap_select_load(s, cmd, &box, readonly, &q);
	store_mailbox_clear(&box);
	return res;
}

enum imap_cmd_res
imap_cmd_select(struct imap_session *s, struct imap_cmd *cmd)
{
	return imap_select(s, cmd, false);
}

enum imap_cmd_res
imap_cmd_examine(struct imap_session *s, struct imap_cmd *cmd)
{
	return imap_select(s, cmd, true);
}

/* An EXPUNGE (or CLOSE): the \Deleted messages the loop found, removed
   on the commit thread (imap_session_commit) if they still have it. */
struct imap_expunge_job {
	struct imap_commit ic; /* first */
	int64_t mailbox_id;
	uint32_t *uids; /* command arena */
	size_t k;
};

/* On the commit thread (store_commit_run_fn), with its store. */
static int
imap_expunge_commit_run(struct store *st, struct store_commit_job *job)
{
	struct imap_expunge_job *j = (struct imap_expunge_job *)job;
	uint64_t modseq;

	return store_msg_expunge_deleted(st, j->mailbox_id, j->uids, j->k,
					 &modseq);
}

/* The UIDs of the \Deleted messages (only those in set, when given). */
static int
imap_expunge_list(struct imap_session *s, struct imap_cmd *cmd,
		  const struct imap_seqset *set, struct imap_expunge_job *j)
{
	struct store_msg *msgs = NULL;
	size_t n = 0, i, k;

	if (store_msg_list(s->env->store, j->mailbox_id, 1, &msgs, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if ((msgs[i].flags & STORE_FLAG_DELETED) == 0 ||
		    (set != NULL && !imap_seqset_contains(set, msgs[i].uid)))
			msgs[i].uid = 0;
		else
			j->k++;
	}
	j->uids = arena_alloc(cmd->arena,
			      (j->k > 0 ? j->k : 1) * sizeof(*j->uids));
	for (i = 0, k = 0; i < n; i++) {
		if (msgs[i].uid != 0)
			j->uids[k++] = msgs[i].uid;
	}
	store_msgs_free(msgs, n);
	return 0;
}

/* Expunge the \Deleted messages (only those with a UID in set, when
   given) in the store, then cont reads cmd->ctx's job.result (at once
   when there was nothing to remove or the list failed). */
static enum imap_cmd_res
imap_expunge_start(struct imap_session *s, struct imap_cmd *cmd,
		   const struct imap_seqset *set, imap_cmd_fn *cont)
{
	struct imap_expunge_job *j = arena_zalloc(cmd->arena, sizeof(*j));

	j->mailbox_id = s->view->mailbox_id;
	cmd->ctx = j;
	if (imap_expunge_list(s, cmd, set, j) < 0) {
		j->ic.job.result = STORE_ERR;
		snprintf(j->ic.job.error, sizeof(j->ic.job.error), "%s",
			 store_last_error(s->env->store));
		return cont(s, cmd);
	}
	if (j->k == 0)
		return cont(s, cmd);
	j->ic.job.run = imap_expunge_commit_run;
	return imap_session_commit(s, cmd, &j->ic, cont);
}

/* The job is over: 0, or -1 (logged) when it failed. */
static int
imap_expunge_done(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_expunge_job *j = cmd->ctx;

	if (j->ic.job.result != STORE_OK) {
		log_error("imap", s->id, "expunge-failed error=%s",
			  j->ic.job.error);
		return -1;
	}
	if (j->k > 0)
		imap_notify_publish(s, j->mailbox_id);
	return 0;
}

static enum imap_cmd_res
imap_expunge_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	if (imap_expunge_done(s, cmd) < 0)
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
	else
		imap_cmd_ok(cmd, "OK Expunge completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_expunge(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_seqset set;
	struct imap_view *v = s->view;

	if (cmd->argc != (cmd->uid ? 1u : 0u)) {
		imap_cmd_bad(cmd, "BAD Invalid arguments.");
		return IMAP_CMD_DONE;
	}
	if (v->readonly) {
		imap_cmd_no(cmd, "NO [READ-ONLY] Mailbox is read-only.");
		return IMAP_CMD_DONE;
	}
	if (cmd->uid) {
		if (cmd->args[0].type != IMAP_ARG_ATOM ||
		    imap_seqset_parse(cmd->arena, cmd->args[0].str,
				      cmd->args[0].len, &set) < 0) {
			imap_cmd_bad(cmd, "BAD Invalid UID set.");
			return IMAP_CMD_DONE;
		}
		imap_seqset_resolve(&set, v->count > 0 ?
						  v->msgs[v->count - 1].uid : 0);
	}
	return imap_expunge_start(s, cmd, cmd->uid ? &set : NULL,
				  imap_expunge_reply);
}

/* CLOSE answers OK even when its expunge failed (RFC 9051 6.4.1: the
   mailbox is closed either way). */
static enum imap_cmd_res
imap_close_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	(void)imap_expunge_done(s, cmd);
	imap_session_unselect(s);
	imap_cmd_ok(cmd, "OK Close completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_close(struct imap_session *s, struct imap_cmd *cmd)
{
	if (s->view->readonly) {
		imap_session_unselect(s);
		imap_cmd_ok(cmd, "OK Close completed.");
		return IMAP_CMD_DONE;
	}
	return imap_expunge_start(s, cmd, NULL, imap_close_reply);
}

enum imap_cmd_res
imap_cmd_unselect(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_session_unselect(s);
	imap_cmd_ok(cmd, "OK Unselect completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_res
imap_cmd_check(struct imap_session *s, struct imap_cmd *cmd)
{
	(void)s;
	imap_cmd_ok(cmd, "OK Check completed.");
	return IMAP_CMD_DONE;
}
