/* Asynchronous DNS for routing, with c-ares on the queue's event loop:
   c-ares tells us which sockets to watch (ARES_OPT_SOCK_STATE_CB) and
   when to wake up (ares_timeout); we feed it readiness with
   ares_process_fd.
   RFC 5321 5.1: MX records ordered by preference, hosts of equal
   preference in random order; no MX records -> the domain's own A/AAAA
   (implicit MX); RFC 7505: a single MX "." is a null MX (no mail).
   Names from DNS are untrusted: host names are length-checked,
   lowercased and restricted to LDH characters plus '_' before use. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <sodium.h>

#include "lib/ev.h"
#include "lib/xalloc.h"
#include "queue/queue_int.h"

#define QUEUE_DNS_TIMEOUT_MS 3000
#define QUEUE_DNS_TRIES 3

struct queue_dns {
	struct ev_loop *loop;
	ares_channel channel;
	struct ev_timer *timer;
	bool destroying;
};

struct queue_dns_req {
	struct queue_dns *d;
	queue_dns_mx_fn *mx_fn;
	queue_dns_addr_fn *addr_fn;
	void *ctx;
	uint16_t port;
};

const char *
queue_dns_status_name(enum queue_dns_status st)
{
	switch (st) {
	case QUEUE_DNS_OK:
		return "ok";
	case QUEUE_DNS_NXDOMAIN:
		return "no such domain";
	case QUEUE_DNS_NODATA:
		return "no records";
	case QUEUE_DNS_TEMP:
		return "temporary DNS failure";
	case QUEUE_DNS_CANCELLED:
		return "cancelled";
	}
	return "?";
}

/* ---- MX ordering (pure) ---- */

static int
queue_dns_mx_cmp(const void *a, const void *b)
{
	const struct queue_mx *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

void
queue_dns_mx_sort(struct queue_mx *mx, size_t count, queue_rand_fn *rand_fn,
		  void *rand_ctx)
{
	size_t start = 0, end, i;

	if (count == 0)
		return;
	/* qsort is not stable, but the shuffle below makes order among
	   equal preferences random anyway. */
	qsort(mx, count, sizeof(*mx), queue_dns_mx_cmp);
	while (start < count) {
		for (end = start + 1; end < count && mx[end].pref ==
							   mx[start].pref;
		     end++)
			;
		/* Fisher-Yates within [start, end). */
		for (i = end - 1; i > start; i--) {
			size_t j = start + rand_fn(rand_ctx,
						   (uint32_t)(i - start + 1));
			struct queue_mx t = mx[i];
			mx[i] = mx[j];
			mx[j] = t;
		}
		start = end;
	}
}

bool
queue_dns_mx_is_null(const struct queue_mx *mx, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (mx[i].host[0] == '\0')
			return true;
	}
	return false;
}

