/* RFC 5322 date-time: 3.3 (day-of-week, date, time, zone) and the
   obsolete syntax of 4.3 (CFWS between tokens, 2- and 3-digit years,
   named and military zones), converted to unix time.
   Lenient where mail in the wild needs it: a missing zone counts as
   +0000, unknown alphabetic zones too, '-' may separate the date parts,
   trailing text after the zone is ignored.
   Security: tokens are length-bounded and parsed with parse_u32; all
   ranges are checked before any arithmetic. */
#include <string.h>

#include "lib/strview.h"
#include "mime/mime_int.h"

static const char mime_date_months[12][4] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec",
};

static const char mime_date_days[7][4] = {
	"mon", "tue", "wed", "thu", "fri", "sat", "sun",
};

/* A run of digits or of letters (at most 16 bytes long). */
static struct strview
mime_date_word(struct mime_lex *lx, bool digits)
{
	const char *start;

	mime_lex_skip_cfws(lx);
	start = lx->p;
	while (lx->p < lx->end && lx->p - start < 16) {
		char c = *lx->p;
		bool is_digit = c >= '0' && c <= '9';
		bool is_alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

		if (digits ? !is_digit : !is_alpha)
			break;
		lx->p++;
	}
	return sv_make(start, (size_t)(lx->p - start));
}

static bool
mime_date_number(struct mime_lex *lx, size_t min_len, size_t max_len,
		 uint32_t max, uint32_t *n_r)
{
	struct strview w = mime_date_word(lx, true);

	return w.len >= min_len && w.len <= max_len &&
	       parse_u32(w, max, n_r) == 0;
}

/* Index of a 3-letter prefix in names[count], or -1. */
static int
mime_date_name(struct strview w, const char (*names)[4], int count)
{
	if (w.len < 3)
		return -1;
	for (int i = 0; i < count; i++) {
		if (strncasecmp(w.p, names[i], 3) == 0)
			return i;
	}
	return -1;
}

static bool
mime_date_skip(struct mime_lex *lx, char c)
{
	mime_lex_skip_cfws(lx);
	if (mime_lex_peek(lx) != c)
		return false;
	lx->p++;
	return true;
}

static bool
mime_date_is_leap(uint32_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static uint32_t
mime_date_month_days(uint32_t y, uint32_t m)
{
	static const uint8_t days[12] = { 31, 28, 31, 30, 31, 30,
					  31, 31, 30, 31, 30, 31 };

	return m == 1 && mime_date_is_leap(y) ? 29 : days[m];
}

/* Days since 1970-01-01 of a valid date (y >= 1900, m 0-based). */
static int64_t
mime_date_days_since_epoch(uint32_t y, uint32_t m, uint32_t d)
{
	int64_t days = 0;

	for (uint32_t yy = 1970; yy < y; yy++)
		days += mime_date_is_leap(yy) ? 366 : 365;
	for (uint32_t yy = y; yy < 1970; yy++)
		days -= mime_date_is_leap(yy) ? 366 : 365;
	for (uint32_t mm = 0; mm < m; mm++)
		days += mime_date_month_days(y, mm);
	return days + d - 1;
}

/* zone = ("+" / "-") 4DIGIT / obs-zone. Offset in seconds east. */
static bool
mime_date_zone(struct mime_lex *lx, int32_t *off_r)
{
	static const struct {
		const char *name;
		int32_t hours;
	} zones[] = {
		{ "ut", 0 },   { "gmt", 0 },  { "utc", 0 },  { "z", 0 },
		{ "edt", -4 }, { "est", -5 }, { "cdt", -5 }, { "cst", -6 },
		{ "mdt", -6 }, { "mst", -7 }, { "pdt", -7 }, { "pst", -8 },
	};
	struct strview w;
	uint32_t n;
	int c;

	*off_r = 0;
	mime_lex_skip_cfws(lx);
	c = mime_lex_peek(lx);
	if (c == '+' || c == '-') {
		lx->p++;
		w = mime_date_word(lx, true);
		if (w.len != 4 || parse_u32(w, 9959, &n) < 0 || n % 100 > 59)
			return false;
		*off_r = (int32_t)((n / 100) * 3600 + (n % 100) * 60);
		if (c == '-')
			*off_r = -*off_r;
		return true;
	}
	w = mime_date_word(lx, false);
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		if (sv_eq_ci_cstr(w, zones[i].name))
			*off_r = zones[i].hours * 3600;
	}
	/* RFC 5322 4.3: military zones and unknown names mean -0000 */
	return true;
}

