/* Routing one job (one message's recipients in one domain): RFC 5321 5.1
   (MX records by preference, random among equal ones; no MX: the
   domain's own address records; try each host's addresses in turn and
   go on to the next MX when a host cannot be reached or refuses the
   session), RFC 7505 (null MX: bounce at once with 5.1.10), RFC 5321
   4.1.3 address literals ("[192.0.2.1]", "[IPv6:...]") and the
   configured smarthost instead of MX routing. A session may run on an
   idle connection to the same host (queue_client); when that one turns
   out to be gone, the same address is tried on a new connection.
   Outcomes per recipient (RFC 5321 4.2.1, 4.5.4.1): 2xx delivered, 5xx
   failed, 4xx and every connection or DNS trouble retried later. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cfg.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/queue_int.h"

int
queue_route_domain(const char *address, char *out, size_t max)
{
	const char *at = strrchr(address, '@');
	size_t n, i;

	if (at == NULL || at[1] == '\0')
		return -1;
	n = strlen(at + 1);
	if (n > 0 && at[n] == '.' && at[1] != '[')
		n--;
	if (n == 0 || n >= max || n > QUEUE_DOMAIN_MAX_BYTES)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)at[1 + i]);
	out[n] = '\0';
	return 0;
}

static const char *
queue_route_id(const struct queue_job *job)
{
	return job->params.log_id;
}

/* Give every recipient of the job the same outcome. */
static void
queue_route_fail_all(struct queue_job *job, enum queue_rcpt_outcome oc,
		     const char *status, const char *diag)
{
	for (size_t i = 0; i < job->rcpt_count; i++) {
		struct queue_rcpt_state *rs = &job->msg->rs[job->rcpts[i]];
		rs->outcome = oc;
		snprintf(rs->status, sizeof(rs->status), "%s", status);
		snprintf(rs->diag, sizeof(rs->diag), "%s", diag);
		snprintf(rs->mta, sizeof(rs->mta), "%s", job->host);
	}
	log_info("queue", queue_route_id(job), "%s domain=%s rcpts=%zu "
		 "status=%s reason=\"%s\"",
		 oc == QUEUE_RCPT_PERM ? "failed" : "deferred", job->domain,
		 job->rcpt_count, status, diag);
	queue_main_job_done(job);
}

static enum queue_rcpt_outcome
queue_route_class(unsigned code)
{
	if (code / 100 == 2)
		return QUEUE_RCPT_OK;
	if (code / 100 == 5)
		return QUEUE_RCPT_PERM;
	return QUEUE_RCPT_TEMP;
}

static void queue_route_next_host(struct queue_job *job);
static void queue_route_next_addr(struct queue_job *job);

/* Every host failed: the last failure decides (a 5xx from the last
   server is final, anything else is retried). */
static void
queue_route_exhausted(struct queue_job *job)
{
	if (job->last_error[0] == '\0')
		snprintf(job->last_error, sizeof(job->last_error),
			 "no usable mail exchanger for %s", job->domain);
	queue_route_fail_all(job, job->last_code / 100 == 5 ?
					  QUEUE_RCPT_PERM :
					  QUEUE_RCPT_TEMP,
			     job->last_status[0] != '\0' ? job->last_status :
							   "4.4.1",
			     job->last_error);
}

