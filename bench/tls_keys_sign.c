/* What a signature through the keys process costs a worker
   (docs/performance.md, "TLS handshakes and the keys process"): N
   signatures of the kind a TLS 1.3 handshake makes (RSA-PSS SHA-256 with
   a 2048-bit key, ECDSA P-256 SHA-256), once with the key in this
   process and once through a stub key (lib/tls_keys.h) whose holder runs
   in a forked child over a SOCK_SEQPACKET pair, as in ternd.

     cc -O2 -Isrc bench/tls_keys_sign.c build/lib/libtern_lib.a \
        -lssl -lcrypto -o build/tls_keys_sign && build/tls_keys_sign 2000 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/tls_keys.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
sign_once(EVP_PKEY *k, int pss)
{
	static const unsigned char msg[64];
	unsigned char sig[512];
	size_t len = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok = EVP_DigestSignInit(md, &pc, EVP_sha256(), NULL, k) == 1;

	if (ok && pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1;
	ok = ok && EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

static void
time_it(const char *what, EVP_PKEY *k, int pss, long n)
{
	double t0 = now_s();

	for (long i = 0; i < n; i++) {
		if (!sign_once(k, pss)) {
			fprintf(stderr, "%s: signing failed\n", what);
			exit(1);
		}
	}
	printf("%-28s %6ld signatures  %7.1f us each\n", what, n,
	       (now_s() - t0) * 1e6 / n);
}

static X509 *
cert_of(EVP_PKEY *k)
{
	X509 *x = X509_new();

	X509_set_pubkey(x, k);
	return x;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
	EVP_PKEY *keys[2] = { EVP_RSA_gen(2048), EVP_EC_gen("P-256") };
	X509 *xr = cert_of(keys[0]), *xe = cert_of(keys[1]);
	struct tls_keys_holder *h = tls_keys_holder_from((void *const *)keys, 2);
	const char *error;
	int sv[2];
	pid_t pid;

	if (n < 1 || n > 10000000)
		return 2;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		unsigned char in[TLS_KEYS_MSG_MAX_BYTES + 1];
		unsigned char out[TLS_KEYS_MSG_MAX_BYTES];
		struct tls_keys_msg resp;
		ssize_t r;

		close(sv[0]);
		while ((r = recv(sv[1], in, sizeof(in), 0)) > 0) {
			tls_keys_holder_answer(h, in, (size_t)r, &resp);
			int m = tls_keys_pack(&resp, out, sizeof(out));
			if (m < 0 || send(sv[1], out, (size_t)m, 0) != m)
				_exit(1);
		}
		_exit(0);
	}
	close(sv[1]);
	tls_keys_set_channel(sv[0]);
	time_it("RSA-PSS 2048, in process", keys[0], 1, n);
	time_it("RSA-PSS 2048, keys process",
		tls_keys_stub_new(xr, 0, &error), 1, n);
	time_it("ECDSA P-256, in process", keys[1], 0, n);
	time_it("ECDSA P-256, keys process",
		tls_keys_stub_new(xe, 1, &error), 0, n);
	close(sv[0]);
	waitpid(pid, NULL, 0);
	return 0;
}
