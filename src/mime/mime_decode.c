/* Content decoding: quoted-printable (RFC 2045 6.7), base64 bodies
   (RFC 2045 6.8, via lib/base64.h), identity encodings (RFC 2045 6.2)
   for IMAP BINARY (RFC 3516 4.2), and RFC 2047 encoded-words in header
   text (2047 2, 4.1, 4.2, 5, 6.2; RFC 2231 5 language suffix).
   Security: decoders are single-pass and bounded by out->max; malformed
   encodings are copied through rather than rejected. */
#include <string.h>

#include "lib/base64.h"
#include "mime/mime_int.h"

static int
mime_decode_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One quoted-printable line in[0..len) without its line end; *soft_r
   tells whether it ended in a soft line break. 0, or -1 (out full). */
static int
mime_decode_qp_line(struct buf *out, const uint8_t *in, size_t len,
		    bool *soft_r)
{
	/* RFC 2045 6.7 rule 3: trailing white space is not data */
	while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
		len--;
	*soft_r = len > 0 && in[len - 1] == '=';
	if (*soft_r)
		len--;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (c == '=' && len - i >= 3) {
			int hi = mime_decode_hex(in[i + 1]);
			int lo = mime_decode_hex(in[i + 2]);

			if (hi >= 0 && lo >= 0) {
				c = (uint8_t)(hi << 4 | lo);
				i += 2;
			}
		}
		if (buf_append_byte(out, c) < 0)
			return -1;
	}
	return 0;
}

int
mime_decode_qp(struct buf *out, const uint8_t *in, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *lf = memchr(in + pos, '\n', len - pos);
		size_t end = lf == NULL ? len : (size_t)(lf - in);
		size_t text_end = end;
		bool soft;

		if (lf != NULL && text_end > pos && in[text_end - 1] == '\r')
			text_end--;
		if (mime_decode_qp_line(out, in + pos, text_end - pos,
					&soft) < 0)
			return -1;
		if (lf != NULL && !soft &&
		    buf_append(out, in + text_end, end + 1 - text_end) < 0)
			return -1;
		pos = lf == NULL ? len : end + 1;
	}
	return 0;
}

bool
mime_cte_known(const char *cte)
{
	static const char *const known[] = {
		"", "7bit", "8bit", "binary", "base64", "quoted-printable",
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcasecmp(cte, known[i]) == 0)
			return true;
	}
	return false;
}

int
mime_decode_body(struct buf *out, const char *cte, const uint8_t *in,
		 size_t len)
{
	if (strcasecmp(cte, "base64") == 0)
		return base64_decode_mime(out, in, len);
	if (strcasecmp(cte, "quoted-printable") == 0)
		return mime_decode_qp(out, in, len);
	if (!mime_cte_known(cte))
		return -1;
	return buf_append(out, in, len);
}

/* ---- RFC 2047 encoded-words ---- */

struct mime_word {
	char charset[64];
	struct buf data; /* decoded bytes not yet converted */
};

/* Q encoding (RFC 2047 4.2): '_' is a space, "=XX" a byte. */
static void
mime_decode_q(struct buf *out, const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)in[i];

		if (c == '_') {
			c = ' ';
		} else if (c == '=' && len - i >= 3) {
			int hi = mime_decode_hex((uint8_t)in[i + 1]);
			int lo = mime_decode_hex((uint8_t)in[i + 2]);

			if (hi >= 0 && lo >= 0) {
				c = (uint8_t)(hi << 4 | lo);
				i += 2;
			}
		}
		(void)buf_append_byte(out, c);
	}
}

/* Parse "=?charset?E?text?=" at in[0..len). Returns its length, or 0
   when it is not a well-formed encoded-word. */
static size_t
mime_decode_word_parse(const char *in, size_t len, struct strview *cs_r,
		       char *enc_r, struct strview *text_r)
{
	const char *end = in + len, *p, *q;

	if (len < 8 || in[0] != '=' || in[1] != '?')
		return 0;
	p = in + 2;
	q = memchr(p, '?', (size_t)(end - p));
	if (q == NULL || q == p || end - q < 5 || q[2] != '?')
		return 0;
	*cs_r = sv_make(p, (size_t)(q - p));
	*enc_r = q[1];
	if (*enc_r != 'B' && *enc_r != 'b' && *enc_r != 'Q' && *enc_r != 'q')
		return 0;
	p = q + 3;
	for (q = p; q + 1 < end; q++) {
		if (q[0] == '?' && q[1] == '=')
			break;
		if (q[0] == ' ' || q[0] == '\t' || q[0] == '\r' ||
		    q[0] == '\n')
			return 0;
	}
	if (q + 1 >= end)
		return 0;
	*text_r = sv_make(p, (size_t)(q - p));
	return (size_t)(q + 2 - in);
}

/* Convert and drop the pending decoded bytes. */
static int
mime_decode_word_flush(struct buf *out, struct mime_word *w)
{
	int ret = 0;

	if (w->data.len > 0)
		ret = mime_charset_to_utf8(out, w->charset, w->data.data,
					   w->data.len);
	buf_reset(&w->data);
	w->charset[0] = '\0';
	return ret;
}

/* Decode one encoded-word into w, first flushing w when the charset
   differs (same-charset neighbours are joined so that a character split
   across words survives). */
static int
mime_decode_word_add(struct buf *out, struct mime_word *w,
		     struct strview cs, char enc, struct strview text)
{
	if (cs.len >= sizeof(w->charset))
		cs.len = sizeof(w->charset) - 1;
	if (strlen(w->charset) != cs.len ||
	    strncasecmp(w->charset, cs.p, cs.len) != 0) {
		if (mime_decode_word_flush(out, w) < 0)
			return -1;
		memcpy(w->charset, cs.p, cs.len);
		w->charset[cs.len] = '\0';
	}
	if (enc == 'B' || enc == 'b')
		(void)base64_decode_mime(&w->data, text.p, text.len);
	else
		mime_decode_q(&w->data, text.p, text.len);
	return 0;
}

static size_t
mime_decode_wsp_len(const char *in, size_t len)
{
	size_t n = 0;

	while (n < len && (in[n] == ' ' || in[n] == '\t' || in[n] == '\r' ||
			   in[n] == '\n'))
		n++;
	return n;
}

int
mime_decode_words(struct buf *out, const char *in, size_t len)
{
	struct mime_word w;
	size_t i = 0;
	bool after_word = false;
	int ret = 0;

	w.charset[0] = '\0';
	buf_init(&w.data, len + 1);
	while (i < len && ret == 0) {
		struct strview cs, text;
		size_t ws = after_word ? mime_decode_wsp_len(in + i, len - i) : 0;
		size_t n;
		char enc;

		/* RFC 2047 6.2: white space between encoded-words vanishes */
		n = mime_decode_word_parse(in + i + ws, len - i - ws, &cs,
					   &enc, &text);
		if (n > 0) {
			ret = mime_decode_word_add(out, &w, cs, enc, text);
			i += ws + n;
			after_word = true;
			continue;
		}
		ret = mime_decode_word_flush(out, &w);
		if (ret == 0)
			ret = mime_charset_append_cut(out, in + i, 1);
		i++;
		after_word = false;
	}
	if (ret == 0)
		ret = mime_decode_word_flush(out, &w);
	buf_free(&w.data);
	return ret;
}
