/* SASL server (RFC 4422) with three mechanisms, shared by SMTP AUTH
   (RFC 4954), IMAP AUTHENTICATE (RFC 9051 6.2.2) and POP3 AUTH (RFC 5034):
   PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and SCRAM-SHA-256
   (RFC 5802 sections 5 and 7, RFC 7677) without channel binding: we never
   advertise -PLUS, so "y" is accepted and "p=" fails (RFC 5802 6).
   Proxy authorization is not offered: a PLAIN authzid or SCRAM "a=" that
   names someone other than the authenticated user fails.
   Every client message is bounded before it is parsed, and an unknown user
   costs as much as a known one (dummy hash, fake SCRAM secrets). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/strview.h"
#include "lib/xalloc.h"

#define AUTH_SASL_CHALLENGE_MAX_BYTES 4096
#define AUTH_SCRAM_NONCE_MAX_BYTES 64
#define AUTH_SCRAM_SNONCE_RAW_BYTES 18

enum auth_mech {
	AUTH_MECH_PLAIN,
	AUTH_MECH_LOGIN,
	AUTH_MECH_SCRAM_SHA_256,
};

enum auth_sasl_state {
	AUTH_STATE_START,
	AUTH_STATE_WAIT_INITIAL,	/* sent the empty challenge */
	AUTH_STATE_LOGIN_USER,		/* sent "Username:" */
	AUTH_STATE_LOGIN_PASS,		/* sent "Password:" */
	AUTH_STATE_SCRAM_FINAL,		/* sent server-first */
	AUTH_STATE_SCRAM_VERIFIER,	/* OK with server-final sent */
	AUTH_STATE_DONE,
};

struct auth_sasl_scram {
	char snonce[AUTH_SCRAM_NONCE_MAX_BYTES + 1];
	struct buf gs2_header;		/* "n,," or "y,,a=...," */
	struct buf client_first_bare;
	struct buf server_first;
	struct buf nonce;		/* client nonce + server nonce */
	struct auth_scram_secrets secrets;
	bool fake;			/* unknown user: always fail */
	char *account;			/* lookup's name, until verified */
};

struct auth_sasl {
	enum auth_mech mech;
	enum auth_sasl_state state;
	auth_lookup_fn *lookup;
	void *ctx;
	struct auth_cache *cache;
	char *user;			/* authenticated account */
	char *attempted;		/* authcid the client sent */
	struct buf out;			/* current challenge */
	struct auth_sasl_scram scram;
};

static const struct {
	const char *name;
	enum auth_mech mech;
} auth_mechs[] = {
	{ "PLAIN", AUTH_MECH_PLAIN },
	{ "LOGIN", AUTH_MECH_LOGIN },
	{ "SCRAM-SHA-256", AUTH_MECH_SCRAM_SHA_256 },
};

struct auth_sasl *
auth_sasl_new(const char *mechanism, auth_lookup_fn *lookup, void *ctx,
	      struct auth_cache *cache)
{
	struct auth_sasl *s;
	size_t i, n = sizeof(auth_mechs) / sizeof(auth_mechs[0]);

	for (i = 0; i < n; i++) {
		if (strcasecmp(mechanism, auth_mechs[i].name) == 0)
			break;
	}
	if (i == n)
		return NULL;
	auth_init_or_panic();
	s = xcalloc(1, sizeof(*s));
	s->mech = auth_mechs[i].mech;
	s->lookup = lookup;
	s->ctx = ctx;
	s->cache = cache;
	buf_init(&s->out, AUTH_SASL_CHALLENGE_MAX_BYTES);
	buf_init(&s->scram.gs2_header, AUTH_SCRAM_MSG_MAX_BYTES);
	buf_init(&s->scram.client_first_bare, AUTH_SCRAM_MSG_MAX_BYTES);
	buf_init(&s->scram.server_first, AUTH_SASL_CHALLENGE_MAX_BYTES);
	buf_init(&s->scram.nonce, AUTH_SCRAM_MSG_MAX_BYTES);
	return s;
}

void
auth_sasl_free(struct auth_sasl **sp)
{
	struct auth_sasl *s = *sp;

	if (s == NULL)
		return;
	sodium_memzero(&s->scram.secrets, sizeof(s->scram.secrets));
	buf_free(&s->out);
	buf_free(&s->scram.gs2_header);
	buf_free(&s->scram.client_first_bare);
	buf_free(&s->scram.server_first);
	buf_free(&s->scram.nonce);
	free(s->scram.account);
	free(s->user);
	free(s->attempted);
	free(s);
	*sp = NULL;
}

