/* fuzz_urlenc.c — urlenc_append on arbitrary bytes (usernames and passwords go into the
 * login query string): only unreserved characters and %XX come out, and decoding the
 * output gives the input back. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "buf.h"
#include "fuzz_util.h"
#include "urlenc.h"

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int hexdigit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lowercase hex is not what the encoder writes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char prefix[] = "?username=";
    const size_t plen = sizeof prefix - 1;
    struct buf b;
    size_t i, j, want_len = 0;

    buf_init(&b, 0);
    FUZZ_ASSERT(buf_append(&b, prefix, plen) == 0);
    FUZZ_ASSERT(urlenc_append(&b, (const char *)data, size) == 0);
    FUZZ_ASSERT(b.data != NULL && b.data[b.len] == 0);
    FUZZ_ASSERT(memcmp(b.data, prefix, plen) == 0); /* what was there stays */
    for (i = 0; i < size; i++)
        want_len += unreserved(data[i]) ? 1 : 3;
    FUZZ_ASSERT(b.len == plen + want_len);

    /* decode and compare, checking the alphabet on the way */
    for (i = plen, j = 0; i < b.len; j++) {
        unsigned char c = (unsigned char)b.data[i];
        FUZZ_ASSERT(j < size);
        if (c == '%') {
            int hi, lo;
            FUZZ_ASSERT(i + 2 < b.len);
            hi = hexdigit((unsigned char)b.data[i + 1]);
            lo = hexdigit((unsigned char)b.data[i + 2]);
            FUZZ_ASSERT(hi >= 0 && lo >= 0);
            FUZZ_ASSERT((unsigned)(hi * 16 + lo) == data[j]);
            FUZZ_ASSERT(!unreserved(data[j])); /* unreserved bytes are never encoded */
            i += 3;
        } else {
            FUZZ_ASSERT(unreserved(c));
            FUZZ_ASSERT(c == data[j]);
            i++;
        }
    }
    FUZZ_ASSERT(j == size);
    buf_free(&b);

    /* with a cap: the whole encoding fits or nothing is written */
    {
        size_t cap = size ? (size_t)data[0] : 0;
        buf_init(&b, cap);
        if (urlenc_append(&b, (const char *)data, size) == 0) {
            FUZZ_ASSERT(!b.overflow && (cap == 0 || b.len <= cap));
            FUZZ_ASSERT(b.len == want_len);
        } else {
            FUZZ_ASSERT(b.overflow && b.len == 0 && cap != 0 && want_len > 0);
        }
        buf_free(&b);
    }
    return 0;
}
