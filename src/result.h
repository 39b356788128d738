/* result.h — the outcome of one gateway call as plain C data, and the stable error codes.
 * The binding turns a struct smsend_result into the Lua status table; nothing here knows Lua. */
#ifndef SMSEND_RESULT_H
#define SMSEND_RESULT_H

#include <stddef.h>
#include "buf.h"

/* The stable error codes, from errors.def. */
typedef enum {
    SMSEND_OK = 0,
#define ERR(constant, name, retryable) SMSEND_E_##constant,
#include "errors.def"
#undef ERR
    SMSEND_E__COUNT
} smsend_error;

/* An error code's retryable default (see errors.def). */
enum smsend_retry { SMSEND_RETRY_NO = 0, SMSEND_RETRY_YES = 1, SMSEND_RETRY_PER_CALL = 2 };

#define SMSEND_MESSAGE_MAX 256
#define SMSEND_FIELD_MAX 48

struct smsend_result {
    smsend_error error;
    long status;            /* HTTP status, 0 when no answer arrived */
    int retryable;          /* 1 only when the request certainly never reached the gateway */
    double elapsed;         /* seconds */
    double retry_after;     /* seconds, < 0 when not given */
    double tries_remaining; /* wrong_pin only, < 0 when not given */
    int valid;              /* check_session: 1 valid, 0 not, -1 not asked */
    int body_is_secret;     /* login answers carry keys: never hand them to Lua */
    char message[SMSEND_MESSAGE_MAX];
    char field[SMSEND_FIELD_MAX];
    struct buf body;        /* raw response body (capped); points into the client's buffer */
};

/* The public name of e (NULL for SMSEND_OK), and its retryable default. */
const char *smsend_error_name(smsend_error e);
enum smsend_retry smsend_error_retryable(smsend_error e);

/* 1 when the answer's body is exactly the gateway's usual {"status":"OK"}. */
int result_body_is_ok(const struct smsend_result *r);

/* Reset to "no outcome yet"; body is left empty. */
void result_clear(struct smsend_result *r);

/* printf-style message setter, always NUL-terminated and truncated to fit. */
void result_fail(struct smsend_result *r, smsend_error e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Sets a constant message on success (no formatting on the hot path). */
void result_message(struct smsend_result *r, const char *text);

/* invalid_request naming the offending field. */
void result_invalid(struct smsend_result *r, const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
