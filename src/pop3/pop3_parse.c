/* POP3 command lines (RFC 1939 3: a keyword of 3-4 characters, then
   arguments separated by single spaces; RFC 2449 4: at most 255 octets).
   Pure: no sockets, no logging. */
#include <ctype.h>
#include <string.h>

#include "pop3/pop3_int.h"

enum pop3_parse_res
pop3_parse_line(struct strview line, struct pop3_cmdline *cmd_r,
		const char **error_r)
{
	size_t i = 0, klen;

	memset(cmd_r, 0, sizeof(*cmd_r));
	for (size_t k = 0; k < line.len; k++) {
		unsigned char c = (unsigned char)line.p[k];
		if (c < 0x20 && c != '\t') {
			*error_r = "Control characters are not allowed";
			return POP3_PARSE_ERR;
		}
	}
	while (i < line.len && line.p[i] != ' ')
		i++;
	klen = i;
	if (klen < 3 || klen > 4) {
		*error_r = line.len == 0 ? "Empty command" : "Unknown command";
		return POP3_PARSE_ERR;
	}
	for (size_t k = 0; k < klen; k++) {
		if (!isalpha((unsigned char)line.p[k])) {
			*error_r = "Unknown command";
			return POP3_PARSE_ERR;
		}
		cmd_r->name[k] = (char)toupper((unsigned char)line.p[k]);
	}
	if (i < line.len)
		i++;
	cmd_r->rest = sv_make(line.p + i, line.len - i);
	while (i < line.len) {
		size_t start;
		while (i < line.len && line.p[i] == ' ')
			i++;
		if (i >= line.len)
			break;
		start = i;
		while (i < line.len && line.p[i] != ' ')
			i++;
		if (cmd_r->argc == POP3_ARGS_MAX) {
			cmd_r->extra = true;
			break;
		}
		cmd_r->args[cmd_r->argc++] = sv_make(line.p + start, i - start);
	}
	return POP3_PARSE_OK;
}

int
pop3_parse_msgnum(struct strview v, uint32_t max, uint32_t *num_r)
{
	uint32_t n;

	if (parse_u32(v, UINT32_MAX, &n) < 0 || n == 0 || n > max)
		return -1;
	*num_r = n;
	return 0;
}
