/* phone.c — the phone-number rule, applied strictly to request fields and, after stripping
 * separators, by smsend.normalize_recipient; the calling-code allow list. Plain C. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "phone.h"

enum verdict { V_OK, V_NO_PREFIX, V_NOT_DIGITS, V_LENGTH, V_COUNTRY_ZERO };

/* The rule itself, on "+D..." or "00D...": sets *skip to the prefix's length. */
static enum verdict rule(const char *p, size_t n, size_t *skip)
{
    size_t i;
    if (n >= 1 && p[0] == '+')
        *skip = 1;
    else if (n >= 2 && p[0] == '0' && p[1] == '0')
        *skip = 2;
    else
        return V_NO_PREFIX; /* without the country the number is ambiguous: a guess would text a stranger */
    if (n - *skip < PHONE_MIN_DIGITS || n - *skip > PHONE_MAX_DIGITS)
        return V_LENGTH;
    for (i = *skip; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return V_NOT_DIGITS;
    if (p[*skip] == '0') /* no country code starts with 0: "+0..." / "000..." is a doubled prefix */
        return V_COUNTRY_ZERO;
    return V_OK;
}

static int canonical(const char *p, size_t n, size_t skip, char *out)
{
    size_t nd = n - skip;
    if (out) {
        out[0] = '+';
        memcpy(out + 1, p + skip, nd);
        out[nd + 1] = 0;
    }
    return (int)nd + 1;
}

int phone_e164(const char *p, size_t n, char out[PHONE_E164_MAX + 1])
{
    size_t skip = 0;
    enum verdict v = rule(p, n, &skip);
    if (out)
        out[0] = 0;
    if (v == V_COUNTRY_ZERO)
        return PHONE_COUNTRY_ZERO;
    if (v != V_OK)
        return PHONE_BAD_FORM;
    return canonical(p, n, skip, out);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Room for "+" or "00", the longest number, and one more digit so that "too long" is still
 * seen as such; digits past that are only counted. */
#define DIGITS_CAP (2 + PHONE_MAX_DIGITS + 1)

int phone_normalize(const char *p, size_t n, char out[PHONE_E164_MAX + 1], char *err, size_t errlen)
{
    char cand[1 + DIGITS_CAP];
    size_t nd = 0, len, i = 0, skip = 0;
    int plus = 0;
    out[0] = 0;
    if (n == 0) {
        set_err(err, errlen, "recipient is empty");
        return -1;
    }
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c >= '0' && c <= '9') {
            if (nd < DIGITS_CAP)
                cand[1 + nd] = (char)c;
            nd++;
            i++;
        } else if (c == '+') {
            /* A '+' after a digit is a typo or two numbers glued together, never a prefix. */
            if (plus || nd > 0) {
                set_err(err, errlen, "recipient has a '+' that is not at the start (byte %zu)", i + 1);
                return -1;
            }
            plus = 1;
            i++;
        } else if (c == '(' && i + 2 < n && p[i + 1] == '0' && p[i + 2] == ')' && nd >= (plus ? 1u : 3u)) {
            /* "+44 (0)20 ..." : the (0) is the national trunk prefix, dialled only from inside
             * the country, so it is dropped from the international form. */
            i += 3;
        } else if (c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')') {
            i++;
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)p[i + 1] == 0xA0) {
            /* U+00A0: word processors and web pages put no-break spaces inside numbers. */
            i += 2;
        } else {
            set_err(err, errlen,
                    "recipient has an invalid character at byte %zu (allowed: digits, spaces, "
                    "'-', '.', '(', ')' and a leading '+')",
                    i + 1);
            return -1;
        }
    }
    if (nd == 0) {
        set_err(err, errlen, "recipient has no digits");
        return -1;
    }
    len = nd < DIGITS_CAP ? nd : DIGITS_CAP;
    if (plus)
        cand[0] = '+';
    switch (rule(plus ? cand : cand + 1, plus ? len + 1 : len, &skip)) {
    case V_OK:
        return canonical(plus ? cand : cand + 1, plus ? len + 1 : len, skip, out);
    case V_LENGTH:
        set_err(err, errlen, "recipient must have %d to %d digits after the international prefix, has %zu",
                PHONE_MIN_DIGITS, PHONE_MAX_DIGITS, nd - (plus ? 0 : 2));
        return -1;
    case V_COUNTRY_ZERO:
        set_err(err, errlen, "recipient's country code cannot start with 0");
        return -1;
    default: /* V_NO_PREFIX: the candidate holds digits only, so nothing else is left */
        set_err(err, errlen,
                "recipient needs an international prefix ('+' or '00' and the country code), "
                "e.g. +393471234567");
        return -1;
    }
}

/* ---- calling codes ---- */

const char *phone_countries_parse(const char *p, size_t n, struct phone_countries *out)
{
    static const char why[] = "must be calling codes of 1 to 3 digits (the first not 0) separated by "
                              "commas, e.g. \"39,44,1\"";
    size_t i = 0;
    memset(out, 0, sizeof *out);
    out->restricted = 1;
    for (;;) {
        unsigned v = 0, digits = 0;
        while (i < n && p[i] == ' ')
            i++;
        for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
            if ((digits == 0 && p[i] == '0') || ++digits > 3)
                return why;
            v = v * 10 + (unsigned)(p[i] - '0');
        }
        if (!digits)
            return why;
        out->bits[v >> 3] |= (uint8_t)(1u << (v & 7));
        while (i < n && p[i] == ' ')
            i++;
        if (i == n)
            return NULL;
        if (p[i++] != ',')
            return why;
    }
}

int phone_country_allowed(const struct phone_countries *list, const char *e164, size_t n)
{
    unsigned v = 0;
    size_t i;
    if (!list->restricted)
        return 1;
    for (i = 1; i < n && i <= 3; i++) {
        if (e164[i] < '0' || e164[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(e164[i] - '0');
        if (list->bits[v >> 3] & (1u << (v & 7)))
            return 1;
    }
    return 0;
}
