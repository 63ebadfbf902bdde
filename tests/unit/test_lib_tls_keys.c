/* Tests for lib/tls_keys: the request/reply codec (round trip, every
   malformed header refused), the holder's validation (key index, op
   against key type, padding, lengths; random datagrams never crash it
   and always get a reply with an error status), and signing through
   stub keys against a holder in a forked child over a SOCK_SEQPACKET
   pair: RSA PKCS#1 v1.5 and RSA-PSS (TLS 1.2 and 1.3) and ECDSA, each
   verified with the certificate's public key. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "harness.h"
#include "lib/tls_keys.h"

static X509 *
test_cert(EVP_PKEY *k)
{
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, k, EVP_sha256());
	return x;
}

static void
test_codec(void)
{
	struct tls_keys_msg m = { 0 }, out;
	uint8_t buf[TLS_KEYS_MSG_MAX_BYTES + 8];
	const char *error;
	int n;

	m.version = TLS_KEYS_VERSION;
	m.code = TLS_KEYS_OP_ECDSA;
	m.padding = 3;
	m.id = 0xa1b2c3d4;
	m.key = 513;
	m.len = 32;
	memset(m.data, 0x5a, 32);
	n = tls_keys_pack(&m, buf, sizeof(buf));
	test_assert(n == TLS_KEYS_HEADER_BYTES + 32);
	test_assert(tls_keys_unpack(buf, (size_t)n, &out, &error) == 0);
	test_assert(out.id == m.id && out.key == 513 && out.code == m.code &&
		    out.padding == 3 && out.len == 32);
	test_assert_memeq(out.data, 32, m.data, 32);
	/* every truncation is refused */
	for (int i = 0; i < n; i++)
		test_assert_idx(tls_keys_unpack(buf, (size_t)i, &out, &error) < 0, i);
	/* the id is still known for an error reply once the header is */
	test_assert(tls_keys_unpack(buf, TLS_KEYS_HEADER_BYTES, &out, &error) < 0 &&
		    out.id == 0xa1b2c3d4);
	buf[0] = 2;
	test_assert(tls_keys_unpack(buf, (size_t)n, &out, &error) < 0);
	buf[0] = TLS_KEYS_VERSION;
	buf[3] = 1;
	test_assert(tls_keys_unpack(buf, (size_t)n, &out, &error) < 0);
	buf[3] = 0;
	/* a length field over the maximum, with a datagram to match */
	m.len = TLS_KEYS_DATA_MAX_BYTES;
	n = tls_keys_pack(&m, buf, sizeof(buf));
	test_assert(n == TLS_KEYS_MSG_MAX_BYTES);
	buf[10] = (uint8_t)((TLS_KEYS_DATA_MAX_BYTES + 1) & 0xff);
	buf[11] = (uint8_t)((TLS_KEYS_DATA_MAX_BYTES + 1) >> 8);
	test_assert(tls_keys_unpack(buf, (size_t)n + 1, &out, &error) < 0);
	m.len = TLS_KEYS_DATA_MAX_BYTES + 1;
	test_assert(tls_keys_pack(&m, buf, sizeof(buf)) < 0);
	m.len = 10;
	test_assert(tls_keys_pack(&m, buf, TLS_KEYS_HEADER_BYTES + 9) < 0);
}

static struct tls_keys_holder *
test_holder(EVP_PKEY **rsa_r, EVP_PKEY **ec_r)
{
	EVP_PKEY *keys[2];

	keys[0] = EVP_RSA_gen(2048);
	keys[1] = EVP_EC_gen("P-256");
	*rsa_r = keys[0];
	*ec_r = keys[1];
	return tls_keys_holder_from((void *const *)keys, 2);
}

static int
test_ask(struct tls_keys_holder *h, uint8_t code, uint8_t padding,
	 uint16_t key, uint16_t len, uint32_t id)
{
	struct tls_keys_msg m = { 0 }, resp;
	uint8_t buf[TLS_KEYS_MSG_MAX_BYTES];
	int n;

	m.version = TLS_KEYS_VERSION;
	m.code = code;
	m.padding = padding;
	m.key = key;
	m.len = len;
	m.id = id;
	memset(m.data, 0x01, len);
	m.data[0] = 0; /* an RSA block below the modulus */
	n = tls_keys_pack(&m, buf, sizeof(buf));
	tls_keys_holder_answer(h, buf, (size_t)n, &resp);
	if (resp.id != id || resp.version != TLS_KEYS_VERSION)
		return -1;
	return resp.code;
}

