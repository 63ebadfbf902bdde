/* Server TLS contexts and the quickstart's self-signed certificate.
   TLS 1.2 and 1.3 only, no compression, no renegotiation, forward-secret
   AEAD ciphers for 1.2. Several certificates: the first is the default,
   the others are chosen by SNI (RFC 6066 section 3). The contexts hold
   no private key: signatures come from the keys process (tls_keys.h). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/cfg.h"
#include "lib/tls.h"
#include "lib/tls_keys.h"
#include "lib/xalloc.h"

#define TLS_CIPHERS_12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* TLS 1.3 in the server's order of preference. ChaCha20-Poly1305 first
   for memory: its two record contexts and SHA-256 transcript digest are
   about 0.4 KB smaller per connection than AES-256-GCM with SHA-384
   (OpenSSL 3.0's default first choice), and an idle IMAP connection
   keeps them for hours; on this machine it encrypts 16 KB records at
   3.7 GB/s against 4.0 (AES-128-GCM) and 3.0 (AES-256-GCM) with AES-NI
   (docs/performance.md, "Idle IMAP connections in detail"). */
#define TLS_CIPHERS_13 \
	"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:" \
	"TLS_AES_256_GCM_SHA384"

struct tls_ctx {
	SSL_CTX **ctxs;
	size_t count;
};

static char tls_err[256];

static const char *
tls_error(const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

	snprintf(tls_err, sizeof(tls_err), "%s %s: %s", what, file,
		 why != NULL ? why : e != 0 ? "system error" : "unknown error");
	ERR_clear_error();
	return tls_err;
}