void
queue_mx_free(struct queue_mx *mx, size_t count)
{
	if (mx == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(mx[i].host);
	free(mx);
}

static uint32_t
queue_dns_rand(void *ctx, uint32_t n)
{
	(void)ctx;
	return randombytes_uniform(n);
}

/* ---- event loop glue ---- */

static void queue_dns_arm(struct queue_dns *d);

static void
queue_dns_fd(struct ev_loop *loop, int fd, unsigned events, void *ctx)
{
	struct queue_dns *d = ctx;

	(void)loop;
	ares_process_fd(d->channel, (events & EV_READ) ? fd : ARES_SOCKET_BAD,
			(events & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	queue_dns_arm(d);
}

static void
queue_dns_sock_state(void *data, ares_socket_t fd, int readable,
		     int writable)
{
	struct queue_dns *d = data;
	unsigned mask = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	if (d->destroying && mask != 0)
		return;
	if (mask == 0) {
		ev_fd_del(d->loop, fd);
		return;
	}
	if (ev_fd_mod(d->loop, fd, mask) < 0)
		ev_fd_add(d->loop, fd, mask, queue_dns_fd, d);
}

static void
queue_dns_timer(struct ev_loop *loop, void *ctx)
{
	struct queue_dns *d = ctx;

	(void)loop;
	d->timer = NULL;
	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	queue_dns_arm(d);
}

/* Wake up when c-ares wants to retransmit or time out a query. */
static void
queue_dns_arm(struct queue_dns *d)
{
	struct timeval tv, *tp;
	uint64_t ms;

	ev_timer_del(d->loop, &d->timer);
	if (d->destroying)
		return;
	tp = ares_timeout(d->channel, NULL, &tv);
	if (tp == NULL)
		return;
	ms = (uint64_t)tp->tv_sec * 1000 + (uint64_t)tp->tv_usec / 1000 + 1;
	d->timer = ev_timer_add(d->loop, ms, queue_dns_timer, d);
}

struct queue_dns *
queue_dns_new(struct ev_loop *loop, const char *server, const char **error_r)
{
	struct queue_dns *d = xcalloc(1, sizeof(*d));
	struct ares_options opts;
	int r;

	r = ares_library_init(ARES_LIB_INIT_ALL);
	if (r != ARES_SUCCESS) {
		*error_r = ares_strerror(r);
		free(d);
		return NULL;
	}
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = queue_dns_sock_state;
	opts.sock_state_cb_data = d;
	opts.timeout = QUEUE_DNS_TIMEOUT_MS;
	opts.tries = QUEUE_DNS_TRIES;
	d->loop = loop;
	r = ares_init_options(&d->channel, &opts,
			      ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
				      ARES_OPT_TRIES);
	if (r == ARES_SUCCESS && server != NULL && server[0] != '\0')
		r = ares_set_servers_ports_csv(d->channel, server);
	if (r != ARES_SUCCESS) {
		*error_r = ares_strerror(r);
		if (d->channel != NULL)
			ares_destroy(d->channel);
		ares_library_cleanup();
		free(d);
		return NULL;
	}
	return d;
}

void
queue_dns_free(struct queue_dns **dp)
{
	struct queue_dns *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	d->destroying = true;
	ev_timer_del(d->loop, &d->timer);
	/* Pending callbacks run now with ARES_EDESTRUCTION. */
	ares_destroy(d->channel);
	ares_library_cleanup();
	free(d);
}

static enum queue_dns_status
queue_dns_map_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return QUEUE_DNS_OK;
	case ARES_ENOTFOUND:
		return QUEUE_DNS_NXDOMAIN;
	case ARES_ENODATA:
		return QUEUE_DNS_NODATA;
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		return QUEUE_DNS_CANCELLED;
	default:
		return QUEUE_DNS_TEMP;
	}
}

/* A host name from DNS: lowercase copy, trailing dot removed; NULL when
   it is not a plausible host name. "" stays "" (the null MX). */
static char *
queue_dns_host(const char *name)
{
	size_t n = strlen(name);
	char *h;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n > QUEUE_DOMAIN_MAX_BYTES)
		return NULL;
	h = xstrndup(name, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (!isalnum(c) && c != '-' && c != '.' && c != '_') {
			free(h);
			return NULL;
		}
		h[i] = (char)tolower(c);
	}
	return h;
}

/* ---- MX ---- */

