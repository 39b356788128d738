/* secret.c — credential storage: private copies, checks, wiping (secure_wipe, in secret.h),
 * finding them in text. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "secret.h"
#include "utf8.h"

const char *secret_check(const char *p, size_t n, size_t max, int edge_spaces)
{
    if (n == 0)
        return "is empty";
    if (n > max)
        return "is too long";
    if (utf8_has_ctl(p, n, 0))
        return "contains a control character";
    if (!edge_spaces && (p[0] == ' ' || p[n - 1] == ' '))
        return "has leading or trailing spaces";
    return NULL;
}

int secret_set(struct secret *s, const char *p, size_t n)
{
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, p, n);
    copy[n] = 0;
    secret_clear(s);
    s->data = copy;
    s->len = n;
    return 0;
}

void secret_clear(struct secret *s)
{
    if (s->data) {
        secure_wipe(s->data, s->len + 1);
        free(s->data);
    }
    s->data = NULL;
    s->len = 0;
}

int secret_found_in(const struct secret *const *list, size_t count, const char *text, size_t n)
{
    size_t i;
    for (i = 0; i < count; i++) {
        const struct secret *s = list[i];
        if (s && s->data && s->len && s->len <= n && memmem(text, n, s->data, s->len))
            return 1;
    }
    return 0;
}
