/* http.h — the libcurl transport: one multi handle per client (its kept-alive connections and
 * an epoll descriptor that holds their sockets), one reusable easy handle per exchange in flight,
 * capped answers, and the mapping of curl outcomes to the stable error codes. Never calls Lua.
 * Blocking and pollable calls drive the same multi handle: a blocking call just waits on the
 * descriptor itself. */
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
#define HTTP_MAX_SOCKETS 16  /* sockets of one client we keep track of (fork, staleness) */
#define HTTP_MAX_HOST_CONNECTIONS 4 /* per transport: more exchanges at once wait in its queue */

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

/* A header list shared by the exchanges that use it; freed (wiped) when the last one lets go. */
struct http_headers {
    struct curl_slist *list;
    int refs;
};

struct http_transport;

/* One request/answer on its own easy handle. Kept and reused by its transport. */
struct http_exchange {
    struct http_transport *t;
    CURL *easy;
    struct http_exchange *next_idle;
    struct http_headers *headers;     /* held while in flight */
    void *owner;                      /* whoever started it (an op), for the done callback */
    int in_multi;                     /* added to the multi handle, not yet removed */
    int queued;                       /* waiting in its transport's queue for a connection */
    struct http_exchange *next_queued;
    double deadline;                  /* monotonic seconds: the end of its timeout */
    int done;
    CURLcode code;
    const char *cur_url;              /* pointer last given to CURLOPT_URL */
    CURLU *cur_curlu;                 /* handle last given to CURLOPT_CURLU */
    int url_secret;                   /* the URL set now holds a password (login) */
    int counted_login;                /* in the process's count of logins in flight */
    int cur_login;                    /* set up for a login: a connection of its own, cleansed */
    enum http_method cur_method;
    const char *cur_body;             /* CURLOPT_POSTFIELDS / POSTFIELDSIZE as set now */
    size_t cur_body_len;
    long cur_timeout_ms;              /* CURLOPT_TIMEOUT_MS as set now */
    struct curl_slist *cur_list;      /* CURLOPT_HTTPHEADER as set now */
    struct buf resp;
    int prereq_calls;                 /* times libcurl was about to send in this exchange */
    size_t header_bytes;              /* of the answer in progress, against HTTP_HEADER_CAP */
    int header_lines;
    int header_overflow;              /* the answer's headers passed the caps */
    int refused_socket;               /* the open-socket guard refused an address */
    double started;                   /* when it was added (monotonic seconds), for the latency */
    char errbuf[CURL_ERROR_SIZE];
};

typedef void (*http_done_fn)(struct http_exchange *x, void *owner);

/* Connections to one kind of gateway endpoint: a multi handle (its connection cache) with an epoll
 * descriptor holding its sockets. A client's pollable ops share the client's own transport; a
 * blocking call borrows one from a process-wide pool of transports with the same options, so that
 * the connections of a process grow with the calls in flight, not with clients or Lua states. */
/* What a pollable op waits on: its transport's epoll descriptor, with an eventfd in it that makes
 * it readable when an op ends without socket activity (a cancel, a close). Held by the transport
 * and by each pollable op; it outlives a closed client while ops still hold it, so their
 * descriptor stays theirs (and readable) until they are freed. */
struct http_waker {
    int epfd, evfd;
    int refs;
};

struct http_transport {
    CURLM *multi;
    int epfd;                         /* epoll descriptor holding libcurl's sockets */
    struct http_waker *waker;         /* made on first use (pollable ops), or NULL */
    double timer_at;                  /* monotonic seconds libcurl wants to be called at; < 0: none */
    int socks[HTTP_MAX_SOCKETS];      /* sockets opened here, for fork() and staleness */
    int nsocks;
    int inflight;                     /* exchanges in the multi handle */
    /* Exchanges past HTTP_MAX_HOST_CONNECTIONS wait here, not in libcurl's own queue: libcurl
     * would try to connect each of them again every time a connection comes free (a whole
     * connection set-up each time), which made 16 ops in flight cost 1.6 times one per call. */
    struct http_exchange *queue_head, *queue_tail;
    struct http_exchange *failed;     /* taken out of the queue without a transfer: reported next */
    int held;                         /* exchanges taken out of idle and not yet released */
    int pooled;                       /* belongs to the process pool (else to one client) */
    unsigned fork_generation;         /* process the connections belong to */
    struct http_options opts;         /* owned copies: what libcurl is set up with */
    char *noproxy;                    /* no_proxy as read when the options were made, or NULL */
    struct http_exchange *idle;
    struct http_transport *next_pooled;
    http_done_fn on_done;
    int driving;                      /* inside http_drive: no reentry */
    int kicked;                       /* a transfer went into the multi handle since the last drive:
                                         the next one (or this one, again) starts it at once */
};

