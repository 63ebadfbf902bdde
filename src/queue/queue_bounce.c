/* Delivery status notifications: RFC 3464 (message/delivery-status
   fields: Reporting-MTA, Original-Envelope-Id, Arrival-Date; per
   recipient Final-Recipient, Original-Recipient, Action, Status, Remote-
   MTA, Diagnostic-Code, Last-Attempt-Date, and Will-Retry-Until for
   Action: delayed, 2.3.3 and 2.3.9) inside an RFC 6522
   multipart/report, with the original message (or only its header for
   RET=HDRS, RFC 3461 4.3, or when it is large) attached.
   RFC 3461 4.1 (NOTIFY=NEVER / no FAILURE: no failure DSN; no DELAY:
   no delay DSN; no NOTIFY at all: both), RFC 3461 6.2.2 (NOTIFY=SUCCESS
   handed to a server without DSN: Action: relayed, as no later report
   will come), RFC 5321 6.1 and
   4.5.5 (a DSN goes to the envelope sender with the null reverse-path,
   never to a null sender: no bounce loops), RFC 3834 5 (Auto-Submitted).
   The builder is pure; queue_bounce_send stores the DSN: into the
   sender's INBOX when the sender is ours, else into the queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/cfg.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/queue_int.h"

void
queue_bounce_xtext_decode(const char *in, char *out, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (max == 0)
		return;
	for (; *in != '\0' && o + 1 < max; in++) {
		const char *h1, *h2;
		unsigned char c = (unsigned char)*in;
		if (c == '+' && in[1] != '\0' && in[2] != '\0' &&
		    (h1 = strchr(hex, in[1])) != NULL &&
		    (h2 = strchr(hex, in[2])) != NULL) {
			c = (unsigned char)((h1 - hex) << 4 | (h2 - hex));
			in += 2;
		}
		/* Never let a header line break out. */
		out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[o] = '\0';
}

static void
queue_bounce_date(int64_t t, char *out, size_t max)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, max, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Append s with control characters replaced (one header/body line). */
static int
queue_bounce_clean(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (buf_append_byte(out, c < 0x20 || c == 0x7f ? ' ' : c) < 0)
			return -1;
	}
	return 0;
}

static int
queue_bounce_header(const struct queue_bounce *b, struct buf *out)
{
	char date[64];
	int r = 0;

	queue_bounce_date(b->now, date, sizeof(date));
	r |= buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
			b->reporting_mta);
	r |= buf_append_str(out, "To: <");
	r |= queue_bounce_clean(out, b->sender);
	r |= buf_printf(out, ">\r\nSubject: %s\r\nDate: %s\r\n"
			     "Message-ID: %s\r\n"
			     "Auto-Submitted: auto-replied\r\n"
			     "MIME-Version: 1.0\r\n"
			     "Content-Type: multipart/report; "
			     "report-type=delivery-status;\r\n"
			     "\tboundary=\"%s\"\r\n\r\n"
			     "This is a MIME-encapsulated message.\r\n\r\n",
			b->delayed ? "Delayed Mail (still being retried)" :
			b->relayed ? "Successful Mail Relay Report" :
				     "Undelivered Mail Returned to Sender",
			date, b->message_id, b->boundary);
	return r < 0 ? -1 : 0;
}

static int
queue_bounce_text(const struct queue_bounce *b, struct buf *out)
{
	char until[64];
	int r = 0;

	r |= buf_printf(out, "--%s\r\nContent-Description: Notification\r\n"
			     "Content-Type: text/plain; charset=utf-8\r\n\r\n"
			     "This is the mail system at host %s.\r\n\r\n",
			b->boundary, b->reporting_mta);
	if (b->delayed) {
		queue_bounce_date(b->retry_until, until, sizeof(until));
		r |= buf_printf(out, "Your message could not be delivered yet "
				     "to one or more recipients.\r\nThis is "
				     "only a warning: delivery will be tried "
				     "again until\r\n%s; you do not need to "
				     "send it again.\r\nThe reasons are given "
				     "below; the message header is attached."
				     "\r\n\r\n", until);
	} else if (b->relayed) {
		r |= buf_append_str(out, "Your message was handed to the mail "
				    "server of one or more recipients, as "
				    "you asked\r\nto be told. That server "
				    "does not report delivery itself, so this "
				    "is\r\nthe last report for them. Its "
				    "replies are given below; the message\r\n"
				    "header is attached.\r\n\r\n");
	} else {
		r |= buf_append_str(out, "Your message could not be delivered "
				    "to one or more recipients.\r\nThe "
				    "reasons are given below; the message is "
				    "attached.\r\n\r\n");
	}
	for (size_t i = 0; i < b->rcpt_count; i++) {
		r |= buf_append_str(out, "<");
		r |= queue_bounce_clean(out, b->rcpts[i].address);
		r |= buf_append_str(out, ">: ");
		r |= queue_bounce_clean(out, b->rcpts[i].diag);
		r |= buf_append_str(out, "\r\n\r\n");
	}
	return r < 0 ? -1 : 0;
}

