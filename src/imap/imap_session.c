/* IMAP session: states (RFC 9051 3: not authenticated, authenticated,
   selected, logout), the connection event switch, command dispatch with
   tagged replies after the mailbox sync, and the selected-mailbox view.
   Sync rules (RFC 9051 7.4.1, 7.5.1, 5.5): EXISTS and FETCH FLAGS may be
   sent at any command; EXPUNGE never while a FETCH, STORE, SEARCH (or
   COPY/MOVE) without UID runs, nor outside a command (except IDLE), so
   sequence numbers never shift under the client. Expunges seen at such a
   time stay pending in the view until a command that allows them.
   A QRESYNC session gets them as VANISHED instead (RFC 7162 3.2.10),
   and a CONDSTORE one sees MODSEQ in every FETCH of flags.
   \Recent (RFC 3501 2.3.2): a view takes the messages it is the first
   to see with one compare-and-swap on the mailbox's recent_uid in the
   store, so exactly one session of any worker process gets each one;
   IMAP4rev1 clients see \Recent and "* n RECENT"; IMAP4rev2 sessions
   neither see nor take it.
   Memory: the command arena exists only while a command runs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "imap/imap.h"
#include "imap/imap_int.h"
#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store.h"

static struct imap_session *imap_sessions;

static void imap_session_finish(struct imap_session *s);
static void imap_session_run(struct imap_session *s, struct imap_cmd *cmd);

/* ---- output ---- */

void
imap_session_write(struct imap_session *s, const void *data, size_t len)
{
	conn_write(s->c, data, len);
}

void
imap_session_printf(struct imap_session *s, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, CONN_OUTPUT_MAX_BYTES / 2);
	va_start(ap, fmt);
	if (buf_vprintf(&b, fmt, ap) == 0 && buf_append(&b, "\r\n", 2) == 0)
		conn_write(s->c, b.data, b.len);
	va_end(ap);
	buf_free(&b);
}

void
imap_session_bye(struct imap_session *s, const char *text)
{
	if (s->closing)
		return;
	imap_session_printf(s, "* BYE %s", text);
	s->closing = true;
	conn_close(s->c);
}

/* ---- command replies ---- */

struct arena *
imap_cmd_arena(struct imap_session *s)
{
	if (s->arena == NULL)
		s->arena = arena_new("imap-cmd", 4096);
	return s->arena;
}

void
imap_cmd_ok(struct imap_cmd *cmd, const char *text)
{
	cmd->reply = text;
}

void
imap_cmd_no(struct imap_cmd *cmd, const char *text)
{
	cmd->reply = text;
}

void
imap_cmd_bad(struct imap_cmd *cmd, const char *text)
{
	cmd->reply = text;
	cmd->bad = true;
}

void
imap_cmd_reply(struct imap_cmd *cmd, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, IMAP_COMMAND_MAX_BYTES * 4);
	va_start(ap, fmt);
	if (buf_vprintf(&b, fmt, ap) < 0)
		buf_reset(&b);
	va_end(ap);
	cmd->reply = arena_strndup(cmd->arena, buf_cstr(&b), b.len);
	buf_free(&b);
}

/* ---- capabilities ---- */

bool
imap_session_plaintext_ok(struct imap_session *s)
{
	if (conn_is_tls(s->c))
		return true;
	return s->env->cfg->plaintext_auth_loopback && conn_is_loopback(s->c);
}

