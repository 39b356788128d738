/* fuzz_json_read.c — json_read_status on arbitrary bytes (the gateway's answers are untrusted).
 * Besides memory safety (ASan/UBSan) it checks invariants of an accepted document. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "fuzz_util.h"
#include "json.h"

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void check_text(const char *s, size_t cap, int has)
{
    const char *nul = memchr(s, 0, cap);
    FUZZ_ASSERT(nul != NULL); /* NUL-terminated inside its array */
    if (!has)
        FUZZ_ASSERT(s[0] == 0);
    /* decoded text up to the first NUL is whole characters of valid UTF-8 */
    FUZZ_ASSERT(ref_utf8_count(s, (size_t)(nul - s)) >= 0);
}

static int parse_copy(const char *prefix, const uint8_t *data, size_t size, const char *suffix,
                      struct json_status *js)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    char *p = malloc(a + size + b + 1);
    int rc;
    if (!p)
        abort();
    memcpy(p, prefix, a);
    if (size)
        memcpy(p + a, data, size);
    memcpy(p + a + size, suffix, b);
    rc = json_read_status(p, a + size + b, js);
    free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_status js, again;
    size_t first = 0, last = size;
    int rc = json_read_status((const char *)data, size, &js);

    FUZZ_ASSERT(rc == 0 || rc == -1);
    /* even a rejected document leaves NUL-terminated text (the contents are unspecified) */
    FUZZ_ASSERT(memchr(js.status, 0, sizeof js.status) && memchr(js.error, 0, sizeof js.error));
    /* the same bytes give the same answer */
    FUZZ_ASSERT(json_read_status((const char *)data, size, &again) == rc);
    if (rc != 0)
        return 0;
    check_text(js.status, sizeof js.status, js.has_status);
    check_text(js.error, sizeof js.error, js.has_error);
    /* a kept tries count is always a plausible one: finite, 0 to 1e6 */
    if (js.has_tries)
        FUZZ_ASSERT(!isnan(js.tries) && js.tries >= 0 && js.tries <= 1e6);
    FUZZ_ASSERT(again.has_status == js.has_status && again.has_error == js.has_error &&
                again.has_tries == js.has_tries);
    FUZZ_ASSERT(strcmp(again.status, js.status) == 0 && strcmp(again.error, js.error) == 0);

    /* an accepted document is an object: '{' first and '}' last, white space aside */
    while (first < size && is_ws(data[first]))
        first++;
    while (last > first && is_ws(data[last - 1]))
        last--;
    FUZZ_ASSERT(first < size && data[first] == '{');
    FUZZ_ASSERT(last > first && data[last - 1] == '}');

    /* without its closing brace it is truncated, hence invalid */
    FUZZ_ASSERT(json_read_status((const char *)data, last - 1, &again) == -1);
    /* trailing garbage is refused, surrounding white space is not */
    FUZZ_ASSERT(parse_copy("", data, size, "x", &again) == -1);
    FUZZ_ASSERT(parse_copy("", data, size, "{}", &again) == -1);
    FUZZ_ASSERT(parse_copy(" \r\n\t", data, size, "\n ", &again) == 0);
    FUZZ_ASSERT(again.has_status == js.has_status && strcmp(again.status, js.status) == 0);
    FUZZ_ASSERT(again.has_error == js.has_error && strcmp(again.error, js.error) == 0);
    FUZZ_ASSERT(again.has_tries == js.has_tries);
    /* an object is not a valid top-level array member for this reader */
    FUZZ_ASSERT(parse_copy("[", data, size, "]", &again) == -1);

    /* nested one level down, nothing may be captured (when the nesting is still allowed) */
    if (parse_copy("{\"x\":[", data, size, "]}", &again) == 0)
        FUZZ_ASSERT(!again.has_status && !again.has_error && !again.has_tries);
    if (parse_copy("{\"x\":", data, size, "}", &again) == 0)
        FUZZ_ASSERT(!again.has_status && !again.has_error && !again.has_tries);
    return 0;
}