static void
queue_dns_mx_parse(struct queue_dns_req *req, unsigned char *abuf, int alen)
{
	struct ares_mx_reply *list = NULL, *m;
	struct queue_mx *mx;
	size_t n = 0, cap = 0;

	if (ares_parse_mx_reply(abuf, alen, &list) != ARES_SUCCESS) {
		req->mx_fn(req->ctx, QUEUE_DNS_TEMP, NULL, 0);
		return;
	}
	for (m = list; m != NULL; m = m->next)
		cap++;
	mx = xcalloc(cap + 1, sizeof(*mx));
	for (m = list; m != NULL; m = m->next) {
		char *h = queue_dns_host(m->host);
		if (h == NULL)
			continue;
		mx[n].pref = m->priority;
		mx[n].host = h;
		n++;
	}
	ares_free_data(list);
	queue_dns_mx_sort(mx, n, queue_dns_rand, NULL);
	if (n > QUEUE_MX_MAX && !queue_dns_mx_is_null(mx, n)) {
		for (size_t i = QUEUE_MX_MAX; i < n; i++)
			free(mx[i].host);
		n = QUEUE_MX_MAX;
	}
	req->mx_fn(req->ctx, n > 0 ? QUEUE_DNS_OK : QUEUE_DNS_NODATA, mx, n);
}

static void
queue_dns_mx_cb(void *arg, int status, int timeouts, unsigned char *abuf,
		int alen)
{
	struct queue_dns_req *req = arg;

	(void)timeouts;
	if (status == ARES_SUCCESS)
		queue_dns_mx_parse(req, abuf, alen);
	else
		req->mx_fn(req->ctx, queue_dns_map_status(status), NULL, 0);
	free(req);
}

void
queue_dns_mx(struct queue_dns *d, const char *domain, queue_dns_mx_fn *fn,
	     void *ctx)
{
	struct queue_dns_req *req = xcalloc(1, sizeof(*req));

	req->d = d;
	req->mx_fn = fn;
	req->ctx = ctx;
	ares_query(d->channel, domain, ns_c_in, ns_t_mx, queue_dns_mx_cb, req);
	/* d is still valid: the callback never frees the resolver. */
	queue_dns_arm(d);
}

/* ---- A / AAAA ---- */

static size_t
queue_dns_collect(const struct ares_addrinfo *res, uint16_t port,
		  struct sockaddr_storage *out, size_t max)
{
	size_t n = 0;

	/* IPv6 first, then IPv4 (RFC 6724 default policy, simplified). */
	for (int pass = 0; pass < 2; pass++) {
		int family = pass == 0 ? AF_INET6 : AF_INET;
		for (const struct ares_addrinfo_node *a = res->nodes;
		     a != NULL && n < max; a = a->ai_next) {
			if (a->ai_family != family ||
			    a->ai_addrlen > (ares_socklen_t)sizeof(out[0]))
				continue;
			memset(&out[n], 0, sizeof(out[n]));
			memcpy(&out[n], a->ai_addr, a->ai_addrlen);
			if (family == AF_INET6)
				((struct sockaddr_in6 *)&out[n])->sin6_port =
					htons(port);
			else
				((struct sockaddr_in *)&out[n])->sin_port =
					htons(port);
			n++;
		}
	}
	return n;
}

static void
queue_dns_addr_cb(void *arg, int status, int timeouts,
		  struct ares_addrinfo *res)
{
	struct queue_dns_req *req = arg;
	struct sockaddr_storage addrs[QUEUE_ADDRS_MAX];
	size_t n = 0;

	(void)timeouts;
	if (status == ARES_SUCCESS && res != NULL)
		n = queue_dns_collect(res, req->port, addrs, QUEUE_ADDRS_MAX);
	if (res != NULL)
		ares_freeaddrinfo(res);
	if (status == ARES_SUCCESS && n == 0)
		status = ARES_ENODATA;
	req->addr_fn(req->ctx, queue_dns_map_status(status), addrs, n);
	free(req);
}

void
queue_dns_addr(struct queue_dns *d, const char *host, uint16_t port,
	       queue_dns_addr_fn *fn, void *ctx)
{
	struct queue_dns_req *req = xcalloc(1, sizeof(*req));
	struct ares_addrinfo_hints hints;

	req->d = d;
	req->addr_fn = fn;
	req->ctx = ctx;
	req->port = port;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = ARES_AI_NOSORT;
	ares_getaddrinfo(d->channel, host, NULL, &hints, queue_dns_addr_cb,
			 req);
	queue_dns_arm(d);
}
