/* The SMTP transaction and what happens to a message: sender checks
   (submission: the account's own addresses, 553 5.7.1), recipient
   resolution (local accounts, aliases, catch-all; relay only when
   authenticated), quota (452 4.2.2) and sending limits (451 4.7.1) per
   RCPT, the trace headers (RFC 5321 4.4 Received and Return-Path, RFC
   3848 / RFC 6531 3.7.3 "with" types), streaming the content into blobs,
   and group commit: finished messages of every session of the worker are
   written in one store batch, and each 250 is sent only after that batch
   is durable. Remote recipients go into the outbound queue with their DSN
   parameters (RFC 3461 4).
   Security: relay decisions use the address after source-route removal
   (RFC 5321 3.6.1); "%" hacks, quoted local parts and address literals
   are never routed anywhere but to a local lookup or, authenticated,
   the queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "lib/arena.h"
#include "lib/cfg.h"
#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "smtp/smtp_int.h"

static void
smtp_deliver_new_id(char *id)
{
	unsigned char r[SMTP_ID_LEN / 2];
	size_t i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		panic("smtp: getrandom failed");
	for (i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02X", r[i]);
}

static uint64_t
smtp_deliver_min_limit(uint64_t a, uint64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/* ---- MAIL ---- */

/* 1 may send, 0 refused (reply sent), -1 (reply sent). */
static int
smtp_deliver_check_sender(struct smtp_session *s,
			  const struct smtp_path *path)
{
	char *norm;
	int r;

	if (!s->authed)
		return 1;
	if (path->null) {
		if (s->listener->protocol != CFG_PROTO_SUBMISSION)
			return 1;
		smtp_reply_error(s, "553 5.7.1 Null sender not allowed for "
				    "submission");
		return 0;
	}
	norm = store_address_normalize(path->addr);
	r = norm == NULL ? 0 :
			   store_account_may_send_as(s->env->store,
						     s->account_id, norm);
	free(norm);
	if (r < 0) {
		smtp_reply(s, "451 4.3.0 Temporary lookup failure");
		return -1;
	}
	if (r == 0) {
		log_info("smtp", smtp_session_id(s),
			 "reject-sender user=%s", s->account);
		smtp_reply_error(s, "553 5.7.1 Sender address rejected: not "
				    "owned by user %s", s->account);
	}
	return r;
}

void
smtp_deliver_mail(struct smtp_session *s, const struct smtp_path *path,
		  const struct smtp_mail_params *mp)
{
	const struct cfg *cfg = s->env->cfg;
	char from[128];

	if (smtp_deliver_check_sender(s, path) <= 0)
		return;
	smtp_tx_reset(s);
	s->tx.active = true;
	smtp_deliver_new_id(s->tx.id);
	s->tx.sender = arena_strdup(s->tx.arena, path->null ? "" : path->addr);
	s->tx.mp = *mp;
	s->tx.max_bytes = cfg->smtp_max_message_bytes;
	s->tx.max_rcpts = cfg->smtp_max_recipients;
	if (s->authed) {
		s->tx.max_bytes = smtp_deliver_min_limit(
			s->tx.max_bytes, s->plan.max_message_bytes);
		s->tx.max_rcpts = (uint32_t)smtp_deliver_min_limit(
			s->tx.max_rcpts, s->plan.max_recipients);
	}
	s->state = SMTP_S_MAIL;
	log_info("smtp", smtp_session_id(s), "mail-from id=%s from=<%s>",
		 s->tx.id, log_sanitize(from, sizeof(from), s->tx.sender,
					strlen(s->tx.sender)));
	smtp_reply(s, "250 2.1.0 Ok");
}

/* ---- RCPT ---- */

/* "451 4.7.1 ..." for an account past its plan's send_per_hour, with
   the time at which the oldest counted recipient leaves the window. */
static void
smtp_deliver_rate_reply(struct smtp_session *s, struct store *st, time_t now,
			char *out, size_t size)
{
	time_t t;
	int64_t oldest = 0;
	char when[64];
	struct tm tm;

	if (store_send_oldest(st, s->account_id, now - 3600,
			      &oldest) < 0 || oldest == 0)
		oldest = now;
	t = (time_t)oldest + 3600;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	snprintf(out, size, "451 4.7.1 Sending limit of %u recipients per "
		 "hour reached, try again after %s", s->plan.send_per_hour,
		 when);
}

/* Would extra more recipients exceed the sending limit (plan
   send_per_hour, sliding hour)? 1 yes, 0 no, -1 error. */
