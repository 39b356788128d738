/* limit.c — the second reference row of `make bench` ("C limit"): the bare loop (bare.c) plus
 * the options the module sets on its handles, all set once before the loop, and the answer
 * copied out. It was the only reference before issue 14; it stays to show what those options cost
 * libcurl, and because its request bytes are the module's (the same User-Agent line).
 *
 * Set once: CURLOPT_URL, the header list ("user_key: UK", "Access_token: TOK",
 * "Content-Type: application/json"), POSTFIELDSIZE and POSTFIELDS, NOSIGNAL, TIMEOUT_MS and
 * CONNECTTIMEOUT_MS (10 s / 5 s, the module's defaults), FOLLOWLOCATION 0, SSL_VERIFYPEER 1,
 * SSL_VERIFYHOST 2, HTTP_VERSION 1.1, TCP_KEEPALIVE, PROTOCOLS_STR "http,https", CAINFO (HTTPS),
 * and CURLOPT_USERAGENT "smsend-lua/<v> libcurl/<v>" (the module's string, which the module now
 * sends as a header-list entry instead). Per request: a write callback copies the answer into a
 * growable buffer; then the curl code, the status code and a memmem for "status":"OK".
 * Usage and output: see loop.h. */
#include "loop.h"

#define MODULE_VERSION "0.1.0" /* keep in step with SMSEND_VERSION: same User-Agent bytes */

struct sink {
    char *data;
    size_t len, size;
};

static struct sink answer;
static struct curl_slist *headers;
static char ua[128];

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

static int setup(CURL *e, const char *url, const char *cainfo, const char *body, void **ud)
{
    struct curl_slist *h = NULL;
    if (!(h = curl_slist_append(h, "user_key: UK")) || !(h = curl_slist_append(h, "Access_token: TOK")) ||
        !(h = curl_slist_append(h, "Content-Type: application/json")))
        return -1;
    headers = h;
    snprintf(ua, sizeof ua, "smsend-lua/%s libcurl/%s", MODULE_VERSION, curl_version_info(CURLVERSION_NOW)->version);
    *ud = &answer;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
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
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    return 0;
}

static int one(CURL *e, void *ud)
{
    struct sink *s = ud;
    s->len = 0;
    if (loop_check(e, curl_easy_perform(e), "limit") != 0)
        return -1;
    if (!s->len || !memmem(s->data, s->len, "\"status\":\"OK\"", 13)) {
        fprintf(stderr, "limit: unexpected answer\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    return loop_main(argc, argv, "limit", setup, one);
}
