/* bare.c — the reference of `make bench` (issue 14): the PIN request as a hand-written libcurl
 * loop with nothing around it. One easy handle and, set once before the loop, exactly:
 * CURLOPT_URL, three headers (CURLOPT_HTTPHEADER "user_key: UK", "Access_token: TOK",
 * "Content-Type: application/json"), CURLOPT_POSTFIELDS and a write callback that discards
 * the answer; over HTTPS also CURLOPT_CAINFO (the bench CA). Nothing else: libcurl's defaults
 * for the rest (no User-Agent header, proxy variables read by libcurl on every request, the URL
 * parsed on every request). Per request: curl_easy_perform, then the curl code and the status
 * code (200) are checked. Usage and output: see loop.h. */
#include "loop.h"

static struct curl_slist *headers;

static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    return size * nmemb;
}

static int setup(CURL *e, const char *url, const char *cainfo, const char *body, void **ud)
{
    struct curl_slist *h = NULL;
    (void)ud;
    if (!(h = curl_slist_append(h, "user_key: UK")) || !(h = curl_slist_append(h, "Access_token: TOK")) ||
        !(h = curl_slist_append(h, "Content-Type: application/json")))
        return -1;
    headers = h;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    if (cainfo)
        curl_easy_setopt(e, CURLOPT_CAINFO, cainfo);
    return 0;
}

static int one(CURL *e, void *ud)
{
    (void)ud;
    return loop_check(e, curl_easy_perform(e), "bare");
}

#ifndef BARE_NO_MAIN /* options.c builds on this loop */
int main(int argc, char **argv)
{
    return loop_main(argc, argv, "bare", setup, one);
}
#endif
