/* Tests for the outbound content transforms (src/queue/queue_body.c):
   dot-stuffing fed whole, byte by byte and split at every offset; the
   8-bit scan; quoted-printable encoding; 8bit -> 7bit conversion of
   single and multipart messages. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "mime/mime.h"
#include "queue/queue_int.h"

static const struct {
	const char *in, *out;
} stuff_cases[] = {
	{ "", ".\r\n" },
	{ "a\r\n", "a\r\n.\r\n" },
	{ "a", "a\r\n.\r\n" },
	{ ".", "..\r\n.\r\n" },
	{ ".\r\n", "..\r\n.\r\n" },
	{ "x\r\n.\r\ny\r\n", "x\r\n..\r\ny\r\n.\r\n" },
	{ "..a\r\n", "...a\r\n.\r\n" },
	{ "a.b\r\n.c", "a.b\r\n..c\r\n.\r\n" },
	/* Bare LF becomes CRLF (RFC 5321 2.3.8). */
	{ "a\nb\n", "a\r\nb\r\n.\r\n" },
	{ "a\n.b", "a\r\n..b\r\n.\r\n" },
	{ "a\r", "a\r\n.\r\n" },
};

static void
stuff_split(const char *in, size_t split, size_t step, struct buf *out)
{
	struct queue_stuff st;
	size_t len = strlen(in), off = 0;

	queue_stuff_init(&st);
	if (split > 0) {
		test_assert(queue_stuff_feed(&st, (const uint8_t *)in, split,
					     out) == 0);
		off = split;
	}
	while (off < len) {
		size_t n = step == 0 || len - off < step ? len - off : step;
		test_assert(queue_stuff_feed(&st, (const uint8_t *)in + off, n,
					     out) == 0);
		off += n;
	}
	test_assert(queue_stuff_finish(&st, out) == 0);
}

static void
test_queue_stuff(void)
{
	struct buf out;

	buf_init(&out, 4096);
	for (size_t i = 0; i < sizeof(stuff_cases) / sizeof(stuff_cases[0]);
	     i++) {
		const char *in = stuff_cases[i].in;
		/* whole */
		buf_reset(&out);
		stuff_split(in, 0, 0, &out);
		test_assert_idx(strcmp(buf_cstr(&out), stuff_cases[i].out) == 0,
				i);
		/* byte by byte */
		buf_reset(&out);
		stuff_split(in, 0, 1, &out);
		test_assert_idx(strcmp(buf_cstr(&out), stuff_cases[i].out) == 0,
				i);
		/* every split point */
		for (size_t s = 1; s < strlen(in); s++) {
			buf_reset(&out);
			stuff_split(in, s, 0, &out);
			test_assert_idx(strcmp(buf_cstr(&out),
					       stuff_cases[i].out) == 0,
					i * 100 + s);
		}
	}
	buf_free(&out);
}

static void
test_queue_stuff_bound(void)
{
	struct queue_stuff st;
	struct buf out;

	/* A full buffer is an error, never a silent cut. */
	buf_init(&out, 4);
	queue_stuff_init(&st);
	test_assert(queue_stuff_feed(&st, (const uint8_t *)"....", 4, &out) <
		    0);
	buf_free(&out);
}

static void
test_queue_body_scan(void)
{
	struct queue_body_info info;
	static const char ascii[] = "Subject: x\r\n\r\nhello\r\n";
	static const char body8[] = "Subject: x\r\n\r\nGr\xc3\xbc\xc3\x9f"
				    "e\r\n";
	static const char head8[] = "Subject: Gr\xc3\xbc\xc3\x9f"
				    "e\r\n\r\nx\r\n";

	queue_body_scan((const uint8_t *)ascii, strlen(ascii), &info);
	test_assert(!info.body_8bit && !info.header_8bit && !info.has_nul);
	queue_body_scan((const uint8_t *)body8, strlen(body8), &info);
	test_assert(info.body_8bit && !info.header_8bit);
	queue_body_scan((const uint8_t *)head8, strlen(head8), &info);
	test_assert(info.body_8bit && info.header_8bit);
	queue_body_scan((const uint8_t *)"a\r\n\r\n\0", 6, &info);
	test_assert(info.has_nul);
}

