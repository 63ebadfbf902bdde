/* Tests for DKIM signing (src/queue/queue_dkim.c). The vectors come from
   outside this code: the relaxed canonicalisation results were computed
   with python3-dkim (dkim.canonicalization.Relaxed), and the signature
   test is the RFC 8463 Appendix A.2 example (Ed25519 is deterministic,
   so the RFC's b= must come out byte for byte). The body canoniser is
   fed whole, byte by byte and split at every offset. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "queue/queue_int.h"

static int
test_buf_out(void *ctx, const void *data, size_t len)
{
	return buf_append(ctx, data, len);
}

/* out holds exactly want (out->data is NULL while empty). */
static bool
test_buf_is(const struct buf *out, const char *want)
{
	size_t n = strlen(want);

	return out->len == n && (n == 0 || memcmp(out->data, want, n) == 0);
}

static const struct {
	const char *in, *out;
} body_cases[] = {
	{ "", "" },
	{ "\r\n", "" },
	{ "\r\n\r\n", "" },
	{ "a\r\n", "a\r\n" },
	{ "a", "a\r\n" },
	{ " a  b \t\r\n\r\n \r\n", " a b\r\n" },
	{ "x\t\ty \r\n\r\nz\r\n\r\n\r\n", "x y\r\n\r\nz\r\n" },
	/* bare LF is a line end on the wire (queue_stuff) */
	{ "a\nb\n\n", "a\r\nb\r\n" },
	/* a bare CR inside a line is kept; a last CR ends the line */
	{ "a\rb\r\n", "a\rb\r\n" },
	{ "a \r", "a\r\n" },
};

static void
body_split(const char *in, size_t split, size_t step, struct buf *out)
{
	struct queue_dkim_body b;
	size_t len = strlen(in), off = 0;

	queue_dkim_body_init(&b, test_buf_out, out);
	if (split > 0) {
		test_assert(queue_dkim_body_feed(&b, (const uint8_t *)in,
						 split) == 0);
		off = split;
	}
	while (off < len) {
		size_t n = step == 0 || len - off < step ? len - off : step;
		test_assert(queue_dkim_body_feed(&b, (const uint8_t *)in + off,
						 n) == 0);
		off += n;
	}
	test_assert(queue_dkim_body_finish(&b) == 0);
}

static void
test_queue_dkim_body(void)
{
	struct buf out;

	buf_init(&out, 4096);
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]);
	     i++) {
		const char *in = body_cases[i].in, *want = body_cases[i].out;
		buf_reset(&out);
		body_split(in, 0, 0, &out);
		test_assert_idx(test_buf_is(&out, want), i);
		buf_reset(&out);
		body_split(in, 0, 1, &out);
		test_assert_idx(test_buf_is(&out, want), i);
		for (size_t s = 1; s < strlen(in); s++) {
			buf_reset(&out);
			body_split(in, s, 0, &out);
			test_assert_idx(test_buf_is(&out, want), i * 100 + s);
		}
	}
	buf_free(&out);
}

static const struct {
	const char *in, *out;
} header_cases[] = {
	{ "Subject:  Hello \t  World  ", "subject:Hello World\r\n" },
	{ "FROM : Joe\r\n\t <joe@x>\r\n  ", "from:Joe <joe@x>\r\n" },
	{ "To:a,\r\n b", "to:a, b\r\n" },
	{ "X-Empty:", "x-empty:\r\n" },
	{ "no colon here", "" },
};

static void
test_queue_dkim_canon_header(void)
{
	struct buf out;

	buf_init(&out, 4096);
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]);
	     i++) {
		const char *in = header_cases[i].in;
		buf_reset(&out);
		test_assert_idx(queue_dkim_canon_header((const uint8_t *)in,
							strlen(in), &out) == 0,
				i);
		test_assert_idx(test_buf_is(&out, header_cases[i].out), i);
	}
	buf_free(&out);
	buf_init(&out, 8);
	test_assert(queue_dkim_canon_header((const uint8_t *)"Subject: long",
					    13, &out) < 0);
	buf_free(&out);
}

