/* urlenc.c — percent-encoding (RFC 3986 section 2.3 unreserved set).
 * Bytes are encoded as they are: UTF-8 input gives the UTF-8 encoding the gateway expects. */
#include "urlenc.h"

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int urlenc_append(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    size_t i;
    char *o;
    if (n > ((size_t)-1) / 3 || buf_reserve(b, n * 3) != 0)
        return -1;
    o = b->data + b->len;
    for (i = 0; i < n; i++) {
        if (unreserved(p[i])) {
            *o++ = (char)p[i];
        } else {
            *o++ = '%';
            *o++ = hex[p[i] >> 4];
            *o++ = hex[p[i] & 15];
        }
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = 0;
    return 0;
}
