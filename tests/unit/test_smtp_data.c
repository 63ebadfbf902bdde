/* Tests for the DATA/BDAT state machines (src/smtp/smtp_data.c): each case
   is fed whole, byte by byte, and split at every offset. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "smtp/smtp_int.h"

struct data_case {
	const char *in;
	size_t in_len;
	bool done;	   /* the terminator is in the input */
	const char *out;   /* unstuffed content */
	size_t out_len;
	size_t consumed;   /* bytes of in that belong to DATA */
	bool bare;
};

#define C(in, done, out, consumed, bare) \
	{ in, sizeof(in) - 1, done, out, sizeof(out) - 1, consumed, bare }

static const struct data_case data_cases[] = {
	C(".\r\n", true, "", 3, false),
	C("a\r\n.\r\n", true, "a\r\n", 6, false),
	C("a\r\n.\r\nMAIL", true, "a\r\n", 6, false),
	C("a\r\n..b\r\n.\r\n", true, "a\r\n.b\r\n", 11, false),
	C("..\r\n.\r\n", true, ".\r\n", 7, false),
	C("...\r\n.\r\n", true, "..\r\n", 8, false),
	C(".a\r\n.\r\n", true, "a\r\n", 7, false),
	C("a.\r\n.\r\n", true, "a.\r\n", 7, false),
	C("a\r\n. \r\n.\r\n", true, "a\r\n \r\n", 10, false),
	C("a\r\n", false, "a\r\n", 3, false),
	C("a\r\n.", false, "a\r\n", 4, false),
	C("a\r\n.\r", false, "a\r\n", 5, false),
	/* Smuggling variants: none of them ends DATA. */
	C("a\n.\nb", false, "a\n.\nb", 5, true),
	C("a\r.\rb", false, "a\r.\rb", 5, true),
	C("a\n.\r\nb", false, "a\n.\r\nb", 6, true),
	C("a\r\n.\nb", false, "a\r\n\nb", 6, true),
	C("a\r\n.\rb", false, "a\r\n\rb", 6, true),
	C("a\r\n.\r\rb", false, "a\r\n\r\rb", 7, true),
	C("a\r.\r\nb", false, "a\r.\r\nb", 6, true),
	C("a\n.\n\r\n.\r\n", true, "a\n.\n\r\n", 9, true),
	C("a\r\r\n.\r\n", true, "a\r\r\n", 7, true),
	C("\n.\r\n.\r\n", true, "\n.\r\n", 7, true),
	C("x\r\n\r\n.\r\n", true, "x\r\n\r\n", 8, false),
	C("8bit \xff\x00 ok\r\n.\r\n", true, "8bit \xff\x00 ok\r\n", 15,
	  false),
};

/* Feed in pieces of at most step bytes (0: split once at offset at). */
static bool
data_run(const struct data_case *tc, size_t step, size_t at, bool *ok_out)
{
	struct smtp_data d;
	uint8_t out[256], tmp[256];
	size_t o = 0, pos = 0, n, olen, used;
	enum smtp_data_res r = SMTP_DATA_MORE;

	smtp_data_init(&d, 0);
	while (pos < tc->in_len && r == SMTP_DATA_MORE) {
		n = step != 0 ? step : (pos < at ? at - pos : tc->in_len - pos);
		if (n > tc->in_len - pos)
			n = tc->in_len - pos;
		r = smtp_data_feed(&d, (const uint8_t *)tc->in + pos, n, tmp,
				   &olen, &used);
		if (olen > n + 2 || used > n || o + olen > sizeof(out))
			return false;
		memcpy(out + o, tmp, olen);
		o += olen;
		pos += used;
		if (r == SMTP_DATA_MORE && used != n)
			return false;
	}
	*ok_out = (r == SMTP_DATA_DONE) == tc->done &&
		  pos == tc->consumed && d.bare == tc->bare &&
		  o == tc->out_len &&
		  memcmp(out, tc->out, o) == 0 && d.size == o;
	return true;
}

static void
test_smtp_data_cases(void)
{
	size_t i, at;
	bool ok;

	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *tc = &data_cases[i];

		ok = false;
		test_assert_idx(data_run(tc, tc->in_len, 0, &ok) && ok, i);
		ok = false;
		test_assert_idx(data_run(tc, 1, 0, &ok) && ok, i);
		for (at = 1; at < tc->in_len; at++) {
			ok = false;
			test_assert_idx(data_run(tc, 0, at, &ok) && ok,
					i * 1000 + at);
		}
	}
}