const char *
auth_sasl_user(const struct auth_sasl *s)
{
	return s->user;
}

const char *
auth_sasl_attempted_user(const struct auth_sasl *s)
{
	return s->attempted;
}

int
auth_sasl_set_server_nonce(struct auth_sasl *s, const char *nonce)
{
	size_t len = strlen(nonce);

	if (s->mech != AUTH_MECH_SCRAM_SHA_256 ||
	    s->state != AUTH_STATE_START || len == 0 ||
	    len > AUTH_SCRAM_NONCE_MAX_BYTES)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (nonce[i] < 0x21 || nonce[i] > 0x7e || nonce[i] == ',')
			return -1;
	}
	memcpy(s->scram.snonce, nonce, len + 1);
	return 0;
}

/* ---- PLAIN (RFC 4616) ---------------------------------------------- */

static void
auth_sasl_set_attempted(struct auth_sasl *s, const char *user)
{
	char *copy;

	if (user == s->attempted)
		return;	/* LOGIN passes its own copy */
	copy = xstrdup(user);
	free(s->attempted);
	s->attempted = copy;
}

/* Check a plaintext password and the optional authzid; sets s->user. */
static enum auth_sasl_result
auth_sasl_plaintext(struct auth_sasl *s, const char *authzid,
		    const char *authcid, const char *pw, size_t pw_len)
{
	enum auth_sasl_result res;
	char *name;

	auth_sasl_set_attempted(s, authcid);
	res = auth_check_plaintext(authcid, pw, pw_len, s->lookup, s->ctx,
				   s->cache, &name);
	if (res != AUTH_SASL_OK)
		return res;
	/* No proxy authorization: authzid may only name the user itself. */
	if (authzid != NULL && authzid[0] != '\0' &&
	    strcmp(authzid, authcid) != 0 && strcmp(authzid, name) != 0) {
		free(name);
		return AUTH_SASL_FAIL;
	}
	s->user = name;
	return AUTH_SASL_OK;
}

static enum auth_sasl_result
auth_sasl_plain_parse(struct auth_sasl *s, const uint8_t *resp, size_t len)
{
	struct strview v = sv_make(resp, len), zid, cid;
	enum auth_sasl_result res;
	char *authzid, *authcid;

	if (len > AUTH_PLAIN_MAX_BYTES)
		return AUTH_SASL_BAD_PROTOCOL;
	if (sv_index(v, '\0') < 0)
		return AUTH_SASL_BAD_PROTOCOL;
	zid = sv_split(&v, '\0');
	if (sv_index(v, '\0') < 0)
		return AUTH_SASL_BAD_PROTOCOL;
	cid = sv_split(&v, '\0');
	/* v is now the password: it may not contain another NUL */
	if (zid.len > AUTH_USERNAME_MAX_BYTES || cid.len == 0 ||
	    cid.len > AUTH_USERNAME_MAX_BYTES ||
	    v.len > AUTH_PASSWORD_MAX_BYTES || sv_index(v, '\0') >= 0)
		return AUTH_SASL_BAD_PROTOCOL;
	authzid = sv_dup(zid);
	authcid = sv_dup(cid);
	res = auth_sasl_plaintext(s, authzid, authcid, v.p, v.len);
	free(authzid);
	free(authcid);
	return res;
}

static enum auth_sasl_result
auth_sasl_plain_step(struct auth_sasl *s, const uint8_t *resp, size_t len)
{
	if (s->state == AUTH_STATE_START && len == 0) {
		/* RFC 4422 5: no initial response, send an empty
		   challenge */
		s->state = AUTH_STATE_WAIT_INITIAL;
		return AUTH_SASL_CONTINUE;
	}
	s->state = AUTH_STATE_DONE;
	return auth_sasl_plain_parse(s, resp, len);
}

/* ---- LOGIN ----------------------------------------------------------- */

static enum auth_sasl_result
auth_sasl_login_user(struct auth_sasl *s, const uint8_t *resp, size_t len)
{
	struct strview v = sv_make(resp, len);

	if (len == 0 || len > AUTH_USERNAME_MAX_BYTES ||
	    sv_index(v, '\0') >= 0) {
		s->state = AUTH_STATE_DONE;
		return AUTH_SASL_BAD_PROTOCOL;
	}
	free(s->attempted);
	s->attempted = sv_dup(v);
	buf_append_str(&s->out, "Password:");
	s->state = AUTH_STATE_LOGIN_PASS;
	return AUTH_SASL_CONTINUE;
}