static void
test_holder_validates(void)
{
	EVP_PKEY *rsa, *ec;
	struct tls_keys_holder *h = test_holder(&rsa, &ec);
	struct tls_keys_msg resp;
	uint8_t junk[TLS_KEYS_MSG_MAX_BYTES + 1];

	test_assert(test_ask(h, TLS_KEYS_OP_RSA_RAW, RSA_NO_PADDING, 0, 256, 7) == TLS_KEYS_OK);
	test_assert(test_ask(h, TLS_KEYS_OP_RSA_RAW, RSA_PKCS1_PADDING, 0, 51, 8) == TLS_KEYS_OK);
	test_assert(test_ask(h, TLS_KEYS_OP_ECDSA, 0, 1, 32, 9) == TLS_KEYS_OK);
	/* key index out of range, op for the other key type */
	test_assert(test_ask(h, TLS_KEYS_OP_ECDSA, 0, 2, 32, 10) == TLS_KEYS_ERR_KEY);
	test_assert(test_ask(h, TLS_KEYS_OP_ECDSA, 0, 65535, 32, 10) == TLS_KEYS_ERR_KEY);
	test_assert(test_ask(h, TLS_KEYS_OP_ECDSA, 0, 0, 32, 11) == TLS_KEYS_ERR_KEY);
	test_assert(test_ask(h, TLS_KEYS_OP_RSA_RAW, RSA_NO_PADDING, 1, 256, 12) == TLS_KEYS_ERR_KEY);
	/* lengths and paddings */
	test_assert(test_ask(h, TLS_KEYS_OP_RSA_RAW, RSA_NO_PADDING, 0, 255, 13) == TLS_KEYS_ERR_REQUEST);
	test_assert(test_ask(h, TLS_KEYS_OP_RSA_RAW, RSA_NO_PADDING, 0, 257, 13) == TLS_KEYS_ERR_REQUEST);
	test_assert(test_ask(h, TLS_KEYS_OP_RSA_RAW, RSA_PKCS1_PADDING, 0, 246, 14) == TLS_KEYS_ERR_REQUEST);
	test_assert(test_ask(h, TLS_KEYS_OP_RSA_RAW, RSA_PKCS1_PADDING, 0, 0, 14) == TLS_KEYS_ERR_REQUEST);
	test_assert(test_ask(h, TLS_KEYS_OP_RSA_RAW, RSA_PKCS1_OAEP_PADDING, 0, 100, 15) == TLS_KEYS_ERR_REQUEST);
	test_assert(test_ask(h, TLS_KEYS_OP_ECDSA, 0, 1, 19, 16) == TLS_KEYS_ERR_REQUEST);
	test_assert(test_ask(h, TLS_KEYS_OP_ECDSA, 0, 1, 65, 16) == TLS_KEYS_ERR_REQUEST);
	test_assert(test_ask(h, TLS_KEYS_OP_ECDSA, 1, 1, 32, 16) == TLS_KEYS_ERR_REQUEST);
	test_assert(test_ask(h, 0, 0, 0, 32, 17) == TLS_KEYS_ERR_FORMAT);
	test_assert(test_ask(h, 99, 0, 1, 32, 17) == TLS_KEYS_ERR_FORMAT);
	/* malformed datagrams: an error reply, never a crash */
	tls_keys_holder_answer(h, junk, 0, &resp);
	test_assert(resp.code == TLS_KEYS_ERR_FORMAT && resp.len == 0);
	srand(1);
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)rand() % sizeof(junk);
		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)rand();
		if (i % 2 == 0 && n >= TLS_KEYS_HEADER_BYTES) {
			/* mostly valid headers, to reach the checks */
			junk[0] = TLS_KEYS_VERSION;
			junk[3] = 0;
			junk[8] = (uint8_t)(rand() % 3);
			junk[9] = 0;
			junk[10] = (uint8_t)(n - TLS_KEYS_HEADER_BYTES);
			junk[11] = (uint8_t)((n - TLS_KEYS_HEADER_BYTES) >> 8);
		}
		tls_keys_holder_answer(h, junk, n, &resp);
		test_assert_idx(resp.version == TLS_KEYS_VERSION &&
					resp.len <= TLS_KEYS_DATA_MAX_BYTES,
				i);
	}
	tls_keys_holder_free(&h);
	test_assert(h == NULL);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

