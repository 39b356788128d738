/* limit.c — the "C limit" of `make bench`: the request the module makes, done directly with
 * libcurl in a keep-alive loop, with nothing else around it.
 *
 * Per request it does exactly what the smsend module's hot path has to do at minimum:
 *   POST <base>2fa/request, HTTP/1.1, one reused easy handle (so one connection and one TLS
 *   session for the whole loop), headers "user_key: UK", "Access_token: TOK",
 *   "Content-Type: application/json" (plus libcurl's own Host, Accept and the same User-Agent
 *   string as the module: "smsend-lua/<v> libcurl/<v>"), the same JSON body, NOSIGNAL,
 *   TCP keepalive, timeouts, peer+host verification with the bench CA, a write callback that
 *   copies the answer into a growable buffer, then the status code and a check for
 *   "status":"OK" in the answer.
 * Everything that does not change between requests (URL, header list, body, options) is set
 * once before the loop: that is what makes it the limit. It does not validate fields, build
 * JSON, or touch Lua.
 *
 * Usage: limit BASE_URL CAINFO|- N RUNS [BODY]
 *   Does RUNS timed runs of N requests after 1 warm-up request. Prints one line per run:
 *   "run <i> wall=<s> cpu=<s> rss_kb=<VmRSS>", then "hwm_kb=<VmHWM>". RUNS=0: N untimed requests
 *   (for callgrind), printing only "done <N>". Exit 1 on any failed request. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#define DEFAULT_BODY \
    "{\"recipient\":\"+393471234567\",\"senderName\":\"MyApp\",\"expiry\":5,\"messageBody\":\"Your code is %PIN%\"}"
#define MODULE_VERSION "0.1.0" /* keep in step with SMSEND_VERSION: same User-Agent bytes */

struct sink {
    char *data;
    size_t len, size;
};

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (s->len + n + 1 > s->size) {
        size_t ns = s->size ? s->size : 64;
        char *q;
        while (ns < s->len + n + 1)
            ns *= 2;
        if (!(q = realloc(s->data, ns)))
            return 0;
        s->data = q;
        s->size = ns;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = 0;
    return n;
}

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long proc_status_kb(const char *key)
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

static int one(CURL *e, struct sink *s)
{
    long status = 0;
    CURLcode c;
    s->len = 0;
    c = curl_easy_perform(e);
    if (c != CURLE_OK) {
        fprintf(stderr, "limit: %s\n", curl_easy_strerror(c));
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || !s->len || !memmem(s->data, s->len, "\"status\":\"OK\"", 13)) {
        fprintf(stderr, "limit: unexpected answer %ld\n", status);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *base, *cainfo, *body = DEFAULT_BODY;
    char url[2048], ua[128];
    long n, runs, i, r;
    struct sink s = {NULL, 0, 0};
    struct curl_slist *h = NULL;
    const curl_version_info_data *v;
    CURL *e;
    if (argc < 5) {
        fprintf(stderr, "usage: limit BASE_URL CAINFO|- N RUNS [BODY]\n");
        return 2;
    }
    base = argv[1];
    cainfo = strcmp(argv[2], "-") ? argv[2] : NULL;
    n = atol(argv[3]);
    runs = atol(argv[4]);
    if (argc > 5)
        body = argv[5];
    snprintf(url, sizeof url, "%s2fa/request", base);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    v = curl_version_info(CURLVERSION_NOW);
    snprintf(ua, sizeof ua, "smsend-lua/%s libcurl/%s", MODULE_VERSION, v->version);
    h = curl_slist_append(h, "user_key: UK");
    h = curl_slist_append(h, "Access_token: TOK");
    h = curl_slist_append(h, "Content-Type: application/json");
    e = curl_easy_init();
    if (!e || !h)
        return 1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, ua);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (cainfo)
        curl_easy_setopt(e, CURLOPT_CAINFO, cainfo);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);

    if (runs <= 0) {
        for (i = 0; i < n; i++)
            if (one(e, &s))
                return 1;
        printf("done %ld\n", n);
    } else {
        if (one(e, &s)) /* warm-up: connect (and TLS handshake) outside the timed runs */
            return 1;
        for (r = 1; r <= runs; r++) {
            double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            for (i = 0; i < n; i++)
                if (one(e, &s))
                    return 1;
            printf("run %ld wall=%.6f cpu=%.6f rss_kb=%ld\n", r, now(CLOCK_MONOTONIC) - w0,
                   now(CLOCK_PROCESS_CPUTIME_ID) - c0, proc_status_kb("VmRSS"));
        }
        printf("hwm_kb=%ld\n", proc_status_kb("VmHWM"));
    }
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    free(s.data);
    curl_global_cleanup();
    return 0;
}
