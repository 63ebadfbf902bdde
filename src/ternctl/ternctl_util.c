/* ternctl helpers: error messages, address and domain checks (RFC 5321
   4.1.2 Domain syntax, 4.5.3.1 size limits; RFC 1035 2.3.4 label
   lengths), reading secrets from stdin or a terminal without echo
   (termios), and human-readable sizes and times.
   Security: passwords are never taken from argv (visible in ps); they are
   wiped from memory after use, and the terminal's echo is restored even
   when the operator interrupts the prompt. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "store/store.h"
#include "ternctl/ternctl.h"

/* RFC 5321 4.5.3.1.1-3 */
#define TERNCTL_LOCAL_MAX_BYTES 64
#define TERNCTL_DOMAIN_MAX_BYTES 253
#define TERNCTL_LABEL_MAX_BYTES 63
#define TERNCTL_ADDRESS_MAX_BYTES 254

int
ternctl_util_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("ternctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return TERNCTL_EXIT_FAIL;
}

int
ternctl_util_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("ternctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return TERNCTL_EXIT_USAGE;
}

int
ternctl_util_store_fail(struct ternctl *t, int ret, const char *what)
{
	switch (ret) {
	case STORE_BUSY:
		return ternctl_util_fail("%s: the database is busy; try "
					 "again in a moment", what);
	case STORE_NOSPACE:
		return ternctl_util_fail("%s: the disk is full (data "
					 "directory %s)", what, t->datadir);
	case STORE_INVALID:
		return ternctl_util_fail("%s: invalid argument", what);
	default:
		return ternctl_util_fail("%s: store error: %s", what,
					 store_last_error(t->store));
	}
}

static int
ternctl_util_label_check(const char *p, size_t len, const char **why_r)
{
	if (len == 0) {
		*why_r = "empty label (two dots in a row, or a leading dot)";
		return -1;
	}
	if (len > TERNCTL_LABEL_MAX_BYTES) {
		*why_r = "a label is longer than 63 characters";
		return -1;
	}
	if (p[0] == '-' || p[len - 1] == '-') {
		*why_r = "a label starts or ends with '-'";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x80) {
			*why_r = "non-ASCII characters: use the punycode form "
				 "(xn--...)";
			return -1;
		}
		if (!(c == '-' || (c >= '0' && c <= '9') ||
		      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
			*why_r = "only letters, digits, '-' and '.' are "
				 "allowed";
			return -1;
		}
	}
	return 0;
}

int
ternctl_util_domain_check(const char *domain, const char **why_r)
{
	size_t len = strlen(domain);
	const char *p = domain;

	if (len > 0 && domain[len - 1] == '.')
		len--; /* a trailing dot is accepted and dropped */
	if (len == 0) {
		*why_r = "empty domain";
		return -1;
	}
	if (len > TERNCTL_DOMAIN_MAX_BYTES) {
		*why_r = "longer than 253 characters";
		return -1;
	}
	while (p < domain + len) {
		const char *dot = memchr(p, '.', (size_t)(domain + len - p));
		size_t label = dot != NULL ? (size_t)(dot - p) :
			(size_t)(domain + len - p);

		if (ternctl_util_label_check(p, label, why_r) < 0)
			return -1;
		p += label + (dot != NULL ? 1 : 0);
		if (dot != NULL && p == domain + len) {
			*why_r = "empty label";
			return -1;
		}
	}
	return 0;
}

/* Printable ASCII except space, '@' and the RFC 5322 specials that never
   appear in a real mailbox name. XXX: quoted local parts are rejected. */
static int
ternctl_util_local_check(const char *p, size_t len, const char **why_r)
{
	if (len > TERNCTL_LOCAL_MAX_BYTES) {
		*why_r = "the local part is longer than 64 characters";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= ' ' || c >= 0x7f || strchr("\"(),:;<>@[\\]", c)) {
			*why_r = "the local part contains a space, control, "
				 "non-ASCII or special character";
			return -1;
		}
	}
	if (p[0] == '.' || p[len - 1] == '.' || memmem(p, len, "..", 2)) {
		*why_r = "the local part has a leading, trailing or double "
			 "dot";
		return -1;
	}
	return 0;
}

char *
ternctl_util_address(const char *arg, bool catchall_ok)
{
	const char *why = NULL;
	char *addr = NULL;
	const char *at;

	if (catchall_ok && arg[0] == '@') {
		if (ternctl_util_domain_check(arg + 1, &why) == 0) {
			addr = xstrdup(arg);
			for (char *p = addr; *p != '\0'; p++)
				*p = (char)(*p >= 'A' && *p <= 'Z' ?
					    *p + 32 : *p);
			if (addr[strlen(addr) - 1] == '.')
				addr[strlen(addr) - 1] = '\0';
			return addr;
		}
	} else if (strlen(arg) > TERNCTL_ADDRESS_MAX_BYTES + 1) {
		why = "longer than 254 characters";
	} else if ((addr = store_address_normalize(arg)) == NULL) {
		why = "expected user@domain";
	} else {
		at = strrchr(addr, '@');
		if (ternctl_util_local_check(addr, (size_t)(at - addr),
					     &why) == 0 &&
		    ternctl_util_domain_check(at + 1, &why) == 0)
			return addr;
	}
	free(addr);
	ternctl_util_usage("invalid address '%s': %s", arg,
			   why != NULL ? why : "expected user@domain");
	return NULL;
}

const char *
ternctl_util_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL ? at + 1 : address;
}

