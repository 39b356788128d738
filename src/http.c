/* http.c — libcurl transport for the gateway calls (see http.h): a multi handle per client driven
 * through curl_multi_socket_action and an epoll descriptor, easy handles reused between
 * exchanges, whose options are set once; a call only touches what differs from the last one. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "http.h"
#include "stats.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_status = -1;
static char curl_version_text[48];
/* Bumped in every forked child: a connection opened before a fork belongs to the parent. */
static volatile unsigned fork_generation;

static void pool_after_fork(void);
static void share_after_fork(void);

static void on_fork_child(void)
{
    fork_generation++;
    pool_after_fork();
    share_after_fork();
}

/* One share handle for the process: DNS cache and TLS sessions, under locks (connections are not
 * shared through it: libcurl does not support that across threads; the transport pool does it). */
static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)e;
    (void)access;
    (void)ud;
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *ud)
{
    (void)e;
    (void)ud;
    pthread_mutex_unlock(&share_locks[data]);
}

static void share_after_fork(void)
{
    int i;
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_locks[i], NULL);
}

static void share_init(void)
{
    share_after_fork();
    share = curl_share_init();
    if (share && (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
                  curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
                  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
                  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)) {
        curl_share_cleanup(share);
        share = NULL; /* each handle keeps its own caches then */
    }
}

/* libcurl's allocations go through these when this module is the first to initialise libcurl
 * in the process: every block is wiped before it goes back to the heap, and a block that must
 * grow moves by allocate-copy-wipe-free, so libcurl's copies of header lines, the login URL and
 * the login answer do not linger in freed memory. (If another part of the process initialised
 * libcurl first, curl_global_init_mem changes nothing and libcurl's own allocator stays.) */
/* Logins in flight in the process: while any runs, freed blocks are wiped in full. Otherwise a
 * block is wiped up to WIPE_ALWAYS bytes: that covers every small block (header lines, URLs,
 * the request being built) and the start of libcurl's 16 KiB receive buffer, which holds an
 * answer's first bytes; the rest of that buffer only ever held non-secret answers then. (This
 * keeps the wipe below glibc's rep-stosb threshold: wiping 16 KiB on every request would cost
 * more than all the rest of the module's work.) */
#define WIPE_ALWAYS 2048
static atomic_int logins_in_flight;

static void wiping_free(void *p)
{
    if (p) {
        size_t n = malloc_usable_size(p);
        if (n > WIPE_ALWAYS && atomic_load_explicit(&logins_in_flight, memory_order_relaxed) == 0)
            n = WIPE_ALWAYS;
        secure_wipe(p, n);
        free(p);
    }
}

static void *wiping_realloc(void *p, size_t n)
{
    size_t have, room;
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
    /* A block libcurl grows is one of its buffers doubling (the request being built grows from
     * 32 bytes to 512 in four steps): the new one gets room for the next steps, so it moves (and
     * is copied and wiped) once instead of each time. */
    room = n < 256 ? 512 : n <= SIZE_MAX - 16384 ? n + (n < 16384 ? n : 16384) : n;
    if (!(q = malloc(room)) && !(q = malloc(n)))
        return NULL;
    memcpy(q, p, have);
    secure_wipe(p, have); /* a moved block is wiped in full */
    free(p);
    return q;
}

/* OpenSSL frees its TLS record buffers itself (not through libcurl's allocator), and the one that
 * held a decrypted login answer keeps the keys. OpenSSL 3's SSL_OP_CLEANSE_PLAINTEXT makes it wipe
 * decrypted data once read: set on the connections that carry a login. Looked up at run time in the libssl libcurl loaded (no link-time
 * dependency, and nothing happens with another TLS backend). */
#define OPENSSL3_OP_CLEANSE_PLAINTEXT ((uint64_t)1 << 1)
typedef uint64_t (*ssl_ctx_set_options_fn)(void *ctx, uint64_t op);
static ssl_ctx_set_options_fn ssl_ctx_set_options;

static void find_openssl(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    void *lib;
    if (!v || !v->ssl_version || strncmp(v->ssl_version, "OpenSSL/3", 9) != 0)
        return;
    if ((lib = dlopen("libssl.so.3", RTLD_LAZY | RTLD_NOLOAD)) != NULL)
        *(void **)&ssl_ctx_set_options = dlsym(lib, "SSL_CTX_set_options");
}

static CURLcode on_ssl_ctx(CURL *easy, void *ctx, void *ud)
{
    (void)easy;
    (void)ud;
    if (ssl_ctx_set_options)
        ssl_ctx_set_options(ctx, OPENSSL3_OP_CLEANSE_PLAINTEXT);
    return CURLE_OK;
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
    find_openssl();
    if (global_status == 0)
        share_init();
    v = curl_version_info(CURLVERSION_NOW);
    snprintf(curl_version_text, sizeof curl_version_text, "libcurl/%s", v && v->version ? v->version : "?");
}

