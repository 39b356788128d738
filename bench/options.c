/* options.c — what libcurl's options and ways of driving a transfer cost per request, each
 * added alone to the bare loop (bare.c), and all of the module's together: the "libcurl options"
 * table of `make bench`, which says where the module's libcurl and libc instructions go.
 *
 * Usage: options BASE_URL CAINFO|- N RUNS BODY EXTRAS   (loop.h; EXTRAS a comma list, "-" none)
 *   curlu       CURLOPT_CURLU (the URL parsed once) instead of CURLOPT_URL
 *   ua_header   "User-Agent: smsend-lua/<v> libcurl/<v>" as a fourth header-list entry
 *   one_entry   the three headers and that User-Agent as ONE header-list entry of four lines
 *               joined by CRLF, Content-Type first (as src/http.c hands them to libcurl)
 *   useragent   the same string as CURLOPT_USERAGENT
 *   timeouts    CURLOPT_TIMEOUT_MS 10000, CURLOPT_CONNECTTIMEOUT_MS 5000
 *   proxy_off   CURLOPT_PROXY "" (no proxy, the proxy variables not read)
 *   noproxy     CURLOPT_NOPROXY "" (no_proxy/NO_PROXY not read)
 *   wipe        libcurl's frees and reallocs through a wiping allocator like the module's
 *               (curl_global_init_mem; a freed block wiped up to 2 KiB, a moved one in full)
 *   cleanse     CURLOPT_SSL_CTX_FUNCTION setting OpenSSL 3's SSL_OP_CLEANSE_PLAINTEXT
 *   module      every option src/http.c sets: the ones above but ua_header, useragent and cleanse
 *               (src/http.c sets that on the connections that carry a login only), and
 *               NOSIGNAL, SHARE (DNS, TLS sessions), HEADERFUNCTION, ERRORBUFFER, OPENSOCKET/
 *               CLOSESOCKETFUNCTION, FOLLOWLOCATION 0, SSL_VERIFYPEER/HOST, HTTP_VERSION 1.1,
 *               TCP_KEEPALIVE, PROTOCOLS_STR, PREREQFUNCTION, POSTFIELDSIZE, the answer copied
 *   multi       driven by curl_multi_perform + curl_multi_poll instead of curl_easy_perform, as
 *               src/http.c drives the blocking calls (a pooled transport)
 *   msock       driven as src/http.c drives pollable ops: curl_multi_socket_action with CURLMOPT_SOCKETFUNCTION
 *               and TIMERFUNCTION over epoll, CURLMOPT_MAX_HOST_CONNECTIONS 4 */
#define BARE_NO_MAIN
#include "bare.c"

#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static const char *extras = "";

