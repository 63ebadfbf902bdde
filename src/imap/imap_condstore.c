/* CONDSTORE and QRESYNC (RFC 7162): enabling (3.1, 3.2.3), SELECT
   parameters (3.1.8, 3.2.5), FETCH CHANGEDSINCE and VANISHED (3.1.4,
   3.2.6), STORE UNCHANGEDSINCE (3.1.3), VANISHED responses (3.2.10) and
   HIGHESTMODSEQ in tagged OK responses (3.1.10 / 3.2.10); object ids
   (RFC 8474 4, 5.1) and PREVIEW (RFC 8970 3).
   Every mailbox has a MODSEQ (the store keeps one per message and a
   HIGHESTMODSEQ per mailbox), so [NOMODSEQ] is never sent. Expunged UIDs
   stay in the store's expunged table for the mailbox's lifetime, so
   VANISHED (EARLIER) is always exact and the seq-match data of QRESYNC
   is only checked for syntax (3.2.5.2 exists for servers that forget).
   All input sizes are bounded by the parser; VANISHED lines are cut
   into pieces of IMAP_VANISHED_LINE_UIDS UIDs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "store/store.h"

#define IMAP_VANISHED_LINE_UIDS 10000
/* Decoded text read for a preview; the first text part is at its start. */
#define IMAP_PREVIEW_TEXT_MAX_BYTES (16 * 1024)

void
imap_condstore_enable(struct imap_session *s)
{
	char line[80];
	int n;

	if (s->condstore)
		return;
	s->condstore = true;
	/* RFC 7162 3.1: enabled while a mailbox is selected, the client
	   learns the mailbox's HIGHESTMODSEQ now (a SELECT with CONDSTORE
	   sends it with the mailbox's other data instead) */
	if (s->view == NULL)
		return;
	n = snprintf(line, sizeof(line), "* OK [HIGHESTMODSEQ %llu] "
		     "Highest\r\n", (unsigned long long)s->view->modseq);
	imap_session_write(s, line, (size_t)n);
}

void
imap_condstore_vanished(struct imap_session *s, const uint32_t *uids,
			size_t n, bool earlier)
{
	struct buf b;
	size_t off, k;

	buf_init(&b, IMAP_VANISHED_LINE_UIDS * 24 + 64);
	for (off = 0; off < n; off += k) {
		k = n - off;
		if (k > IMAP_VANISHED_LINE_UIDS)
			k = IMAP_VANISHED_LINE_UIDS;
		buf_reset(&b);
		if (buf_append_str(&b, earlier ? "* VANISHED (EARLIER) " :
						 "* VANISHED ") == 0 &&
		    imap_seqset_write(&b, uids + off, k) == 0 &&
		    buf_append_str(&b, "\r\n") == 0)
			imap_session_write(s, b.data, b.len);
	}
	buf_free(&b);
}

/* ---- parsing helpers ---- */

static bool
imap_condstore_u64(const struct imap_arg *a, uint64_t *v_r)
{
	/* mod-sequence-valzer: 0 .. 2^63-1 (RFC 7162 7) */
	return a->type == IMAP_ARG_ATOM &&
	       parse_u64(sv_make(a->str, a->len), INT64_MAX, v_r) == 0;
}

static bool
imap_condstore_uidset(struct imap_cmd *cmd, const struct imap_arg *a,
		      struct imap_seqset *set_r)
{
	return a->type == IMAP_ARG_ATOM &&
	       imap_seqset_parse(cmd->arena, a->str, a->len, set_r) == 0;
}

/* "(uidvalidity modseq [known-uids [(seq-set uid-set)]])" */
static int
imap_condstore_qresync_parse(struct imap_cmd *cmd, const struct imap_arg *l,
			     struct imap_qresync *q)
{
	const struct imap_arg *a = l->list;
	struct imap_seqset seqs, uids;
	uint64_t v;

	if (l->type != IMAP_ARG_LIST || l->count < 2 || l->count > 4 ||
	    !imap_condstore_u64(&a[0], &v) || v == 0 || v > UINT32_MAX ||
	    !imap_condstore_u64(&a[1], &q->modseq))
		return -1;
	q->uidvalidity = (uint32_t)v;
	if (l->count >= 3 && !imap_condstore_uidset(cmd, &a[2], &q->known))
		return -1;
	if (l->count == 4 &&
	    (a[3].type != IMAP_ARG_LIST || a[3].count != 2 ||
	     !imap_condstore_uidset(cmd, &a[3].list[0], &seqs) ||
	     !imap_condstore_uidset(cmd, &a[3].list[1], &uids)))
		return -1;
	q->set = true;
	return 0;
}

int
imap_condstore_select_params(struct imap_session *s, struct imap_cmd *cmd,
			     const struct imap_arg *list,
			     struct imap_qresync *q_r)
{
	size_t i;

