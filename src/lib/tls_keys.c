/* TLS private keys in one process, signatures on request (tls_keys.h):
   the message codec, the holder's answer to a request and the workers'
   stub keys.

   XXX deprecated API: the stub keys are legacy RSA and EC_KEY objects
   with our own RSA_METHOD / EC_KEY_METHOD. OpenSSL 3.0 marks those
   deprecated, but a key with a non-default method is "foreign" and is
   signed through the legacy code path, which calls the method's
   private_encrypt (PKCS#1 v1.5 and, for RSA-PSS in TLS 1.3, the EMSA-PSS
   block OpenSSL encoded itself) and ECDSA sign hooks: two small
   callbacks instead of a provider with its own key management and
   signature dispatch tables. OPENSSL_SUPPRESS_DEPRECATED is defined in
   this file only; the holder side uses the non-deprecated EVP_PKEY_sign.
   The private key never reaches this code in a worker: the stub holds
   the certificate's public key and the key's index. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/cfg.h"
#include "lib/tls_keys.h"
#include "lib/xalloc.h"

static void
tls_keys_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
tls_keys_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t
tls_keys_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
tls_keys_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int
tls_keys_pack(const struct tls_keys_msg *m, uint8_t *out, size_t size)
{
	if (m->len > TLS_KEYS_DATA_MAX_BYTES ||
	    size < TLS_KEYS_HEADER_BYTES + (size_t)m->len)
		return -1;
	out[0] = m->version;
	out[1] = m->code;
	out[2] = m->padding;
	out[3] = 0;
	tls_keys_put32(out + 4, m->id);
	tls_keys_put16(out + 8, m->key);
	tls_keys_put16(out + 10, m->len);
	memcpy(out + TLS_KEYS_HEADER_BYTES, m->data, m->len);
	return TLS_KEYS_HEADER_BYTES + m->len;
}

int
tls_keys_unpack(const uint8_t *in, size_t n, struct tls_keys_msg *m_r,
		const char **error_r)
{
	m_r->id = 0;
	m_r->len = 0;
	if (n < TLS_KEYS_HEADER_BYTES) {
		*error_r = "short message";
		return -1;
	}
	m_r->version = in[0];
	m_r->code = in[1];
	m_r->padding = in[2];
	m_r->id = tls_keys_get32(in + 4);
	m_r->key = tls_keys_get16(in + 8);
	if (in[0] != TLS_KEYS_VERSION) {
		*error_r = "unknown version";
		return -1;
	}
	if (in[3] != 0) {
		*error_r = "reserved byte set";
		return -1;
	}
	m_r->len = tls_keys_get16(in + 10);
	if (m_r->len > TLS_KEYS_DATA_MAX_BYTES ||
	    n - TLS_KEYS_HEADER_BYTES != m_r->len) {
		*error_r = "length mismatch";
		m_r->len = 0;
		return -1;
	}
	memcpy(m_r->data, in + TLS_KEYS_HEADER_BYTES, m_r->len);
	return 0;
}

/* The holder. */

struct tls_keys_holder {
	EVP_PKEY **keys;
	size_t count;
};

static EVP_PKEY *
tls_keys_read_key(const char *path)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	/* no stdio buffer: the PEM text would stay behind in freed heap */
	setvbuf(f, NULL, _IONBF, 0);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static int
tls_keys_matches(const char *cert_file, EVP_PKEY *k)
{
	FILE *f = fopen(cert_file, "re");
	X509 *x;
	int ok;

	if (f == NULL)
		return 0;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ok = x != NULL && X509_check_private_key(x, k) == 1;
	X509_free(x);
	return ok;
}

struct tls_keys_holder *
tls_keys_holder_new(const struct cfg *cfg, const char **error_r)
{
	static char err[300];
	struct tls_keys_holder *h;

	if (cfg->cert_count > TLS_KEYS_KEYS_MAX) {
		*error_r = "too many certificate blocks";
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->keys = xcalloc(cfg->cert_count + 1, sizeof(*h->keys));
	for (size_t i = 0; i < cfg->cert_count; i++) {
		const struct cfg_cert *cc = &cfg->certs[i];
		EVP_PKEY *k;
		int type;

		errno = 0;
		k = tls_keys_read_key(cc->key_file);
		type = k != NULL ? EVP_PKEY_get_base_id(k) : 0;
		if (k == NULL) {
			snprintf(err, sizeof(err), "loading key %s: %s",
				 cc->key_file, errno != 0 && ERR_peek_error() == 0 ?
						       strerror(errno) : "not a PEM private key");
			goto fail;
		}
		h->keys[h->count++] = k;
		if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
			snprintf(err, sizeof(err), "key %s: only RSA and EC keys are supported",
				 cc->key_file);
			goto fail;
		}
		if (!tls_keys_matches(cc->cert_file, k)) {
			snprintf(err, sizeof(err), "key %s does not match certificate %s",
				 cc->key_file, cc->cert_file);
			goto fail;
		}
	}
	ERR_clear_error();
	return h;
fail:
	ERR_clear_error();
	tls_keys_holder_free(&h);
	*error_r = err;
	return NULL;
}