static int has(const char *word)
{
    size_t n = strlen(word);
    const char *p;
    for (p = extras; (p = strstr(p, word)) != NULL; p += n)
        if ((p == extras || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

/* ---- the pieces the extras add ---- */

static void wiping_free(void *p)
{
    if (p) {
        size_t n = malloc_usable_size(p);
        explicit_bzero(p, n > 2048 ? 2048 : n);
        free(p);
    }
}

/* a block that fits stays; a moved one is wiped in full, and gets room for its next doublings
 * (the module's rule, not its code) */
static void *wiping_realloc(void *p, size_t n)
{
    size_t have = p ? malloc_usable_size(p) : 0, room;
    void *q = NULL;
    if (p && n > 0 && n <= have)
        return p;
    if (n > 0) {
        room = n < 256 ? 512 : n <= SIZE_MAX - 16384 ? n + (n < 16384 ? n : 16384) : n;
        if (!(q = malloc(room)))
            return NULL; /* p is left as it was */
    }
    if (p) {
        if (q)
            memcpy(q, p, have); /* have < n here */
        explicit_bzero(p, have);
        free(p);
    }
    return q;
}

struct answer {
    char data[4096];
    size_t len;
};
static struct answer answer;

static size_t copy_answer(char *p, size_t size, size_t nmemb, void *ud)
{
    struct answer *a = ud;
    size_t n = size * nmemb;
    if (n > sizeof a->data - a->len)
        return 0;
    memcpy(a->data + a->len, p, n);
    a->len += n;
    return n;
}

static size_t count_header(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    ++*(long *)ud;
    return size * nmemb;
}

static int prereq(void *ud, char *a, char *b, int c, int d)
{
    (void)a, (void)b, (void)c, (void)d;
    ++*(long *)ud;
    return CURL_PREREQFUNC_OK;
}

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)ud, (void)purpose;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int close_socket(void *ud, curl_socket_t s)
{
    (void)ud;
    return close(s);
}

typedef uint64_t (*ssl_ctx_set_options_fn)(void *ctx, uint64_t op);
static ssl_ctx_set_options_fn ssl_ctx_set_options;

static CURLcode on_ssl_ctx(CURL *e, void *ctx, void *ud)
{
    (void)e, (void)ud;
    if (ssl_ctx_set_options)
        ssl_ctx_set_options(ctx, (uint64_t)1 << 1); /* SSL_OP_CLEANSE_PLAINTEXT */
    return CURLE_OK;
}

/* ---- the multi_socket driver (as src/http.c) ---- */

static CURLM *multi;
static int epfd = -1;
static double timer_at = -1;

static int on_socket(CURL *e, curl_socket_t s, int what, void *ud, void *socketp)
{
    struct epoll_event ev;
    (void)e, (void)ud, (void)socketp;
    memset(&ev, 0, sizeof ev);
    ev.data.fd = s;
    if (what == CURL_POLL_REMOVE)
        return epoll_ctl(epfd, EPOLL_CTL_DEL, s, &ev), 0;
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, s, &ev) != 0)
        epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

static int on_timer(CURLM *m, long ms, void *ud)
{
    (void)m, (void)ud;
    timer_at = ms < 0 ? -1 : loop_now(CLOCK_MONOTONIC) + (double)ms / 1000.0;
    return 0;
}

static CURLcode drive_msock(CURL *e)
{
    CURLcode rc = CURLE_OK;
    int done = 0, running, left, i, n;
    CURLMsg *m;
    struct epoll_event ev[16];
    curl_multi_add_handle(multi, e);
    while (!done) {
        int ms = 1000;
        if (timer_at >= 0) {
            double w = timer_at - loop_now(CLOCK_MONOTONIC);
            ms = w <= 0 ? 0 : (int)(w * 1000.0 + 0.999);
        }
        n = epoll_wait(epfd, ev, 16, ms);
        for (i = 0; i < n; i++)
            curl_multi_socket_action(multi, ev[i].data.fd,
                                     (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                                         (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0),
                                     &running);
        if (timer_at >= 0 && loop_now(CLOCK_MONOTONIC) >= timer_at) {
            timer_at = -1;
            curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        while ((m = curl_multi_info_read(multi, &left)) != NULL)
            if (m->msg == CURLMSG_DONE)
                rc = m->data.result, done = 1;
    }
    curl_multi_remove_handle(multi, e);
    return rc;
}

static CURLcode drive_multi(CURL *e)
{
    CURLcode rc = CURLE_OK;
    int running = 1, left;
    CURLMsg *m;
    curl_multi_add_handle(multi, e);
    while (running) {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    while ((m = curl_multi_info_read(multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE)
            rc = m->data.result;
    curl_multi_remove_handle(multi, e);
    return rc;
}

static CURLcode (*drive)(CURL *e) = curl_easy_perform;

/* ---- set-up and one request ---- */

static int setup_extras(CURL *e, const char *url, const char *cainfo, const char *body, void **ud)
{
    static long headers_seen, prereqs;
    static char errbuf[CURL_ERROR_SIZE];
    char ua[128];
    int module = has("module");
    if (setup(e, url, cainfo, body, ud) != 0)
        return -1;
    snprintf(ua, sizeof ua, "User-Agent: smsend-lua/0.1.0 libcurl/%s", curl_version_info(CURLVERSION_NOW)->version);
    if (has("curlu") || module) {
        CURLU *u = curl_url();
        if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
            return -1;
        curl_easy_setopt(e, CURLOPT_CURLU, u);
    }
    if (has("ua_header")) {
        struct curl_slist *h = curl_slist_append(headers, ua);
        if (!h)
            return -1;
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    }
    if (has("one_entry") || module) {
        static char all[512];
        struct curl_slist *h;
        snprintf(all, sizeof all, "Content-Type: application/json\r\nuser_key: UK\r\nAccess_token: TOK\r\n%s", ua);
        if (!(h = curl_slist_append(NULL, all)))
            return -1;
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    }
    if (has("useragent"))
        curl_easy_setopt(e, CURLOPT_USERAGENT, ua + 12);
    if (has("timeouts") || module) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    }
    if (has("proxy_off") || module)
        curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (has("noproxy") || module)
        curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    if (has("cleanse") && cainfo) {
        void *lib = dlopen("libssl.so.3", RTLD_LAZY | RTLD_NOLOAD);
        if (lib)
            *(void **)&ssl_ctx_set_options = dlsym(lib, "SSL_CTX_set_options");
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    }
    if (module) {
        CURLSH *sh = curl_share_init();
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_SHARE, sh);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, copy_answer);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, count_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, &headers_seen);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq);
        curl_easy_setopt(e, CURLOPT_PREREQDATA, &prereqs);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (has("msock") || has("multi")) {
        if (!(multi = curl_multi_init()))
            return -1;
        drive = drive_multi;
    }
    if (has("msock")) {
        if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
            return -1;
        curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
        drive = drive_msock;
    }
    return 0;
}

static int one_extras(CURL *e, void *ud)
{
    answer.len = 0;
    if (drive == curl_easy_perform)
        return one(e, ud); /* the bare loop's request */
    return loop_check(e, drive(e), "options");
}

int main(int argc, char **argv)
{
    if (argc > 6 && strcmp(argv[6], "-") != 0)
        extras = argv[6];
    /* libcurl's allocator is chosen before anything else */
    if (has("wipe") || has("module"))
        curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiping_free, wiping_realloc, strdup, calloc);
    return loop_main(argc, argv, "options", setup_extras, one_extras);
}
