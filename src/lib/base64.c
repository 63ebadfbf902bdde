/* Base64 encoding and decoding, RFC 4648 section 4. */
#include "lib/base64.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of a base64 character, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_encode(struct buf *out, const void *in, size_t len)
{
	const unsigned char *p = in;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		char q[4] = { b64_alphabet[p[i] >> 2],
			      b64_alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			      b64_alphabet[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)],
			      b64_alphabet[p[i + 2] & 63] };
		if (buf_append(out, q, 4) < 0)
			return -1;
	}
	if (i < len) {
		char q[4];
		q[0] = b64_alphabet[p[i] >> 2];
		if (i + 1 < len) {
			q[1] = b64_alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			q[2] = b64_alphabet[(p[i + 1] & 15) << 2];
		} else {
			q[1] = b64_alphabet[(p[i] & 3) << 4];
			q[2] = '=';
		}
		q[3] = '=';
		if (buf_append(out, q, 4) < 0)
			return -1;
	}
	return 0;
}

int
base64_decode(struct buf *out, const void *in, size_t len)
{
	const unsigned char *p = in;
	size_t start = out->len;

	if (len % 4 != 0)
		goto fail;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			if (p[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				goto fail;
			v[k] = b64_value(p[i + k]);
			if (v[k] < 0)
				goto fail;
		}
		if (pad == 1 && p[i + 2] == '=')
			goto fail;
		unsigned char o[3] = { (unsigned char)(v[0] << 2 | v[1] >> 4),
				       (unsigned char)(v[1] << 4 | v[2] >> 2),
				       (unsigned char)(v[2] << 6 | v[3]) };
		if (buf_append(out, o, 3 - (size_t)pad) < 0)
			goto fail;
	}
	return 0;
fail:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return -1;
}

int
base64_decode_mime(struct buf *out, const void *in, size_t len)
{
	const unsigned char *p = in;
	unsigned int acc = 0;
	int n = 0;

	for (size_t i = 0; i < len && p[i] != '='; i++) {
		int v = b64_value(p[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		if (++n == 4) {
			unsigned char o[3] = { (unsigned char)(acc >> 16),
					       (unsigned char)(acc >> 8),
					       (unsigned char)acc };
			if (buf_append(out, o, 3) < 0)
				return -1;
			acc = 0;
			n = 0;
		}
	}
	if (n == 2)
		return buf_append_byte(out, (unsigned char)(acc >> 4));
	if (n == 3) {
		unsigned char o[2] = { (unsigned char)(acc >> 10),
				       (unsigned char)(acc >> 2) };
		return buf_append(out, o, 2);
	}
	return 0;
}