int http_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_status;
}

double http_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    struct http_exchange *h = ud;
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
    struct http_exchange *h = ud;
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
    struct http_exchange *h = ud;
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    if (h->prereq_calls++ > 0)
        return CURL_PREREQFUNC_ABORT;
    return CURL_PREREQFUNC_OK;
}
#endif


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

/* ---- sockets: libcurl opens and closes them through these two, so the transport knows them
 * (after fork() the child must not shut down TLS on a socket the parent still uses; an idle one
 * that went stale must not carry the next request). ---- */

/* Second line of the clear-text rule: whatever the URL parser made of the host, an http:// client
 * never opens a socket to an address outside the loopback ranges. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct http_exchange *x = ud;
    struct http_transport *t = x->t;
    curl_socket_t s;
    (void)purpose;
    if (t->opts.clear_text && !http_addr_is_loopback(&a->addr)) {
        x->refused_socket = 1;
        return CURL_SOCKET_BAD;
    }
    s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s != CURL_SOCKET_BAD) {
        stats_connection();
        if (t->nsocks < HTTP_MAX_SOCKETS)
            t->socks[t->nsocks++] = (int)s;
    }
    return s;
}

static void forget_socket(struct http_transport *t, int s)
{
    int i;
    for (i = 0; i < t->nsocks; i++) {
        if (t->socks[i] == s) {
            t->socks[i] = t->socks[--t->nsocks];
            break;
        }
    }
}

static int on_close_socket(void *ud, curl_socket_t s)
{
    struct http_exchange *x = ud;
    forget_socket(x->t, (int)s);
    return close((int)s);
}

/* CURLMOPT_SOCKETFUNCTION: the epoll descriptor follows what libcurl wants to wait for. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *socketp)
{
    struct http_transport *t = ud;
    struct epoll_event ev;
    (void)easy;
    if (t->epfd < 0)
        return 0;
    memset(&ev, 0, sizeof ev);
    ev.data.fd = (int)s;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, (int)s, &ev);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (!socketp) {
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, (int)s, &ev) != 0 && errno == EEXIST)
            epoll_ctl(t->epfd, EPOLL_CTL_MOD, (int)s, &ev);
        curl_multi_assign(t->multi, s, t); /* any non-NULL marks "registered" */
    } else if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, (int)s, &ev) != 0 && errno == ENOENT) {
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, (int)s, &ev);
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants to be called again at the latest. */
static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    struct http_transport *t = ud;
    (void)multi;
    t->timer_at = timeout_ms < 0 ? -1 : http_now() + (double)timeout_ms / 1000.0;
    return 0;
}

/* In a forked child: point every inherited socket at /dev/null, so that cleaning up the
 * inherited handles (TLS close_notify, reads) cannot touch the parent's connections. */
