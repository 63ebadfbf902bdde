/* tload: the load generator of the side-by-side benchmark (bench/run.sh).
   One thread per client session, blocking loopback sockets, optional TLS
   (STARTTLS) through OpenSSL. Every run is bounded by a message/operation
   count and by a time limit. Prints one JSON object on stdout:
   {"ops":N,"secs":S,"rate":R,"p50_ms":..,"p99_ms":..,"errors":E,...}.

   Modes (-o):
     smtp      MAIL/RCPT/DATA of unique messages (-n total, -s bytes, -c
               sessions, -m messages per connection, -t STARTTLS, -a AUTH)
     imap-login  connect, LOGIN, LOGOUT, repeated
     imap-fetch  one long session per client: FETCH n BODY.PEEK[] of random n
     imap-append one long session per client: APPEND of unique -s byte messages
     imap-mix    the realistic session (LOGIN, SELECT, FETCH headers of 50,
               FETCH a full message, SEARCH, STORE, APPEND, EXPUNGE, LOGOUT)
     imap-big    SELECT INBOX, UID FETCH 1:* (UID FLAGS) and SEARCH SUBJECT
               (matching nothing), -n times, one user
     imap-idle   open -c connections, LOGIN, SELECT, IDLE; print "ready N"
               on stderr, hold until stdin closes (or -T), then close
     populate    MULTIAPPEND -n messages of -s bytes into INBOX of -u users
     pop3      USER/PASS, STAT, RETR of up to -k messages, QUIT, repeated

   Loopback only: -h must be a 127.x address. Not part of ternd. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LAT_MAX 2000000
#define LINE_MAX_BYTES 65536
#define CLIENTS_MAX 20000

static const char *opt_host = "127.0.0.1";
static int opt_port;
static const char *opt_mode = "smtp";
static int opt_clients = 1;
static long opt_count = 100;
static long opt_size = 5000;
static int opt_per_conn = 10;
static int opt_users = 1;
static int opt_user_first = 1;
static const char *opt_domain = "example.test";
static const char *opt_pass = "benchpass";
static bool opt_tls, opt_auth;
static double opt_seconds = 60;
static int opt_retr = 20;

static SSL_CTX *ssl_ctx;
static atomic_long next_idx, ops_done, errors, bytes_in;
static double t_start, t_deadline;

static pthread_mutex_t lat_lock = PTHREAD_MUTEX_INITIALIZER;
static double *lats;
static size_t lat_n;

static atomic_long stat_login, stat_select, stat_fetchh, stat_fetchb,
	stat_search, stat_store, stat_append, stat_expunge, stat_logout,
	stat_sessions;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
lat_add(double *local, size_t *n, double v)
{
	if (*n < 4096) {
		local[(*n)++] = v;
		return;
	}
	pthread_mutex_lock(&lat_lock);
	for (size_t i = 0; i < *n && lat_n < LAT_MAX; i++)
		lats[lat_n++] = local[i];
	pthread_mutex_unlock(&lat_lock);
	*n = 0;
	local[(*n)++] = v;
}

static void
lat_flush(double *local, size_t n)
{
	pthread_mutex_lock(&lat_lock);
	for (size_t i = 0; i < n && lat_n < LAT_MAX; i++)
		lats[lat_n++] = local[i];
	pthread_mutex_unlock(&lat_lock);
}

/* ---- connection ---- */

struct cl {
	int fd;
	SSL *ssl;
	char rbuf[LINE_MAX_BYTES];
	size_t roff, rlen;
};

static int
cl_connect(struct cl *c)
{
	struct sockaddr_in sa;
	int one = 1;

	memset(c, 0, offsetof(struct cl, rbuf));
	c->roff = c->rlen = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)opt_port);
	if (inet_pton(AF_INET, opt_host, &sa.sin_addr) != 1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void
cl_close(struct cl *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int
cl_starttls(struct cl *c)
{
	c->ssl = SSL_new(ssl_ctx);
	if (c->ssl == NULL)
		return -1;
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) != 1)
		return -1;
	c->roff = c->rlen = 0;
	return 0;
}

