/* http.c — libcurl transport for the gateway calls (see http.h).
 * Options are set once per handle; a call only touches what differs from the previous call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "http.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_status = -1;
static char curl_version_text[48];
/* Bumped in every forked child: a connection opened before a fork belongs to the parent. */
static volatile unsigned fork_generation;

static void on_fork_child(void)
{
    fork_generation++;
}

/* libcurl's allocations go through these when this module is the first to initialise libcurl
 * in the process: every block is wiped before it goes back to the heap, and a block that must
 * grow moves by allocate-copy-wipe-free, so libcurl's copies of header lines, the login URL and
 * the login answer do not linger in freed memory. (If another part of the process initialised
 * libcurl first, curl_global_init_mem changes nothing and libcurl's own allocator stays.) */
static void wiping_free(void *p)
{
    if (p) {
        secure_wipe(p, malloc_usable_size(p));
        free(p);
    }
}

static void *wiping_realloc(void *p, size_t n)
{
    size_t have;
    void *q;
    if (!p)
        return malloc(n);
    have = malloc_usable_size(p);
    if (n <= have && n > 0)
        return p; /* fits where it is: nothing left behind */
    if (n == 0) {
        wiping_free(p);
        return NULL;
    }
    if (!(q = malloc(n)))
        return NULL;
    memcpy(q, p, have);
    wiping_free(p);
    return q;
}

/* libcurl (its allocator hooks) and pthread_atfork keep pointers into this module for the rest of
 * the process, so the module must never be unloaded, even when the Lua state that loaded it
 * closes and dlcloses it: pin it in memory. (Linked statically, this finds the host: harmless.) */
static void pin_module(void)
{
    Dl_info info;
    if (dladdr((void *)pin_module, &info) && info.dli_fname)
        (void)dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
}

static void global_init_once(void)
{
    const curl_version_info_data *v;
    pin_module();
    global_status = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiping_free, wiping_realloc, strdup,
                                         calloc) == CURLE_OK ? 0 : -1;
    pthread_atfork(NULL, NULL, on_fork_child);
    v = curl_version_info(CURLVERSION_NOW);
    snprintf(curl_version_text, sizeof curl_version_text, "libcurl/%s", v && v->version ? v->version : "?");
}

int http_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_status;
}

const char *http_curl_version(void)
{
    http_global_init();
    return curl_version_text;
}

/* Counts the answer's header lines and bytes: a flood or an oversized block of headers is an
 * answer that cannot be read (bad_response), not a memory or network failure. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct http_conn *h = ud;
    size_t n = size * nmemb;
    (void)data;
    h->header_bytes += n;
    if (++h->header_lines > HTTP_HEADER_LINES || h->header_bytes > HTTP_HEADER_CAP) {
        h->header_overflow = 1;
        return 0;
    }
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct http_conn *h = ud;
    size_t n = size * nmemb;
    if (buf_append(&h->resp, data, n) != 0) {
        /* over the cap: keep what fits, then stop libcurl (CURLE_WRITE_ERROR) */
        if (h->resp.overflow && h->resp.len < h->resp.cap)
            buf_append(&h->resp, data, h->resp.cap - h->resp.len);
        h->resp.overflow = 1;
        return 0;
    }
    return n;
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* Called right before libcurl writes a request. A second call within one perform means libcurl
 * is silently resending on a fresh connection after a reused one died: every request of this
 * module is a POST the gateway may already have acted on, or a login, so it is never resent. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
    struct http_conn *h = ud;
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    if (h->prereq_calls++ > 0)
        return CURL_PREREQFUNC_ABORT;
    return CURL_PREREQFUNC_OK;
}
#endif

/* libcurl opens and closes its sockets through these two, so the handle knows its sockets:
 * after fork() the child must not shut down TLS on a socket the parent still uses. */
int http_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
    }
    return 0;
}