static void
test_queue_dkim_fields_select(void)
{
	static const char msg[] =
		"Received: x\r\n"
		"From: a@example.test\r\n"
		"To: b@x.test,\r\n c@x.test\r\n"
		"X-Other: y\n"
		"to: d@x.test\r\n"
		"Subject: s\r\n"
		"\r\n"
		"body\r\n";
	static const char *const want[] = { "from", "from", "to", "to",
					    "subject" };
	struct queue_dkim_field f[10];
	const char *names[QUEUE_DKIM_SIGNED_MAX];
	size_t count, body_off, n;

	test_assert(queue_dkim_fields((const uint8_t *)msg, strlen(msg), f, 10,
				      &count, &body_off) == 0);
	test_assert(count == 6);
	test_assert(body_off == strlen(msg) - 6);
	test_assert(f[2].len == strlen("To: b@x.test,\r\n c@x.test"));
	test_assert(f[3].len == strlen("X-Other: y"));
	test_assert(queue_dkim_fields((const uint8_t *)msg, strlen(msg), f, 5,
				      &count, &body_off) < 0);
	test_assert(queue_dkim_fields((const uint8_t *)msg, strlen(msg), f, 10,
				      &count, &body_off) == 0);
	n = queue_dkim_select((const uint8_t *)msg, f, count, names,
			      QUEUE_DKIM_SIGNED_MAX);
	test_assert(n == 5);
	for (size_t i = 0; i < n && i < 5; i++)
		test_assert_strcmp(names[i], want[i]);
	/* No From: nothing to sign. */
	test_assert(queue_dkim_fields((const uint8_t *)"To: x\r\n\r\nb", 10,
				      f, 10, &count, &body_off) == 0);
	test_assert(count == 1 && body_off == 9);
	test_assert(queue_dkim_select((const uint8_t *)"To: x\r\n\r\nb", f,
				      count, names, 8) == 0);
}

static void
test_queue_dkim_header_build(void)
{
	static const char *const names[] = { "from", "from", "to", "subject",
					     "date", "message-id" };
	struct queue_dkim_sig sig = {
		.algorithm = "rsa-sha256",
		.domain = "example.test",
		.selector = "s1",
		.time = 1700000000,
		.names = names,
		.name_count = 6,
		.bh = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	};
	static const char want[] =
		"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;"
		" d=example.test; s=s1;\r\n"
		"\tt=1700000000; h=from:from:to:subject:date:message-id;\r\n"
		"\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
		"\tb=";
	struct buf out;

	buf_init(&out, QUEUE_DKIM_HEADER_MAX_BYTES);
	test_assert(queue_dkim_header_build(&sig, &out) == 0);
	test_assert_strcmp(buf_cstr(&out), want);
	test_assert(queue_dkim_header_finish(&out, "QUJD") == 0);
	test_assert(out.len == strlen(want) + 6);
	buf_free(&out);
}

/* RFC 8463 A.1 / A.2 */
static const char rfc8463_msg[] =
	"From: Joe SixPack <joe@football.example.com>\r\n"
	"To: Suzie Q <suzie@shopping.example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"We lost the game.  Are you hungry yet?\r\n"
	"\r\n"
	"Joe.\r\n";
static const char rfc8463_sighdr[] =
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
	" subject : date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=";
/* The A.1 private key nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=
   wrapped as PKCS#8. */
static const char rfc8463_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
	"-----END PRIVATE KEY-----\n";

static struct queue_dkim_key *
rfc8463_key(void)
{
	struct store_dkim_key sk = {
		.domain = (char *)"football.example.com",
		.selector = (char *)"brisbane",
		.algorithm = (char *)"ed25519-sha256",
		.private_key = (char *)rfc8463_pem,
	};
	const char *error = NULL;
	struct queue_dkim_key *key = queue_dkim_key_load(&sk, &error);

	test_assert(key != NULL);
	return key;
}

