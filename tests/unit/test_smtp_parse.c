/* Tests for the pure SMTP command parsers (src/smtp/smtp_parse.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "smtp/smtp_int.h"

static void
test_smtp_parse_cmdline(void)
{
	static const struct {
		const char *in;
		enum smtp_parse_res res;
		const char *verb, *args;
	} cases[] = {
		{ "EHLO example.org", SMTP_PARSE_OK, "EHLO", "example.org" },
		{ "quit", SMTP_PARSE_OK, "quit", "" },
		{ "NOOP   ", SMTP_PARSE_OK, "NOOP", "" },
		{ "MAIL FROM:<a@b> ", SMTP_PARSE_OK, "MAIL", "FROM:<a@b>" },
		{ "", SMTP_PARSE_SYNTAX, NULL, NULL },
		{ " EHLO x", SMTP_PARSE_SYNTAX, NULL, NULL },
		{ "EH1O x", SMTP_PARSE_SYNTAX, NULL, NULL },
		{ "ABCDEFGHIJKLMNOPQ", SMTP_PARSE_SYNTAX, NULL, NULL },
		{ "EHLO a\rb", SMTP_PARSE_SYNTAX, NULL, NULL },
		{ "EHLO a\x7f", SMTP_PARSE_SYNTAX, NULL, NULL },
	};
	struct smtp_cmdline cmd;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum smtp_parse_res r =
			smtp_parse_cmdline(sv_from_cstr(cases[i].in), &cmd);
		test_assert_idx(r == cases[i].res, i);
		if (r != SMTP_PARSE_OK || cases[i].verb == NULL)
			continue;
		test_assert_idx(sv_eq(cmd.verb, sv_from_cstr(cases[i].verb)),
				i);
		test_assert_idx(sv_eq(cmd.args, sv_from_cstr(cases[i].args)),
				i);
	}
	/* A NUL inside the line is an error, never a terminator. */
	test_assert(smtp_parse_cmdline(sv_make("NOOP\0x", 6), &cmd) ==
		    SMTP_PARSE_SYNTAX);
}

