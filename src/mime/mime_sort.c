/* The sort and thread keys of a message (RFC 5256, RFC 5957), computed
   once when the message is stored (mime_info_parse) and kept with it, so
   SORT and THREAD never open a message for them.

   The base subject of RFC 5256 section 2.1, used by SORT SUBJECT and by
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

   The address keys come from the first address structure of the field
   as ENVELOPE has it (RFC 5256 3 "the first address"), which is the
   start of a group when the field begins with one: its addr-mailbox
   (a group's name), and the RFC 5957 3 display form (decoded
   display-name, else mailbox@host, else, for a group, its name). The thread keys are the first
   "<...>" of Message-ID and the Message-IDs of References (the newest
   MIME_SORT_REFS_MAX), else the first of In-Reply-To (RFC 5256 5
   (1)(B)). Pure: no I/O. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"
#include "mime/mime.h"

struct mime_subj {
	const char *p;
	size_t start, end;
	bool reply;
};

/* Length of a subj-blob at pos (with its trailing white space), 0 if
   none. */
static size_t
mime_subject_blob(const struct mime_subj *sj, size_t pos)
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
mime_subject_refwd(const struct mime_subj *sj, size_t pos)
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
	i += mime_subject_blob(sj, i);
	if (i >= sj->end || sj->p[i] != ':')
		return 0;
	return i + 1 - pos;
}

/* Step (3): one subj-leader at the start, or 0. */
static size_t
mime_subject_leader(struct mime_subj *sj)
{
	size_t i = sj->start, b, r;

	if (i < sj->end && sj->p[i] == ' ')
		return 1;
	while ((b = mime_subject_blob(sj, i)) > 0)
		i += b;
	r = mime_subject_refwd(sj, i);
	if (r == 0)
		return 0;
	sj->reply = true;
	return i + r - sj->start;
}

/* Step (2). */
static void
mime_subject_trailers(struct mime_subj *sj)
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
mime_subject_leaders(struct mime_subj *sj)
{
	bool changed = true;
	size_t n;

	while (changed) {
		changed = false;
		while ((n = mime_subject_leader(sj)) > 0) {
			sj->start += n;
			changed = true;
		}
		n = mime_subject_blob(sj, sj->start);
		if (n > 0 && sj->start + n < sj->end) {
			sj->start += n;
			changed = true;
		}
	}
}

/* Step (6): 1 when a "[fwd:" ... "]" wrapper was removed. */
static int
mime_subject_fwd(struct mime_subj *sj)
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
mime_subject_spaces(char *p, size_t len)
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
mime_subject_base(const char *in, size_t len, struct buf *out, bool *reply_r)
{
	struct mime_subj sj = { 0 };
	struct buf dec;
	size_t n;
	int ret = 0;

	*reply_r = false;
	buf_reset(out);
	buf_init(&dec, out->max);
	/* A cut decode still has a usable prefix. */
	(void)mime_decode_words(&dec, in, len);
	n = dec.len > 0 ? mime_subject_spaces((char *)dec.data, dec.len) : 0;
	sj.p = (const char *)dec.data;
	sj.end = n;
	do {
		mime_subject_trailers(&sj);
		mime_subject_leaders(&sj);
	} while (mime_subject_fwd(&sj));
	if (sj.end > sj.start &&
	    buf_append(out, sj.p + sj.start, sj.end - sj.start) < 0)
		ret = -1;
	*reply_r = sj.reply;
	buf_free(&dec);
	return ret;
}

/* ---- the whole set of keys ---- */

