/* libFuzzer target: the DATA state machine (smtp_data.c) and its header
   scan for Received: fields. The first byte chooses a split size; the
   rest is fed in pieces of that size and must give the same result
   (output, hop count, end of header) as feeding it whole. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
fuzz_smtp_data_run(const uint8_t *in, size_t len, size_t step, uint8_t *out,
		   struct smtp_data *d, size_t *consumed_r)
{
	size_t pos = 0, o = 0, n, olen, used;
	enum smtp_data_res r = SMTP_DATA_MORE;

	smtp_data_init(d, 1000);
	while (pos < len && r == SMTP_DATA_MORE) {
		n = len - pos < step ? len - pos : step;
		r = smtp_data_feed(d, in + pos, n, out + o, &olen, &used);
		if (used > n || olen > n + 2)
			__builtin_trap();
		smtp_data_scan_header(d, out + o, olen);
		o += olen;
		pos += used;
	}
	*consumed_r = pos;
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data d1, d2;
	uint8_t *o1, *o2;
	size_t n1, n2, c1, c2, step;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 16 + 1;
	data++;
	size--;
	o1 = malloc(2 * size + 4);
	o2 = malloc(2 * size + 4);
	n1 = fuzz_smtp_data_run(data, size, size + 1, o1, &d1, &c1);
	n2 = fuzz_smtp_data_run(data, size, step, o2, &d2, &c2);
	if (n1 != n2 || c1 != c2 || memcmp(o1, o2, n1) != 0 ||
	    d1.bare != d2.bare || d1.state != d2.state || n1 > 1000 ||
	    d1.received != d2.received || d1.in_body != d2.in_body)
		__builtin_trap();
	free(o1);
	free(o2);
	return 0;
}
