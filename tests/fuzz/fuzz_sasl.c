/* libFuzzer target for the SASL server exchanges (auth_sasl.c,
   auth_scram.c): PLAIN, LOGIN and SCRAM-SHA-256, plus auth_login_check.
   Input: byte 0 picks the mechanism, then client responses, each one a
   length byte followed by that many bytes (already base64-decoded, as the
   protocols hand them over). The server nonce is fixed to RFC 7677's so a
   seed can carry a complete valid exchange. Every account exists with a
   cheap MD5-crypt hash and the RFC 7677 secrets, so no input reaches the
   19 MiB argon2id dummy verification and the fuzzer stays fast. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* openssl passwd -1 -salt fuzzsalt pencil */
#define FUZZ_HASH "$1$fuzzsalt$thuIjwS9Tztukv67c.f0c."
#define FUZZ_SECRETS \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7Bke" \
	"ZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define FUZZ_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static int
fuzz_lookup(void *ctx, const char *username, struct auth_user *user_r)
{
	if (strlen(username) > AUTH_USERNAME_MAX_BYTES)
		abort();
	if (strcmp(username, "tempfail") == 0)
		return -1;
	user_r->name = xstrdup(username);
	user_r->password_hash = xstrdup(FUZZ_HASH);
	user_r->scram_secrets = xstrdup(FUZZ_SECRETS);
	return 1;
}

static void
fuzz_exchange(const char *mech, const uint8_t *data, size_t size)
{
	struct auth_sasl *s = auth_sasl_new(mech, fuzz_lookup, NULL, NULL);
	enum auth_sasl_result r = AUTH_SASL_CONTINUE;
	size_t pos = 0;

	if (s == NULL)
		abort();
	(void)auth_sasl_set_server_nonce(s, FUZZ_SNONCE);
	while (pos < size) {
		size_t n = data[pos++];
		const uint8_t *ch;
		size_t ch_len;

		if (n > size - pos)
			n = size - pos;
		r = auth_sasl_step(s, data + pos, n, &ch, &ch_len);
		pos += n;
		if (ch_len > 0 && ch == NULL)
			abort();
		if (r == AUTH_SASL_OK && auth_sasl_user(s) == NULL)
			abort();
		(void)auth_sasl_attempted_user(s);
	}
	auth_sasl_free(&s);
	if (s != NULL)
		abort();
}

static void
fuzz_login(const uint8_t *data, size_t size)
{
	char user[64];
	size_t n = size < sizeof(user) - 1 ? size : sizeof(user) - 1;

	memcpy(user, data, n);
	user[n] = '\0';
	(void)auth_login_check(user, (const char *)data, size, fuzz_lookup,
			       NULL, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = { "PLAIN", "LOGIN",
					     "SCRAM-SHA-256", "plain" };

	if (size == 0)
		return 0;
	if (data[0] == 0xff) {
		fuzz_login(data + 1, size - 1);
		return 0;
	}
	fuzz_exchange(mechs[data[0] % 4], data + 1, size - 1);
	return 0;
}
