/* Logging to stderr, one line per event; see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

static enum log_level log_min = LOG_INFO;
static char log_proc[32] = "tern";

static const char *const log_names[] = { "debug", "info", "warn", "error",
					 "fatal" };

void
log_set_level(enum log_level level)
{
	log_min = level;
}

enum log_level
log_get_level(void)
{
	return log_min;
}

int
log_level_parse(const char *s, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_process(const char *name)
{
	snprintf(log_proc, sizeof(log_proc), "%s", name);
}

static void log_vmsg(enum log_level level, const char *proto,
		     const char *session, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static void
log_vmsg(enum log_level level, const char *proto, const char *session,
	 const char *fmt, va_list ap)
{
	char line[2048], stamp[32];
	struct timeval tv;
	struct tm tm;
	int n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld] %s %s %s ", stamp,
		     (long)tv.tv_usec / 1000, log_proc, (long)getpid(),
		     log_names[level], proto != NULL ? proto : "-",
		     session != NULL ? session : "-");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line so lines from several processes do not mix. */
	size_t len = strlen(line);
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t ignored = write(STDERR_FILENO, line, len);
	(void)ignored;
}

void
log_msg(enum log_level level, const char *proto, const char *session,
	const char *fmt, ...)
{
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	log_vmsg(level, proto, session, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_FATAL, NULL, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_FATAL, "panic", NULL, fmt, ap);
	va_end(ap);
	abort();
}

char *
log_sanitize(char *out, size_t outlen, const void *in, size_t inlen)
{
	const unsigned char *p = in;
	size_t o = 0;

	if (outlen == 0)
		return out;
	for (size_t i = 0; i < inlen; i++) {
		if (o + 8 >= outlen) {
			if (outlen >= 4)
				o = outlen - 4 < o ? outlen - 4 : o;
			memcpy(out + o, "...", outlen - o >= 4 ? 3 : 0);
			o += outlen - o >= 4 ? 3 : 0;
			break;
		}
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			out[o++] = (char)p[i];
		} else {
			snprintf(out + o, outlen - o, "\\x%02x", p[i]);
			o += 4;
		}
	}
	out[o] = '\0';
	return out;
}
