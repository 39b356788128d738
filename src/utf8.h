/* utf8.h — the one UTF-8 decoder and the one control-character rule, used by every room that
 * checks text (fields, JSON, SMS counting, option and credential checks). Plain C, no Lua. */
#ifndef SMSEND_UTF8_H
#define SMSEND_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Decodes the sequence at p (n >= 1 bytes available) strictly: no stray continuation bytes,
 * overlongs, surrogates, values past U+10FFFF or sequences cut short. Returns its length in
 * bytes and stores the code point in *cp (when cp is not NULL), or returns 0 when invalid. */
size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

/* Number of code points in p[0..n), or -1 when the bytes are not valid UTF-8 (as utf8_decode
 * decides). NUL bytes are valid UTF-8 here. */
long utf8_count(const char *p, size_t n);

/* 1 when p[0..n) holds a C0 control byte (NUL included) or DEL; with also_space a space
 * counts too (for URLs, where a space is never part of the value). */
int utf8_has_ctl(const char *p, size_t n, int also_space);

/* Word-at-a-time byte tests (the classic bit tricks), exact about whether any byte matches;
 * shared by the scanners here and in json.c. */
#define UTF8_ONES 0x0101010101010101ULL
#define UTF8_HIGHS 0x8080808080808080ULL
#define UTF8_HAS_ZERO(v) (((v) - UTF8_ONES) & ~(v) & UTF8_HIGHS)
#define UTF8_HAS_LESS(v, n) (((v) - UTF8_ONES * (n)) & ~(v) & UTF8_HIGHS)

static inline uint64_t utf8_load8(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* one unaligned load on the usual targets */
    return v;
}

#endif
