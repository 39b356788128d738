/* http.h — the libcurl transport: one reused easy handle per client, capped answers,
 * and the mapping of curl outcomes to the stable error codes. Never calls into Lua. */
#ifndef SMSEND_HTTP_H
#define SMSEND_HTTP_H

#include <stddef.h>
#include <curl/curl.h>
#include "buf.h"
#include "result.h"
#include "secret.h"

#define HTTP_BODY_CAP (64 * 1024)
#define HTTP_HEADER_CAP (32 * 1024) /* header bytes of one answer */
#define HTTP_HEADER_LINES 200
#define HTTP_MAX_SOCKETS 8 /* sockets a handle can hold open at once that we keep track of */

enum http_method { HTTP_NONE = 0, HTTP_GET, HTTP_POST };

struct http_options {
    long timeout_ms;
    long connect_timeout_ms;
    const char *cainfo;     /* NULL: system default */
    const char *capath;     /* NULL: system default */
    const char *proxy;      /* NULL: libcurl's usual proxy variables, read once by http_open */
    const char *user_agent; /* full header value */
    int clear_text;         /* http:// base: loopback sockets only, never through a proxy */
};

struct http_conn {
    CURL *easy;
    struct curl_slist *auth_headers;  /* user_key + key + JSON content type */
    struct curl_slist *plain_headers; /* for login: no credentials at all */
    struct curl_slist *cur_headers;   /* what the handle is set to now */
    const char *cur_url;              /* pointer last given to CURLOPT_URL */
    enum http_method cur_method;
    const char *cur_body;             /* CURLOPT_POSTFIELDS / POSTFIELDSIZE as set now */
    size_t cur_body_len;
    struct buf resp;
    unsigned fork_generation;         /* process the connection belongs to */
    struct http_options opts;         /* owned copies of the strings */
    char *noproxy;                    /* no_proxy as read by http_open, or NULL */
    long cur_timeout_ms;              /* CURLOPT_TIMEOUT_MS as set now */
    int socks[HTTP_MAX_SOCKETS];      /* sockets opened by this handle, for fork() hygiene */
    int nsocks;
    int prereq_calls;                 /* times libcurl was about to send in this perform */
    size_t header_bytes;              /* of the answer in progress, against HTTP_HEADER_CAP */
    int header_lines;
    int header_overflow;              /* the answer's headers passed the caps */
    int refused_socket;               /* the open-socket guard refused an address */
    char errbuf[CURL_ERROR_SIZE];
};

/* Once per process, thread-safe: curl_global_init and the fork watch. 0 on success. */
int http_global_init(void);
/* "libcurl/x.y.z" of the library actually loaded. */
const char *http_curl_version(void);

/* 1 for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
struct sockaddr;
int http_addr_is_loopback(const struct sockaddr *sa);

int http_open(struct http_conn *h, const struct http_options *o, char *err, size_t errlen);
void http_close(struct http_conn *h);

/* (Re)builds the credential headers; key_name is "Session_key" or "Access_token". */
int http_set_auth(struct http_conn *h, const struct secret *user_key, const char *key_name,
                  const struct secret *key);

struct http_call {
    enum http_method method;
    const char *url;
    int url_is_scratch;     /* URL text changes between calls at the same address */
    int with_auth;          /* send the credential headers */
    long timeout_ms;        /* 0: the configured timeout; else what is left of the call's */
    const char *body;
    size_t body_len;
    const struct secret *const *secrets; /* kept out of messages */
    size_t nsecrets;
};

/* Performs one exchange. On a transport failure fills r (error, message, retryable) and
 * returns -1; when an HTTP answer arrived sets r->status and r->body (a view of h->resp)
 * and returns 0, leaving the interpretation of the status to the caller. */
int http_perform(struct http_conn *h, const struct http_call *call, struct smsend_result *r);

/* Seconds from a Retry-After header of the last answer, or -1. */
double http_retry_after(struct http_conn *h);

#endif