struct tls_keys_holder *
tls_keys_holder_from(void *const *pkeys, size_t count)
{
	struct tls_keys_holder *h = xcalloc(1, sizeof(*h));

	h->keys = xcalloc(count + 1, sizeof(*h->keys));
	for (size_t i = 0; i < count && i < TLS_KEYS_KEYS_MAX; i++) {
		EVP_PKEY_up_ref(pkeys[i]);
		h->keys[h->count++] = pkeys[i];
	}
	return h;
}

void
tls_keys_holder_free(struct tls_keys_holder **hp)
{
	struct tls_keys_holder *h = *hp;

	if (h == NULL)
		return;
	for (size_t i = 0; i < h->count; i++)
		EVP_PKEY_free(h->keys[i]); /* BN_clear_free of the secrets */
	free(h->keys);
	free(h);
	*hp = NULL;
}

/* Check the request against its key; TLS_KEYS_OK or the status. */
static enum tls_keys_status
tls_keys_check(EVP_PKEY *k, const struct tls_keys_msg *req)
{
	size_t size = (size_t)EVP_PKEY_get_size(k);

	switch (req->code) {
	case TLS_KEYS_OP_RSA_RAW:
		if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA)
			return TLS_KEYS_ERR_KEY;
		if (size > TLS_KEYS_DATA_MAX_BYTES)
			return TLS_KEYS_ERR_KEY;
		/* RFC 8017 9.2: a DigestInfo needs 11 bytes of padding */
		if (req->padding == RSA_PKCS1_PADDING)
			return req->len > 0 && req->len + 11u <= size ?
				       TLS_KEYS_OK : TLS_KEYS_ERR_REQUEST;
		if (req->padding == RSA_NO_PADDING)
			return req->len == size ? TLS_KEYS_OK :
						  TLS_KEYS_ERR_REQUEST;
		return TLS_KEYS_ERR_REQUEST;
	case TLS_KEYS_OP_ECDSA:
		if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
			return TLS_KEYS_ERR_KEY;
		if (req->padding != 0 || size > TLS_KEYS_DATA_MAX_BYTES ||
		    req->len < TLS_KEYS_DIGEST_MIN_BYTES ||
		    req->len > TLS_KEYS_DIGEST_MAX_BYTES)
			return TLS_KEYS_ERR_REQUEST;
		return TLS_KEYS_OK;
	default:
		return TLS_KEYS_ERR_FORMAT;
	}
}

static enum tls_keys_status
tls_keys_sign(EVP_PKEY *k, const struct tls_keys_msg *req,
	      struct tls_keys_msg *resp)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k, NULL);
	size_t len = sizeof(resp->data);
	int ok = pc != NULL && EVP_PKEY_sign_init(pc) == 1;

	if (ok && req->code == TLS_KEYS_OP_RSA_RAW)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc, req->padding) == 1;
	if (ok)
		ok = EVP_PKEY_sign(pc, resp->data, &len, req->data, req->len) == 1;
	EVP_PKEY_CTX_free(pc);
	ERR_clear_error();
	if (!ok || len > sizeof(resp->data))
		return TLS_KEYS_ERR_SIGN;
	resp->len = (uint16_t)len;
	return TLS_KEYS_OK;
}

void
tls_keys_holder_answer(struct tls_keys_holder *h, const uint8_t *in,
		       size_t n, struct tls_keys_msg *resp)
{
	struct tls_keys_msg req;
	const char *error;
	enum tls_keys_status st;

	resp->version = TLS_KEYS_VERSION;
	resp->padding = 0;
	resp->len = 0;
	resp->key = 0;
	if (tls_keys_unpack(in, n, &req, &error) < 0) {
		resp->id = req.id;
		resp->code = TLS_KEYS_ERR_FORMAT;
		return;
	}
	resp->id = req.id;
	resp->key = req.key;
	if (req.key >= h->count)
		st = TLS_KEYS_ERR_KEY;
	else
		st = tls_keys_check(h->keys[req.key], &req);
	if (st == TLS_KEYS_OK)
		st = tls_keys_sign(h->keys[req.key], &req, resp);
	OPENSSL_cleanse(req.data, sizeof(req.data));
	resp->code = (uint8_t)st;
}

