/* SMTP replies as the client sees them: the multiline reply parser
   (RFC 5321 4.2, 4.2.1: "ddd-" continues, "ddd SP" or "ddd" ends, one
   code per reply), enhanced status codes (RFC 2034, RFC 3463 2:
   class.subject.detail, class 2/4/5, at most three digits each) and the
   EHLO keywords (RFC 5321 4.1.1.1, RFC 1870 SIZE).
   Pure and bounded: a remote server is untrusted, so lines, line count
   and text size have ceilings (queue_int.h) and nothing is logged. */
#include <stdio.h>
#include <string.h>

#include "queue/queue_int.h"

void
queue_reply_init(struct queue_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text, QUEUE_REPLY_TEXT_MAX_BYTES);
}

void
queue_reply_reset(struct queue_reply *r)
{
	buf_reset(&r->text);
	r->code = 0;
	r->enhanced[0] = '\0';
	r->lines = 0;
	r->done = false;
}

void
queue_reply_free(struct queue_reply *r)
{
	buf_free(&r->text);
}

static bool
queue_reply_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "X.Y.Z" at the start of text followed by SP or end: RFC 3463 2. */
static void
queue_reply_enhanced(struct queue_reply *r, struct strview text)
{
	size_t i = 0, part, digits;

	if (text.len < 5 || text.p[0] - '0' != (int)(r->code / 100))
		return;
	for (part = 0; part < 3; part++) {
		if (part > 0) {
			if (i >= text.len || text.p[i] != '.')
				return;
			i++;
		}
		for (digits = 0; i < text.len && queue_reply_digit(text.p[i]);
		     i++)
			digits++;
		if (digits == 0 || digits > (part == 0 ? 1u : 3u))
			return;
	}
	if (i < text.len && text.p[i] != ' ')
		return;
	if (i >= sizeof(r->enhanced))
		return;
	memcpy(r->enhanced, text.p, i);
	r->enhanced[i] = '\0';
}

enum queue_reply_res
queue_reply_feed(struct queue_reply *r, struct strview line,
		 const char **error_r)
{
	unsigned code;
	struct strview text;
	bool last;

	if (r->done)
		queue_reply_reset(r);
	if (line.len < 3 || !queue_reply_digit(line.p[0]) ||
	    !queue_reply_digit(line.p[1]) || !queue_reply_digit(line.p[2]) ||
	    line.p[0] < '2' || line.p[0] > '5') {
		*error_r = "reply line without a valid code";
		return QUEUE_REPLY_ERR;
	}
	if (line.len > 3 && line.p[3] != ' ' && line.p[3] != '-') {
		*error_r = "reply code not followed by space or hyphen";
		return QUEUE_REPLY_ERR;
	}
	code = (unsigned)(line.p[0] - '0') * 100 +
	       (unsigned)(line.p[1] - '0') * 10 + (unsigned)(line.p[2] - '0');
	if (r->lines > 0 && code != r->code) {
		*error_r = "reply code changed inside a multiline reply";
		return QUEUE_REPLY_ERR;
	}
	if (r->lines >= QUEUE_REPLY_LINES_MAX) {
		*error_r = "too many reply lines";
		return QUEUE_REPLY_ERR;
	}
	last = line.len == 3 || line.p[3] == ' ';
	text = sv_make(line.p + (line.len > 3 ? 4 : 3),
		       line.len > 3 ? line.len - 4 : 0);
	if (r->lines == 0) {
		r->code = code;
		queue_reply_enhanced(r, text);
	}
	/* Past the ceiling the text is cut, the reply still parses. */
	if ((r->lines == 0 || buf_append_byte(&r->text, '\n') == 0))
		(void)buf_append(&r->text, text.p, text.len);
	r->lines++;
	if (!last)
		return QUEUE_REPLY_MORE;
	r->done = true;
	return QUEUE_REPLY_DONE;
}

char *
queue_reply_format(const struct queue_reply *r, char *out, size_t max)
{
	size_t o, i;

	if (max == 0)
		return out;
	o = (size_t)snprintf(out, max, "%03u", r->code);
	if (o >= max)
		return out;
	if (r->text.len > 0 && o + 1 < max)
		out[o++] = ' ';
	for (i = 0; i < r->text.len && o + 1 < max; i++) {
		uint8_t c = r->text.data[i];
		if (c == '\n') {
			if (o + 2 >= max)
				break;
			out[o++] = ';';
			out[o++] = ' ';
			continue;
		}
		out[o++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	out[o] = '\0';
	return out;
}

static void
queue_caps_keyword(struct strview kw, struct strview args,
		   struct queue_caps *caps)
{
	if (sv_eq_ci_cstr(kw, "STARTTLS")) {
		caps->starttls = true;
	} else if (sv_eq_ci_cstr(kw, "PIPELINING")) {
		caps->pipelining = true;
	} else if (sv_eq_ci_cstr(kw, "8BITMIME")) {
		caps->eightbitmime = true;
	} else if (sv_eq_ci_cstr(kw, "SMTPUTF8")) {
		caps->smtputf8 = true;
	} else if (sv_eq_ci_cstr(kw, "DSN")) {
		caps->dsn = true;
	} else if (sv_eq_ci_cstr(kw, "ENHANCEDSTATUSCODES")) {
		caps->enhanced = true;
	} else if (sv_eq_ci_cstr(kw, "SIZE")) {
		uint64_t n = 0;
		caps->has_size = true;
		args = sv_trim(args);
		/* RFC 1870 4: "SIZE" alone or "SIZE 0" means no limit. */
		if (args.len > 0 && parse_u64(args, UINT64_MAX, &n) == 0)
			caps->size = n;
	} else if (sv_eq_ci_cstr(kw, "AUTH")) {
		while (args.len > 0) {
			struct strview mech = sv_split(&args, ' ');
			if (sv_eq_ci_cstr(mech, "PLAIN"))
				caps->auth_plain = true;
		}
	}
}

void
queue_caps_parse(const struct queue_reply *r, struct queue_caps *caps_r)
{
	struct strview all = sv_make(r->text.data, r->text.len), line;

	memset(caps_r, 0, sizeof(*caps_r));
	if (r->code / 100 != 2)
		return;
	(void)sv_split(&all, '\n'); /* "mx.example.org greets you" */
	while (all.len > 0) {
		struct strview kw;
		line = sv_split(&all, '\n');
		kw = sv_split(&line, ' ');
		/* Old servers wrote "AUTH=PLAIN LOGIN". */
		if (kw.len > 5 && sv_starts_with_ci(kw, "AUTH=")) {
			struct strview rest = sv_make(kw.p + 5, kw.len - 5);
			queue_caps_keyword(SV_LIT("AUTH"), rest, caps_r);
			continue;
		}
		queue_caps_keyword(kw, line, caps_r);
	}
}
