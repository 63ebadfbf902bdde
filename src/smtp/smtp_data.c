/* The DATA and BDAT content state machines: pure and incremental, fed any
   split of the input. RFC 5321 4.1.1.4 (DATA ends at CRLF "." CRLF),
   4.5.2 (transparency: a leading "." of a line is removed), 2.3.8 (CR and
   LF only as CRLF), RFC 3030 2 (BDAT chunks are passed through unchanged).
   Security: the 2023 "SMTP smuggling" family relies on servers that end
   DATA at LF "." LF, CR "." CR or mixtures. Here only CRLF "." CRLF ends
   DATA; a bare CR or LF sets d->bare so the caller rejects the message
   (550 5.6.0) after reading it to its real end.
   The header scan counts Received: fields so the session can refuse a
   message that went round a mail loop (RFC 5321 6.3). */
#include <ctype.h>
#include <string.h>

#include "smtp/smtp_int.h"

void
smtp_data_init(struct smtp_data *d, uint64_t max_bytes)
{
	memset(d, 0, sizeof(*d));
	d->state = SMTP_DATA_BOL;
	d->max_bytes = max_bytes;
}

/* Account for n bytes of content; once over the limit, stop output. */
static void
smtp_data_emit(struct smtp_data *d, uint8_t *out, size_t *o,
	       const void *bytes, size_t n)
{
	if (n > UINT64_MAX - d->size)
		d->size = UINT64_MAX;
	else
		d->size += n;
	if (d->max_bytes != 0 && d->size > d->max_bytes)
		d->too_big = true;
	if (d->too_big)
		return;
	memcpy(out + *o, bytes, n);
	*o += n;
}

/* A byte in the middle of a line (SMTP_DATA_TEXT). */
static void
smtp_data_text(struct smtp_data *d, uint8_t c, uint8_t *out, size_t *o)
{
	if (c == '\r') {
		d->state = SMTP_DATA_CR;
		return;
	}
	if (c == '\n') {
		/* Bare LF: never a line end, so never the start of a "."
		   line either. */
		d->bare = true;
	}
	d->state = SMTP_DATA_TEXT;
	smtp_data_emit(d, out, o, &c, 1);
}

enum smtp_data_res
smtp_data_feed(struct smtp_data *d, const uint8_t *in, size_t len,
	       uint8_t *out, size_t *out_len_r, size_t *consumed_r)
{
	size_t i, o = 0;
	uint8_t c;

	for (i = 0; i < len && d->state != SMTP_DATA_END; i++) {
		c = in[i];
		switch (d->state) {
		case SMTP_DATA_BOL:
			if (c == '.')
				d->state = SMTP_DATA_DOT;
			else
				smtp_data_text(d, c, out, &o);
			break;
		case SMTP_DATA_TEXT:
			smtp_data_text(d, c, out, &o);
			break;
		case SMTP_DATA_CR:
			if (c == '\n') {
				smtp_data_emit(d, out, &o, "\r\n", 2);
				d->state = SMTP_DATA_BOL;
				break;
			}
			/* Bare CR: kept as content, flagged. */
			d->bare = true;
			smtp_data_emit(d, out, &o, "\r", 1);
			smtp_data_text(d, c, out, &o);
			break;
		case SMTP_DATA_DOT:
			/* RFC 5321 4.5.2: drop the first "." of the line. */
			if (c == '\r')
				d->state = SMTP_DATA_DOTCR;
			else
				smtp_data_text(d, c, out, &o);
			break;
		case SMTP_DATA_DOTCR:
			if (c == '\n') {
				d->state = SMTP_DATA_END;
				break;
			}
			/* "." CR x: the dot was stuffing, the CR is bare. */
			d->bare = true;
			smtp_data_emit(d, out, &o, "\r", 1);
			smtp_data_text(d, c, out, &o);
			break;
		case SMTP_DATA_END:
			break;
		}
	}
	*out_len_r = o;
	*consumed_r = i;
	return d->state == SMTP_DATA_END ? SMTP_DATA_DONE : SMTP_DATA_MORE;
}

void
smtp_data_bdat_feed(struct smtp_data *d, const uint8_t *in, size_t len)
{
	size_t i;

	if ((uint64_t)len > UINT64_MAX - d->size)
		d->size = UINT64_MAX;
	else
		d->size += len;
	if (d->max_bytes != 0 && d->size > d->max_bytes)
		d->too_big = true;
	for (i = 0; i < len; i++) {
		if (d->last_cr && in[i] != '\n')
			d->bare = true;
		if (!d->last_cr && in[i] == '\n')
			d->bare = true;
		d->last_cr = in[i] == '\r';
	}
}

void
smtp_data_bdat_end(struct smtp_data *d)
{
	if (d->last_cr)
		d->bare = true;
	d->last_cr = false;
}

void
smtp_data_scan_header(struct smtp_data *d, const uint8_t *in, size_t len)
{
	static const char name[] = "received:";
	const size_t name_len = sizeof(name) - 1;
	size_t i;

	for (i = 0; i < len && !d->in_body; i++) {
		uint8_t c = in[i];

		if (c == '\n') {
			/* An empty line (CRLF, or a bare LF) ends the header. */
			if (d->line_len == 0 ||
			    (d->line_len == 1 && d->prev == '\r'))
				d->in_body = true;
			d->line_len = 0;
			d->match = 0;
			d->prev = c;
			continue;
		}
		if (d->match != 0xff && d->match < name_len) {
			if (tolower(c) == name[d->match]) {
				if (++d->match == name_len) {
					d->received++;
					d->match = 0xff;
				}
			} else {
				d->match = 0xff;
			}
		}
		if (d->line_len < 0xff)
			d->line_len++;
		d->prev = c;
	}
}
