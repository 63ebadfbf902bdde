#ifndef TERN_TLS_H
#define TERN_TLS_H
/* Server TLS contexts: TLS 1.2 and 1.3 only, no compression, no
   renegotiation, a modern cipher list; several certificates chosen by SNI
   (the first is the default). Self-signed certificate creation for the
   quickstart. */
#include <stdbool.h>
#include <stddef.h>

struct tls_ctx;
struct cfg;

/* Load every certificate chain of the config, each with a stub key
   (tls_keys_stub_new, key index = the certificate block's index) whose
   signatures come from the keys process: the key files are not read
   here. NULL with *error_r set (static or thread-local text) on
   failure. */
struct tls_ctx *tls_ctx_new(const struct cfg *cfg, const char **error_r);
void tls_ctx_free(struct tls_ctx **tp);
/* The OpenSSL SSL_CTX for the default certificate (void * so that
   callers need not include OpenSSL headers). */
void *tls_ctx_ssl_ctx(struct tls_ctx *t);

/* Client side (outbound queue): TLS 1.2+, no compression or
   renegotiation. Peer certificates are checked against ca_file (PEM; NULL
   or "": the system's default store), but a failed check does not stop
   the handshake: the caller asks tls_client_verified() afterwards and
   decides (opportunistic STARTTLS, RFC 7435, goes on; a smarthost that
   must verify is given up). tls_client_init replaces the process's
   client context: 0, or -1 with *error_r (static text). */
int tls_client_init(const char *ca_file, const char **error_r);
/* The client context (SSL_CTX *); made with the system store when
   tls_client_init was not called. NULL when OpenSSL fails. */
void *tls_client_ssl_ctx(void);
/* Before the handshake of ssl (SSL *): the name (or IP address) the
   certificate must be for. 0 or -1. */
int tls_client_expect_host(void *ssl, const char *host);
/* After the handshake: true when the chain verified and the certificate
   is for the expected host. reason gets "ok" or a one-word reason
   ("self-signed-certificate", "hostname-mismatch", "no-certificate"). */
bool tls_client_verified(void *ssl, char *reason, size_t size);

/* Create a self-signed certificate (RSA 2048, SHA-256, 10 years) for
   hostname with subjectAltName DNS:hostname and DNS:localhost, written
   as PEM to cert_path and key_path (mode 0600). 0 or -1. */
int tls_make_self_signed(const char *hostname, const char *cert_path,
			 const char *key_path, const char **error_r);

#endif