static int
cl_write(struct cl *c, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w;

		if (c->ssl != NULL)
			w = SSL_write(c->ssl, s, (int)n);
		else
			w = write(c->fd, s, n);
		if (w <= 0) {
			if (w < 0 && c->ssl == NULL && errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
cl_printf(struct cl *c, const char *fmt, ...)
{
	char b[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(b))
		return -1;
	return cl_write(c, b, (size_t)n);
}

static int
cl_fill(struct cl *c)
{
	ssize_t r;

	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->rlen == sizeof(c->rbuf))
		return -1;
	if (c->ssl != NULL)
		r = SSL_read(c->ssl, c->rbuf + c->rlen,
			     (int)(sizeof(c->rbuf) - c->rlen));
	else
		r = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
	if (r <= 0)
		return -1;
	c->rlen += (size_t)r;
	atomic_fetch_add(&bytes_in, r);
	return 0;
}

/* One line without CRLF into out (NUL-terminated, truncated to max-1).
   Returns its full length or -1. */
static long
cl_line(struct cl *c, char *out, size_t max)
{
	for (;;) {
		char *nl = memchr(c->rbuf + c->roff, '\n', c->rlen - c->roff);

		if (nl != NULL) {
			size_t len = (size_t)(nl - (c->rbuf + c->roff));
			size_t cp;

			if (len > 0 && c->rbuf[c->roff + len - 1] == '\r')
				len--;
			cp = len < max - 1 ? len : max - 1;
			memcpy(out, c->rbuf + c->roff, cp);
			out[cp] = '\0';
			c->roff = (size_t)(nl - c->rbuf) + 1;
			return (long)len;
		}
		if (cl_fill(c) < 0)
			return -1;
	}
}

static int
cl_skip(struct cl *c, size_t n)
{
	while (n > 0) {
		size_t have = c->rlen - c->roff;

		if (have == 0) {
			if (cl_fill(c) < 0)
				return -1;
			continue;
		}
		if (have > n)
			have = n;
		c->roff += have;
		n -= have;
	}
	return 0;
}

/* ---- SMTP ---- */

/* Reads a (multi-line) reply; returns its code or -1. */
static int
smtp_reply(struct cl *c)
{
	char line[1024];

	for (;;) {
		long n = cl_line(c, line, sizeof(line));

		if (n < 4)
			return -1;
		if (line[0] < '1' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9')
			return -1;
		if (line[3] == ' ')
			return (line[0] - '0') * 100 + (line[1] - '0') * 10 +
			       (line[2] - '0');
	}
}

static char *
message_build(long idx, int tid, long size, const char *to, size_t *len_r)
{
	size_t cap = (size_t)size + 2048;
	char *m = malloc(cap);
	size_t n;
	long i = 0;

	n = (size_t)snprintf(m, cap,
			     "From: bench <bench@sender.test>\r\n"
			     "To: <%s>\r\n"
			     "Subject: bench message %ld\r\n"
			     "Message-ID: <%ld.%d.%d@bench.test>\r\n"
			     "Date: Tue, 01 Dec 2026 08:00:00 +0000\r\n"
			     "MIME-Version: 1.0\r\n"
			     "Content-Type: text/plain\r\n\r\n",
			     to, idx, idx, tid, (int)getpid());
	while ((long)n < size) {
		n += (size_t)snprintf(m + n, cap - n,
				      "%08ld line of the benchmark body %ld "
				      "abcdefghijklmnopqrstuvwxyz0123\r\n",
				      i, idx);
		i++;
	}
	*len_r = n;
	return m;
}

static void
user_name(char *out, size_t max, long i)
{
	snprintf(out, max, "u%ld@%s", (long)opt_user_first + i % opt_users,
		 opt_domain);
}

/* Opens a session; with -a, authenticates as user tid and puts that
   address in from (the envelope sender an authenticated user may use). */
static int
smtp_session_open(struct cl *c, int tid, char *from, size_t from_max)
{
	char user[128], tok[512];

	if (cl_connect(c) < 0 || smtp_reply(c) != 220)
		return -1;
	if (cl_printf(c, "EHLO bench%d.test\r\n", tid) < 0 ||
	    smtp_reply(c) != 250)
		return -1;
	if (opt_tls) {
		if (cl_printf(c, "STARTTLS\r\n") < 0 || smtp_reply(c) != 220 ||
		    cl_starttls(c) < 0)
			return -1;
		if (cl_printf(c, "EHLO bench%d.test\r\n", tid) < 0 ||
		    smtp_reply(c) != 250)
			return -1;
	}
	if (opt_auth) {
		unsigned char raw[300];
		int rl;

		user_name(user, sizeof(user), tid);
		rl = snprintf((char *)raw, sizeof(raw), "%c%s%c%s", 0, user, 0,
			      opt_pass);
		EVP_EncodeBlock((unsigned char *)tok, raw, rl);
		if (cl_printf(c, "AUTH PLAIN %s\r\n", tok) < 0 ||
		    smtp_reply(c) != 235)
			return -1;
		snprintf(from, from_max, "%s", user);
	}
	return 0;
}

static void *
smtp_thread(void *arg)
{
	int tid = (int)(intptr_t)arg;
	double *loc = malloc(4096 * sizeof(double));
	size_t ln = 0;
	struct cl *c = malloc(sizeof(*c));
	int in_conn = 0;
	bool open = false;
	char from[128] = "bench@sender.test";

	for (;;) {
		long idx = atomic_fetch_add(&next_idx, 1);
		char to[128];
		size_t mlen;
		char *m;
		double t0;

		if (idx >= opt_count || now() > t_deadline)
			break;
		if (!open) {
			if (smtp_session_open(c, tid, from, sizeof(from)) < 0) {
				atomic_fetch_add(&errors, 1);
				cl_close(c);
				usleep(10000);
				continue;
			}
			open = true;
			in_conn = 0;
		}
		user_name(to, sizeof(to), idx);
		m = message_build(idx, tid, opt_size, to, &mlen);
		t0 = now();
		if (cl_printf(c, "MAIL FROM:<%s>\r\n", from) < 0 ||
		    smtp_reply(c) != 250 ||
		    cl_printf(c, "RCPT TO:<%s>\r\n", to) < 0 ||
		    smtp_reply(c) != 250 || cl_printf(c, "DATA\r\n") < 0 ||
		    smtp_reply(c) != 354 || cl_write(c, m, mlen) < 0 ||
		    cl_printf(c, ".\r\n") < 0 || smtp_reply(c) != 250) {
			atomic_fetch_add(&errors, 1);
			cl_close(c);
			open = false;
			free(m);
			continue;
		}
		free(m);
		lat_add(loc, &ln, now() - t0);
		atomic_fetch_add(&ops_done, 1);
		if (++in_conn >= opt_per_conn) {
			cl_printf(c, "QUIT\r\n");
			smtp_reply(c);
			cl_close(c);
			open = false;
			atomic_fetch_add(&stat_sessions, 1);
		}
	}
	if (open) {
		cl_printf(c, "QUIT\r\n");
		smtp_reply(c);
		cl_close(c);
		atomic_fetch_add(&stat_sessions, 1);
	}
	lat_flush(loc, ln);
	free(loc);
	free(c);
	return NULL;
}

/* ---- IMAP ---- */

struct imap {
	struct cl c;
	unsigned tag;
	long exists;
	long last_uid; /* from APPENDUID, or 0 */
};

/* Sends "tN <cmd>" and reads until the tagged reply; handles literals in
   untagged data. Returns 0 on OK, 1 on NO/BAD, -1 on I/O error. */
static int
imap_wait(struct imap *im, unsigned tag)
{
	char line[2048], want[32];
	size_t wl = (size_t)snprintf(want, sizeof(want), "t%u ", tag);

	for (;;) {
		long n = cl_line(&im->c, line, sizeof(line));
		size_t ll;

		if (n < 0)
			return -1;
		ll = strlen(line);
		/* a literal announced at the end of the line */
		while (ll > 2 && line[ll - 1] == '}') {
			char *open = strrchr(line, '{');
			long lit;

			if (open == NULL)
				break;
			lit = strtol(open + 1, NULL, 10);
			if (cl_skip(&im->c, (size_t)lit) < 0)
				return -1;
			n = cl_line(&im->c, line, sizeof(line));
			if (n < 0)
				return -1;
			ll = strlen(line);
		}
		if (strncmp(line, "* ", 2) == 0) {
			char *e = strstr(line, " EXISTS");

			if (e != NULL)
				im->exists = strtol(line + 2, NULL, 10);
			continue;
		}
		if (strncmp(line, want, wl) == 0) {
			char *au = strstr(line, "[APPENDUID ");

			if (au != NULL) {
				char *sp = strchr(au + 11, ' ');

				if (sp != NULL)
					im->last_uid = strtol(sp + 1, NULL, 10);
			}
			return strncmp(line + wl, "OK", 2) == 0 ? 0 : 1;
		}
	}
}

static int
imap_cmd(struct imap *im, const char *fmt, ...)
{
	char b[4096];
	va_list ap;
	int n;
	unsigned tag = ++im->tag;

	n = snprintf(b, sizeof(b), "t%u ", tag);
	va_start(ap, fmt);
	n += vsnprintf(b + n, sizeof(b) - (size_t)n, fmt, ap);
	va_end(ap);
	if ((size_t)n + 2 >= sizeof(b))
		return -1;
	b[n++] = '\r';
	b[n++] = '\n';
	if (cl_write(&im->c, b, (size_t)n) < 0)
		return -1;
	return imap_wait(im, tag);
}

static int
imap_open(struct imap *im, long uidx)
{
	char line[1024], user[128];

	im->tag = 0;
	im->exists = 0;
	if (cl_connect(&im->c) < 0 || cl_line(&im->c, line, sizeof(line)) < 0 ||
	    strncmp(line, "* OK", 4) != 0)
		return -1;
	user_name(user, sizeof(user), uidx);
	return imap_cmd(im, "LOGIN \"%s\" \"%s\"", user, opt_pass) == 0 ? 0 : -1;
}

static void
imap_done(struct imap *im)
{
	imap_cmd(im, "LOGOUT");
	cl_close(&im->c);
}

/* APPEND of one unique message with a non-synchronising literal. */
static int
imap_append(struct imap *im, long idx, int tid)
{
	size_t mlen;
	char to[128];
	char *m;
	unsigned tag = ++im->tag;
	int r;

	user_name(to, sizeof(to), idx);
	m = message_build(idx, tid, opt_size, to, &mlen);
	r = cl_printf(&im->c, "t%u APPEND INBOX {%zu+}\r\n", tag, mlen);
	if (r == 0)
		r = cl_write(&im->c, m, mlen);
	if (r == 0)
		r = cl_printf(&im->c, "\r\n");
	free(m);
	if (r < 0)
		return -1;
	return imap_wait(im, tag);
}

struct tstate {
	double *loc;
	size_t ln;
	unsigned seed;
};

/* Timed command: records latency, counts an op. */
#define TIMED(ts, counter, expr)                                    \
	do {                                                        \
		double t0_ = now();                                 \
		int r_ = (expr);                                    \
		if (r_ != 0) {                                      \
			atomic_fetch_add(&errors, 1);               \
			goto fail;                                  \
		}                                                   \
		lat_add((ts)->loc, &(ts)->ln, now() - t0_);         \
		atomic_fetch_add(&ops_done, 1);                     \
		atomic_fetch_add(&(counter), 1);                    \
	} while (0)

static void *
imap_thread(void *arg)
{
	int tid = (int)(intptr_t)arg;
	struct tstate ts = { malloc(4096 * sizeof(double)), 0,
			     (unsigned)tid * 7919u + 1 };
	struct imap *im = calloc(1, sizeof(*im));
	bool mix = strcmp(opt_mode, "imap-mix") == 0;
	bool login = strcmp(opt_mode, "imap-login") == 0;

	im->c.fd = -1;
	while (now() < t_deadline &&
	       atomic_load(&ops_done) < opt_count) {
		if (login || mix) {
			double t0 = now();

			if (imap_open(im, tid) < 0) {
				atomic_fetch_add(&errors, 1);
				goto fail;
			}
			lat_add(ts.loc, &ts.ln, now() - t0);
			atomic_fetch_add(&ops_done, 1);
			atomic_fetch_add(&stat_login, 1);
			if (login) {
				imap_done(im);
				continue;
			}
			TIMED(&ts, stat_select, imap_cmd(im, "SELECT INBOX"));
			if (im->exists > 0) {
				long lo = im->exists > 50 ? im->exists - 49 : 1;
				long n = 1 + rand_r(&ts.seed) % im->exists;

				TIMED(&ts, stat_fetchh,
				      imap_cmd(im, "FETCH %ld:* (UID FLAGS "
						   "RFC822.SIZE BODY.PEEK[HEADER."
						   "FIELDS (FROM TO SUBJECT "
						   "DATE)])", lo));
				TIMED(&ts, stat_fetchb,
				      imap_cmd(im, "FETCH %ld BODY.PEEK[]", n));
				TIMED(&ts, stat_store,
				      imap_cmd(im, "STORE %ld +FLAGS (\\Seen)",
					       n));
			}
			TIMED(&ts, stat_search,
			      imap_cmd(im, "SEARCH SUBJECT \"message 7\""));
			im->last_uid = 0;
			TIMED(&ts, stat_append,
			      imap_append(im, atomic_fetch_add(&next_idx, 1),
					  tid));
			if (im->last_uid > 0) {
				TIMED(&ts, stat_store,
				      imap_cmd(im, "UID STORE %ld +FLAGS "
						   "(\\Deleted)", im->last_uid));
				TIMED(&ts, stat_expunge,
				      imap_cmd(im, "EXPUNGE"));
			}
			TIMED(&ts, stat_logout, imap_cmd(im, "LOGOUT"));
			cl_close(&im->c);
			continue;
		}
		/* long sessions */
		if (imap_open(im, tid) < 0 || imap_cmd(im, "SELECT INBOX") != 0) {
			atomic_fetch_add(&errors, 1);
			goto fail;
		}
		while (now() < t_deadline && atomic_load(&ops_done) < opt_count) {
			if (strcmp(opt_mode, "imap-fetch") == 0) {
				long n = im->exists > 0
					? 1 + rand_r(&ts.seed) % im->exists : 1;

				TIMED(&ts, stat_fetchb,
				      imap_cmd(im, "FETCH %ld BODY.PEEK[]", n));
			} else {
				TIMED(&ts, stat_append,
				      imap_append(im,
						  atomic_fetch_add(&next_idx, 1),
						  tid));
			}
		}
		imap_done(im);
		continue;
fail:
		cl_close(&im->c);
		usleep(10000);
	}
	lat_flush(ts.loc, ts.ln);
	free(ts.loc);
	free(im);
	return NULL;
}

static double big_select[64], big_fetch[64], big_search[64];

static int
imap_big(void)
{
	struct imap *im = calloc(1, sizeof(*im));
	int n = (int)(opt_count < 64 ? opt_count : 64);

	for (int i = 0; i < n; i++) {
		double t0, t1;

		if (imap_open(im, 0) < 0)
			return -1;
		t0 = now();
		if (imap_cmd(im, "SELECT INBOX") != 0)
			return -1;
		t1 = now();
		if (imap_cmd(im, "UID FETCH 1:* (UID FLAGS)") != 0)
			return -1;
		big_select[i] = t1 - t0;
		big_fetch[i] = now() - t1;
		t1 = now();
		if (imap_cmd(im, "SEARCH SUBJECT \"no such subject\"") != 0)
			return -1;
		big_search[i] = now() - t1;
		imap_done(im);
		atomic_fetch_add(&ops_done, 1);
	}
	free(im);
	return 0;
}

/* MULTIAPPEND batches of up to 1000 messages: -n per user. With fewer
   users than clients, the clients of one user split its messages. */
static void *
populate_thread(void *arg)
{
	int tid = (int)(intptr_t)arg;
	struct imap *im = calloc(1, sizeof(*im));
	bool split = opt_users < opt_clients;
	int share = split ? opt_clients / opt_users : 1;
	long part = split ? tid / opt_users : 0;

	if (split && tid >= share * opt_users)
		goto end;
	for (long u = split ? tid % opt_users : tid; u < opt_users;
	     u += split ? opt_users : opt_clients) {
		long per = opt_count / share;
		long done = 0;

		if (split && u != tid % opt_users)
			break;
		if (imap_open(im, u) < 0) {
			atomic_fetch_add(&errors, 1);
			continue;
		}
		while (done < per) {
			long batch = per - done > 1000 ? 1000 : per - done;
			unsigned tag = ++im->tag;

			if (cl_printf(&im->c, "t%u APPEND INBOX", tag) < 0)
				break;
			for (long i = 0; i < batch; i++) {
				char to[128];
				size_t mlen;
				char *m;

				user_name(to, sizeof(to), u);
				m = message_build(u * 10000000 + part * 1000000 +
							  done + i,
						  tid, opt_size, to, &mlen);
				if (cl_printf(&im->c, " {%zu+}\r\n", mlen) < 0 ||
				    cl_write(&im->c, m, mlen) < 0) {
					free(m);
					goto out;
				}
				free(m);
			}
			if (cl_printf(&im->c, "\r\n") < 0 ||
			    imap_wait(im, tag) != 0) {
				atomic_fetch_add(&errors, 1);
				break;
			}
			done += batch;
			atomic_fetch_add(&ops_done, batch);
		}
out:
		imap_done(im);
	}
end:
	free(im);
	return NULL;
}

/* Idle: each thread opens its share of connections and keeps them. */
static struct imap **idle_conns;
static atomic_long idle_ready;

static void *
idle_thread(void *arg)
{
	int tid = (int)(intptr_t)arg;

	for (long i = tid; i < opt_clients; i += 8) {
		struct imap *im = calloc(1, sizeof(*im));
		char line[512];

		if (imap_open(im, i) < 0 || imap_cmd(im, "SELECT INBOX") != 0 ||
		    cl_printf(&im->c, "t%u IDLE\r\n", ++im->tag) < 0 ||
		    cl_line(&im->c, line, sizeof(line)) < 0 || line[0] != '+') {
			atomic_fetch_add(&errors, 1);
			cl_close(&im->c);
			free(im);
			continue;
		}
		idle_conns[i] = im;
		atomic_fetch_add(&idle_ready, 1);
	}
	return NULL;
}

/* ---- POP3 ---- */

static int
pop3_ok(struct cl *c)
{
	char line[1024];

	if (cl_line(c, line, sizeof(line)) < 0)
		return -1;
	return strncmp(line, "+OK", 3) == 0 ? 0 : 1;
}

static int
pop3_multi(struct cl *c)
{
	char line[LINE_MAX_BYTES];

	if (pop3_ok(c) != 0)
		return -1;
	for (;;) {
		if (cl_line(c, line, sizeof(line)) < 0)
			return -1;
		if (line[0] == '.' && line[1] == '\0')
			return 0;
	}
}

static atomic_long retr_done;

static void *
pop3_thread(void *arg)
{
	int tid = (int)(intptr_t)arg;
	double *loc = malloc(4096 * sizeof(double));
	size_t ln = 0;
	struct cl *c = malloc(sizeof(*c));
	unsigned seed = (unsigned)tid + 1;

	while (now() < t_deadline && atomic_load(&ops_done) < opt_count) {
		char user[128], line[256];
		long count = 0;
		double t0 = now();

		user_name(user, sizeof(user), tid);
		if (cl_connect(c) < 0 || pop3_ok(c) != 0 ||
		    cl_printf(c, "USER %s\r\n", user) < 0 || pop3_ok(c) != 0 ||
		    cl_printf(c, "PASS %s\r\n", opt_pass) < 0 ||
		    pop3_ok(c) != 0 || cl_printf(c, "STAT\r\n") < 0 ||
		    cl_line(c, line, sizeof(line)) < 0 ||
		    strncmp(line, "+OK ", 4) != 0)
			goto fail;
		count = strtol(line + 4, NULL, 10);
		for (int i = 0; i < opt_retr && count > 0; i++) {
			double r0 = now();

			if (cl_printf(c, "RETR %ld\r\n",
				      1 + rand_r(&seed) % count) < 0 ||
			    pop3_multi(c) != 0)
				goto fail;
			lat_add(loc, &ln, now() - r0);
			atomic_fetch_add(&retr_done, 1);
		}
		if (cl_printf(c, "QUIT\r\n") < 0 || pop3_ok(c) != 0)
			goto fail;
		cl_close(c);
		(void)t0;
		atomic_fetch_add(&ops_done, 1);
		continue;
fail:
		atomic_fetch_add(&errors, 1);
		cl_close(c);
		usleep(10000);
	}
	lat_flush(loc, ln);
	free(loc);
	free(c);
	return NULL;
}

/* ---- main ---- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double p)
{
	if (lat_n == 0)
		return 0;
	return lats[(size_t)(p * (double)(lat_n - 1))] * 1000.0;
}

static void usage(void);

/* A whole decimal number in [0, max], or usage(). */
static long
num_arg(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
		usage();
	return v;
}

static void
usage(void)
{
	fprintf(stderr, "usage: tload -o MODE -p PORT [-h 127.0.0.1] [-c N] "
			"[-n N] [-s BYTES] [-m N] [-u USERS] [-f FIRST] "
			"[-d DOMAIN] [-P PASS] [-t] [-a] [-T SECS] [-k N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	void *(*fn)(void *) = NULL;
	pthread_t *th;
	double secs;
	int ch;

	while ((ch = getopt(argc, argv, "o:h:p:c:n:s:m:u:f:d:P:taT:k:")) != -1) {
		switch (ch) {
		case 'o': opt_mode = optarg; break;
		case 'h': opt_host = optarg; break;
		case 'p': opt_port = (int)num_arg(optarg, 65535); break;
		case 'c': opt_clients = (int)num_arg(optarg, CLIENTS_MAX); break;
		case 'n': opt_count = num_arg(optarg, 1000000000); break;
		case 's': opt_size = num_arg(optarg, 100000000); break;
		case 'm': opt_per_conn = (int)num_arg(optarg, 1000000); break;
		case 'u': opt_users = (int)num_arg(optarg, 1000000); break;
		case 'f': opt_user_first = (int)num_arg(optarg, 1000000); break;
		case 'd': opt_domain = optarg; break;
		case 'P': opt_pass = optarg; break;
		case 't': opt_tls = true; break;
		case 'a': opt_auth = true; break;
		case 'T': opt_seconds = atof(optarg); break;
		case 'k': opt_retr = (int)num_arg(optarg, 1000000); break;
		default: usage();
		}
	}
	if (opt_port <= 0 || opt_clients < 1 || opt_clients > CLIENTS_MAX ||
	    opt_users < 1 || strncmp(opt_host, "127.", 4) != 0)
		usage();
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	lats = malloc(LAT_MAX * sizeof(double));
	t_start = now();
	t_deadline = t_start + opt_seconds;

	if (strcmp(opt_mode, "smtp") == 0)
		fn = smtp_thread;
	else if (strcmp(opt_mode, "pop3") == 0)
		fn = pop3_thread;
	else if (strcmp(opt_mode, "populate") == 0)
		fn = populate_thread;
	else if (strncmp(opt_mode, "imap-", 5) == 0 &&
		 strcmp(opt_mode, "imap-big") != 0 &&
		 strcmp(opt_mode, "imap-idle") != 0)
		fn = imap_thread;

	if (strcmp(opt_mode, "imap-big") == 0) {
		double s[64], f[64], q[64];
		int n;

		if (imap_big() < 0)
			atomic_fetch_add(&errors, 1);
		n = (int)atomic_load(&ops_done);
		memcpy(s, big_select, sizeof(s));
		memcpy(f, big_fetch, sizeof(f));
		memcpy(q, big_search, sizeof(q));
		qsort(q, (size_t)n, sizeof(double), cmp_double);
		qsort(s, (size_t)n, sizeof(double), cmp_double);
		qsort(f, (size_t)n, sizeof(double), cmp_double);
		printf("{\"runs\":%d,\"select_ms\":%.2f,\"fetch_ms\":%.2f,"
		       "\"select_min_ms\":%.2f,\"select_max_ms\":%.2f,"
		       "\"fetch_min_ms\":%.2f,\"fetch_max_ms\":%.2f,"
		       "\"search_ms\":%.2f,\"errors\":%ld}\n",
		       n, n ? s[n / 2] * 1000 : 0, n ? f[n / 2] * 1000 : 0,
		       n ? s[0] * 1000 : 0, n ? s[n - 1] * 1000 : 0,
		       n ? f[0] * 1000 : 0, n ? f[n - 1] * 1000 : 0,
		       n ? q[n / 2] * 1000 : 0, atomic_load(&errors));
		return 0;
	}
	if (strcmp(opt_mode, "imap-idle") == 0) {
		pthread_t it[8];
		char b[64];

		idle_conns = calloc((size_t)opt_clients, sizeof(*idle_conns));
		for (int i = 0; i < 8; i++)
			pthread_create(&it[i], NULL, idle_thread,
				       (void *)(intptr_t)i);
		for (int i = 0; i < 8; i++)
			pthread_join(it[i], NULL);
		secs = now() - t_start;
		fprintf(stderr, "ready %ld\n", atomic_load(&idle_ready));
		/* hold until the caller closes stdin */
		while (fgets(b, sizeof(b), stdin) != NULL)
			;
		for (long i = 0; i < opt_clients; i++)
			if (idle_conns[i] != NULL)
				cl_close(&idle_conns[i]->c);
		printf("{\"ops\":%ld,\"secs\":%.3f,\"rate\":%.1f,"
		       "\"errors\":%ld}\n",
		       atomic_load(&idle_ready), secs,
		       atomic_load(&idle_ready) / secs, atomic_load(&errors));
		return 0;
	}
	if (fn == NULL)
		usage();
	th = calloc((size_t)opt_clients, sizeof(*th));
	for (int i = 0; i < opt_clients; i++)
		pthread_create(&th[i], NULL, fn, (void *)(intptr_t)i);
	for (int i = 0; i < opt_clients; i++)
		pthread_join(th[i], NULL);
	secs = now() - t_start;
	qsort(lats, lat_n, sizeof(double), cmp_double);
	printf("{\"ops\":%ld,\"secs\":%.3f,\"rate\":%.1f,\"p50_ms\":%.2f,"
	       "\"p99_ms\":%.2f,\"errors\":%ld,\"bytes_in\":%ld,"
	       "\"retr\":%ld,\"retr_rate\":%.1f,\"logins\":%ld,"
	       "\"fetch_body\":%ld,\"append\":%ld,\"sessions\":%ld}\n",
	       atomic_load(&ops_done), secs, atomic_load(&ops_done) / secs,
	       pct(0.5), pct(0.99), atomic_load(&errors),
	       atomic_load(&bytes_in), atomic_load(&retr_done),
	       atomic_load(&retr_done) / secs, atomic_load(&stat_login),
	       atomic_load(&stat_fetchb), atomic_load(&stat_append),
	       atomic_load(&stat_sessions));
	return 0;
}
