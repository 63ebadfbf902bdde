/* The message as the SMTP client sends it: dot-stuffing (RFC 5321 4.5.2
   transparency, 2.3.8 CRLF line ends), the 8-bit scan that decides
   BODY=8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531 3.4), and the
   conversion of 8-bit parts to quoted-printable (RFC 2045 6.7) for
   servers without 8BITMIME (RFC 6152 3: convert or bounce; RFC 1652 had
   the same rule). Pure: bytes in, bytes out; bounded by the caller's
   buf max. The MIME walk uses mime_section_find, which re-parses per
   part: quadratic in the part count, acceptable for this rare path
   (MIME_PARTS_MAX bounds it). */
#include <string.h>
#include <strings.h>

#include "mime/mime.h"
#include "queue/queue_int.h"

void
queue_stuff_init(struct queue_stuff *st)
{
	st->bol = true;
	st->cr = false;
}

int
queue_stuff_feed(struct queue_stuff *st, const uint8_t *in, size_t len,
		 struct buf *out)
{
	size_t i, start = 0;

	for (i = 0; i < len; i++) {
		uint8_t c = in[i];
		if (st->bol && c == '.') {
			/* Copy what came before, then the extra dot. */
			if (buf_append(out, in + start, i - start) < 0 ||
			    buf_append_byte(out, '.') < 0)
				return -1;
			start = i;
		} else if (c == '\n' && !st->cr) {
			if (buf_append(out, in + start, i - start) < 0 ||
			    buf_append_byte(out, '\r') < 0)
				return -1;
			start = i;
		}
		st->bol = c == '\n';
		st->cr = c == '\r';
	}
	return buf_append(out, in + start, len - start);
}

int
queue_stuff_finish(struct queue_stuff *st, struct buf *out)
{
	if (!st->bol) {
		if (st->cr) {
			if (buf_append_byte(out, '\n') < 0)
				return -1;
		} else if (buf_append_str(out, "\r\n") < 0) {
			return -1;
		}
	}
	st->bol = true;
	st->cr = false;
	return buf_append_str(out, ".\r\n");
}

void
queue_body_scan(const uint8_t *msg, size_t len, struct queue_body_info *info_r)
{
	size_t i, line = 0;
	bool in_header = true, bol = true;

	memset(info_r, 0, sizeof(*info_r));
	for (i = 0; i < len; i++) {
		uint8_t c = msg[i];
		if (c >= 0x80) {
			info_r->body_8bit = true;
			if (in_header)
				info_r->header_8bit = true;
		} else if (c == 0) {
			info_r->has_nul = true;
		}
		if (c == '\n') {
			/* An empty line ends the top-level header. */
			if (bol || (line == 1 && msg[i - 1] == '\r'))
				in_header = false;
			line = 0;
			bol = true;
			continue;
		}
		bol = false;
		if (++line > 998 + 1) /* RFC 5322 2.1.1, CR excluded */
			info_r->long_lines = true;
	}
}

static const char queue_hex[] = "0123456789ABCDEF";

/* Append one encoded byte "=XX"; updates the line length. */
static int
queue_qp_escape(struct buf *out, uint8_t c, size_t *col)
{
	char e[3] = { '=', queue_hex[c >> 4], queue_hex[c & 15] };

	*col += 3;
	return buf_append(out, e, 3);
}

/* One line (without its line end), cut at 76 with soft breaks. */
static int
queue_qp_line(const uint8_t *p, size_t n, struct buf *out)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		uint8_t c = p[i];
		bool last = i + 1 == n;
		bool lit = (c >= 33 && c <= 126 && c != '=') ||
			   ((c == ' ' || c == '\t') && !last);
		size_t need = lit ? 1 : 3;

		/* Keep room for the "=" of a soft break (76 in total). */
		if (col + need > (last ? 76 : 75)) {
			if (buf_append_str(out, "=\r\n") < 0)
				return -1;
			col = 0;
		}
		if (lit) {
			if (buf_append_byte(out, c) < 0)
				return -1;
			col++;
		} else if (queue_qp_escape(out, c, &col) < 0) {
			return -1;
		}
	}
	return 0;
}

int
queue_body_qp_encode(const uint8_t *in, size_t len, struct buf *out)
{
	size_t start = 0, i;

	for (i = 0; i <= len; i++) {
		size_t end;
		if (i < len && in[i] != '\n')
			continue;
		end = i > start && in[i - 1] == '\r' ? i - 1 : i;
		if (i == len && end == start && start == len)
			break;
		if (queue_qp_line(in + start, end - start, out) < 0)
			return -1;
		if (i < len && buf_append_str(out, "\r\n") < 0)
			return -1;
		start = i + 1;
	}
	return 0;
}