/* Second line of the clear-text rule: whatever the URL parser made of the host, an http:// client
 * never opens a socket to an address outside the loopback ranges. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct http_conn *h = ud;
    curl_socket_t s;
    (void)purpose;
    if (h->opts.clear_text && !http_addr_is_loopback(&a->addr)) {
        h->refused_socket = 1;
        return CURL_SOCKET_BAD;
    }
    s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s != CURL_SOCKET_BAD && h->nsocks < HTTP_MAX_SOCKETS)
        h->socks[h->nsocks++] = (int)s;
    return s;
}

static int on_close_socket(void *ud, curl_socket_t s)
{
    struct http_conn *h = ud;
    int i;
    for (i = 0; i < h->nsocks; i++) {
        if (h->socks[i] == (int)s) {
            h->socks[i] = h->socks[--h->nsocks];
            break;
        }
    }
    return close((int)s);
}

/* In a forked child: point every inherited socket at /dev/null, so that cleaning up the
 * inherited handle (TLS close_notify, reads) cannot touch the parent's connection. */
static void detach_inherited(struct http_conn *h)
{
    int i, devnull;
    if (h->fork_generation == fork_generation || !h->nsocks)
        return;
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (i = 0; i < h->nsocks && devnull >= 0; i++)
        dup2(devnull, h->socks[i]);
    if (devnull >= 0)
        close(devnull);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_opts(struct http_options *o)
{
    free((char *)o->cainfo);
    free((char *)o->capath);
    if (o->proxy) /* a proxy URL may carry a proxy password */
        secure_wipe((char *)o->proxy, strlen(o->proxy));
    free((char *)o->proxy);
    free((char *)o->user_agent);
    memset(o, 0, sizeof *o);
}

static void wipe_slist(struct curl_slist **l)
{
    struct curl_slist *p;
    for (p = *l; p; p = p->next)
        if (p->data)
            secure_wipe(p->data, strlen(p->data));
    curl_slist_free_all(*l);
    *l = NULL;
}

static CURLcode configure(struct http_conn *h)
{
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_NOSIGNAL, 1L); /* several threads: never use signals for timeouts */
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, h);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, h);
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_TIMEOUT_MS, h->opts.timeout_ms);
    h->cur_timeout_ms = h->opts.timeout_ms;
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, h);
    SET(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, h);
    SET(CURLOPT_CONNECTTIMEOUT_MS, h->opts.connect_timeout_ms);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    /* One request at a time per handle: HTTP/2 framing would cost without serving. */
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, h->opts.user_agent);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
#if LIBCURL_VERSION_NUM >= 0x075000
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, h);
#endif
    /* libcurl keeps its built-in CA bundle/path for whichever of the two is not given,
     * so cainfo/capath add trust rather than replace it. */
    if (h->opts.cainfo)
        SET(CURLOPT_CAINFO, h->opts.cainfo);
    if (h->opts.capath)
        SET(CURLOPT_CAPATH, h->opts.capath);
    /* The proxy decision is made once, in http_open: an explicit value stops libcurl from reading
     * the proxy variables again on every request ("" = no proxy). */
    SET(CURLOPT_PROXY, h->opts.proxy ? h->opts.proxy : "");
    if (h->noproxy)
        SET(CURLOPT_NOPROXY, h->noproxy);
#undef SET
    return rc;
}

static const char *env_first(const char *a, const char *b)
{
    const char *v = getenv(a);
    if (!v || !*v)
        v = getenv(b);
    return v && *v ? v : NULL;
}

/* libcurl's rules for an https:// URL (https_proxy, then all_proxy, each also in capitals, and
 * no_proxy), applied once when the client is made instead of on every request. */
static int proxy_from_env(struct http_conn *h)
{
    const char *p = env_first("https_proxy", "HTTPS_PROXY"), *np;
    if (!p)
        p = env_first("all_proxy", "ALL_PROXY");
    if (!p)
        return 0;
    if (!(h->opts.proxy = strdup(p)))
        return -1;
    np = env_first("no_proxy", "NO_PROXY");
    if (np && !(h->noproxy = strdup(np)))
        return -1;
    return 0;
}

