/* Tests for the SMTP client's reply parser and EHLO keywords
   (src/queue/queue_reply.c): single and multiline replies, enhanced
   status codes (RFC 3463), malformed lines, bounds. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "queue/queue_int.h"

/* Feed "\n"-separated lines; return the result of the last feed. */
static enum queue_reply_res
feed_all(struct queue_reply *r, const char *text)
{
	struct strview all = sv_from_cstr(text);
	enum queue_reply_res res = QUEUE_REPLY_ERR;
	const char *error;

	while (all.len > 0) {
		struct strview line = sv_split(&all, '\n');
		res = queue_reply_feed(r, line, &error);
		if (res != QUEUE_REPLY_MORE)
			break;
	}
	return res;
}

static void
test_queue_reply_single(void)
{
	static const struct {
		const char *in;
		enum queue_reply_res res;
		unsigned code;
		const char *enhanced, *text;
	} cases[] = {
		{ "250 ok", QUEUE_REPLY_DONE, 250, "", "ok" },
		{ "250", QUEUE_REPLY_DONE, 250, "", "" },
		{ "550 5.1.1 no such user", QUEUE_REPLY_DONE, 550, "5.1.1",
		  "5.1.1 no such user" },
		{ "451 4.3.0", QUEUE_REPLY_DONE, 451, "4.3.0", "4.3.0" },
		{ "250 2.1.5", QUEUE_REPLY_DONE, 250, "2.1.5", "2.1.5" },
		/* Class mismatch: not an enhanced code of this reply. */
		{ "550 4.1.1 odd", QUEUE_REPLY_DONE, 550, "", "4.1.1 odd" },
		{ "550 5.1000.1 x", QUEUE_REPLY_DONE, 550, "", "5.1000.1 x" },
		{ "550 5.1.1x", QUEUE_REPLY_DONE, 550, "", "5.1.1x" },
		{ "550 5..1 x", QUEUE_REPLY_DONE, 550, "", "5..1 x" },
		{ "554 5.7.1 relaying denied", QUEUE_REPLY_DONE, 554, "5.7.1",
		  "5.7.1 relaying denied" },
		{ "", QUEUE_REPLY_ERR, 0, NULL, NULL },
		{ "25", QUEUE_REPLY_ERR, 0, NULL, NULL },
		{ "abc def", QUEUE_REPLY_ERR, 0, NULL, NULL },
		{ "650 x", QUEUE_REPLY_ERR, 0, NULL, NULL },
		{ "150 x", QUEUE_REPLY_ERR, 0, NULL, NULL },
		{ "250x", QUEUE_REPLY_ERR, 0, NULL, NULL },
	};
	struct queue_reply r;
	const char *error;

	queue_reply_init(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum queue_reply_res res;
		queue_reply_reset(&r);
		res = queue_reply_feed(&r, sv_from_cstr(cases[i].in), &error);
		test_assert_idx(res == cases[i].res, i);
		if (res != QUEUE_REPLY_DONE)
			continue;
		test_assert_idx(r.code == cases[i].code, i);
		test_assert_idx(strcmp(r.enhanced, cases[i].enhanced) == 0, i);
		test_assert_idx(strcmp(buf_cstr(&r.text), cases[i].text) == 0,
				i);
	}
	queue_reply_free(&r);
}

static void
test_queue_reply_multiline(void)
{
	struct queue_reply r;
	const char *error;
	char out[128];

	queue_reply_init(&r);
	test_assert(feed_all(&r, "250-mx.example.org hi\n250-PIPELINING\n"
				 "250 8BITMIME") == QUEUE_REPLY_DONE);
	test_assert(r.code == 250 && r.lines == 3);
	test_assert_strcmp(buf_cstr(&r.text),
			   "mx.example.org hi\nPIPELINING\n8BITMIME");
	test_assert_strcmp(queue_reply_format(&r, out, sizeof(out)),
			   "250 mx.example.org hi; PIPELINING; 8BITMIME");
	/* The next feed after a complete reply starts a new one. */
	test_assert(queue_reply_feed(&r, SV_LIT("221 bye"), &error) ==
		    QUEUE_REPLY_DONE);
	test_assert(r.code == 221 && r.lines == 1);
	/* Code change inside a reply. */
	queue_reply_reset(&r);
	test_assert(feed_all(&r, "250-a\n251 b") == QUEUE_REPLY_ERR);
	/* "ddd-" with empty text continues. */
	queue_reply_reset(&r);
	test_assert(feed_all(&r, "550-5.1.1 first\n550-\n550 5.1.1 last") ==
		    QUEUE_REPLY_DONE);
	test_assert_strcmp(r.enhanced, "5.1.1");
	/* Formatting replaces control bytes and truncates. */
	queue_reply_reset(&r);
	test_assert(queue_reply_feed(&r, sv_make("550 a\x01\xffz", 8),
				     &error) == QUEUE_REPLY_DONE);
	test_assert_strcmp(queue_reply_format(&r, out, sizeof(out)),
			   "550 a??z");
	test_assert_strcmp(queue_reply_format(&r, out, 6), "550 a");
	queue_reply_free(&r);
}