static bool
queue_body_has_8bit(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] >= 0x80)
			return true;
	}
	return false;
}

/* Is the header line at p a Content-Transfer-Encoding field? */
static bool
queue_body_is_cte(const uint8_t *p, size_t n)
{
	static const char name[] = "content-transfer-encoding";
	size_t i = sizeof(name) - 1;

	if (n < i || strncasecmp((const char *)p, name, i) != 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

/* Copy a MIME header block without its Content-Transfer-Encoding
   field, then add "Content-Transfer-Encoding: quoted-printable" and the
   empty line. */
static int
queue_body_header(const uint8_t *h, size_t n, struct buf *out)
{
	size_t pos = 0;
	bool skipping = false;

	while (pos < n) {
		const uint8_t *lf = memchr(h + pos, '\n', n - pos);
		size_t end = lf != NULL ? (size_t)(lf - h) + 1 : n;
		size_t text = end - pos;

		if (text <= 2 && (h[pos] == '\r' || h[pos] == '\n'))
			break; /* the empty line */
		if (h[pos] != ' ' && h[pos] != '\t')
			skipping = queue_body_is_cte(h + pos, text);
		if (!skipping && buf_append(out, h + pos, text) < 0)
			return -1;
		pos = end;
	}
	return buf_append_str(out,
			      "Content-Transfer-Encoding: quoted-printable\r\n"
			      "\r\n");
}

struct queue_7bit {
	const uint8_t *msg;
	size_t len;
	size_t cursor; /* bytes of msg already copied to out */
	size_t parts;
	struct buf *out;
	const char *error;
};

/* Rewrite one leaf part whose body has 8-bit bytes. */
static int
queue_body_leaf(struct queue_7bit *cv, const struct mime_section *sec)
{
	const char *cte = sec->content_transfer_encoding;

	if (!queue_body_has_8bit(cv->msg + sec->body_off, sec->body_len))
		return 0;
	if (strcasecmp(cte, "7bit") != 0 && strcasecmp(cte, "8bit") != 0 &&
	    strcasecmp(cte, "binary") != 0) {
		cv->error = "8-bit data in an encoded part";
		return -1;
	}
	if (sec->is_message_rfc822) {
		cv->error = "8-bit data in an encapsulated message";
		return -1;
	}
	if (buf_append(cv->out, cv->msg + cv->cursor,
		       sec->mime_off - cv->cursor) < 0 ||
	    queue_body_header(cv->msg + sec->mime_off, sec->mime_len,
			      cv->out) < 0 ||
	    queue_body_qp_encode(cv->msg + sec->body_off, sec->body_len,
				 cv->out) < 0) {
		cv->error = "converted message too large";
		return -1;
	}
	cv->cursor = sec->body_off + sec->body_len;
	return 0;
}

/* Depth-first over the parts below path[0..depth). */
static int
queue_body_walk(struct queue_7bit *cv, uint32_t *path, size_t depth)
{
	struct mime_section sec;

	if (depth >= MIME_DEPTH_MAX) {
		cv->error = "MIME structure too deep";
		return -1;
	}
	for (uint32_t n = 1;; n++) {
		path[depth] = n;
		if (mime_section_find(cv->msg, cv->len, path, depth + 1,
				      &sec) != 1)
			return 0;
		if (++cv->parts > MIME_PARTS_MAX) {
			cv->error = "too many MIME parts";
			return -1;
		}
		if (sec.is_multipart) {
			if (queue_body_walk(cv, path, depth + 1) < 0)
				return -1;
		} else if (queue_body_leaf(cv, &sec) < 0) {
			return -1;
		}
	}
}

int
queue_body_to_7bit(const uint8_t *msg, size_t len, struct buf *out,
		   const char **error_r)
{
	struct queue_7bit cv = { msg, len, 0, 0, out, NULL };
	struct queue_body_info info;
	uint32_t path[MIME_DEPTH_MAX + 1];

	queue_body_scan(msg, len, &info);
	if (info.header_8bit) {
		*error_r = "8-bit bytes in the message header";
		return -1;
	}
	if (queue_body_walk(&cv, path, 0) < 0) {
		*error_r = cv.error;
		return -1;
	}
	if (buf_append(out, msg + cv.cursor, len - cv.cursor) < 0) {
		*error_r = "converted message too large";
		return -1;
	}
	/* 8-bit bytes left (in part headers, preambles): give up. */
	if (queue_body_has_8bit(out->data, out->len)) {
		*error_r = "8-bit bytes outside convertible parts";
		return -1;
	}
	return 0;
}