int
ternctl_util_need_domain(struct ternctl *t, const char *domain)
{
	int ret = store_domain_exists(t->store, domain);

	if (ret < 0)
		return ternctl_util_store_fail(t, ret, "domain lookup");
	if (ret == 0)
		return ternctl_util_fail("unknown domain %s: add it with "
					 "'ternctl domain add %s'",
					 domain, domain);
	return TERNCTL_EXIT_OK;
}

/* ---- reading secrets ---- */

static struct termios ternctl_util_saved_tio;
static volatile sig_atomic_t ternctl_util_tio_saved;

static void
ternctl_util_tio_restore(int sig)
{
	if (ternctl_util_tio_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &ternctl_util_saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

char *
ternctl_util_read_line(const char *what)
{
	struct buf b;
	int c;

	buf_init(&b, TERNCTL_STDIN_LINE_MAX_BYTES);
	while ((c = getchar()) != EOF && c != '\n') {
		if (c == '\0' || buf_append_byte(&b, (uint8_t)c) < 0) {
			if (b.data != NULL)
				explicit_bzero(b.data, b.cap);
			buf_free(&b);
			ternctl_util_fail("%s on stdin: %s", what,
					  c == '\0' ? "contains a NUL byte" :
					  "line too long");
			return NULL;
		}
	}
	if (c == EOF && b.len == 0) {
		buf_free(&b);
		ternctl_util_fail("no %s on stdin", what);
		return NULL;
	}
	if (b.len > 0 && b.data[b.len - 1] == '\r')
		b.data[--b.len] = '\0';
	return buf_steal(&b, NULL);
}

/* Prompt on the terminal (stderr) and read a line with echo off. */
static char *
ternctl_util_prompt(const char *prompt)
{
	struct termios tio;
	char *line;

	if (tcgetattr(STDIN_FILENO, &ternctl_util_saved_tio) < 0) {
		ternctl_util_fail("cannot read the terminal: %s",
				  strerror(errno));
		return NULL;
	}
	ternctl_util_tio_saved = 1;
	signal(SIGINT, ternctl_util_tio_restore);
	signal(SIGTERM, ternctl_util_tio_restore);
	tio = ternctl_util_saved_tio;
	tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	tio.c_lflag |= ICANON;
	fputs(prompt, stderr);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio);
	line = ternctl_util_read_line("password");
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &ternctl_util_saved_tio);
	ternctl_util_tio_saved = 0;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	fputc('\n', stderr);
	return line;
}

static char *
ternctl_util_prompt_twice(void)
{
	char *pw, *again;

	pw = ternctl_util_prompt("New password: ");
	if (pw == NULL)
		return NULL;
	again = ternctl_util_prompt("Repeat password: ");
	if (again == NULL) {
		ternctl_util_secret_free(&pw);
		return NULL;
	}
	if (strcmp(pw, again) != 0) {
		ternctl_util_secret_free(&pw);
		ternctl_util_fail("the passwords do not match; nothing was "
				  "changed");
	}
	ternctl_util_secret_free(&again);
	return pw;
}

char *
ternctl_util_read_password(bool from_stdin)
{
	char *pw;

	if (from_stdin || !isatty(STDIN_FILENO))
		pw = ternctl_util_read_line("password");
	else
		pw = ternctl_util_prompt_twice();
	if (pw == NULL)
		return NULL;
	if (pw[0] == '\0') {
		ternctl_util_secret_free(&pw);
		ternctl_util_fail("empty password; nothing was changed");
		return NULL;
	}
	return pw;
}

void
ternctl_util_secret_free(char **secret)
{
	if (*secret == NULL)
		return;
	explicit_bzero(*secret, strlen(*secret));
	xfree(secret);
}

/* ---- formatting ---- */

const char *
ternctl_util_bytes(uint64_t n, char *out, size_t size)
{
	static const char *const bin[] = { "B", "KiB", "MiB", "GiB", "TiB",
					   "PiB" };
	static const char *const dec[] = { "B", "kB", "MB", "GB", "TB",
					   "PB" };
	uint64_t b = 1, d = 1;
	size_t k = 0;

	while (k < 5 && n / 1024 >= b) {
		b *= 1024;
		k++;
	}
	if (n % b == 0) {
		snprintf(out, size, "%llu %s", (unsigned long long)(n / b),
			 bin[k]);
		return out;
	}
	for (size_t i = 0; i < k; i++)
		d *= 1000;
	if (k > 0 && n % d == 0 && n / d < 1000) {
		snprintf(out, size, "%llu %s", (unsigned long long)(n / d),
			 dec[k]);
		return out;
	}
	snprintf(out, size, "%.1f %s", (double)n / (double)b, bin[k]);
	return out;
}

const char *
ternctl_util_limit_bytes(uint64_t n, char *out, size_t size)
{
	if (n == 0) {
		snprintf(out, size, "unlimited");
		return out;
	}
	return ternctl_util_bytes(n, out, size);
}

const char *
ternctl_util_limit_count(uint64_t n, char *out, size_t size)
{
	if (n == 0)
		snprintf(out, size, "unlimited");
	else
		snprintf(out, size, "%llu", (unsigned long long)n);
	return out;
}

const char *
ternctl_util_time(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, size, "@%lld", (long long)t);
	return out;
}

const char *
ternctl_util_duration(int64_t secs, char *out, size_t size)
{
	long long s = secs < 0 ? 0 : (long long)secs;

	if (s >= 86400)
		snprintf(out, size, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, size, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, size, "%lldm %llds", s / 60, s % 60);
	else
		snprintf(out, size, "%llds", s);
	return out;
}
