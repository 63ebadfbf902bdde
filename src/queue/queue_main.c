/* The queue scheduler. Every QUEUE_POLL_MS it asks the store for due
   entries (store_queue_due; `ternctl queue flush|retry` only makes
   entries due), splits each message's pending recipients by destination
   domain into jobs, and runs the jobs within queue_max_connections in
   total and queue_max_per_domain per domain (RFC 5321 4.5.4.1: do not
   hammer one destination). When every job of a message is done, the
   outcomes are written back with one store_queue_update: delivered (2),
   failed (5, after the DSN is stored), or retried later with back-off
   until queue_max_age (RFC 5321 4.5.4.1, 6.1), with one RFC 3464
   "delayed" warning to the sender after queue_delay_warning. A message
   leaves the queue only after the remote 250 or after its bounce is
   stored, so a crash at any point repeats a delivery at worst and never
   loses one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cfg.h"
#include "lib/env.h"
#include "lib/ev.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/queue.h"
#include "queue/queue_int.h"

struct queue_domain_slot {
	struct queue_domain_slot *next;
	size_t active;
	char domain[QUEUE_DOMAIN_MAX_BYTES + 1];
};

int
queue_main_hostport(const char *s, char *host, size_t max, uint16_t *port_r)
{
	const char *colon, *h = s;
	size_t hlen;
	uint32_t port;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		h = s + 1;
		hlen = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= max ||
	    parse_u32(sv_from_cstr(colon + 1), 65535, &port) < 0 || port == 0)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port_r = (uint16_t)port;
	return 0;
}

/* ---- connection slots per domain ---- */

static struct queue_domain_slot **
queue_main_slot_find(struct queue *q, const char *domain)
{
	struct queue_domain_slot **sp = &q->slots;

	while (*sp != NULL && strcmp((*sp)->domain, domain) != 0)
		sp = &(*sp)->next;
	return sp;
}

static size_t
queue_main_slot_active(struct queue *q, const char *domain)
{
	struct queue_domain_slot *s = *queue_main_slot_find(q, domain);

	return s != NULL ? s->active : 0;
}

static void
queue_main_slot_add(struct queue *q, const char *domain, int delta)
{
	struct queue_domain_slot **sp = queue_main_slot_find(q, domain), *s;

	s = *sp;
	if (s == NULL) {
		if (delta < 0)
			panic("queue: slot for %s released twice", domain);
		s = xcalloc(1, sizeof(*s));
		snprintf(s->domain, sizeof(s->domain), "%s", domain);
		*sp = s;
	}
	if (delta > 0) {
		s->active++;
	} else if (--s->active == 0) {
		*sp = s->next;
		free(s);
	}
}

/* ---- dispatch ---- */

/* Start waiting jobs while the limits allow. Jobs may finish inside
   queue_route_start; they only schedule another dispatch (kick). */
static void
queue_main_dispatch(struct queue *q)
{
	struct queue_job **jp = &q->wait_head;

	while (*jp != NULL && q->conns < q->cfg->queue_max_connections) {
		struct queue_job *job = *jp;
		if (queue_main_slot_active(q, job->domain) >=
		    q->cfg->queue_max_per_domain) {
			jp = &job->next;
			continue;
		}
		*jp = job->next;
		if (*jp == NULL)
			q->wait_tail = jp;
		job->next = NULL;
		q->conns++;
		queue_main_slot_add(q, job->domain, 1);
		queue_route_start(job);
	}
}

static void
queue_main_kicked(struct ev_loop *loop, void *ctx)
{
	struct queue *q = ctx;

	(void)loop;
	q->kick_pending = false;
	queue_main_dispatch(q);
}

static void
queue_main_kick(struct queue *q)
{
	if (q->kick_pending)
		return;
	q->kick_pending = true;
	ev_defer(q->loop, queue_main_kicked, q);
}

/* ---- messages ---- */

static void
queue_main_job_free(struct queue_job *job)
{
	queue_mx_free(job->mx, job->mx_count);
	free(job->rcpts);
	free(job->results);
	free(job);
}

static void
queue_main_msg_free(struct queue *q, struct queue_msg *msg)
{
	struct queue_msg **mp = &q->msgs;

	while (*mp != NULL && *mp != msg)
		mp = &(*mp)->next;
	if (*mp == msg) {
		*mp = msg->next;
		q->msg_count--;
	}
	for (size_t i = 0; i < msg->job_count; i++) {
		if (msg->jobs[i] != NULL)
			queue_main_job_free(msg->jobs[i]);
	}
	free(msg->jobs);
	if (msg->mapped)
		store_blob_unmap(&msg->map);
	queue_dkim_key_free(&msg->dkim);
	store_queue_entry_clear(&msg->e);
	free(msg->rs);
	free(msg);
}