const char *
imap_session_capability(struct imap_session *s)
{
	static char caps[1024];
	int n;

	if (s->state & IMAP_STATES_AUTHED) {
		n = snprintf(caps, sizeof(caps),
			     "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE "
			     "IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN "
			     "LIST-EXTENDED LIST-STATUS SPECIAL-USE "
			     "CREATE-SPECIAL-USE QUOTA QUOTA=RES-STORAGE "
			     "QUOTA=RES-MESSAGE APPENDLIMIT=%llu MULTIAPPEND "
			     "ESEARCH SEARCHRES BINARY UTF8=ACCEPT "
			     "STATUS=SIZE CONDSTORE QRESYNC OBJECTID "
			     "SAVEDATE PREVIEW NOTIFY SORT SORT=DISPLAY ESORT "
			     "THREAD=ORDEREDSUBJECT THREAD=REFERENCES%s",
			     (unsigned long long)imap_session_append_limit(s),
			     s->compressed ? "" : " COMPRESS=DEFLATE");
	} else {
		bool starttls = !conn_is_tls(s->c) && s->env->tls != NULL;
		bool plain = imap_session_plaintext_ok(s);

		n = snprintf(caps, sizeof(caps),
			     "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE "
			     "IDLE%s%s AUTH=SCRAM-SHA-256%s",
			     starttls ? " STARTTLS" : "",
			     plain ? " AUTH=PLAIN" : "",
			     plain ? "" : " LOGINDISABLED");
	}
	if (n < 0 || (size_t)n >= sizeof(caps))
		panic("imap capability string truncated");
	return caps;
}

/* The largest message the account's plan takes, read again at most every
   IMAP_SYNC_QUERY_MS. Why: every APPEND asks, and its two queries were
   8% of a worker's loop under a flood of APPENDs (perf, 10 sessions). A
   plan changed meanwhile applies within that second. */
uint64_t
imap_session_append_limit(struct imap_session *s)
{
	uint64_t limit = s->env->cfg->smtp_max_message_bytes;
	int64_t now = ev_now_ms(s->env->loop);
	struct store_account acct;
	struct store_plan plan;

	if (limit == 0)
		limit = IMAP_APPEND_LIMIT_DEFAULT;
	if (s->user == NULL)
		return limit;
	if (s->append_limit != 0 &&
	    now - s->append_limit_ms < IMAP_SYNC_QUERY_MS)
		return s->append_limit;
	if (store_account_get(s->env->store, s->user, &acct) != 1)
		return limit;
	if (acct.plan != NULL &&
	    store_plan_get(s->env->store, acct.plan, &plan) == 1 &&
	    plan.max_message_bytes != 0 && plan.max_message_bytes < limit)
		limit = plan.max_message_bytes;
	store_account_clear(&acct);
	s->append_limit = limit;
	s->append_limit_ms = now;
	return limit;
}

int
imap_session_login(struct imap_session *s, const char *user)
{
	struct store_account acct;
	int r = store_account_get(s->env->store, user, &acct);

	if (r != 1)
		return -1;
	s->account_id = acct.id;
	free(s->user);
	s->user = xstrdup(acct.address);
	s->append_limit = 0; /* another account's, if any */
	store_account_clear(&acct);
	s->state = IMAP_STATE_AUTH;
	conn_set_timeout(s->c, s->env->cfg->imap_idle_timeout_ms);
	log_info("imap", s->id, "login user=%s tls=%s", s->user,
		 conn_is_tls(s->c) ? "yes" : "no");
	return 0;
}

/* ---- the view ---- */

void
imap_msgs_free(struct imap_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(msgs[i].keywords);
	free(msgs);
}

void
imap_view_free(struct imap_view **vp)
{
	struct imap_view *v = *vp;

	if (v == NULL)
		return;
	imap_msgs_free(v->msgs, v->count);
	free(v->name);
	free(v->keywords);
	free(v);
	*vp = NULL;
}

void
imap_session_unselect(struct imap_session *s)
{
	imap_view_free(&s->view);
	xfree(&s->saved_uids);
	s->saved_count = 0;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

long
imap_view_find_uid(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->msgs[mid].uid == uid)
			return (long)mid;
		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool
imap_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a == NULL || *a == '\0') && (b == NULL || *b == '\0');
	return strcmp(a, b) == 0;
}

/* Send EXPUNGE (or VANISHED to a QRESYNC client, RFC 7162 3.2.10) for
   the messages marked in gone[] and drop them from the view. */
