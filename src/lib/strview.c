/* String views and strict number parsing; see strview.h. */
#include <string.h>
#include <strings.h>

#include "lib/strview.h"
#include "lib/xalloc.h"

struct strview
sv_make(const void *p, size_t len)
{
	struct strview v = { p, len };
	return v;
}

struct strview
sv_from_cstr(const char *s)
{
	return sv_make(s, strlen(s));
}

bool
sv_eq(struct strview a, struct strview b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool
sv_eq_ci_cstr(struct strview a, const char *s)
{
	size_t n = strlen(s);
	return a.len == n && (n == 0 || strncasecmp(a.p, s, n) == 0);
}

bool
sv_starts_with_ci(struct strview a, const char *prefix)
{
	size_t n = strlen(prefix);
	return a.len >= n && (n == 0 || strncasecmp(a.p, prefix, n) == 0);
}

void
sv_skip(struct strview *v, size_t n)
{
	if (n > v->len)
		n = v->len;
	v->p += n;
	v->len -= n;
}

long
sv_index(struct strview v, char c)
{
	const char *q = v.len == 0 ? NULL : memchr(v.p, c, v.len);
	return q == NULL ? -1 : (long)(q - v.p);
}

struct strview
sv_split(struct strview *v, char c)
{
	long i = sv_index(*v, c);
	struct strview head;

	if (i < 0) {
		head = *v;
		sv_skip(v, v->len);
		return head;
	}
	head = sv_make(v->p, (size_t)i);
	sv_skip(v, (size_t)i + 1);
	return head;
}

struct strview
sv_trim(struct strview v)
{
	while (v.len > 0 && (v.p[0] == ' ' || v.p[0] == '\t'))
		sv_skip(&v, 1);
	while (v.len > 0 && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
		v.len--;
	return v;
}

char *
sv_dup(struct strview v)
{
	char *s = xmalloc(v.len + 1);
	if (v.len > 0)
		memcpy(s, v.p, v.len);
	s[v.len] = '\0';
	return s;
}

int
parse_u64(struct strview v, uint64_t max, uint64_t *out_r)
{
	uint64_t n = 0;
	size_t i;

	if (v.len == 0)
		return -1;
	for (i = 0; i < v.len; i++) {
		unsigned d;
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		d = (unsigned)(v.p[i] - '0');
		if (d > max || n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*out_r = n;
	return 0;
}

int
parse_u32(struct strview v, uint32_t max, uint32_t *out_r)
{
	uint64_t n;
	if (parse_u64(v, max, &n) < 0)
		return -1;
	*out_r = (uint32_t)n;
	return 0;
}

int
parse_u64_cstr(const char *s, uint64_t max, uint64_t *out_r)
{
	return parse_u64(sv_from_cstr(s), max, out_r);
}
