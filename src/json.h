/* json.h — JSON writing for request bodies and a small strict reader
 * for the gateway's answers ({"status":...,"error":...,"triesRemaining":N}). */
#ifndef SMSEND_JSON_H
#define SMSEND_JSON_H

#include <stddef.h>

/* Writers into memory the caller has already reserved: at most JSON_STRING_MAX(n) bytes for a
 * string of n bytes (valid UTF-8, checked by callers: quotes, backslashes and control characters
 * are escaped, everything else passes byte for byte), JSON_INT_MAX for an integer. They return
 * the end of what they wrote (nothing is NUL-terminated). */
#define JSON_STRING_MAX(n) ((n) * 6 + 2)
#define JSON_INT_MAX 20
char *json_write_string(char *out, const char *p, size_t n);
char *json_write_int(char *out, long long v);

/* 1 when the answer is exactly {"status":"OK"}, the gateway's usual success: a fast path that
 * saves running the full reader on every successful call. */
int json_is_status_ok(const char *p, size_t n);

#define JSON_TEXT_MAX 200

/* What the gateway's status answers carry; strings are decoded and truncated to fit. */
struct json_status {
    int has_status;
    char status[JSON_TEXT_MAX];
    int has_error;
    char error[JSON_TEXT_MAX];
    int has_tries;
    double tries;
};

/* Parses a whole JSON document strictly (RFC 8259, nesting at most 32 deep, nothing after it
 * but white space). Returns 0 when it is valid and a JSON object, -1 otherwise. Only the
 * top-level members "status", "error" (strings) and "triesRemaining" (number) are kept. */
int json_read_status(const char *p, size_t n, struct json_status *out);

#endif
