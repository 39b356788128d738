/* fuzz_answer.c — the plain-text answers: answer_login_split (USER_KEY;SECRET) and
 * answer_bool (true/false). Parts must lie inside the input, hold no ';' and no control
 * character, and both functions must agree with a straightforward reference reading. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "answer.h"
#include "secret.h"
#include "fuzz_util.h"

static int trailing_ws(unsigned char c)
{
    return c == '\n' || c == '\r' || c == ' ' || c == '\t';
}

/* The rule, read from answer.h and secret.h: strip trailing CR/LF/space/tab, exactly one ';',
 * each side 1..SMSEND_SECRET_MAX bytes, no byte < 0x20 or 0x7f, no space at either edge. */
static int ref_part_ok(const unsigned char *p, size_t n)
{
    size_t i;
    if (n == 0 || n > SMSEND_SECRET_MAX || p[0] == ' ' || p[n - 1] == ' ')
        return 0;
    for (i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == ';')
            return 0;
    return 1;
}

static int ref_login(const unsigned char *p, size_t n, size_t *semi)
{
    size_t i, count = 0;
    while (n && trailing_ws(p[n - 1]))
        n--;
    for (i = 0; i < n; i++)
        if (p[i] == ';') {
            count++;
            *semi = i;
        }
    if (count != 1)
        return -1;
    return ref_part_ok(p, *semi) && ref_part_ok(p + *semi + 1, n - *semi - 1) ? 0 : -1;
}

static int ref_bool(const unsigned char *p, size_t n)
{
    while (n && trailing_ws(p[n - 1]))
        n--;
    if (n == 4 && memcmp(p, "true", 4) == 0)
        return 1;
    if (n == 5 && memcmp(p, "false", 5) == 0)
        return 0;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *key = NULL, *secret = NULL;
    size_t key_n = 0, secret_n = 0, semi = 0, i;
    int rc = answer_login_split(in, size, &key, &key_n, &secret, &secret_n);
    int want = ref_login(data, size, &semi);

    FUZZ_ASSERT(rc == want);
    if (rc == 0) {
        /* views into the input, in order, around the single ';' */
        FUZZ_ASSERT(key == in && key_n == semi);
        FUZZ_ASSERT(secret == in + semi + 1);
        FUZZ_ASSERT(secret_n >= 1 && secret_n <= SMSEND_SECRET_MAX);
        FUZZ_ASSERT(key_n >= 1 && key_n <= SMSEND_SECRET_MAX);
        FUZZ_ASSERT(secret + secret_n <= in + size);
        for (i = 0; i < key_n; i++)
            FUZZ_ASSERT(key[i] != ';' && (unsigned char)key[i] >= 0x20 && key[i] != 0x7f);
        for (i = 0; i < secret_n; i++)
            FUZZ_ASSERT(secret[i] != ';' && (unsigned char)secret[i] >= 0x20 && secret[i] != 0x7f);
        FUZZ_ASSERT(key[0] != ' ' && key[key_n - 1] != ' ' && secret[0] != ' ' && secret[secret_n - 1] != ' ');
        /* only trailing white space is left over */
        for (i = (size_t)(secret + secret_n - in); i < size; i++)
            FUZZ_ASSERT(trailing_ws(data[i]));
    }

    rc = answer_bool(in, size);
    FUZZ_ASSERT(rc == ref_bool(data, size));
    return 0;
}