static bool
queue_main_any(const struct queue_msg *msg, enum queue_rcpt_outcome oc)
{
	for (size_t i = 0; i < msg->e.rcpt_count; i++) {
		if (msg->e.rcpts[i].status == 0 && msg->rs[i].outcome == oc)
			return true;
	}
	return false;
}

/* Too old: temporary failures become final ones (RFC 5321 4.5.4.1). */
static void
queue_main_expire(struct queue_msg *msg)
{
	for (size_t i = 0; i < msg->e.rcpt_count; i++) {
		struct queue_rcpt_state *rs = &msg->rs[i];
		struct buf diag;
		if (msg->e.rcpts[i].status != 0 ||
		    rs->outcome != QUEUE_RCPT_TEMP)
			continue;
		buf_init(&diag, 2 * QUEUE_DIAG_MAX_BYTES);
		(void)buf_printf(&diag, "gave up after %u attempts; last "
				 "error: %s", msg->e.attempts, rs->diag);
		if (diag.len >= sizeof(rs->diag))
			diag.len = sizeof(rs->diag) - 1;
		memcpy(rs->diag, diag.data, diag.len);
		rs->diag[diag.len] = '\0';
		buf_free(&diag);
		rs->outcome = QUEUE_RCPT_PERM;
	}
}

/* Write outcomes into the entry: 2 delivered, 5 failed (final). */
static void
queue_main_record(struct queue_msg *msg, bool bounced)
{
	for (size_t i = 0; i < msg->e.rcpt_count; i++) {
		struct store_queue_rcpt *r = &msg->e.rcpts[i];
		const struct queue_rcpt_state *rs = &msg->rs[i];
		if (r->status != 0 || rs->outcome == QUEUE_RCPT_PENDING)
			continue;
		if (rs->outcome == QUEUE_RCPT_OK)
			r->status = 2;
		else if (rs->outcome == QUEUE_RCPT_PERM && bounced)
			r->status = 5;
		free(r->last_reply);
		r->last_reply = xstrdup(rs->diag);
	}
}

/* RFC 3464 Action: delayed: one warning per message once it has waited
   queue_delay_warning (0: never) and is retried again. Recorded in the
   entry with the outcomes; a DSN that cannot be stored is tried again
   after the next attempt. */
static void
queue_main_delay_warn(struct queue *q, struct queue_msg *msg, int64_t now)
{
	struct store_queue_entry *e = &msg->e;
	uint64_t after_ms = q->cfg->queue_delay_warning_ms;
	int r;

	if (after_ms == 0 || e->delay_warned ||
	    now - e->created < (int64_t)(after_ms / 1000))
		return;
	r = queue_bounce_send(q, msg, QUEUE_DSN_DELAYED);
	if (r != STORE_OK) {
		log_error("queue", NULL, "delay-warning-failed queue=%lld "
			  "error=%d %s", (long long)e->id, r,
			  store_last_error(q->store));
		return;
	}
	e->delay_warned = true;
}

static void
queue_main_msg_finish(struct queue *q, struct queue_msg *msg)
{
	struct store_queue_entry *e = &msg->e;
	int64_t now = ev_now(q->loop), next = now;
	bool retry = false, bounced = true;
	int r;

	e->attempts++;
	if (queue_main_any(msg, QUEUE_RCPT_TEMP)) {
		retry = queue_retry_schedule(e->created, now, e->attempts,
					     q->cfg->queue_retry_min_ms,
					     q->cfg->queue_retry_max_ms,
					     q->cfg->queue_max_age_ms, &next);
		if (!retry)
			queue_main_expire(msg);
		else
			queue_main_delay_warn(q, msg, now);
	}
	if (queue_main_any(msg, QUEUE_RCPT_OK) &&
	    queue_bounce_send(q, msg, QUEUE_DSN_RELAYED) != STORE_OK)
		/* Delivered is delivered: a lost success report is only
		   logged, never a reason to send the message again. */
		log_error("queue", NULL, "relayed-dsn-failed queue=%lld %s",
			  (long long)e->id, store_last_error(q->store));
	if (queue_main_any(msg, QUEUE_RCPT_PERM)) {
		r = queue_bounce_send(q, msg, QUEUE_DSN_FAILED);
		if (r != STORE_OK) {
			/* Keep them queued: the DSN is tried again. */
			log_error("queue", NULL, "bounce-failed queue=%lld "
				  "error=%d %s", (long long)e->id, r,
				  store_last_error(q->store));
			bounced = false;
			if (!retry)
				next = now + (int64_t)(q->cfg->queue_retry_min_ms /
							       1000 + 1);
		}
	}
	queue_main_record(msg, bounced);
	e->next_attempt = next;
	r = store_queue_update(q->store, e);
	if (r != STORE_OK)
		log_error("queue", NULL, "update-failed queue=%lld error=%d %s",
			  (long long)e->id, r, store_last_error(q->store));
	else
		log_info("queue", NULL, "attempt-done queue=%lld attempts=%u "
			 "next=%+lld", (long long)e->id, e->attempts,
			 (long long)(next - now));
	queue_main_msg_free(q, msg);
}

