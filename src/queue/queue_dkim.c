/* DKIM signing of outbound mail: RFC 6376 3.4.2 and 3.4.4 (relaxed
   header and body canonicalisation), 3.5 (the DKIM-Signature tags),
   3.7 (the hash: body hash bh=, then the signed header fields and the
   signature header itself with an empty b=, without its final CRLF),
   5.4.2 (several instances of a field are signed bottom-up; naming a
   field once more than it occurs "oversigns" it, so an added From
   breaks the signature), RFC 8301 (rsa-sha256, keys of 1024 bits and
   more) and RFC 8463 (ed25519-sha256: PureEd25519 over the SHA-256 of
   the data). The canonicalisers and the header builder are pure; the
   OpenSSL part only loads keys and signs. Line ends are taken as the
   SMTP client sends them: a bare LF becomes CRLF on the wire (queue_body
   dot-stuffing), so it ends a line here too. The message is untrusted:
   field counts and the signed data are bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lib/base64.h"
#include "lib/xalloc.h"
#include "mime/mime.h"
#include "queue/queue_int.h"

struct queue_dkim_key {
	EVP_PKEY *pkey;
	bool ed25519;
	char domain[QUEUE_DOMAIN_MAX_BYTES + 1];
	char selector[STORE_DKIM_SELECTOR_MAX + 1];
};

/* RFC 6376 5.4.1 lists these as the fields to sign; From is required. */
static const char *const queue_dkim_names[] = {
	"from", "to", "cc", "subject", "date", "message-id", "reply-to",
	"in-reply-to", "references", "mime-version", "content-type",
	"content-transfer-encoding",
};
#define QUEUE_DKIM_NAMES_COUNT \
	(sizeof(queue_dkim_names) / sizeof(queue_dkim_names[0]))

static bool
queue_dkim_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* ---- relaxed body canonicalisation (RFC 6376 3.4.4), streaming ---- */

void
queue_dkim_body_init(struct queue_dkim_body *b, queue_dkim_out_fn *out,
		     void *ctx)
{
	memset(b, 0, sizeof(*b));
	b->out = out;
	b->ctx = ctx;
}

/* A byte that is not a line end or WSP: flush the empty lines held
   back (they were not trailing after all) and a pending space. */
static int
queue_dkim_body_char(struct queue_dkim_body *b, uint8_t c)
{
	for (; b->empty_lines > 0; b->empty_lines--) {
		if (b->out(b->ctx, "\r\n", 2) < 0)
			return -1;
	}
	if (b->wsp && b->out(b->ctx, " ", 1) < 0)
		return -1;
	b->wsp = false;
	b->any = true;
	return b->out(b->ctx, &c, 1);
}

/* End of line: trailing WSP is dropped; the CRLF is held back until
   something follows, so empty lines at the end disappear. */
static void
queue_dkim_body_eol(struct queue_dkim_body *b)
{
	b->wsp = false;
	b->empty_lines++;
}

int
queue_dkim_body_feed(struct queue_dkim_body *b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				queue_dkim_body_eol(b);
				continue;
			}
			/* A bare CR is an ordinary byte. */
			if (queue_dkim_body_char(b, '\r') < 0)
				return -1;
		}
		if (c == '\r')
			b->cr = true;
		else if (c == '\n')
			queue_dkim_body_eol(b);
		else if (queue_dkim_wsp(c))
			b->wsp = true;
		else if (queue_dkim_body_char(b, c) < 0)
			return -1;
	}
	return 0;
}

int
queue_dkim_body_finish(struct queue_dkim_body *b)
{
	/* The client ends a last CR or unterminated line with CRLF. An
	   empty body stays empty (RFC 6376 errata 3192), else it ends with
	   exactly one CRLF. */
	b->cr = false;
	b->wsp = false;
	b->empty_lines = 0;
	return b->any ? b->out(b->ctx, "\r\n", 2) : 0;
}

/* ---- header fields ---- */