int http_open(struct http_conn *h, const struct http_options *o, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    buf_init(&h->resp, HTTP_BODY_CAP);
    if (http_global_init() != 0) {
        snprintf(err, errlen, "libcurl could not be initialised");
        return -1;
    }
    h->opts.timeout_ms = o->timeout_ms;
    h->opts.connect_timeout_ms = o->connect_timeout_ms;
    h->opts.cainfo = dup_or_null(o->cainfo);
    h->opts.capath = dup_or_null(o->capath);
    h->opts.clear_text = o->clear_text;
    if (o->clear_text) {
        /* http:// never goes through a proxy: the proxy would read the credentials in clear */
        h->opts.proxy = NULL;
    } else if (o->proxy) {
        h->opts.proxy = dup_or_null(o->proxy);
        if (!h->opts.proxy)
            goto oom;
    } else if (proxy_from_env(h) != 0) {
        goto oom;
    }
    h->opts.user_agent = dup_or_null(o->user_agent);
    h->plain_headers = curl_slist_append(NULL, "Accept: */*");
    h->easy = curl_easy_init();
    if (!h->easy || !h->plain_headers || (o->cainfo && !h->opts.cainfo) || (o->capath && !h->opts.capath) ||
        (o->user_agent && !h->opts.user_agent)) {
    oom:
        snprintf(err, errlen, "out of memory");
        http_close(h);
        return -1;
    }
    if (configure(h) != CURLE_OK) {
        snprintf(err, errlen, "libcurl refused an option (is it built with HTTPS support?)");
        http_close(h);
        return -1;
    }
    h->fork_generation = fork_generation;
    return 0;
}

void http_close(struct http_conn *h)
{
    detach_inherited(h);
    if (h->easy)
        curl_easy_cleanup(h->easy);
    h->easy = NULL;
    wipe_slist(&h->auth_headers);
    curl_slist_free_all(h->plain_headers);
    h->plain_headers = NULL;
    buf_wipe_free(&h->resp);
    free_opts(&h->opts);
    free(h->noproxy);
    h->noproxy = NULL;
    h->cur_headers = NULL;
    h->cur_url = NULL;
    h->cur_method = HTTP_NONE;
}

int http_set_auth(struct http_conn *h, const struct secret *user_key, const char *key_name,
                  const struct secret *key)
{
    struct buf line;
    struct curl_slist *l = NULL, *t;
    int rc = -1;
    buf_init(&line, 0);
    /* Only place besides secret.c that reads the bytes of a secret. */
    if (buf_puts(&line, "user_key: ") || buf_append(&line, user_key->data, user_key->len))
        goto out;
    if (!(t = curl_slist_append(l, buf_cstr(&line))))
        goto out;
    l = t;
    secure_wipe(line.data, line.len);
    buf_reset(&line);
    if (buf_puts(&line, key_name) || buf_puts(&line, ": ") || buf_append(&line, key->data, key->len))
        goto out;
    if (!(t = curl_slist_append(l, buf_cstr(&line))))
        goto out;
    l = t;
    if (!(t = curl_slist_append(l, "Content-Type: application/json")))
        goto out;
    l = t;
    if (h->cur_headers == h->auth_headers)
        h->cur_headers = NULL; /* force the handle to take the new list */
    wipe_slist(&h->auth_headers);
    h->auth_headers = l;
    l = NULL;
    rc = 0;
out:
    wipe_slist(&l);
    buf_wipe_free(&line);
    return rc;
}

/* 1 when a kept-alive socket has something pending although no request is in flight: the
 * gateway closed it (EOF), reset it (RST), or sent something unasked. Such a connection must not
 * carry the next request, which would be written into it and lost. */
static int idle_socket_is_stale(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return 1;
}

static int has_stale_socket(const struct http_conn *h)
{
    int i;
    for (i = 0; i < h->nsocks; i++)
        if (idle_socket_is_stale(h->socks[i]))
            return 1;
    return 0;
}

/* Replaces the handle (and with it every kept-alive connection) when a connection belongs to the
 * parent process after fork(), or when a kept-alive connection went stale while idle. */
static int refresh_handle(struct http_conn *h)
{
    CURL *fresh;
    int forked = h->fork_generation != fork_generation;
    if (!forked && (!h->nsocks || !has_stale_socket(h)))
        return 0;
    fresh = curl_easy_init();
    if (!fresh)
        return -1;
    if (forked)
        detach_inherited(h);
    curl_easy_cleanup(h->easy);
    h->nsocks = 0;
    h->easy = fresh;
    h->cur_headers = NULL;
    h->cur_url = NULL;
    h->cur_method = HTTP_NONE;
    h->cur_body = NULL;
    h->fork_generation = fork_generation;
    return configure(h) == CURLE_OK ? 0 : -1;
}