	memset(q_r, 0, sizeof(*q_r));
	if (list->type != IMAP_ARG_LIST) {
		imap_cmd_bad(cmd, "BAD Invalid SELECT parameters.");
		return -1;
	}
	for (i = 0; i < list->count; i++) {
		const struct imap_arg *a = &list->list[i];

		if (imap_arg_is_atom(a, "CONDSTORE")) {
			/* the SELECT's own reply carries HIGHESTMODSEQ */
			s->condstore = true;
			continue;
		}
		if (!imap_arg_is_atom(a, "QRESYNC") || q_r->set ||
		    i + 1 >= list->count) {
			imap_cmd_bad(cmd, "BAD Unknown SELECT parameter.");
			return -1;
		}
		/* RFC 7162 3.2.5: only after ENABLE QRESYNC */
		if (!s->qresync) {
			imap_cmd_bad(cmd, "BAD QRESYNC is not enabled.");
			return -1;
		}
		if (imap_condstore_qresync_parse(cmd, &list->list[++i], q_r) <
		    0) {
			imap_cmd_bad(cmd, "BAD Invalid QRESYNC parameters.");
			return -1;
		}
	}
	return 0;
}

/* ---- SELECT ---- */

static int
imap_condstore_select_vanished(struct imap_session *s,
			       const struct imap_qresync *q)
{
	struct imap_view *v = s->view;
	uint32_t *uids = NULL;
	size_t n = 0, i, k = 0;

	if (store_msg_vanished(s->env->store, v->mailbox_id, q->modseq, &uids,
			       &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		/* RFC 7162 3.2.5.1: only the client's known UIDs; one still
		   in the view went after it was loaded: a later sync says so */
		if (q->known.count > 0 &&
		    !imap_seqset_contains(&q->known, uids[i]))
			continue;
		if (imap_view_find_uid(v, uids[i]) >= 0)
			continue;
		uids[k++] = uids[i];
	}
	if (k > 0)
		imap_condstore_vanished(s, uids, k, true);
	free(uids);
	return 0;
}

int
imap_condstore_select_sync(struct imap_session *s,
			   const struct imap_qresync *q)
{
	struct imap_view *v = s->view;
	char id[IMAP_OBJECTID_MAX_BYTES];
	struct imap_qresync known = *q;
	size_t i;

	/* RFC 7162 3.1.2.1: every mailbox has mod-sequences */
	imap_session_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest",
			    (unsigned long long)v->modseq);
	imap_objectid_mailbox(id, sizeof(id), v->mailbox_id);
	imap_session_printf(s, "* OK [MAILBOXID (%s)] Ok", id);
	if (!q->set || q->uidvalidity != v->uidvalidity)
		return 0;
	if (known.known.count > 0)
		imap_seqset_resolve(&known.known, v->uidnext > 0 ?
							  v->uidnext - 1 : 0);
	if (imap_condstore_select_vanished(s, &known) < 0)
		return -1;
	for (i = 0; i < v->count; i++) {
		if (v->msgs[i].modseq <= q->modseq)
			continue;
		if (known.known.count > 0 &&
		    !imap_seqset_contains(&known.known, v->msgs[i].uid))
			continue;
		imap_view_send_flags(s, i, true);
	}
	return 0;
}

/* ---- FETCH ---- */

/* VANISHED (EARLIER) of the UIDs of the command's set expunged after
   since (RFC 7162 3.2.6). */