/* Length of the line end at p[i] (LF or CRLF), 0 when none. */
static size_t
queue_dkim_eol_at(const uint8_t *p, size_t len, size_t i)
{
	if (i < len && p[i] == '\n')
		return 1;
	if (i + 1 < len && p[i] == '\r' && p[i + 1] == '\n')
		return 2;
	return 0;
}

int
queue_dkim_fields(const uint8_t *msg, size_t len, struct queue_dkim_field *f,
		  size_t max, size_t *count_r, size_t *body_off_r)
{
	size_t pos = 0, n = 0;

	while (pos < len) {
		size_t e = queue_dkim_eol_at(msg, len, pos), end;
		const uint8_t *lf;
		if (e > 0) {
			pos += e; /* the empty line: the body follows */
			break;
		}
		lf = memchr(msg + pos, '\n', len - pos);
		end = lf != NULL ? (size_t)(lf - msg) : len;
		if (queue_dkim_wsp(msg[pos]) && n > 0) {
			/* continuation line (RFC 5322 2.2.3) */
			f[n - 1].len = end - f[n - 1].off;
		} else {
			if (n == max)
				return -1;
			f[n].off = pos;
			f[n].len = end - pos;
			n++;
		}
		pos = lf != NULL ? end + 1 : len;
	}
	/* Drop the CR of each field's final CRLF (a last CR without LF
	   gets its LF from the client, so it is a line end too). */
	for (size_t i = 0; i < n; i++) {
		if (f[i].len > 0 && msg[f[i].off + f[i].len - 1] == '\r')
			f[i].len--;
	}
	*count_r = n;
	*body_off_r = pos;
	return 0;
}

/* Does field (bytes p[0..n)) have this name (case-insensitive)? */
static bool
queue_dkim_field_is(const uint8_t *p, size_t n, const char *name)
{
	size_t nl = strlen(name), i = nl;

	if (n < nl || strncasecmp((const char *)p, name, nl) != 0)
		return false;
	while (i < n && queue_dkim_wsp(p[i]))
		i++;
	return i < n && p[i] == ':';
}

int
queue_dkim_canon_header(const uint8_t *p, size_t n, struct buf *out)
{
	const uint8_t *colon = memchr(p, ':', n);
	size_t nl, i, mark;
	bool wsp = false;

	if (colon == NULL)
		return 0; /* not a field: never selected */
	nl = (size_t)(colon - p);
	while (nl > 0 && queue_dkim_wsp(p[nl - 1]))
		nl--;
	for (i = 0; i < nl; i++) {
		uint8_t c = p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i];
		if (buf_append_byte(out, c) < 0)
			return -1;
	}
	if (buf_append_byte(out, ':') < 0)
		return -1;
	mark = out->len;
	for (i = (size_t)(colon - p) + 1; i < n; i++) {
		uint8_t c = p[i];
		/* Unfold: CRLF (or LF) before WSP is removed. */
		if (c == '\n' || (c == '\r' && i + 1 < n && p[i + 1] == '\n'))
			continue;
		if (queue_dkim_wsp(c)) {
			wsp = true;
			continue;
		}
		if (wsp && out->len > mark && buf_append_byte(out, ' ') < 0)
			return -1;
		wsp = false;
		if (buf_append_byte(out, c) < 0)
			return -1;
	}
	return buf_append_str(out, "\r\n");
}

size_t
queue_dkim_select(const uint8_t *msg, const struct queue_dkim_field *f,
		  size_t count, const char **names_r, size_t max)
{
	size_t n = 0;

	for (size_t k = 0; k < QUEUE_DKIM_NAMES_COUNT; k++) {
		const char *name = queue_dkim_names[k];
		size_t times = k == 0 ? 1 : 0; /* From once more: oversign */
		for (size_t i = 0; i < count; i++) {
			if (queue_dkim_field_is(msg + f[i].off, f[i].len, name))
				times++;
		}
		if (k == 0 && times == 1)
			return 0; /* RFC 6376 5.4: From must be signed */
		for (; times > 0 && n < max; times--)
			names_r[n++] = name;
	}
	return n;
}

/* The instance of name used for its nth (0-based) mention in h=,
   counted from the bottom; -1 when there is none (it then adds
   nothing, RFC 6376 5.4.2). */
