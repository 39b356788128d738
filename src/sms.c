/* sms.c — SMS segment counting (GSM 03.38 basic and extension tables, UCS-2 fallback).
 * Plain C: the Lua side lives in lsms.c; recipients follow the phone rule in phone.c. */
#include <stdio.h>
#include <string.h>
#include "sms.h"
#include "utf8.h"

/* ---- GSM 03.38 ---- */

/* Septets a character takes in GSM-7: 1 for the basic table, 2 for the extension table (sent as
 * ESC + code), 0 when it has no GSM 03.38 encoding at all. Strict to 3GPP TS 23.038: no
 * look-alike substitutions (small ç, Greek capitals that resemble Latin ones, curly quotes,
 * tab ... all force UCS-2, as they do on a handset that does not transliterate). */
static int gsm_septets(uint32_t cp)
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
        uint32_t cp;
        size_t len = utf8_decode(s + i, n - i, &cp);
        int sept;
        if (len == 0) {
            if (err && errlen)
                snprintf(err, errlen, "text is not valid UTF-8 (byte %zu)", i + 1);
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
        pack(&ucs, cp >= 0x10000u ? 2 : 1, SMS_UCS2_PART);
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
