/* fuzz_sms.c — recipient normalisation and SMS segment counting (src/phone.c, src/sms.c) on arbitrary bytes.
 * The whole input goes to both phone_normalize (smsend.normalize_recipient) and sms_count.
 *
 * normalize: compared with a reference rule written out below (three separate passes instead of
 * one scan); an accepted result matches ^\+[1-9][0-9]{5,14}$, is NUL-terminated inside its
 * buffer with strlen == return value, is a fixed point (normalising it again, or its "00" form,
 * gives it back), and its digits appear in order in the input.
 * segments: validity is decided by the reference decoder in fuzz_util.h; the GSM 03.38 tables
 * are written out below by table position, as in 3GPP TS 23.038, not by ASCII ranges; units and
 * segments are recomputed with an independent greedy packing (whole characters only) and
 * checked against the ceil(units / part) lower bound and the "at most one unit wasted per part"
 * upper bound. Error buffers of every size, including none, must give the same results. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "fuzz_util.h"
#include "phone.h"
#include "sms.h"

/* ---- reference: recipients ---- */

static int is_sep(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Returns the length of "+digits" written to out (room for n + 2 bytes), or -1. */
static int ref_normalize(const unsigned char *p, size_t n, char *out)
{
    size_t i, nd = 0, ndig_total = 0, plus_at = (size_t)-1, first_digit = (size_t)-1;
    const char *rest;
    size_t nrest;
    char *d;
    int plus;

    /* pass 1: only allowed bytes (NBSP as the two-byte pair C2 A0) */
    for (i = 0; i < n; i++) {
        if (is_digit(p[i])) {
            if (first_digit == (size_t)-1)
                first_digit = i;
            ndig_total++;
        } else if (p[i] == '+') {
            if (plus_at != (size_t)-1)
                return -1; /* a second '+' */
            plus_at = i;
        } else if (p[i] == 0xC2 && i + 1 < n && p[i + 1] == 0xA0) {
            i++;
        } else if (!is_sep(p[i])) {
            return -1;
        }
    }
    /* pass 2: a '+' is a prefix only in front of every digit */
    plus = plus_at != (size_t)-1;
    if (plus && first_digit != (size_t)-1 && first_digit < plus_at)
        return -1;
    if (ndig_total == 0)
        return -1;

    /* pass 3: the digits, minus a literal "(0)" that comes after the country code has started
     * ("+" and at least one digit, or "00" and at least one digit). */
    d = malloc(n + 1);
    if (!d)
        abort();
    for (i = 0; i < n; i++) {
        if (p[i] == '(' && n - i >= 3 && p[i + 1] == '0' && p[i + 2] == ')' && nd >= (plus ? 1 : 3)) {
            i += 2;
            continue;
        }
        if (is_digit(p[i]))
            d[nd++] = (char)p[i];
        /* the C2 of an NBSP pair is neither, and its A0 is neither either */
    }
    if (plus) {
        rest = d;
        nrest = nd;
    } else if (nd >= 2 && d[0] == '0' && d[1] == '0') {
        rest = d + 2;
        nrest = nd - 2;
    } else {
        free(d);
        return -1;
    }
    if (nrest < 6 || nrest > 15 || rest[0] == '0') {
        free(d);
        return -1;
    }
    out[0] = '+';
    memcpy(out + 1, rest, nrest);
    out[nrest + 1] = 0;
    free(d);
    return (int)nrest + 1;
}

/* ^\+[1-9][0-9]{5,14}$ on a NUL-terminated string */
static int canonical(const char *s)
{
    size_t i, n = strlen(s);
    if (n < 7 || n > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    for (i = 2; i < n; i++)
        if (!is_digit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Calls the real function with a heap out buffer of exactly PHONE_E164_MAX + 1 bytes
 * (pre-filled with junk) and checks what is common to every call. */
static int run_normalize(const char *p, size_t n, char res[PHONE_E164_MAX + 1])
{
    char *out = malloc(PHONE_E164_MAX + 1);
    char *in = fuzz_dup(p, n);
    char err[256];
    char *tiny = malloc(1);
    char out2[PHONE_E164_MAX + 1];
    int rc, rc2, rc3;
    if (!out || !tiny)
        abort();

    memset(out, 0xAA, PHONE_E164_MAX + 1);
    memset(err, 0xAA, sizeof err);
    rc = phone_normalize(in, n, out, err, sizeof err);
    FUZZ_ASSERT(rc == -1 || (rc >= 7 && rc <= PHONE_E164_MAX));
    FUZZ_ASSERT(memchr(out, 0, PHONE_E164_MAX + 1) != NULL);
    if (rc > 0) {
        FUZZ_ASSERT(strlen(out) == (size_t)rc);
        FUZZ_ASSERT(canonical(out));
    } else {
        FUZZ_ASSERT(memchr(err, 0, sizeof err) != NULL);
        FUZZ_ASSERT(err[0] != 0);
    }

    /* no error buffer, and a one-byte one, change nothing */
    rc2 = phone_normalize(in, n, out2, NULL, 0);
    tiny[0] = 'x';
    rc3 = phone_normalize(in, n, out2, tiny, 1);
    FUZZ_ASSERT(rc2 == rc && rc3 == rc);
    FUZZ_ASSERT(tiny[0] == 0 || rc > 0);
    if (rc > 0)
        FUZZ_ASSERT(strcmp(out2, out) == 0);

    memcpy(res, out, PHONE_E164_MAX + 1);
    res[PHONE_E164_MAX] = 0;
    free(tiny);
    free(in);
    free(out);
    return rc;
}

static void check_normalize(const uint8_t *data, size_t size)
{
    char out[PHONE_E164_MAX + 1], again[PHONE_E164_MAX + 1];
    char *want = malloc(size + 2);
    int rc, ref;
    size_t i, j;
    if (!want)
        abort();

    rc = run_normalize((const char *)data, size, out);
    ref = ref_normalize(data, size, want);
    FUZZ_ASSERT(rc == ref);
    if (rc > 0) {
        FUZZ_ASSERT(strcmp(out, want) == 0);

        /* every digit of the result appears, in order, in the input */
        for (i = 1, j = 0; out[i]; i++) {
            while (j < size && data[j] != (uint8_t)out[i])
                j++;
            FUZZ_ASSERT(j < size);
            j++;
        }

        /* idempotent: the canonical form normalises to itself ... */
        FUZZ_ASSERT(run_normalize(out, (size_t)rc, again) == rc);
        FUZZ_ASSERT(strcmp(again, out) == 0);
        /* ... and so does its "00" spelling */
        {
            char z[PHONE_E164_MAX + 2];
            z[0] = '0';
            z[1] = '0';
            memcpy(z + 2, out + 1, (size_t)rc - 1);
            FUZZ_ASSERT(run_normalize(z, (size_t)rc + 1, again) == rc);
            FUZZ_ASSERT(strcmp(again, out) == 0);
        }
    }
    free(want);
}

/* ---- reference: GSM 03.38 ---- */

/* The default alphabet, by septet value 0x00..0x7F. 0x1B is the escape to the extension table
 * and no character of its own (marked 0xFFFF: no code point). */
static const uint32_t gsm_basic[128] = {
    /* 0x00 */ 0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC,
    /* 0x08 */ 0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5,
    /* 0x10 */ 0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,
    /* 0x18 */ 0x03A3, 0x0398, 0x039E, 0xFFFF, 0x00C6, 0x00E6, 0x00DF, 0x00C9,
    /* 0x20 */ 0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027,
    /* 0x28 */ 0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F,
    /* 0x30 */ 0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,
    /* 0x38 */ 0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F,
    /* 0x40 */ 0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047,
    /* 0x48 */ 0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F,
    /* 0x50 */ 0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057,
    /* 0x58 */ 0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
    /* 0x60 */ 0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067,
    /* 0x68 */ 0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F,
    /* 0x70 */ 0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077,
    /* 0x78 */ 0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};

/* The extension table (sent as ESC + septet): septet, code point. */
static const uint32_t gsm_ext[][2] = {
    {0x0A, 0x000C}, /* form feed */
    {0x14, 0x005E}, /* ^ */
    {0x28, 0x007B}, /* { */
    {0x29, 0x007D}, /* } */
    {0x2F, 0x005C}, /* backslash */
    {0x3C, 0x005B}, /* [ */
    {0x3D, 0x007E}, /* ~ */
    {0x3E, 0x005D}, /* ] */
    {0x40, 0x007C}, /* | */
    {0x65, 0x20AC}, /* euro */
};

/* 1 basic, 2 extension, 0 neither */
static unsigned ref_gsm_cost(uint32_t cp)
{
    size_t k;
    for (k = 0; k < sizeof gsm_basic / sizeof gsm_basic[0]; k++)
        if (gsm_basic[k] == cp)
            return 1;
    for (k = 0; k < sizeof gsm_ext / sizeof gsm_ext[0]; k++)
        if (gsm_ext[k][1] == cp)
            return 2;
    return 0;
}

/* Parts needed for the given per-character unit costs when no character may be split. */
static size_t ref_greedy(const unsigned char *cost, size_t nchars, size_t part)
{
    size_t k, parts = 0, room = 0;
    for (k = 0; k < nchars; k++) {
        if (room < cost[k]) {
            parts++;
            room = part;
        }
        room -= cost[k];
    }
    return parts;
}

static size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

static void check_count(const uint8_t *data, size_t size)
{
    char *in = fuzz_dup(data, size);
    unsigned char *gcost = malloc(size ? size : 1), *ucost = malloc(size ? size : 1);
    struct sms_count c, c2, c3;
    char err[256];
    char *tiny = malloc(1);
    size_t i = 0, nch = 0, gunits = 0, uunits = 0, units, single, part, want_seg;
    int valid = 1, all_gsm = 1, rc, rc2, rc3;
    if (!gcost || !ucost || !tiny)
        abort();

    while (i < size) {
        uint32_t cp;
        size_t k = ref_utf8_decode(data + i, size - i, &cp);
        if (!k) {
            valid = 0;
            break;
        }
        i += k;
        gcost[nch] = (unsigned char)ref_gsm_cost(cp);
        if (!gcost[nch])
            all_gsm = 0;
        ucost[nch] = cp > 0xFFFF ? 2 : 1; /* a surrogate pair */
        gunits += gcost[nch];
        uunits += ucost[nch];
        nch++;
    }

    memset(&c, 0xA5, sizeof c);
    memset(err, 0xAA, sizeof err);
    rc = sms_count(in, size, &c, err, sizeof err);
    memset(&c2, 0x5A, sizeof c2);
    rc2 = sms_count(in, size, &c2, NULL, 0);
    memset(&c3, 0x3C, sizeof c3);
    tiny[0] = 'x';
    rc3 = sms_count(in, size, &c3, tiny, 1);
    FUZZ_ASSERT(rc == 0 || rc == -1);
    FUZZ_ASSERT(rc2 == rc && rc3 == rc);
    FUZZ_ASSERT((rc == 0) == valid);

    if (rc != 0) {
        FUZZ_ASSERT(memchr(err, 0, sizeof err) != NULL);
        FUZZ_ASSERT(err[0] != 0);
        FUZZ_ASSERT(tiny[0] == 0);
    } else {
        FUZZ_ASSERT(c.encoding == c2.encoding && c.units == c2.units && c.segments == c2.segments);
        FUZZ_ASSERT(c.encoding == c3.encoding && c.units == c3.units && c.segments == c3.segments);
        FUZZ_ASSERT(c.encoding == SMS_GSM7 || c.encoding == SMS_UCS2);
        FUZZ_ASSERT(strcmp(sms_encoding_name(c.encoding), c.encoding == SMS_GSM7 ? "GSM-7" : "UCS-2") == 0);

        /* GSM-7 exactly when every character is in the basic or the extension table */
        FUZZ_ASSERT((c.encoding == SMS_GSM7) == all_gsm);
        if (all_gsm) {
            units = gunits;
            single = 160;
            part = 153;
            want_seg = ref_greedy(gcost, nch, part);
            FUZZ_ASSERT(units >= nch && units <= 2 * nch);
        } else {
            units = uunits;
            single = 70;
            part = 67;
            want_seg = ref_greedy(ucost, nch, part);
            FUZZ_ASSERT(units >= nch && units <= 2 * nch);
        }
        FUZZ_ASSERT(c.units == units);

        if (units == 0) {
            FUZZ_ASSERT(size == 0);
            FUZZ_ASSERT(c.segments == 0);
        } else if (units <= single) {
            FUZZ_ASSERT(c.segments == 1);
        } else {
            FUZZ_ASSERT(c.segments >= 2);
            FUZZ_ASSERT(c.segments >= ceil_div(units, part));
            /* a part wastes at most one unit (one septet before an ESC pair, one code unit
             * before a surrogate pair) */
            FUZZ_ASSERT(c.segments <= ceil_div(units, part - 1));
            FUZZ_ASSERT(c.segments == want_seg);
        }

        /* Dropping the last character never costs more (within the same encoding). */
        if (nch > 0) {
            size_t cut = size;
            struct sms_count d;
            while (cut > 0 && (data[cut - 1] & 0xC0) == 0x80)
                cut--;
            cut--; /* start of the last character */
            FUZZ_ASSERT(sms_count(in, cut, &d, NULL, 0) == 0);
            if (d.encoding == c.encoding) {
                FUZZ_ASSERT(d.units + (all_gsm ? gcost[nch - 1] : ucost[nch - 1]) == c.units);
                FUZZ_ASSERT(d.segments <= c.segments);
            } else {
                /* only the last character can have forced UCS-2 */
                FUZZ_ASSERT(d.encoding == SMS_GSM7 && c.encoding == SMS_UCS2 && gcost[nch - 1] == 0);
            }
        }
    }
    free(tiny);
    free(ucost);
    free(gcost);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_normalize(data, size);
    check_count(data, size);
    return 0;
}
