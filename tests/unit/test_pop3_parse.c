/* Tests for pop3: the command-line parser, message numbers, and the
   multi-line formatter (dot-stuffing, line ends, TOP), fed whole and in
   every slice size. */
#include <string.h>

#include "harness.h"
#include "lib/buf.h"
#include "pop3/pop3_int.h"

static void
test_pop3_parse_line(void)
{
	static const struct {
		const char *in;
		int ok;
		const char *name;
		size_t argc;
		bool extra;
	} cases[] = {
		{ "STAT", 1, "STAT", 0, false },
		{ "stat", 1, "STAT", 0, false },
		{ "top 1 10", 1, "TOP", 2, false },
		{ "LIST  3 ", 1, "LIST", 1, false },
		{ "TOP 1 2 3", 1, "TOP", 2, true },
		{ "", 0, NULL, 0, false },
		{ "XY", 0, NULL, 0, false },
		{ "RETRIEVE 1", 0, NULL, 0, false },
		{ "R3TR 1", 0, NULL, 0, false },
		{ "RETR\x01 1", 0, NULL, 0, false },
		{ "PASS a\rb", 0, NULL, 0, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pop3_cmdline cmd;
		const char *error = NULL;
		enum pop3_parse_res r = pop3_parse_line(sv_from_cstr(cases[i].in),
							&cmd, &error);
		test_assert_idx((r == POP3_PARSE_OK) == (cases[i].ok == 1), i);
		if (r != POP3_PARSE_OK) {
			test_assert_idx(error != NULL, i);
			continue;
		}
		test_assert_strcmp(cmd.name, cases[i].name);
		test_assert_idx(cmd.argc == cases[i].argc, i);
		test_assert_idx(cmd.extra == cases[i].extra, i);
	}
	/* PASS keeps spaces in the rest of the line. */
	struct pop3_cmdline cmd;
	const char *error;
	test_assert(pop3_parse_line(SV_LIT("PASS my secret pw"), &cmd, &error) ==
		    POP3_PARSE_OK);
	test_assert(sv_eq(cmd.rest, SV_LIT("my secret pw")));
}

static void
test_pop3_msgnum(void)
{
	uint32_t n;

	test_assert(pop3_parse_msgnum(SV_LIT("1"), 5, &n) == 0 && n == 1);
	test_assert(pop3_parse_msgnum(SV_LIT("5"), 5, &n) == 0 && n == 5);
	test_assert(pop3_parse_msgnum(SV_LIT("6"), 5, &n) < 0);
	test_assert(pop3_parse_msgnum(SV_LIT("0"), 5, &n) < 0);
	test_assert(pop3_parse_msgnum(SV_LIT("-1"), 5, &n) < 0);
	test_assert(pop3_parse_msgnum(SV_LIT("99999999999999"), 5, &n) < 0);
	test_assert(pop3_parse_msgnum(SV_LIT("1x"), 5, &n) < 0);
}

static void
collect(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

static void
check_fmt(const char *in, bool top, uint32_t lines, const char *want)
{
	for (size_t budget = 1; budget <= strlen(in) + 1; budget++) {
		struct pop3_msg_fmt f;
		struct buf out;
		int guard = 0;

		buf_init(&out, 1 << 16);
		pop3_msg_fmt_init(&f, (const uint8_t *)in, strlen(in), top, lines);
		while (!pop3_msg_fmt_run(&f, budget, collect, &out) && guard++ < 10000)
			;
		test_assert_strcmp(buf_cstr(&out), want);
		buf_free(&out);
	}
}

static void
test_pop3_msg_fmt(void)
{
	check_fmt("Subject: x\r\n\r\nline\r\n.dot\r\n..two\r\n", false, 0,
		  "Subject: x\r\n\r\nline\r\n..dot\r\n...two\r\n");
	/* bare LF becomes CRLF; a last line without line end gets one */
	check_fmt("A: b\n\nx\ny", false, 0, "A: b\r\n\r\nx\r\ny\r\n");
	check_fmt("H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\nb3\r\n", true, 0,
		  "H: 1\r\nH: 2\r\n\r\n");
	check_fmt("H: 1\r\n\r\nb1\r\n.b2\r\nb3\r\n", true, 2,
		  "H: 1\r\n\r\nb1\r\n..b2\r\n");
	check_fmt("H: 1\r\n\r\nb1\r\n", true, 10, "H: 1\r\n\r\nb1\r\n");
	check_fmt("", false, 0, "");
	check_fmt(".\r\n", false, 0, "..\r\n");
}

static const struct test_case tests[] = {
	{ "pop3_parse_line", test_pop3_parse_line },
	{ "pop3_msgnum", test_pop3_msgnum },
	{ "pop3_msg_fmt", test_pop3_msg_fmt },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