static int
smtp_deliver_over_rate(struct smtp_session *s, struct store *st, time_t now,
		       uint64_t extra)
{
	uint64_t count = 0;

	if (!s->authed || s->plan.send_per_hour == 0)
		return 0;
	if (store_send_count(st, s->account_id, now - 3600, &count) < 0)
		return -1;
	if (count + extra <= s->plan.send_per_hour)
		return 0;
	log_info("smtp", smtp_session_id(s), "rate-limit user=%s sent=%llu",
		 s->account, (unsigned long long)count);
	return 1;
}

/* At RCPT: 1 ok, 0 refused (replied). */
static int
smtp_deliver_check_rate(struct smtp_session *s)
{
	char reply[256];
	int r = smtp_deliver_over_rate(s, s->env->store, ev_now(s->env->loop),
				       (uint64_t)s->tx.rcpt_count + 1);

	if (r < 0) {
		smtp_reply(s, "451 4.3.0 Temporary lookup failure");
		return 0;
	}
	if (r == 0)
		return 1;
	smtp_deliver_rate_reply(s, s->env->store, ev_now(s->env->loop), reply,
				sizeof(reply));
	smtp_reply(s, "%s", reply);
	return 0;
}

/* Is this account's mailbox able to take a message of size bytes? And
   its plan's message size limit into *max_r. 1 yes, 0 full, -1 error. */
static int
smtp_deliver_check_account(struct smtp_session *s, int64_t id, uint64_t size,
			   uint64_t *max_r)
{
	struct store_quota q;
	struct store_account acct;
	struct store_plan plan;
	int r;

	*max_r = 0;
	if (store_quota_get(s->env->store, id, &q) < 0)
		return -1;
	memset(&acct, 0, sizeof(acct));
	r = store_account_get_by_id(s->env->store, id, &acct);
	if (r > 0 && acct.plan != NULL &&
	    store_plan_get(s->env->store, acct.plan, &plan) > 0)
		*max_r = plan.max_message_bytes;
	store_account_clear(&acct);
	if (r < 0)
		return -1;
	if (q.limit_bytes != 0 &&
	    (q.used_bytes >= q.limit_bytes || size > q.limit_bytes - q.used_bytes))
		return 0;
	if (q.limit_messages != 0 && q.used_messages >= q.limit_messages)
		return 0;
	return 1;
}

static bool
smtp_deliver_has_id(const struct smtp_session *s, int64_t id)
{
	size_t i;

	for (i = 0; i < s->tx.local_count; i++) {
		if (s->tx.local[i].id == id)
			return true;
	}
	return false;
}

/* Keep the accounts that can take the message; reply on refusal.
   Returns the number of accounts added, or -1 (replied). */
static int
smtp_deliver_add_local(struct smtp_session *s, const int64_t *ids,
		       size_t count, const struct smtp_path *path,
		       const struct smtp_rcpt_params *rp)
{
	struct smtp_local *l;
	uint64_t size = s->tx.mp.has_size ? s->tx.mp.size : 0, max, tx_max;
	size_t i, ok = 0, full = 0, big = 0;
	int r;

	if (count > SMTP_EXPANDED_MAX - s->tx.local_count) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return -1;
	}
	tx_max = s->tx.max_bytes;
	for (i = 0; i < count; i++) {
		r = smtp_deliver_check_account(s, ids[i], size, &max);
		if (r < 0) {
			smtp_reply(s, "451 4.3.0 Temporary lookup failure");
			return -1;
		}
		if (r == 0) {
			full++;
			continue;
		}
		if (max != 0 && size > max) {
			big++;
			continue;
		}
		tx_max = smtp_deliver_min_limit(tx_max, max);
		if (!smtp_deliver_has_id(s, ids[i])) {
			l = &s->tx.local[s->tx.local_count++];
			l->id = ids[i];
			l->rcpt = arena_strdup(s->tx.arena, path->addr);
			l->orcpt = rp->orcpt[0] != '\0' ?
					   arena_strdup(s->tx.arena, rp->orcpt) :
					   NULL;
			l->notify = rp->notify;
		}
		ok++;
	}
	if (ok == 0 && big > 0) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum "
			      "message size");
		return -1;
	}
	if (ok == 0) {
		smtp_reply(s, "452 4.2.2 Mailbox full");
		return -1;
	}
	s->tx.max_bytes = tx_max;
	return (int)ok;
}

/* Remote local parts are case-sensitive (RFC 5321 2.4): only the
   domain is compared without case. */
