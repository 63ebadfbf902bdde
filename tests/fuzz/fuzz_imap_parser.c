/* libFuzzer target for the IMAP command parser, with the stream
   handling of APPEND, plus modified UTF-7 and sequence sets on every
   parsed atom. Input is fed in chunks whose sizes come from the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/arena.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_args(struct arena *a, const struct imap_arg *args, size_t n,
	  unsigned depth)
{
	struct imap_seqset set;
	struct buf b;
	size_t i;

	for (i = 0; i < n; i++) {
		if (args[i].type == IMAP_ARG_LIST) {
			if (depth > IMAP_LIST_DEPTH_MAX)
				abort();
			fuzz_args(a, args[i].list, args[i].count, depth + 1);
			continue;
		}
		if (args[i].type == IMAP_ARG_STREAM)
			continue;
		buf_init(&b, 1 << 16);
		(void)imap_mutf7_decode(&b, args[i].str, args[i].len);
		if (imap_utf8_valid((const char *)b.data, b.len)) {
			struct buf e;

			buf_init(&e, 1 << 18);
			(void)imap_mutf7_encode(&e, (const char *)b.data,
						b.len);
			buf_free(&e);
		}
		buf_free(&b);
		if (imap_seqset_parse(a, args[i].str, args[i].len, &set) == 0) {
			imap_seqset_resolve(&set, 100);
			(void)imap_seqset_contains(&set, 50);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *p = imap_parser_new(256, 512, 4096);
	struct arena *a = arena_new("fuzz", 1024);
	size_t pos = 0, chunk = size > 0 ? (data[0] % 17) + 1 : 1;
	uint64_t stream = 0;
	struct buf in;

	buf_init(&in, size + 1);
	imap_parser_begin(p, a);
	while (pos < size || in.len > 0) {
		size_t n = size - pos < chunk ? size - pos : chunk, used;
		enum imap_parse_res r;
		const struct imap_arg *args;
		size_t argc;

		(void)buf_append(&in, data + pos, n);
		pos += n;
		if (stream > 0) {
			size_t k = in.len < stream ? in.len : (size_t)stream;

			buf_consume(&in, k);
			stream -= k;
			if (stream == 0)
				imap_parser_stream_done(p);
			if (stream > 0 || in.len == 0)
				continue;
		}
		r = imap_parser_feed(p, in.data, in.len, &used);
		if (used > in.len)
			abort();
		buf_consume(&in, used);
		if (r == IMAP_PARSE_STREAM) {
			stream = imap_parser_literal_size(p);
			if (stream == 0)
				imap_parser_stream_done(p);
			if ((data[pos % size] & 1) != 0 && stream > 0) {
				imap_parser_stream_abort(p, true);
				stream = 0;
			}
		} else if (r == IMAP_PARSE_CMD || r == IMAP_PARSE_ERROR) {
			enum imap_parse_err code;

			(void)imap_parser_error(p, &code);
			args = imap_parser_args(p, &argc);
			if (r == IMAP_PARSE_CMD)
				fuzz_args(a, args, argc, 0);
			arena_reset(a);
			imap_parser_begin(p, a);
			if (code == IMAP_PERR_FATAL)
				break;
		} else if (r == IMAP_PARSE_MORE && used == 0 && pos >= size) {
			break;
		}
	}
	buf_free(&in);
	arena_free(&a);
	imap_parser_free(&p);
	return 0;
}
