/* fields.c — validation of recipient (by the phone rule), senderName, expiry, messageBody and pin.
 * The rules follow what SMS networks accept; the gateway's own 400 stays the final word. */
#include <math.h>
#include "fields.h"
#include "phone.h"
#include "utf8.h"

static int all_digits(const char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

int field_check_recipient(const char *p, size_t n, struct smsend_result *r)
{
    int rc = phone_e164(p, n, NULL);
    if (rc > 0)
        return 0;
    if (rc == PHONE_COUNTRY_ZERO)
        result_invalid(r, "recipient", "recipient's country code cannot start with 0, e.g. +393471234567");
    else
        result_invalid(r, "recipient",
                       "recipient must be '+' or '00' followed by 6 to 15 digits, e.g. +393471234567");
    return -1;
}

int field_check_sender(const char *p, size_t n, struct smsend_result *r)
{
    long chars;
    if (n > 0 && n <= 16 && all_digits(p, n))
        return 0;
    if (n > 44) /* 11 characters are at most 44 bytes: no need to read a long string */
        chars = -1;
    else
        chars = utf8_count(p, n);
    if (n == 0 || chars < 0 || chars > 11) {
        result_invalid(r, "senderName",
                       "senderName must be 1 to 11 characters of valid UTF-8, or a number of up to 16 digits");
        return -1;
    }
    if (utf8_has_ctl(p, n, 0)) {
        result_invalid(r, "senderName", "senderName must not contain control characters");
        return -1;
    }
    return 0;
}

int field_check_message(const char *p, size_t n, struct smsend_result *r)
{
    if (n == 0) {
        result_invalid(r, "messageBody", "messageBody must not be empty");
        return -1;
    }
    if (n > FIELD_MESSAGE_MAX) {
        result_invalid(r, "messageBody", "messageBody is longer than %d bytes", FIELD_MESSAGE_MAX);
        return -1;
    }
    if (memchr(p, 0, n)) {
        result_invalid(r, "messageBody", "messageBody must not contain NUL bytes");
        return -1;
    }
    if (utf8_count(p, n) < 0) {
        result_invalid(r, "messageBody", "messageBody is not valid UTF-8");
        return -1;
    }
    return 0;
}

int field_check_pin(const char *p, size_t n, struct smsend_result *r)
{
    long chars = utf8_count(p, n);
    if (n == 0 || chars < 0 || chars > FIELD_PIN_MAX) {
        result_invalid(r, "pin", "pin must be 1 to %d characters of valid UTF-8", FIELD_PIN_MAX);
        return -1;
    }
    if (utf8_has_ctl(p, n, 0)) {
        result_invalid(r, "pin", "pin must not contain control characters");
        return -1;
    }
    return 0;
}

int field_check_expiry(double v, long long *out, struct smsend_result *r)
{
    if (!(v >= 1) || v > (double)FIELD_EXPIRY_MAX || v != floor(v)) {
        result_invalid(r, "expiry", "expiry must be a positive whole number of minutes (at most %lld)",
                       FIELD_EXPIRY_MAX);
        return -1;
    }
    if (out)
        *out = (long long)v;
    return 0;
}

/* A required field: present, then valid by its own check. */
static int required(const struct field_str *f, const char *name, int (*check)(const char *, size_t, struct smsend_result *),
                    struct smsend_result *r)
{
    if (!f->p) {
        result_invalid(r, name, "%s is required", name);
        return -1;
    }
    return check(f->p, f->n, r);
}

int fields_check_request(const struct pin_request *q, struct smsend_result *r)
{
    if (q->checked)
        return 0;
    if (required(&q->recipient, "recipient", field_check_recipient, r))
        return -1;
    if (q->sender.p && field_check_sender(q->sender.p, q->sender.n, r))
        return -1;
    if (q->message.p && field_check_message(q->message.p, q->message.n, r))
        return -1;
    if (q->has_expiry && field_check_expiry(q->expiry, NULL, r))
        return -1;
    return 0;
}

int fields_check_verify(const struct pin_verify *q, struct smsend_result *r)
{
    if (q->checked)
        return 0;
    if (required(&q->recipient, "recipient", field_check_recipient, r))
        return -1;
    return required(&q->pin, "pin", field_check_pin, r);
}
