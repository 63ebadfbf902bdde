/* Tests for the RFC 5256 2.1 base subject (imap_subject.c): a table of
   subjects, each fed whole, with the base subject and the "reply or
   forward" bit worked out by hand from the RFC's steps and ABNF. */
#include <string.h>

#include "harness.h"
#include "imap/imap_sort.h"

static const struct {
	const char *in, *base;
	bool reply;
} subject_cases[] = {
	{ "Hello", "Hello", false },
	{ "Re: Hello", "Hello", true },
	{ "RE:Hello", "Hello", true },
	{ "re: Re: RE: Hello", "Hello", true },
	{ "Fwd: Hello", "Hello", true },
	{ "FW: Hello", "Hello", true },
	{ "Re[2]: Hello", "Hello", true },
	{ "Re [2]: Hello", "Hello", true },
	{ "Re : Hello", "Hello", true },
	{ "[tern-dev] Re: Hello", "Hello", true },
	{ "[tern-dev] Hello", "Hello", false },
	{ "[a][b] Hello", "Hello", false },
	{ "Re: [list] Re: Topic", "Topic", true },
	{ "[tern-dev]", "[tern-dev]", false },
	{ "[tern-dev]  ", "[tern-dev]", false },
	{ "Hello (fwd)", "Hello", true },
	{ "Hello (fwd) (FWD)  ", "Hello", true },
	{ "[Fwd: Hello]", "Hello", true },
	{ "[fwd: Re: Hello (fwd)]", "Hello", true },
	{ "Re: [fwd: Hello]", "Hello", true },
	{ "  Hello \t  world  ", "Hello world", false },
	{ "Re: a\r\n\tb", "a b", true },
	{ "=?utf-8?B?UmU6IEjDqWxsbw==?=", "H\xc3\xa9llo", true },
	{ "=?iso-8859-1?Q?Re=3A_caf=E9?=", "caf\xc3\xa9", true },
	{ "Re: =?utf-8?Q?x?= =?utf-8?Q?y?=", "xy", true },
	{ "Re:", "", true },
	{ "(fwd)", "", true },
	{ "", "", false },
	{ "Reply to this", "Reply to this", false },
	{ "Ref: x", "Ref: x", false },
	{ "Fwdx: y", "Fwdx: y", false },
	{ "[unclosed Re: x", "[unclosed Re: x", false },
	{ "Re: Hello (fwd) world", "Hello (fwd) world", true },
};

static void
test_imap_subject_table(void)
{
	struct buf out;
	size_t i;
	bool reply;

	buf_init(&out, MIME_SORT_SUBJECT_MAX_BYTES);
	for (i = 0; i < sizeof(subject_cases) / sizeof(subject_cases[0]);
	     i++) {
		int r = mime_subject_base(subject_cases[i].in,
					  strlen(subject_cases[i].in), &out,
					  &reply);

		test_assert_idx(r == 0, i);
		test_assert_strcmp(buf_cstr(&out), subject_cases[i].base);
		test_assert_idx(reply == subject_cases[i].reply, i);
	}
	buf_free(&out);
}

static void
test_imap_subject_limits(void)
{
	static char big[70000];
	struct buf out;
	bool reply;

	/* Many nested leaders and an over-long subject: bounded, no
	   failure beyond the output maximum. */
	for (size_t i = 0; i + 4 <= sizeof(big) - 2; i += 4)
		memcpy(big + i, "Re: ", 4);
	big[sizeof(big) - 2] = 'x';
	buf_init(&out, MIME_SORT_SUBJECT_MAX_BYTES);
	test_assert(mime_subject_base(big, sizeof(big) - 1, &out, &reply) ==
		    0);
	test_assert(reply);
	buf_free(&out);
	buf_init(&out, 4);
	/* Cut at the maximum: the base subject of the prefix. */
	test_assert(mime_subject_base("Re: Hello", 9, &out, &reply) == 0);
	test_assert_strcmp(buf_cstr(&out), "");
	test_assert(mime_subject_base("Hello world", 11, &out, &reply) == 0);
	test_assert_strcmp(buf_cstr(&out), "Hell");
	buf_free(&out);
}

static const struct test_case tests[] = {
	{ "imap_subject_table", test_imap_subject_table },
	{ "imap_subject_limits", test_imap_subject_limits },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