/* Value of the first field name (a cut value counts), or NULL. */
static char *
mime_sort_header(const uint8_t *hdr, size_t hlen, const char *name)
{
	struct buf b;

	buf_init(&b, MIME_HEADER_VALUE_MAX_BYTES);
	if (mime_header_get(hdr, hlen, name, &b) == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

static char *
mime_sort_decode(const char *s)
{
	struct buf b;

	buf_init(&b, MIME_SORT_SUBJECT_MAX_BYTES);
	(void)mime_decode_words(&b, s, strlen(s));
	return buf_steal(&b, NULL);
}

/* "mailbox@host" (NULL parts as ""). */
static char *
mime_sort_join(const char *mailbox, const char *domain)
{
	size_t m = mailbox ? strlen(mailbox) : 0, d = domain ? strlen(domain) : 0;
	char *r = xmalloc(m + d + 2);

	if (m > 0)
		memcpy(r, mailbox, m);
	r[m] = '@';
	if (d > 0)
		memcpy(r + m + 1, domain, d);
	r[m + d + 1] = '\0';
	return r;
}

/* First address of an address field (value freed), as the first
   address structure of the ENVELOPE field: a mailbox, or the start of
   a group. addr-mailbox in *mbox_r (a group's: its name), the display
   form in *disp_r (disp_r NULL: not wanted; a group's: its name, as
   RFC 5957 3 takes addr-mailbox when addr-host is NIL). */
static void
mime_sort_addr(char *value, char **mbox_r, char **disp_r)
{
	struct mime_address_list list;
	const struct mime_address *ad = NULL;
	size_t i;

	if (value == NULL)
		return;
	(void)mime_address_parse(value, strlen(value), &list);
	for (i = 0; i < list.count && ad == NULL; i++) {
		if (list.addrs[i].kind != MIME_ADDRESS_GROUP_END)
			ad = &list.addrs[i];
	}
	if (ad != NULL && ad->kind == MIME_ADDRESS_GROUP_START) {
		*mbox_r = xstrdup(ad->mailbox ? ad->mailbox : "");
		if (disp_r != NULL)
			*disp_r = xstrdup(*mbox_r);
	} else if (ad != NULL) {
		*mbox_r = xstrdup(ad->mailbox ? ad->mailbox : "");
		if (disp_r != NULL && ad->name != NULL && ad->name[0] != '\0')
			*disp_r = mime_sort_decode(ad->name);
		else if (disp_r != NULL)
			*disp_r = mime_sort_join(ad->mailbox, ad->domain);
	}
	mime_address_list_free(&list);
	free(value);
}

/* Append the Message-IDs "<...>" of value to out (space-separated),
   passing over the first skip and keeping at most max. Returns how many
   were seen (skipped included); out NULL: only counts. */
static size_t
mime_sort_msgids(const char *value, struct buf *out, size_t skip, size_t max)
{
	const char *p = value, *q;
	size_t seen = 0, len;

	while ((p = strchr(p, '<')) != NULL) {
		for (q = p + 1; *q != '\0' && *q != '>' && *q != '<' &&
				*q != ' ' && *q != '\t';
		     q++)
			;
		if (*q == '\0')
			break;
		if (*q != '>') {
			p = q;
			continue;
		}
		len = (size_t)(q - p + 1);
		if (len > 2 && len <= MIME_SORT_MSGID_MAX_BYTES) {
			if (out != NULL && seen >= skip && seen - skip < max) {
				if (out->len > 0)
					(void)buf_append_byte(out, ' ');
				(void)buf_append(out, p, len);
			}
			seen++;
		}
		p = q + 1;
	}
	return seen;
}

/* The ids of value (freed) as a string, or NULL when there is none. */
static char *
mime_sort_ids(char *value, size_t skip, size_t max)
{
	struct buf b;

	if (value == NULL)
		return NULL;
	/* max ids of at most MIME_SORT_MSGID_MAX_BYTES and a space each */
	buf_init(&b, max * (MIME_SORT_MSGID_MAX_BYTES + 1) + 1);
	(void)mime_sort_msgids(value, &b, skip, max);
	free(value);
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

static void
mime_sort_refs(const uint8_t *hdr, size_t hlen, struct mime_sort_keys *k)
{
	char *v;
	size_t n;

	k->msgid = mime_sort_ids(mime_sort_header(hdr, hlen, "Message-ID"),
				 0, 1);
	v = mime_sort_header(hdr, hlen, "References");
	n = v != NULL ? mime_sort_msgids(v, NULL, 0, 0) : 0;
	if (n > 0) {
		/* keep the newest ones when there are too many */
		k->refs = mime_sort_ids(v, n > MIME_SORT_REFS_MAX
						   ? n - MIME_SORT_REFS_MAX
						   : 0,
					MIME_SORT_REFS_MAX);
		return;
	}
	free(v);
	k->refs = mime_sort_ids(mime_sort_header(hdr, hlen, "In-Reply-To"),
				0, 1);
}

void
mime_sort_keys_parse(const uint8_t *hdr, size_t hlen,
		     struct mime_sort_keys *k)
{
	struct buf b;
	char *v;

	memset(k, 0, sizeof(*k));
	v = mime_sort_header(hdr, hlen, "Subject");
	buf_init(&b, MIME_SORT_SUBJECT_MAX_BYTES);
	if (v != NULL && mime_subject_base(v, strlen(v), &b, &k->reply) == 0)
		k->subject = buf_steal(&b, NULL);
	else
		k->subject = xstrdup("");
	buf_free(&b);
	free(v);
	mime_sort_addr(mime_sort_header(hdr, hlen, "From"), &k->from,
		       &k->dfrom);
	mime_sort_addr(mime_sort_header(hdr, hlen, "To"), &k->to, &k->dto);
	mime_sort_addr(mime_sort_header(hdr, hlen, "Cc"), &k->cc, NULL);
	mime_sort_refs(hdr, hlen, k);
}

void
mime_sort_keys_free(struct mime_sort_keys *k)
{
	free(k->subject);
	free(k->from);
	free(k->to);
	free(k->cc);
	free(k->dfrom);
	free(k->dto);
	free(k->msgid);
	free(k->refs);
	memset(k, 0, sizeof(*k));
}
