/* fuzz_fields.c — the request field validators on arbitrary bytes.
 * Input: recipient 0xFF senderName 0xFF messageBody 0xFF pin 0xFF expiry, where expiry is
 * 8 raw bytes of a double or else text for strtod. Missing parts are "not given".
 * Each validator is compared with the rule written out independently below, and the
 * result struct must name the field, hold NUL-terminated text, and stay clean on success. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "fields.h"
#include "fuzz_util.h"
#include "result.h"

#define SEP 0xFF
#define NPARTS 5

static int all_digits(const char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

static int has_control(const char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return 1;
    return 0;
}

static int ref_recipient(const char *p, size_t n)
{
    size_t skip = 0;
    if (n >= 1 && p[0] == '+')
        skip = 1;
    else if (n >= 2 && p[0] == '0' && p[1] == '0')
        skip = 2;
    return skip && n - skip >= 6 && n - skip <= 15 && all_digits(p + skip, n - skip) && p[skip] != '0';
}

static int ref_sender(const char *p, size_t n)
{
    long chars;
    if (n >= 1 && n <= 16 && all_digits(p, n))
        return 1;
    chars = ref_utf8_count(p, n);
    return n > 0 && chars >= 1 && chars <= 11 && !has_control(p, n);
}

static int ref_message(const char *p, size_t n)
{
    return n >= 1 && n <= FIELD_MESSAGE_MAX && !memchr(p, 0, n) && ref_utf8_count(p, n) >= 0;
}

static int ref_pin(const char *p, size_t n)
{
    long chars = ref_utf8_count(p, n);
    return chars >= 1 && chars <= FIELD_PIN_MAX && !has_control(p, n);
}

static int ref_expiry(double v)
{
    return !isnan(v) && v >= 1 && v <= 2147483647.0 && v == trunc(v);
}

/* The result after a check: clean on success, a complete invalid_request on failure. */
static void check_result(int rc, int want_ok, const struct smsend_result *r, const char *field)
{
    FUZZ_ASSERT(memchr(r->message, 0, sizeof r->message) != NULL);
    FUZZ_ASSERT(memchr(r->field, 0, sizeof r->field) != NULL);
    if (want_ok) {
        FUZZ_ASSERT(rc == 0);
        FUZZ_ASSERT(r->error == SMSEND_OK && r->field[0] == 0 && r->message[0] == 0);
    } else {
        FUZZ_ASSERT(rc == -1);
        FUZZ_ASSERT(r->error == SMSEND_E_INVALID_REQUEST);
        FUZZ_ASSERT(strcmp(r->field, field) == 0);
        FUZZ_ASSERT(r->message[0] != 0);
        FUZZ_ASSERT(r->retryable == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *part[NPARTS] = {NULL};
    size_t len[NPARTS] = {0};
    size_t i, start = 0, np = 0;
    struct smsend_result r;
    double exp_v = 1;
    int ok_rec = 0, ok_snd = 1, ok_msg = 1, ok_pin = 0, rc;

    /* split; every part gets its own exact-size heap copy so over-reads are caught */
    for (i = 0; i <= size && np < NPARTS; i++) {
        if (i == size || (data[i] == SEP && np < NPARTS - 1)) {
            part[np] = fuzz_dup(data + start, i - start);
            len[np] = i - start;
            np++;
            start = i + 1;
        }
    }

    if (part[0]) {
        result_clear(&r);
        ok_rec = ref_recipient(part[0], len[0]);
        rc = field_check_recipient(part[0], len[0], &r);
        check_result(rc, ok_rec, &r, "recipient");
        /* an accepted recipient is '+' or "00", then 6 to 15 ASCII digits, nothing else */
        if (rc == 0) {
            size_t skip = part[0][0] == '+' ? 1 : 2;
            FUZZ_ASSERT(len[0] >= 7 && len[0] <= 17);
            FUZZ_ASSERT(skip == 1 || (part[0][0] == '0' && part[0][1] == '0'));
            for (i = skip; i < len[0]; i++)
                FUZZ_ASSERT(part[0][i] >= '0' && part[0][i] <= '9');
        }
    }
    if (part[1]) {
        result_clear(&r);
        ok_snd = ref_sender(part[1], len[1]);
        check_result(field_check_sender(part[1], len[1], &r), ok_snd, &r, "senderName");
    }
    if (part[2]) {
        result_clear(&r);
        ok_msg = ref_message(part[2], len[2]);
        check_result(field_check_message(part[2], len[2], &r), ok_msg, &r, "messageBody");
    }
    if (part[3]) {
        result_clear(&r);
        ok_pin = ref_pin(part[3], len[3]);
        check_result(field_check_pin(part[3], len[3], &r), ok_pin, &r, "pin");
    }
    if (part[4]) {
        long long out = -7;
        if (len[4] == sizeof(double)) {
            memcpy(&exp_v, part[4], sizeof(double));
        } else {
            char tmp[64];
            size_t k = len[4] < sizeof tmp - 1 ? len[4] : sizeof tmp - 1;
            memcpy(tmp, part[4], k);
            tmp[k] = 0;
            exp_v = strtod(tmp, NULL);
        }
        result_clear(&r);
        rc = field_check_expiry(exp_v, &out, &r);
        check_result(rc, ref_expiry(exp_v), &r, "expiry");
        if (rc == 0)
            FUZZ_ASSERT(out >= 1 && out <= FIELD_EXPIRY_MAX && (double)out == exp_v);
        else
            FUZZ_ASSERT(out == -7);
    }

    /* whole requests agree with the single checks (absent optional parts are fine) */
    {
        struct pin_request q;
        struct pin_verify v;
        memset(&q, 0, sizeof q);
        memset(&v, 0, sizeof v);
        q.recipient.p = v.recipient.p = part[0];
        q.recipient.n = v.recipient.n = len[0];
        q.sender.p = part[1];
        q.sender.n = len[1];
        q.message.p = part[2];
        q.message.n = len[2];
        v.pin.p = part[3];
        v.pin.n = len[3];
        result_clear(&r);
        rc = fields_check_request(&q, &r);
        FUZZ_ASSERT((rc == 0) == (part[0] && ok_rec && ok_snd && ok_msg));
        if (rc)
            FUZZ_ASSERT(r.error == SMSEND_E_INVALID_REQUEST && r.field[0] != 0 && r.message[0] != 0);
        result_clear(&r);
        rc = fields_check_verify(&v, &r);
        FUZZ_ASSERT((rc == 0) == (part[0] && ok_rec && part[3] && ok_pin));
        if (rc)
            FUZZ_ASSERT(r.error == SMSEND_E_INVALID_REQUEST && r.field[0] != 0 && r.message[0] != 0);
    }

    for (i = 0; i < NPARTS; i++)
        free(part[i]);
    return 0;
}
