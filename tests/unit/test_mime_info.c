/* Tests for mime: the stored summary (ENVELOPE, BODY, BODYSTRUCTURE and
   the sort fields), section addressing and text extraction, on a nested
   message; and robustness on every truncation of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "mime/mime.h"

static const char msg1[] =
	"From: \"Al Ice\" <Alice@Example.ORG>\r\n"
	"To: bob@example.test, Group: a@b, c@d;\r\n"
	"Subject: =?utf-8?B?SMOpbGxv?= world\r\n"
	"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
	"Message-ID: <x1@example.org>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--XX\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"hello there\r\n"
	"--XX\r\n"
	"Content-Type: text/html\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"PGI+Ym9sZDwvYj4gJmFtcDsgdGV4dA==\r\n"
	"--XX\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: inner\r\n"
	"\r\n"
	"inner body\r\n"
	"--XX--\r\n";

static void
test_mime_info_summary(void)
{
	struct mime_info in;

	test_assert(mime_info_parse((const uint8_t *)msg1, sizeof(msg1) - 1, &in) == 0);
	test_assert_strcmp(in.envelope,
		"(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"=?utf-8?B?SMOpbGxv?= world\" "
		"((\"Al Ice\" NIL \"Alice\" \"Example.ORG\")) "
		"((\"Al Ice\" NIL \"Alice\" \"Example.ORG\")) "
		"((\"Al Ice\" NIL \"Alice\" \"Example.ORG\")) "
		"((NIL NIL \"bob\" \"example.test\")(NIL NIL \"Group\" NIL)"
		"(NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")(NIL NIL NIL NIL)) "
		"NIL NIL NIL \"<x1@example.org>\")");
	test_assert_strcmp(in.body,
		"((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 11 1)"
		"(\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"BASE64\" 32 1)"
		"(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 28 "
		"(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
		"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 1) 3) "
		"\"MIXED\")");
	test_assert(strstr(in.bodystructure,
			   "\"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)") != NULL);
	test_assert_strcmp(in.message_id, "<x1@example.org>");
	test_assert_strcmp(in.subject, "H\xc3\xa9llo world");
	test_assert_strcmp(in.from, "alice@example.org");
	test_assert(in.date == 760686745);
	test_assert(in.lines == 25);
	test_assert(in.header_len ==
		    (size_t)(strstr(msg1, "\r\n\r\n") - msg1) + 4);
	mime_info_free(&in);
	mime_info_free(&in); /* safe twice */
}