static int is_tls_error(CURLcode c)
{
    switch (c) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* When a status line arrived before the transfer failed, the status and what came of the body
 * are worth showing (a truncated or oversized answer). */
static void keep_partial_answer(struct http_conn *h, struct smsend_result *r)
{
    long status = 0;
    if (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0) {
        r->status = status;
        r->body.data = h->resp.data;
        r->body.len = h->resp.len;
    }
}

/* 1 once the status line of an answer arrived: what fails after it is an unreadable answer. */
static int answer_started(struct http_conn *h)
{
    long status = 0;
    return h->header_lines > 0 ||
           (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0);
}

/* Fills r for a failed transfer. The detail comes from libcurl's error buffer unless it
 * mentions a secret (it can quote a login URL), in which case only the generic text is used. */
static void map_failure(struct http_conn *h, const struct http_call *call, CURLcode c, struct smsend_result *r)
{
    const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(c);
    /* libcurl was about to write this call's request on some connection: from then on the gateway
     * may have acted on it, whatever fails next (a reconnect, a resolve, a timeout). */
    int sent = h->prereq_calls > 0;
    static const char after_send[] = "; the request had already been written to a connection that broke, "
                                     "so the gateway may have acted on it (not resent)";
    if (secret_found_in(call->secrets, call->nsecrets, detail, strlen(detail)))
        detail = curl_easy_strerror(c);
    r->retryable = !sent;
    if (h->header_overflow) {
        result_fail(r, SMSEND_E_BAD_RESPONSE, "the answer's headers are larger than %d bytes or %d lines",
                    HTTP_HEADER_CAP, HTTP_HEADER_LINES);
        r->retryable = 0;
        keep_partial_answer(h, r);
        r->body.len = 0;
        return;
    }
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        result_fail(r, SMSEND_E_RESOLVE_FAILED, "could not resolve the gateway host: %s%s", detail,
                    sent ? after_send : "");
        return;
    case CURLE_COULDNT_CONNECT:
        if (h->refused_socket)
            result_fail(r, SMSEND_E_CONNECT_FAILED,
                        "refused to connect: an http:// base_url may only reach loopback addresses%s",
                        sent ? after_send : "");
        else
            result_fail(r, SMSEND_E_CONNECT_FAILED, "could not connect to the gateway: %s%s", detail,
                        sent ? after_send : "");
        return;
    case CURLE_OPERATION_TIMEDOUT:
        if (sent)
            result_fail(r, SMSEND_E_TIMEOUT, "no complete answer in time; the gateway may have acted on the request: %s",
                        detail);
        else
            result_fail(r, SMSEND_E_TIMEOUT, "timed out before the request was sent: %s", detail);
        return;
    case CURLE_WRITE_ERROR:
        if (h->resp.overflow) {
            result_fail(r, SMSEND_E_BAD_RESPONSE, "answer larger than %d bytes", HTTP_BODY_CAP);
            r->retryable = 0;
            keep_partial_answer(h, r); /* the first 64 KiB, for diagnosis */
        } else {
            result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory while reading the answer");
        }
        return;
    case CURLE_OUT_OF_MEMORY:
        if (answer_started(h)) { /* libcurl's own cap on one header line (100 KB) */
            result_fail(r, SMSEND_E_BAD_RESPONSE, "unreadable answer: %s", detail);
            r->retryable = 0;
            return;
        }
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        return;
    case CURLE_RECV_ERROR:
        if (answer_started(h)) { /* e.g. a broken chunked encoding */
            result_fail(r, SMSEND_E_BAD_RESPONSE, "unreadable or truncated answer: %s", detail);
            r->retryable = 0;
            keep_partial_answer(h, r);
            return;
        }
        result_fail(r, SMSEND_E_NETWORK_ERROR, "network error: %s", detail);
        return;
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL: /* e.g. "Received HTTP/0.9 when not allowed" */
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_FILESIZE_EXCEEDED:
        result_fail(r, SMSEND_E_BAD_RESPONSE, "unreadable or truncated answer: %s", detail);
        keep_partial_answer(h, r);
        return;
    case CURLE_ABORTED_BY_CALLBACK:
        result_fail(r, SMSEND_E_NETWORK_ERROR,
                    "the connection broke after the request was sent; not resent because the gateway may have acted on it");
        r->retryable = 0;
        return;
    default:
        if (is_tls_error(c)) {
            result_fail(r, SMSEND_E_TLS_FAILED, "TLS failed: %s", detail);
            return;
        }
        result_fail(r, SMSEND_E_NETWORK_ERROR, "network error: %s", detail);
        return;
    }
}

