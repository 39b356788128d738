/* fuzz_util.h — small helpers shared by the harnesses: a reference UTF-8 decoder written
 * independently of src/json.c (a differential oracle), and a checked-abort macro. */
#ifndef SMSEND_FUZZ_UTIL_H
#define SMSEND_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Aborts with a message naming the broken invariant (libFuzzer saves the input). */
#define FUZZ_ASSERT(cond)                                                                                    \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);                   \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

/* Decodes one code point the textbook way (Unicode Table 3-7 via value ranges):
 * returns the sequence length and stores the scalar value, or 0 when invalid. */
static inline size_t ref_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t v, min;
    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2;
        v = p[0] & 0x1F;
        min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3;
        v = p[0] & 0x0F;
        min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4;
        v = p[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Code points in p, or -1 when invalid (same contract as utf8_count). */
static inline long ref_utf8_count(const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i = 0;
    long count = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = ref_utf8_decode(p + i, n - i, &cp);
        if (!k)
            return -1;
        i += k;
        count++;
    }
    return count;
}

/* Longest prefix of valid UTF-8 p (whole characters) that is at most max bytes long. */
static inline size_t ref_utf8_prefix(const void *data, size_t n, size_t max)
{
    const unsigned char *p = data;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = ref_utf8_decode(p + i, n - i, &cp);
        if (!k || i + k > max)
            break;
        i += k;
    }
    return i;
}

/* A heap copy of exactly n bytes (so AddressSanitizer sees any read past the end). */
static inline char *fuzz_dup(const void *p, size_t n)
{
    char *q = malloc(n ? n : 1);
    if (!q)
        abort();
    if (n)
        memcpy(q, p, n);
    return q;
}

#endif