static void
test_queue_body_qp(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "abc", "abc" },
		{ "a=b", "a=3Db" },
		{ "Gr\xc3\xbc\xc3\x9f"
		  "e\r\n",
		  "Gr=C3=BC=C3=9Fe\r\n" },
		{ "trailing \r\nx", "trailing=20\r\nx" },
		{ "tab\t\r\n", "tab=09\r\n" },
		{ "a\r\n\r\nb", "a\r\n\r\nb" },
		{ "bare\nlf", "bare\r\nlf" },
	};
	struct buf out;
	char line[200];

	buf_init(&out, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&out);
		test_assert_idx(queue_body_qp_encode(
					(const uint8_t *)cases[i].in,
					strlen(cases[i].in), &out) == 0,
				i);
		test_assert_idx(strcmp(buf_cstr(&out), cases[i].out) == 0, i);
	}
	/* Long lines get soft breaks; no output line exceeds 76. */
	memset(line, 0xe9, sizeof(line));
	buf_reset(&out);
	test_assert(queue_body_qp_encode((const uint8_t *)line, sizeof(line),
					 &out) == 0);
	{
		struct strview all = sv_make(out.data, out.len);
		struct buf dec;
		while (all.len > 0) {
			struct strview l = sv_split(&all, '\n');
			test_assert(l.len <= 77); /* 76 + CR */
		}
		buf_init(&dec, 4096);
		test_assert(mime_decode_qp(&dec, out.data, out.len) == 0);
		test_assert_memeq(dec.data, dec.len, line, sizeof(line));
		buf_free(&dec);
	}
	buf_free(&out);
}

static void
test_queue_body_7bit_single(void)
{
	static const char msg[] =
		"From: a@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n"
		"caf\xc3\xa9\r\n.dot\r\n";
	struct buf out;
	const char *error = NULL;
	struct buf hdr;

	buf_init(&out, 65536);
	test_assert(queue_body_to_7bit((const uint8_t *)msg, strlen(msg), &out,
				       &error) == 0);
	test_assert(strstr(buf_cstr(&out), "Content-Transfer-Encoding: "
					   "quoted-printable\r\n\r\ncaf=C3=A9\r\n"
					   ".dot\r\n") != NULL);
	test_assert(strstr(buf_cstr(&out), "8bit") == NULL);
	test_assert(strncmp(buf_cstr(&out), "From: a@example.org\r\n", 21) == 0);
	buf_init(&hdr, 1024);
	test_assert(mime_header_get(out.data, out.len, "Subject", &hdr) == 1);
	test_assert_strcmp(buf_cstr(&hdr), "hi");
	buf_free(&hdr);
	buf_free(&out);
}

static void
test_queue_body_7bit_multipart(void)
{
	static const char msg[] =
		"Subject: m\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
		"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
		"plain ascii\r\n--b\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n"
		"\xc3\xbc\r\n--b\r\nContent-Type: application/octet-stream\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n";
	static const uint8_t head8[] = "Subject: \xc3\xbc\r\n\r\nx\r\n";
	struct buf out;
	const char *error = NULL, *s;

	buf_init(&out, 65536);
	test_assert(queue_body_to_7bit((const uint8_t *)msg, strlen(msg), &out,
				       &error) == 0);
	s = buf_cstr(&out);
	test_assert(strstr(s, "plain ascii\r\n--b\r\n") != NULL);
	test_assert(strstr(s, "Content-Type: text/plain; charset=utf-8\r\n"
			      "Content-Transfer-Encoding: quoted-printable\r\n"
			      "\r\n=C3=BC\r\n--b\r\n") != NULL);
	test_assert(strstr(s, "base64\r\n\r\nAAAA\r\n--b--\r\n") != NULL);
	for (size_t i = 0; i < out.len; i++)
		test_assert_idx(out.data[i] < 0x80, i);

	/* 8-bit header bytes cannot be converted. */
	buf_reset(&out);
	test_assert(queue_body_to_7bit(head8, sizeof(head8) - 1, &out,
				       &error) < 0);
	test_assert(error != NULL);
	buf_free(&out);
}

static const struct test_case tests[] = {
	{ "queue_stuff", test_queue_stuff },
	{ "queue_stuff_bound", test_queue_stuff_bound },
	{ "queue_body_scan", test_queue_body_scan },
	{ "queue_body_qp", test_queue_body_qp },
	{ "queue_body_7bit_single", test_queue_body_7bit_single },
	{ "queue_body_7bit_multipart", test_queue_body_7bit_multipart },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