static int
queue_bounce_rcpt(const struct queue_bounce *b,
		  const struct queue_bounce_rcpt *rc, struct buf *out)
{
	char orcpt[QUEUE_DIAG_MAX_BYTES], date[64];
	int r = 0;

	queue_bounce_date(b->now, date, sizeof(date));
	r |= buf_append_str(out, "\r\nFinal-Recipient: rfc822; ");
	r |= queue_bounce_clean(out, rc->address);
	if (rc->orcpt != NULL) {
		/* RFC 3464 2.3.1: "Original-Recipient: addr-type; addr". */
		queue_bounce_xtext_decode(rc->orcpt, orcpt, sizeof(orcpt));
		r |= buf_append_str(out, "\r\nOriginal-Recipient: ");
		r |= queue_bounce_clean(out, orcpt);
	}
	r |= buf_printf(out, "\r\nAction: %s\r\nStatus: %s\r\n", rc->action,
			rc->status);
	if (rc->mta != NULL && rc->mta[0] != '\0') {
		r |= buf_append_str(out, "Remote-MTA: dns; ");
		r |= queue_bounce_clean(out, rc->mta);
		r |= buf_append_str(out, "\r\n");
	}
	/* A remote reply is "smtp;" (RFC 3464 2.3.6); our own reason is
	   written the same way, as Postfix does. */
	r |= buf_append_str(out, "Diagnostic-Code: smtp; ");
	r |= queue_bounce_clean(out, rc->diag);
	r |= buf_printf(out, "\r\nLast-Attempt-Date: %s\r\n", date);
	if (b->delayed) {
		queue_bounce_date(b->retry_until, date, sizeof(date));
		r |= buf_printf(out, "Will-Retry-Until: %s\r\n", date);
	}
	return r < 0 ? -1 : 0;
}

static int
queue_bounce_status(const struct queue_bounce *b, struct buf *out)
{
	char date[64], envid[QUEUE_DIAG_MAX_BYTES];
	int r = 0;

	queue_bounce_date(b->arrival, date, sizeof(date));
	r |= buf_printf(out, "--%s\r\nContent-Description: Delivery report\r\n"
			     "Content-Type: message/delivery-status\r\n\r\n"
			     "Reporting-MTA: dns; %s\r\n",
			b->boundary, b->reporting_mta);
	if (b->envid != NULL) {
		queue_bounce_xtext_decode(b->envid, envid, sizeof(envid));
		r |= buf_append_str(out, "Original-Envelope-Id: ");
		r |= queue_bounce_clean(out, envid);
		r |= buf_append_str(out, "\r\n");
	}
	r |= buf_printf(out, "Arrival-Date: %s\r\n", date);
	for (size_t i = 0; i < b->rcpt_count; i++)
		r |= queue_bounce_rcpt(b, &b->rcpts[i], out);
	r |= buf_append_str(out, "\r\n");
	return r < 0 ? -1 : 0;
}

