/* Header blocks: field iteration, unfolding, lookup and the IMAP
   HEADER.FIELDS[.NOT] filter.
   RFC 5322 2.2 (header fields), 2.2.3 (unfolding), 3.6 and 4.5 (obsolete
   white space before ':'); RFC 9051 6.4.5 (HEADER.FIELDS).
   Security: the block is hostile; every access is bounded by its length,
   a missing final line end or empty line is tolerated, bare LF is
   accepted as a line end. */
#include <string.h>

#include "lib/xalloc.h"
#include "mime/mime_int.h"

/* Offset just past the LF ending the line that starts at pos, or len. */
static size_t
mime_header_line_end(const uint8_t *p, size_t len, size_t pos)
{
	const uint8_t *lf = memchr(p + pos, '\n', len - pos);

	return lf == NULL ? len : (size_t)(lf - p) + 1;
}

static bool
mime_header_is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

void
mime_header_iter_init(struct mime_header_iter *it, const uint8_t *hdr,
		      size_t len)
{
	it->hdr = hdr;
	it->len = len;
	it->pos = 0;
}

/* True when the line at pos is empty (the end of the header block). */
static bool
mime_header_line_is_empty(const struct mime_header_iter *it, size_t pos)
{
	const uint8_t *p = it->hdr + pos;
	size_t left = it->len - pos;

	return (left >= 1 && p[0] == '\n') ||
	       (left >= 2 && p[0] == '\r' && p[1] == '\n');
}

/* Length of the field name at the start of a line: bytes before ':',
   with trailing white space removed (RFC 5322 4.5). -1 when the line has
   no ':' or the name is empty. */
static long
mime_header_name_len(const uint8_t *p, size_t line_len, size_t *colon_r)
{
	const uint8_t *colon = memchr(p, ':', line_len);
	size_t n;

	if (colon == NULL)
		return -1;
	*colon_r = (size_t)(colon - p);
	n = *colon_r;
	while (n > 0 && mime_header_is_wsp(p[n - 1]))
		n--;
	if (n == 0)
		return -1;
	return (long)n;
}

int
mime_header_iter_next(struct mime_header_iter *it, struct mime_field *f_r)
{
	while (it->pos < it->len && !mime_header_line_is_empty(it, it->pos)) {
		size_t start = it->pos;
		size_t end = mime_header_line_end(it->hdr, it->len, start);
		size_t colon;
		long nlen;

		/* continuation lines belong to this field */
		while (end < it->len && mime_header_is_wsp(it->hdr[end]))
			end = mime_header_line_end(it->hdr, it->len, end);
		it->pos = end;
		if (mime_header_is_wsp(it->hdr[start]))
			continue; /* stray continuation */
		nlen = mime_header_name_len(it->hdr + start, end - start,
					    &colon);
		if (nlen < 0)
			continue; /* not a field (e.g. mbox "From ") */
		f_r->off = start;
		f_r->len = end - start;
		f_r->name_len = (size_t)nlen;
		f_r->value_off = start + colon + 1;
		f_r->has_eol = it->hdr[end - 1] == '\n';
		f_r->value_end = end;
		if (f_r->has_eol) {
			f_r->value_end--;
			if (f_r->value_end > f_r->value_off &&
			    it->hdr[f_r->value_end - 1] == '\r')
				f_r->value_end--;
		}
		return 1;
	}
	return 0;
}

bool
mime_header_field_is(const uint8_t *hdr, const struct mime_field *f,
		     const char *name)
{
	size_t n = strlen(name);

	return n == f->name_len &&
	       strncasecmp((const char *)hdr + f->off, name, n) == 0;
}

int
mime_header_unfold(const uint8_t *hdr, const struct mime_field *f,
		   struct buf *out)
{
	size_t i = f->value_off, end = f->value_end;

	while (i < end && (mime_header_is_wsp(hdr[i]) || hdr[i] == '\r' ||
			   hdr[i] == '\n'))
		i++;
	while (end > i && (mime_header_is_wsp(hdr[end - 1]) ||
			   hdr[end - 1] == '\r' || hdr[end - 1] == '\n'))
		end--;
	while (i < end) {
		size_t run = i;

		while (run < end && hdr[run] != '\r' && hdr[run] != '\n')
			run++;
		if (mime_charset_append_cut(out, hdr + i, run - i) < 0)
			return -1;
		i = run;
		while (i < end && (hdr[i] == '\r' || hdr[i] == '\n'))
			i++;
	}
	return 0;
}

char *
mime_header_value_dup(struct arena *a, const uint8_t *hdr,
		      const struct mime_field *f)
{
	struct buf b;
	char *s;

	buf_init(&b, MIME_HEADER_VALUE_MAX_BYTES);
	(void)mime_header_unfold(hdr, f, &b);
	s = arena_strndup(a, buf_cstr(&b), b.len);
	buf_free(&b);
	return s;
}

int
mime_header_get(const uint8_t *hdr, size_t hdr_len, const char *name,
		struct buf *out)
{
	struct mime_header_iter it;
	struct mime_field f;

	mime_header_iter_init(&it, hdr, hdr_len);
	while (mime_header_iter_next(&it, &f) > 0) {
		if (mime_header_field_is(hdr, &f, name))
			return mime_header_unfold(hdr, &f, out) < 0 ? -1 : 1;
	}
	return 0;
}

static bool
mime_header_in_list(const uint8_t *hdr, const struct mime_field *f,
		    const char *const *names, size_t n_names)
{
	for (size_t i = 0; i < n_names; i++) {
		if (mime_header_field_is(hdr, f, names[i]))
			return true;
	}
	return false;
}

int
mime_header_filter(const uint8_t *hdr, size_t hdr_len,
		   const char *const *names, size_t n_names, bool not,
		   struct buf *out)
{
	struct mime_header_iter it;
	struct mime_field f;

	mime_header_iter_init(&it, hdr, hdr_len);
	while (mime_header_iter_next(&it, &f) > 0) {
		if (mime_header_in_list(hdr, &f, names, n_names) == not)
			continue;
		if (buf_append(out, hdr + f.off, f.len) < 0)
			return -1;
		if (!f.has_eol && buf_append(out, "\r\n", 2) < 0)
			return -1;
	}
	return buf_append(out, "\r\n", 2);
}
