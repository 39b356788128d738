/* sms.c — recipient normalisation and SMS segment counting (GSM 03.38 basic and extension
 * tables, UCS-2 fallback). Plain C: the Lua side lives in lsms.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "sms.h"

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

/* ---- recipients ---- */

/* Room for "00", the longest number, and one more digit so "too long" is still seen as such;
 * digits past that are only counted. */
#define DIGITS_CAP (2 + SMS_RECIPIENT_MAX_DIGITS + 1)

int sms_normalize_recipient(const char *p, size_t n, char out[SMS_RECIPIENT_MAX + 1], char *err,
                            size_t errlen)
{
    char digits[DIGITS_CAP];
    size_t nd = 0, i = 0, skip;
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
                digits[nd] = (char)c;
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
        } else if (c == '(' && i + 2 < n && p[i + 1] == '0' && p[i + 2] == ')' &&
                   nd >= (plus ? 1u : 3u)) {
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
    if (plus)
        skip = 0;
    else if (nd >= 2 && digits[0] == '0' && digits[1] == '0')
        skip = 2;
    else {
        /* Without the country the number is ambiguous: guessing one would text a stranger. */
        set_err(err, errlen,
                "recipient needs an international prefix ('+' or '00' and the country code), "
                "e.g. +393471234567");
        return -1;
    }
    nd -= skip;
    if (nd < SMS_RECIPIENT_MIN_DIGITS || nd > SMS_RECIPIENT_MAX_DIGITS) {
        set_err(err, errlen, "recipient must have %d to %d digits after the international prefix, has %zu",
                SMS_RECIPIENT_MIN_DIGITS, SMS_RECIPIENT_MAX_DIGITS, nd);
        return -1;
    }
    /* No country code starts with 0; "+0..." / "000..." is a doubled or misplaced prefix. */
    if (digits[skip] == '0') {
        set_err(err, errlen, "recipient's country code cannot start with 0");
        return -1;
    }
    out[0] = '+';
    memcpy(out + 1, digits + skip, nd);
    out[nd + 1] = 0;
    return (int)nd + 1;
}

/* ---- UTF-8 ---- */

/* Decodes one code point from p[0..n) (n >= 1) into *cp and returns its length in bytes, or 0
 * for invalid UTF-8 (stray continuation bytes, overlongs, surrogates, past U+10FFFF, cut short). */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned long *cp)
{
    unsigned long v, min;
    size_t need, i;
    unsigned char c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2)
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
    if (v < min || v > 0x10FFFFul || (v >= 0xD800ul && v <= 0xDFFFul))
        return 0;
    *cp = v;
    return need + 1;
}

/* ---- GSM 03.38 ---- */

/* Septets a character takes in GSM-7: 1 for the basic table, 2 for the extension table (sent as
 * ESC + code), 0 when it has no GSM 03.38 encoding at all. Strict to 3GPP TS 23.038: no
 * look-alike substitutions (small ç, Greek capitals that resemble Latin ones, curly quotes,
 * tab ... all force UCS-2, as they do on a handset that does not transliterate). */
static int gsm_septets(unsigned long cp)
{
    if (cp >= 0x20 && cp <= 0x7E) {
        if (cp == '`')
            return 0;
        if (strchr("^{}\\[~]|", (int)cp))
            return 2;
        return 1; /* includes @ $ _ which the basic table has at other positions than ASCII */
    }
    switch (cp) {
    case 0x0A: /* LF */
    case 0x0D: /* CR */
    case 0xA3: /* £ */
    case 0xA5: /* ¥ */
    case 0xE8: /* è */
    case 0xE9: /* é */
    case 0xF9: /* ù */
    case 0xEC: /* ì */
    case 0xF2: /* ò */
    case 0xC7: /* Ç */
    case 0xD8: /* Ø */
    case 0xF8: /* ø */
    case 0xC5: /* Å */
    case 0xE5: /* å */
    case 0x394: /* Δ */
    case 0x3A6: /* Φ */
    case 0x393: /* Γ */
    case 0x39B: /* Λ */
    case 0x3A9: /* Ω */
    case 0x3A0: /* Π */
    case 0x3A8: /* Ψ */
    case 0x3A3: /* Σ */
    case 0x398: /* Θ */
    case 0x39E: /* Ξ */
    case 0xC6: /* Æ */
    case 0xE6: /* æ */
    case 0xDF: /* ß */
    case 0xC9: /* É */
    case 0xA4: /* ¤ */
    case 0xA1: /* ¡ */
    case 0xC4: /* Ä */
    case 0xD6: /* Ö */
    case 0xD1: /* Ñ */
    case 0xDC: /* Ü */
    case 0xA7: /* § */
    case 0xBF: /* ¿ */
    case 0xE4: /* ä */
    case 0xF6: /* ö */
    case 0xF1: /* ñ */
    case 0xFC: /* ü */
    case 0xE0: /* à */
        return 1;
    case 0x0C:   /* form feed */
    case 0x20AC: /* € */
        return 2;
    default:
        return 0;
    }
}

/* ---- segments ---- */

/* Whole characters packed greedily into parts of `part` units. A character never straddles two
 * parts: handsets cannot rejoin an ESC split from its code or a surrogate split from its pair,
 * so senders start a new part instead, which can cost one part more than units / part. */
struct packing {
    size_t units, parts, used;
};

static void pack(struct packing *k, size_t u, size_t part)
{
    k->units += u;
    if (k->parts == 0 || k->used + u > part) {
        k->parts++;
        k->used = 0;
    }
    k->used += u;
}

static size_t segments_of(const struct packing *k, size_t single)
{
    if (k->units == 0)
        return 0; /* nothing to send (request_pin refuses an empty messageBody anyway) */
    return k->units <= single ? 1 : k->parts;
}

int sms_count(const char *p, size_t n, struct sms_count *out, char *err, size_t errlen)
{
    const unsigned char *s = (const unsigned char *)p;
    struct packing gsm = {0, 0, 0}, ucs = {0, 0, 0};
    int all_gsm = 1;
    size_t i = 0;
    /* One pass counts both encodings, since the first non-GSM character may come last. */
    while (i < n) {
        unsigned long cp;
        size_t len = utf8_decode(s + i, n - i, &cp);
        int sept;
        if (len == 0) {
            set_err(err, errlen, "text is not valid UTF-8 (byte %zu)", i + 1);
            return -1;
        }
        i += len;
        if (all_gsm) {
            sept = gsm_septets(cp);
            if (sept == 0)
                all_gsm = 0;
            else
                pack(&gsm, (size_t)sept, SMS_GSM7_PART);
        }
        pack(&ucs, cp >= 0x10000ul ? 2 : 1, SMS_UCS2_PART);
    }
    if (all_gsm) {
        out->encoding = SMS_GSM7;
        out->units = gsm.units;
        out->segments = segments_of(&gsm, SMS_GSM7_SINGLE);
    } else {
        out->encoding = SMS_UCS2;
        out->units = ucs.units;
        out->segments = segments_of(&ucs, SMS_UCS2_SINGLE);
    }
    return 0;
}

const char *sms_encoding_name(enum sms_encoding e)
{
    return e == SMS_UCS2 ? "UCS-2" : "GSM-7";
}
