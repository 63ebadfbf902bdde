/* Tests for the IMAP parser (fed whole, byte by byte and split at every
   offset), sequence sets, modified UTF-7 and the IMAP date formats. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "imap/imap_int.h"
#include "lib/arena.h"
#include "lib/buf.h"

static void
dump_args(struct buf *out, const struct imap_arg *args, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];

		if (i > 0)
			buf_append_byte(out, ' ');
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_append(out, a->str, a->len);
			break;
		case IMAP_ARG_QUOTED:
			buf_printf(out, "\"%s\"", a->str);
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(out, "%s{%zu}", a->literal8 ? "~" : "",
				   a->len);
			buf_append(out, a->str, a->len);
			break;
		case IMAP_ARG_LIST:
			buf_append_byte(out, '(');
			dump_args(out, a->list, a->count);
			buf_append_byte(out, ')');
			break;
		case IMAP_ARG_STREAM:
			buf_printf(out, "<STREAM %llu>",
				   (unsigned long long)a->stream_size);
			break;
		}
	}
}

/* Feed input in chunks of at most `step` bytes (0: all at once) and
   record every event. */
static char *
run_parser(const char *in, size_t len, size_t step, size_t max_line)
{
	struct imap_parser *p = imap_parser_new(max_line, 1000, 100000);
	struct arena *a = arena_new("test", 1024);
	struct buf out, pending;
	size_t pos = 0, used, stream_left = 0;
	enum imap_parse_res r;
	enum imap_parse_err code;
	const struct imap_arg *args;
	size_t argc;
	char *res;

	buf_init(&out, 1 << 20);
	buf_init(&pending, 1 << 20);
	imap_parser_begin(p, a);
	while (pos < len || pending.len > 0) {
		size_t n = step == 0 ? len - pos : step;

		if (n > len - pos)
			n = len - pos;
		buf_append(&pending, in + pos, n);
		pos += n;
		for (;;) {
			if (stream_left > 0) {
				size_t k = pending.len < stream_left ?
						   pending.len : stream_left;
				buf_append(&out, pending.data, k);
				buf_consume(&pending, k);
				stream_left -= k;
				if (stream_left > 0)
					break;
				buf_append_byte(&out, ']');
				imap_parser_stream_done(p);
			}
			if (pending.len == 0)
				break;
			r = imap_parser_feed(p, pending.data, pending.len, &used);
			buf_consume(&pending, used);
			if (r == IMAP_PARSE_MORE) {
				if (used == 0 || pending.len == 0)
					break;
				continue;
			}
			if (r == IMAP_PARSE_CONT) {
				buf_append_str(&out, "CONT|");
				continue;
			}
			if (r == IMAP_PARSE_STREAM) {
				stream_left = imap_parser_literal_size(p);
				buf_printf(&out, "STREAM %zu%s|[", stream_left,
					   imap_parser_literal_sync(p) ?
						   "" : "+");
				continue;
			}
			if (r == IMAP_PARSE_ERROR) {
				imap_parser_error(p, &code);
				buf_printf(&out, "ERR %s %d|",
					   imap_parser_tag(p) != NULL ?
						   imap_parser_tag(p) : "*",
					   (int)code);
				if (code == IMAP_PERR_FATAL) {
					pos = len;
					buf_reset(&pending);
					break;
				}
			} else {
				args = imap_parser_args(p, &argc);
				buf_printf(&out, "CMD %s %s ", imap_parser_tag(p),
					   imap_parser_name(p));
				dump_args(&out, args, argc);
				buf_append_str(&out, "|");
			}
			arena_reset(a);
			imap_parser_begin(p, a);
		}
		if (pos == len && stream_left == 0)
			break;
	}
	res = buf_steal(&out, NULL);
	buf_free(&pending);
	arena_free(&a);
	imap_parser_free(&p);
	return res;
}

