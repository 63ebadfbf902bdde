/* Tests for the DSN builder (src/queue/queue_bounce.c): RFC 3464 fields,
   the RFC 6522 multipart/report structure, RET=HDRS, xtext decoding and
   hostile remote text that must not break header lines. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "mime/mime.h"
#include "queue/queue_int.h"

static const char original[] =
	"From: <alice@example.org>\r\nTo: <bob@remote.example>\r\n"
	"Subject: lunch\r\n\r\nSee you at noon.\r\n";

static void
build(struct queue_bounce *b, struct queue_bounce_rcpt *rc, struct buf *out)
{
	memset(b, 0, sizeof(*b));
	b->reporting_mta = "mail.example.org";
	b->sender = "alice@example.org";
	b->envid = "QQ+2B1";
	b->arrival = 1700000000;
	b->now = 1700000600;
	b->boundary = "=_b1";
	b->message_id = "<1.dsn@mail.example.org>";
	b->rcpts = rc;
	b->rcpt_count = 2;
	b->original = (const uint8_t *)original;
	b->original_len = sizeof(original) - 1;
	test_assert(queue_bounce_build(b, out) == 0);
}

static void
test_queue_bounce_fields(void)
{
	struct queue_bounce_rcpt rc[2] = {
		{ "bob@remote.example", "rfc822;bob+2Bx@remote.example",
		  "failed", "5.1.1", "mx.remote.example",
		  "550 5.1.1 <bob@remote.example>: no such user" },
		{ "carol@remote.example", NULL, "failed", "4.4.1", NULL,
		  "gave up after 3 attempts; last error: connection refused" },
	};
	struct queue_bounce b;
	struct buf out;
	const char *s;
	struct mime_section sec;
	uint32_t path[1];

	buf_init(&out, 1 << 20);
	build(&b, rc, &out);
	s = buf_cstr(&out);
	test_assert(strstr(s, "Content-Type: multipart/report; "
			      "report-type=delivery-status;\r\n"
			      "\tboundary=\"=_b1\"\r\n") != NULL);
	test_assert(strstr(s, "To: <alice@example.org>\r\n") != NULL);
	test_assert(strstr(s, "Auto-Submitted: auto-replied\r\n") != NULL);
	test_assert(strstr(s, "Date: Tue, 14 Nov 2023 22:23:20 +0000\r\n") !=
		    NULL);
	test_assert(strstr(s, "Reporting-MTA: dns; mail.example.org\r\n"
			      "Original-Envelope-Id: QQ+1\r\n"
			      "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
			      "\r\nFinal-Recipient: rfc822; bob@remote.example\r\n"
			      "Original-Recipient: rfc822;bob+x@remote.example\r\n"
			      "Action: failed\r\nStatus: 5.1.1\r\n"
			      "Remote-MTA: dns; mx.remote.example\r\n"
			      "Diagnostic-Code: smtp; 550 5.1.1 "
			      "<bob@remote.example>: no such user\r\n") != NULL);
	test_assert(strstr(s, "Final-Recipient: rfc822; carol@remote.example\r\n"
			      "Action: failed\r\nStatus: 4.4.1\r\n"
			      "Diagnostic-Code: smtp; gave up") != NULL);
	test_assert(strstr(s, "Content-Type: message/rfc822\r\n\r\n"
			      "From: <alice@example.org>") != NULL);
	test_assert(strstr(s, "See you at noon.\r\n\r\n--=_b1--\r\n") != NULL);
	/* Three parts, as the MIME parser sees them. */
	for (uint32_t i = 1; i <= 3; i++) {
		path[0] = i;
		test_assert_idx(mime_section_find(out.data, out.len, path, 1,
						  &sec) == 1,
				i);
	}
	path[0] = 3;
	test_assert(mime_section_find(out.data, out.len, path, 1, &sec) == 1);
	test_assert(sec.is_message_rfc822);
	path[0] = 4;
	test_assert(mime_section_find(out.data, out.len, path, 1, &sec) == 0);
	buf_free(&out);
}

static void
test_queue_bounce_headers_only(void)
{
	struct queue_bounce_rcpt rc[2] = {
		{ "bob@remote.example", NULL, "failed", "5.0.0", NULL, "x" },
		{ "c@remote.example", NULL, "failed", "5.0.0", NULL, "y" },
	};
	struct queue_bounce b;
	struct buf out;

	buf_init(&out, 1 << 20);
	memset(&b, 0, sizeof(b));
	build(&b, rc, &out);
	buf_reset(&out);
	b.headers_only = true;
	test_assert(queue_bounce_build(&b, &out) == 0);
	test_assert(strstr(buf_cstr(&out), "Content-Type: text/rfc822-headers"
					   "\r\n\r\nFrom: <alice@example.org>")
		    != NULL);
	test_assert(strstr(buf_cstr(&out), "See you at noon") == NULL);
	/* A too small buffer fails, it does not truncate silently. */
	buf_free(&out);
	buf_init(&out, 200);
	test_assert(queue_bounce_build(&b, &out) < 0);
	buf_free(&out);
}

