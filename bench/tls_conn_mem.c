/* OpenSSL's live heap per server connection after the handshake, by
   allocation site: N TLS connections over socketpairs in one process,
   the server side set up like src/lib/tls.c, each doing a handshake and
   one exchange of application data (a login line and its answer); the
   clients are freed, the servers kept. Allocations are counted through
   CRYPTO_set_mem_functions (server calls only), so the figures are
   OpenSSL's own, without tern. Not a test; figures for
   docs/performance.md.

     cc -O2 -o build/tls_conn_mem bench/tls_conn_mem.c -lssl -lcrypto
     build/tls_conn_mem CERT KEY [N] [options...]

   options: stateful (SSL_OP_NO_TICKET: TLS 1.3 stateful tickets, as
   tern had them), tickets0 (no TLS 1.3 tickets), tls12 (TLS 1.2 only),
   chacha (prefer ChaCha20-Poly1305). */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define SITES_MAX 4096

struct site {
	const char *file;
	int line;
	long bytes, count;
};

struct hdr {
	size_t n;
	const char *file;
	int line; /* < 0: not counted */
	int pad;
	long pad2;
};

static struct site sites[SITES_MAX];
static int nsites;
static int counting;

static struct site *
site_of(const char *file, int line)
{
	for (int i = 0; i < nsites; i++) {
		if (sites[i].line == line && strcmp(sites[i].file, file) == 0)
			return &sites[i];
	}
	if (nsites == SITES_MAX) {
		fprintf(stderr, "too many allocation sites\n");
		exit(1);
	}
	sites[nsites].file = file;
	sites[nsites].line = line;
	return &sites[nsites++];
}

static void *
mem_malloc(size_t n, const char *file, int line)
{
	struct hdr *h = malloc(n + sizeof(*h));
	struct site *s;

	if (h == NULL)
		return NULL;
	h->n = n;
	h->file = file != NULL ? file : "?";
	h->line = counting ? line : -1;
	if (counting) {
		s = site_of(h->file, line);
		s->bytes += (long)n;
		s->count++;
	}
	return h + 1;
}

static void
mem_free(void *p, const char *file, int line)
{
	struct hdr *h;
	struct site *s;

	(void)file;
	(void)line;
	if (p == NULL)
		return;
	h = (struct hdr *)p - 1;
	if (h->line >= 0) {
		s = site_of(h->file, h->line);
		s->bytes -= (long)h->n;
		s->count--;
	}
	free(h);
}

static void *
mem_realloc(void *p, size_t n, const char *file, int line)
{
	struct hdr *h;
	void *q;

	if (p == NULL)
		return mem_malloc(n, file, line);
	if (n == 0) {
		mem_free(p, file, line);
		return NULL;
	}
	q = mem_malloc(n, file, line);
	if (q == NULL)
		return NULL;
	h = (struct hdr *)p - 1;
	memcpy(q, p, h->n < n ? h->n : n);
	mem_free(p, file, line);
	return q;
}

static int
has(int argc, char **argv, const char *opt)
{
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], opt) == 0)
			return 1;
	}
	return 0;
}

static SSL_CTX *
server_ctx(const char *cert, const char *key, int argc, char **argv)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			SSL_OP_CIPHER_SERVER_PREFERENCE;

	if (ctx == NULL)
		return NULL;
	if (has(argc, argv, "stateful"))
		opts |= SSL_OP_NO_TICKET;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (has(argc, argv, "tls12"))
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, opts);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tern", 4);
	if (has(argc, argv, "tickets0"))
		SSL_CTX_set_num_tickets(ctx, 0);
	if (has(argc, argv, "chacha"))
		SSL_CTX_set_ciphersuites(ctx, "TLS_CHACHA20_POLY1305_SHA256:"
					      "TLS_AES_128_GCM_SHA256");
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* One connection: handshake and an exchange; the server SSL stays. */
static SSL *
connect_one(SSL_CTX *sctx, SSL_CTX *cctx, int count)
{
	char buf[64];
	int sv[2], rs = 0, rc = 0;
	SSL *s, *c;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return NULL;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	counting = count;
	s = SSL_new(sctx);
	SSL_set_fd(s, sv[0]);
	SSL_set_accept_state(s);
	counting = 0;
	c = SSL_new(cctx);
	SSL_set_fd(c, sv[1]);
	SSL_set_connect_state(c);
	for (int k = 0; k < 100 && (rs != 1 || rc != 1); k++) {
		counting = count;
		rs = SSL_do_handshake(s);
		counting = 0;
		rc = SSL_do_handshake(c);
	}
	(void)SSL_write(c, "a1 LOGIN x y\r\n", 14);
	counting = count;
	if (rs != 1 || SSL_read(s, buf, sizeof(buf)) <= 0 ||
	    SSL_write(s, "a1 OK\r\n", 7) != 7) {
		fprintf(stderr, "handshake or exchange failed\n");
		exit(1);
	}
	counting = 0;
	(void)SSL_read(c, buf, sizeof(buf));
	SSL_free(c);
	close(sv[1]);
	return s;
}

int
main(int argc, char **argv)
{
	SSL_CTX *sctx, *cctx;
	SSL **srv;
	struct mallinfo2 m0, m1;
	long total = 0;
	int n;

	if (argc < 3) {
		fprintf(stderr, "usage: %s CERT KEY [N] [options]\n", argv[0]);
		return 2;
	}
	n = 1000;
	if (argc > 3) {
		char *end;
		long v = strtol(argv[3], &end, 10);

		if (*end != '\0' || v <= 0 || v > 1000000)
			return 2;
		n = (int)v;
	}
	CRYPTO_set_mem_functions(mem_malloc, mem_realloc, mem_free);
	sctx = server_ctx(argv[1], argv[2], argc, argv);
	cctx = SSL_CTX_new(TLS_client_method());
	srv = calloc((size_t)n, sizeof(*srv));
	if (sctx == NULL || cctx == NULL || srv == NULL)
		return 1;
	for (int i = 0; i < 5; i++) /* warm-up: lazy loading of providers */
		SSL_free(connect_one(sctx, cctx, 0));
	m0 = mallinfo2();
	for (int i = 0; i < n; i++)
		srv[i] = connect_one(sctx, cctx, 1);
	m1 = mallinfo2();
	for (int i = 0; i < nsites; i++)
		total += sites[i].bytes;
	printf("%s, %d connections, session cache %ld entries\n",
	       SSL_get_version(srv[0]), n, SSL_CTX_sess_number(sctx));
	printf("OpenSSL live heap %.0f B per connection; malloc in use grew "
	       "%.0f B per connection\n",
	       (double)total / n, (double)(m1.uordblks - m0.uordblks) / n);
	for (int k = 0; k < 30; k++) {
		int best = -1;

		for (int i = 0; i < nsites; i++) {
			if (sites[i].bytes > 0 &&
			    (best < 0 || sites[i].bytes > sites[best].bytes))
				best = i;
		}
		if (best < 0)
			break;
		printf("  %6.0f B %4.1f allocs  %s:%d\n",
		       (double)sites[best].bytes / n,
		       (double)sites[best].count / n, sites[best].file,
		       sites[best].line);
		sites[best].bytes = -sites[best].bytes;
	}
	for (int i = 0; i < n; i++)
		SSL_free(srv[i]);
	free(srv);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	return 0;
}