static void detach_inherited(struct http_transport *t)
{
    int i, devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (i = 0; i < t->nsocks && devnull >= 0; i++)
        dup2(devnull, t->socks[i]);
    if (devnull >= 0)
        close(devnull);
    t->nsocks = 0;
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

static int has_stale_socket(const struct http_transport *t)
{
    int i;
    for (i = 0; i < t->nsocks; i++)
        if (idle_socket_is_stale(t->socks[i]))
            return 1;
    return 0;
}

/* ---- handles ---- */

/* ---- options, headers and handles ---- */

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

/* Owned copies of o's strings into out (user_agent only when with_ua). 0 or -1. */
static int copy_opts(struct http_options *out, const struct http_options *o, int with_ua)
{
    *out = *o;
    out->cainfo = dup_or_null(o->cainfo);
    out->capath = dup_or_null(o->capath);
    out->proxy = dup_or_null(o->proxy);
    out->user_agent = with_ua ? dup_or_null(o->user_agent) : NULL;
    if ((o->cainfo && !out->cainfo) || (o->capath && !out->capath) || (o->proxy && !out->proxy) ||
        (with_ua && o->user_agent && !out->user_agent)) {
        free_opts(out);
        return -1;
    }
    return 0;
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* What makes two transports interchangeable: the way they connect and verify. */
static int same_transport(const struct http_transport *t, const struct http_client *hc)
{
    const struct http_options *a = &t->opts, *b = &hc->opts;
    return a->clear_text == b->clear_text && a->connect_timeout_ms == b->connect_timeout_ms &&
           same_str(a->cainfo, b->cainfo) && same_str(a->capath, b->capath) && same_str(a->proxy, b->proxy) &&
           same_str(t->noproxy, hc->noproxy);
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

static void headers_unref(struct http_headers *h)
{
    if (h && --h->refs == 0) {
        wipe_slist(&h->list);
        free(h);
    }
}

/* The request headers: the given lines plus the User-Agent, joined by CRLF into ONE header-list
 * entry. libcurl formats every entry into the request byte by byte and compares every entry with
 * a dozen header names on each request (about 1.3k instructions an entry, before its bytes): one
 * entry of four lines costs a third of four entries of one, for the same bytes on the wire. This
 * is sound for HTTP/1.1 only (HTTP/2 would take the CRLFs as part of a value): configure() pins
 * CURLOPT_HTTP_VERSION to 1.1. libcurl looks at the start of an entry only, so lines[0] is the
 * header it must see (Content-Type, or it adds its own; Accept, or it adds its default one).
 * The User-Agent rides here too: as CURLOPT_USERAGENT libcurl would format it anew each time.
 * No line holds CR or LF: the values are checked for control bytes before they get here. */
static struct http_headers *headers_new(const char *const *lines, size_t n, const char *ua)
{
    struct http_headers *h = calloc(1, sizeof *h);
    struct buf all;
    size_t i;
    int ok = h != NULL;
    buf_init(&all, 0);
    for (i = 0; ok && i < n; i++)
        ok = (i == 0 || buf_puts(&all, "\r\n") == 0) && buf_puts(&all, lines[i]) == 0;
    if (ok && ua)
        ok = buf_puts(&all, "\r\nUser-Agent: ") == 0 && buf_puts(&all, ua) == 0;
    if (ok)
        ok = (h->list = curl_slist_append(NULL, buf_cstr(&all))) != NULL;
    buf_wipe_free(&all);
    if (!ok) {
        free(h);
        return NULL;
    }
    h->refs = 1;
    return h;
}

static CURLcode configure(struct http_exchange *x)
{
    CURL *e = x->easy;
    const struct http_transport *t = x->t;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_NOSIGNAL, 1L); /* several threads: never use signals for timeouts */
    SET(CURLOPT_PRIVATE, x);
    SET(CURLOPT_SHARE, share);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, x);
    SET(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, x);
    SET(CURLOPT_CONNECTTIMEOUT_MS, t->opts.connect_timeout_ms);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    /* One request per connection at a time: HTTP/2 framing would cost without serving. HTTP/1.1
     * is also what lets headers_new() send several header lines as one header-list entry. */
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
#if LIBCURL_VERSION_NUM >= 0x075000
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, x);
#endif
    /* libcurl keeps its built-in CA bundle/path for whichever of the two is not given,
     * so cainfo/capath add trust rather than replace it. */
    if (t->opts.cainfo)
        SET(CURLOPT_CAINFO, t->opts.cainfo);
    if (t->opts.capath)
        SET(CURLOPT_CAPATH, t->opts.capath);
    /* The proxy decision is made once, in http_open: an explicit value stops libcurl from reading
     * the proxy variables again on every request ("" = no proxy). */
    SET(CURLOPT_PROXY, t->opts.proxy ? t->opts.proxy : "");
    SET(CURLOPT_NOPROXY, t->noproxy ? t->noproxy : ""); /* "" too: else libcurl reads no_proxy */
#undef SET
    return rc;
}

static void exchange_free(struct http_exchange *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    buf_wipe_free(&x->resp);
    secure_wipe(x->errbuf, sizeof x->errbuf);
    free(x);
}

static CURLM *new_multi(struct http_transport *t)
{
    CURLM *m = curl_multi_init();
    if (!m)
        return NULL;
    /* A pooled transport serves one blocking call at a time, which waits in curl_multi_poll: no
     * descriptor of ours to keep up to date. A client's own one is waited on from outside, through
     * the epoll descriptor that the socket callback keeps. */
    if ((!t->pooled && (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
                        curl_multi_setopt(m, CURLMOPT_SOCKETDATA, t) != CURLM_OK ||
                        curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
                        curl_multi_setopt(m, CURLMOPT_TIMERDATA, t) != CURLM_OK)) ||
        curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)HTTP_MAX_HOST_CONNECTIONS) != CURLM_OK) {
        curl_multi_cleanup(m);
        return NULL;
    }
    return m;
}

struct http_waker *http_waker_hold(struct http_transport *t)
{
    struct epoll_event ev;
    struct http_waker *w = t->waker;
    if (!w) {
        if (!(w = calloc(1, sizeof *w)))
            return NULL;
        w->epfd = t->epfd;
        w->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.fd = w->evfd;
        if (w->evfd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, w->evfd, &ev) != 0) {
            if (w->evfd >= 0)
                close(w->evfd);
            free(w);
            return NULL;
        }
        w->refs = 1; /* the transport's */
        t->waker = w;
    }
    w->refs++;
    return w;
}