static void
test_smtp_data_limit(void)
{
	struct smtp_data d;
	uint8_t out[64];
	size_t olen, used;
	const char *msg = "0123456789\r\n.\r\n";

	smtp_data_init(&d, 12);
	test_assert(smtp_data_feed(&d, (const uint8_t *)msg, strlen(msg), out,
				   &olen, &used) == SMTP_DATA_DONE);
	test_assert(!d.too_big && olen == 12 && d.size == 12);

	smtp_data_init(&d, 11);
	test_assert(smtp_data_feed(&d, (const uint8_t *)msg, strlen(msg), out,
				   &olen, &used) == SMTP_DATA_DONE);
	/* Too big: output stops, the terminator is still found. */
	test_assert(d.too_big && used == strlen(msg) && olen <= 11);
	test_assert(d.size == 12);
}

static void
test_smtp_data_bdat(void)
{
	struct smtp_data d;

	smtp_data_init(&d, 10);
	smtp_data_bdat_feed(&d, (const uint8_t *)"ab\r", 3);
	smtp_data_bdat_feed(&d, (const uint8_t *)"\ncd\r\n", 5);
	smtp_data_bdat_end(&d);
	test_assert(!d.bare && !d.too_big && d.size == 8);
	smtp_data_bdat_feed(&d, (const uint8_t *)"xyz", 3);
	test_assert(d.too_big && d.size == 11);

	smtp_data_init(&d, 0);
	smtp_data_bdat_feed(&d, (const uint8_t *)"a\nb", 3);
	test_assert(d.bare);
	smtp_data_init(&d, 0);
	smtp_data_bdat_feed(&d, (const uint8_t *)"a\r", 2);
	smtp_data_bdat_feed(&d, (const uint8_t *)"b", 1);
	test_assert(d.bare);
	smtp_data_init(&d, 0);
	smtp_data_bdat_feed(&d, (const uint8_t *)"a\r", 2);
	smtp_data_bdat_end(&d);
	test_assert(d.bare);
}

/* Count Received: fields of the header section fed in pieces of step. */
static uint32_t
hops_count(const char *msg, size_t step, bool *in_body_r)
{
	struct smtp_data d;
	size_t len = strlen(msg), pos, n;

	smtp_data_init(&d, 0);
	for (pos = 0; pos < len; pos += n) {
		n = len - pos < step ? len - pos : step;
		smtp_data_scan_header(&d, (const uint8_t *)msg + pos, n);
	}
	*in_body_r = d.in_body;
	return d.received;
}

static void
test_smtp_data_hops(void)
{
	static const struct {
		const char *msg;
		uint32_t received;
		bool in_body;
	} cases[] = {
		{ "Received: a\r\nreceived: b\r\nRECEIVED:c\r\n\r\nhi\r\n",
		  3, true },
		/* Folded lines, other fields and look-alikes do not count. */
		{ "Received: a\r\n\tReceived: b\r\nX-Received: c\r\n"
		  "Receive: d\r\nReceivedx: e\r\nSubject: Received:\r\n\r\n",
		  1, true },
		/* Received: in the body is not a hop. */
		{ "Subject: x\r\n\r\nReceived: a\r\nReceived: b\r\n", 0, true },
		{ "Received: a\r\nReceived: b", 2, false },
		{ "\r\nReceived: a\r\n", 0, true },
		{ "Received: a\nReceived: b\n\nReceived: c\n", 2, true },
	};
	size_t i, step;
	bool in_body;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (step = 1; step <= strlen(cases[i].msg); step++) {
			test_assert_idx(hops_count(cases[i].msg, step,
						   &in_body) ==
						cases[i].received &&
					in_body == cases[i].in_body,
					i * 1000 + step);
		}
	}
}

static const struct test_case tests[] = {
	{ "smtp_data_hops", test_smtp_data_hops },
	{ "smtp_data_cases", test_smtp_data_cases },
	{ "smtp_data_limit", test_smtp_data_limit },
	{ "smtp_data_bdat", test_smtp_data_bdat },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
