/* Delivery status notifications for local recipients, after the 250:
   "failed" when a mailbox could not take the message after all (quota
   filled between RCPT and the end of DATA), "delivered" when the RCPT
   asked for NOTIFY=SUCCESS. RFC 3461 4.1 and 5.2 (when to notify; the
   default is FAILURE; never for the null sender), 4.2 (ORCPT as
   Original-Recipient), 4.3 (RET=FULL returns the message, HDRS only its
   header), 4.4 (ENVID); RFC 3464 2 (multipart/report with a
   message/delivery-status part: per-message and per-recipient fields);
   RFC 3834 5 (Auto-Submitted); RFC 5321 4.5.5 and 6.1 (a report goes
   to the reverse-path, from the null sender, and a message accepted
   with 250 is never dropped silently).
   Security: the report repeats only the sender's own envelope data and
   the header of the message it sent; it goes to the reverse-path only,
   with the null sender, so it can never trigger another report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/conn.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "smtp/smtp_int.h"

/* A report is at most this, plus SMTP_DSN_RCPT_MAX per recipient, plus
   the returned part. */
#define SMTP_DSN_TEXT_MAX (16 * 1024)
/* Addresses (256), ORCPT (500) and the fixed text of one recipient. */
#define SMTP_DSN_RCPT_MAX 2048
/* The returned message or header: larger ones are cut at a line end
   (RET=FULL then gets only the header, as Postfix's bounce_size_limit). */
#define SMTP_DSN_RETURN_MAX (1024 * 1024)

bool
smtp_dsn_wanted(const struct smtp_session *s, const struct smtp_dsn_rcpt *r)
{
	unsigned int notify = r->local->notify;

	if (s->tx.sender == NULL || s->tx.sender[0] == '\0')
		return false;
	if (notify & SMTP_NOTIFY_NEVER)
		return false;
	if (r->delivered)
		return (notify & SMTP_NOTIFY_SUCCESS) != 0;
	return notify == 0 || (notify & SMTP_NOTIFY_FAILURE) != 0;
}

/* RFC 3461 4: xtext "+XX" back to bytes; anything unprintable stays
   encoded so that no control byte reaches a header. */
static void
smtp_dsn_xtext(struct buf *b, const char *x)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *h1, *h2;
	unsigned int c;

	for (; *x != '\0'; x++) {
		if (x[0] == '+' && x[1] != '\0' && x[2] != '\0' &&
		    (h1 = strchr(hex, x[1])) != NULL &&
		    (h2 = strchr(hex, x[2])) != NULL) {
			c = (unsigned int)((h1 - hex) * 16 + (h2 - hex));
			if (c > 32 && c < 127) {
				buf_append_byte(b, (uint8_t)c);
				x += 2;
				continue;
			}
		}
		buf_append_byte(b, (uint8_t)*x);
	}
}

static bool
smtp_dsn_all_delivered(const struct smtp_dsn_rcpt *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!r[i].delivered)
			return false;
	}
	return true;
}

static void
smtp_dsn_headers(struct smtp_session *s, time_t now, struct buf *b,
		 const char *bound, bool success)
{
	char date[64];
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
		      "To: <%s>\r\n"
		      "Subject: Delivery Status Notification (%s)\r\n"
		      "Date: %s\r\n"
		      "Message-ID: <dsn.%s@%s>\r\n"
		      "Auto-Submitted: auto-replied\r\n"
		      "MIME-Version: 1.0\r\n"
		      "Content-Type: multipart/report; "
		      "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n"
		      "\r\n",
		   s->env->hostname, s->tx.sender,
		   success ? "Success" : "Failure", date, s->tx.id,
		   s->env->hostname, bound);
}

static void
smtp_dsn_text(struct smtp_session *s, struct buf *b, const char *bound,
	      const struct smtp_dsn_rcpt *r, size_t n)
{
	size_t i;

	buf_printf(b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n"
		      "\r\nThis is the mail system at %s.\r\n\r\n"
		      "About your message %s:\r\n\r\n",
		   bound, s->env->hostname, s->tx.id);
	for (i = 0; i < n; i++)
		buf_printf(b, "<%s>: %s\r\n  %s\r\n", r[i].local->rcpt,
			   r[i].delivered ? "delivered" :
					    "could not be delivered",
			   r[i].diag);
	buf_append_str(b, "\r\n");
}

static void
smtp_dsn_status(struct smtp_session *s, struct buf *b, const char *bound,
		const struct smtp_dsn_rcpt *r, size_t n)
{
	size_t i;

	buf_printf(b, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n"
		      "Reporting-MTA: dns; %s\r\n", bound, s->env->hostname);
	if (s->tx.mp.envid[0] != '\0') {
		buf_append_str(b, "Original-Envelope-Id: ");
		smtp_dsn_xtext(b, s->tx.mp.envid);
		buf_append_str(b, "\r\n");
	}
	for (i = 0; i < n; i++) {
		buf_printf(b, "\r\nFinal-Recipient: rfc822; %s\r\n",
			   r[i].local->rcpt);
		if (r[i].local->orcpt != NULL) {
			buf_append_str(b, "Original-Recipient: ");
			smtp_dsn_xtext(b, r[i].local->orcpt);
			buf_append_str(b, "\r\n");
		}
		buf_printf(b, "Action: %s\r\nStatus: %s\r\n"
			      "Diagnostic-Code: smtp; %s\r\n",
			   r[i].delivered ? "delivered" : "failed",
			   r[i].status, r[i].diag);
	}
	buf_append_str(b, "\r\n");
}

/* The returned message: whole for RET=FULL on failure, else its header
   (RFC 3461 4.3, RFC 3462 text/rfc822-headers). */
