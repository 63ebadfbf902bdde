#ifndef TERN_BASE64_H
#define TERN_BASE64_H
/* Base64 (RFC 4648) for SASL exchanges, MIME bodies and DKIM. */
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* Append the encoding of in to out. 0, or -1 when out->max is exceeded. */
int base64_encode(struct buf *out, const void *in, size_t len);
/* Strict decoding (SASL): only the alphabet, padding required and only at
   the end, no whitespace. 0, or -1 on bad input or overflow of out. */
int base64_decode(struct buf *out, const void *in, size_t len);
/* Lenient decoding (MIME bodies, RFC 2045 6.8): characters outside the
   alphabet are skipped, decoding stops at the first '='. */
int base64_decode_mime(struct buf *out, const void *in, size_t len);

#endif