static ssize_t
queue_dkim_instance(const uint8_t *msg, const struct queue_dkim_field *f,
		    size_t count, const char *name, size_t nth)
{
	for (size_t i = count; i > 0; i--) {
		if (!queue_dkim_field_is(msg + f[i - 1].off, f[i - 1].len,
					 name))
			continue;
		if (nth-- == 0)
			return (ssize_t)(i - 1);
	}
	return -1;
}

int
queue_dkim_signed_data(const uint8_t *msg, const struct queue_dkim_field *f,
		       size_t count, const char *const *names,
		       size_t name_count, const uint8_t *sighdr,
		       size_t sighdr_len, struct buf *out)
{
	for (size_t j = 0; j < name_count; j++) {
		size_t nth = 0;
		ssize_t i;
		for (size_t k = 0; k < j; k++) {
			if (strcasecmp(names[k], names[j]) == 0)
				nth++;
		}
		i = queue_dkim_instance(msg, f, count, names[j], nth);
		if (i >= 0 && queue_dkim_canon_header(msg + f[i].off,
						      f[i].len, out) < 0)
			return -1;
	}
	/* RFC 6376 3.7: the signature field itself, without its CRLF. */
	if (queue_dkim_canon_header(sighdr, sighdr_len, out) < 0)
		return -1;
	out->len -= 2;
	return 0;
}

/* ---- the DKIM-Signature field ---- */

/* Append s, folding first when the line would pass 76 columns. */
static int
queue_dkim_fold(struct buf *out, size_t *col, const char *s)
{
	size_t n = strlen(s);

	if (*col > 1 && *col + n > 76) {
		if (buf_append_str(out, "\r\n\t") < 0)
			return -1;
		*col = 1;
		if (s[0] == ' ') {
			s++;
			n--;
		}
	}
	*col += n;
	return buf_append(out, s, n);
}

int
queue_dkim_header_build(const struct queue_dkim_sig *sig, struct buf *out)
{
	char tag[QUEUE_DOMAIN_MAX_BYTES + 16];
	size_t col = 0;
	int r = 0;

	r |= queue_dkim_fold(out, &col, "DKIM-Signature: v=1;");
	snprintf(tag, sizeof(tag), " a=%s;", sig->algorithm);
	r |= queue_dkim_fold(out, &col, tag);
	r |= queue_dkim_fold(out, &col, " c=relaxed/relaxed;");
	snprintf(tag, sizeof(tag), " d=%s;", sig->domain);
	r |= queue_dkim_fold(out, &col, tag);
	snprintf(tag, sizeof(tag), " s=%s;", sig->selector);
	r |= queue_dkim_fold(out, &col, tag);
	snprintf(tag, sizeof(tag), " t=%lld;", (long long)sig->time);
	r |= queue_dkim_fold(out, &col, tag);
	for (size_t i = 0; i < sig->name_count; i++) {
		snprintf(tag, sizeof(tag), "%s%s%s", i == 0 ? " h=" : "",
			 sig->names[i], i + 1 < sig->name_count ? ":" : ";");
		r |= queue_dkim_fold(out, &col, tag);
	}
	snprintf(tag, sizeof(tag), " bh=%s;", sig->bh);
	r |= queue_dkim_fold(out, &col, tag);
	r |= buf_append_str(out, "\r\n\tb=");
	return r < 0 ? -1 : 0;
}

int
queue_dkim_header_finish(struct buf *hdr, const char *b64)
{
	size_t n = strlen(b64), off = 0;

	while (off < n) {
		size_t k = n - off > 72 ? 72 : n - off;
		if ((off > 0 && buf_append_str(hdr, "\r\n\t ") < 0) ||
		    buf_append(hdr, b64 + off, k) < 0)
			return -1;
		off += k;
	}
	return buf_append_str(hdr, "\r\n");
}

/* ---- which domain signs ---- */