static int
smtp_dsn_returned(struct smtp_session *s, struct store *st, struct buf *b,
		  const char *bound, const char *blob, bool success)
{
	struct store_map map;
	const uint8_t *end;
	size_t len;
	bool full = !success && s->tx.mp.ret == SMTP_RET_FULL;

	if (store_blob_map(st, blob, &map) != STORE_OK)
		return -1;
	len = map.len;
	end = memmem(map.data, map.len, "\r\n\r\n", 4);
	if (len > SMTP_DSN_RETURN_MAX)
		full = false;
	if (!full && end != NULL)
		len = (size_t)(end - map.data) + 2;
	while (len > SMTP_DSN_RETURN_MAX) {
		/* a header that large: cut it after a whole line */
		end = memrchr(map.data, '\n', SMTP_DSN_RETURN_MAX);
		len = end != NULL ? (size_t)(end - map.data) + 1 :
				    SMTP_DSN_RETURN_MAX;
	}
	buf_printf(b, "--%s\r\nContent-Type: %s\r\n\r\n", bound,
		   full ? "message/rfc822" : "text/rfc822-headers");
	buf_append(b, map.data, len);
	store_blob_unmap(&map);
	if (len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
		buf_append_str(b, "\r\n");
	return buf_printf(b, "\r\n--%s--\r\n", bound);
}

/* The report into the INBOX of local accounts, from <>. */
static int
smtp_dsn_deliver(struct store *st, time_t now, const struct buf *report,
		 const int64_t *ids, size_t n)
{
	char hash[STORE_HASH_HEX_LEN + 1];
	struct store_delivery *d;
	struct buf local;
	size_t i;
	int r;

	buf_init(&local, report->len + 32);
	buf_append_str(&local, "Return-Path: <>\r\n");
	buf_append(&local, report->data, report->len);
	r = store_blob_write(st, local.data, local.len, hash);
	buf_free(&local);
	if (r != STORE_OK)
		return r;
	d = xcalloc(n, sizeof(*d));
	for (i = 0; i < n; i++)
		d[i].account_id = ids[i];
	/* A full mailbox of the sender loses only the report. */
	r = store_deliver(st, hash, now, d, n);
	free(d);
	return r;
}

/* The report into the outbound queue, from <>. */
static int
smtp_dsn_queue(struct store *st, time_t now, const struct buf *report,
	       char *const *addrs, size_t n)
{
	struct store_queue_entry e;
	struct store_queue_rcpt *qr;
	int64_t qid;
	size_t i;
	int r;

	memset(&e, 0, sizeof(e));
	r = store_blob_write(st, report->data, report->len, e.blob);
	if (r != STORE_OK)
		return r;
	e.sender = "";
	e.size = report->len;
	e.created = e.next_attempt = now;
	qr = xcalloc(n, sizeof(*qr));
	for (i = 0; i < n; i++)
		qr[i].address = addrs[i];
	e.rcpts = qr;
	e.rcpt_count = n;
	r = store_queue_add(st, &e, &qid);
	free(qr);
	return r;
}

/* Deliver the report to the sender's local accounts and queue it for
   the remote ones (an alias may have both). */
static int
smtp_dsn_route(struct smtp_session *s, struct store *st, time_t now,
	       const struct buf *report)
{
	char *norm = store_address_normalize(s->tx.sender), **remote = NULL;
	int64_t *ids = NULL;
	size_t n = 0, rn = 0;
	int kind, r = STORE_OK;

	kind = norm == NULL ? STORE_RCPT_UNKNOWN :
			      store_rcpt_resolve(st, norm, &ids,
						 &n, &remote, &rn);
	free(norm);
	if (kind == STORE_RCPT_NOT_LOCAL)
		r = smtp_dsn_queue(st, now, report, &s->tx.sender, 1);
	if (kind == STORE_RCPT_LOCAL && n > 0)
		r = smtp_dsn_deliver(st, now, report, ids, n);
	if (kind == STORE_RCPT_LOCAL && r == STORE_OK && rn > 0)
		r = smtp_dsn_queue(st, now, report, remote, rn);
	if (kind == STORE_RCPT_UNKNOWN)
		log_warn("smtp", smtp_session_id(s), "dsn-undeliverable id=%s",
			 s->tx.id);
	free(ids);
	if (remote != NULL)
		store_strings_free(remote, rn);
	return kind < 0 ? kind : r;
}

int
smtp_dsn_send(struct smtp_session *s, struct store *st, time_t now,
	      const char *blob, const struct smtp_dsn_rcpt *r, size_t n)
{
	struct buf b;
	char bound[SMTP_ID_LEN + 16];
	bool success = smtp_dsn_all_delivered(r, n);
	int ret;

	snprintf(bound, sizeof(bound), "=_tern_dsn_%s", s->tx.id);
	buf_init(&b, SMTP_DSN_TEXT_MAX + n * SMTP_DSN_RCPT_MAX +
			     SMTP_DSN_RETURN_MAX);
	smtp_dsn_headers(s, now, &b, bound, success);
	smtp_dsn_text(s, &b, bound, r, n);
	smtp_dsn_status(s, &b, bound, r, n);
	if (smtp_dsn_returned(s, st, &b, bound, blob, success) < 0) {
		/* Never fail the message for its report: the bounds above
		   make this a bug or an unreadable blob; log it. */
		log_error("smtp", smtp_session_id(s), "dsn-build-failed id=%s",
			  s->tx.id);
		buf_free(&b);
		return STORE_OK;
	}
	ret = smtp_dsn_route(s, st, now, &b);
	log_info("smtp", smtp_session_id(s), "dsn id=%s action=%s rcpts=%zu "
		 "result=%d", s->tx.id, success ? "delivered" : "failed", n,
		 ret);
	buf_free(&b);
	return ret;
}
