/* libFuzzer target for the RFC 5256 2.1 base subject (mime_sort.c):
   any bytes as a Subject value. The result never starts or ends with a
   space and never grows beyond the output maximum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out;
	bool reply;

	buf_init(&out, size < 64 ? 64 : MIME_SORT_SUBJECT_MAX_BYTES);
	if (mime_subject_base((const char *)data, size, &out, &reply) < 0)
		abort();
	if (out.len > out.max)
		abort();
	if (out.len > 0 &&
	    (out.data[0] == ' ' || out.data[out.len - 1] == ' '))
		abort();
	buf_free(&out);
	return 0;
}