/* The domain of the first mailbox in the From field, lowercase. */
static int
queue_dkim_from_domain(const uint8_t *msg, size_t len, char *out, size_t max)
{
	char addr[QUEUE_DOMAIN_MAX_BYTES + 3];
	struct mime_address_list list;
	struct buf from;
	int r = -1;

	buf_init(&from, QUEUE_DKIM_FROM_MAX_BYTES);
	if (mime_header_get(msg, len, "From", &from) != 1) {
		buf_free(&from);
		return -1;
	}
	mime_address_parse((const char *)from.data, from.len, &list);
	for (size_t i = 0; i < list.count; i++) {
		const struct mime_address *a = &list.addrs[i];
		if (a->kind != MIME_ADDRESS_MAILBOX || a->domain == NULL ||
		    a->invalid || a->mailbox == NULL)
			continue;
		/* queue_route_domain lowercases and checks the length. */
		snprintf(addr, sizeof(addr), "x@%s", a->domain);
		r = queue_route_domain(addr, out, max);
		break;
	}
	mime_address_list_free(&list);
	buf_free(&from);
	return r;
}

int
queue_dkim_domain(const uint8_t *msg, size_t len, const char *sender,
		  const char *hostname, char *out, size_t max)
{
	char from[QUEUE_DOMAIN_MAX_BYTES + 1] = "";
	char env[QUEUE_DOMAIN_MAX_BYTES + 1] = "";

	(void)queue_dkim_from_domain(msg, len, from, sizeof(from));
	if (sender[0] != '\0')
		(void)queue_route_domain(sender, env, sizeof(env));
	/* The From domain (what DMARC aligns with) only when the envelope
	   sender, which submission checked, is in it: a user of one hosted
	   domain must not get mail signed as another. Bounces (null
	   sender) are ours when they come from our host name. */
	if (from[0] != '\0' &&
	    (strcmp(from, env) == 0 ||
	     (env[0] == '\0' && hostname != NULL &&
	      strcasecmp(from, hostname) == 0)))
		snprintf(out, max, "%s", from);
	else if (env[0] != '\0')
		snprintf(out, max, "%s", env);
	else
		return -1;
	return 0;
}

/* ---- OpenSSL: keys, hashes, signatures ---- */

struct queue_dkim_key *
queue_dkim_key_load(const struct store_dkim_key *k, const char **error_r)
{
	struct queue_dkim_key *key;
	BIO *bio;
	EVP_PKEY *pkey;

	bio = BIO_new_mem_buf(k->private_key, -1);
	pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
			   : NULL;
	BIO_free(bio);
	if (pkey == NULL) {
		*error_r = "cannot parse the private key";
		return NULL;
	}
	key = xcalloc(1, sizeof(*key));
	key->pkey = pkey;
	key->ed25519 = EVP_PKEY_is_a(pkey, "ED25519");
	if (key->ed25519 != (strcmp(k->algorithm, "ed25519-sha256") == 0) ||
	    (!key->ed25519 && !EVP_PKEY_is_a(pkey, "RSA"))) {
		queue_dkim_key_free(&key);
		*error_r = "the private key does not match its algorithm";
		return NULL;
	}
	snprintf(key->domain, sizeof(key->domain), "%s", k->domain);
	snprintf(key->selector, sizeof(key->selector), "%s", k->selector);
	return key;
}

void
queue_dkim_key_free(struct queue_dkim_key **kp)
{
	if (*kp == NULL)
		return;
	EVP_PKEY_free((*kp)->pkey);
	free(*kp);
	*kp = NULL;
}

const char *
queue_dkim_key_domain(const struct queue_dkim_key *key)
{
	return key->domain;
}

static int
queue_dkim_digest_out(void *ctx, const void *data, size_t len)
{
	return EVP_DigestUpdate(ctx, data, len) == 1 ? 0 : -1;
}

int
queue_dkim_body_hash(const uint8_t *body, size_t len, struct buf *b64_out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct queue_dkim_body canon;
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hlen = 0;
	int r = -1;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	queue_dkim_body_init(&canon, queue_dkim_digest_out, md);
	if (queue_dkim_body_feed(&canon, body, len) < 0 ||
	    queue_dkim_body_finish(&canon) < 0 ||
	    EVP_DigestFinal_ex(md, h, &hlen) != 1)
		goto out;
	r = base64_encode(b64_out, h, hlen);
out:
	EVP_MD_CTX_free(md);
	return r;
}

