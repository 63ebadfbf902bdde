/* Tests for the pure parts of imap_condstore.c: RFC 8970 PREVIEW text
   (white space collapsed, cut at 256 characters, never inside a UTF-8
   sequence, a literal for 8-bit text) and RFC 8474 object ids. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "imap/imap_int.h"
#include "lib/buf.h"

static char *
preview(const char *msg)
{
	struct buf b;
	char *s;

	buf_init(&b, 64 * 1024);
	test_assert(imap_preview_write(&b, (const uint8_t *)msg,
				       strlen(msg)) == 0);
	s = strdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void
test_imap_preview_text(void)
{
	static const struct {
		const char *msg, *want;
	} cases[] = {
		{ "Subject: a\r\n\r\n  Hello\r\n\r\n\tworld  \r\n",
		  "\"Hello world\"" },
		{ "Subject: a\r\n\r\n", "\"\"" },
		{ "Subject: a\r\n\r\n \r\n\t\r\n", "\"\"" },
		{ "Content-Type: text/html\r\n\r\n<p>Hi <b>there</b></p>\r\n",
		  "\"Hi there\"" },
		{ "Content-Type: image/png\r\n\r\nAAAA\r\n", "\"\"" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = preview(cases[i].msg);

		test_assert_idx(strcmp(got, cases[i].want) == 0, i);
		free(got);
	}
}

static void
test_imap_preview_cut(void)
{
	struct buf in;
	char *got;
	size_t i;

	/* 300 two-byte characters: 256 of them, 512 bytes, in a literal */
	buf_init(&in, 4096);
	buf_append_str(&in, "Content-Type: text/plain; charset=utf-8\r\n"
			    "Content-Transfer-Encoding: 8bit\r\n\r\n");
	for (i = 0; i < 300; i++)
		buf_append_str(&in, "\xc3\xa9");
	buf_append_str(&in, "\r\n");
	got = preview(buf_cstr(&in));
	test_assert(strncmp(got, "{512}\r\n\xc3\xa9", 9) == 0);
	test_assert(strlen(got) == 7 + 512);
	free(got);
	buf_free(&in);

	/* ASCII: exactly 256 characters, spaces counted */
	buf_init(&in, 4096);
	buf_append_str(&in, "Subject: x\r\n\r\n");
	for (i = 0; i < 200; i++)
		buf_append_str(&in, "ab \r\n");
	got = preview(buf_cstr(&in));
	test_assert(strlen(got) == 256 + 2);
	test_assert(strncmp(got, "\"ab ab ", 7) == 0);
	free(got);
	buf_free(&in);
}

static void
test_imap_objectid(void)
{
	char out[IMAP_OBJECTID_MAX_BYTES];
	const char *hash = "0123456789abcdef0123456789abcdef"
			   "0123456789abcdef0123456789abcdef";

	imap_objectid_mailbox(out, sizeof(out), 42);
	test_assert_strcmp(out, "F42");
	imap_objectid_email(out, sizeof(out), hash);
	test_assert_strcmp(out, "M0123456789abcdef01234567");
}

static const struct test_case tests[] = {
	{ "imap_preview_text", test_imap_preview_text },
	{ "imap_preview_cut", test_imap_preview_cut },
	{ "imap_objectid", test_imap_objectid },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