static enum auth_sasl_result
auth_sasl_login_step(struct auth_sasl *s, const uint8_t *resp, size_t len)
{
	switch (s->state) {
	case AUTH_STATE_START:
		/* Some clients send the username as an initial response. */
		if (len > 0)
			return auth_sasl_login_user(s, resp, len);
		buf_append_str(&s->out, "Username:");
		s->state = AUTH_STATE_LOGIN_USER;
		return AUTH_SASL_CONTINUE;
	case AUTH_STATE_LOGIN_USER:
		return auth_sasl_login_user(s, resp, len);
	case AUTH_STATE_LOGIN_PASS:
		s->state = AUTH_STATE_DONE;
		if (len > AUTH_PASSWORD_MAX_BYTES ||
		    memchr(resp, '\0', len) != NULL)
			return AUTH_SASL_BAD_PROTOCOL;
		return auth_sasl_plaintext(s, NULL, s->attempted,
					   (const char *)resp, len);
	default:
		s->state = AUTH_STATE_DONE;
		return AUTH_SASL_BAD_PROTOCOL;
	}
}

/* ---- SCRAM-SHA-256 (RFC 5802, RFC 7677) ------------------------------ */

/* RFC 5802 5.1 saslname: "=2C" is ',', "=3D" is '=', no other '=' and no
   NUL. Decodes v (up to ',') into a new string; NULL when malformed. */
static char *
auth_scram_saslname(struct strview v)
{
	struct buf b;
	size_t i;

	buf_init(&b, AUTH_USERNAME_MAX_BYTES);
	for (i = 0; i < v.len; i++) {
		char c = v.p[i];

		if (c == '=') {
			if (v.len - i < 3)
				break;
			if (memcmp(v.p + i, "=2C", 3) == 0)
				c = ',';
			else if (memcmp(v.p + i, "=3D", 3) == 0)
				c = '=';
			else
				break;
			i += 2;
		} else if (c == '\0') {
			break;
		}
		if (buf_append_byte(&b, (uint8_t)c) < 0)
			break;
	}
	if (i < v.len || b.len == 0 ||
	    !auth_saslprep_ok(b.data, b.len)) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

/* RFC 5802 7: printable = %x21-2B / %x2D-7E */
static bool
auth_scram_nonce_ok(struct strview v)
{
	if (v.len == 0)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < 0x21 || v.p[i] > 0x7e || v.p[i] == ',')
			return false;
	}
	return true;
}

/* Parse the GS2 header (RFC 5802 7: gs2-header) off *v into the state.
   *authzid_r: "a=" value or NULL. */
static enum auth_sasl_result
auth_scram_gs2(struct auth_sasl *s, struct strview *v, char **authzid_r)
{
	const char *start = v->p;
	struct strview flag, zid;

	*authzid_r = NULL;
	flag = sv_split(v, ',');
	if (flag.len >= 2 && flag.p[0] == 'p' && flag.p[1] == '=')
		return AUTH_SASL_FAIL;	/* channel binding: not offered */
	if (flag.len != 1 || (flag.p[0] != 'n' && flag.p[0] != 'y'))
		return AUTH_SASL_BAD_PROTOCOL;
	if (sv_index(*v, ',') < 0)
		return AUTH_SASL_BAD_PROTOCOL;
	zid = sv_split(v, ',');
	if (zid.len > 0) {
		if (zid.len < 3 || zid.p[0] != 'a' || zid.p[1] != '=')
			return AUTH_SASL_BAD_PROTOCOL;
		*authzid_r = auth_scram_saslname(sv_make(zid.p + 2,
							 zid.len - 2));
		if (*authzid_r == NULL)
			return AUTH_SASL_BAD_PROTOCOL;
	}
	buf_append(&s->scram.gs2_header, start, (size_t)(v->p - start));
	return AUTH_SASL_CONTINUE;
}