/* time-of-day = hour ":" minute [ ":" second ] */
static bool
mime_date_time(struct mime_lex *lx, uint32_t *secs_r)
{
	uint32_t h, m, s = 0;

	if (!mime_date_number(lx, 1, 2, 23, &h) || !mime_date_skip(lx, ':') ||
	    !mime_date_number(lx, 1, 2, 59, &m))
		return false;
	mime_lex_skip_cfws(lx);
	if (mime_lex_peek(lx) == ':') {
		lx->p++;
		if (!mime_date_number(lx, 1, 2, 60, &s))
			return false;
	}
	*secs_r = h * 3600 + m * 60 + s;
	return true;
}

/* year: 4+ digits, or obs-year 2 digits (< 50 = 20xx) / 3 digits. */
static bool
mime_date_year(struct mime_lex *lx, uint32_t *y_r)
{
	struct strview w = mime_date_word(lx, true);
	uint32_t y;

	if (w.len < 2 || w.len > 4 || parse_u32(w, 9999, &y) < 0)
		return false;
	if (w.len == 2)
		y += y < 50 ? 2000 : 1900;
	else if (w.len == 3)
		y += 1900;
	*y_r = y;
	return y >= 1900;
}

/* [day-of-week ","] day month year */
static bool
mime_date_date(struct mime_lex *lx, uint32_t *y_r, uint32_t *m_r,
	       uint32_t *d_r)
{
	const char *save = lx->p;
	struct strview w = mime_date_word(lx, false);
	int month;

	if (w.len > 0) {
		if (mime_date_name(w, mime_date_days, 7) < 0)
			return false;
		(void)mime_date_skip(lx, ',');
	} else {
		lx->p = save;
	}
	if (!mime_date_number(lx, 1, 2, 31, d_r) || *d_r == 0)
		return false;
	(void)mime_date_skip(lx, '-');
	month = mime_date_name(mime_date_word(lx, false), mime_date_months, 12);
	if (month < 0)
		return false;
	*m_r = (uint32_t)month;
	(void)mime_date_skip(lx, '-');
	if (!mime_date_year(lx, y_r))
		return false;
	return *d_r <= mime_date_month_days(*y_r, *m_r);
}

/* Every field of a date-time (RFC 5322 3.3, with the obsolete forms). */
static bool
mime_date_fields(const char *s, size_t len, uint32_t *y, uint32_t *m,
		 uint32_t *d, uint32_t *secs, int32_t *off)
{
	struct mime_lex lx;

	mime_lex_init(&lx, s, len);
	return mime_date_date(&lx, y, m, d) && mime_date_time(&lx, secs) &&
	       mime_date_zone(&lx, off);
}

int
mime_date_parse_day(const char *s, size_t len, int64_t *day_r)
{
	uint32_t y, m, d, secs;
	int32_t off;

	if (!mime_date_fields(s, len, &y, &m, &d, &secs, &off))
		return -1;
	*day_r = mime_date_days_since_epoch(y, m, d);
	return 0;
}

int
mime_date_parse(const char *s, size_t len, int64_t *time_r)
{
	uint32_t y, m, d, secs;
	int32_t off;

	if (!mime_date_fields(s, len, &y, &m, &d, &secs, &off))
		return -1;
	*time_r = mime_date_days_since_epoch(y, m, d) * 86400 +
		  (int64_t)secs - off;
	return 0;
}