int
queue_dkim_sign_data(const struct queue_dkim_key *key, const uint8_t *data,
		     size_t len, struct buf *b64_out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char h[32], sig[1024];
	size_t siglen = sizeof(sig);
	int r = -1;

	if (md == NULL)
		return -1;
	if (key->ed25519) {
		/* RFC 8463 3: Ed25519 signs the SHA-256 hash of the data. */
		if (EVP_Digest(data, len, h, NULL, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestSignInit(md, NULL, NULL, NULL, key->pkey) != 1 ||
		    EVP_DigestSign(md, sig, &siglen, h, sizeof(h)) != 1)
			goto out;
	} else if (EVP_PKEY_get_size(key->pkey) > (int)sizeof(sig) ||
		   EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
				      key->pkey) != 1 ||
		   EVP_DigestSign(md, sig, &siglen, data, len) != 1) {
		goto out;
	}
	r = base64_encode(b64_out, sig, siglen);
out:
	EVP_MD_CTX_free(md);
	return r;
}

/* The part of queue_dkim_sign after the header is split. */
static int
queue_dkim_sign_fields(const struct queue_dkim_key *key, const uint8_t *msg,
		       const struct queue_dkim_field *f, size_t count,
		       struct queue_dkim_sig *sig, struct buf *out,
		       const char **error_r)
{
	struct buf data, b64;
	size_t start = out->len;
	int r = -1;

	buf_init(&data, QUEUE_DKIM_DATA_MAX_BYTES);
	buf_init(&b64, 2048);
	if (queue_dkim_header_build(sig, out) < 0) {
		*error_r = "signature header too long";
	} else if (queue_dkim_signed_data(msg, f, count, sig->names,
					  sig->name_count, out->data + start,
					  out->len - start, &data) < 0) {
		*error_r = "signed header fields too long";
	} else if (queue_dkim_sign_data(key, data.data, data.len, &b64) < 0 ||
		   buf_append_byte(&b64, 0) < 0) {
		*error_r = "signing failed";
	} else if (queue_dkim_header_finish(out, (const char *)b64.data) < 0) {
		*error_r = "signature header too long";
	} else {
		r = 0;
	}
	buf_free(&data);
	buf_free(&b64);
	return r;
}

int
queue_dkim_sign(const struct queue_dkim_key *key, const uint8_t *msg,
		size_t len, int64_t now, struct buf *out, const char **error_r)
{
	struct queue_dkim_field *f;
	const char *names[QUEUE_DKIM_SIGNED_MAX];
	struct queue_dkim_sig sig;
	struct buf bh;
	size_t count, body_off;
	int r = -1;

	f = xreallocarray(NULL, QUEUE_DKIM_FIELDS_MAX, sizeof(*f));
	buf_init(&bh, 64);
	memset(&sig, 0, sizeof(sig));
	if (queue_dkim_fields(msg, len, f, QUEUE_DKIM_FIELDS_MAX, &count,
			      &body_off) < 0) {
		*error_r = "too many header fields";
		goto out;
	}
	sig.names = names;
	sig.name_count = queue_dkim_select(msg, f, count, names,
					   QUEUE_DKIM_SIGNED_MAX);
	if (sig.name_count == 0) {
		*error_r = "no From header field";
		goto out;
	}
	if (queue_dkim_body_hash(msg + body_off, len - body_off, &bh) < 0 ||
	    buf_append_byte(&bh, 0) < 0) {
		*error_r = "body hash failed";
		goto out;
	}
	sig.algorithm = key->ed25519 ? "ed25519-sha256" : "rsa-sha256";
	sig.domain = key->domain;
	sig.selector = key->selector;
	sig.time = now;
	sig.bh = (const char *)bh.data;
	r = queue_dkim_sign_fields(key, msg, f, count, &sig, out, error_r);
out:
	buf_free(&bh);
	free(f);
	return r;
}