int http_perform(struct http_conn *h, const struct http_call *call, struct smsend_result *r)
{
    CURL *e;
    CURLcode c = CURLE_OK;
    struct curl_slist *headers;
    long status = 0;
    if (refresh_handle(h) != 0) {
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "could not renew the connection");
        r->retryable = 1;
        return -1;
    }
    e = h->easy;
    if (call->url != h->cur_url || call->url_is_scratch) {
        c = curl_easy_setopt(e, CURLOPT_URL, call->url);
        h->cur_url = call->url_is_scratch ? NULL : call->url;
    }
    /* libcurl reads POSTFIELDS at perform time, so the same buffer with new bytes needs no
     * setopt; only a moved buffer, a new length or a switch from GET does. */
    if (c == CURLE_OK && call->method == HTTP_POST) {
        if (h->cur_method != HTTP_POST || call->body_len != h->cur_body_len) {
            c = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)call->body_len);
            h->cur_body_len = call->body_len;
            h->cur_body = NULL;
        }
        if (c == CURLE_OK && (h->cur_method != HTTP_POST || call->body != h->cur_body)) {
            c = curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
            h->cur_body = call->body;
        }
        h->cur_method = HTTP_POST;
    } else if (c == CURLE_OK && h->cur_method != HTTP_GET) {
        c = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        h->cur_method = HTTP_GET;
        h->cur_body = NULL;
    }
    {
        long want = call->timeout_ms > 0 ? call->timeout_ms : h->opts.timeout_ms;
        if (c == CURLE_OK && want != h->cur_timeout_ms) {
            c = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, want);
            h->cur_timeout_ms = want;
        }
    }
    headers = call->with_auth ? h->auth_headers : h->plain_headers;
    if (c == CURLE_OK && headers != h->cur_headers) {
        c = curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        h->cur_headers = headers;
    }
    if (c != CURLE_OK) {
        h->cur_url = NULL;
        h->cur_method = HTTP_NONE;
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "could not prepare the request: %s", curl_easy_strerror(c));
        r->retryable = 1;
        return -1;
    }
    buf_reset(&h->resp);
    h->errbuf[0] = 0;
    h->prereq_calls = 0;
    h->header_bytes = 0;
    h->header_lines = 0;
    h->header_overflow = 0;
    h->refused_socket = 0;
    c = curl_easy_perform(e);
    if (c != CURLE_OK) {
        map_failure(h, call, c, r);
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    r->body.data = h->resp.data;
    r->body.len = h->resp.len;
    r->retryable = 0;
    return 0;
}

double http_retry_after(struct http_conn *h)
{
#if LIBCURL_VERSION_NUM >= 0x075400
    struct curl_header *hdr = NULL;
    const char *v;
    char *end;
    double secs;
    if (curl_easy_header(h->easy, "Retry-After", 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK || !hdr || !hdr->value)
        return -1;
    v = hdr->value;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') { /* delta-seconds; parsed by hand: strtod follows the locale */
        secs = 0;
        for (end = (char *)v; *end >= '0' && *end <= '9'; end++)
            if (secs < 1e9)
                secs = secs * 10 + (*end - '0');
        return secs;
    }
    {
        time_t when = curl_getdate(v, NULL);
        time_t now = time(NULL);
        if (when == (time_t)-1)
            return -1;
        return when > now ? (double)(when - now) : 0;
    }
#else
    (void)h;
    return -1;
#endif
}