/* client-first-message-bare: "n=" saslname ",r=" c-nonce ["," ext]. */
static enum auth_sasl_result
auth_scram_bare(struct auth_sasl *s, struct strview v, char **user_r)
{
	struct strview name, nonce;

	*user_r = NULL;
	if (buf_append(&s->scram.client_first_bare, v.p, v.len) < 0)
		return AUTH_SASL_BAD_PROTOCOL;
	if (v.len >= 2 && v.p[0] == 'm' && v.p[1] == '=')
		return AUTH_SASL_FAIL;	/* RFC 5802 5.1: unknown mext */
	name = sv_split(&v, ',');
	nonce = sv_split(&v, ',');
	if (name.len < 3 || name.p[0] != 'n' || name.p[1] != '=' ||
	    nonce.len < 3 || nonce.p[0] != 'r' || nonce.p[1] != '=')
		return AUTH_SASL_BAD_PROTOCOL;
	sv_skip(&nonce, 2);
	if (!auth_scram_nonce_ok(nonce) ||
	    nonce.len > AUTH_SCRAM_MSG_MAX_BYTES / 2)
		return AUTH_SASL_BAD_PROTOCOL;
	*user_r = auth_scram_saslname(sv_make(name.p + 2, name.len - 2));
	if (*user_r == NULL)
		return AUTH_SASL_BAD_PROTOCOL;
	/* Any further ",ext=value" attributes are ignored (RFC 5802 7). */
	buf_append(&s->scram.nonce, nonce.p, nonce.len);
	return AUTH_SASL_CONTINUE;
}

/* Look the user up; unknown users and users without usable secrets get
   fake secrets, so the exchange looks the same and fails at the end. */
static enum auth_sasl_result
auth_scram_lookup(struct auth_sasl *s, const char *username)
{
	struct auth_user user;
	int ret;

	memset(&user, 0, sizeof(user));
	ret = s->lookup(s->ctx, username, &user);
	if (ret < 0) {
		auth_user_clear(&user);
		return AUTH_SASL_TEMPFAIL;
	}
	if (ret == 0 || user.name == NULL || user.scram_secrets == NULL ||
	    auth_scram_secrets_parse(user.scram_secrets,
				     &s->scram.secrets) < 0) {
		s->scram.fake = true;
		auth_scram_secrets_fake(username, &s->scram.secrets);
	} else {
		s->scram.account = xstrdup(user.name);
	}
	auth_user_clear(&user);
	return AUTH_SASL_CONTINUE;
}

static void
auth_scram_make_snonce(struct auth_sasl *s)
{
	uint8_t raw[AUTH_SCRAM_SNONCE_RAW_BYTES];
	struct buf b;

	if (s->scram.snonce[0] != '\0')
		return;
	randombytes_buf(raw, sizeof(raw));
	buf_init(&b, AUTH_SCRAM_NONCE_MAX_BYTES);
	/* 18 bytes -> 24 base64 characters, none of them ',' */
	(void)base64_encode(&b, raw, sizeof(raw));
	memcpy(s->scram.snonce, b.data, b.len + 1);
	buf_free(&b);
}

static enum auth_sasl_result
auth_scram_server_first(struct auth_sasl *s)
{
	struct buf *sf = &s->scram.server_first;
	int ret = 0;

	auth_scram_make_snonce(s);
	ret |= buf_append_str(&s->scram.nonce, s->scram.snonce);
	ret |= buf_append_str(sf, "r=");
	ret |= buf_append(sf, s->scram.nonce.data, s->scram.nonce.len);
	ret |= buf_append_str(sf, ",s=");
	ret |= base64_encode(sf, s->scram.secrets.salt,
			     s->scram.secrets.salt_len);
	ret |= buf_printf(sf, ",i=%u", s->scram.secrets.iterations);
	ret |= buf_append(&s->out, sf->data, sf->len);
	if (ret != 0)
		return AUTH_SASL_BAD_PROTOCOL;
	s->state = AUTH_STATE_SCRAM_FINAL;
	return AUTH_SASL_CONTINUE;
}

static enum auth_sasl_result
auth_scram_client_first(struct auth_sasl *s, const uint8_t *resp,
			size_t len)
{
	struct strview v = sv_make(resp, len);
	enum auth_sasl_result res;
	char *authzid = NULL, *user = NULL;

	if (len == 0 || len > AUTH_SCRAM_MSG_MAX_BYTES ||
	    sv_index(v, '\0') >= 0)
		return AUTH_SASL_BAD_PROTOCOL;
	res = auth_scram_gs2(s, &v, &authzid);
	if (res == AUTH_SASL_CONTINUE)
		res = auth_scram_bare(s, v, &user);
	if (res == AUTH_SASL_CONTINUE) {
		auth_sasl_set_attempted(s, user);
		/* No proxy authorization (RFC 5802 5.1 "a="). */
		if (authzid != NULL && strcmp(authzid, user) != 0)
			res = AUTH_SASL_FAIL;
	}
	if (res == AUTH_SASL_CONTINUE)
		res = auth_scram_lookup(s, user);
	if (res == AUTH_SASL_CONTINUE)
		res = auth_scram_server_first(s);
	free(authzid);
	free(user);
	return res;
}