static const struct {
	const char *in;
	const char *out;
} parser_cases[] = {
	{ "a1 NOOP\r\n", "CMD a1 NOOP |" },
	{ "a1 noop\n", "CMD a1 NOOP |" },
	{ "\r\n\r\na1 NOOP\r\n", "CMD a1 NOOP |" },
	{ "a2 LOGIN user \"pa\\\"s s\"\r\n",
	  "CMD a2 LOGIN user \"pa\"s s\"|" },
	{ "a3 LOGIN {4}\r\nuser {3+}\r\npwd\r\n",
	  "CONT|CMD a3 LOGIN {4}user {3}pwd|" },
	{ "a4 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n",
	  "CMD a4 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)|" },
	{ "a5 LIST \"\" %\r\n", "CMD a5 LIST \"\" %|" },
	{ "a6 STORE 1 +FLAGS (\\Seen \\Deleted)\r\n",
	  "CMD a6 STORE 1 +FLAGS (\\Seen \\Deleted)|" },
	{ "a7 X () (a (b c)) d\r\n", "CMD a7 X () (a (b c)) d|" },
	{ "a8 SELECT INBOX \r\n", "CMD a8 SELECT INBOX|" },
	{ "a9 X ~{3+}\r\na\0b\r\n", "CMD a9 X ~{3}a\0b|" },
	/* empty literals, also as the last argument */
	{ "a0 SEARCH BODY {0+}\r\n\r\nb0 NOOP\r\n",
	  "CMD a0 SEARCH BODY {0}|CMD b0 NOOP |" },
	{ "a0 X {0}\r\n {0+}\r\n\r\n", "CONT|CMD a0 X {0} {0}|" },
	/* errors, then the connection goes on */
	{ "b1 FOO (\r\nb2 NOOP\r\n", "ERR b1 1|CMD b2 NOOP |" },
	{ "* NOOP\r\nb2 NOOP\r\n", "ERR * 1|CMD b2 NOOP |" },
	{ "b+ NOOP\r\n", "ERR * 1|" },
	{ "b3 X \"abc\r\nb4 NOOP\r\n", "ERR b3 1|CMD b4 NOOP |" },
	{ "b5 X a  b\r\n", "ERR b5 1|" },
	{ "b6 X (((((((((((((((((x)))))))))))))))))\r\n", "ERR b6 1|" },
	{ "b7 X ((((((((((((((((x))))))))))))))))\r\n",
	  "CMD b7 X ((((((((((((((((x))))))))))))))))|" },
	{ "b8 X {5}x\r\n", "ERR b8 1|" },
	{ "b9 X {99999999999999999999999}\r\nc NOOP\r\n",
	  "ERR b9 1|CMD c NOOP |" },
	{ "c1 X ( {5+}\r\nabcde\r\nc2 NOOP\r\n", "ERR c1 1|CMD c2 NOOP |" },
	{ "c3 LOGIN {1001+}\r\n", "ERR c3 2|" },
	{ "c4 LOGIN {1001}\r\nc5 NOOP\r\n", "ERR c4 2|CMD c5 NOOP |" },
	{ "c6 X a\"b\r\n", "ERR c6 1|" },
	{ "c7 X a)\r\n", "ERR c7 1|" },
	{ "c8 X BODY[\r\n", "ERR c8 1|" },
	/* '[' opens a section only after a fetch-att name */
	{ "e1 SELECT a[b}c]\r\n", "CMD e1 SELECT a[b}c]|" },
	{ "e2 X b[ (c)\r\n", "CMD e2 X b[ (c)|" },
	{ "e3 X binary.peek[1 2]\r\n", "CMD e3 X binary.peek[1 2]|" },
	{ "c9 X a\x01 b\r\n", "ERR c9 1|" },
	{ "d0 X {3+}\r\n", "" },
	{ "d0 X {99999999999999999999+}\r\nabc\r\n", "ERR d0 4|" },
	/* APPEND streams its message literal */
	{ "d1 APPEND INBOX (\\Seen) {5}\r\nhello\r\n",
	  "STREAM 5|[hello]CMD d1 APPEND INBOX (\\Seen) <STREAM 5>|" },
	{ "d2 APPEND {5}\r\nINBOX {2+}\r\nhi {1+}\r\nx\r\n",
	  "CONT|STREAM 2+|[hi]STREAM 1+|[x]"
	  "CMD d2 APPEND {5}INBOX <STREAM 2> <STREAM 1>|" },
	/* RFC 6855 APPEND UTF8 (~{n}): streamed, ')' consumed after it */
	{ "d3 APPEND INBOX UTF8 (~{2+}\r\nhi) (\\Seen) {1+}\r\nx\r\n",
	  "STREAM 2+|[hi]STREAM 1+|[x]"
	  "CMD d3 APPEND INBOX <STREAM 2> (\\Seen) <STREAM 1>|" },
	{ "d4 APPEND INBOX UTF8 (~{2+}\r\nhi\r\nd5 NOOP\r\n",
	  "STREAM 2+|[hi]ERR d4 1|CMD d5 NOOP |" },
	/* only literal8 is UTF8 data; APPEND itself then says BAD */
	{ "d6 APPEND INBOX UTF8 ({2+}\r\nhi)\r\n",
	  "CMD d6 APPEND INBOX UTF8 ({2}hi)|" },
};