void
queue_main_job_done(struct queue_job *job)
{
	struct queue *q = job->q;
	struct queue_msg *msg = job->msg;

	q->conns--;
	queue_main_slot_add(q, job->domain, -1);
	for (size_t i = 0; i < msg->job_count; i++) {
		if (msg->jobs[i] == job)
			msg->jobs[i] = NULL;
	}
	queue_main_job_free(job);
	if (--msg->jobs_left == 0)
		queue_main_msg_finish(q, msg);
	queue_main_kick(q);
}

/* The job for domain in msg, created on first use. */
static struct queue_job *
queue_main_job_for(struct queue *q, struct queue_msg *msg, const char *domain)
{
	struct queue_job *job;

	for (size_t i = 0; i < msg->job_count; i++) {
		if (strcmp(msg->jobs[i]->domain, domain) == 0)
			return msg->jobs[i];
	}
	job = xcalloc(1, sizeof(*job));
	job->q = q;
	job->msg = msg;
	snprintf(job->domain, sizeof(job->domain), "%s", domain);
	snprintf(job->log_id, sizeof(job->log_id), "q%lld",
		 (long long)msg->e.id);
	job->params.log_id = job->log_id;
	job->rcpts = xcalloc(msg->e.rcpt_count, sizeof(*job->rcpts));
	msg->jobs[msg->job_count++] = job;
	return job;
}

/* Split the pending recipients into jobs per domain. */
static void
queue_main_split(struct queue *q, struct queue_msg *msg)
{
	char domain[QUEUE_DOMAIN_MAX_BYTES + 1];

	msg->jobs = xcalloc(msg->e.rcpt_count + 1, sizeof(*msg->jobs));
	for (size_t i = 0; i < msg->e.rcpt_count; i++) {
		struct queue_job *job;
		if (msg->e.rcpts[i].status != 0)
			continue;
		if (queue_route_domain(msg->e.rcpts[i].address, domain,
				       sizeof(domain)) < 0) {
			struct queue_rcpt_state *rs = &msg->rs[i];
			rs->outcome = QUEUE_RCPT_PERM;
			snprintf(rs->status, sizeof(rs->status), "5.1.3");
			snprintf(rs->diag, sizeof(rs->diag),
				 "bad destination address");
			continue;
		}
		job = queue_main_job_for(q, msg, domain);
		job->rcpts[job->rcpt_count++] = i;
	}
	msg->jobs_left = msg->job_count;
	for (size_t i = 0; i < msg->job_count; i++) {
		*q->wait_tail = msg->jobs[i];
		q->wait_tail = &msg->jobs[i]->next;
	}
}

/* Load the signing key for msg, if its domain has one (RFC 6376).
   Trouble with the key is logged and the mail goes out unsigned. */
static void
queue_main_dkim(struct queue *q, struct queue_msg *msg)
{
	char domain[QUEUE_DOMAIN_MAX_BYTES + 1];
	struct store_dkim_key k;
	const char *error = NULL;
	int r;

	if (queue_dkim_domain(msg->map.data, msg->map.len, msg->e.sender,
			      q->hostname, domain, sizeof(domain)) < 0)
		return;
	r = store_dkim_get(q->store, domain, &k);
	if (r < 0)
		log_warn("queue", NULL, "dkim-key-lookup-failed queue=%lld "
			 "domain=%s error=%d %s", (long long)msg->e.id, domain,
			 r, store_last_error(q->store));
	if (r <= 0)
		return;
	msg->dkim = queue_dkim_key_load(&k, &error);
	if (msg->dkim == NULL)
		log_warn("queue", NULL, "dkim-key-bad queue=%lld domain=%s "
			 "selector=%s error=%s", (long long)msg->e.id, domain,
			 k.selector, error);
	store_dkim_key_clear(&k);
}

static void
queue_main_msg_start(struct queue *q, struct store_queue_entry *entry)
{
	struct queue_msg *msg = xcalloc(1, sizeof(*msg));
	int r;

	msg->e = *entry;
	memset(entry, 0, sizeof(*entry));
	msg->rs = xcalloc(msg->e.rcpt_count + 1, sizeof(*msg->rs));
	msg->next = q->msgs;
	q->msgs = msg;
	q->msg_count++;
	r = store_blob_map(q->store, msg->e.blob, &msg->map);
	if (r != STORE_OK) {
		/* Every recipient is retried; at the maximum age it bounces
		   (without content, since there is none to map). */
		log_error("queue", NULL, "blob-unreadable queue=%lld blob=%s "
			  "error=%d", (long long)msg->e.id, msg->e.blob, r);
		for (size_t i = 0; i < msg->e.rcpt_count; i++) {
			msg->rs[i].outcome = QUEUE_RCPT_TEMP;
			snprintf(msg->rs[i].status, QUEUE_STATUS_MAX, "4.3.0");
			snprintf(msg->rs[i].diag, QUEUE_DIAG_MAX_BYTES,
				 "message content unreadable");
		}
		queue_main_msg_finish(q, msg);
		return;
	}
	msg->mapped = true;
	queue_main_dkim(q, msg);
	queue_main_split(q, msg);
	if (msg->jobs_left == 0)
		queue_main_msg_finish(q, msg);
}