/* Split "c=...,r=...[,ext],p=proof": *without_r is everything before
   ",p=". Checks c= and r= against the exchange so far. */
static enum auth_sasl_result
auth_scram_final_parse(struct auth_sasl *s, struct strview msg,
		       struct strview *without_r, struct strview *proof_r)
{
	struct strview v, cb, nonce;
	struct buf cb_expect;
	bool cb_ok;
	size_t i;

	for (i = msg.len; i >= 3; i--) {
		if (memcmp(msg.p + i - 3, ",p=", 3) == 0)
			break;
	}
	if (i < 3)
		return AUTH_SASL_BAD_PROTOCOL;
	*without_r = sv_make(msg.p, i - 3);
	*proof_r = sv_make(msg.p + i, msg.len - i);
	if (sv_index(*proof_r, ',') >= 0)
		return AUTH_SASL_BAD_PROTOCOL;
	v = *without_r;
	cb = sv_split(&v, ',');
	nonce = sv_split(&v, ',');
	if (cb.len < 2 || memcmp(cb.p, "c=", 2) != 0 || nonce.len < 2 ||
	    memcmp(nonce.p, "r=", 2) != 0)
		return AUTH_SASL_BAD_PROTOCOL;
	sv_skip(&cb, 2);
	sv_skip(&nonce, 2);
	/* RFC 5802 7: c= is base64(gs2-header), no cbind-data for n/y */
	buf_init(&cb_expect, AUTH_SCRAM_MSG_MAX_BYTES * 2);
	(void)base64_encode(&cb_expect, s->scram.gs2_header.data,
			    s->scram.gs2_header.len);
	cb_ok = sv_eq(cb, sv_make(cb_expect.data, cb_expect.len));
	buf_free(&cb_expect);
	if (!cb_ok || !sv_eq(nonce, sv_make(s->scram.nonce.data,
					      s->scram.nonce.len)))
		return AUTH_SASL_FAIL;
	return AUTH_SASL_CONTINUE;
}

/* AuthMessage = client-first-message-bare "," server-first-message ","
   client-final-message-without-proof (RFC 5802 3). */
static int
auth_scram_auth_message(struct auth_sasl *s, struct strview without,
			struct buf *am)
{
	int ret = 0;

	ret |= buf_append(am, s->scram.client_first_bare.data,
			  s->scram.client_first_bare.len);
	ret |= buf_append_byte(am, ',');
	ret |= buf_append(am, s->scram.server_first.data,
			  s->scram.server_first.len);
	ret |= buf_append_byte(am, ',');
	ret |= buf_append(am, without.p, without.len);
	return ret;
}

/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof is
   valid when H(ClientKey) == StoredKey. 1 valid, 0 not, -1 error. */
