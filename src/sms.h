/* sms.h — SMS helpers with no gateway involved: canonical recipient numbers and
 * GSM 03.38 / UCS-2 segment counting. Plain C, no Lua. */
#ifndef SMSEND_SMS_H
#define SMSEND_SMS_H

#include <stddef.h>

/* '+' and at most 15 digits (E.164), the longest canonical recipient. */
#define SMS_RECIPIENT_MAX 16
#define SMS_RECIPIENT_MIN_DIGITS 6
#define SMS_RECIPIENT_MAX_DIGITS 15

/* Characters per message: a single SMS, and each part of a concatenated one (the rest of
 * the 140 bytes carries the concatenation header). */
#define SMS_GSM7_SINGLE 160
#define SMS_GSM7_PART 153
#define SMS_UCS2_SINGLE 70
#define SMS_UCS2_PART 67

/* Writes the canonical "+NNN..." form of p[0..n) to out (NUL-terminated, at most
 * SMS_RECIPIENT_MAX bytes plus the NUL) and returns its length. Returns -1 with a message in err
 * when p cannot be made into a valid international number. */
int sms_normalize_recipient(const char *p, size_t n, char out[SMS_RECIPIENT_MAX + 1], char *err,
                            size_t errlen);

enum sms_encoding { SMS_GSM7 = 0, SMS_UCS2 = 1 };

struct sms_count {
    enum sms_encoding encoding;
    size_t units;    /* GSM-7: septets (extension characters count 2); UCS-2: UTF-16 code units */
    size_t segments; /* messages on the wire; 0 for empty text */
};

/* Counts what text p[0..n) costs as an SMS. Returns 0, or -1 with a message in err when p is not
 * valid UTF-8. */
int sms_count(const char *p, size_t n, struct sms_count *out, char *err, size_t errlen);

/* "GSM-7" or "UCS-2". */
const char *sms_encoding_name(enum sms_encoding e);

#endif