/* The holder side of a channel, in a child: answer until EOF. */
static void
test_serve(struct tls_keys_holder *h, int fd)
{
	uint8_t in[TLS_KEYS_MSG_MAX_BYTES + 1], out[TLS_KEYS_MSG_MAX_BYTES];
	struct tls_keys_msg resp;
	ssize_t n;

	while ((n = recv(fd, in, sizeof(in), 0)) > 0) {
		int m;
		tls_keys_holder_answer(h, in, (size_t)n, &resp);
		m = tls_keys_pack(&resp, out, sizeof(out));
		if (m < 0 || send(fd, out, (size_t)m, MSG_NOSIGNAL) != m)
			_exit(2);
	}
	_exit(0);
}

static int
test_sign_verify(EVP_PKEY *stub, EVP_PKEY *pub, int pss)
{
	static const unsigned char msg[] = "TLS 1.3, server CertificateVerify";
	unsigned char sig[1024];
	size_t len = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok = EVP_DigestSignInit(md, &pc, EVP_sha256(), NULL, stub) == 1;

	if (ok && pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1;
	ok = ok && EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return 0;
	md = EVP_MD_CTX_new();
	ok = EVP_DigestVerifyInit(md, &pc, EVP_sha256(), NULL, pub) == 1;
	if (ok && pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1;
	ok = ok && EVP_DigestVerify(md, sig, len, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

static void
test_stub_signs(void)
{
	EVP_PKEY *rsa, *ec, *stub_rsa, *stub_ec;
	struct tls_keys_holder *h = test_holder(&rsa, &ec);
	X509 *xr = test_cert(rsa), *xe = test_cert(ec);
	const char *error;
	int sv[2], status;
	pid_t pid;

	test_assert(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		test_serve(h, sv[1]);
	}
	close(sv[1]);
	tls_keys_holder_free(&h);
	stub_rsa = tls_keys_stub_new(xr, 0, &error);
	stub_ec = tls_keys_stub_new(xe, 1, &error);
	test_assert(stub_rsa != NULL && stub_ec != NULL);
	/* no channel: signing fails, does not hang */
	tls_keys_set_channel(-1);
	test_assert(!test_sign_verify(stub_rsa, rsa, 0));
	tls_keys_set_channel(sv[0]);
	test_assert(test_sign_verify(stub_rsa, rsa, 0));
	test_assert(test_sign_verify(stub_rsa, rsa, 1));
	test_assert(test_sign_verify(stub_ec, ec, 0));
	for (int i = 0; i < 20; i++)
		test_assert_idx(test_sign_verify(stub_ec, ec, 0) &&
					test_sign_verify(stub_rsa, rsa, 1),
				i);
	/* the stubs hold the public halves only */
	test_assert(X509_check_private_key(xr, stub_rsa) == 1);
	test_assert(X509_check_private_key(xe, stub_ec) == 1);
	close(sv[0]);
	test_assert(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0);
	/* the holder gone: an error, at once */
	test_assert(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	close(sv[1]);
	tls_keys_set_channel(sv[0]);
	test_assert(!test_sign_verify(stub_ec, ec, 0));
	close(sv[0]);
	tls_keys_set_channel(-1);
	EVP_PKEY_free(stub_rsa);
	EVP_PKEY_free(stub_ec);
	X509_free(xr);
	X509_free(xe);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

static const struct test_case tests[] = {
	{ "tls_keys_codec", test_codec },
	{ "tls_keys_holder_validates", test_holder_validates },
	{ "tls_keys_stub_signs", test_stub_signs },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