static int
auth_scram_check_proof(const struct auth_scram_secrets *sec,
		       const struct buf *am,
		       const uint8_t proof[AUTH_SHA256_LEN])
{
	uint8_t sig[AUTH_SHA256_LEN], key[AUTH_SHA256_LEN];
	int ret = -1;

	if (auth_hmac_sha256(sec->stored_key, AUTH_SHA256_LEN, am->data,
			     am->len, sig) < 0)
		goto out;
	for (size_t i = 0; i < AUTH_SHA256_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	if (auth_sha256(key, sizeof(key), sig) < 0)
		goto out;
	ret = sodium_memcmp(sig, sec->stored_key, AUTH_SHA256_LEN) == 0;
out:
	sodium_memzero(key, sizeof(key));
	return ret;
}

static enum auth_sasl_result
auth_scram_verify(struct auth_sasl *s, struct strview without,
		  struct strview proof_b64)
{
	uint8_t proof[AUTH_SHA256_LEN], sig[AUTH_SHA256_LEN];
	struct buf am, p;
	int ok;

	buf_init(&p, AUTH_SHA256_LEN);
	ok = base64_decode(&p, proof_b64.p, proof_b64.len) == 0 &&
		p.len == AUTH_SHA256_LEN;
	if (ok)
		memcpy(proof, p.data, AUTH_SHA256_LEN);
	buf_free(&p);
	if (!ok)
		return AUTH_SASL_BAD_PROTOCOL;
	buf_init(&am, AUTH_SCRAM_MSG_MAX_BYTES * 2 +
			      AUTH_SASL_CHALLENGE_MAX_BYTES + 2);
	ok = auth_scram_auth_message(s, without, &am) == 0 ?
		auth_scram_check_proof(&s->scram.secrets, &am, proof) : -1;
	if (ok == 1 && !s->scram.fake &&
	    auth_hmac_sha256(s->scram.secrets.server_key, AUTH_SHA256_LEN,
			     am.data, am.len, sig) == 0 &&
	    buf_append_str(&s->out, "v=") == 0 &&
	    base64_encode(&s->out, sig, sizeof(sig)) == 0) {
		buf_free(&am);
		s->user = xstrdup(s->scram.account);
		return AUTH_SASL_OK;
	}
	buf_free(&am);
	buf_reset(&s->out);
	return ok < 0 ? AUTH_SASL_TEMPFAIL : AUTH_SASL_FAIL;
}

static enum auth_sasl_result
auth_scram_client_final(struct auth_sasl *s, const uint8_t *resp,
			size_t len)
{
	struct strview msg = sv_make(resp, len), without, proof;
	enum auth_sasl_result res;

	if (len > AUTH_SCRAM_MSG_MAX_BYTES || sv_index(msg, '\0') >= 0)
		return AUTH_SASL_BAD_PROTOCOL;
	res = auth_scram_final_parse(s, msg, &without, &proof);
	if (res != AUTH_SASL_CONTINUE)
		return res;
	return auth_scram_verify(s, without, proof);
}

static enum auth_sasl_result
auth_sasl_scram_step(struct auth_sasl *s, const uint8_t *resp, size_t len)
{
	enum auth_sasl_result res;

	switch (s->state) {
	case AUTH_STATE_START:
		/* RFC 5802 5: the client speaks first; with no initial
		   response, send an empty challenge and wait for it. */
		if (len == 0) {
			s->state = AUTH_STATE_WAIT_INITIAL;
			return AUTH_SASL_CONTINUE;
		}
		/* fall through */
	case AUTH_STATE_WAIT_INITIAL:
		res = auth_scram_client_first(s, resp, len);
		break;
	case AUTH_STATE_SCRAM_FINAL:
		res = auth_scram_client_final(s, resp, len);
		if (res == AUTH_SASL_OK) {
			s->state = AUTH_STATE_SCRAM_VERIFIER;
			return res;
		}
		break;
	case AUTH_STATE_SCRAM_VERIFIER:
		/* The protocol sent v= as a challenge: the client answers
		   with an empty response (RFC 5802 5, RFC 4422 5). */
		res = len == 0 ? AUTH_SASL_OK : AUTH_SASL_BAD_PROTOCOL;
		break;
	default:
		res = AUTH_SASL_BAD_PROTOCOL;
		break;
	}
	if (res != AUTH_SASL_CONTINUE)
		s->state = AUTH_STATE_DONE;
	return res;
}

/* ---- dispatch -------------------------------------------------------- */

enum auth_sasl_result
auth_sasl_step(struct auth_sasl *s, const uint8_t *resp, size_t resp_len,
	       const uint8_t **challenge_r, size_t *challenge_len_r)
{
	enum auth_sasl_result res;
	bool was_verifier = s->state == AUTH_STATE_SCRAM_VERIFIER;

	buf_reset(&s->out);
	if (s->state == AUTH_STATE_DONE) {
		res = AUTH_SASL_BAD_PROTOCOL;
	} else if (s->mech == AUTH_MECH_PLAIN) {
		res = auth_sasl_plain_step(s, resp, resp_len);
	} else if (s->mech == AUTH_MECH_LOGIN) {
		res = auth_sasl_login_step(s, resp, resp_len);
	} else {
		res = auth_sasl_scram_step(s, resp, resp_len);
	}
	if (res != AUTH_SASL_OK && res != AUTH_SASL_CONTINUE) {
		free(s->user);
		s->user = NULL;
	}
	if ((res != AUTH_SASL_CONTINUE && res != AUTH_SASL_OK) ||
	    was_verifier)
		buf_reset(&s->out);
	*challenge_r = s->out.data != NULL ? s->out.data :
		(const uint8_t *)"";
	*challenge_len_r = s->out.len;
	return res;
}