static bool
smtp_deliver_same_remote(const char *a, const char *b)
{
	const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');

	if (at_a == NULL || at_b == NULL || at_a - a != at_b - b)
		return strcmp(a, b) == 0;
	return strncmp(a, b, (size_t)(at_a - a)) == 0 &&
	       strcasecmp(at_a, at_b) == 0;
}

static void
smtp_deliver_add_remote(struct smtp_session *s, const char *address,
			const struct smtp_rcpt_params *rp)
{
	struct smtp_remote *r;
	struct buf notify;
	size_t i;

	for (i = 0; i < s->tx.remote_count; i++) {
		if (smtp_deliver_same_remote(s->tx.remote[i].address, address))
			return;
	}
	r = &s->tx.remote[s->tx.remote_count++];
	r->address = arena_strdup(s->tx.arena, address);
	r->orcpt = rp != NULL && rp->orcpt[0] != '\0' ?
			   arena_strdup(s->tx.arena, rp->orcpt) :
			   NULL;
	r->notify = NULL;
	if (rp == NULL || rp->notify == 0)
		return;
	buf_init(&notify, 64);
	if (rp->notify & SMTP_NOTIFY_NEVER)
		buf_append_str(&notify, ",NEVER");
	if (rp->notify & SMTP_NOTIFY_SUCCESS)
		buf_append_str(&notify, ",SUCCESS");
	if (rp->notify & SMTP_NOTIFY_FAILURE)
		buf_append_str(&notify, ",FAILURE");
	if (rp->notify & SMTP_NOTIFY_DELAY)
		buf_append_str(&notify, ",DELAY");
	r->notify = arena_strdup(s->tx.arena, buf_cstr(&notify) + 1);
	buf_free(&notify);
}

/* Alias targets outside our domains are forwarded through the queue. */
static int
smtp_deliver_add_remotes(struct smtp_session *s, char **remote, size_t n,
			 const struct smtp_rcpt_params *rp)
{
	size_t i;

	if (n > SMTP_EXPANDED_MAX - s->tx.remote_count) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return -1;
	}
	for (i = 0; i < n; i++)
		smtp_deliver_add_remote(s, remote[i], rp);
	return 0;
}

/* RCPT TO:<Postmaster> (RFC 5321 4.1.1.3): postmaster@ the first local
   domain that has one, else postmaster@ the first local domain (see
   smtp_deliver_postmaster_fallback). xmalloc'd, or NULL. */
static char *
smtp_deliver_postmaster(struct smtp_session *s)
{
	char **domains = NULL, *addr = NULL, **remote = NULL;
	int64_t *ids = NULL;
	size_t n = 0, i, nids = 0, nremote = 0, len;
	int kind;

	if (store_domain_list(s->env->store, &domains, &n) < 0)
		return NULL;
	for (i = 0; i < n && addr == NULL; i++) {
		len = strlen(domains[i]) + sizeof("postmaster@");
		addr = xmalloc(len);
		snprintf(addr, len, "postmaster@%s", domains[i]);
		kind = store_rcpt_resolve(s->env->store, addr, &ids, &nids,
					  &remote, &nremote);
		free(ids);
		ids = NULL;
		if (remote != NULL)
			store_strings_free(remote, nremote);
		remote = NULL;
		if (kind != STORE_RCPT_LOCAL)
			xfree(&addr);
	}
	if (addr == NULL && n > 0) {
		len = strlen(domains[0]) + sizeof("postmaster@");
		addr = xmalloc(len);
		snprintf(addr, len, "postmaster@%s", domains[0]);
	}
	store_strings_free(domains, n);
	return addr;
}

/* RFC 5321 4.5.1: postmaster@ every local domain MUST be accepted. When
   no account or alias has that name, the oldest account of the domain
   gets it (an alias chooses someone else). Returns the new kind. */
static int
smtp_deliver_postmaster_fallback(struct smtp_session *s, const char *norm,
				 int64_t **ids_r, size_t *n_r)
{
	struct store_account *accts = NULL;
	size_t n = 0, i, best = 0;
	const char *at = strchr(norm, '@');

	if (at == NULL || (size_t)(at - norm) != 10 ||
	    strncmp(norm, "postmaster", 10) != 0)
		return STORE_RCPT_UNKNOWN;
	if (store_account_list(s->env->store, at + 1, &accts, &n) < 0)
		return STORE_ERR;
	for (i = 1; i < n; i++) {
		if (accts[i].id < accts[best].id)
			best = i;
	}
	if (n > 0) {
		free(*ids_r);
		*ids_r = xmalloc(sizeof(**ids_r));
		(*ids_r)[0] = accts[best].id;
		*n_r = 1;
	}
	store_accounts_free(accts, n);
	return n > 0 ? STORE_RCPT_LOCAL : STORE_RCPT_UNKNOWN;
}

