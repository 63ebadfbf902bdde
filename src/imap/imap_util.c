/* Shared helpers of the IMAP commands: mailbox names on the wire (RFC
   9051 5.1: "/" delimiter, INBOX case-insensitive, modified UTF-7 unless
   UTF8=ACCEPT (RFC 6855) / IMAP4rev2), strings (quoted or literal),
   flag lists (RFC 9051 2.3.2), sequence sets with "$" (RFC 5182) mapped
   onto the view, and the date formats of APPEND, SEARCH and
   INTERNALDATE (RFC 9051 9: date-time, date). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_int.h"
#include "store/store.h"

static bool
imap_name_level_ok(const char *lv, size_t len)
{
	if (len == 0)
		return false;
	if ((len == 1 && lv[0] == '.') ||
	    (len == 2 && lv[0] == '.' && lv[1] == '.'))
		return false;
	return true;
}

static bool
imap_name_valid(const char *name, size_t len, const char **error_r)
{
	size_t i, start = 0;

	if (len == 0) {
		*error_r = "NO Empty mailbox name.";
		return false;
	}
	if (len > STORE_MAILBOX_NAME_MAX) {
		*error_r = "NO [LIMIT] Mailbox name too long.";
		return false;
	}
	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '/';

		if (c < 0x20 || c == 0x7f) {
			*error_r = "NO Mailbox name contains control "
				   "characters.";
			return false;
		}
		if (c != '/')
			continue;
		if (!imap_name_level_ok(name + start, i - start)) {
			*error_r = "NO Invalid mailbox name: empty or "
				   "'.'/'..' hierarchy level.";
			return false;
		}
		start = i + 1;
	}
	return true;
}

const char *
imap_mailbox_from_arg(struct imap_session *s, const struct imap_arg *arg,
		      const char **error_r)
{
	struct arena *a = imap_cmd_arena(s);
	struct buf b;
	char *name;

	if (!imap_arg_is_astring(arg)) {
		*error_r = "BAD Invalid mailbox name argument.";
		return NULL;
	}
	if (memchr(arg->str, '\0', arg->len) != NULL) {
		*error_r = "NO Mailbox name contains NUL.";
		return NULL;
	}
	buf_init(&b, STORE_MAILBOX_NAME_MAX * 2);
	if (s->utf8) {
		if (!imap_utf8_valid(arg->str, arg->len) ||
		    buf_append(&b, arg->str, arg->len) < 0) {
			buf_free(&b);
			*error_r = "NO Mailbox name is not valid UTF-8.";
			return NULL;
		}
	} else if (imap_mutf7_decode(&b, arg->str, arg->len) < 0) {
		buf_free(&b);
		*error_r = "NO Mailbox name is not valid mUTF-7.";
		return NULL;
	}
	name = arena_strndup(a, buf_cstr(&b), b.len);
	buf_free(&b);
	if (!imap_name_valid(name, strlen(name), error_r))
		return NULL;
	/* RFC 9051 5.1: INBOX is case-insensitive, also as a parent. */
	if (strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/'))
		memcpy(name, "INBOX", 5);
	return name;
}

static bool
imap_quotable(const char *s, size_t len, bool allow8)
{
	size_t i;

	if (len > 1024)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		if (c >= 0x80 && !allow8)
			return false;
	}
	return true;
}

static int
imap_write_quoted(struct buf *out, const char *s, size_t len)
{
	size_t i;

	if (buf_append_byte(out, '"') < 0)
		return -1;
	for (i = 0; i < len; i++) {
		if ((s[i] == '"' || s[i] == '\\') &&
		    buf_append_byte(out, '\\') < 0)
			return -1;
		if (buf_append_byte(out, (uint8_t)s[i]) < 0)
			return -1;
	}
	return buf_append_byte(out, '"');
}

int
imap_write_string(struct buf *out, const char *s, size_t len)
{
	if (imap_quotable(s, len, false))
		return imap_write_quoted(out, s, len);
	if (buf_printf(out, "{%zu}\r\n", len) < 0)
		return -1;
	return buf_append(out, s, len);
}

int
imap_write_mailbox(struct imap_session *s, struct buf *out,
		   const char *name)
{
	struct buf b;
	int r;

	if (s->utf8) {
		if (imap_quotable(name, strlen(name), true))
			return imap_write_quoted(out, name, strlen(name));
		return imap_write_string(out, name, strlen(name));
	}
	buf_init(&b, STORE_MAILBOX_NAME_MAX * 8);
	if (imap_mutf7_encode(&b, name, strlen(name)) < 0) {
		buf_free(&b);
		return -1;
	}
	r = imap_write_string(out, (const char *)b.data, b.len);
	buf_free(&b);
	return r;
}

/* ---- flags ---- */

