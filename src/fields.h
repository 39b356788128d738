/* fields.h — the rules for request fields, checked before anything goes on the wire.
 * Each check fills an invalid_request result naming the field and returns -1, or returns 0. */
#ifndef SMSEND_FIELDS_H
#define SMSEND_FIELDS_H

#include <stddef.h>
#include "result.h"

#define FIELD_MESSAGE_MAX 1600 /* bytes; ~10 concatenated SMS, far beyond any PIN text */
#define FIELD_PIN_MAX 32        /* characters */
#define FIELD_EXPIRY_MAX 2147483647LL

/* A byte range taken from the caller; p == NULL means "not given". */
struct field_str {
    const char *p;
    size_t n;
};

/* `checked` is set only by whoever has just passed the request through fields_check_request
 * or fields_check_verify (the module-level calls check before choosing a client), so that the
 * client's own check is skipped: every request is validated exactly once. */
struct pin_request {
    struct field_str recipient;
    struct field_str sender;   /* senderName */
    struct field_str message;  /* messageBody */
    double expiry;             /* minutes as given; after the check a whole number >= 1 */
    int has_expiry;
    int checked;
};

struct pin_verify {
    struct field_str recipient;
    struct field_str pin;
    int checked;
};

int field_check_recipient(const char *p, size_t n, struct smsend_result *r);
int field_check_sender(const char *p, size_t n, struct smsend_result *r);
int field_check_message(const char *p, size_t n, struct smsend_result *r);
int field_check_pin(const char *p, size_t n, struct smsend_result *r);
/* expiry arrives as a double from Lua numbers: positive, integral, in range. out may be NULL. */
int field_check_expiry(double v, long long *out, struct smsend_result *r);

/* Whole-request checks (required fields present, each field valid); 0 at once when checked. */
int fields_check_request(const struct pin_request *q, struct smsend_result *r);
int fields_check_verify(const struct pin_verify *q, struct smsend_result *r);

#endif