static void
queue_route_session_done(void *ctx, const struct queue_client_result *res)
{
	struct queue_job *job = ctx;

	switch (res->status) {
	case QUEUE_CLIENT_HOST_FAIL:
		job->last_code = res->code;
		snprintf(job->last_status, sizeof(job->last_status), "%s",
			 res->status_code);
		snprintf(job->last_error, sizeof(job->last_error), "%s",
			 res->reply);
		log_info("queue", queue_route_id(job), "host-failed host=%s "
			 "reason=\"%s\"", job->host, res->reply);
		queue_route_next_addr(job);
		return;
	case QUEUE_CLIENT_TLS_FAIL:
		if (job->params.tls_required) {
			/* never plaintext to a smarthost that must verify */
			job->last_code = 0;
			snprintf(job->last_status, sizeof(job->last_status),
				 "4.7.5");
			snprintf(job->last_error, sizeof(job->last_error),
				 "%s", res->reply);
			log_info("queue", queue_route_id(job), "tls-failed "
				 "host=%s reason=\"%s\"", job->host,
				 res->reply);
			queue_route_next_addr(job);
			return;
		}
		/* Opportunistic TLS: the same address again in plaintext. */
		log_info("queue", queue_route_id(job), "tls-failed host=%s "
			 "reason=\"%s\"", job->host, res->reply);
		job->no_tls = true;
		if (job->addr_idx > 0)
			job->addr_idx--;
		queue_route_next_addr(job);
		return;
	case QUEUE_CLIENT_STALE:
		/* The idle connection had gone: the same address, a new
		   connection, and no try counted. */
		log_info("queue", queue_route_id(job), "reuse-failed host=%s "
			 "reason=\"%s\"", job->host, res->reply);
		job->params.no_reuse = true;
		if (job->addr_idx > 0)
			job->addr_idx--;
		if (job->tries > 0)
			job->tries--;
		queue_route_next_addr(job);
		return;
	case QUEUE_CLIENT_FAIL_ALL:
		queue_route_fail_all(job, queue_route_class(res->code),
				     res->status_code, res->reply);
		return;
	case QUEUE_CLIENT_DONE:
		break;
	}
	for (size_t i = 0; i < job->rcpt_count; i++) {
		struct queue_rcpt_state *rs = &job->msg->rs[job->rcpts[i]];
		const struct queue_rcpt_result *r = &job->results[i];
		rs->outcome = queue_route_class(r->code);
		snprintf(rs->status, sizeof(rs->status), "%s",
			 r->status[0] != '\0' ? r->status : "4.4.2");
		snprintf(rs->diag, sizeof(rs->diag), "%s", r->reply);
		snprintf(rs->mta, sizeof(rs->mta), "%s", job->host);
		rs->remote_dsn = res->remote_dsn;
		log_info("queue", queue_route_id(job), "%s to=<%s> host=%s "
			 "tls=%s%s reused=%s reply=\"%s\"",
			 rs->outcome == QUEUE_RCPT_OK	 ? "delivered" :
			 rs->outcome == QUEUE_RCPT_PERM ? "rejected" :
							  "deferred",
			 job->msg->e.rcpts[job->rcpts[i]].address, job->host,
			 !res->tls	    ? "no" :
			 res->tls_verified ? "verified" :
					     "unverified:",
			 res->tls && !res->tls_verified ? res->tls_reason : "",
			 res->reused ? "yes" : "no", r->reply);
	}
	queue_main_job_done(job);
}

static void
queue_route_next_addr(struct queue_job *job)
{
	struct queue *q = job->q;

	if (job->addr_idx >= job->addr_count) {
		queue_route_next_host(job);
		return;
	}
	if (job->tries >= QUEUE_CONNECT_TRIES_MAX) {
		queue_route_exhausted(job);
		return;
	}
	job->tries++;
	job->params.helo = q->hostname;
	job->params.peer_name = job->host;
	job->params.addr = &job->addrs[job->addr_idx++];
	job->params.try_tls = !job->no_tls;
	job->params.tls_required = q->smart_host[0] != '\0' &&
				   q->cfg->queue_smarthost_tls_verify;
	job->params.auth_user = q->smart_host[0] != '\0' ?
					q->cfg->queue_smarthost_user :
					NULL;
	job->params.auth_pass = q->cfg->queue_smarthost_password;
	job->params.entry = &job->msg->e;
	job->params.dkim = job->msg->dkim;
	job->params.msg = job->msg->map.data;
	job->params.msg_len = job->msg->map.len;
	job->params.rcpts = job->rcpts;
	job->params.rcpt_count = job->rcpt_count;
	job->params.results = job->results;
	queue_client_start(q->loop, &job->params, queue_route_session_done,
			   job);
}

static void
queue_route_addr_done(void *ctx, enum queue_dns_status st,
		      const struct sockaddr_storage *addrs, size_t count)
{
	struct queue_job *job = ctx;

	if (st == QUEUE_DNS_CANCELLED)
		return;
	if (count == 0) {
		job->last_code = 0;
		snprintf(job->last_status, sizeof(job->last_status), "4.4.3");
		snprintf(job->last_error, sizeof(job->last_error),
			 "address lookup for %s failed: %s", job->host,
			 queue_dns_status_name(st));
		queue_route_next_host(job);
		return;
	}
	memcpy(job->addrs, addrs, count * sizeof(addrs[0]));
	job->addr_count = count;
	job->addr_idx = 0;
	queue_route_next_addr(job);
}

