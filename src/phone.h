/* phone.h — the one rule for phone numbers: what a recipient may be, its canonical "+NNN..."
 * form (the form every key is made from), and the calling codes a PIN may go to. Plain C. */
#ifndef SMSEND_PHONE_H
#define SMSEND_PHONE_H

#include <stddef.h>
#include <stdint.h>

#define PHONE_MIN_DIGITS 6
#define PHONE_MAX_DIGITS 15
#define PHONE_E164_MAX (1 + PHONE_MAX_DIGITS) /* '+' and the digits, the longest canonical form */

/* Why phone_e164 refuses a number (it returns one of these instead of a length). */
enum phone_refusal {
    PHONE_BAD_FORM = -1,      /* no '+' or '00', a non-digit, or not 6 to 15 digits after it */
    PHONE_COUNTRY_ZERO = -2,  /* the first digit after the prefix is 0: a doubled prefix */
};

/* The strict rule, for request fields: '+' or '00', then 6 to 15 ASCII digits, the first not 0.
 * Writes the canonical "+NNN..." form to out (when not NULL; NUL-terminated) and returns its
 * length, or returns a negative enum phone_refusal. */
int phone_e164(const char *p, size_t n, char out[PHONE_E164_MAX + 1]);

/* The same rule after stripping what people write inside numbers: spaces, tabs, no-break
 * spaces, '-', '.', parentheses, and a "(0)" trunk prefix written after the country code.
 * Returns the length of the canonical form written to out, or -1 with a message in err
 * (err may be NULL or errlen 0). */
int phone_normalize(const char *p, size_t n, char out[PHONE_E164_MAX + 1], char *err, size_t errlen);

/* Calling codes a PIN may go to, parsed from a list such as "39,44,1": codes of 1 to 3 digits,
 * the first not 0. Codes are a prefix code (E.164), so a number is in a country when its digits
 * start with that country's code. The set is one bit per code value 1..999. */
struct phone_countries {
    int restricted; /* 0: every country (the option was not given) */
    uint8_t bits[125];
};

/* Parses p[0..n) (entries separated by commas, spaces around them allowed) into out.
 * Returns NULL, or why the list cannot be used. */
const char *phone_countries_parse(const char *p, size_t n, struct phone_countries *out);

/* 1 when the canonical number e164[0..n) ("+NNN...") may receive a PIN under list. */
int phone_country_allowed(const struct phone_countries *list, const char *e164, size_t n);

#endif
