#ifndef TERN_TLS_KEYS_H
#define TERN_TLS_KEYS_H
/* TLS private keys kept out of the network-facing processes
   (docs/security.md, "The keys process").

   The key holder (the keys process, src/ternd/keys_process.c) loads the
   private keys and answers signing requests; the workers' SSL contexts
   get stub keys: the certificate's public key with RSA and EC methods
   whose private operations are one request/answer round trip over a
   SOCK_SEQPACKET socket to the holder. Only two operations exist, the
   ones TLS 1.2 ECDHE and TLS 1.3 server handshakes need:
     TLS_KEYS_OP_RSA_RAW    RSA_private_encrypt of a block that OpenSSL
                            already encoded: padding RSA_PKCS1_PADDING
                            (DigestInfo, TLS 1.2 rsa_pkcs1_*) or
                            RSA_NO_PADDING (an EMSA-PSS block, rsa_pss_rsae_*)
     TLS_KEYS_OP_ECDSA      ECDSA signature of a digest, DER-encoded
   RSA decryption (RSA key exchange) is not offered: tls.c allows ECDHE
   suites only.

   Wire format, one message per datagram, little-endian:
     version(1) op-or-status(1) padding(1) zero(1) id(4) key(2) len(2)
     data[len]
   A request carries op, a reply the status (0 = ok). The id is the
   requester's, echoed in the reply. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_KEYS_VERSION 1
#define TLS_KEYS_HEADER_BYTES 12
/* 1024 bytes: an RSA block of a 8192-bit key, the largest accepted */
#define TLS_KEYS_DATA_MAX_BYTES 1024
#define TLS_KEYS_MSG_MAX_BYTES (TLS_KEYS_HEADER_BYTES + TLS_KEYS_DATA_MAX_BYTES)
/* keys (certificate blocks) one holder serves */
#define TLS_KEYS_KEYS_MAX 256
/* digests ECDSA signs in TLS: SHA-1 (20 bytes) to SHA-512 (64) */
#define TLS_KEYS_DIGEST_MIN_BYTES 20
#define TLS_KEYS_DIGEST_MAX_BYTES 64
/* how long a worker waits for a signature before the handshake fails */
#define TLS_KEYS_TIMEOUT_MS 2000

enum tls_keys_op {
	TLS_KEYS_OP_RSA_RAW = 1,
	TLS_KEYS_OP_ECDSA = 2,
};

enum tls_keys_status {
	TLS_KEYS_OK = 0,
	TLS_KEYS_ERR_FORMAT = 1,  /* malformed message */
	TLS_KEYS_ERR_KEY = 2,     /* no such key, or not of the op's type */
	TLS_KEYS_ERR_REQUEST = 3, /* bad padding or length for that key */
	TLS_KEYS_ERR_SIGN = 4,    /* OpenSSL refused */
};

struct tls_keys_msg {
	uint8_t version;
	uint8_t code; /* enum tls_keys_op in a request, status in a reply */
	uint8_t padding;
	uint32_t id;
	uint16_t key;
	uint16_t len;
	uint8_t data[TLS_KEYS_DATA_MAX_BYTES];
};

/* Encode m into out (size bytes). The byte count, or -1 when m->len is
   over the maximum or out is too small. */
int tls_keys_pack(const struct tls_keys_msg *m, uint8_t *out, size_t size);
/* Decode a datagram of n bytes. 0, or -1 with *error_r (static text)
   when it is short, of another version, has a nonzero reserved byte or
   its length field disagrees with n. m_r->id is set whenever the header
   is complete, so an error reply can still carry it. */
int tls_keys_unpack(const uint8_t *in, size_t n, struct tls_keys_msg *m_r,
		    const char **error_r);

/* The holder: the private keys of every certificate block of a config,
   in config order (key index = certificate index). */
struct tls_keys_holder;
struct cfg;

/* Read each block's key file, check it matches the block's certificate.
   NULL with *error_r (static text) on failure. */
struct tls_keys_holder *tls_keys_holder_new(const struct cfg *cfg,
					    const char **error_r);
/* From keys already loaded (tests): takes a reference to each. */
struct tls_keys_holder *tls_keys_holder_from(void *const *pkeys,
					     size_t count);
void tls_keys_holder_free(struct tls_keys_holder **hp);
/* Answer one request datagram: the reply is written into resp (always,
   also for a malformed request: then with an error status). Never
   fails otherwise; validates key index, op, padding and lengths. */
void tls_keys_holder_answer(struct tls_keys_holder *h, const uint8_t *in,
			    size_t n, struct tls_keys_msg *resp);

/* Client side (a worker): a stub EVP_PKEY for SSL_CTX_use_PrivateKey:
   the public key of cert (X509 *) whose private operations are sent,
   for key index, to the channel set with tls_keys_set_channel. RSA and
   EC keys only. NULL with *error_r (static text). Returns EVP_PKEY *. */
void *tls_keys_stub_new(void *cert, unsigned index, const char **error_r);
/* The process's channel to the holder (-1: none, signing fails). */
void tls_keys_set_channel(int fd);
int tls_keys_channel(void);

#endif
