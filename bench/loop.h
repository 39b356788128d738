/* loop.h — the harness the C reference loops of `make bench` share (bare.c, limit.c): arguments,
 * the warm-up request, the timed runs and the lines run.lua reads. Each loop gives two functions:
 * set-up (everything set once on its easy handle) and one request.
 *
 * Usage: <loop> BASE_URL CAINFO|- N RUNS BODY
 *   POSTs BODY to <BASE_URL>2fa/request. RUNS > 0: 1 warm-up request, then RUNS timed runs of N
 *   requests, printing "run <i> wall=<s> cpu=<s> rss_kb=<VmRSS>" per run and then "hwm_kb=<VmHWM>".
 *   RUNS = 0: N untimed requests (for callgrind), printing "done <N>". Exit 1 on a failed request. */
#ifndef BENCH_LOOP_H
#define BENCH_LOOP_H

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

/* set-up: returns 0, or -1 (the loop exits 1); one: returns 0, or -1 after a line on stderr */
typedef int (*loop_setup_fn)(CURL *e, const char *url, const char *cainfo, const char *body, void **ud);
typedef int (*loop_one_fn)(CURL *e, void *ud);

static double loop_now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long loop_status_kb(const char *key)
{
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, k) == 0 && line[k] == ':') {
            v = strtol(line + k + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Checks the transfer and the status code every loop needs to see (the write callbacks differ). */
static int loop_check(CURL *e, CURLcode c, const char *name)
{
    long status = 0;
    if (c != CURLE_OK) {
        fprintf(stderr, "%s: %s\n", name, curl_easy_strerror(c));
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        fprintf(stderr, "%s: HTTP status %ld\n", name, status);
        return -1;
    }
    return 0;
}

static int loop_main(int argc, char **argv, const char *name, loop_setup_fn setup, loop_one_fn one)
{
    char url[2048];
    long n, runs, i, r;
    void *ud = NULL;
    CURL *e;
    if (argc < 6) {
        fprintf(stderr, "usage: %s BASE_URL CAINFO|- N RUNS BODY\n", name);
        return 2;
    }
    n = atol(argv[3]);
    runs = atol(argv[4]);
    snprintf(url, sizeof url, "%s2fa/request", argv[1]);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(e = curl_easy_init()))
        return 1;
    if (setup(e, url, strcmp(argv[2], "-") ? argv[2] : NULL, argv[5], &ud) != 0)
        return 1;
    if (runs <= 0) {
        for (i = 0; i < n; i++)
            if (one(e, ud))
                return 1;
        printf("done %ld\n", n);
    } else {
        if (one(e, ud)) /* warm-up: connect (and TLS handshake) outside the timed runs */
            return 1;
        for (r = 1; r <= runs; r++) {
            double w0 = loop_now(CLOCK_MONOTONIC), c0 = loop_now(CLOCK_PROCESS_CPUTIME_ID);
            for (i = 0; i < n; i++)
                if (one(e, ud))
                    return 1;
            printf("run %ld wall=%.6f cpu=%.6f rss_kb=%ld\n", r, loop_now(CLOCK_MONOTONIC) - w0,
                   loop_now(CLOCK_PROCESS_CPUTIME_ID) - c0, loop_status_kb("VmRSS"));
        }
        printf("hwm_kb=%ld\n", loop_status_kb("VmHWM"));
    }
    curl_easy_cleanup(e);
    curl_global_cleanup();
    return 0;
}

#endif
