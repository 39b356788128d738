/* answer.c — plain-text gateway answers (login and checksession).
 * Strict on purpose: anything but the documented shape is a bad_response, never a guess. */
#include <string.h>
#include "answer.h"
#include "secret.h"

static size_t trim_end(const char *p, size_t n)
{
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return n;
}

int answer_login_split(const char *p, size_t n, const char **key, size_t *key_n, const char **secret,
                       size_t *secret_n)
{
    const char *semi, *end;
    if (!p)
        return -1;
    n = trim_end(p, n);
    end = p + n;
    semi = memchr(p, ';', n);
    if (!semi || memchr(semi + 1, ';', (size_t)(end - semi - 1)))
        return -1;
    if (secret_check(p, (size_t)(semi - p), SMSEND_SECRET_MAX, 0) ||
        secret_check(semi + 1, (size_t)(end - semi - 1), SMSEND_SECRET_MAX, 0))
        return -1;
    *key = p;
    *key_n = (size_t)(semi - p);
    *secret = semi + 1;
    *secret_n = (size_t)(end - semi - 1);
    return 0;
}

int answer_bool(const char *p, size_t n)
{
    if (!p)
        return -1;
    n = trim_end(p, n);
    if (n == 4 && memcmp(p, "true", 4) == 0)
        return 1;
    if (n == 5 && memcmp(p, "false", 5) == 0)
        return 0;
    return -1;
}
