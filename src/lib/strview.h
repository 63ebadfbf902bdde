#ifndef TERN_STRVIEW_H
#define TERN_STRVIEW_H
/* A view into bytes that are owned elsewhere; never NUL-terminated. Parsers
   take views and advance them (curl's strparse). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strview {
	const char *p;
	size_t len;
};

#define SV_LIT(s) ((struct strview){ (s), sizeof(s) - 1 })

struct strview sv_make(const void *p, size_t len);
struct strview sv_from_cstr(const char *s);
bool sv_eq(struct strview a, struct strview b);
/* ASCII case-insensitive comparison with a C string. */
bool sv_eq_ci_cstr(struct strview a, const char *s);
bool sv_starts_with_ci(struct strview a, const char *prefix);
/* Advance by n (n <= len). */
void sv_skip(struct strview *v, size_t n);
/* Split off and return the bytes before the first c; *v is advanced past
   c. When c is absent, return all of *v and leave it empty. */
struct strview sv_split(struct strview *v, char c);
/* Index of c, or -1. */
long sv_index(struct strview v, char c);
struct strview sv_trim(struct strview v);
/* xmalloc'd NUL-terminated copy. */
char *sv_dup(struct strview v);
/* Strict unsigned parsers: digits only, no sign, no spaces, at least one
   digit, value <= max. 0 on success, -1 otherwise. */
int parse_u32(struct strview v, uint32_t max, uint32_t *out_r);
int parse_u64(struct strview v, uint64_t max, uint64_t *out_r);
/* The same for a NUL-terminated string. */
int parse_u64_cstr(const char *s, uint64_t max, uint64_t *out_r);

#endif