void http_waker_release(struct http_waker *w)
{
    if (w && --w->refs == 0) {
        close(w->evfd);
        close(w->epfd);
        free(w);
    }
}

void http_wake(struct http_waker *w)
{
    uint64_t one = 1;
    if (w && write(w->evfd, &one, sizeof one) < 0) {
        /* the counter is full: it is readable anyway */
    }
}

static void drain_waker(struct http_transport *t)
{
    uint64_t n;
    if (t->waker && read(t->waker->evfd, &n, sizeof n) < 0) {
        /* nothing to drain */
    }
}

static void transport_free(struct http_transport *t)
{
    struct http_exchange *x;
    int keep_epfd = 0;
    if (!t)
        return;
    if (t->fork_generation != fork_generation) { /* the epoll instance and the sockets are the parent's too */
        if (t->epfd >= 0 && !t->waker)
            close(t->epfd);
        t->epfd = -1;
        detach_inherited(t);
    }
    if (t->waker) { /* ops still hold the descriptor: it stays theirs, readable, until they go */
        keep_epfd = 1;
        http_wake(t->waker);
        http_waker_release(t->waker);
        t->waker = NULL;
    }
    if (t->multi)
        curl_multi_cleanup(t->multi);
    while ((x = t->idle) != NULL) {
        t->idle = x->next_idle;
        exchange_free(x);
    }
    if (t->epfd >= 0 && !keep_epfd)
        close(t->epfd);
    free_opts(&t->opts);
    free(t->noproxy);
    free(t);
}

