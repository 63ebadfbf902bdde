/* Charset conversion to UTF-8 for RFC 2047 words (RFC 2047 4, RFC 2231 5
   language suffix) and text bodies (RFC 2046 4.1.2 charset parameter),
   with glibc iconv.
   Security: input is converted in bounded chunks; invalid or truncated
   sequences become U+FFFD instead of stopping or looping; output is cut
   at out->max. The charset name is hostile and only passed to
   iconv_open() after a length and character check. */
#include <errno.h>
#include <iconv.h>
#include <string.h>

#include "mime/mime_int.h"

#define MIME_CHARSET_NAME_MAX 64

static const char mime_charset_replacement[] = "\xef\xbf\xbd";

/* Length of the longest prefix of in[0..len) not ending inside a UTF-8
   sequence that starts in the last 3 bytes. */
static size_t
mime_charset_utf8_cut(const uint8_t *in, size_t len)
{
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		uint8_t c = in[len - back];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue; /* continuation byte, look further back */
		if ((c & 0xe0) == 0xc0)
			need = 2;
		else if ((c & 0xf0) == 0xe0)
			need = 3;
		else if ((c & 0xf8) == 0xf0)
			need = 4;
		else
			return len;
		return need > back ? len - back : len;
	}
	return len;
}

int
mime_charset_append_cut(struct buf *out, const void *in, size_t len)
{
	size_t room;

	if (out->len >= out->max)
		return len == 0 ? 0 : -1;
	room = out->max - out->len;
	if (len <= room)
		return buf_append(out, in, len);
	(void)buf_append(out, in, mime_charset_utf8_cut(in, room));
	return -1;
}

static bool
mime_charset_is_utf8(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

/* Copy charset into name without an RFC 2231 "*language" suffix; false
   when it is empty, too long or has bytes no charset name has. */
static bool
mime_charset_name(const char *charset, char *name, size_t size)
{
	size_t n = 0;

	for (const char *p = charset; *p != '\0' && *p != '*'; p++) {
		unsigned char c = (unsigned char)*p;

		if (n + 1 >= size || c <= ' ' || c >= 0x7f || c == '/')
			return false;
		name[n++] = (char)c;
	}
	name[n] = '\0';
	return n > 0;
}

/* Convert with cd; U+FFFD for each bad byte. */
static int
mime_charset_iconv(struct buf *out, iconv_t cd, const uint8_t *in,
		   size_t len)
{
	char *ip = (char *)in;
	size_t ileft = len;

	while (ileft > 0) {
		char chunk[4096];
		char *op = chunk;
		size_t oleft = sizeof(chunk);
		size_t ret = iconv(cd, &ip, &ileft, &op, &oleft);
		int err = errno;

		if (mime_charset_append_cut(out, chunk,
					    sizeof(chunk) - oleft) < 0)
			return -1;
		if (ret != (size_t)-1 || err == E2BIG)
			continue;
		/* EILSEQ or EINVAL (truncated at the end): skip one byte */
		if (mime_charset_append_cut(out, mime_charset_replacement,
					    3) < 0)
			return -1;
		ip++;
		ileft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	return 0;
}

int
mime_charset_to_utf8(struct buf *out, const char *charset,
		     const uint8_t *in, size_t len)
{
	char name[MIME_CHARSET_NAME_MAX];
	iconv_t cd;
	int ret;

	if (charset == NULL || !mime_charset_name(charset, name, sizeof(name)) ||
	    mime_charset_is_utf8(name))
		return mime_charset_append_cut(out, in, len);
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return mime_charset_append_cut(out, in, len);
	ret = mime_charset_iconv(out, cd, in, len);
	iconv_close(cd);
	return ret;
}