static SSL_CTX *
tls_ssl_ctx_base(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Session tickets are on (no SSL_OP_NO_TICKET): with TLS 1.3,
	   OpenSSL 3.0 then keeps no server-side state for resumption (the
	   ticket carries it, encrypted with the context's ticket keys),
	   where stateful tickets put two SSL_SESSION copies per connection
	   in the cache for 5 minutes (about 1 KB of the memory of every
	   idle connection, docs/performance.md). The contexts are made in
	   the master before it forks, so every worker holds the same keys
	   and a reconnect resumes on any worker. Trade-off: the keys are
	   random per context, in memory only, and live until the next
	   reload; whoever steals them can decrypt tickets, which for
	   TLS 1.2 (no DHE on resumption) exposes those sessions' traffic;
	   TLS 1.3 resumes with psk_dhe_ke, so its traffic stays forward
	   secret. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12);
	SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERS_13);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	/* The cache (per worker process) serves TLS 1.2 clients that resume
	   by session ID instead of tickets. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tern", 4);
	return ctx;
}

/* SNI: switch to the context whose certificate matches the name. */
static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_ctx *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL || t->count < 2)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 1; i < t->count; i++) {
		X509 *cert = SSL_CTX_get0_certificate(t->ctxs[i]);
		if (cert != NULL && X509_check_host(cert, name, 0, 0, NULL) == 1) {
			SSL_set_SSL_CTX(ssl, t->ctxs[i]);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

struct tls_ctx *
tls_ctx_new(const struct cfg *cfg, const char **error_r)
{
	struct tls_ctx *t;

	if (cfg->cert_count == 0) {
		*error_r = "no certificate configured";
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->ctxs = xcalloc(cfg->cert_count, sizeof(*t->ctxs));
	for (size_t i = 0; i < cfg->cert_count; i++) {
		const struct cfg_cert *cc = &cfg->certs[i];
		SSL_CTX *ctx = tls_ssl_ctx_base();
		const char *error;
		EVP_PKEY *stub;
		int ok;

		if (ctx == NULL) {
			*error_r = tls_error("creating context for", cc->name);
			goto fail;
		}
		t->ctxs[t->count++] = ctx;
		if (SSL_CTX_use_certificate_chain_file(ctx, cc->cert_file) != 1) {
			*error_r = tls_error("loading certificate", cc->cert_file);
			goto fail;
		}
		/* The private key stays in the keys process (tls_keys.h):
		   this context gets a stub with the certificate's public
		   key that asks it for each signature. That the key file
		   matches the certificate is checked there. */
		stub = tls_keys_stub_new(SSL_CTX_get0_certificate(ctx),
					 (unsigned)i, &error);
		if (stub == NULL) {
			snprintf(tls_err, sizeof(tls_err), "certificate %s: %s",
				 cc->cert_file, error);
			*error_r = tls_err;
			goto fail;
		}
		ok = SSL_CTX_use_PrivateKey(ctx, stub);
		EVP_PKEY_free(stub);
		if (ok != 1) {
			*error_r = tls_error("using the key of", cc->cert_file);
			goto fail;
		}
	}
	SSL_CTX_set_tlsext_servername_callback(t->ctxs[0], tls_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(t->ctxs[0], t);
	return t;
fail:
	tls_ctx_free(&t);
	return NULL;
}

void
tls_ctx_free(struct tls_ctx **tp)
{
	struct tls_ctx *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++)
		SSL_CTX_free(t->ctxs[i]);
	free(t->ctxs);
	free(t);
	*tp = NULL;
}

void *
tls_ctx_ssl_ctx(struct tls_ctx *t)
{
	return t->ctxs[0];
}

/* The client context: made once per process (the queue), by
   tls_client_init or, failing that, on first use with the system store.
   SSL_VERIFY_NONE does not skip the chain check: OpenSSL still verifies
   and keeps the result for SSL_get_verify_result, it only does not abort
   the handshake, which lets opportunistic TLS (RFC 7435) go on and log. */
static SSL_CTX *tls_client;

static SSL_CTX *
tls_client_new(const char *ca_file, const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok;

	if (ctx == NULL) {
		*error_r = tls_error("cannot create", "client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (ca_file != NULL && ca_file[0] != '\0')
		ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		*error_r = tls_error("cannot load CA certificates",
				     ca_file != NULL ? ca_file : "(system)");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
tls_client_init(const char *ca_file, const char **error_r)
{
	SSL_CTX *ctx = tls_client_new(ca_file, error_r);

	if (ctx == NULL)
		return -1;
	SSL_CTX_free(tls_client);
	tls_client = ctx;
	return 0;
}

void *
tls_client_ssl_ctx(void)
{
	const char *error;

	if (tls_client == NULL)
		tls_client = tls_client_new(NULL, &error);
	return tls_client;
}

int
tls_client_expect_host(void *ssl, const char *host)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	unsigned char addr[16];

	if (host == NULL || host[0] == '\0')
		return -1;
	/* An address (a smarthost given as one) is matched against the
	   certificate's IP subjectAltNames, a name against its DNS names
	   (RFC 6125; no partial wildcards such as "m*.example.com"). */
	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1 ? 0 : -1;
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

bool
tls_client_verified(void *ssl, char *reason, size_t size)
{
	long r;

	if (SSL_get0_peer_certificate(ssl) == NULL) {
		snprintf(reason, size, "no-certificate");
		return false;
	}
	r = SSL_get_verify_result(ssl);
	if (r == X509_V_OK) {
		snprintf(reason, size, "ok");
		return true;
	}
	/* "self-signed certificate" -> "self-signed-certificate": one
	   token for key=value log lines */
	snprintf(reason, size, "%s", X509_verify_cert_error_string(r));
	for (char *p = reason; *p != '\0'; p++)
		if (*p == ' ' || *p == '"' || *p == '=')
			*p = '-';
	return false;
}

static int
tls_add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static int
tls_write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f;
	int ok;

	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) :
			   PEM_write_X509(f, cert);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	return ok == 1 ? 0 : -1;
}

int
tls_make_self_signed(const char *hostname, const char *cert_path,
		     const char *key_path, const char **error_r)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509 *cert = X509_new();
	X509_NAME *name;
	char san[600];
	int ret = -1;

	if (key == NULL || cert == NULL) {
		*error_r = "key generation failed";
		goto out;
	}
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)hostname, -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				   (const unsigned char *)"tern quickstart", -1,
				   -1, 0);
	X509_set_issuer_name(cert, name);
	snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1",
		 hostname);
	if (tls_add_ext(cert, NID_subject_alt_name, san) < 0 ||
	    tls_add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    tls_add_ext(cert, NID_ext_key_usage, "serverAuth") < 0 ||
	    X509_sign(cert, key, EVP_sha256()) == 0) {
		*error_r = "certificate signing failed";
		goto out;
	}
	if (tls_write_pem(key_path, key, NULL) < 0 ||
	    tls_write_pem(cert_path, NULL, cert) < 0) {
		*error_r = "writing certificate files failed";
		goto out;
	}
	ret = 0;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return ret;
}
