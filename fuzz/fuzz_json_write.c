/* fuzz_json_write.c — json_write_string round trip: for valid UTF-8 input, the literal it
 * writes must be read back by json_read_status as exactly the input (truncated to the
 * reader's buffer at a character boundary). Also checks utf8_count against a reference.
 * Each input is tried as it is and behind data[0] bytes of padding (see the end). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "buf.h"
#include "fuzz_util.h"
#include "json.h"
#include "utf8.h"

/* Appends a JSON string literal the way the request writers do: one reservation, then writes. */
static int json_put_string(struct buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, JSON_STRING_MAX(n)) != 0)
        return -1;
    b->len = (size_t)(json_write_string(b->data + b->len, s, n) - b->data);
    b->data[b->len] = 0;
    return 0;
}

static void round_trip(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct buf b;
    struct json_status js;
    long count = utf8_count(in, size);
    size_t i, want;

    /* differential: utf8_count agrees with an independent decoder */
    FUZZ_ASSERT(count == ref_utf8_count(data, size));
    if (count < 0)
        return;

    buf_init(&b, 0);
    FUZZ_ASSERT(buf_append(&b, "{\"error\":", 9) == 0);
    FUZZ_ASSERT(json_put_string(&b, in, size) == 0);
    FUZZ_ASSERT(b.data[b.len] == 0);
    /* the literal: quoted, no raw control character, only the documented escapes */
    FUZZ_ASSERT(b.len >= 9 + 2 && b.data[9] == '"');
    for (i = 10; i < b.len - 1; i++) {
        unsigned char c = (unsigned char)b.data[i];
        FUZZ_ASSERT(c >= 0x20);
        FUZZ_ASSERT(c != '"');
        if (c == '\\') {
            c = (unsigned char)b.data[++i];
            FUZZ_ASSERT(i < b.len - 1);
            FUZZ_ASSERT(strchr("\"\\nrtbfu", c) != NULL && c != 0);
            if (c == 'u') {
                FUZZ_ASSERT(i + 4 < b.len - 1 && memcmp(b.data + i + 1, "00", 2) == 0);
                i += 4;
            }
        }
    }
    FUZZ_ASSERT(b.data[b.len - 1] == '"');
    /* what comes out is still valid UTF-8 with the same non-ASCII bytes */
    FUZZ_ASSERT(ref_utf8_count(b.data, b.len) >= 0);
    FUZZ_ASSERT(buf_append(&b, "}", 1) == 0);

    FUZZ_ASSERT(json_read_status(b.data, b.len, &js) == 0);
    FUZZ_ASSERT(js.has_error && !js.has_status && !js.has_tries);
    /* every input byte decodes to itself, so the text read back is a prefix of the input:
     * the longest one of whole characters that fits (JSON_TEXT_MAX - 1 bytes + NUL) */
    want = ref_utf8_prefix(data, size, JSON_TEXT_MAX - 1);
    if (!memchr(data, 0, size)) {
        if (strlen(js.error) != want || memcmp(js.error, data, want) != 0) {
            fprintf(stderr, "json round trip: input %zu bytes, expected %zu bytes back, got %zu\n", size, want,
                    strlen(js.error));
            abort();
        }
    } else {
        /* with NULs (written as \u0000) the bytes are still all there */
        FUZZ_ASSERT(memcmp(js.error, data, want) == 0 && js.error[want] == 0);
    }

    /* the same literal as a status value */
    buf_reset(&b);
    FUZZ_ASSERT(buf_append(&b, "{\"status\":", 10) == 0);
    FUZZ_ASSERT(json_put_string(&b, in, size) == 0);
    FUZZ_ASSERT(buf_append(&b, "}", 1) == 0);
    FUZZ_ASSERT(json_read_status(b.data, b.len, &js) == 0);
    /* a status holding a NUL is not captured at all (it could pass for "OK" as a C string) */
    if (memchr(in, 0, size))
        FUZZ_ASSERT(!js.has_status);
    else
        FUZZ_ASSERT(js.has_status && memcmp(js.status, data, want) == 0 && js.status[want] == 0);
    buf_free(&b);

    /* a capped buffer with room for the worst case (every byte as \u00XX) takes it whole */
    {
        struct buf c, d;
        buf_init(&c, size * 6 + 2);
        buf_init(&d, 0);
        FUZZ_ASSERT(json_put_string(&c, in, size) == 0 && !c.overflow);
        FUZZ_ASSERT(json_put_string(&d, in, size) == 0);
        FUZZ_ASSERT(c.len == d.len && memcmp(c.data, d.data, d.len) == 0);
        /* and one byte less than it needs refuses it whole */
        if (d.len > 1) {
            struct buf e;
            buf_init(&e, d.len - 1);
            FUZZ_ASSERT(json_put_string(&e, in, size) == -1 && e.overflow && e.len == 0);
            buf_free(&e);
        }
        buf_free(&c);
        buf_free(&d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    round_trip(data, size);
    /* Again behind data[0] bytes of ASCII padding, so that short inputs reach the reader's
     * truncation point (JSON_TEXT_MAX - 1 bytes) with their interesting part. */
    if (size >= 1) {
        size_t pad = data[0];
        uint8_t *p = malloc(pad + size - 1 + 1);
        if (!p)
            abort();
        memset(p, 'p', pad);
        memcpy(p + pad, data + 1, size - 1);
        round_trip(p, pad + size - 1);
        free(p);
    }
    return 0;
}