static void
imap_view_remove(struct imap_session *s, const bool *gone)
{
	struct imap_view *v = s->view;
	uint32_t *uids = xcalloc(v->count + 1, sizeof(*uids));
	size_t i, o = 0, k = 0;

	/* Descending, so every number is valid when it is sent. */
	for (i = v->count; i > 0 && !s->qresync; i--) {
		if (gone[i - 1])
			imap_session_printf(s, "* %zu EXPUNGE", i);
	}
	for (i = 0; i < v->count; i++) {
		if (gone[i]) {
			uids[k++] = v->msgs[i].uid;
			v->expunged_count -= v->msgs[i].expunged;
			v->recent_count -= v->msgs[i].recent;
			free(v->msgs[i].keywords);
			continue;
		}
		v->msgs[o++] = v->msgs[i];
	}
	v->count = o;
	if (s->qresync && k > 0)
		imap_condstore_vanished(s, uids, k, false);
	if (k > 0)
		s->expunges_sent = true;
	free(uids);
}

static void
imap_view_flush_expunges(struct imap_session *s)
{
	struct imap_view *v = s->view;
	bool *gone;
	size_t i;

	if (v->expunged_count == 0)
		return;
	gone = xcalloc(v->count, sizeof(*gone));
	for (i = 0; i < v->count; i++)
		gone[i] = v->msgs[i].expunged;
	imap_view_remove(s, gone);
	free(gone);
}

static void
imap_view_add(struct imap_view *v, const struct store_msg *m)
{
	struct imap_msg *im;

	if (v->count == v->cap) {
		v->cap = v->cap == 0 ? 64 : v->cap * 2;
		v->msgs = xreallocarray(v->msgs, v->cap, sizeof(*v->msgs));
	}
	im = &v->msgs[v->count++];
	im->uid = m->uid;
	im->flags = m->flags;
	im->expunged = false;
	im->recent = false;
	im->keywords = m->keywords != NULL && *m->keywords != '\0' ?
			       xstrdup(m->keywords) : NULL;
	im->modseq = m->modseq;
}

void
imap_view_set_flags(struct imap_view *v, size_t idx, uint32_t flags,
		    const char *keywords)
{
	struct imap_msg *im = &v->msgs[idx];

	im->flags = flags;
	if (imap_str_eq(im->keywords, keywords))
		return;
	free(im->keywords);
	im->keywords = keywords != NULL && *keywords != '\0' ?
			       xstrdup(keywords) : NULL;
}

void
imap_session_expunged(struct imap_session *s, const uint32_t *uids,
		      size_t count)
{
	struct imap_view *v = s->view;
	size_t i;
	long idx;
	bool *gone = xcalloc(v->count + 1, sizeof(*gone));

	for (i = 0; i < count; i++) {
		idx = imap_view_find_uid(v, uids[i]);
		if (idx >= 0)
			gone[idx] = true;
	}
	imap_view_remove(s, gone);
	free(gone);
}

uint32_t
imap_msg_flags(const struct imap_session *s, const struct imap_msg *m)
{
	return m->recent && !s->rev2 ? m->flags | IMAP_FLAG_RECENT : m->flags;
}

size_t
imap_view_recent_count(const struct imap_view *v)
{
	return v->recent_count;
}

static void
imap_view_mark_recent(struct imap_view *v, uint32_t from, uint32_t to)
{
	size_t i;

	for (i = v->count; i > 0 && v->msgs[i - 1].uid >= from; i--) {
		if (v->msgs[i - 1].uid < to && !v->msgs[i - 1].recent) {
			v->msgs[i - 1].recent = true;
			v->recent_count++;
		}
	}
}

/* The UIDs an APPEND of this session took (already moved past in the
   store): those the view has now are \Recent here. */
static void
imap_view_take_claimed(struct imap_view *v, uint32_t last)
{
	imap_view_mark_recent(v, v->claim_from, v->claim_to);
	if (last >= v->claim_to - 1)
		v->claim_from = v->claim_to = 0;
	else if (last >= v->claim_from)
		v->claim_from = last + 1;
}

