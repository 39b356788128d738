/* buf.c — growable byte buffer with a cap; see buf.h.
 * Growth doubles so appends are amortised O(1); every buffer keeps a trailing NUL. */
#include <stdlib.h>
#include "buf.h"
#include "secret.h"

void buf_init(struct buf *b, size_t cap)
{
    b->data = NULL;
    b->len = b->size = 0;
    b->cap = cap;
    b->overflow = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->size = 0;
}

void buf_wipe_free(struct buf *b)
{
    if (b->data)
        secure_wipe(b->data, b->size);
    buf_free(b);
}

int buf_reserve(struct buf *b, size_t n)
{
    size_t need, size;
    char *p;
    if (b->cap && (n > b->cap || b->len > b->cap - n)) {
        b->overflow = 1;
        return -1;
    }
    if (n > (size_t)-1 - b->len - 1)
        return -1;
    need = b->len + n + 1;
    if (need <= b->size)
        return 0;
    size = b->size ? b->size : 64;
    while (size < need)
        size = size > ((size_t)-1) / 2 ? need : size * 2;
    /* Grown by allocate-copy-wipe-free, never realloc: these buffers hold request bodies with
     * PINs, login URLs with passwords and answers with keys, and realloc may leave the old block
     * in the heap unwiped. Growth is rare (sizes double), so the copy costs nothing per call. */
    p = malloc(size);
    if (!p)
        return -1;
    if (b->data) {
        memcpy(p, b->data, b->len + 1);
        secure_wipe(b->data, b->size);
        free(b->data);
    }
    b->data = p;
    b->size = size;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}