static bool
queue_main_inflight(const struct queue *q, int64_t id)
{
	/* XXX: linear; fine for QUEUE_INFLIGHT_MAX of a few thousand. */
	for (const struct queue_msg *m = q->msgs; m != NULL; m = m->next) {
		if (m->e.id == id)
			return true;
	}
	return false;
}

static void
queue_main_take(struct queue *q)
{
	struct store_queue_entry *es = NULL;
	size_t n = 0;
	int r;

	if (q->msg_count >= QUEUE_INFLIGHT_MAX)
		return;
	/* In-flight entries are still due: ask for enough to see new ones. */
	r = store_queue_due(q->store, ev_now(q->loop),
			    q->msg_count + QUEUE_BATCH_MAX, &es, &n);
	if (r < 0) {
		log_warn("queue", NULL, "poll-failed error=%d %s", r,
			 store_last_error(q->store));
		return;
	}
	for (size_t i = 0; i < n && q->msg_count < QUEUE_INFLIGHT_MAX; i++) {
		if (queue_main_inflight(q, es[i].id))
			continue;
		log_info("queue", NULL, "attempt queue=%lld from=<%s> rcpts=%zu "
			 "attempts=%u", (long long)es[i].id, es[i].sender,
			 es[i].rcpt_count, es[i].attempts);
		queue_main_msg_start(q, &es[i]);
	}
	store_queue_entries_free(es, n);
	queue_main_dispatch(q);
}

static void
queue_main_poll(struct ev_loop *loop, void *ctx)
{
	struct queue *q = ctx;

	q->poll_timer = NULL;
	queue_main_take(q);
	q->poll_timer = ev_timer_add(loop, QUEUE_POLL_MS, queue_main_poll, q);
}

static void
queue_main_deinit(struct queue *q)
{
	ev_timer_del(q->loop, &q->poll_timer);
	ev_defer_cancel(q->loop, queue_main_kicked, q);
	/* DNS first: its pending callbacks see QUEUE_DNS_CANCELLED. */
	queue_dns_free(&q->dns);
	queue_client_deinit();
	while (q->msgs != NULL)
		queue_main_msg_free(q, q->msgs);
	while (q->slots != NULL) {
		struct queue_domain_slot *s = q->slots;
		q->slots = s->next;
		free(s);
	}
}

int
queue_main(struct tern_env *env)
{
	struct queue q;
	const struct cfg *cfg = env->cfg;
	const char *error = NULL;

	memset(&q, 0, sizeof(q));
	q.env = env;
	q.loop = env->loop;
	q.store = env->store;
	q.cfg = cfg;
	q.hostname = env->hostname != NULL ? env->hostname : cfg->hostname;
	q.wait_tail = &q.wait_head;
	if (cfg->queue_smarthost != NULL && cfg->queue_smarthost[0] != '\0' &&
	    queue_main_hostport(cfg->queue_smarthost, q.smart_host,
				sizeof(q.smart_host), &q.smart_port) < 0) {
		log_error("queue", NULL, "bad-smarthost value=%s (want "
			  "host:port)", cfg->queue_smarthost);
		return -1;
	}
	q.dns = queue_dns_new(q.loop, cfg->dns_resolver, &error);
	if (q.dns == NULL) {
		log_error("queue", NULL, "dns-init-failed error=%s", error);
		return -1;
	}
	log_info("queue", NULL, "started smarthost=%s smarthost_tls_verify=%s "
		 "ca=%s resolver=%s port=%u",
		 q.smart_host[0] != '\0' ? cfg->queue_smarthost : "-",
		 cfg->queue_smarthost_tls_verify ? "yes" : "no",
		 cfg->queue_tls_ca_file != NULL ? cfg->queue_tls_ca_file :
						  "system",
		 cfg->dns_resolver != NULL ? cfg->dns_resolver : "system",
		 cfg->remote_smtp_port);
	q.poll_timer = ev_timer_add(q.loop, 0, queue_main_poll, &q);
	ev_run(q.loop);
	queue_main_deinit(&q);
	log_info("queue", NULL, "stopped");
	return 0;
}
