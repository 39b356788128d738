/* result.c — error-code names (from errors.def) and message helpers for struct smsend_result.
 * The names are the public contract: never rename one. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "json.h"
#include "result.h"

static const struct {
    const char *name;
    enum smsend_retry retryable;
} codes[SMSEND_E__COUNT] = {
    [SMSEND_OK] = {NULL, SMSEND_RETRY_NO},
#define ERR(constant, name, retryable) [SMSEND_E_##constant] = {#name, SMSEND_RETRY_##retryable},
#include "errors.def"
#undef ERR
};

const char *smsend_error_name(smsend_error e)
{
    return (unsigned)e < SMSEND_E__COUNT ? codes[e].name : "unexpected_status";
}

enum smsend_retry smsend_error_retryable(smsend_error e)
{
    return (unsigned)e < SMSEND_E__COUNT ? codes[e].retryable : SMSEND_RETRY_NO;
}

int result_body_is_ok(const struct smsend_result *r)
{
    return r->body.data && json_is_status_ok(r->body.data, r->body.len);
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
