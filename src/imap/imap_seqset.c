/* Sequence sets (RFC 9051 section 9, "sequence-set"): kept as sorted,
   merged ranges, never expanded per number, so "1:4294967295" costs one
   range. "*" is resolved against the mailbox (RFC 9051 6.4.8: "n:*" with
   n > max is "max:n", i.e. it still selects the last message). */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

/* A number 1..2^32-1, or '*' (*star_r; its value is resolved later:
   "n:4294967295" and "n:*" differ when n is above the last UID). */
static int
imap_seq_number(const char *s, size_t len, uint32_t *n_r, bool *star_r)
{
	*star_r = len == 1 && s[0] == '*';
	if (*star_r) {
		*n_r = IMAP_SEQ_STAR;
		return 0;
	}
	if (len == 0 || s[0] == '0')
		return -1;
	return parse_u32(sv_make(s, len), UINT32_MAX, n_r);
}

int
imap_seqset_parse(struct arena *a, const char *s, size_t len,
		  struct imap_seqset *set_r)
{
	size_t i, start, count = 1, n = 0;

	memset(set_r, 0, sizeof(*set_r));
	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] == ',')
			count++;
	}
	set_r->r = arena_alloc(a, count * sizeof(*set_r->r));
	for (start = 0; start <= len; start = i + 1) {
		const char *item = s + start;
		size_t ilen, colon;
		uint32_t lo, hi;
		bool lo_star, hi_star;

		for (i = start; i < len && s[i] != ','; i++)
			;
		ilen = i - start;
		for (colon = 0; colon < ilen && item[colon] != ':'; colon++)
			;
		if (imap_seq_number(item, colon, &lo, &lo_star) < 0)
			return -1;
		hi = lo;
		hi_star = lo_star;
		if (colon < ilen &&
		    imap_seq_number(item + colon + 1, ilen - colon - 1, &hi,
				    &hi_star) < 0)
			return -1;
		if (lo_star || hi_star)
			set_r->has_star = true;
		set_r->r[n].lo = lo;
		set_r->r[n].hi = hi;
		set_r->r[n].lo_star = lo_star;
		set_r->r[n].hi_star = hi_star;
		n++;
	}
	set_r->count = n;
	return 0;
}

static int
imap_range_cmp(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return 0;
}

void
imap_seqset_resolve(struct imap_seqset *set, uint32_t star)
{
	size_t i, o = 0;

	for (i = 0; i < set->count; i++) {
		struct imap_range *r = &set->r[i];

		if (r->lo_star)
			r->lo = star;
		if (r->hi_star)
			r->hi = star;
		r->lo_star = r->hi_star = false;
		if (r->lo > r->hi) {
			uint32_t t = r->lo;

			r->lo = r->hi;
			r->hi = t;
		}
	}
	if (set->count == 0)
		return;
	qsort(set->r, set->count, sizeof(*set->r), imap_range_cmp);
	for (i = 1; i < set->count; i++) {
		struct imap_range *last = &set->r[o];

		if (set->r[i].lo <= last->hi ||
		    (last->hi != UINT32_MAX && set->r[i].lo == last->hi + 1)) {
			if (set->r[i].hi > last->hi)
				last->hi = set->r[i].hi;
		} else {
			set->r[++o] = set->r[i];
		}
	}
	set->count = o + 1;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n < set->r[mid].lo)
			hi = mid;
		else if (n > set->r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint32_t
imap_seqset_max(const struct imap_seqset *set)
{
	return set->count == 0 ? 0 : set->r[set->count - 1].hi;
}

int
imap_seqset_write(struct buf *out, const uint32_t *nums, size_t count)
{
	size_t i = 0, j;

	while (i < count) {
		for (j = i; j + 1 < count && nums[j] != UINT32_MAX &&
			    nums[j + 1] == nums[j] + 1;
		     j++)
			;
		if (i > 0 && buf_append_byte(out, ',') < 0)
			return -1;
		if (j == i) {
			if (buf_printf(out, "%u", nums[i]) < 0)
				return -1;
		} else if (buf_printf(out, "%u:%u", nums[i], nums[j]) < 0) {
			return -1;
		}
		i = j + 1;
	}
	return 0;
}