/* Length of the header block of msg including the empty line. */
static size_t
queue_bounce_header_len(const uint8_t *msg, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (msg[i + 1] == '\n')
			return i + 2;
		if (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

static int
queue_bounce_original(const struct queue_bounce *b, struct buf *out)
{
	size_t len = b->original_len;
	bool eightbit = false;
	int r = 0;

	if (b->headers_only)
		len = queue_bounce_header_len(b->original, len);
	/* A giant header: cut it at a line end within the limit. */
	if (len > QUEUE_BOUNCE_FULL_MAX_BYTES) {
		len = QUEUE_BOUNCE_FULL_MAX_BYTES;
		while (len > 0 && b->original[len - 1] != '\n')
			len--;
	}
	for (size_t i = 0; i < len && !eightbit; i++)
		eightbit = b->original[i] >= 0x80;
	r |= buf_printf(out, "--%s\r\nContent-Description: %s\r\n"
			     "Content-Type: %s\r\n%s\r\n",
			b->boundary,
			b->delayed	? "Delayed message header" :
			b->relayed	? "Relayed message header" :
			b->headers_only ? "Undelivered message header" :
					  "Undelivered message",
			b->headers_only ? "text/rfc822-headers" :
					  "message/rfc822",
			eightbit ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	r |= buf_append(out, b->original, len);
	if (len > 0 && b->original[len - 1] != '\n')
		r |= buf_append_str(out, "\r\n");
	r |= buf_printf(out, "\r\n--%s--\r\n", b->boundary);
	return r < 0 ? -1 : 0;
}

int
queue_bounce_build(const struct queue_bounce *b, struct buf *out)
{
	if (queue_bounce_header(b, out) < 0 || queue_bounce_text(b, out) < 0 ||
	    queue_bounce_status(b, out) < 0 ||
	    queue_bounce_original(b, out) < 0)
		return -1;
	return 0;
}

/* ---- sending ---- */

/* RFC 3461 4.1: no NOTIFY means FAILURE and DELAY are wanted, never
   SUCCESS. */
static bool
queue_bounce_wanted(const struct store_queue_rcpt *r,
		    enum queue_dsn_kind kind)
{
	if (r->notify == NULL || r->notify[0] == '\0')
		return kind != QUEUE_DSN_RELAYED;
	return strstr(r->notify, kind == QUEUE_DSN_DELAYED ? "DELAY" :
				 kind == QUEUE_DSN_RELAYED ? "SUCCESS" :
							     "FAILURE") != NULL;
}

static const char *
queue_bounce_action(enum queue_dsn_kind kind)
{
	return kind == QUEUE_DSN_DELAYED ? "delayed" :
	       kind == QUEUE_DSN_RELAYED ? "relayed" : "failed";
}

/* Whether recipient i of msg goes into a DSN of this kind. */
static bool
queue_bounce_takes(const struct queue_msg *msg, size_t i,
		   enum queue_dsn_kind kind)
{
	const struct queue_rcpt_state *rs = &msg->rs[i];

	if (msg->e.rcpts[i].status != 0 ||
	    !queue_bounce_wanted(&msg->e.rcpts[i], kind))
		return false;
	switch (kind) {
	case QUEUE_DSN_DELAYED:
		return rs->outcome == QUEUE_RCPT_TEMP;
	case QUEUE_DSN_RELAYED:
		/* A server with DSN got NOTIFY and reports itself. */
		return rs->outcome == QUEUE_RCPT_OK && !rs->remote_dsn;
	case QUEUE_DSN_FAILED:
		break;
	}
	return rs->outcome == QUEUE_RCPT_PERM;
}

static int
queue_bounce_queue(struct queue *q, const char *hash, size_t size,
		   const char *to)
{
	struct store_queue_entry e;
	struct store_queue_rcpt rc;
	int64_t id;
	int r;

	memset(&e, 0, sizeof(e));
	memset(&rc, 0, sizeof(rc));
	rc.address = (char *)to;
	e.sender = (char *)"";
	memcpy(e.blob, hash, sizeof(e.blob));
	e.size = size;
	e.created = e.next_attempt = ev_now(q->loop);
	e.rcpts = &rc;
	e.rcpt_count = 1;
	r = store_queue_add(q->store, &e, &id);
	if (r == STORE_OK)
		log_info("queue", NULL, "bounce-queued to=<%s> queue=%lld", to,
			 (long long)id);
	return r;
}

static int
queue_bounce_local(struct queue *q, const char *hash, const int64_t *ids,
		   size_t n, const char *to)
{
	struct store_delivery *d = xcalloc(n, sizeof(*d));
	int r;

	for (size_t i = 0; i < n; i++)
		d[i].account_id = ids[i];
	r = store_deliver(q->store, hash, ev_now(q->loop), d, n);
	for (size_t i = 0; r == STORE_OK && i < n; i++) {
		if (d[i].result != STORE_OK)
			log_warn("queue", NULL, "bounce-not-delivered to=<%s> "
				 "account=%lld result=%d", to,
				 (long long)ids[i], d[i].result);
	}
	free(d);
	if (r == STORE_OK)
		log_info("queue", NULL, "bounce-delivered to=<%s>", to);
	return r;
}

/* Store the DSN for the sender: local INBOX or the queue. */
static int
queue_bounce_store(struct queue *q, const struct buf *dsn, const char *to)
{
	char hash[STORE_HASH_HEX_LEN + 1], *norm;
	int64_t *ids = NULL;
	char **remote = NULL;
	size_t n = 0, rn = 0;
	int kind, r;

	norm = store_address_normalize(to);
	if (norm == NULL) {
		log_warn("queue", NULL, "bounce-dropped to=<%s> reason=bad-"
			 "address", to);
		return STORE_OK;
	}
	kind = store_rcpt_resolve(q->store, norm, &ids, &n, &remote, &rn);
	if (kind < 0) {
		free(norm);
		return kind;
	}
	r = store_blob_write(q->store, dsn->data, dsn->len, hash);
	if (r == STORE_OK && kind == STORE_RCPT_LOCAL && n > 0)
		r = queue_bounce_local(q, hash, ids, n, to);
	for (size_t i = 0; r == STORE_OK && i < rn; i++)
		r = queue_bounce_queue(q, hash, dsn->len, remote[i]);
	if (r == STORE_OK && kind == STORE_RCPT_NOT_LOCAL)
		r = queue_bounce_queue(q, hash, dsn->len, norm);
	if (kind == STORE_RCPT_UNKNOWN)
		log_warn("queue", NULL, "bounce-dropped to=<%s> reason=no-such-"
			 "user", to);
	free(ids);
	store_strings_free(remote, rn);
	free(norm);
	return r;
}

static void
queue_bounce_ids(const struct queue *q, char *boundary, size_t bmax,
		 char *msgid, size_t mmax, int64_t now)
{
	uint32_t rnd[2] = { 0, 0 };

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd[0] = (uint32_t)now;
	snprintf(boundary, bmax, "=_tern-dsn-%lld-%08x%08x", (long long)now,
		 rnd[0], rnd[1]);
	snprintf(msgid, mmax, "<%lld.%08x%08x.dsn@%s>", (long long)now,
		 rnd[0], rnd[1], q->hostname);
}

/* The DSN for the recipients whose outcome is PERM (failed), TEMP (a
   delay warning) or OK at a server without DSN (relayed). */
int
queue_bounce_send(struct queue *q, struct queue_msg *msg,
		  enum queue_dsn_kind kind)
{
	const struct store_queue_entry *e = &msg->e;
	bool delayed = kind == QUEUE_DSN_DELAYED;
	struct queue_bounce_rcpt *rc;
	struct queue_bounce b;
	char boundary[96], msgid[400];
	struct buf dsn;
	size_t n = 0;
	int r;

	if (e->sender[0] == '\0')
		return STORE_OK; /* RFC 5321 6.1: never bounce a bounce */
	rc = xcalloc(e->rcpt_count, sizeof(*rc));
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct queue_rcpt_state *rs = &msg->rs[i];
		if (!queue_bounce_takes(msg, i, kind))
			continue;
		rc[n++] = (struct queue_bounce_rcpt){
			e->rcpts[i].address, e->rcpts[i].orcpt,
			queue_bounce_action(kind), rs->status, rs->mta,
			rs->diag
		};
	}
	if (n == 0) {
		free(rc);
		return STORE_OK;
	}
	memset(&b, 0, sizeof(b));
	b.reporting_mta = q->hostname;
	b.sender = e->sender;
	b.envid = e->envid;
	b.delayed = delayed;
	b.relayed = kind == QUEUE_DSN_RELAYED;
	b.retry_until = e->created + (int64_t)(q->cfg->queue_max_age_ms / 1000);
	/* A warning needs only the header (RFC 3461 4.3 leaves it open;
	   Postfix does the same); RET=FULL is for the failure DSN. */
	b.headers_only = delayed || b.relayed ||
			 (e->ret != NULL && strcmp(e->ret, "HDRS") == 0) ||
			 msg->map.len > QUEUE_BOUNCE_FULL_MAX_BYTES;
	b.arrival = e->created;
	b.now = ev_now(q->loop);
	queue_bounce_ids(q, boundary, sizeof(boundary), msgid, sizeof(msgid),
			 b.now);
	b.boundary = boundary;
	b.message_id = msgid;
	b.rcpts = rc;
	b.rcpt_count = n;
	b.original = msg->map.data;
	b.original_len = msg->map.len;
	buf_init(&dsn, QUEUE_BOUNCE_MAX_BYTES + n * 2 * QUEUE_DIAG_MAX_BYTES);
	r = queue_bounce_build(&b, &dsn) < 0 ? STORE_ERR :
					      queue_bounce_store(q, &dsn,
								 e->sender);
	if (r == STORE_OK)
		log_info("queue", NULL, "dsn-sent action=%s queue=%lld "
			 "to=<%s> rcpts=%zu", queue_bounce_action(kind),
			 (long long)e->id, e->sender, n);
	buf_free(&dsn);
	free(rc);
	return r;
}