static void
test_smtp_parse_mail(void)
{
	static const struct {
		const char *in;
		enum smtp_parse_res res;
		const char *addr;
	} cases[] = {
		{ "FROM:<a@example.org>", SMTP_PARSE_OK, "a@example.org" },
		{ "from:<a@example.org>", SMTP_PARSE_OK, "a@example.org" },
		{ "FROM: <a@example.org>", SMTP_PARSE_OK, "a@example.org" },
		{ "FROM:<>", SMTP_PARSE_OK, "" },
		{ "FROM:<a.b.c@x-y.example>", SMTP_PARSE_OK,
		  "a.b.c@x-y.example" },
		{ "FROM:<\"a b@c\"@example.org>", SMTP_PARSE_OK,
		  "\"a b@c\"@example.org" },
		{ "FROM:<\"a\\\"b\"@example.org>", SMTP_PARSE_OK,
		  "\"a\\\"b\"@example.org" },
		{ "FROM:<\"a>b\"@example.org>", SMTP_PARSE_OK,
		  "\"a>b\"@example.org" },
		{ "FROM:<@r1.example,@r2.example:u@example.org>",
		  SMTP_PARSE_OK, "u@example.org" },
		{ "FROM:<u@example.org.>", SMTP_PARSE_OK, "u@example.org" },
		{ "FROM:<u@[192.0.2.1]>", SMTP_PARSE_OK, "u@[192.0.2.1]" },
		{ "FROM:<u@[IPv6:2001:db8::1]>", SMTP_PARSE_OK,
		  "u@[IPv6:2001:db8::1]" },
		{ "FROM:<a@b> SIZE=1000 BODY=8BITMIME", SMTP_PARSE_OK,
		  "a@b" },
		{ "FROM:<a@b> RET=HDRS ENVID=QQ+2B314", SMTP_PARSE_OK, "a@b" },
		{ "FROM:<a@b> AUTH=<>", SMTP_PARSE_OK, "a@b" },
		{ "FROM:<a@b>  SIZE=1", SMTP_PARSE_OK, "a@b" },
		{ "FROM:<d\xc3\xa9@b> SMTPUTF8", SMTP_PARSE_OK,
		  "d\xc3\xa9@b" },
		{ "FROM:<d\xc3\xa9@b>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<d\xc3@b> SMTPUTF8", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<d\xc0\xaf@b> SMTPUTF8", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:a@b", SMTP_PARSE_SYNTAX, NULL },
		{ "FROM:<a@b", SMTP_PARSE_SYNTAX, NULL },
		{ "FROM:<a@b>x", SMTP_PARSE_SYNTAX, NULL },
		{ "TO:<a@b>", SMTP_PARSE_SYNTAX, NULL },
		{ "FROM<a@b>", SMTP_PARSE_SYNTAX, NULL },
		{ "FROM:<a>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<@b>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a..b@c>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<.a@c>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a.@c>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@-c>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@c->", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@c..d>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@c.d..>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@c_d>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@[300.1.1.1]>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@[1.2.3]>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@[IPv6:zz]>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@[x:y]>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<\"a@b>", SMTP_PARSE_SYNTAX, NULL },
		{ "FROM:<\"a\x01\"@b>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<@x:>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<@x,u@b>", SMTP_PARSE_BAD_PATH, NULL },
		{ "FROM:<a@b> SIZE=", SMTP_PARSE_SYNTAX, NULL },
		{ "FROM:<a@b> SIZE=-1", SMTP_PARSE_BAD_PARAM, NULL },
		{ "FROM:<a@b> SIZE=99999999999999999999999",
		  SMTP_PARSE_BAD_PARAM, NULL },
		{ "FROM:<a@b> SIZE=1 SIZE=2", SMTP_PARSE_BAD_PARAM, NULL },
		{ "FROM:<a@b> BODY=BINARYMIME", SMTP_PARSE_UNKNOWN_PARAM,
		  NULL },
		{ "FROM:<a@b> BODY=9BIT", SMTP_PARSE_UNKNOWN_PARAM, NULL },
		{ "FROM:<a@b> RET=ALL", SMTP_PARSE_BAD_PARAM, NULL },
		{ "FROM:<a@b> ENVID=a+zz", SMTP_PARSE_BAD_PARAM, NULL },
		{ "FROM:<a@b> ENVID=a+2", SMTP_PARSE_BAD_PARAM, NULL },
		{ "FROM:<a@b> SMTPUTF8=yes", SMTP_PARSE_BAD_PARAM, NULL },
		{ "FROM:<a@b> XFOO=1", SMTP_PARSE_UNKNOWN_PARAM, NULL },
		{ "FROM:<a@b> NOTIFY=NEVER", SMTP_PARSE_UNKNOWN_PARAM, NULL },
		{ "FROM:<a@b> -X", SMTP_PARSE_SYNTAX, NULL },
		{ "FROM:<a@b> X=a=b", SMTP_PARSE_SYNTAX, NULL },
	};
	struct smtp_path path;
	struct smtp_mail_params mp;
	const char *error = NULL;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum smtp_parse_res r = smtp_parse_mail(
			sv_from_cstr(cases[i].in), &path, &mp, &error);
		test_assert_idx(r == cases[i].res, i);
		if (r == SMTP_PARSE_OK && cases[i].addr != NULL)
			test_assert_idx(strcmp(path.addr, cases[i].addr) == 0,
					i);
	}
	test_assert(smtp_parse_mail(SV_LIT("FROM:<a@b> SIZE=1000 RET=FULL "
					   "ENVID=x1 BODY=7bit smtputf8"),
				    &path, &mp, &error) == SMTP_PARSE_OK);
	test_assert(mp.has_size && mp.size == 1000);
	test_assert(mp.ret == SMTP_RET_FULL && mp.body == SMTP_BODY_7BIT);
	test_assert(mp.smtputf8);
	test_assert_strcmp(mp.envid, "x1");
	test_assert(smtp_parse_mail(SV_LIT("FROM:<@a:u@b.>"), &path, &mp,
				    &error) == SMTP_PARSE_OK);
	test_assert(path.route && path.trailing_dot && !path.null);
	test_assert(smtp_parse_mail(SV_LIT("FROM:<>"), &path, &mp, &error) ==
		    SMTP_PARSE_OK);
	test_assert(path.null);
}