static void
test_queue_dkim_rfc8463(void)
{
	static const char *const names[] = { "from", "to", "subject", "date",
					     "message-id", "from", "subject",
					     "date" };
	const uint8_t *msg = (const uint8_t *)rfc8463_msg;
	struct queue_dkim_field f[16];
	struct queue_dkim_key *key = rfc8463_key();
	struct buf bh, data, b;
	size_t count, body_off;

	if (key == NULL)
		return;
	buf_init(&bh, 64);
	buf_init(&data, 8192);
	buf_init(&b, 1024);
	test_assert(queue_dkim_fields(msg, strlen(rfc8463_msg), f, 16, &count,
				      &body_off) == 0);
	test_assert(queue_dkim_body_hash(msg + body_off,
					 strlen(rfc8463_msg) - body_off,
					 &bh) == 0);
	test_assert_strcmp(buf_cstr(&bh),
			   "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
	test_assert(queue_dkim_signed_data(msg, f, count, names, 8,
					   (const uint8_t *)rfc8463_sighdr,
					   strlen(rfc8463_sighdr),
					   &data) == 0);
	test_assert(queue_dkim_sign_data(key, data.data, data.len, &b) == 0);
	test_assert_strcmp(buf_cstr(&b),
			   "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D"
			   "11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");
	queue_dkim_key_free(&key);
	test_assert(key == NULL);
	buf_free(&bh);
	buf_free(&data);
	buf_free(&b);
}

/* The whole field for the RFC message with our header set, frozen after
   python3-dkim's dkim.verify() accepted it with the RFC 8463 public key
   11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=. */
static const char rfc8463_ours[] =
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
	"\td=football.example.com; s=brisbane; t=1528637909;"
	" h=from:from:to:subject:\r\n"
	"\tdate:message-id; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	"\tb=vN2NNEfK15VgbHaLjoKjG/9fYxD0eXnQVAvPD1OAuTUzeOu8StmCds5zgQLN7zVs"
	"+HMBtsIV\r\n"
	"\t o0BXDnMicHpyBQ==\r\n";

static void
test_queue_dkim_sign(void)
{
	struct queue_dkim_key *key = rfc8463_key();
	struct buf out;
	const char *error = NULL;

	if (key == NULL)
		return;
	buf_init(&out, QUEUE_DKIM_HEADER_MAX_BYTES);
	test_assert(queue_dkim_sign(key, (const uint8_t *)rfc8463_msg,
				    strlen(rfc8463_msg), 1528637909, &out,
				    &error) == 0);
	test_assert_strcmp(buf_cstr(&out), rfc8463_ours);
	buf_reset(&out);
	test_assert(queue_dkim_sign(key, (const uint8_t *)"To: x\r\n\r\nhi\r\n",
				    13, 1, &out, &error) < 0);
	test_assert_strcmp(error, "no From header field");
	queue_dkim_key_free(&key);
	buf_free(&out);
}

static void
test_queue_dkim_key_mismatch(void)
{
	struct store_dkim_key sk = {
		.domain = (char *)"x.test",
		.selector = (char *)"s",
		.algorithm = (char *)"rsa-sha256",
		.private_key = (char *)rfc8463_pem,
	};
	const char *error = NULL;

	test_assert(queue_dkim_key_load(&sk, &error) == NULL);
	test_assert(error != NULL);
	sk.private_key = (char *)"-----BEGIN PRIVATE KEY-----\nxx\n";
	test_assert(queue_dkim_key_load(&sk, &error) == NULL);
}

static const struct {
	const char *msg, *sender, *want;
} domain_cases[] = {
	{ "From: A <a@Example.TEST>\r\n\r\n", "a@example.test",
	  "example.test" },
	/* another tenant's From: the envelope sender's domain signs */
	{ "From: ceo@other.test\r\n\r\n", "a@example.test", "example.test" },
	{ "Subject: no from\r\n\r\n", "a@example.test", "example.test" },
	/* bounces from our host name */
	{ "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"
	  "\r\n", "", "mx.example.test" },
	{ "From: x@other.test\r\n\r\n", "", NULL },
	{ "From: \"a@b\" <bad\r\n\r\n", "u@example.test", "example.test" },
};

static void
test_queue_dkim_domain(void)
{
	char out[QUEUE_DOMAIN_MAX_BYTES + 1];

	for (size_t i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]);
	     i++) {
		const char *m = domain_cases[i].msg;
		int r = queue_dkim_domain((const uint8_t *)m, strlen(m),
					  domain_cases[i].sender,
					  "mx.example.test", out, sizeof(out));
		if (domain_cases[i].want == NULL) {
			test_assert_idx(r < 0, i);
			continue;
		}
		test_assert_idx(r == 0, i);
		if (r == 0)
			test_assert_strcmp(out, domain_cases[i].want);
	}
}

static const struct test_case tests[] = {
	{ "queue_dkim_domain", test_queue_dkim_domain },
	{ "queue_dkim_body", test_queue_dkim_body },
	{ "queue_dkim_canon_header", test_queue_dkim_canon_header },
	{ "queue_dkim_fields_select", test_queue_dkim_fields_select },
	{ "queue_dkim_header_build", test_queue_dkim_header_build },
	{ "queue_dkim_rfc8463", test_queue_dkim_rfc8463 },
	{ "queue_dkim_sign", test_queue_dkim_sign },
	{ "queue_dkim_key_mismatch", test_queue_dkim_key_mismatch },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