static const struct {
	const char *name;
	uint32_t flag;
} imap_sysflags[] = {
	{ "\\Answered", STORE_FLAG_ANSWERED }, { "\\Flagged", STORE_FLAG_FLAGGED },
	{ "\\Deleted", STORE_FLAG_DELETED },   { "\\Seen", STORE_FLAG_SEEN },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

int
imap_write_flags(struct buf *out, uint32_t flags, const char *keywords)
{
	bool first = true;
	size_t i;

	for (i = 0; i < sizeof(imap_sysflags) / sizeof(imap_sysflags[0]); i++) {
		if ((flags & imap_sysflags[i].flag) == 0)
			continue;
		if (!first && buf_append_byte(out, ' ') < 0)
			return -1;
		if (buf_append_str(out, imap_sysflags[i].name) < 0)
			return -1;
		first = false;
	}
	if (flags & IMAP_FLAG_RECENT) {
		if (!first && buf_append_byte(out, ' ') < 0)
			return -1;
		if (buf_append_str(out, "\\Recent") < 0)
			return -1;
		first = false;
	}
	if (keywords != NULL && *keywords != '\0') {
		if (!first && buf_append_byte(out, ' ') < 0)
			return -1;
		if (buf_append_str(out, keywords) < 0)
			return -1;
	}
	return 0;
}

static bool
imap_keyword_valid(const char *k, size_t len)
{
	size_t i;

	if (len == 0 || len > STORE_KEYWORD_MAX_BYTES)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static bool
imap_keyword_dup(const struct buf *kw, const char *k)
{
	const char *p = buf_cstr(kw);
	size_t klen = strlen(k);

	while (*p != '\0') {
		const char *e = strchr(p, ' ');
		size_t n = e == NULL ? strlen(p) : (size_t)(e - p);

		if (n == klen && strncasecmp(p, k, n) == 0)
			return true;
		p += n;
		if (*p == ' ')
			p++;
	}
	return false;
}

int
imap_flags_parse(struct arena *a, const struct imap_arg *args, size_t count,
		 bool allow_recent, uint32_t *flags_r, const char **keywords_r,
		 const char **error_r)
{
	struct buf kw;
	size_t i, j, nkw = 0;

	*flags_r = 0;
	*keywords_r = NULL;
	buf_init(&kw, STORE_KEYWORDS_MAX * (STORE_KEYWORD_MAX_BYTES + 1));
	for (i = 0; i < count; i++) {
		const struct imap_arg *f = &args[i];
		bool found = false;

		if (f->type != IMAP_ARG_ATOM) {
			*error_r = "BAD Flags must be atoms.";
			goto fail;
		}
		if (f->str[0] == '\\') {
			for (j = 0; j < sizeof(imap_sysflags) /
						sizeof(imap_sysflags[0]);
			     j++) {
				if (strcasecmp(f->str, imap_sysflags[j].name) ==
				    0) {
					*flags_r |= imap_sysflags[j].flag;
					found = true;
				}
			}
			if (!found && allow_recent &&
			    strcasecmp(f->str, "\\Recent") == 0)
				found = true;
			if (!found) {
				*error_r = "BAD Invalid system flag.";
				goto fail;
			}
			continue;
		}
		if (!imap_keyword_valid(f->str, f->len)) {
			*error_r = "BAD Invalid keyword.";
			goto fail;
		}
		if (imap_keyword_dup(&kw, f->str))
			continue;
		if (++nkw > STORE_KEYWORDS_MAX) {
			*error_r = "NO [LIMIT] Too many keywords.";
			goto fail;
		}
		if ((kw.len > 0 && buf_append_byte(&kw, ' ') < 0) ||
		    buf_append(&kw, f->str, f->len) < 0) {
			*error_r = "NO [LIMIT] Too many keywords.";
			goto fail;
		}
	}
	if (kw.len > 0)
		*keywords_r = arena_strndup(a, (const char *)kw.data, kw.len);
	buf_free(&kw);
	return 0;
fail:
	buf_free(&kw);
	return -1;
}

/* ---- sequence sets onto the view ---- */

static void
imap_idx_push(struct arena *a, size_t **idx, size_t *n, size_t *cap,
	      size_t v)
{
	if (*n == *cap) {
		size_t ncap = *cap == 0 ? 64 : *cap * 2;
		size_t *nidx = arena_alloc(a, ncap * sizeof(*nidx));

		if (*n > 0)
			memcpy(nidx, *idx, *n * sizeof(*nidx));
		*idx = nidx;
		*cap = ncap;
	}
	(*idx)[(*n)++] = v;
}

static int
imap_saved_to_indexes(struct imap_session *s, struct arena *a,
		      size_t **idx_r, size_t *count_r)
{
	size_t i, cap = 0;
	long idx;

	for (i = 0; i < s->saved_count; i++) {
		idx = imap_view_find_uid(s->view, s->saved_uids[i]);
		if (idx >= 0)
			imap_idx_push(a, idx_r, count_r, &cap, (size_t)idx);
	}
	return 0;
}

int
imap_set_to_indexes(struct imap_session *s, const struct imap_arg *arg,
		    bool uid, size_t **idx_r, size_t *count_r,
		    const char **error_r)
{
	struct arena *a = imap_cmd_arena(s);
	struct imap_view *v = s->view;
	struct imap_seqset set;
	size_t i, cap = 0;
	uint32_t n;

	*idx_r = NULL;
	*count_r = 0;
	if (arg->type != IMAP_ARG_ATOM) {
		*error_r = "BAD Invalid sequence set.";
		return -1;
	}
	if (strcmp(arg->str, "$") == 0)
		return imap_saved_to_indexes(s, a, idx_r, count_r);
	if (imap_seqset_parse(a, arg->str, arg->len, &set) < 0) {
		*error_r = "BAD Invalid sequence set.";
		return -1;
	}
	if (uid) {
		imap_seqset_resolve(&set, v->count > 0 ?
						 v->msgs[v->count - 1].uid : 0);
		for (i = 0; i < v->count; i++) {
			if (imap_seqset_contains(&set, v->msgs[i].uid))
				imap_idx_push(a, idx_r, count_r, &cap, i);
		}
		return 0;
	}
	imap_seqset_resolve(&set, (uint32_t)v->count);
	if (imap_seqset_max(&set) > v->count || set.r[0].lo == 0) {
		*error_r = "BAD Error in IMAP command: Invalid messageset.";
		return -1;
	}
	for (i = 0; i < set.count; i++) {
		for (n = set.r[i].lo; n <= set.r[i].hi; n++)
			imap_idx_push(a, idx_r, count_r, &cap, n - 1);
	}
	return 0;
}

/* ---- dates ---- */

static const char *const imap_months[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static int
imap_digits(const char *s, size_t n, int *v_r)
{
	size_t i;
	int v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*v_r = v;
	return 0;
}

/* "d-Mon-yyyy", " d-Mon-yyyy" or "dd-Mon-yyyy" at s (NUL-terminated);
   returns bytes used or 0. */
static size_t
imap_date_part(const char *s, struct tm *tm)
{
	size_t off = 0, dlen, i;
	const char *d;
	int day, year;

	memset(tm, 0, sizeof(*tm));
	if (s[0] == ' ') {
		off = 1;
		dlen = 1;
	} else {
		dlen = s[0] != '\0' && s[1] == '-' ? 1 : 2;
	}
	d = s + off;
	if (imap_digits(d, dlen, &day) < 0 || d[dlen] != '-')
		return 0;
	for (i = 0; i < 12; i++) {
		if (strncasecmp(d + dlen + 1, imap_months[i], 3) == 0)
			break;
	}
	if (i == 12 || d[dlen + 4] != '-' ||
	    imap_digits(d + dlen + 5, 4, &year) < 0)
		return 0;
	if (day < 1 || day > 31 || year < 1900)
		return 0;
	tm->tm_mday = day;
	tm->tm_mon = (int)i;
	tm->tm_year = year - 1900;
	return off + dlen + 9;
}

int
imap_date_parse(const char *s, int64_t *day_start_r)
{
	struct tm tm;
	size_t n = imap_date_part(s, &tm);

	if (n == 0 || s[n] != '\0')
		return -1;
	*day_start_r = (int64_t)timegm(&tm);
	return 0;
}

int
imap_date_time_parse(const char *s, int64_t *time_r)
{
	struct tm tm;
	int hh, mm, ss, zh, zm, sign;
	size_t n = imap_date_part(s, &tm);
	const char *t;

	if (n == 0)
		return -1;
	t = s + n;
	if (strlen(t) != 15 || t[0] != ' ')
		return -1;
	t++;
	if (imap_digits(t, 2, &hh) < 0 || t[2] != ':' ||
	    imap_digits(t + 3, 2, &mm) < 0 || t[5] != ':' ||
	    imap_digits(t + 6, 2, &ss) < 0 || t[8] != ' ' ||
	    (t[9] != '+' && t[9] != '-') || imap_digits(t + 10, 2, &zh) < 0 ||
	    imap_digits(t + 12, 2, &zm) < 0)
		return -1;
	if (hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return -1;
	sign = t[9] == '-' ? -1 : 1;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*time_r = (int64_t)timegm(&tm) - sign * (zh * 3600 + zm * 60);
	return 0;
}

void
imap_date_time_format(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(out, outlen, "%02d-%s-%04d %02d:%02d:%02d +0000",
		 tm.tm_mday, imap_months[tm.tm_mon % 12], tm.tm_year + 1900,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
}