static struct http_transport *transport_new(const struct http_client *hc, int pooled)
{
    struct http_transport *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->epfd = -1;
    t->timer_at = -1;
    t->pooled = pooled;
    t->on_done = hc->on_done;
    t->fork_generation = fork_generation;
    if (copy_opts(&t->opts, &hc->opts, 0) != 0 || (hc->noproxy && !(t->noproxy = strdup(hc->noproxy))) ||
        (t->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || !(t->multi = new_multi(t))) {
        transport_free(t);
        return NULL;
    }
    return t;
}

/* The process pool of idle transports (borrowed by blocking calls). Bounded: past POOL_IDLE_MAX
 * idle ones, a transport given back is closed instead. */
#define POOL_IDLE_MAX 64
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_transport *pool_idle;
static int pool_count;

static void pool_after_fork(void)
{
    /* the child has one thread: whoever held the lock in the parent is not here */
    pthread_mutex_init(&pool_lock, NULL);
}

struct http_transport *http_take(struct http_client *hc, int own)
{
    struct http_transport *t, **pp;
    if (own) {
        if (!hc->own)
            hc->own = transport_new(hc, 0);
        return hc->own;
    }
    pthread_mutex_lock(&pool_lock);
    for (pp = &pool_idle; (t = *pp) != NULL; pp = &t->next_pooled) {
        if (same_transport(t, hc)) {
            *pp = t->next_pooled;
            pool_count--;
            break;
        }
    }
    pthread_mutex_unlock(&pool_lock);
    if (!t)
        t = transport_new(hc, 1);
    if (t)
        t->on_done = hc->on_done;
    return t;
}

void http_give_back(struct http_transport *t)
{
    int keep;
    if (!t || !t->pooled)
        return;
    pthread_mutex_lock(&pool_lock);
    keep = pool_count < POOL_IDLE_MAX && t->fork_generation == fork_generation;
    if (keep) {
        t->next_pooled = pool_idle;
        pool_idle = t;
        pool_count++;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!keep)
        transport_free(t);
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
static int proxy_from_env(struct http_client *hc)
{
    const char *p = env_first("https_proxy", "HTTPS_PROXY"), *np;
    if (!p)
        p = env_first("all_proxy", "ALL_PROXY");
    if (!p)
        return 0;
    if (!(hc->opts.proxy = strdup(p)))
        return -1;
    np = env_first("no_proxy", "NO_PROXY");
    if (np && !(hc->noproxy = strdup(np)))
        return -1;
    return 0;
}

CURLU *http_parse_url(const char *url)
{
    CURLU *u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        u = NULL;
    }
    return u;
}

int http_open(struct http_client *hc, const struct http_options *o, http_done_fn on_done, char *err,
              size_t errlen)
{
    static const char *const accept[] = {"Accept: */*"};
    struct http_options given = *o;
    memset(hc, 0, sizeof *hc);
    hc->on_done = on_done;
    if (http_global_init() != 0) {
        snprintf(err, errlen, "libcurl could not be initialised");
        return -1;
    }
    /* http:// never goes through a proxy: the proxy would read the credentials in clear */
    if (o->clear_text)
        given.proxy = NULL;
    if (copy_opts(&hc->opts, &given, 1) != 0)
        goto oom;
    if (!o->clear_text && !o->proxy && proxy_from_env(hc) != 0)
        goto oom;
    if (!(hc->plain = headers_new(accept, 1, hc->opts.user_agent)))
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    http_close(hc);
    return -1;
}

void http_close(struct http_client *hc)
{
    transport_free(hc->own);
    hc->own = NULL;
    headers_unref(hc->auth);
    headers_unref(hc->plain);
    hc->auth = hc->plain = NULL;
    free_opts(&hc->opts);
    free(hc->noproxy);
    hc->noproxy = NULL;
}

int http_set_auth(struct http_client *hc, const struct secret *user_key, const char *key_name,
                  const struct secret *key)
{
    struct buf a, b;
    const char *lines[3];
    struct http_headers *h = NULL;
    buf_init(&a, 0);
    buf_init(&b, 0);
    /* Only place besides secret.c that reads the bytes of a secret. */
    if (buf_puts(&a, "user_key: ") == 0 && buf_append(&a, user_key->data, user_key->len) == 0 &&
        buf_puts(&b, key_name) == 0 && buf_puts(&b, ": ") == 0 && buf_append(&b, key->data, key->len) == 0) {
        lines[0] = "Content-Type: application/json"; /* first: the line libcurl looks for */
        lines[1] = buf_cstr(&a);
        lines[2] = buf_cstr(&b);
        h = headers_new(lines, 3, hc->opts.user_agent);
    }
    buf_wipe_free(&a);
    buf_wipe_free(&b);
    if (!h)
        return -1;
    headers_unref(hc->auth); /* exchanges in flight keep their own reference */
    hc->auth = h;
    return 0;
}

/* Before a request when nothing is in flight: connections that belong to the parent after fork(),
 * or a kept-alive one that went stale while idle, are dropped with the whole multi handle. */
static int refresh_connections(struct http_transport *t)
{
    int forked = t->fork_generation != fork_generation;
    CURLM *fresh;
    if (t->inflight || (!forked && (!t->nsocks || !has_stale_socket(t))))
        return 0;
    if (forked) {
        int old = t->epfd, ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
            return -1;
        t->epfd = -1; /* the inherited epoll instance is the parent's: never touch it */
        detach_inherited(t);
        if (old >= 0 && dup3(ep, old, O_CLOEXEC) >= 0) { /* keep the descriptor number */
            close(ep);
            ep = old;
        }
        if (t->waker) { /* its eventfd is the parent's too: a new one, in the new epoll */
            struct epoll_event wev;
            int nfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            memset(&wev, 0, sizeof wev);
            wev.events = EPOLLIN;
            if (nfd >= 0 && dup3(nfd, t->waker->evfd, O_CLOEXEC) >= 0) {
                close(nfd);
                nfd = t->waker->evfd;
            }
            wev.data.fd = nfd;
            t->waker->evfd = nfd;
            t->waker->epfd = ep;
            if (nfd >= 0)
                epoll_ctl(ep, EPOLL_CTL_ADD, nfd, &wev);
        }
        curl_multi_cleanup(t->multi);
        t->multi = NULL;
        t->epfd = ep;
        t->fork_generation = fork_generation;
    } else {
        curl_multi_cleanup(t->multi); /* closes the stale connection with the others */
        t->multi = NULL;
    }
    t->timer_at = -1;
    fresh = new_multi(t);
    if (!fresh)
        return -1;
    t->multi = fresh;
    return 0;
}

static struct http_exchange *exchange_get(struct http_transport *t)
{
    struct http_exchange *x = t->idle;
    if (x) {
        t->idle = x->next_idle;
        t->held++;
        return x;
    }
    if (!(x = calloc(1, sizeof *x)))
        return NULL;
    x->t = t;
    buf_init(&x->resp, HTTP_BODY_CAP);
    if (!(x->easy = curl_easy_init()) || configure(x) != CURLE_OK) {
        exchange_free(x);
        return NULL;
    }
    t->held++;
    return x;
}

/* A login goes on a connection of its own, closed after it: the only answer that carries keys
 * then never shares a TLS connection, and only that connection has OpenSSL cleanse what it
 * decrypted (costly per record, so not for every call). */
static CURLcode set_login_mode(struct http_exchange *x, int login)
{
    CURLcode c = curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, (long)login);
    if (c == CURLE_OK)
        c = curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, (long)login);
    if (c == CURLE_OK && ssl_ctx_set_options && !x->t->opts.clear_text) {
        c = curl_easy_setopt(x->easy, CURLOPT_SSL_CTX_FUNCTION, login ? on_ssl_ctx : NULL);
        if (c == CURLE_NOT_BUILT_IN) /* another TLS backend: nothing to cleanse with */
            c = CURLE_OK;
    }
    if (c == CURLE_OK)
        x->cur_login = login;
    return c;
}

