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

/* Load every certificate of the config. NULL with *error_r set (static or
   thread-local text) on failure. */
struct tls_ctx *tls_ctx_new(const struct cfg *cfg, const char **error_r);
void tls_ctx_free(struct tls_ctx **tp);
/* The OpenSSL SSL_CTX for the default certificate (void * so that
   callers need not include OpenSSL headers). */
void *tls_ctx_ssl_ctx(struct tls_ctx *t);

/* Client side (outbound queue): a context that does not verify (the
   opportunistic-TLS default of SMTP, RFC 3207). */
void *tls_client_ssl_ctx(void);

/* Create a self-signed certificate (RSA 2048, SHA-256, 10 years) for
   hostname with subjectAltName DNS:hostname and DNS:localhost, written
   as PEM to cert_path and key_path (mode 0600). 0 or -1. */
int tls_make_self_signed(const char *hostname, const char *cert_path,
			 const char *key_path, const char **error_r);

#endif
