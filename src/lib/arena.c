/* Arena allocator: a chain of blocks, bump allocation, whole-arena reset. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/xalloc.h"

#define ARENA_ALIGN 16

struct arena_block {
	struct arena_block *next;
	size_t size, used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena {
	const char *name;
	size_t hint, used, peak;
	struct arena_block *head;
};

static struct arena_block *
arena_block_new(size_t size)
{
	struct arena_block *b = xmalloc(sizeof(*b) + size);
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

struct arena *
arena_new(const char *name, size_t size_hint)
{
	struct arena *a = xcalloc(1, sizeof(*a));
	a->name = name;
	a->hint = size_hint < 256 ? 256 : size_hint;
	a->head = arena_block_new(a->hint);
	return a;
}

void
arena_free(struct arena **ap)
{
	struct arena *a = *ap;
	struct arena_block *b, *next;

	if (a == NULL)
		return;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
	*ap = NULL;
}

void
arena_reset(struct arena *a)
{
	struct arena_block *b, *next, *last = NULL;

	/* Keep only the oldest block, which is the size of the hint. */
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		if (next == NULL)
			last = b;
		else
			free(b);
	}
	a->head = last;
	a->head->used = 0;
	a->used = 0;
}

void *
arena_alloc(struct arena *a, size_t size)
{
	struct arena_block *b = a->head;
	size_t need;

	if (size_add(size, ARENA_ALIGN - 1, &need) < 0)
		abort();
	need &= ~(size_t)(ARENA_ALIGN - 1);
	if (need > b->size - b->used) {
		size_t bsize = need > a->hint ? need : a->hint;
		b = arena_block_new(bsize);
		b->next = a->head;
		a->head = b;
	}
	b->used += need;
	a->used += need;
	if (a->used > a->peak)
		a->peak = a->used;
	return b->data + b->used - need;
}

void *
arena_zalloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);
	memset(p, 0, size);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return arena_strdup(a, "");
	p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

size_t
arena_used(const struct arena *a)
{
	return a->used;
}

size_t
arena_peak(const struct arena *a)
{
	return a->peak;
}