struct http_exchange *http_start(struct http_transport *t, struct http_client *hc, const struct http_call *call,
                                 void *owner, struct smsend_result *r)
{
    struct http_exchange *x;
    struct http_headers *hdr;
    CURL *e;
    CURLcode c = CURLE_OK;
    if (!t || refresh_connections(t) != 0 || !(x = exchange_get(t))) {
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory preparing the request");
        r->retryable = 1;
        return NULL;
    }
    e = x->easy;
    if (call->curlu) {
        if (call->curlu != x->cur_curlu) {
            c = curl_easy_setopt(e, CURLOPT_CURLU, call->curlu);
            x->cur_curlu = call->curlu;
            x->cur_url = NULL;
        }
    } else {
        if (x->cur_curlu) { /* CURLOPT_CURLU would win over CURLOPT_URL */
            c = curl_easy_setopt(e, CURLOPT_CURLU, NULL);
            x->cur_curlu = NULL;
        }
        if (c == CURLE_OK && (call->url != x->cur_url || call->url_is_scratch)) {
            c = curl_easy_setopt(e, CURLOPT_URL, call->url);
            x->cur_url = call->url_is_scratch ? NULL : call->url;
            x->url_secret = call->url_is_scratch;
        }
    }
    /* libcurl reads POSTFIELDS when it sends, so the same buffer with new bytes needs no setopt;
     * only a moved buffer, a new length or a switch from GET does. */
    if (c == CURLE_OK && call->method == HTTP_POST) {
        if (x->cur_method != HTTP_POST || call->body_len != x->cur_body_len) {
            c = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)call->body_len);
            x->cur_body_len = call->body_len;
            x->cur_body = NULL;
        }
        if (c == CURLE_OK && (x->cur_method != HTTP_POST || call->body != x->cur_body)) {
            c = curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
            x->cur_body = call->body;
        }
        x->cur_method = HTTP_POST;
    } else if (c == CURLE_OK && x->cur_method != HTTP_GET) {
        c = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        x->cur_method = HTTP_GET;
        x->cur_body = NULL;
    }
    if (c == CURLE_OK && call->url_is_scratch != x->cur_login)
        c = set_login_mode(x, call->url_is_scratch);
    if (c == CURLE_OK && call->timeout_ms != x->cur_timeout_ms) {
        c = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, call->timeout_ms);
        x->cur_timeout_ms = call->timeout_ms;
    }
    hdr = call->with_auth && hc->auth ? hc->auth : hc->plain;
    if (c == CURLE_OK && hdr->list != x->cur_list) {
        c = curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr->list);
        x->cur_list = hdr->list;
    }
    buf_reset(&x->resp);
    x->errbuf[0] = 0;
    x->prereq_calls = 0;
    x->header_bytes = 0;
    x->header_lines = 0;
    x->header_overflow = 0;
    x->refused_socket = 0;
    x->done = 0;
    x->code = CURLE_OK;
    x->owner = owner;
    x->started = http_now();
    x->deadline = x->started + (double)call->timeout_ms / 1000.0;
    x->queued = t->inflight >= HTTP_MAX_HOST_CONNECTIONS;
    if (c != CURLE_OK || (!x->queued && curl_multi_add_handle(t->multi, e) != CURLM_OK)) {
        x->queued = 0;
        x->cur_url = NULL;
        x->cur_curlu = NULL;
        x->cur_method = HTTP_NONE;
        x->cur_list = NULL;
        http_release(x);
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "could not prepare the request: %s", curl_easy_strerror(c));
        r->retryable = 1;
        return NULL;
    }
    hdr->refs++;
    x->headers = hdr;
    if (x->queued) {
        x->next_queued = NULL;
        if (t->queue_tail)
            t->queue_tail->next_queued = x;
        else
            t->queue_head = x;
        t->queue_tail = x;
    } else {
        x->in_multi = 1;
        t->inflight++;
        t->kicked = 1;
    }
    x->counted_login = call->url_is_scratch;
    if (x->counted_login)
        atomic_fetch_add_explicit(&logins_in_flight, 1, memory_order_relaxed);
    return x;
}

