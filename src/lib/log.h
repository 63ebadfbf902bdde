#ifndef TERN_LOG_H
#define TERN_LOG_H
/* One line per event: "<level> <proto> <session> <event> key=value ...".
   Lines go to stderr (the master forwards nothing; every process writes
   its own lines with its pid). */
#include <stddef.h>

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
	LOG_FATAL,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "debug", "info", ... 0 or -1. */
int log_level_parse(const char *s, enum log_level *level_r);
/* Name of this process in each line ("master", "worker1", ...). */
void log_set_process(const char *name);

void log_msg(enum log_level level, const char *proto, const char *session,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define log_debug(proto, sess, ...) log_msg(LOG_DEBUG, proto, sess, __VA_ARGS__)
#define log_info(proto, sess, ...) log_msg(LOG_INFO, proto, sess, __VA_ARGS__)
#define log_warn(proto, sess, ...) log_msg(LOG_WARN, proto, sess, __VA_ARGS__)
#define log_error(proto, sess, ...) log_msg(LOG_ERROR, proto, sess, __VA_ARGS__)
/* Log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A broken invariant: log and abort(). */
void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Copy client bytes into out (size outlen, NUL-terminated) for logging:
   non-printable bytes become \xNN, the result is truncated with "...".
   Returns out. */
char *log_sanitize(char *out, size_t outlen, const void *in, size_t inlen);

#endif
