/* libFuzzer target for the IMAP value parsers outside the command
   grammar: modified UTF-7 mailbox names (imap_mutf7.c, RFC 3501 5.1.3)
   in both directions with round-trip checks, sequence sets
   (imap_seqset.c) and the APPEND/SEARCH date formats. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/arena.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* decode(encode(utf8)) must give the same bytes back. */
static void
fuzz_mutf7_roundtrip(const char *s, size_t len)
{
	struct buf e, d;

	buf_init(&e, 8 * len + 16);
	buf_init(&d, 2 * len + 16);
	if (imap_mutf7_encode(&e, s, len) == 0) {
		if (imap_mutf7_decode(&d, (const char *)e.data, e.len) != 0)
			abort();
		if (d.len != len || (len > 0 && memcmp(d.data, s, len) != 0))
			abort();
	}
	buf_free(&e);
	buf_free(&d);
}

/* A strict decoder accepts only canonical input: encode(decode(m)) == m. */
static void
fuzz_mutf7_decode(const char *s, size_t len)
{
	struct buf d, e;

	buf_init(&d, 2 * len + 16);
	buf_init(&e, 8 * len + 16);
	if (imap_mutf7_decode(&d, s, len) == 0) {
		if (!imap_utf8_valid((const char *)d.data, d.len))
			abort();
		if (imap_mutf7_encode(&e, (const char *)d.data, d.len) != 0)
			abort();
		if (e.len != len || (len > 0 && memcmp(e.data, s, len) != 0))
			abort();
	}
	buf_free(&d);
	buf_free(&e);
}

static void
fuzz_seqset(const char *s, size_t len)
{
	struct arena *a = arena_new("fuzz", 1024);
	struct imap_seqset set;
	uint32_t nums[64];
	struct buf out;
	size_t i, n = 0;

	if (imap_seqset_parse(a, s, len, &set) == 0) {
		imap_seqset_resolve(&set, 1000);
		for (i = 0; i < set.count && n < 64; i++)
			nums[n++] = set.r[i].lo;
		(void)imap_seqset_contains(&set, 500);
		(void)imap_seqset_max(&set);
		buf_init(&out, 4096);
		(void)imap_seqset_write(&out, nums, n);
		buf_free(&out);
	}
	arena_free(&a);
}

static void
fuzz_dates(const uint8_t *data, size_t size)
{
	char s[128], out[64];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	int64_t t;

	memcpy(s, data, n);
	s[n] = '\0';
	if (imap_date_time_parse(s, &t) == 0)
		imap_date_time_format(t, out, sizeof(out));
	(void)imap_date_parse(s, &t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	fuzz_mutf7_roundtrip(s, size);
	fuzz_mutf7_decode(s, size);
	fuzz_seqset(s, size);
	fuzz_dates(data, size);
	return 0;
}
