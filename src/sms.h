/* sms.h — what a text costs as SMS, with no gateway involved: GSM 03.38 / UCS-2 segment
 * counting. Plain C, no Lua. */
#ifndef SMSEND_SMS_H
#define SMSEND_SMS_H

#include <stddef.h>

/* Characters per message: a single SMS, and each part of a concatenated one (the rest of
 * the 140 bytes carries the concatenation header). */
#define SMS_GSM7_SINGLE 160
#define SMS_GSM7_PART 153
#define SMS_UCS2_SINGLE 70
#define SMS_UCS2_PART 67

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
