/* utf8.c — strict UTF-8 decoding and counting, and the control-character rule.
 * Everything here reads untrusted bytes with explicit lengths; it is fuzzed through json.c and sms.c. */
#include "utf8.h"

size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    uint32_t v, min;
    size_t need, i;
    unsigned char c = p[0];
    if (c < 0x80) {
        if (cp)
            *cp = c;
        return 1;
    }
    if (c < 0xC2) /* a continuation byte, or the lead of an overlong two-byte form */
        return 0;
    if (c < 0xE0) {
        need = 1;
        v = c & 0x1Fu;
        min = 0x80;
    } else if (c < 0xF0) {
        need = 2;
        v = c & 0x0Fu;
        min = 0x800;
    } else if (c < 0xF5) {
        need = 3;
        v = c & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < need + 1)
        return 0;
    for (i = 1; i <= need; i++) {
        if ((p[i] & 0xC0u) != 0x80u)
            return 0;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFFu || (v >= 0xD800u && v <= 0xDFFFu))
        return 0;
    if (cp)
        *cp = v;
    return need + 1;
}

long utf8_count(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    long count = 0;
    while (i < n) {
        size_t k;
        if (n - i >= 8 && !(utf8_load8(p + i) & UTF8_HIGHS)) { /* eight ASCII bytes */
            i += 8;
            count += 8;
            continue;
        }
        if (p[i] < 0x80) {
            i++;
            count++;
            continue;
        }
        k = utf8_decode(p + i, n - i, NULL);
        if (!k)
            return -1;
        i += k;
        count++;
    }
    return count;
}

int utf8_has_ctl(const char *s, size_t n, int also_space)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned below = also_space ? 0x21 : 0x20;
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] < below || p[i] == 0x7f)
            return 1;
    return 0;
}
