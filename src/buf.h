/* buf.h — a growable byte buffer with an optional hard cap (the strbuf idea from lua-cjson).
 * Append functions report failure instead of aborting, so callers can map it to an error code. */
#ifndef SMSEND_BUF_H
#define SMSEND_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
    char *data;
    size_t len;
    size_t size;
    size_t cap;     /* 0 = unlimited, else the most bytes it will ever hold */
    int overflow;   /* set when an append was refused because of cap */
};

void buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);
/* Frees after overwriting the contents (for buffers that held secrets). */
void buf_wipe_free(struct buf *b);
/* Makes room for n more bytes plus a terminating NUL; 0 on success, -1 on failure. */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
/* Keeps the allocation, forgets the contents. */
static inline void buf_reset(struct buf *b) { b->len = 0; b->overflow = 0; if (b->data) b->data[0] = 0; }
/* NUL-terminated view (the buffer always keeps a NUL after len once allocated). */
static inline const char *buf_cstr(const struct buf *b) { return b->data ? b->data : ""; }

#endif
