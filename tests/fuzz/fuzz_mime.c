/* libFuzzer target for the message parser: mime_info_parse (headers,
   envelope, body structure), section lookup for a path taken from the
   input's first bytes, body decoding of that section, header lookup and
   filtering, text and part-header extraction for SEARCH, and the SORT
   keys. The input is one whole stored message; every byte is hostile. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_section(const uint8_t *data, size_t size)
{
	uint32_t path[4];
	struct mime_section sec;
	size_t depth, i;
	struct buf out;

	depth = size > 0 ? data[0] % 5 : 0;
	for (i = 0; i < depth; i++)
		path[i] = i + 1 < size ? data[i + 1] % 5 : 1;
	if (mime_section_find(data, size, path, depth, &sec) != 1)
		return;
	if (sec.mime_off > size || sec.mime_len > size - sec.mime_off ||
	    sec.header_off > size || sec.header_len > size - sec.header_off ||
	    sec.body_off > size || sec.body_len > size - sec.body_off ||
	    sec.text_off > size || sec.text_len > size - sec.text_off)
		abort();
	buf_init(&out, 1 << 20);
	(void)mime_decode_body(&out, sec.content_transfer_encoding,
			       data + sec.body_off, sec.body_len);
	buf_free(&out);
}

/* SEARCH HEADER's walk over every field of a name: each value within
   bounds; false keeps it going to the last. */
static bool
fuzz_field_value(void *ctx, const struct buf *value)
{
	size_t *n = ctx;

	if (value->len > MIME_SEARCH_FIELD_MAX_BYTES)
		abort();
	(*n)++;
	return false;
}

/* The decoded fields SEARCH SUBJECT/FROM/TO/CC/BCC compare and index. */
static void
fuzz_search_fields(const uint8_t *data, size_t size)
{
	static const char *const fields[] = { "subject", "from", "to", "cc",
					      "bcc" };
	size_t hlen = mime_search_header_len(data, size);
	struct buf out;

	if (hlen > size)
		abort();
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size_t n = 0;

		buf_init(&out, MIME_SEARCH_FIELD_MAX_BYTES);
		if (mime_search_field(data, hlen, fields[i], &out) == 1 &&
		    out.len > MIME_SEARCH_FIELD_MAX_BYTES)
			abort();
		buf_free(&out);
		if (mime_search_field_each(data, hlen, fields[i],
					   fuzz_field_value, &n) != 0)
			abort();
	}
}

static void
fuzz_headers(const uint8_t *data, size_t size, size_t header_len)
{
	static const char *const names[] = { "subject", "from", "to" };
	struct mime_sort_keys keys;
	struct buf out;

	buf_init(&out, 1 << 20);
	(void)mime_header_get(data, header_len, "Content-Type", &out);
	buf_reset(&out);
	(void)mime_header_filter(data, header_len, names, 3, false, &out);
	buf_reset(&out);
	(void)mime_header_filter(data, header_len, names, 3, true, &out);
	buf_reset(&out);
	(void)mime_extract_text(data, size, &out);
	buf_reset(&out);
	(void)mime_extract_headers(data, size, &out);
	buf_free(&out);
	fuzz_search_fields(data, size);
	mime_sort_keys_parse(data, header_len, &keys);
	if (keys.subject == NULL)
		abort();
	mime_sort_keys_free(&keys);
	mime_sort_keys_free(&keys);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_info info;

	if (mime_info_parse(data, size, &info) == 0) {
		if (info.envelope == NULL || info.bodystructure == NULL ||
		    info.body == NULL || info.header_len > size)
			abort();
		fuzz_headers(data, size, info.header_len);
		mime_info_free(&info);
		mime_info_free(&info);
	}
	fuzz_section(data, size);
	return 0;
}