static void
test_imap_parser_cases(void)
{
	size_t i, step, len;

	for (i = 0; i < sizeof(parser_cases) / sizeof(parser_cases[0]); i++) {
		const char *in = parser_cases[i].in;
		char *whole;

		len = strlen(in);
		if (i == 10)
			len = strlen("a9 X ~{3+}\r\na") + 1 + strlen("b\r\n");
		whole = run_parser(in, len, 0, 1000);
		test_assert_idx(strcmp(whole, parser_cases[i].out) == 0, i);
		if (strcmp(whole, parser_cases[i].out) != 0)
			test_assert_strcmp(whole, parser_cases[i].out);
		for (step = 1; step < 4; step++) {
			char *part = run_parser(in, len, step, 1000);

			test_assert_idx(strcmp(part, whole) == 0, i * 10 + step);
			free(part);
		}
		free(whole);
	}
}

/* Split feeding at every offset must not change the result. */
static void
test_imap_parser_split(void)
{
	const char *in = "s1 LOGIN {4}\r\nuser \"pw\"\r\n"
			 "s2 FETCH 1:3,5 (BODY[1.MIME] UID)\r\n"
			 "s3 APPEND Drafts {3+}\r\nabc (\\Draft) {2}\r\nde\r\n";
	size_t len = strlen(in), cut;
	char *whole = run_parser(in, len, 0, 1000);

	test_assert_strcmp(whole,
		"CONT|CMD s1 LOGIN {4}user \"pw\"|"
		"CMD s2 FETCH 1:3,5 (BODY[1.MIME] UID)|"
		"STREAM 3+|[abc]STREAM 2|[de]"
		"CMD s3 APPEND Drafts <STREAM 3> (\\Draft) <STREAM 2>|");
	for (cut = 1; cut < len; cut++) {
		char *part = run_parser(in, len, cut, 1000);

		test_assert_idx(strcmp(part, whole) == 0, cut);
		free(part);
	}
	free(whole);
}

static void
test_imap_parser_long_line(void)
{
	char in[600];
	char *r;

	memset(in, 'x', 400);
	memcpy(in + 400, "\r\nl1 NOOP\r\n", 12);
	r = run_parser(in, strlen(in), 0, 64);
	test_assert_strcmp(r, "ERR * 3|CMD l1 NOOP |");
	free(r);
	r = run_parser(in, strlen(in), 7, 64);
	test_assert_strcmp(r, "ERR * 3|CMD l1 NOOP |");
	free(r);
	/* the total command size is bounded too */
	{
		struct buf b;
		int i;

		buf_init(&b, 1 << 20);
		buf_append_str(&b, "t1 X");
		for (i = 0; i < 200; i++)
			buf_append_str(&b, " {900+}\r\n"), buf_append(&b, in, 900 > 400 ? 400 : 400), buf_append(&b, in, 500);
		buf_append_str(&b, "\r\nt2 NOOP\r\n");
		r = run_parser((const char *)b.data, b.len, 0, 64);
		test_assert(strncmp(r, "ERR t1 2|", 9) == 0);
		free(r);
		buf_free(&b);
	}
}