/* The client side. */

static int tls_keys_fd = -1;
static uint32_t tls_keys_last_id;
static int tls_keys_rsa_idx = -1, tls_keys_ec_idx = -1;
static RSA_METHOD *tls_keys_rsa_meth;
static EC_KEY_METHOD *tls_keys_ec_meth;

void
tls_keys_set_channel(int fd)
{
	tls_keys_fd = fd;
}

int
tls_keys_channel(void)
{
	return tls_keys_fd;
}

static long
tls_keys_ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 +
	       (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* One round trip: send req, wait (bounded) for the reply with its id;
   replies to earlier requests that timed out are skipped. 0 with
   *resp_r ok, or -1. */
static int
tls_keys_call(struct tls_keys_msg *req, struct tls_keys_msg *resp_r)
{
	uint8_t buf[TLS_KEYS_MSG_MAX_BYTES + 1];
	struct timespec deadline;
	const char *error;
	bool sent = false;
	int n;

	if (tls_keys_fd < 0)
		return -1;
	req->version = TLS_KEYS_VERSION;
	req->id = ++tls_keys_last_id;
	n = tls_keys_pack(req, buf, sizeof(buf));
	if (n < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += TLS_KEYS_TIMEOUT_MS / 1000;
	for (;;) {
		long left = tls_keys_ms_left(&deadline);
		struct pollfd pfd = { tls_keys_fd, POLLIN, 0 };
		ssize_t r;

		if (left <= 0)
			return -1;
		if (!sent) {
			r = send(tls_keys_fd, buf, (size_t)n,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r == n) {
				sent = true;
				continue;
			}
			if (r >= 0 || (errno != EAGAIN && errno != EINTR))
				return -1;
			pfd.events = POLLOUT;
		} else {
			r = recv(tls_keys_fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r == 0)
				return -1; /* the holder is gone */
			if (r > 0) {
				if (tls_keys_unpack(buf, (size_t)r, resp_r,
						    &error) == 0 &&
				    resp_r->id == req->id)
					return resp_r->code == TLS_KEYS_OK ? 0 : -1;
				continue; /* a stale reply: read on */
			}
			if (errno != EAGAIN && errno != EINTR)
				return -1;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
}

static int
tls_keys_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
		      RSA *rsa, int padding)
{
	struct tls_keys_msg req = { 0 }, resp;
	int size = RSA_size(rsa);

	if (flen < 0 || flen > TLS_KEYS_DATA_MAX_BYTES || size <= 0 ||
	    (padding != RSA_PKCS1_PADDING && padding != RSA_NO_PADDING))
		return -1;
	req.code = TLS_KEYS_OP_RSA_RAW;
	req.padding = (uint8_t)padding;
	req.key = (uint16_t)(uintptr_t)RSA_get_ex_data(rsa, tls_keys_rsa_idx);
	req.len = (uint16_t)flen;
	memcpy(req.data, from, (size_t)flen);
	if (tls_keys_call(&req, &resp) < 0 || resp.len != (unsigned)size)
		return -1;
	memcpy(to, resp.data, resp.len);
	return (int)resp.len;
}

static int
tls_keys_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
		      RSA *rsa, int padding)
{
	/* RSA key exchange is not offered (ECDHE only, tls.c) */
	(void)flen, (void)from, (void)to, (void)rsa, (void)padding;
	return -1;
}

static int
tls_keys_ec_sign(int type, const unsigned char *dgst, int dlen,
		 unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
		 const BIGNUM *r, EC_KEY *eckey)
{
	struct tls_keys_msg req = { 0 }, resp;
	int max = ECDSA_size(eckey);

	(void)type;
	*siglen = 0;
	if (kinv != NULL || r != NULL || dlen < 0 ||
	    dlen > TLS_KEYS_DATA_MAX_BYTES || max <= 0)
		return 0;
	req.code = TLS_KEYS_OP_ECDSA;
	req.key = (uint16_t)(uintptr_t)EC_KEY_get_ex_data(eckey, tls_keys_ec_idx);
	req.len = (uint16_t)dlen;
	memcpy(req.data, dgst, (size_t)dlen);
	if (tls_keys_call(&req, &resp) < 0 || resp.len > (unsigned)max)
		return 0;
	memcpy(sig, resp.data, resp.len);
	*siglen = resp.len;
	return 1;
}

static ECDSA_SIG *
tls_keys_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
		     const BIGNUM *r, EC_KEY *eckey)
{
	unsigned char der[TLS_KEYS_DATA_MAX_BYTES];
	const unsigned char *p = der;
	unsigned int len;

	if (ECDSA_size(eckey) > (int)sizeof(der) ||
	    tls_keys_ec_sign(0, dgst, dlen, der, &len, kinv, r, eckey) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, len);
}

static int
tls_keys_methods_init(void)
{
	if (tls_keys_rsa_meth != NULL)
		return 0;
	tls_keys_rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	tls_keys_ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	tls_keys_rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL());
	tls_keys_ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
	if (tls_keys_rsa_idx < 0 || tls_keys_ec_idx < 0 ||
	    tls_keys_rsa_meth == NULL || tls_keys_ec_meth == NULL)
		return -1;
	RSA_meth_set1_name(tls_keys_rsa_meth, "tern keys process");
	RSA_meth_set_priv_enc(tls_keys_rsa_meth, tls_keys_rsa_priv_enc);
	RSA_meth_set_priv_dec(tls_keys_rsa_meth, tls_keys_rsa_priv_dec);
	EC_KEY_METHOD_set_sign(tls_keys_ec_meth, tls_keys_ec_sign, NULL,
			       tls_keys_ec_sign_sig);
	return 0;
}

