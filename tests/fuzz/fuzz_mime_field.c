/* libFuzzer target for single header values: RFC 5322 address lists
   (and their IMAP envelope form), dates, RFC 2047 encoded words,
   quoted-printable and base64 body decoding, IMAP string quoting. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_addresses(const char *s, size_t len)
{
	struct mime_address_list list;
	struct buf out;
	size_t i;

	if (mime_address_parse(s, len, &list) != 0)
		abort();
	if (list.count > MIME_ADDRESSES_MAX)
		abort();
	for (i = 0; i < list.count; i++)
		if (list.addrs[i].kind == MIME_ADDRESS_GROUP_END &&
		    list.addrs[i].mailbox != NULL)
			abort();
	buf_init(&out, 1 << 20);
	(void)mime_address_list_write_imap(&out, &list);
	buf_free(&out);
	mime_address_list_free(&list);
	mime_address_list_free(&list);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf out;
	int64_t t;

	fuzz_addresses(s, size);
	(void)mime_date_parse(s, size, &t);
	(void)mime_date_parse_day(s, size, &t);
	buf_init(&out, 1 << 20);
	(void)mime_decode_words(&out, s, size);
	buf_reset(&out);
	(void)mime_decode_qp(&out, data, size);
	buf_reset(&out);
	(void)mime_decode_body(&out, "base64", data, size);
	buf_reset(&out);
	(void)mime_imap_string(&out, s, size);
	buf_free(&out);
	return 0;
}