/* An APPEND refused at its literal: begin() skips what must be skipped. */
static void
test_imap_parser_stream_refused(void)
{
	static const char nonsync[] = "e1 APPEND INBOX {3+}\r\nabc\r\n"
				      "e2 NOOP\r\n";
	static const char sync[] = "e1 APPEND INBOX {3}\r\ne2 NOOP\r\n";
	struct imap_parser *p = imap_parser_new(100, 100, 1000);
	struct arena *a = arena_new("t", 1024);
	size_t used, used2;

	imap_parser_begin(p, a);
	test_assert(imap_parser_feed(p, (const uint8_t *)nonsync,
				     sizeof(nonsync) - 1, &used) ==
		    IMAP_PARSE_STREAM);
	imap_parser_begin(p, a);
	test_assert(imap_parser_feed(p, (const uint8_t *)nonsync + used,
				     sizeof(nonsync) - 1 - used, &used2) ==
		    IMAP_PARSE_CMD);
	test_assert_strcmp(imap_parser_tag(p), "e2");
	imap_parser_begin(p, a);
	test_assert(imap_parser_feed(p, (const uint8_t *)sync,
				     sizeof(sync) - 1, &used) ==
		    IMAP_PARSE_STREAM);
	test_assert(!imap_parser_literal_sync(p) == false);
	imap_parser_begin(p, a);
	test_assert(imap_parser_feed(p, (const uint8_t *)sync + used,
				     sizeof(sync) - 1 - used, &used2) ==
		    IMAP_PARSE_CMD);
	test_assert_strcmp(imap_parser_tag(p), "e2");
	arena_free(&a);
	imap_parser_free(&p);
}

static void
test_imap_seqset(void)
{
	struct arena *a = arena_new("t", 1024);
	struct imap_seqset set;
	struct buf b;
	static const uint32_t nums[] = { 1, 2, 3, 5, 7, 8, 10 };

	/* 2^32-1 is a number (RFC 9051 nz-number), not '*' */
	test_assert(imap_seqset_parse(a, "1:4294967296", 12, &set) < 0);
	test_assert(imap_seqset_parse(a, "1:4294967295", 12, &set) == 0);
	test_assert(!set.has_star);
	imap_seqset_resolve(&set, 10);
	test_assert(set.count == 1 && imap_seqset_contains(&set, 4294967295u));
	/* above the last UID: n:4294967295 stays empty, n:* does not */
	test_assert(imap_seqset_parse(a, "20:4294967295", 13, &set) == 0);
	imap_seqset_resolve(&set, 10);
	test_assert(set.r[0].lo == 20 && !imap_seqset_contains(&set, 10));
	test_assert(imap_seqset_parse(a, "20:*", 4, &set) == 0);
	imap_seqset_resolve(&set, 10);
	test_assert(set.r[0].lo == 10 && set.r[0].hi == 20);
	test_assert(imap_seqset_parse(a, "5:*,1,3:2,0", 11, &set) < 0);
	test_assert(imap_seqset_parse(a, "5:*,1,3:2", 9, &set) == 0);
	test_assert(set.has_star);
	imap_seqset_resolve(&set, 3);
	/* 5:* with * = 3 is 3:5 */
	test_assert(set.count == 1 && set.r[0].lo == 1 && set.r[0].hi == 5);
	test_assert(imap_seqset_parse(a, "1,,2", 4, &set) < 0);
	test_assert(imap_seqset_parse(a, "1:", 2, &set) < 0);
	test_assert(imap_seqset_parse(a, "a", 1, &set) < 0);
	test_assert(imap_seqset_parse(a, "-1", 2, &set) < 0);
	test_assert(imap_seqset_parse(a, "", 0, &set) < 0);
	test_assert(imap_seqset_parse(a, "9,4:6,20", 8, &set) == 0);
	imap_seqset_resolve(&set, 100);
	test_assert(set.count == 3);
	test_assert(!imap_seqset_contains(&set, 3));
	test_assert(imap_seqset_contains(&set, 5));
	test_assert(imap_seqset_contains(&set, 9));
	test_assert(!imap_seqset_contains(&set, 10));
	test_assert(imap_seqset_max(&set) == 20);
	buf_init(&b, 100);
	test_assert(imap_seqset_write(&b, nums, 7) == 0);
	test_assert_strcmp(buf_cstr(&b), "1:3,5,7:8,10");
	buf_free(&b);
	arena_free(&a);
}