static void
test_smtp_parse_rcpt(void)
{
	static const struct {
		const char *in;
		bool utf8;
		enum smtp_parse_res res;
		const char *addr;
	} cases[] = {
		{ "TO:<u@example.org>", false, SMTP_PARSE_OK,
		  "u@example.org" },
		{ "To:<Postmaster>", false, SMTP_PARSE_OK, "postmaster" },
		{ "TO:<user%other@example.org>", false, SMTP_PARSE_OK,
		  "user%other@example.org" },
		{ "TO:<\"user@other\"@example.org>", false, SMTP_PARSE_OK,
		  "\"user@other\"@example.org" },
		{ "TO:<@relay.example:user@other.example>", false,
		  SMTP_PARSE_OK, "user@other.example" },
		{ "TO:<u@EXAMPLE.ORG.>", false, SMTP_PARSE_OK,
		  "u@EXAMPLE.ORG" },
		{ "TO:<u@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+40b",
		  false, SMTP_PARSE_OK, "u@b" },
		{ "TO:<u@b> NOTIFY=NEVER", false, SMTP_PARSE_OK, "u@b" },
		{ "TO:<u@b> ORCPT=utf-8;d\xc3\xa9@b", true, SMTP_PARSE_OK,
		  "u@b" },
		{ "TO:<u@b> ORCPT=utf-8;d\xc3\xa9@b", false,
		  SMTP_PARSE_SYNTAX, NULL },
		{ "TO:<d\xc3\xa9@b>", true, SMTP_PARSE_OK, "d\xc3\xa9@b" },
		{ "TO:<d\xc3\xa9@b>", false, SMTP_PARSE_BAD_PATH, NULL },
		{ "TO:<>", false, SMTP_PARSE_BAD_PATH, NULL },
		{ "TO:<u>", false, SMTP_PARSE_BAD_PATH, NULL },
		{ "TO:<u@b> NOTIFY=NEVER,SUCCESS", false, SMTP_PARSE_BAD_PARAM,
		  NULL },
		{ "TO:<u@b> NOTIFY=SUCCESS,SUCCESS", false,
		  SMTP_PARSE_BAD_PARAM, NULL },
		{ "TO:<u@b> NOTIFY=", false, SMTP_PARSE_SYNTAX, NULL },
		{ "TO:<u@b> NOTIFY=SUCCESS,", false, SMTP_PARSE_BAD_PARAM,
		  NULL },
		{ "TO:<u@b> ORCPT=u@b", false, SMTP_PARSE_BAD_PARAM, NULL },
		{ "TO:<u@b> ORCPT=x400;u", false, SMTP_PARSE_BAD_PARAM, NULL },
		{ "TO:<u@b> SIZE=10", false, SMTP_PARSE_UNKNOWN_PARAM, NULL },
		{ "FROM:<u@b>", false, SMTP_PARSE_SYNTAX, NULL },
	};
	struct smtp_path path;
	struct smtp_rcpt_params rp;
	const char *error = NULL;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum smtp_parse_res r =
			smtp_parse_rcpt(sv_from_cstr(cases[i].in),
					cases[i].utf8, &path, &rp, &error);
		test_assert_idx(r == cases[i].res, i);
		if (r == SMTP_PARSE_OK && cases[i].addr != NULL)
			test_assert_idx(strcmp(path.addr, cases[i].addr) == 0,
					i);
	}
	test_assert(smtp_parse_rcpt(SV_LIT("TO:<u@b> NOTIFY=delay,failure "
					   "ORCPT=rfc822;u+40b"),
				    false, &path, &rp, &error) ==
		    SMTP_PARSE_OK);
	test_assert(rp.notify == (SMTP_NOTIFY_DELAY | SMTP_NOTIFY_FAILURE));
	test_assert_strcmp(rp.orcpt, "rfc822;u+40b");
	test_assert(smtp_parse_rcpt(SV_LIT("TO:<\"q\"@b>"), false, &path,
				    &rp, &error) == SMTP_PARSE_OK);
	test_assert(path.quoted && path.local_len == 3);
}

