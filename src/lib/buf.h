#ifndef TERN_BUF_H
#define TERN_BUF_H
/* Growable byte buffer with a mandatory maximum (curl's dynbuf). Appending
   past max fails and leaves the buffer unchanged; nothing is truncated
   silently. The data is always followed by a NUL byte (not counted in len)
   so a buffer of text can be handed to libc. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len, cap, max;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Forget the contents, keep the memory. */
void buf_reset(struct buf *b);
/* 0, or -1 when the result would exceed max. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_append_byte(struct buf *b, uint8_t c);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Make room for n more bytes and return a pointer to them; commit them
   with buf_commit(). NULL when that would exceed max. */
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);
/* The contents as a NUL-terminated string (never NULL). */
const char *buf_cstr(const struct buf *b);
/* Hand the memory to the caller (xmalloc'd, NUL-terminated) and reset. */
char *buf_steal(struct buf *b, size_t *len_r);

#endif