static void
smtp_deliver_rcpt_log(struct smtp_session *s, const char *event,
		      const char *addr)
{
	char to[SMTP_PATH_MAX + 8];

	log_info("smtp", smtp_session_id(s), "%s id=%s to=<%s>", event,
		 s->tx.id, log_sanitize(to, sizeof(to), addr, strlen(addr)));
}

/* The resolution result applied to the transaction; replies. */
static void
smtp_deliver_rcpt_kind(struct smtp_session *s, int kind, const char *norm,
		       const struct smtp_path *path,
		       const struct smtp_rcpt_params *rp, int64_t *ids,
		       size_t n, char **remote, size_t rn)
{
	if (kind == STORE_RCPT_UNKNOWN) {
		smtp_deliver_rcpt_log(s, "reject-rcpt-unknown", norm);
		smtp_reply_error(s, "550 5.1.1 Recipient address rejected: "
				    "User unknown");
		return;
	}
	if (kind == STORE_RCPT_NOT_LOCAL && !s->authed) {
		smtp_deliver_rcpt_log(s, "reject-relay", norm);
		smtp_reply_error(s, "554 5.7.1 Relay access denied");
		return;
	}
	if (smtp_deliver_check_rate(s) == 0)
		return;
	if (kind == STORE_RCPT_NOT_LOCAL) {
		if (s->tx.remote_count >= SMTP_EXPANDED_MAX) {
			smtp_reply(s, "452 4.5.3 Too many recipients");
			return;
		}
		smtp_deliver_add_remote(s, path->addr, rp);
	} else {
		if (n > 0 && smtp_deliver_add_local(s, ids, n, path, rp) < 0)
			return;
		if (smtp_deliver_add_remotes(s, remote, rn, rp) < 0)
			return;
	}
	if (s->tx.first_rcpt == NULL)
		s->tx.first_rcpt = arena_strdup(s->tx.arena, path->addr);
	s->tx.rcpt_count++;
	s->state = SMTP_S_RCPT;
	smtp_deliver_rcpt_log(s, "rcpt-ok", norm);
	smtp_reply(s, "250 2.1.5 Ok");
}

static void
smtp_deliver_tx_arrays(struct smtp_session *s)
{
	if (s->tx.local != NULL)
		return;
	s->tx.local = arena_alloc(s->tx.arena, SMTP_EXPANDED_MAX *
						       sizeof(*s->tx.local));
	s->tx.remote = arena_alloc(s->tx.arena, SMTP_EXPANDED_MAX *
							sizeof(*s->tx.remote));
}

/* The address for lookup: a quoted local part that is a plain dot-atom
   is the same address unquoted (RFC 5321 4.1.2); other quoted forms give
   NULL. Lowercase, trailing dot dropped (store_address_normalize). */
static char *
smtp_deliver_normalize(const struct smtp_path *path)
{
	char buf[SMTP_PATH_MAX + 1];
	size_t i, o = 0;
	const char *p = path->addr;

	if (!path->quoted)
		return store_address_normalize(p);
	for (i = 1; i + 1 < path->local_len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\\' || c == '"' || c == '@' || c <= ' ' ||
		    strchr("(),:;<>[]", c) != NULL)
			return NULL;
		if (c == '.' && (o == 0 || buf[o - 1] == '.'))
			return NULL;
		buf[o++] = (char)c;
	}
	if (o == 0 || buf[o - 1] == '.')
		return NULL;
	snprintf(buf + o, sizeof(buf) - o, "%s", p + path->local_len);
	return store_address_normalize(buf);
}

/* Local or not, judged by the domain alone (lowercase; the parser
   already dropped a trailing dot). */
static int
smtp_deliver_domain_kind(struct smtp_session *s, const struct smtp_path *path)
{
	char *dom = xstrdup(path->addr + path->local_len + 1), *q;
	int r;

	for (q = dom; *q != '\0'; q++) {
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	}
	r = path->literal ? 0 : store_domain_exists(s->env->store, dom);
	free(dom);
	if (r < 0)
		return STORE_ERR;
	return r > 0 ? STORE_RCPT_UNKNOWN : STORE_RCPT_NOT_LOCAL;
}