static void
test_queue_reply_bounds(void)
{
	struct queue_reply r;
	const char *error;
	char line[3000];
	size_t i;
	enum queue_reply_res res = QUEUE_REPLY_MORE;

	queue_reply_init(&r);
	/* Too many lines: an error, not unbounded memory. */
	for (i = 0; i < QUEUE_REPLY_LINES_MAX + 5 && res == QUEUE_REPLY_MORE;
	     i++)
		res = queue_reply_feed(&r, SV_LIT("250-x"), &error);
	test_assert(res == QUEUE_REPLY_ERR);
	test_assert(i == QUEUE_REPLY_LINES_MAX + 1);
	/* Long lines: the text is cut at its ceiling, parsing goes on. */
	queue_reply_reset(&r);
	memset(line, 'a', sizeof(line));
	memcpy(line, "250-", 4);
	for (i = 0; i < 20; i++)
		test_assert_idx(queue_reply_feed(&r, sv_make(line, sizeof(line)),
						 &error) == QUEUE_REPLY_MORE,
				i);
	test_assert(r.text.len <= QUEUE_REPLY_TEXT_MAX_BYTES);
	test_assert(queue_reply_feed(&r, SV_LIT("250 end"), &error) ==
		    QUEUE_REPLY_DONE);
	queue_reply_free(&r);
}

static void
test_queue_caps(void)
{
	struct queue_reply r;
	struct queue_caps caps;

	queue_reply_init(&r);
	test_assert(feed_all(&r, "250-mx.example.org\n250-PIPELINING\n"
				 "250-SIZE 1000\n250-8bitmime\n250-STARTTLS\n"
				 "250-DSN\n250-SMTPUTF8\n250-AUTH LOGIN PLAIN\n"
				 "250 ENHANCEDSTATUSCODES") == QUEUE_REPLY_DONE);
	queue_caps_parse(&r, &caps);
	test_assert(caps.pipelining && caps.eightbitmime && caps.starttls);
	test_assert(caps.dsn && caps.smtputf8 && caps.auth_plain);
	test_assert(caps.enhanced && caps.has_size && caps.size == 1000);

	queue_reply_reset(&r);
	test_assert(feed_all(&r, "250-mx\n250-SIZE\n250 AUTH=LOGIN") ==
		    QUEUE_REPLY_DONE);
	queue_caps_parse(&r, &caps);
	test_assert(caps.has_size && caps.size == 0);
	test_assert(!caps.pipelining && !caps.auth_plain && !caps.starttls);

	/* The greeting line is not a keyword; a HELO reply has none. */
	queue_reply_reset(&r);
	test_assert(feed_all(&r, "250 STARTTLS") == QUEUE_REPLY_DONE);
	queue_caps_parse(&r, &caps);
	test_assert(!caps.starttls);
	queue_reply_reset(&r);
	test_assert(feed_all(&r, "250-SIZE 99999999999999999999999\n"
				 "250 SIZE x") == QUEUE_REPLY_DONE);
	queue_caps_parse(&r, &caps);
	test_assert(caps.size == 0);
	queue_reply_free(&r);
}

static void
test_queue_reply_split_feeding(void)
{
	/* The parser sees lines; check any split into lines of a
	   pipelined batch gives the same replies in order. */
	static const char *const lines[] = {
		"250 2.1.0 ok", "550-5.1.1 no", "550 5.1.1 such user",
		"250 2.1.5 ok", "354 go",
	};
	static const unsigned codes[] = { 250, 550, 250, 354 };
	struct queue_reply r;
	const char *error;
	size_t got = 0;

	queue_reply_init(&r);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		enum queue_reply_res res =
			queue_reply_feed(&r, sv_from_cstr(lines[i]), &error);
		if (res == QUEUE_REPLY_DONE) {
			test_assert_idx(got < 4 && r.code == codes[got], got);
			got++;
		}
	}
	test_assert(got == 4);
	queue_reply_free(&r);
}

static const struct test_case tests[] = {
	{ "queue_reply_single", test_queue_reply_single },
	{ "queue_reply_multiline", test_queue_reply_multiline },
	{ "queue_reply_bounds", test_queue_reply_bounds },
	{ "queue_reply_split_feeding", test_queue_reply_split_feeding },
	{ "queue_caps", test_queue_caps },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
