/* control_get.h — the thread harnesses' one way to read a sandbox control endpoint
 * (http://127.0.0.1:PORT/_sandbox/...) with libcurl directly: the whole answer, growing as needed
 * up to 64 MiB. Header-only: each harness is one C file. */
#ifndef SMSEND_CONTROL_GET_H
#define SMSEND_CONTROL_GET_H

#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

struct control_answer {
    char *data; /* NUL-terminated, NULL when empty */
    size_t len, cap;
    int overflow;
};

static size_t control_on_data(char *p, size_t size, size_t n, void *ud)
{
    struct control_answer *s = ud;
    size_t len = size * n;
    if (s->overflow)
        return len;
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *d;
        while (cap < s->len + len + 1)
            cap *= 2;
        if (cap > ((size_t)64 << 20) || !(d = realloc(s->data, cap))) {
            s->overflow = 1;
            return len;
        }
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, len);
    s->len += len;
    s->data[s->len] = 0;
    return len;
}

/* GETs url into *out (free out->data after); returns the HTTP status, 0 when nothing came. */
static long control_get(const char *url, long timeout_s, struct control_answer *out)
{
    long status = 0;
    CURL *e = curl_easy_init();
    memset(out, 0, sizeof *out);
    if (!e)
        return 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, control_on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    return status;
}

#endif
