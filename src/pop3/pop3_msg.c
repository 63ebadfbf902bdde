/* A stored message as a POP3 multi-line response body (RFC 1939 3 and
   section 7 TOP): CRLF line ends, byte-stuffing of lines starting with
   ".", and with TOP the header, the empty line and n body lines. Works in
   slices so a large message never sits in memory twice. */
#include <string.h>

#include "pop3/pop3_int.h"

void
pop3_msg_fmt_init(struct pop3_msg_fmt *f, const uint8_t *data, size_t len,
		  bool top, uint32_t top_lines)
{
	memset(f, 0, sizeof(*f));
	f->data = data;
	f->len = len;
	f->top = top;
	f->top_lines = top_lines;
	f->at_line_start = true;
}

/* One line (or the rest of the data) starting at f->pos. */
static void
pop3_msg_fmt_line(struct pop3_msg_fmt *f, pop3_write_fn *write, void *ctx)
{
	const uint8_t *p = f->data + f->pos;
	const uint8_t *lf = memchr(p, '\n', f->len - f->pos);
	size_t n = lf != NULL ? (size_t)(lf - p) : f->len - f->pos;
	size_t text = n > 0 && p[n - 1] == '\r' ? n - 1 : n;

	if (text > 0 && p[0] == '.')
		write(ctx, ".", 1);
	write(ctx, p, text);
	write(ctx, "\r\n", 2);
	f->pos += lf != NULL ? n + 1 : n;
	if (f->top) {
		if (!f->in_body) {
			if (text == 0)
				f->in_body = true; /* the empty line ends the header */
		} else if (f->top_lines > 0) {
			f->top_lines--;
		}
	}
}

bool
pop3_msg_fmt_run(struct pop3_msg_fmt *f, size_t budget, pop3_write_fn *write,
		 void *ctx)
{
	size_t start = f->pos;

	while (!f->done) {
		if (f->pos >= f->len || (f->top && f->in_body && f->top_lines == 0)) {
			f->done = true;
			break;
		}
		pop3_msg_fmt_line(f, write, ctx);
		if (f->pos - start >= budget)
			break;
	}
	return f->done;
}
