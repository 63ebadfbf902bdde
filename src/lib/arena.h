#ifndef TERN_ARENA_H
#define TERN_ARENA_H
/* Region allocator tied to a protocol lifetime (connection, command,
   transaction). It only allocates; arena_reset() or arena_free() release
   everything at once. Each arena has a name and records its peak use. */
#include <stdarg.h>
#include <stddef.h>

struct arena;

struct arena *arena_new(const char *name, size_t size_hint);
/* Frees everything and sets *ap to NULL. */
void arena_free(struct arena **ap);
/* Release all allocations; keep the first block for reuse. */
void arena_reset(struct arena *a);
/* Aligned for any type; never NULL (aborts on exhaustion). */
void *arena_alloc(struct arena *a, size_t size);
void *arena_zalloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
size_t arena_used(const struct arena *a);
size_t arena_peak(const struct arena *a);

#endif