static EVP_PKEY *
tls_keys_stub_rsa(EVP_PKEY *pub, unsigned index)
{
	const RSA *src = EVP_PKEY_get0_RSA(pub);
	const BIGNUM *n, *e;
	RSA *rsa;
	EVP_PKEY *k;

	if (src == NULL)
		return NULL;
	RSA_get0_key(src, &n, &e, NULL);
	rsa = RSA_new();
	if (rsa == NULL)
		return NULL;
	/* the method first: EVP_PKEY_assign marks the key foreign, so
	   OpenSSL signs through the method instead of a provider */
	if (RSA_set_method(rsa, tls_keys_rsa_meth) != 1 ||
	    RSA_set0_key(rsa, BN_dup(n), BN_dup(e), NULL) != 1 ||
	    RSA_set_ex_data(rsa, tls_keys_rsa_idx, (void *)(uintptr_t)index) != 1) {
		RSA_free(rsa);
		return NULL;
	}
	k = EVP_PKEY_new();
	if (k == NULL || EVP_PKEY_assign_RSA(k, rsa) != 1) {
		EVP_PKEY_free(k);
		RSA_free(rsa);
		return NULL;
	}
	return k;
}

static EVP_PKEY *
tls_keys_stub_ec(EVP_PKEY *pub, unsigned index)
{
	const EC_KEY *src = EVP_PKEY_get0_EC_KEY(pub);
	EC_KEY *ec;
	EVP_PKEY *k;

	if (src == NULL)
		return NULL;
	ec = EC_KEY_new();
	if (ec == NULL)
		return NULL;
	if (EC_KEY_set_method(ec, tls_keys_ec_meth) != 1 ||
	    EC_KEY_set_group(ec, EC_KEY_get0_group(src)) != 1 ||
	    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src)) != 1 ||
	    EC_KEY_set_ex_data(ec, tls_keys_ec_idx, (void *)(uintptr_t)index) != 1) {
		EC_KEY_free(ec);
		return NULL;
	}
	k = EVP_PKEY_new();
	if (k == NULL || EVP_PKEY_assign_EC_KEY(k, ec) != 1) {
		EVP_PKEY_free(k);
		EC_KEY_free(ec);
		return NULL;
	}
	return k;
}

void *
tls_keys_stub_new(void *cert, unsigned index, const char **error_r)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	EVP_PKEY *k = NULL;

	if (index >= TLS_KEYS_KEYS_MAX) {
		*error_r = "too many certificates";
		return NULL;
	}
	if (tls_keys_methods_init() < 0) {
		*error_r = "cannot create the key methods";
		return NULL;
	}
	if (pub != NULL && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA)
		k = tls_keys_stub_rsa(pub, index);
	else if (pub != NULL && EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC)
		k = tls_keys_stub_ec(pub, index);
	else {
		*error_r = "only RSA and EC certificates are supported";
		return NULL;
	}
	ERR_clear_error();
	if (k == NULL)
		*error_r = "cannot make the certificate's stub key";
	return k;
}
