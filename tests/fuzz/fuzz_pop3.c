/* libFuzzer target: POP3 command lines and the message formatter. */
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"
#include "pop3/pop3_int.h"

static void
sink(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_cmdline cmd;
	const char *error;
	struct pop3_msg_fmt f;
	struct buf out;
	uint32_t n;

	if (pop3_parse_line(sv_make(data, size), &cmd, &error) == POP3_PARSE_OK &&
	    cmd.argc > 0)
		(void)pop3_parse_msgnum(cmd.args[0], 1000, &n);
	buf_init(&out, 4 * size + 64);
	pop3_msg_fmt_init(&f, data, size, size > 0 && (data[0] & 1), size % 7);
	while (!pop3_msg_fmt_run(&f, 1 + size % 13, sink, &out))
		;
	buf_free(&out);
	return 0;
}
