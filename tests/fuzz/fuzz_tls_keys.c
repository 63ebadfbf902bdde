/* libFuzzer target: the keys process's request decoder and validation
   (lib/tls_keys.h tls_keys_holder_answer), with one RSA 2048 and one EC
   P-256 key, made once. Every input gets a reply of the current
   version whose data fits its maximum and whose id is the request's
   when the header was complete. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "lib/tls_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tls_keys_holder *h;
	struct tls_keys_msg resp;

	if (h == NULL) {
		EVP_PKEY *keys[2] = { EVP_RSA_gen(2048), EVP_EC_gen("P-256") };
		h = tls_keys_holder_from((void *const *)keys, 2);
		EVP_PKEY_free(keys[0]);
		EVP_PKEY_free(keys[1]);
	}
	if (size > TLS_KEYS_MSG_MAX_BYTES + 1)
		size = TLS_KEYS_MSG_MAX_BYTES + 1; /* what recv can deliver */
	tls_keys_holder_answer(h, data, size, &resp);
	if (resp.version != TLS_KEYS_VERSION ||
	    resp.len > TLS_KEYS_DATA_MAX_BYTES)
		abort();
	if (size >= TLS_KEYS_HEADER_BYTES &&
	    resp.id != ((uint32_t)data[4] | (uint32_t)data[5] << 8 |
			(uint32_t)data[6] << 16 | (uint32_t)data[7] << 24))
		abort();
	if (resp.code == 0 && resp.len == 0)
		abort();
	return 0;
}