static void
test_queue_bounce_delayed(void)
{
	struct queue_bounce_rcpt rc[2] = {
		{ "bob@remote.example", NULL, "delayed", "4.4.1",
		  "mx.remote.example", "451 4.4.1 try later" },
		{ "c@remote.example", NULL, "delayed", "4.4.1", NULL, "y" },
	};
	struct queue_bounce b;
	struct buf out;
	const char *s;

	buf_init(&out, 1 << 20);
	build(&b, rc, &out);
	buf_reset(&out);
	b.delayed = true;
	b.headers_only = true;
	b.retry_until = 1700432000;
	test_assert(queue_bounce_build(&b, &out) == 0);
	s = buf_cstr(&out);
	test_assert(strstr(s, "Subject: Delayed Mail (still being retried)"
			      "\r\n") != NULL);
	test_assert(strstr(s, "Undelivered Mail") == NULL);
	test_assert(strstr(s, "delivery will be tried again until\r\n"
			      "Sun, 19 Nov 2023 22:13:20 +0000;") != NULL);
	test_assert(strstr(s, "Action: delayed\r\nStatus: 4.4.1\r\n"
			      "Remote-MTA: dns; mx.remote.example\r\n"
			      "Diagnostic-Code: smtp; 451 4.4.1 try later\r\n"
			      "Last-Attempt-Date: Tue, 14 Nov 2023 22:23:20 "
			      "+0000\r\nWill-Retry-Until: Sun, 19 Nov 2023 "
			      "22:13:20 +0000\r\n") != NULL);
	test_assert(strstr(s, "Content-Description: Delayed message header\r\n"
			      "Content-Type: text/rfc822-headers\r\n") != NULL);
	test_assert(strstr(s, "See you at noon") == NULL);
	buf_free(&out);
}

static void
test_queue_bounce_relayed(void)
{
	struct queue_bounce_rcpt rc[2] = {
		{ "bob@old.example", "rfc822;bob@old.example", "relayed",
		  "2.0.0", "mx.old.example", "250 2.0.0 Ok" },
		{ "c@old.example", NULL, "relayed", "2.0.0", NULL, "250 ok" },
	};
	struct queue_bounce b;
	struct buf out;
	const char *s;

	buf_init(&out, 1 << 20);
	build(&b, rc, &out);
	buf_reset(&out);
	b.relayed = true;
	b.headers_only = true;
	test_assert(queue_bounce_build(&b, &out) == 0);
	s = buf_cstr(&out);
	test_assert(strstr(s, "Subject: Successful Mail Relay Report\r\n") !=
		    NULL);
	test_assert(strstr(s, "could not be delivered") == NULL);
	test_assert(strstr(s, "Action: relayed\r\nStatus: 2.0.0\r\n"
			      "Remote-MTA: dns; mx.old.example\r\n"
			      "Diagnostic-Code: smtp; 250 2.0.0 Ok\r\n") !=
		    NULL);
	test_assert(strstr(s, "Will-Retry-Until") == NULL);
	test_assert(strstr(s, "Content-Description: Relayed message header"
			      "\r\nContent-Type: text/rfc822-headers\r\n") !=
		    NULL);
	test_assert(strstr(s, "See you at noon") == NULL);
	buf_free(&out);
}

static void
test_queue_bounce_hostile(void)
{
	struct queue_bounce_rcpt rc[2] = {
		{ "bob@remote.example", "rfc822;x+0D+0ABcc:+20evil", "failed",
		  "5.0.0", "mx\r\nX-Evil: 1", "550 bad\r\nX-Injected: yes" },
		{ "c@remote.example", NULL, "failed", "5.0.0", NULL, "y" },
	};
	struct queue_bounce b;
	struct buf out;

	buf_init(&out, 1 << 20);
	build(&b, rc, &out);
	test_assert(strstr(buf_cstr(&out), "\r\nX-Injected") == NULL);
	test_assert(strstr(buf_cstr(&out), "\r\nX-Evil") == NULL);
	test_assert(strstr(buf_cstr(&out), "\r\nBcc:") == NULL);
	buf_free(&out);
}

static void
test_queue_bounce_xtext(void)
{
	char out[32];

	queue_bounce_xtext_decode("a+2Bb+3Dc", out, sizeof(out));
	test_assert_strcmp(out, "a+b=c");
	queue_bounce_xtext_decode("bad+zz+2", out, sizeof(out));
	test_assert_strcmp(out, "bad+zz+2");
	queue_bounce_xtext_decode("x+00y", out, sizeof(out));
	test_assert_strcmp(out, "x?y");
	queue_bounce_xtext_decode("0123456789", out, 5);
	test_assert_strcmp(out, "0123");
}

static const struct test_case tests[] = {
	{ "queue_bounce_fields", test_queue_bounce_fields },
	{ "queue_bounce_headers_only", test_queue_bounce_headers_only },
	{ "queue_bounce_delayed", test_queue_bounce_delayed },
	{ "queue_bounce_relayed", test_queue_bounce_relayed },
	{ "queue_bounce_hostile", test_queue_bounce_hostile },
	{ "queue_bounce_xtext", test_queue_bounce_xtext },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
