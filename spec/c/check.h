/* check.h — the check harness of the plain-C tests in spec/c/: CHECK(cond) counts passes and
 * prints file:line for a failure; each test's main prints "N passed, M failed" from the counts. */
#ifndef SMSEND_SPEC_CHECK_H
#define SMSEND_SPEC_CHECK_H

#include <stdio.h>

static int n_pass, n_fail;

static void check_impl(int ok, const char *what, const char *file, int line)
{
    if (ok) {
        n_pass++;
        return;
    }
    n_fail++;
    printf("FAIL %s:%d: %s\n", file, line, what);
}

#define CHECK(cond) check_impl((cond) ? 1 : 0, #cond, __FILE__, __LINE__)

#endif
