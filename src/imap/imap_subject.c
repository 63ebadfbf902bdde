/* The base subject of RFC 5256 section 2.1, used by SORT SUBJECT and by
   both THREAD algorithms:
     (1) decode RFC 2047 encoded-words to UTF-8, turn tabs and line
	 breaks (continuations) into spaces, runs of spaces into one;
     (2) remove subj-trailer ("(fwd)" or white space) from the end,
	 repeatedly;
     (3) remove subj-leader (*subj-blob subj-refwd, or white space),
     (4) remove a leading subj-blob when a non-empty subject remains,
     (5) repeat (3) and (4) until nothing changes;
     (6) if the text is "[fwd:" ... "]", remove both and go to (2).
   subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":",
   subj-blob = "[" *BLOBCHAR "]" *WSP, matched case-insensitively.
   Pure: no I/O, no allocation beyond the buffers given. */
#include <string.h>
#include <strings.h>

#include "imap/imap_sort.h"
#include "mime/mime.h"

struct imap_subj {
	const char *p;
	size_t start, end;
	bool reply;
};

/* Length of a subj-blob at pos (with its trailing white space), 0 if
   none. */
static size_t
imap_subject_blob(const struct imap_subj *sj, size_t pos)
{
	size_t i = pos;

	if (i >= sj->end || sj->p[i] != '[')
		return 0;
	for (i++; i < sj->end && sj->p[i] != ']'; i++) {
		if (sj->p[i] == '[')
			return 0;
	}
	if (i >= sj->end)
		return 0;
	for (i++; i < sj->end && sj->p[i] == ' '; i++)
		;
	return i - pos;
}

/* Length of a subj-refwd at pos, 0 if none. */
static size_t
imap_subject_refwd(const struct imap_subj *sj, size_t pos)
{
	size_t i = pos, left = sj->end - pos;

	if (left >= 2 && strncasecmp(sj->p + i, "re", 2) == 0)
		i += 2;
	else if (left >= 3 && strncasecmp(sj->p + i, "fwd", 3) == 0)
		i += 3;
	else if (left >= 2 && strncasecmp(sj->p + i, "fw", 2) == 0)
		i += 2;
	else
		return 0;
	while (i < sj->end && sj->p[i] == ' ')
		i++;
	i += imap_subject_blob(sj, i);
	if (i >= sj->end || sj->p[i] != ':')
		return 0;
	return i + 1 - pos;
}

/* Step (3): one subj-leader at the start, or 0. */
static size_t
imap_subject_leader(struct imap_subj *sj)
{
	size_t i = sj->start, b, r;

	if (i < sj->end && sj->p[i] == ' ')
		return 1;
	while ((b = imap_subject_blob(sj, i)) > 0)
		i += b;
	r = imap_subject_refwd(sj, i);
	if (r == 0)
		return 0;
	sj->reply = true;
	return i + r - sj->start;
}

/* Step (2). */
static void
imap_subject_trailers(struct imap_subj *sj)
{
	for (;;) {
		if (sj->end > sj->start && sj->p[sj->end - 1] == ' ') {
			sj->end--;
		} else if (sj->end - sj->start >= 5 &&
			   strncasecmp(sj->p + sj->end - 5, "(fwd)", 5) == 0) {
			sj->end -= 5;
			sj->reply = true;
		} else {
			return;
		}
	}
}

/* Steps (3) to (5). */
static void
imap_subject_leaders(struct imap_subj *sj)
{
	bool changed = true;
	size_t n;

	while (changed) {
		changed = false;
		while ((n = imap_subject_leader(sj)) > 0) {
			sj->start += n;
			changed = true;
		}
		n = imap_subject_blob(sj, sj->start);
		if (n > 0 && sj->start + n < sj->end) {
			sj->start += n;
			changed = true;
		}
	}
}

/* Step (6): 1 when a "[fwd:" ... "]" wrapper was removed. */
static int
imap_subject_fwd(struct imap_subj *sj)
{
	if (sj->end - sj->start < 6 ||
	    strncasecmp(sj->p + sj->start, "[fwd:", 5) != 0 ||
	    sj->p[sj->end - 1] != ']')
		return 0;
	sj->start += 5;
	sj->end--;
	sj->reply = true;
	return 1;
}

/* Step (1) after decoding: white space to single spaces, in place. */
static size_t
imap_subject_spaces(char *p, size_t len)
{
	size_t i, o = 0;
	bool space = false;

	for (i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\t' || c == '\r' || c == '\n' || c == ' ') {
			space = true;
			continue;
		}
		if (space)
			p[o++] = ' ';
		space = false;
		p[o++] = c;
	}
	if (space)
		p[o++] = ' ';
	return o;
}

int
imap_subject_base(const char *in, size_t len, struct buf *out, bool *reply_r)
{
	struct imap_subj sj = { 0 };
	struct buf dec;
	size_t n;
	int ret = 0;

	*reply_r = false;
	buf_reset(out);
	buf_init(&dec, out->max);
	/* A cut decode still has a usable prefix. */
	(void)mime_decode_words(&dec, in, len);
	n = dec.len > 0 ? imap_subject_spaces((char *)dec.data, dec.len) : 0;
	sj.p = (const char *)dec.data;
	sj.end = n;
	do {
		imap_subject_trailers(&sj);
		imap_subject_leaders(&sj);
	} while (imap_subject_fwd(&sj));
	if (sj.end > sj.start &&
	    buf_append(out, sj.p + sj.start, sj.end - sj.start) < 0)
		ret = -1;
	*reply_r = sj.reply;
	buf_free(&dec);
	return ret;
}