static void unqueue(struct http_exchange *x)
{
    struct http_transport *t = x->t;
    struct http_exchange **p, *prev = NULL;
    for (p = &t->queue_head; *p && *p != x; p = &(*p)->next_queued)
        prev = *p;
    if (*p) {
        *p = x->next_queued;
        if (t->queue_tail == x)
            t->queue_tail = prev;
    }
    x->queued = 0;
    x->next_queued = NULL;
}

#define QUEUE_TIMEOUT "no connection came free in time"

/* A queued exchange that cannot go on: reported as done (code) by the next collect(). */
static void fail_queued(struct http_exchange *x, CURLcode code, const char *why)
{
    unqueue(x);
    x->code = code;
    snprintf(x->errbuf, sizeof x->errbuf, "%s", why);
    x->next_queued = x->t->failed;
    x->t->failed = x;
}

/* Hands queued exchanges to libcurl while connections are free, oldest first, each with what is
 * left of its timeout; one whose time ran out while it waited fails without a byte sent. */
static void promote(struct http_transport *t)
{
    double now = -1;
    while (t->queue_head && t->inflight < HTTP_MAX_HOST_CONNECTIONS) {
        struct http_exchange *x = t->queue_head;
        long left;
        if (now < 0)
            now = http_now();
        left = (long)((x->deadline - now) * 1000.0);
        if (left < 1) {
            fail_queued(x, CURLE_OPERATION_TIMEDOUT, QUEUE_TIMEOUT);
            continue;
        }
        if (curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, left) != CURLE_OK ||
            curl_multi_add_handle(t->multi, x->easy) != CURLM_OK) {
            x->cur_timeout_ms = -1;
            fail_queued(x, CURLE_OUT_OF_MEMORY, "could not start the request");
            continue;
        }
        x->cur_timeout_ms = left;
        unqueue(x);
        x->in_multi = 1;
        t->inflight++;
        t->kicked = 1;
    }
}

/* Queued exchanges whose time ran out while they waited for a connection. */
static void expire_queued(struct http_transport *t)
{
    struct http_exchange *x = t->queue_head, *next;
    double now;
    if (!x)
        return;
    now = http_now();
    for (; x; x = next) {
        next = x->next_queued;
        if (x->deadline <= now)
            fail_queued(x, CURLE_OPERATION_TIMEDOUT, QUEUE_TIMEOUT);
    }
}

/* Takes x out of the multi handle (its connection goes back to the cache, or is closed when the
 * transfer was not complete) or out of the queue, and lets the next queued exchange in. */
static void detach(struct http_exchange *x)
{
    struct http_transport *t = x->t;
    if (x->queued) {
        unqueue(x);
    } else if (x->in_multi) {
        curl_multi_remove_handle(t->multi, x->easy);
        x->in_multi = 0;
        t->inflight--;
        promote(t);
    } else {
        struct http_exchange **p; /* failed in the queue, not yet reported */
        for (p = &t->failed; *p && *p != x; p = &(*p)->next_queued)
            ;
        if (!*p)
            return;
        *p = x->next_queued;
        x->next_queued = NULL;
    }
    if (x->counted_login) {
        atomic_fetch_sub_explicit(&logins_in_flight, 1, memory_order_relaxed);
        x->counted_login = 0;
    }
    headers_unref(x->headers);
    x->headers = NULL;
}

int http_abort(struct http_exchange *x)
{
    detach(x);
    x->done = 1;
    x->code = CURLE_ABORTED_BY_CALLBACK;
    return http_may_have_sent(x);
}

void http_release(struct http_exchange *x)
{
    struct http_transport *t = x->t;
    detach(x);
    secure_wipe(x->resp.data, x->resp.len);
    buf_reset(&x->resp);
    x->owner = NULL;
    if (x->url_secret) {
        /* the login URL holds the password: make libcurl drop (and, through the wiping
         * allocator, wipe) its copy now rather than at the next request */
        curl_easy_setopt(x->easy, CURLOPT_URL, "");
        x->url_secret = 0;
        x->cur_url = NULL;
    }
    x->next_idle = t->idle;
    t->idle = x;
    t->held--;
}

/* Reports every finished exchange to its owner. */
static void collect(struct http_transport *t)
{
    CURLMsg *m;
    int left;
    expire_queued(t);
    while (t->failed) { /* never reached libcurl: nothing was sent */
        struct http_exchange *x = t->failed;
        CURLcode code = x->code;
        detach(x);
        x->code = code;
        x->done = 1;
        if (t->on_done)
            t->on_done(x, x->owner);
    }
    while ((m = curl_multi_info_read(t->multi, &left)) != NULL) {
        struct http_exchange *x = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x || !x->in_multi)
            continue;
        x->code = m->data.result;
        detach(x); /* m is invalid from here on */
        stats_gateway(http_now() - x->started);
        x->done = 1;
        if (t->on_done)
            t->on_done(x, x->owner);
    }
}

