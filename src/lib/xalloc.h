#ifndef TERN_XALLOC_H
#define TERN_XALLOC_H
/* Allocation that never returns NULL: on failure the process logs and
   aborts, and the master restarts the worker. Input never reaches these
   without a limit check first (STYLE.md section 3). */
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* realloc of nmemb * size with the multiplication checked. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Free *pp and set it to NULL. */
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

/* Checked size arithmetic: return 0 and store the result, or -1 on
   overflow. */
int size_add(size_t a, size_t b, size_t *r);
int size_mul(size_t a, size_t b, size_t *r);

#endif
