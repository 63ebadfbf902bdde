/* libFuzzer target: the SMTP command-line parsers (smtp_parse.c). The
   input is split at LF into lines; each line goes through the verb split
   and then, by verb, the MAIL/RCPT/BDAT/HELO/AUTH argument parsers. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp/smtp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_smtp_cmd_line(struct strview line)
{
	struct smtp_cmdline cmd;
	struct smtp_path path;
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	struct strview a, b;
	const char *error;
	uint64_t n;
	bool last;

	if (smtp_parse_cmdline(line, &cmd) != SMTP_PARSE_OK)
		return;
	if (sv_eq_ci_cstr(cmd.verb, "MAIL") &&
	    smtp_parse_mail(cmd.args, &path, &mp, &error) == SMTP_PARSE_OK) {
		if (strlen(path.addr) > SMTP_PATH_MAX)
			__builtin_trap();
	}
	if (sv_eq_ci_cstr(cmd.verb, "RCPT")) {
		(void)smtp_parse_rcpt(cmd.args, false, &path, &rp, &error);
		(void)smtp_parse_rcpt(cmd.args, true, &path, &rp, &error);
	}
	if (sv_eq_ci_cstr(cmd.verb, "BDAT"))
		(void)smtp_parse_bdat(cmd.args, &n, &last);
	if (sv_eq_ci_cstr(cmd.verb, "EHLO"))
		(void)smtp_parse_helo(cmd.args, &a);
	if (sv_eq_ci_cstr(cmd.verb, "AUTH"))
		(void)smtp_parse_auth(cmd.args, &a, &b, &last);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strview in = sv_make(data, size);

	while (in.len > 0)
		fuzz_smtp_cmd_line(sv_split(&in, '\n'));
	return 0;
}