void
smtp_deliver_rcpt(struct smtp_session *s, const struct smtp_path *path,
		  const struct smtp_rcpt_params *rp)
{
	int64_t *ids = NULL;
	char **remote = NULL, *norm;
	size_t n = 0, rn = 0;
	int kind;

	if (s->tx.rcpt_count >= s->tx.max_rcpts) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	smtp_deliver_tx_arrays(s);
	norm = path->postmaster ? smtp_deliver_postmaster(s) :
				  smtp_deliver_normalize(path);
	if (norm == NULL && path->quoted && !path->postmaster) {
		/* A quoted local part that is no plain dot-atom ("a@b",
		   "a b") names no account: unknown here, relay elsewhere. */
		kind = smtp_deliver_domain_kind(s, path);
		norm = xstrdup(path->addr);
	} else if (norm == NULL) {
		smtp_reply_error(s, "550 5.1.1 Recipient address rejected: "
				    "User unknown");
		return;
	} else {
		kind = store_rcpt_resolve(s->env->store, norm, &ids, &n,
					  &remote, &rn);
		if (kind == STORE_RCPT_UNKNOWN)
			kind = smtp_deliver_postmaster_fallback(s, norm, &ids,
								&n);
	}
	if (kind < 0)
		smtp_reply(s, "451 4.3.0 Temporary lookup failure");
	else
		smtp_deliver_rcpt_kind(s, kind, norm, path, rp, ids, n,
				       remote, rn);
	free(ids);
	if (remote != NULL)
		store_strings_free(remote, rn);
	free(norm);
}

/* ---- content ---- */

