/* secret.h — credential buffers that live only in C memory: check, copy in, wipe.
 * Nothing outside secret.c reads the bytes, except http.c when it writes the auth headers. */
#ifndef SMSEND_SECRET_H
#define SMSEND_SECRET_H

#include <stddef.h>
#include <string.h>

#define SMSEND_SECRET_MAX 512 /* bytes: the longest credential accepted, given or answered */

struct secret {
    char *data; /* NUL-terminated copy, NULL when unset */
    size_t len;
};

/* Overwrites memory in a way the compiler may not drop: memset, then an empty asm statement that
 * claims to read the memory (explicit_bzero's own trick, inline: it runs about 30 times a request
 * through libcurl's wiping allocator, mostly on blocks of a few dozen bytes). */
static inline void secure_wipe(void *p, size_t n)
{
    if (!p || !n)
        return;
#if defined(__GNUC__) || defined(__clang__)
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    {
        volatile unsigned char *v = p;
        while (n--)
            *v++ = 0;
    }
#endif
}

/* Checks that bytes are acceptable as a credential: non-empty, at most max bytes, no control
 * characters (no CR/LF/NUL/DEL: no header injection) and, for values that travel in headers
 * (edge_spaces == 0), no leading or trailing space. Returns NULL when fine, else a reason. */
const char *secret_check(const char *p, size_t n, size_t max, int edge_spaces);

/* Replaces the contents (wiping the old ones). 0 on success, -1 when out of memory. */
int secret_set(struct secret *s, const char *p, size_t n);
void secret_clear(struct secret *s);
static inline int secret_isset(const struct secret *s) { return s->data != NULL; }

/* 1 when any set secret of the list occurs in text (to keep library messages clean). */
int secret_found_in(const struct secret *const *list, size_t count, const char *text, size_t n);

#endif