static void
test_imap_mutf7(void)
{
	static const struct {
		const char *utf8, *mutf7;
	} ok[] = {
		{ "INBOX", "INBOX" },
		{ "a&b", "a&-b" },
		{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
		{ "\xe5\x8f\xb0\xe5\x8c\x97", "&U,BTFw-" },
		{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
		{ "\xf0\x9f\x98\x80", "&2D3eAA-" },
		{ "", "" },
	};
	static const char *const bad[] = {
		"&", "&-&-x&", "&U,BTFw", "&AGE-", "&U,BTFw-&ZeVnLIqe-",
		"&2D0-", "&3gA-", "a\x01", "\xc3\xbc", "&U,B-", "&!-",
	};
	struct buf b;
	size_t i;

	buf_init(&b, 1024);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		buf_reset(&b);
		test_assert_idx(imap_mutf7_encode(&b, ok[i].utf8,
						  strlen(ok[i].utf8)) == 0, i);
		test_assert_strcmp(buf_cstr(&b), ok[i].mutf7);
		buf_reset(&b);
		test_assert_idx(imap_mutf7_decode(&b, ok[i].mutf7,
						  strlen(ok[i].mutf7)) == 0, i);
		test_assert_strcmp(buf_cstr(&b), ok[i].utf8);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		test_assert_idx(imap_mutf7_decode(&b, bad[i], strlen(bad[i])) <
					0, i);
	}
	buf_reset(&b);
	test_assert(imap_mutf7_encode(&b, "\xff", 1) < 0);
	test_assert(imap_mutf7_encode(&b, "\xed\xa0\x80", 3) < 0);
	test_assert(!imap_utf8_valid("\xc0\x80", 2));
	test_assert(imap_utf8_valid("\xc3\xbc", 2));
	buf_free(&b);
}

static void
test_imap_dates(void)
{
	int64_t t;
	char out[64];

	test_assert(imap_date_time_parse("17-Jul-1996 02:44:25 -0700", &t) == 0);
	test_assert(t == 837596665);
	test_assert(imap_date_time_parse(" 7-Jul-1996 02:44:25 +0000", &t) == 0);
	test_assert(imap_date_time_parse("7-Jul-1996 02:44:25 +0000", &t) == 0);
	test_assert(imap_date_time_parse("17-Jxl-1996 02:44:25 -0700", &t) < 0);
	test_assert(imap_date_time_parse("17-Jul-1996 02:44:25", &t) < 0);
	test_assert(imap_date_time_parse("17-Jul-1996 24:44:25 +0000", &t) < 0);
	test_assert(imap_date_parse("1-Feb-1994", &t) == 0 && t == 760060800);
	test_assert(imap_date_parse("01-feb-1994", &t) == 0 && t == 760060800);
	test_assert(imap_date_parse("1-Feb-94", &t) < 0);
	test_assert(imap_date_parse("", &t) < 0);
	imap_date_time_format(837596665, out, sizeof(out));
	test_assert_strcmp(out, "17-Jul-1996 09:44:25 +0000");
}

static const struct test_case tests[] = {
	{ "imap_parser_cases", test_imap_parser_cases },
	{ "imap_parser_split", test_imap_parser_split },
	{ "imap_parser_long_line", test_imap_parser_long_line },
	{ "imap_parser_stream_refused", test_imap_parser_stream_refused },
	{ "imap_seqset", test_imap_seqset },
	{ "imap_mutf7", test_imap_mutf7 },
	{ "imap_dates", test_imap_dates },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
