/* result.h — the outcome of one gateway call as plain C data, and the stable error codes.
 * The binding turns a struct smsend_result into the Lua status table; nothing here knows Lua. */
#ifndef SMSEND_RESULT_H
#define SMSEND_RESULT_H

#include <stddef.h>
#include "buf.h"

/* Order matters only for smsend_error_name(); the names are the public, stable codes. */
typedef enum {
    SMSEND_OK = 0,
    SMSEND_E_INVALID_REQUEST,
    SMSEND_E_BAD_REQUEST,
    SMSEND_E_UNAUTHORIZED,
    SMSEND_E_NOT_FOUND,
    SMSEND_E_RATE_LIMITED,
    SMSEND_E_SERVER_ERROR,
    SMSEND_E_UNEXPECTED_STATUS,
    SMSEND_E_BAD_RESPONSE,
    SMSEND_E_TIMEOUT,
    SMSEND_E_CONNECT_FAILED,
    SMSEND_E_RESOLVE_FAILED,
    SMSEND_E_TLS_FAILED,
    SMSEND_E_NETWORK_ERROR,
    SMSEND_E_WRONG_PIN,
    SMSEND_E_LOGIN_FAILED,
    SMSEND_E_COOLDOWN,
    SMSEND_E_OUT_OF_MEMORY,
    SMSEND_E_CANCELLED,
    SMSEND_E_GUARD_UNAVAILABLE,
    SMSEND_E__COUNT
} smsend_error;

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

const char *smsend_error_name(smsend_error e);

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
