/* ternctl dkim generate|show|list: DKIM signing keys per domain.
   RFC 6376 3.6.1 (the key record: v=DKIM1; k=; p= base64 of the
   SubjectPublicKeyInfo for rsa), 3.6.2.1 (published at
   SELECTOR._domainkey.DOMAIN), RFC 8301 (RSA keys of at least 1024
   bits; we make 2048), RFC 8463 4.2 (k=ed25519, p= the raw 32-byte
   public key). Keys are made with OpenSSL 3's EVP API and stored as
   PKCS#8 PEM in the store (a 0600 database); the private key is never
   printed. TXT strings are at most 255 bytes (RFC 1035 3.3), so a long
   record is printed as several quoted strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "store/store.h"
#include "ternctl/ternctl.h"

#define TERNCTL_DKIM_RSA_BITS 2048
#define TERNCTL_DKIM_RECORD_MAX_BYTES 4096
#define TERNCTL_DKIM_TXT_CHUNK 250 /* RFC 1035: 255 per string */

/* Lowercase, no trailing dot, a valid hosted domain; xmalloc'd or NULL
   (reason printed, *ret_r set). */
static char *
ternctl_dkim_domain(struct ternctl *t, const char *arg, int *ret_r)
{
	char *d = xstrdup(arg);
	size_t n = strlen(d);
	const char *why;

	if (n > 0 && d[n - 1] == '.')
		d[--n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] - 'A' + 'a');
	}
	if (ternctl_util_domain_check(d, &why) < 0) {
		*ret_r = ternctl_util_usage("bad domain '%s': %s", arg, why);
	} else {
		*ret_r = ternctl_util_need_domain(t, d);
		if (*ret_r == TERNCTL_EXIT_OK)
			return d;
	}
	free(d);
	return NULL;
}

static EVP_PKEY *
ternctl_dkim_pkey(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pkey;

	if (bio == NULL)
		return NULL;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return pkey;
}

/* The record value "v=DKIM1; k=...; p=..." of a private key. */
static int
ternctl_dkim_record(EVP_PKEY *pkey, struct buf *out)
{
	unsigned char raw[64], *der = NULL;
	size_t rawlen = sizeof(raw);
	int derlen, r;

	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1)
			return -1;
		r = buf_append_str(out, "v=DKIM1; k=ed25519; p=");
		return r < 0 ? -1 : base64_encode(out, raw, rawlen);
	}
	derlen = i2d_PUBKEY(pkey, &der);
	if (derlen <= 0)
		return -1;
	r = buf_append_str(out, "v=DKIM1; k=rsa; p=");
	if (r == 0)
		r = base64_encode(out, der, (size_t)derlen);
	OPENSSL_free(der);
	return r;
}

/* Print "SEL._domainkey.DOMAIN. IN TXT ..." for the key. */
static int
ternctl_dkim_print_record(const struct store_dkim_key *k)
{
	EVP_PKEY *pkey = ternctl_dkim_pkey(k->private_key);
	struct buf rec;
	size_t off = 0;
	int r;

	if (pkey == NULL)
		return ternctl_util_fail("the stored key of %s (selector %s) "
					 "does not parse", k->domain,
					 k->selector);
	buf_init(&rec, TERNCTL_DKIM_RECORD_MAX_BYTES);
	r = ternctl_dkim_record(pkey, &rec);
	EVP_PKEY_free(pkey);
	if (r < 0) {
		buf_free(&rec);
		return ternctl_util_fail("cannot derive the public key");
	}
	printf("%s._domainkey.%s. IN TXT", k->selector, k->domain);
	if (rec.len > TERNCTL_DKIM_TXT_CHUNK)
		printf(" (");
	while (off < rec.len) {
		size_t n = rec.len - off;
		if (n > TERNCTL_DKIM_TXT_CHUNK)
			n = TERNCTL_DKIM_TXT_CHUNK;
		printf(" \"%.*s\"", (int)n, (const char *)rec.data + off);
		off += n;
	}
	printf("%s\n", rec.len > TERNCTL_DKIM_TXT_CHUNK ? " )" : "");
	buf_free(&rec);
	return TERNCTL_EXIT_OK;
}

/* A new key as PKCS#8 PEM, xmalloc'd, or NULL. */
static char *
ternctl_dkim_keygen(bool ed25519)
{
	EVP_PKEY *pkey;
	BIO *bio;
	BUF_MEM *mem;
	char *pem = NULL;

	pkey = ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
		       : EVP_RSA_gen(TERNCTL_DKIM_RSA_BITS);
	if (pkey == NULL)
		return NULL;
	bio = BIO_new(BIO_s_mem());
	if (bio != NULL &&
	    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) ==
		    1 &&
	    BIO_get_mem_ptr(bio, &mem) == 1) {
		pem = xmalloc(mem->length + 1);
		memcpy(pem, mem->data, mem->length);
		pem[mem->length] = '\0';
		OPENSSL_cleanse(mem->data, mem->length);
	}
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return pem;
}