static void
test_mime_section(void)
{
	static const struct {
		uint32_t path[3];
		size_t depth;
		int found;
		const char *body, *cte;
		bool has_message;
	} cases[] = {
		{ { 1 }, 1, 1, "hello there", "7bit", false },
		{ { 2 }, 1, 1, "PGI+Ym9sZDwvYj4gJmFtcDsgdGV4dA==", "base64", false },
		{ { 3 }, 1, 1, "Subject: inner\r\n\r\ninner body", "7bit", true },
		{ { 3, 1 }, 2, 1, "inner body", "7bit", false },
		{ { 3, 2 }, 2, 0, NULL, NULL, false },
		{ { 4 }, 1, 0, NULL, NULL, false },
		{ { 0 }, 1, 0, NULL, NULL, false },
		{ { 1, 1 }, 2, 0, NULL, NULL, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mime_section sec;
		int r = mime_section_find((const uint8_t *)msg1, sizeof(msg1) - 1,
					  cases[i].path, cases[i].depth, &sec);
		test_assert_idx(r == cases[i].found, i);
		if (r != 1 || cases[i].body == NULL)
			continue;
		test_assert_memeq(msg1 + sec.body_off, sec.body_len, cases[i].body,
				  strlen(cases[i].body));
		test_assert_strcmp(sec.content_transfer_encoding, cases[i].cte);
		test_assert_idx(sec.has_message == cases[i].has_message, i);
	}
	/* part 3: HEADER and TEXT of the encapsulated message */
	struct mime_section sec;
	uint32_t three = 3;
	test_assert(mime_section_find((const uint8_t *)msg1, sizeof(msg1) - 1,
				      &three, 1, &sec) == 1);
	test_assert_memeq(msg1 + sec.header_off, sec.header_len,
			  "Subject: inner\r\n\r\n", 18);
	test_assert_memeq(msg1 + sec.text_off, sec.text_len, "inner body", 10);

	/* A single-part message is its own part 1; part 2 does not exist. */
	static const char simple[] = "Subject: s\r\n\r\nbody\r\n";
	uint32_t one = 1, two = 2;
	test_assert(mime_section_find((const uint8_t *)simple, sizeof(simple) - 1,
				      &one, 1, &sec) == 1);
	test_assert_memeq(simple + sec.body_off, sec.body_len, "body\r\n", 6);
	test_assert_memeq(simple + sec.mime_off, sec.mime_len, "Subject: s\r\n\r\n", 14);
	test_assert(mime_section_find((const uint8_t *)simple, sizeof(simple) - 1,
				      &two, 1, &sec) == 0);
	test_assert(mime_section_find((const uint8_t *)simple, sizeof(simple) - 1,
				      NULL, 0, &sec) == 1);
	test_assert_memeq(simple + sec.text_off, sec.text_len, "body\r\n", 6);
}

static void
test_mime_extract_text(void)
{
	struct buf t;

	buf_init(&t, 1 << 16);
	test_assert(mime_extract_text((const uint8_t *)msg1, sizeof(msg1) - 1, &t) == 0);
	test_assert(strstr(buf_cstr(&t), "hello there") != NULL);
	test_assert(strstr(buf_cstr(&t), "bold") != NULL);
	test_assert(strstr(buf_cstr(&t), "<b>") == NULL);
	test_assert(strstr(buf_cstr(&t), "& text") != NULL);
	test_assert(strstr(buf_cstr(&t), "inner body") != NULL);
	buf_free(&t);
	/* bounded: stops quietly at max */
	buf_init(&t, 8);
	test_assert(mime_extract_text((const uint8_t *)msg1, sizeof(msg1) - 1, &t) == 0);
	test_assert(t.len <= 8);
	buf_free(&t);
}

/* The headers SEARCH TEXT looks at: the top header decoded, then each
   part's MIME header in part order, the encapsulated message's header
   too, each followed by "\n"; bounded. */
static void
test_mime_extract_headers(void)
{
	static const char single[] = "Subject: =?utf-8?Q?caf=C3=A9?=\r\n"
				     "\r\nbody\r\n";
	struct buf t;
	const char *h;

	buf_init(&t, 1 << 16);
	test_assert(mime_extract_headers((const uint8_t *)msg1,
					 sizeof(msg1) - 1, &t) == 0);
	h = buf_cstr(&t);
	test_assert(strncmp(h, "From: \"Al Ice\" <", 16) == 0);
	test_assert(strstr(h, "Subject: H\xc3\xa9llo world\r\n") != NULL);
	test_assert(strstr(h, "\r\n\r\n\nContent-Type: text/plain; "
			      "charset=utf-8\r\n\r\n\nContent-Type: "
			      "text/html\r\n") != NULL);
	test_assert(strstr(h, "Content-Type: message/rfc822\r\n\r\n\n"
			      "Subject: inner\r\n\r\n\n") != NULL);
	test_assert(strstr(h, "inner body") == NULL);
	test_assert(strstr(h, "hello there") == NULL);
	buf_free(&t);
	/* a single part: only its header, once */
	buf_init(&t, 1 << 16);
	test_assert(mime_extract_headers((const uint8_t *)single,
					 sizeof(single) - 1, &t) == 0);
	test_assert_strcmp(buf_cstr(&t), "Subject: caf\xc3\xa9\r\n\r\n\n");
	buf_free(&t);
	buf_init(&t, 9);
	test_assert(mime_extract_headers((const uint8_t *)msg1,
					 sizeof(msg1) - 1, &t) == 0);
	test_assert(t.len <= 9);
	buf_free(&t);
}

static void
test_mime_info_truncated(void)
{
	/* Every prefix parses (into heap copies, so ASan sees overreads). */
	for (size_t n = 0; n < sizeof(msg1); n++) {
		uint8_t *copy = malloc(n + 1);
		struct mime_info in;
		struct mime_section sec;
		uint32_t path[2] = { 3, 1 };
		struct buf t;

		memcpy(copy, msg1, n);
		test_assert_idx(mime_info_parse(copy, n, &in) == 0, n);
		test_assert_idx(in.envelope != NULL && in.bodystructure != NULL, n);
		mime_info_free(&in);
		(void)mime_section_find(copy, n, path, 2, &sec);
		buf_init(&t, 4096);
		mime_extract_text(copy, n, &t);
		buf_free(&t);
		buf_init(&t, 4096);
		mime_extract_headers(copy, n, &t);
		buf_free(&t);
		free(copy);
	}
}

/* RFC 2231: a boundary split into continuations, one %-encoded with a
   charset and language, still finds the parts; the BODYSTRUCTURE keeps
   the parameters as written. */
static void
test_mime_rfc2231_boundary(void)
{
	static const char msg[] =
		"Content-Type: multipart/mixed;\r\n"
		" boundary*0*=us-ascii'en'%61b;\r\n"
		" boundary*1=\"cd\"\r\n"
		"\r\n"
		"--abcd\r\nContent-Type: text/plain\r\n\r\none\r\n"
		"--abcd\r\nContent-Type: text/html; charset*=utf-8''%75tf-8\r\n"
		"\r\n<p>two</p>\r\n--abcd--\r\n";
	struct mime_info in;

	test_assert(mime_info_parse((const uint8_t *)msg, sizeof(msg) - 1,
				    &in) == 0);
	test_assert(strstr(in.bodystructure, "\"HTML\"") != NULL);
	test_assert(strstr(in.bodystructure, "\"MIXED\"") != NULL);
	test_assert(strstr(in.bodystructure,
			   "\"BOUNDARY*0*\" \"us-ascii'en'%61b\"") != NULL);
	test_assert(strstr(in.bodystructure,
			   "\"CHARSET*\" \"utf-8''%75tf-8\"") != NULL);
	mime_info_free(&in);
}

/* A Date: field as UTC time, and as the day it was written on. */
static void
test_mime_date_day(void)
{
	static const char d1[] = "Sun, 25 Mar 2007 00:30:00 +0200";
	static const char d2[] = "24 Mar 07 23:30 EST";
	int64_t t, day;

	test_assert(mime_date_parse(d1, strlen(d1), &t) == 0);
	test_assert(t == 1174775400); /* 2007-03-24 22:30 UTC */
	test_assert(mime_date_parse_day(d1, strlen(d1), &day) == 0);
	test_assert(day == 13597); /* 2007-03-25 */
	test_assert(mime_date_parse(d2, strlen(d2), &t) == 0);
	test_assert(t / 86400 == 13597); /* 04:30 UTC on the 25th */
	test_assert(mime_date_parse_day(d2, strlen(d2), &day) == 0);
	test_assert(day == 13596);
	test_assert(mime_date_parse_day("32 Mar 2007 00:00 +0000", 23,
					&day) < 0);
	test_assert(mime_date_parse_day("", 0, &day) < 0);
}

struct field_seen {
	char vals[4][32];
	size_t n, stop_at;
};

static bool
field_seen_one(void *ctx, const struct buf *value)
{
	struct field_seen *fs = ctx;

	if (fs->n < 4)
		snprintf(fs->vals[fs->n], sizeof(fs->vals[0]), "%.*s",
			 (int)value->len, (const char *)value->data);
	return ++fs->n == fs->stop_at;
}

/* mime_search_field_each: every field of the name (any case), in
   header order, unfolded and decoded, until the callback says stop;
   nothing after the empty line. */
static void
test_mime_search_field_each(void)
{
	static const char hdr[] =
		"X-Note: one\r\n"
		"Subject: s\r\n"
		"x-note: =?utf-8?Q?tw=C3=B6?=\r\n"
		"X-NOTE: three\r\n four\r\n"
		"\r\n"
		"X-Note: body\r\n";
	struct field_seen fs;

	memset(&fs, 0, sizeof(fs));
	test_assert(mime_search_field_each((const uint8_t *)hdr,
					   sizeof(hdr) - 1, "X-Note",
					   field_seen_one, &fs) == 0);
	test_assert(fs.n == 3);
	test_assert_strcmp(fs.vals[0], "one");
	test_assert_strcmp(fs.vals[1], "tw\xc3\xb6");
	test_assert_strcmp(fs.vals[2], "three four");
	memset(&fs, 0, sizeof(fs));
	fs.stop_at = 2;
	test_assert(mime_search_field_each((const uint8_t *)hdr,
					   sizeof(hdr) - 1, "x-note",
					   field_seen_one, &fs) == 1);
	test_assert(fs.n == 2);
	memset(&fs, 0, sizeof(fs));
	test_assert(mime_search_field_each((const uint8_t *)hdr,
					   sizeof(hdr) - 1, "X-None",
					   field_seen_one, &fs) == 0);
	test_assert(fs.n == 0);
}

/* mime_search_field: the address fields as ENVELOPE parses them,
   written out; other fields decoded as they are. */
static void
test_mime_search_field_addresses(void)
{
	static const struct {
		const char *hdr, *name, *want;
	} cases[] = {
		{ "From: <a (c1) @ (c2) b.example>\r\n", "from",
		  "a@b.example" },
		{ "To: x@y.example (Ex Why), \"Doe, J\" <j@d.example>\r\n",
		  "To", "Ex Why <x@y.example>, Doe, J <j@d.example>" },
		{ "Cc: team: =?utf-8?Q?J=C3=B6?= <jo@t.example>,\r\n"
		  "\tk@t.example;, z@z.example\r\n", "CC",
		  "team: J\xc3\xb6 <jo@t.example>, k@t.example;, z@z.example" },
		{ "Bcc: nobody:;\r\n", "Bcc", "nobody:;" },
		/* an element that does not parse: its text too */
		{ "To: daemon\r\n", "To", "daemon\ndaemon" },
		{ "Subject: a (b)  c\r\n", "Subject", "a (b)  c" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out;

		buf_init(&out, MIME_SEARCH_FIELD_MAX_BYTES);
		test_assert_idx(mime_search_field(
					(const uint8_t *)cases[i].hdr,
					strlen(cases[i].hdr), cases[i].name,
					&out) == 1,
				i);
		test_assert_strcmp(buf_cstr(&out), cases[i].want);
		buf_free(&out);
	}
}

static const struct test_case tests[] = {
	{ "mime_date_day", test_mime_date_day },
	{ "mime_search_field_addresses", test_mime_search_field_addresses },
	{ "mime_search_field_each", test_mime_search_field_each },
	{ "mime_rfc2231_boundary", test_mime_rfc2231_boundary },
	{ "mime_info_summary", test_mime_info_summary },
	{ "mime_section", test_mime_section },
	{ "mime_extract_text", test_mime_extract_text },
	{ "mime_extract_headers", test_mime_extract_headers },
	{ "mime_info_truncated", test_mime_info_truncated },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