static void
smtp_deliver_date(time_t now, char *out, size_t size)
{
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* RFC 3848 and RFC 6531 3.7.3 "with" protocol names. */
static const char *
smtp_deliver_with(const struct smtp_session *s)
{
	static const char *const names[2][4] = {
		{ "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" },
		{ "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" },
	};
	int i = (s->authed ? 1 : 0) + (conn_is_tls(s->c) ? 2 : 0);

	if (!s->esmtp)
		return "SMTP";
	return names[s->tx.mp.smtputf8 ? 1 : 0][i];
}

static int
smtp_deliver_trace(struct smtp_session *s, struct buf *b)
{
	char date[64];

	smtp_deliver_date(ev_now(s->env->loop), date, sizeof(date));
	/* RFC 5321 4.4 TCP-info: an address literal, "IPv6:" for v6. */
	buf_printf(b, "Received: from %s (unknown [%s%s])\r\n", s->helo,
		   strchr(conn_peer_addr(s->c), ':') != NULL ? "IPv6:" : "",
		   conn_peer_addr(s->c));
	if (conn_is_tls(s->c))
		buf_printf(b, "\t(using %s with cipher %s (%d bits))\r\n",
			   conn_tls_version(s->c), conn_tls_cipher(s->c),
			   conn_tls_cipher_bits(s->c));
	buf_printf(b, "\tby %s (tern) with %s id %s", s->env->hostname,
		   smtp_deliver_with(s), s->tx.id);
	/* One blob serves every local recipient: name the recipient only
	   when there is exactly one (RFC 5321 4.4 makes "for" optional). */
	if (s->tx.rcpt_count == 1 && s->tx.first_rcpt != NULL)
		buf_printf(b, "\r\n\tfor <%s>", s->tx.first_rcpt);
	return buf_printf(b, "; %s\r\n", date);
}

static struct store_blob_writer *
smtp_deliver_writer(struct smtp_session *s, const struct buf *hdr)
{
	struct store_blob_writer *w = store_blob_writer_new(s->env->store);

	if (w == NULL)
		return NULL;
	if (hdr->len > 0 && store_blob_writer_write(w, hdr->data, hdr->len) < 0)
		store_blob_writer_abort(&w);
	return w;
}

/* A Sent copy for submitted mail: the sender's domain decides, else the
   config (smtp_save_sent). */
static bool
smtp_deliver_wants_sent(const struct smtp_session *s)
{
	const char *at;
	int value = -1;

	if (!s->authed || s->listener->protocol != CFG_PROTO_SUBMISSION ||
	    s->account == NULL || (at = strrchr(s->account, '@')) == NULL)
		return false;
	if (store_sent_get(s->env->store, at + 1, &value) < 0)
		value = -1;
	return value < 0 ? s->env->cfg->smtp_save_sent : value == 1;
}

int
smtp_deliver_start(struct smtp_session *s)
{
	struct buf trace, rp, none;
	int ret = 0;

	buf_init(&trace, 4096);
	buf_init(&rp, 4096);
	buf_init(&none, 1);
	smtp_deliver_trace(s, &trace);
	buf_printf(&rp, "Return-Path: <%s>\r\n", s->tx.sender);
	buf_append(&rp, trace.data, trace.len);
	if (s->tx.local_count > 0 &&
	    (s->tx.w_local = smtp_deliver_writer(s, &rp)) == NULL)
		ret = -1;
	if (ret == 0 && s->tx.remote_count > 0 &&
	    (s->tx.w_remote = smtp_deliver_writer(s, &trace)) == NULL)
		ret = -1;
	if (ret == 0 && smtp_deliver_wants_sent(s) &&
	    (s->tx.w_sent = smtp_deliver_writer(s, &none)) == NULL)
		ret = -1;
	buf_free(&trace);
	buf_free(&rp);
	buf_free(&none);
	if (ret < 0) {
		log_error("smtp", smtp_session_id(s), "blob-open-failed: %s",
			  store_last_error(s->env->store));
		s->tx.write_nospace =
			store_last_code(s->env->store) == STORE_NOSPACE;
		smtp_deliver_abort(s);
		return -1;
	}
	s->tx.started = true;
	return 0;
}

const char *
smtp_deliver_store_reply(const struct smtp_session *s)
{
	return s->tx.write_nospace ? "452 4.3.1 Insufficient system storage"
				   : "451 4.3.0 Temporary failure storing "
				     "the message, try again later";
}

void
smtp_deliver_write(struct smtp_session *s, const void *data, size_t len)
{
	struct store_blob_writer *ws[3] = { s->tx.w_local, s->tx.w_remote,
					    s->tx.w_sent };
	size_t i;

	if (s->tx.write_failed)
		return;
	for (i = 0; i < 3; i++) {
		if (ws[i] != NULL &&
		    store_blob_writer_write(ws[i], data, len) < 0) {
			log_error("smtp", smtp_session_id(s),
				  "blob-write-failed: %s",
				  store_last_error(s->env->store));
			s->tx.write_failed = true;
			s->tx.write_nospace = store_last_code(s->env->store) ==
					      STORE_NOSPACE;
			return;
		}
	}
}

void
smtp_deliver_abort(struct smtp_session *s)
{
	if (s->tx.w_local != NULL)
		store_blob_writer_abort(&s->tx.w_local);
	if (s->tx.w_remote != NULL)
		store_blob_writer_abort(&s->tx.w_remote);
	if (s->tx.w_sent != NULL)
		store_blob_writer_abort(&s->tx.w_sent);
	s->tx.started = false;
}

/* ---- group commit (on the worker's commit thread) ---- */

/* Blob order in struct smtp_commit. */
enum { SMTP_BLOB_LOCAL, SMTP_BLOB_REMOTE, SMTP_BLOB_SENT, SMTP_BLOB_COUNT };

/* One finished message on its way through the commit thread. run()
   reads the session's transaction, which is frozen meanwhile (input
   paused, a close only marks the session dead). */
struct smtp_commit {
	struct store_commit_job job; /* first: the job is the commit */
	struct store_commit_blob blobs[SMTP_BLOB_COUNT];
	struct smtp_session *s;
	struct store *st; /* the thread's store, during run */
	time_t now;	  /* when the content ended */
	char reply[256];
};

/* The outcome of one local delivery, for a notification. */
static void
smtp_deliver_outcome(struct smtp_dsn_rcpt *o, const struct smtp_local *l,
		     int result)
{
	o->local = l;
	o->delivered = result == STORE_OK;
	if (result == STORE_OK) {
		o->status = "2.0.0";
		o->diag = "250 2.0.0 Delivered to the mailbox";
	} else if (result == STORE_OVERQUOTA) {
		o->status = "5.2.2";
		o->diag = "552 5.2.2 Mailbox full";
	} else if (result == STORE_NOTFOUND) {
		o->status = "5.1.1";
		o->diag = "550 5.1.1 Mailbox unavailable";
	} else {
		o->status = "5.3.0";
		o->diag = "554 5.3.0 Delivery failed";
	}
}

/* Deliver to every local account; outcomes (tx.local_count of them)
   into out. */
static int
smtp_deliver_local(struct smtp_commit *cm, struct smtp_dsn_rcpt *out,
		   size_t *ok_r)
{
	struct smtp_session *s = cm->s;
	struct store_delivery *d;
	size_t i;
	int r;

	*ok_r = 0;
	if (s->tx.local_count == 0)
		return STORE_OK;
	d = xcalloc(s->tx.local_count, sizeof(*d));
	for (i = 0; i < s->tx.local_count; i++)
		d[i].account_id = s->tx.local[i].id;
	r = store_deliver(cm->st, cm->blobs[SMTP_BLOB_LOCAL].hash, cm->now, d,
			  s->tx.local_count);
	for (i = 0; r == STORE_OK && i < s->tx.local_count; i++) {
		smtp_deliver_outcome(&out[i], &s->tx.local[i], d[i].result);
		if (d[i].result == STORE_OK) {
			(*ok_r)++;
			continue;
		}
		log_warn("smtp", smtp_session_id(s),
			 "deliver-failed id=%s account=%lld result=%d",
			 s->tx.id, (long long)d[i].account_id, d[i].result);
	}
	free(d);
	return r;
}

/* After a 250: a report for the local outcomes that ask for one (a
   failure after the 250 must not be silent, RFC 5321 6.1). */
static int
smtp_deliver_notify(struct smtp_commit *cm, struct smtp_dsn_rcpt *out)
{
	struct smtp_session *s = cm->s;
	size_t i, n = 0;

	for (i = 0; i < s->tx.local_count; i++) {
		if (smtp_dsn_wanted(s, &out[i]))
			out[n++] = out[i];
	}
	if (n == 0)
		return STORE_OK;
	return smtp_dsn_send(s, cm->st, cm->now,
			     cm->blobs[SMTP_BLOB_LOCAL].hash, out, n);
}

static int
smtp_deliver_queue(struct smtp_commit *cm)
{
	struct smtp_session *s = cm->s;
	struct store_queue_entry e;
	int64_t id;
	size_t i;
	int r;

	if (s->tx.remote_count == 0)
		return STORE_OK;
	memset(&e, 0, sizeof(e));
	e.sender = s->tx.sender;
	e.envid = s->tx.mp.envid[0] != '\0' ? s->tx.mp.envid : NULL;
	e.ret = s->tx.mp.ret == SMTP_RET_FULL ? "FULL" :
		s->tx.mp.ret == SMTP_RET_HDRS ? "HDRS" : NULL;
	e.body = s->tx.mp.body == SMTP_BODY_7BIT ? "7BIT" :
		 s->tx.mp.body == SMTP_BODY_8BITMIME ? "8BITMIME" : NULL;
	e.smtputf8 = s->tx.mp.smtputf8;
	memcpy(e.blob, cm->blobs[SMTP_BLOB_REMOTE].hash, sizeof(e.blob));
	e.size = cm->blobs[SMTP_BLOB_REMOTE].size;
	e.created = e.next_attempt = cm->now;
	e.rcpts = xcalloc(s->tx.remote_count, sizeof(*e.rcpts));
	e.rcpt_count = s->tx.remote_count;
	for (i = 0; i < s->tx.remote_count; i++) {
		e.rcpts[i].address = s->tx.remote[i].address;
		e.rcpts[i].orcpt = s->tx.remote[i].orcpt;
		e.rcpts[i].notify = s->tx.remote[i].notify;
	}
	r = store_queue_add(cm->st, &e, &id);
	free(e.rcpts);
	if (r == STORE_OK)
		log_info("smtp", smtp_session_id(s), "queued id=%s queue=%lld "
			 "rcpts=%zu", s->tx.id, (long long)id,
			 s->tx.remote_count);
	return r;
}

/* A copy in the sender's Sent mailbox, unless the client already put
   one there (same Message-ID, any age). Failures are logged; they never
   fail the submission. */
static void
smtp_deliver_save_sent(struct smtp_commit *cm)
{
	struct smtp_session *s = cm->s;
	struct store *st = cm->st;
	const char *sent_blob = cm->blobs[SMTP_BLOB_SENT].hash;
	struct store_mailbox *boxes = NULL, *sent = NULL;
	size_t n = 0, i;
	uint32_t uid;

	if (sent_blob[0] == '\0' ||
	    store_mailbox_list(st, s->account_id, &boxes, &n) < 0)
		return;
	for (i = 0; i < n && sent == NULL; i++) {
		if (boxes[i].special_use != NULL &&
		    strcasecmp(boxes[i].special_use, "\\Sent") == 0)
			sent = &boxes[i];
	}
	if (sent != NULL &&
	    store_sent_find(st, sent->id, sent_blob, 0, &uid) == 0 &&
	    store_msg_append(st, sent->id, sent_blob, STORE_FLAG_SEEN, NULL,
			     cm->now, &uid) < 0)
		log_warn("smtp", smtp_session_id(s), "save-sent-failed: %s",
			 store_last_error(st));
	store_mailboxes_free(boxes, n);
}

/* The metadata of one message (store_commit_run_fn), inside the commit
   thread's batch. Returns a store error that undoes this message, or
   STORE_OK with cm->reply set. */
static int
smtp_deliver_commit_run(struct store *st, struct store_commit_job *job)
{
	struct smtp_commit *cm = (struct smtp_commit *)job;
	struct smtp_session *s = cm->s;
	struct smtp_dsn_rcpt *out;
	size_t ok = 0;
	int r;

	cm->st = st;
	cm->reply[0] = '\0';
	/* Again inside the batch: sessions of one account running in
	   parallel all passed the RCPT check against the same count. */
	r = smtp_deliver_over_rate(s, st, cm->now, s->tx.rcpt_count);
	if (r < 0)
		return STORE_ERR;
	if (r > 0) {
		smtp_deliver_rate_reply(s, st, cm->now, cm->reply,
					sizeof(cm->reply));
		return STORE_OK;
	}
	out = xcalloc(s->tx.local_count + 1, sizeof(*out));
	r = smtp_deliver_local(cm, out, &ok);
	if (r == STORE_OK && ok == 0 && s->tx.local_count > 0 &&
	    s->tx.remote_count == 0) {
		/* Nobody took it: the sender hears it now, no report. */
		free(out);
		snprintf(cm->reply, sizeof(cm->reply),
			 "552 5.2.2 Mailbox full");
		return STORE_OK;
	}
	if (r == STORE_OK)
		r = smtp_deliver_queue(cm);
	if (r == STORE_OK)
		r = smtp_deliver_notify(cm, out);
	free(out);
	if (r == STORE_OK && s->authed && s->tx.rcpt_count > 0)
		r = store_send_record(st, s->account_id, cm->now,
				      s->tx.rcpt_count);
	if (r != STORE_OK)
		return r;
	smtp_deliver_save_sent(cm);
	snprintf(cm->reply, sizeof(cm->reply), "250 2.0.0 Ok: queued as %s",
		 s->tx.id);
	return STORE_OK;
}

/* Back on the loop (store_commit_done_fn): the reply, then the session
   goes on (or is freed, when it closed meanwhile). */
static void
smtp_deliver_commit_done(struct store_commit_job *job)
{
	struct smtp_commit *cm = (struct smtp_commit *)job;
	struct smtp_session *s = cm->s;

	if (job->result != STORE_OK) {
		if (!job->blobs_ok)
			log_error("smtp", smtp_session_id(s),
				  "blob-finish-failed id=%s: %s", s->tx.id,
				  job->error);
		else
			log_error("smtp", smtp_session_id(s),
				  "commit-failed id=%s err=%d: %s", s->tx.id,
				  job->result, job->error);
		snprintf(cm->reply, sizeof(cm->reply), "%s",
			 job->result == STORE_NOSPACE ?
				 "452 4.3.1 Insufficient system storage" :
				 "451 4.3.0 Temporary failure, try again "
				 "later");
	}
	s->pending = false;
	log_info("smtp", smtp_session_id(s), "message id=%s size=%llu "
		 "rcpts=%u batch=%zu reply=%.3s", s->tx.id,
		 (unsigned long long)s->tx.data.size, s->tx.rcpt_count,
		 job->batch_size, cm->reply);
	smtp_session_commit_done(s, cm->reply);
	free(cm);
}

void
smtp_deliver_submit(struct smtp_session *s)
{
	struct smtp_commit *cm = xcalloc(1, sizeof(*cm));

	s->state = SMTP_S_WAIT;
	conn_pause_input(s->c);
	s->pending = true;
	cm->s = s;
	cm->now = ev_now(s->env->loop);
	/* The writers go to the thread, which finishes them (fsync). */
	cm->blobs[SMTP_BLOB_LOCAL].w = s->tx.w_local;
	cm->blobs[SMTP_BLOB_REMOTE].w = s->tx.w_remote;
	cm->blobs[SMTP_BLOB_SENT].w = s->tx.w_sent;
	s->tx.w_local = s->tx.w_remote = s->tx.w_sent = NULL;
	cm->job.run = smtp_deliver_commit_run;
	cm->job.done = smtp_deliver_commit_done;
	cm->job.blobs = cm->blobs;
	cm->job.blob_count = SMTP_BLOB_COUNT;
	store_commit_submit(s->env->commit, &cm->job);
}