void http_drive(struct http_transport *t)
{
    struct epoll_event ev[16];
    int n, i, running;
    if (!t || t->driving || !t->multi)
        return;
    t->driving = 1;
    if (t->pooled) {
        t->kicked = 0;
        curl_multi_perform(t->multi, &running);
        collect(t);
        t->driving = 0;
        return;
    }
    do {
        t->kicked = 0;
        n = t->epfd >= 0 ? epoll_wait(t->epfd, ev, 16, 0) : 0;
        for (i = 0; i < n; i++) {
            int what;
            if (t->waker && ev[i].data.fd == t->waker->evfd) {
                drain_waker(t);
                continue;
            }
            what = (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) | (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                       (ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(t->multi, ev[i].data.fd, what, &running);
        }
        if (t->timer_at >= 0 && http_now() >= t->timer_at) {
            t->timer_at = -1;
            curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        collect(t);
    } while (n == 16 || t->kicked); /* kicked: a queued exchange went in, to be started now */
    t->driving = 0;
}

void http_wait(struct http_transport *t, double max_s)
{
    double wait = http_timeout(t);
    int ms;
    struct epoll_event ev;
    if (!t)
        return;
    if (max_s >= 0 && (wait < 0 || max_s < wait))
        wait = max_s;
    ms = wait < 0 ? 1000 : (int)(wait * 1000.0 + 0.999);
    if (t->pooled) { /* libcurl's own timers shorten the wait */
        /* A transfer just added has nothing to wait for yet: libcurl wants to be driven at once
         * (it would return from the poll at once too, for more work than a flag). */
        if (t->multi && !t->kicked)
            curl_multi_poll(t->multi, NULL, 0, ms, NULL);
        http_drive(t);
        return;
    }
    if (ms > 0 && t->epfd >= 0)
        epoll_wait(t->epfd, &ev, 1, ms); /* only to sleep until something is ready */
    http_drive(t);
}

int http_fd(const struct http_transport *t)
{
    return t ? t->epfd : -1;
}

double http_timeout(const struct http_transport *t)
{
    const struct http_exchange *x;
    double at, left;
    if (!t)
        return -1;
    at = t->timer_at;
    for (x = t->queue_head; x; x = x->next_queued) /* a queued exchange's timeout is ours to keep */
        if (at < 0 || x->deadline < at)
            at = x->deadline;
    if (t->failed)
        at = 0; /* to be reported */
    if (at < 0)
        return -1;
    left = at - http_now();
    return left > 0 ? left : 0;
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
static void keep_partial_answer(struct http_exchange *h, struct smsend_result *r)
{
    long status = 0;
    if (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0) {
        r->status = status;
        r->body.data = h->resp.data;
        r->body.len = h->resp.len;
    }
}

/* 1 once the status line of an answer arrived: what fails after it is an unreadable answer. */
static int answer_started(struct http_exchange *h)
{
    long status = 0;
    return h->header_lines > 0 ||
           (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0);
}

/* Fills r for a failed transfer. The detail comes from libcurl's error buffer unless it
 * mentions a secret (it can quote a login URL), in which case only the generic text is used. */
static void map_failure(struct http_exchange *h, const struct secret *const *secrets, size_t nsecrets, CURLcode c,
                        struct smsend_result *r)
{
    const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(c);
    /* libcurl was about to write this call's request on some connection: from then on the gateway
     * may have acted on it, whatever fails next (a reconnect, a resolve, a timeout). */
    int sent = h->prereq_calls > 0;
    static const char after_send[] = "; the request had already been written to a connection that broke, "
                                     "so the gateway may have acted on it (not resent)";
    if (secret_found_in(secrets, nsecrets, detail, strlen(detail)))
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

int http_finish(struct http_exchange *x, const struct secret *const *secrets, size_t nsecrets,
                struct smsend_result *r)
{
    long status = 0;
    if (x->code != CURLE_OK) {
        map_failure(x, secrets, nsecrets, x->code, r);
        return -1;
    }
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    r->body.data = x->resp.data;
    r->body.len = x->resp.len;
    r->retryable = 0;
    return 0;
}

double http_retry_after(struct http_exchange *x)
{
#if LIBCURL_VERSION_NUM >= 0x075400
    struct curl_header *hdr = NULL;
    const char *v;
    char *end;
    double secs;
    if (curl_easy_header(x->easy, "Retry-After", 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK || !hdr || !hdr->value)
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
    (void)x;
    return -1;
#endif
}