void
imap_view_take_recent(struct imap_session *s, uint32_t recent_uid)
{
	struct imap_view *v = s->view;
	uint32_t last;

	/* IMAP4rev2 has no \Recent: leave it to the rev1 sessions */
	if (v->count == 0 || s->rev2)
		return;
	last = v->msgs[v->count - 1].uid;
	if (v->claim_to != 0)
		imap_view_take_claimed(v, last);
	if (recent_uid > last)
		return;
	/* UIDs only grow: the messages past last are for a later claim */
	if (!v->readonly &&
	    store_mailbox_claim_recent(s->env->store, v->mailbox_id,
				       recent_uid, last + 1) != 1)
		return;
	imap_view_mark_recent(v, recent_uid, last + 1);
}

void
imap_view_send_flags(struct imap_session *s, size_t idx, bool uid)
{
	struct imap_msg *m = &s->view->msgs[idx];
	struct buf b;

	/* a QRESYNC client keeps its state by UID: it gets the UID in every
	   untagged FETCH, not only in answers to UID commands */
	uid = uid || s->qresync;
	buf_init(&b, 64 * 1024);
	if (buf_printf(&b, "* %zu FETCH (", idx + 1) == 0 &&
	    (!uid || buf_printf(&b, "UID %u ", m->uid) == 0) &&
	    (!s->condstore || buf_printf(&b, "MODSEQ (%llu) ",
					 (unsigned long long)m->modseq) == 0) &&
	    buf_append_str(&b, "FLAGS (") == 0 &&
	    imap_write_flags(&b, imap_msg_flags(s, m), m->keywords) == 0 &&
	    buf_append_str(&b, "))\r\n") == 0)
		imap_session_write(s, b.data, b.len);
	buf_free(&b);
}