static int
imap_condstore_fetch_vanished(struct imap_session *s, struct imap_cmd *cmd,
			      uint64_t since)
{
	struct imap_view *v = s->view;
	struct imap_seqset set;
	uint32_t *uids = NULL;
	size_t n = 0, i, k = 0;

	if (!imap_condstore_uidset(cmd, &cmd->args[0], &set))
		return 0; /* "$": nothing expunged is in a saved result */
	imap_seqset_resolve(&set, v->uidnext > 0 ? v->uidnext - 1 : 0);
	if (store_msg_vanished(s->env->store, v->mailbox_id, since, &uids,
			       &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (imap_seqset_contains(&set, uids[i]) &&
		    imap_view_find_uid(v, uids[i]) < 0)
			uids[k++] = uids[i];
	}
	if (k > 0)
		imap_condstore_vanished(s, uids, k, true);
	free(uids);
	return 0;
}

int
imap_condstore_fetch_modifiers(struct imap_session *s, struct imap_cmd *cmd,
			       const struct imap_arg *list, size_t *idx,
			       size_t *n, bool *modseq_r)
{
	bool changedsince = false, vanished = false;
	uint64_t since = 0;
	size_t i, k = 0;

	for (i = 0; list->type == IMAP_ARG_LIST && i < list->count; i++) {
		const struct imap_arg *a = &list->list[i];

		if (imap_arg_is_atom(a, "CHANGEDSINCE") && !changedsince &&
		    i + 1 < list->count &&
		    imap_condstore_u64(&list->list[i + 1], &since)) {
			changedsince = true;
			i++;
		} else if (imap_arg_is_atom(a, "VANISHED") && !vanished) {
			vanished = true;
		} else {
			break;
		}
	}
	/* RFC 7162 3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE,
	   after ENABLE QRESYNC */
	if (list->type != IMAP_ARG_LIST || i < list->count || !changedsince ||
	    (vanished && (!cmd->uid || !s->qresync))) {
		imap_cmd_bad(cmd, "BAD Invalid FETCH modifiers.");
		return -1;
	}
	imap_condstore_enable(s);
	*modseq_r = true;
	if (vanished && imap_condstore_fetch_vanished(s, cmd, since) < 0) {
		log_error("imap", s->id, "vanished-failed error=%s",
			  store_last_error(s->env->store));
		imap_cmd_no(cmd, "NO [UNAVAILABLE] Internal error, try again "
				 "later.");
		return -1;
	}
	for (i = 0; i < *n; i++) {
		if (s->view->msgs[idx[i]].modseq > since)
			idx[k++] = idx[i];
	}
	*n = k;
	return 0;
}

/* ---- STORE ---- */

int
imap_condstore_store_modifiers(struct imap_session *s, struct imap_cmd *cmd,
			       const struct imap_arg *list,
			       uint64_t *since_r)
{
	if (list->type != IMAP_ARG_LIST || list->count != 2 ||
	    !imap_arg_is_atom(&list->list[0], "UNCHANGEDSINCE") ||
	    !imap_condstore_u64(&list->list[1], since_r)) {
		imap_cmd_bad(cmd, "BAD Invalid STORE modifiers.");
		return -1;
	}
	imap_condstore_enable(s);
	return 0;
}

void
imap_condstore_send_modseq(struct imap_session *s, size_t idx, bool uid)
{
	const struct imap_msg *m = &s->view->msgs[idx];

	if (uid || s->qresync) /* as imap_view_send_flags */
		imap_session_printf(s, "* %zu FETCH (UID %u MODSEQ (%llu))",
				    idx + 1, m->uid,
				    (unsigned long long)m->modseq);
	else
		imap_session_printf(s, "* %zu FETCH (MODSEQ (%llu))", idx + 1,
				    (unsigned long long)m->modseq);
}

/* ---- tagged replies ---- */

void
imap_condstore_reply(struct imap_session *s, struct imap_cmd *cmd)
{
	bool sent = s->expunges_sent;

	s->expunges_sent = false;
	if (!sent || !s->condstore || s->view == NULL ||
	    cmd->reply == NULL || strncmp(cmd->reply, "OK ", 3) != 0 ||
	    cmd->reply[3] == '[')
		return;
	imap_cmd_reply(cmd, "OK [HIGHESTMODSEQ %llu] %s",
		       (unsigned long long)s->view->modseq, cmd->reply + 3);
}

/* ---- OBJECTID (RFC 8474) ---- */

void
imap_objectid_mailbox(char *out, size_t outlen, int64_t mailbox_id)
{
	int n = snprintf(out, outlen, "F%lld", (long long)mailbox_id);

	if (n < 0 || (size_t)n >= outlen)
		panic("imap objectid buffer too small");
}

/* EMAILID from the content hash: the same for every copy of a message
   (RFC 8474 5.1 asks for that after COPY and MOVE) and, as 5.1 allows,
   for messages with identical bytes. */
void
imap_objectid_email(char *out, size_t outlen, const char *blob)
{
	int n = snprintf(out, outlen, "M%.24s", blob);

	if (n < 0 || (size_t)n >= outlen)
		panic("imap objectid buffer too small");
}

/* ---- PREVIEW (RFC 8970) ---- */

static bool
imap_preview_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	       c == '\f' || c == '\v';
}

/* Collapse white space runs to one space, trim, and stop after max
   UTF-8 characters (never inside one). Returns the bytes kept. */
static size_t
imap_preview_normalize(uint8_t *p, size_t len, size_t max_chars)
{
	size_t i, o = 0, chars = 0;
	bool space = false;

	for (i = 0; i < len; i++) {
		if (imap_preview_space(p[i])) {
			space = o > 0;
			continue;
		}
		/* a lead byte starts a character; continuation bytes don't */
		if ((p[i] & 0xc0) != 0x80) {
			if (chars + (space ? 1 : 0) >= max_chars)
				break;
			if (space) {
				p[o++] = ' ';
				chars++;
			}
			space = false;
			chars++;
		}
		p[o++] = p[i];
	}
	return o;
}

int
imap_preview_write(struct buf *out, const uint8_t *msg, size_t len)
{
	struct buf text;
	size_t n;
	int r;

	buf_init(&text, IMAP_PREVIEW_TEXT_MAX_BYTES);
	(void)mime_extract_text(msg, len, &text);
	n = imap_preview_normalize(text.data, text.len,
				   IMAP_PREVIEW_MAX_CHARS);
	r = mime_imap_string(out, n > 0 ? (const char *)text.data : "", n);
	buf_free(&text);
	return r;
}