static void
test_smtp_parse_limits(void)
{
	char line[1200];
	struct smtp_path path;
	struct smtp_mail_params mp;
	const char *error;
	size_t n;

	/* Local part of 64 octets is fine, 65 is not. */
	n = (size_t)snprintf(line, sizeof(line), "FROM:<%.*s@b>", 64,
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	test_assert(smtp_parse_mail(sv_make(line, n), &path, &mp, &error) ==
		    SMTP_PARSE_OK);
	n = (size_t)snprintf(line, sizeof(line), "FROM:<%.*s@b>", 65,
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	test_assert(smtp_parse_mail(sv_make(line, n), &path, &mp, &error) ==
		    SMTP_PARSE_BAD_PATH);
	/* A 64-byte label is too long. */
	n = (size_t)snprintf(line, sizeof(line), "FROM:<a@%.*s.org>", 64,
			     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
			     "bbbbbbbbbbbbbbbbbbbbbbbbbb");
	test_assert(smtp_parse_mail(sv_make(line, n), &path, &mp, &error) ==
		    SMTP_PARSE_BAD_PATH);
	/* A path longer than 256 octets. */
	memcpy(line, "FROM:<a@", 8);
	for (n = 8; n < 8 + 300; n += 2)
		memcpy(line + n, "b.", 2);
	memcpy(line + n, "c>", 2);
	n += 2;
	test_assert(smtp_parse_mail(sv_make(line, n), &path, &mp, &error) ==
		    SMTP_PARSE_BAD_PATH);
	/* Too many parameters. */
	n = (size_t)snprintf(line, sizeof(line), "FROM:<a@b>");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " X%d=1", i);
	test_assert(smtp_parse_mail(sv_make(line, n), &path, &mp, &error) !=
		    SMTP_PARSE_OK);
	/* ENVID of 100 is fine, 101 not. */
	n = (size_t)snprintf(line, sizeof(line), "FROM:<a@b> ENVID=");
	memset(line + n, 'e', 100);
	test_assert(smtp_parse_mail(sv_make(line, n + 100), &path, &mp,
				    &error) == SMTP_PARSE_OK);
	memset(line + n, 'e', 101);
	test_assert(smtp_parse_mail(sv_make(line, n + 101), &path, &mp,
				    &error) == SMTP_PARSE_BAD_PARAM);
}

static void
test_smtp_parse_misc(void)
{
	uint64_t size;
	bool last, has_ir;
	struct strview name, mech, ir;

	test_assert(smtp_parse_bdat(SV_LIT("100"), &size, &last) ==
		    SMTP_PARSE_OK && size == 100 && !last);
	test_assert(smtp_parse_bdat(SV_LIT("0 last"), &size, &last) ==
		    SMTP_PARSE_OK && size == 0 && last);
	test_assert(smtp_parse_bdat(SV_LIT(""), &size, &last) ==
		    SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_bdat(SV_LIT("-1"), &size, &last) ==
		    SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_bdat(SV_LIT("10 FIRST"), &size, &last) ==
		    SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_bdat(SV_LIT("99999999999999999999999"), &size,
				    &last) == SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_helo(SV_LIT("mail.example.org"), &name) ==
		    SMTP_PARSE_OK);
	test_assert(smtp_parse_helo(SV_LIT("[192.0.2.1]"), &name) ==
		    SMTP_PARSE_OK);
	test_assert(smtp_parse_helo(SV_LIT(""), &name) == SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_helo(SV_LIT("a b"), &name) ==
		    SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_helo(SV_LIT("a(b)"), &name) ==
		    SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_auth(SV_LIT("PLAIN"), &mech, &ir, &has_ir) ==
		    SMTP_PARSE_OK && !has_ir && sv_eq_ci_cstr(mech, "plain"));
	test_assert(smtp_parse_auth(SV_LIT("PLAIN AGFAYgBj"), &mech, &ir,
				    &has_ir) == SMTP_PARSE_OK && has_ir &&
		    sv_eq_ci_cstr(ir, "AGFAYgBj"));
	test_assert(smtp_parse_auth(SV_LIT("SCRAM-SHA-256 ="), &mech, &ir,
				    &has_ir) == SMTP_PARSE_OK && has_ir);
	test_assert(smtp_parse_auth(SV_LIT("PL/AIN"), &mech, &ir, &has_ir) ==
		    SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_auth(SV_LIT("PLAIN a b"), &mech, &ir,
				    &has_ir) == SMTP_PARSE_SYNTAX);
	test_assert(smtp_parse_xtext_valid(SV_LIT("abc+2B+3D")));
	test_assert(!smtp_parse_xtext_valid(SV_LIT("a=b")));
	test_assert(!smtp_parse_xtext_valid(SV_LIT("a+2b")));
	test_assert(!smtp_parse_xtext_valid(SV_LIT("a+")));
	test_assert(!smtp_parse_xtext_valid(SV_LIT("a b")));
	test_assert(smtp_parse_utf8_len((const unsigned char *)"\xe2\x82\xac",
					3) == 3);
	test_assert(smtp_parse_utf8_len((const unsigned char *)"\xed\xa0\x80",
					3) == 0);
	test_assert(smtp_parse_utf8_len((const unsigned char *)"\xf4\x90\x80"
								"\x80",
					4) == 0);
	test_assert(smtp_parse_utf8_len((const unsigned char *)"\xe2\x82",
					2) == 0);
}

static const struct test_case tests[] = {
	{ "smtp_parse_cmdline", test_smtp_parse_cmdline },
	{ "smtp_parse_mail", test_smtp_parse_mail },
	{ "smtp_parse_rcpt", test_smtp_parse_rcpt },
	{ "smtp_parse_limits", test_smtp_parse_limits },
	{ "smtp_parse_misc", test_smtp_parse_misc },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