static int
imap_msg_uid_cmp(const void *a, const void *b)
{
	const struct store_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Apply the store's changes since v->modseq. */
static void
imap_view_apply(struct imap_session *s, struct store_msg *msgs, size_t n,
		const uint32_t *expunged, size_t nexp, bool uid,
		uint32_t recent_uid)
{
	struct imap_view *v = s->view;
	size_t i, old_count;
	uint32_t last_uid;
	long idx;

	for (i = 0; i < nexp; i++) {
		idx = imap_view_find_uid(v, expunged[i]);
		if (idx >= 0 && !v->msgs[idx].expunged) {
			v->msgs[idx].expunged = true;
			v->expunged_count++;
		}
	}
	if (n > 1)
		qsort(msgs, n, sizeof(*msgs), imap_msg_uid_cmp);
	last_uid = v->count > 0 ? v->msgs[v->count - 1].uid : 0;
	old_count = v->count;
	for (i = 0; i < n; i++) {
		struct store_msg *m = &msgs[i];
		struct imap_msg *im;

		if (m->modseq > v->modseq)
			v->modseq = m->modseq;
		imap_view_keywords_add(s, m->keywords);
		if (m->uid > last_uid) {
			imap_view_add(v, m);
			last_uid = m->uid;
			continue;
		}
		idx = imap_view_find_uid(v, m->uid);
		if (idx < 0 || v->msgs[idx].expunged)
			continue;
		im = &v->msgs[idx];
		im->modseq = m->modseq;
		if (im->flags == m->flags &&
		    imap_str_eq(im->keywords, m->keywords))
			continue;
		im->flags = m->flags;
		free(im->keywords);
		im->keywords = m->keywords != NULL && *m->keywords != '\0' ?
				       xstrdup(m->keywords) : NULL;
		imap_view_send_flags(s, (size_t)idx, uid);
	}
	if (v->count == old_count)
		return;
	imap_view_take_recent(s, recent_uid);
	imap_session_printf(s, "* %zu EXISTS", v->count);
	if (!s->rev2)
		imap_session_printf(s, "* %zu RECENT",
				    imap_view_recent_count(v));
}

/* True when no commit changed the selected mailbox since the last sync
   read it (store_changes_read, read now, before any query), so that
   sync needs no query. A query at least every IMAP_SYNC_QUERY_MS
   anyway bounds what a writer outside tern could hide. */
static bool
imap_session_sync_unchanged(struct imap_session *s,
			    struct store_changes_gen *gen_r, bool *have_r)
{
	const struct imap_view *v = s->view;

	*have_r = store_changes_read(s->env->store, v->mailbox_id, gen_r);
	return *have_r && v->gen_valid && gen_r->global == v->gen.global &&
	       gen_r->slot == v->gen.slot &&
	       ev_now_ms(s->env->loop) - v->synced_ms < IMAP_SYNC_QUERY_MS;
}

int
imap_session_sync(struct imap_session *s, bool allow_expunge, bool uid)
{
	struct imap_view *v = s->view;
	struct store_changes_gen gen;
	bool have_gen;
	struct store_mailbox box;
	struct store_msg *msgs = NULL;
	uint32_t *expunged = NULL;
	size_t n = 0, nexp = 0;
	int r;

	if (v == NULL)
		return 0;
	if (imap_session_sync_unchanged(s, &gen, &have_gen)) {
		if (allow_expunge)
			imap_view_flush_expunges(s);
		return 0;
	}
	v->gen_valid = false;
	r = store_msg_sync(s->env->store, v->mailbox_id, v->modseq, &box,
			   &msgs, &n, &expunged, &nexp);
	if (r < 0)
		return -1;
	if (r == 0 || box.uidvalidity != v->uidvalidity) {
		if (r == 1) {
			store_mailbox_clear(&box);
			store_msgs_free(msgs, n);
			free(expunged);
		}
		imap_session_bye(s, "Selected mailbox was deleted, "
				    "have to disconnect.");
		return -1;
	}
	v->uidnext = box.uidnext;
	if (box.highestmodseq != v->modseq) {
		imap_view_apply(s, msgs, n, expunged, nexp, uid,
				box.recent_uid);
		if (box.highestmodseq > v->modseq)
			v->modseq = box.highestmodseq;
	}
	store_msgs_free(msgs, n);
	free(expunged);
	store_mailbox_clear(&box);
	v->gen = gen;
	v->gen_valid = have_gen;
	v->synced_ms = ev_now_ms(s->env->loop);
	if (allow_expunge)
		imap_view_flush_expunges(s);
	return 0;
}

/* ---- command flow ---- */

static void
imap_session_error(struct imap_session *s)
{
	if (++s->errors >= IMAP_ERRORS_MAX)
		imap_session_bye(s, "Too many invalid IMAP commands.");
}

/* The parser, made again if the session dropped it while idle (it is
   mostly a stack of argument lists: about 600 bytes of every idle
   connection), begun on the command arena. */
static void
imap_session_parser_begin(struct imap_session *s)
{
	if (s->parser == NULL) {
		size_t line_max = s->env->cfg->imap_max_line_bytes;

		if (line_max == 0 || line_max > IMAP_LINE_MAX_BYTES_CAP)
			line_max = IMAP_LINE_MAX_BYTES_CAP;
		s->parser = imap_parser_new(line_max, IMAP_LITERAL_MAX_BYTES,
					    IMAP_COMMAND_MAX_BYTES);
	}
	imap_parser_begin(s->parser, s->arena);
}

static void
imap_session_cmd_end(struct imap_session *s)
{
	s->cmd = NULL;
	if (s->arena != NULL) {
		arena_reset(s->arena);
		imap_session_parser_begin(s);
		/* idle: no arena and no parser; the next input makes them.
		   Not while the parser still has to skip a refused literal
		   (LITERAL+) that has not arrived: its bytes are no
		   commands. */
		if (conn_input_len(s->c) == 0 &&
		    imap_parser_at_start(s->parser)) {
			arena_free(&s->arena);
			imap_parser_free(&s->parser);
		}
	}
	if (s->mode == IMAP_INPUT_BUSY)
		s->mode = IMAP_INPUT_CMD;
	imap_watch_flush(s); /* NOTIFY output held during the command */
	if (s->env->draining && s->mode == IMAP_INPUT_CMD)
		imap_session_bye(s, "Server shutting down.");
}

/* The command set its reply: sync, then answer with the tag. */
static void
imap_session_finish(struct imap_session *s)
{
	struct imap_cmd *cmd = s->cmd;
	bool allow_expunge;

	if (s->closing) {
		imap_session_cmd_end(s);
		return;
	}
	if (!cmd->no_sync && !(cmd->def->flags & IMAP_CMDF_NO_SYNC) &&
	    s->state == IMAP_STATE_SELECTED) {
		allow_expunge = !(cmd->def->flags & IMAP_CMDF_USES_SEQS) ||
				cmd->uid;
		(void)imap_session_sync(s, allow_expunge, cmd->uid);
	}
	if (s->closing) {
		imap_session_cmd_end(s);
		return;
	}
	if (cmd->reply == NULL)
		imap_cmd_bad(cmd, "BAD Internal error: no reply");
	imap_condstore_reply(s, cmd);
	imap_session_printf(s, "%s %s", cmd->tag, cmd->reply);
	if (cmd->bad)
		imap_session_error(s);
	if (cmd->after != NULL)
		cmd->after(s);
	imap_session_cmd_end(s);
}

static void
imap_session_result(struct imap_session *s, enum imap_cmd_res res)
{
	switch (res) {
	case IMAP_CMD_DONE:
		imap_session_finish(s);
		break;
	case IMAP_CMD_AGAIN:
		s->mode = IMAP_INPUT_BUSY;
		conn_want_drained(s->c);
		break;
	case IMAP_CMD_WAIT:
		break;
	case IMAP_CMD_DETACH:
		imap_session_cmd_end(s);
		break;
	}
	if (!s->closing && s->mode != IMAP_INPUT_BUSY)
		conn_resume_input(s->c);
}

void
imap_session_resume(struct imap_session *s)
{
	struct imap_cmd *cmd = s->cmd;

	if (cmd == NULL || cmd->cont == NULL || s->closing)
		return;
	imap_session_result(s, cmd->cont(s, cmd));
}

void
imap_session_cmd_done(struct imap_session *s)
{
	if (s->cmd == NULL)
		return;
	if (s->mode != IMAP_INPUT_IDLE)
		s->mode = IMAP_INPUT_BUSY;
	imap_session_result(s, IMAP_CMD_DONE);
}

static void
imap_session_run(struct imap_session *s, struct imap_cmd *cmd)
{
	s->cmd = cmd;
	s->mode = IMAP_INPUT_BUSY;
	s->expunges_sent = false;
	imap_session_result(s, cmd->def->run(s, cmd));
}

static void
imap_session_dispatch(struct imap_session *s)
{
	struct imap_parser *p = s->parser;
	const struct imap_cmd_def *def;
	struct imap_cmd *cmd;
	const char *tag = imap_parser_tag(p), *name = imap_parser_name(p);

	def = imap_cmd_find(name);
	if (def == NULL) {
		imap_session_printf(s, "%s BAD Unknown command.", tag);
		imap_session_error(s);
		return;
	}
	if ((def->states & s->state) == 0) {
		imap_session_printf(s, "%s BAD Command %s is not valid in "
				    "this state.", tag, def->name);
		imap_session_error(s);
		return;
	}
	cmd = arena_zalloc(s->arena, sizeof(*cmd));
	cmd->def = def;
	cmd->arena = s->arena;
	cmd->tag = tag;
	cmd->name = def->name;
	cmd->args = imap_parser_args(p, &cmd->argc);
	imap_session_run(s, cmd);
}

static void
imap_session_parse_error(struct imap_session *s)
{
	enum imap_parse_err code;
	const char *err = imap_parser_error(s->parser, &code);
	const char *tag = imap_parser_tag(s->parser);

	if (code == IMAP_PERR_FATAL) {
		imap_session_bye(s, "Invalid literal size.");
		return;
	}
	if (tag == NULL)
		tag = "*";
	if (code == IMAP_PERR_TOOBIG)
		imap_session_printf(s, "%s NO [TOOBIG] %s", tag, err);
	else if (code == IMAP_PERR_LINE_TOO_LONG)
		imap_session_printf(s, "%s BAD [TOOBIG] %s", tag, err);
	else
		imap_session_printf(s, "%s BAD Error in IMAP command: %s", tag,
				    err);
	imap_session_error(s);
}

/* Feed buffered input to the parser. false: wait for more input. */
static bool
imap_session_feed(struct imap_session *s)
{
	const uint8_t *data;
	size_t len, used = 0;
	enum imap_parse_res res;

	len = conn_input_peek(s->c, &data);
	if (len == 0)
		return false;
	if (s->arena == NULL) {
		s->arena = arena_new("imap-cmd", 4096);
		imap_session_parser_begin(s);
	} else if (s->parser == NULL) {
		imap_session_parser_begin(s);
	}
	res = imap_parser_feed(s->parser, data, len, &used);
	conn_input_consume(s->c, used);
	conn_input_partial(s->c, res == IMAP_PARSE_MORE);
	switch (res) {
	case IMAP_PARSE_MORE:
		return false;
	case IMAP_PARSE_CONT:
		imap_session_printf(s, "+ OK");
		return true;
	case IMAP_PARSE_ERROR:
		conn_rate_take(s->c);
		imap_session_parse_error(s);
		if (s->append != NULL) {
			imap_append_free(s);
			s->cmd = NULL;
		}
		arena_reset(s->arena);
		imap_session_parser_begin(s);
		return true;
	case IMAP_PARSE_STREAM:
	case IMAP_PARSE_CMD:
		conn_rate_take(s->c);
		if (s->append != NULL && s->cmd != NULL) {
			/* MULTIAPPEND: the next message or the end */
			s->mode = IMAP_INPUT_BUSY;
			imap_session_resume(s);
		} else {
			imap_session_dispatch(s);
		}
		if (s->cmd == NULL && s->arena != NULL) {
			arena_reset(s->arena);
			imap_session_parser_begin(s);
		}
		return true;
	}
	return false;
}

static bool
imap_session_line(struct imap_session *s, size_t max, struct strview *line)
{
	enum conn_line_res r = conn_read_line(s->c, max, line, NULL);

	if (r == CONN_LINE_MORE)
		return false;
	if (r == CONN_LINE_TOO_LONG)
		*line = sv_make("\0", 1); /* never valid */
	return true;
}

static void
imap_on_input(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;
	struct strview line;

	while (!s->closing && !conn_closing(c) && !conn_input_paused(c)) {
		switch (s->mode) {
		case IMAP_INPUT_BUSY:
			conn_pause_input(c);
			return;
		case IMAP_INPUT_SASL:
			if (!imap_session_line(s, IMAP_SASL_LINE_MAX_BYTES,
					       &line))
				return;
			imap_auth_sasl_line(s, line);
			break;
		case IMAP_INPUT_IDLE:
			if (!imap_session_line(s, 64, &line))
				return;
			imap_idle_line(s, line);
			break;
		case IMAP_INPUT_STREAM:
			if (conn_input_len(c) == 0)
				return;
			imap_append_input(s);
			break;
		case IMAP_INPUT_CMD:
			/* Commands per second: a command is parsed only with
			   a token at hand (conn.h); it is taken once the
			   command is complete (imap_session_feed). */
			if (!conn_rate_ready(c))
				return;
			if (!imap_session_feed(s))
				return;
			break;
		}
	}
}

static void
imap_on_drained(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;

	(void)c;
	imap_session_resume(s);
}

static void
imap_on_timeout(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;

	(void)c;
	log_info("imap", s->id, "timeout user=%s",
		 s->user != NULL ? s->user : "-");
	imap_session_bye(s, "Disconnected for inactivity.");
}

/* Out of every list that could reach the session (idempotent). */
static void
imap_session_detach(struct imap_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else if (imap_sessions == s)
		imap_sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	imap_notify_idle_remove(s);
	imap_watch_remove(s);
}

static void
imap_session_free(struct imap_session *s)
{
	imap_session_detach(s);
	if (s->cmd != NULL && s->cmd->cleanup != NULL)
		s->cmd->cleanup(s->cmd);
	imap_append_free(s);
	ev_timer_del(s->env->loop, &s->delay_timer);
	auth_sasl_free(&s->sasl);
	imap_session_unselect(s);
	imap_parser_free(&s->parser);
	arena_free(&s->arena);
	free(s->idle_tag);
	free(s->user);
	free(s);
}

static void
imap_on_close(struct conn *c, void *ctx, enum conn_close_reason reason)
{
	struct imap_session *s = ctx;

	(void)c;
	log_info("imap", s->id, "disconnect user=%s reason=%d",
		 s->user != NULL ? s->user : "-", (int)reason);
	if (imap_append_pending(s) || s->commit_pending || s->load_pending) {
		/* The commit (or read) thread reads the command's job: free
		   the session at its done (imap_session_dead). */
		imap_session_detach(s);
		s->c = NULL;
		s->closing = true;
		s->dead = true;
		return;
	}
	imap_session_free(s);
}

bool
imap_session_dead(struct imap_session *s)
{
	if (!s->dead)
		return false;
	imap_session_free(s);
	return true;
}

/* Back on the loop (store_commit_done_fn). */
static void
imap_session_commit_done(struct store_commit_job *job)
{
	struct imap_commit *ic = (struct imap_commit *)job;
	struct imap_session *s = ic->s;

	s->commit_pending = false;
	if (s->dead)
		log_info("imap", s->id, "write-done-after-close");
	if (imap_session_dead(s))
		return; /* it closed meanwhile: now freed, ic with it */
	imap_session_resume(s);
}

enum imap_cmd_res
imap_session_commit(struct imap_session *s, struct imap_cmd *cmd,
		    struct imap_commit *ic, imap_cmd_fn *cont)
{
	ic->s = s;
	ic->job.done = imap_session_commit_done;
	s->commit_pending = true;
	cmd->cont = cont;
	store_commit_submit(s->env->commit, &ic->job);
	return IMAP_CMD_WAIT;
}

static const struct conn_handler imap_handler = {
	.on_input = imap_on_input,
	.on_drained = imap_on_drained,
	.on_close = imap_on_close,
	.on_timeout = imap_on_timeout,
};

void
imap_session_start(struct tern_env *env, const struct cfg_listener *listener,
		   struct conn *c)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));

	s->env = env;
	s->listener = listener;
	s->c = c;
	snprintf(s->id, sizeof(s->id), "%s", conn_id(c));
	s->state = IMAP_STATE_NOAUTH;
	s->mode = IMAP_INPUT_CMD;
	s->next = imap_sessions;
	if (imap_sessions != NULL)
		imap_sessions->prev = s;
	imap_sessions = s;
	conn_set_handler(c, &imap_handler, s);
	conn_set_timeout(c, env->cfg->imap_login_timeout_ms);
	conn_set_rate(c, env->cfg->command_rate, env->cfg->command_burst);
	log_info("imap", s->id, "connect ip=%s port=%u listener=%s",
		 conn_peer_addr(c), (unsigned)conn_local_port(c),
		 listener != NULL ? listener->name : "-");
	if (env->draining) {
		imap_session_bye(s, "Server shutting down.");
		return;
	}
	if (conn_server_count() > env->cfg->max_connections) {
		log_info("imap", s->id, "reject-conn-limit");
		imap_session_bye(s, "[UNAVAILABLE] Too many connections, try "
				    "again later.");
		return;
	}
	if (conn_peer_count(c) > env->cfg->max_connections_per_ip) {
		log_info("imap", s->id, "reject-conn-limit-ip ip=%s",
			 conn_peer_addr(c));
		imap_session_bye(s, "[UNAVAILABLE] Too many connections from "
				    "your address.");
		return;
	}
	imap_session_printf(s, "* OK [CAPABILITY %s] tern ready.",
			    imap_session_capability(s));
}

/* An IDLE session got a store notification for its mailbox. */
void
imap_session_notify(struct imap_session *s)
{
	if (!s->idling || s->closing)
		return;
	(void)imap_session_sync(s, true, false);
}

void
imap_drain(void)
{
	struct imap_session *s, *next;

	for (s = imap_sessions; s != NULL; s = next) {
		next = s->next;
		if (s->cmd == NULL && (s->mode == IMAP_INPUT_CMD ||
				       s->mode == IMAP_INPUT_IDLE))
			imap_session_bye(s, "Server shutting down.");
	}
}