static void
queue_route_next_host(struct queue_job *job)
{
	if (job->mx_idx >= job->mx_count ||
	    job->tries >= QUEUE_CONNECT_TRIES_MAX) {
		queue_route_exhausted(job);
		return;
	}
	snprintf(job->host, sizeof(job->host), "%s",
		 job->mx[job->mx_idx++].host);
	job->addr_count = job->addr_idx = 0;
	queue_dns_addr(job->q->dns, job->host, job->port,
		       queue_route_addr_done, job);
}

/* Route over the given hosts (takes ownership of mx). */
static void
queue_route_hosts(struct queue_job *job, struct queue_mx *mx, size_t count)
{
	queue_mx_free(job->mx, job->mx_count);
	job->mx = mx;
	job->mx_count = count;
	job->mx_idx = 0;
	queue_route_next_host(job);
}

static void
queue_route_implicit(struct queue_job *job, const char *host)
{
	struct queue_mx *mx = xcalloc(1, sizeof(*mx));

	mx->host = xstrdup(host);
	queue_route_hosts(job, mx, 1);
}

static void
queue_route_mx_done(void *ctx, enum queue_dns_status st, struct queue_mx *mx,
		    size_t count)
{
	struct queue_job *job = ctx;
	char diag[QUEUE_DIAG_MAX_BYTES];

	if (st == QUEUE_DNS_CANCELLED) {
		queue_mx_free(mx, count);
		return;
	}
	snprintf(job->host, sizeof(job->host), "%s", job->domain);
	if (st == QUEUE_DNS_OK && queue_dns_mx_is_null(mx, count)) {
		queue_mx_free(mx, count);
		snprintf(diag, sizeof(diag), "domain %s accepts no mail "
			 "(null MX, RFC 7505)", job->domain);
		job->host[0] = '\0';
		queue_route_fail_all(job, QUEUE_RCPT_PERM, "5.1.10", diag);
		return;
	}
	if (st == QUEUE_DNS_OK) {
		queue_route_hosts(job, mx, count);
		return;
	}
	queue_mx_free(mx, count);
	if (st == QUEUE_DNS_NODATA) {
		/* RFC 5321 5.1: the domain itself is the implicit MX. */
		queue_route_implicit(job, job->domain);
		return;
	}
	job->host[0] = '\0';
	snprintf(diag, sizeof(diag), "MX lookup for %s: %s", job->domain,
		 queue_dns_status_name(st));
	queue_route_fail_all(job, st == QUEUE_DNS_NXDOMAIN ? QUEUE_RCPT_PERM :
							    QUEUE_RCPT_TEMP,
			     st == QUEUE_DNS_NXDOMAIN ? "5.1.2" : "4.4.3",
			     diag);
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]": 1 routed, 0 not a literal. */
static int
queue_route_literal(struct queue_job *job)
{
	char text[QUEUE_DOMAIN_MAX_BYTES + 1];
	size_t n = strlen(job->domain);
	struct sockaddr_storage *ss = &job->addrs[0];
	const char *a = text;

	if (n < 3 || job->domain[0] != '[' || job->domain[n - 1] != ']')
		return 0;
	memcpy(text, job->domain + 1, n - 2);
	text[n - 2] = '\0';
	memset(ss, 0, sizeof(*ss));
	snprintf(job->host, sizeof(job->host), "%s", job->domain);
	if (strncmp(text, "ipv6:", 5) == 0) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		a = text + 5;
		if (inet_pton(AF_INET6, a, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(job->port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, a, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(job->port);
	}
	job->addr_count = 1;
	job->addr_idx = 0;
	queue_route_next_addr(job);
	return 1;
}

void
queue_route_start(struct queue_job *job)
{
	struct queue *q = job->q;
	int r;

	job->results = xcalloc(job->rcpt_count, sizeof(*job->results));
	if (q->smart_host[0] != '\0') {
		job->port = q->smart_port;
		queue_route_implicit(job, q->smart_host);
		return;
	}
	job->port = (uint16_t)q->cfg->remote_smtp_port;
	r = queue_route_literal(job);
	if (r < 0)
		queue_route_fail_all(job, QUEUE_RCPT_PERM, "5.1.2",
				     "bad address literal");
	if (r != 0)
		return;
	queue_dns_mx(q->dns, job->domain, queue_route_mx_done, job);
}