/* "rsa" / "ed25519" (or the full algorithm names); NULL when unknown. */
static const char *
ternctl_dkim_algorithm(const char *arg)
{
	if (arg == NULL || strcmp(arg, "rsa") == 0 ||
	    strcmp(arg, "rsa-sha256") == 0)
		return "rsa-sha256";
	if (strcmp(arg, "ed25519") == 0 || strcmp(arg, "ed25519-sha256") == 0)
		return "ed25519-sha256";
	return NULL;
}

static int
ternctl_dkim_store(struct ternctl *t, struct store_dkim_key *k)
{
	int ret = store_dkim_set(t->store, k);

	if (ret == STORE_EXISTS)
		return ternctl_util_fail("%s already has a key with selector "
					 "%s: choose another with --selector",
					 k->domain, k->selector);
	if (ret == STORE_INVALID)
		return ternctl_util_usage("bad selector '%s': use letters, "
					  "digits, '-' and '.'", k->selector);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "storing the key");
	printf("dkim key for %s: selector %s, %s%s; publish this DNS "
	       "record:\n", k->domain, k->selector, k->algorithm,
	       strcmp(k->algorithm, "rsa-sha256") == 0 ? " (2048 bits)" : "");
	return ternctl_dkim_print_record(k);
}

int
ternctl_dkim_generate(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_dkim_key k;
	const char *sel = ternctl_args_opt(a, "selector");
	char defsel[32];
	time_t now = time(NULL);
	int ret;

	memset(&k, 0, sizeof(k));
	k.algorithm = (char *)ternctl_dkim_algorithm(
		ternctl_args_opt(a, "algorithm"));
	if (k.algorithm == NULL)
		return ternctl_util_usage("unknown algorithm '%s': use rsa or "
					  "ed25519",
					  ternctl_args_opt(a, "algorithm"));
	if (sel == NULL) {
		/* A dated default, so a later rotation gets a new name. */
		strftime(defsel, sizeof(defsel), "tern%Y%m%d", gmtime(&now));
		sel = defsel;
	}
	k.domain = ternctl_dkim_domain(t, a->pos[0], &ret);
	if (k.domain == NULL)
		return ret;
	k.selector = (char *)sel;
	k.created = (int64_t)now;
	k.private_key = ternctl_dkim_keygen(strcmp(k.algorithm, "rsa-sha256") !=
					    0);
	if (k.private_key == NULL)
		ret = ternctl_util_fail("key generation failed");
	else
		ret = ternctl_dkim_store(t, &k);
	if (k.private_key != NULL)
		OPENSSL_cleanse(k.private_key, strlen(k.private_key));
	free(k.private_key);
	free(k.domain);
	return ret;
}

int
ternctl_dkim_show(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_dkim_key k;
	char when[64];
	char *d;
	int ret;

	d = ternctl_dkim_domain(t, a->pos[0], &ret);
	if (d == NULL)
		return ret;
	ret = store_dkim_get(t->store, d, &k);
	if (ret < 0)
		ret = ternctl_util_store_fail(t, ret, "reading the key");
	else if (ret == 0)
		ret = ternctl_util_fail("%s has no DKIM key: make one with "
					"'ternctl dkim generate %s'", d, d);
	else {
		printf("domain: %s\nselector: %s\nalgorithm: %s\n"
		       "created: %s\nrecord: ", k.domain, k.selector,
		       k.algorithm,
		       ternctl_util_time(k.created, when, sizeof(when)));
		ret = ternctl_dkim_print_record(&k);
	}
	store_dkim_key_clear(&k);
	free(d);
	return ret;
}

int
ternctl_dkim_list(struct ternctl *t, const struct ternctl_args *a)
{
	struct store_dkim_key *ks;
	char when[64];
	size_t n;
	int ret;

	(void)a;
	ret = store_dkim_list(t->store, NULL, &ks, &n);
	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "listing keys");
	if (n == 0)
		printf("no DKIM keys: make one with 'ternctl dkim generate "
		       "DOMAIN'\n");
	for (size_t i = 0; i < n; i++)
		printf("%s %s %s %s%s\n", ks[i].domain, ks[i].selector,
		       ks[i].algorithm,
		       ternctl_util_time(ks[i].created, when, sizeof(when)),
		       ks[i].active ? " active" : "");
	store_dkim_keys_free(ks, n);
	return TERNCTL_EXIT_OK;
}
