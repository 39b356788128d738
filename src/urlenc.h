/* urlenc.h — RFC 3986 percent-encoding for the login query string.
 * Unreserved characters (ALPHA DIGIT - . _ ~) stay; every other byte becomes %XX. */
#ifndef SMSEND_URLENC_H
#define SMSEND_URLENC_H

#include <stddef.h>
#include "buf.h"

int urlenc_append(struct buf *b, const char *p, size_t n);

#endif