/* What a client keeps of the transport side: its options, its header lists, its own transport
 * for pollable ops (made on first use), and the pooled transport it used last. */
struct http_client {
    struct http_options opts;         /* owned copies; proxy as decided once (variables read) */
    char *noproxy;
    struct http_headers *auth;        /* user_key + key + content type + User-Agent */
    struct http_headers *plain;       /* for login: Accept + User-Agent, no credentials */
    struct http_transport *own;
    http_done_fn on_done;
};

/* Once per process, thread-safe: curl_global_init and the fork watch. 0 on success. */
int http_global_init(void);
/* "libcurl/x.y.z" of the library actually loaded. */
const char *http_curl_version(void);
double http_now(void); /* monotonic seconds */

/* 1 for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
struct sockaddr;
int http_addr_is_loopback(const struct sockaddr *sa);

int http_open(struct http_client *hc, const struct http_options *o, http_done_fn on_done, char *err,
              size_t errlen);
/* Frees everything (the exchanges of the client's own transport must have been released). */
void http_close(struct http_client *hc);

/* (Re)builds the credential headers; key_name is "Session_key" or "Access_token". Exchanges in
 * flight keep the list they started with. */
int http_set_auth(struct http_client *hc, const struct secret *user_key, const char *key_name,
                  const struct secret *key);

/* A transport for hc: its own one (own != 0), or one borrowed from the process pool. NULL when
 * out of memory. A borrowed one goes back with http_give_back once nothing of it is held. */
struct http_transport *http_take(struct http_client *hc, int own);
void http_give_back(struct http_transport *t);

struct http_call {
    enum http_method method;
    const char *url;
    CURLU *curlu;           /* the same URL parsed once (never for the login URL), or NULL */
    int url_is_scratch;     /* URL text changes between calls at the same address */
    int with_auth;          /* send the credential headers */
    long timeout_ms;        /* the whole exchange's limit */
    const char *body;
    size_t body_len;
};

/* Starts one exchange for owner. Returns it, or NULL with r filled (nothing was sent). */
struct http_exchange *http_start(struct http_transport *t, struct http_client *hc, const struct http_call *call,
                                 void *owner, struct smsend_result *r);
/* After the exchange is done: on a transport failure fills r (error, message, retryable) and
 * returns -1; when an HTTP answer arrived sets r->status and r->body (a view of x->resp, valid
 * until http_release) and returns 0, leaving the interpretation of the status to the caller.
 * secrets are kept out of messages. */
int http_finish(struct http_exchange *x, const struct secret *const *secrets, size_t nsecrets,
                struct smsend_result *r);
/* Stops an exchange still in flight; returns 1 when a byte of its request may have been written. */
int http_abort(struct http_exchange *x);
/* Gives the exchange back to its transport for reuse (wiping its answer); from the thread that
 * holds the transport. */
void http_release(struct http_exchange *x);
/* 1 when a byte of the exchange's request may have been written. */
static inline int http_may_have_sent(const struct http_exchange *x) { return x->prereq_calls > 0; }

/* Lets libcurl do whatever is ready now, without waiting; finished exchanges are reported
 * through on_done (which may start new ones). */
void http_drive(struct http_transport *t);
/* Waits at most max_s seconds (< 0: no limit of ours) for a socket or libcurl's timer, then
 * drives. */
void http_wait(struct http_transport *t, double max_s);
/* The epoll descriptor (stable for the transport's life) and the seconds until libcurl's timer
 * (< 0: none). */
int http_fd(const struct http_transport *t);
double http_timeout(const struct http_transport *t);

/* A parsed URL handle for a fixed URL (CURLOPT_CURLU: libcurl does not parse it per request). */
CURLU *http_parse_url(const char *url);

/* A reference to t's waker (made on first use); NULL when out of memory. */
struct http_waker *http_waker_hold(struct http_transport *t);
void http_waker_release(struct http_waker *w);
/* Makes the waker's descriptor readable until the transport is next driven. */
void http_wake(struct http_waker *w);

/* Seconds from a Retry-After header of the exchange's answer, or -1. */
double http_retry_after(struct http_exchange *x);

#endif
