/* Modified UTF-7 for mailbox names (RFC 3501 5.1.3, RFC 9051 5.1.3 for
   clients without UTF8=ACCEPT): printable ASCII stands for itself, "&" is
   "&-", anything else is "&" + modified BASE64 of UTF-16BE + "-".
   Decoding is strict, as Dovecot's: no "&" run encoding printable ASCII,
   no two adjacent runs, zero padding bits, valid surrogate pairs; so each
   name has exactly one wire form. Also a strict UTF-8 validator. */
#include <string.h>

#include "imap/imap_int.h"

static const char imap_mutf7_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Decode one UTF-8 sequence at s[0..len): code point and its length, or
   0 for invalid (overlong, surrogates, > U+10FFFF, truncated). */
static size_t
imap_utf8_next(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

bool
imap_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = imap_utf8_next(u + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

struct imap_b64_state {
	uint32_t bits;
	unsigned nbits;
	bool open;
};

static int
imap_mutf7_unit(struct buf *out, struct imap_b64_state *st, uint16_t unit)
{
	if (!st->open) {
		if (buf_append_byte(out, '&') < 0)
			return -1;
		st->open = true;
	}
	st->bits = (st->bits << 16) | unit;
	st->nbits += 16;
	while (st->nbits >= 6) {
		st->nbits -= 6;
		if (buf_append_byte(out, (uint8_t)imap_mutf7_b64[
			    (st->bits >> st->nbits) & 0x3f]) < 0)
			return -1;
	}
	st->bits &= (1u << st->nbits) - 1;
	return 0;
}

static int
imap_mutf7_close(struct buf *out, struct imap_b64_state *st)
{
	if (!st->open)
		return 0;
	if (st->nbits > 0 &&
	    buf_append_byte(out, (uint8_t)imap_mutf7_b64[
		    (st->bits << (6 - st->nbits)) & 0x3f]) < 0)
		return -1;
	st->bits = 0;
	st->nbits = 0;
	st->open = false;
	return buf_append_byte(out, '-');
}

int
imap_mutf7_encode(struct buf *out, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	struct imap_b64_state st = { 0, 0, false };
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = imap_utf8_next(u + i, len - i, &cp);
		if (n == 0)
			return -1;
		i += n;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (imap_mutf7_close(out, &st) < 0 ||
			    buf_append_byte(out, (uint8_t)cp) < 0)
				return -1;
			if (cp == '&' && buf_append_byte(out, '-') < 0)
				return -1;
			continue;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			if (imap_mutf7_unit(out, &st, (uint16_t)(0xd800 |
							       (cp >> 10))) < 0 ||
			    imap_mutf7_unit(out, &st, (uint16_t)(0xdc00 |
							       (cp & 0x3ff))) < 0)
				return -1;
		} else if (imap_mutf7_unit(out, &st, (uint16_t)cp) < 0) {
			return -1;
		}
	}
	return imap_mutf7_close(out, &st);
}

static int
imap_b64_value(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(imap_mutf7_b64, c);
	return p == NULL ? -1 : (int)(p - imap_mutf7_b64);
}

static int
imap_utf8_put(struct buf *out, uint32_t cp)
{
	uint8_t b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xc0 | (cp >> 6));
		b[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xe0 | (cp >> 12));
		b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | (cp >> 18));
		b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, b, n);
}

/* Decode the base64 run s[0..len) (between '&' and '-'). */
static int
imap_mutf7_run(struct buf *out, const char *s, size_t len)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		int v = imap_b64_value(s[i]);

		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		{
			uint32_t unit = (bits >> nbits) & 0xffff;

			bits &= (1u << nbits) - 1;
			if (high != 0) {
				if (unit < 0xdc00 || unit > 0xdfff)
					return -1;
				if (imap_utf8_put(out, 0x10000 +
						  ((high - 0xd800) << 10) +
						  (unit - 0xdc00)) < 0)
					return -1;
				high = 0;
			} else if (unit >= 0xd800 && unit <= 0xdbff) {
				high = unit;
			} else if ((unit >= 0xdc00 && unit <= 0xdfff) ||
				   (unit >= 0x20 && unit <= 0x7e)) {
				/* lone low surrogate; printable ASCII must
				   not be encoded */
				return -1;
			} else if (imap_utf8_put(out, unit) < 0) {
				return -1;
			}
		}
	}
	/* leftover must be padding: fewer than 6 bits, all zero */
	if (high != 0 || nbits >= 6 || bits != 0)
		return -1;
	return 0;
}

int
imap_mutf7_decode(struct buf *out, const char *s, size_t len)
{
	size_t i = 0, end;
	bool after_run = false;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			if (buf_append_byte(out, c) < 0)
				return -1;
			i++;
			after_run = false;
			continue;
		}
		for (end = i + 1; end < len && s[end] != '-'; end++)
			;
		if (end == len)
			return -1;
		if (end == i + 1) {
			if (buf_append_byte(out, '&') < 0)
				return -1;
			after_run = false;
		} else {
			/* two adjacent runs must have been one */
			if (after_run ||
			    imap_mutf7_run(out, s + i + 1, end - i - 1) < 0)
				return -1;
			after_run = true;
		}
		i = end + 1;
	}
	return 0;
}
