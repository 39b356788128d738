/* result.c — error-code names and message helpers for struct smsend_result.
 * The names are the public contract: never rename one. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "result.h"

static const char *const names[SMSEND_E__COUNT] = {
    [SMSEND_OK] = NULL,
    [SMSEND_E_INVALID_REQUEST] = "invalid_request",
    [SMSEND_E_BAD_REQUEST] = "bad_request",
    [SMSEND_E_UNAUTHORIZED] = "unauthorized",
    [SMSEND_E_NOT_FOUND] = "not_found",
    [SMSEND_E_RATE_LIMITED] = "rate_limited",
    [SMSEND_E_SERVER_ERROR] = "server_error",
    [SMSEND_E_UNEXPECTED_STATUS] = "unexpected_status",
    [SMSEND_E_BAD_RESPONSE] = "bad_response",
    [SMSEND_E_TIMEOUT] = "timeout",
    [SMSEND_E_CONNECT_FAILED] = "connect_failed",
    [SMSEND_E_RESOLVE_FAILED] = "resolve_failed",
    [SMSEND_E_TLS_FAILED] = "tls_failed",
    [SMSEND_E_NETWORK_ERROR] = "network_error",
    [SMSEND_E_WRONG_PIN] = "wrong_pin",
    [SMSEND_E_LOGIN_FAILED] = "login_failed",
    [SMSEND_E_COOLDOWN] = "cooldown",
    [SMSEND_E_OUT_OF_MEMORY] = "out_of_memory",
    [SMSEND_E_CANCELLED] = "cancelled",
    [SMSEND_E_GUARD_UNAVAILABLE] = "guard_unavailable",
};

const char *smsend_error_name(smsend_error e)
{
    return (unsigned)e < SMSEND_E__COUNT ? names[e] : "unexpected_status";
}

void result_clear(struct smsend_result *r)
{
    r->error = SMSEND_OK;
    r->status = 0;
    r->retryable = 0;
    r->elapsed = 0;
    r->retry_after = -1;
    r->tries_remaining = -1;
    r->valid = -1;
    r->body_is_secret = 0;
    r->message[0] = 0;
    r->field[0] = 0;
    buf_init(&r->body, 0);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 0)))
#endif
static void vset(struct smsend_result *r, smsend_error e, const char *fmt, va_list ap)
{
    r->error = e;
    vsnprintf(r->message, sizeof r->message, fmt, ap);
}

void result_fail(struct smsend_result *r, smsend_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(r, e, fmt, ap);
    va_end(ap);
}

void result_message(struct smsend_result *r, const char *text)
{
    size_t n = strlen(text);
    if (n >= sizeof r->message)
        n = sizeof r->message - 1;
    memcpy(r->message, text, n);
    r->message[n] = 0;
}

void result_invalid(struct smsend_result *r, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(r, SMSEND_E_INVALID_REQUEST, fmt, ap);
    va_end(ap);
    r->retryable = 0;
    snprintf(r->field, sizeof r->field, "%s", field);
}
