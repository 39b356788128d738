/* guard_redis.c — the guard's Redis store over hiredis: URL parsing, a process-wide pool of
 * kept-alive connections per URL, and one EVAL per claim or release. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include "guard_redis.h"
#include "secret.h"

#define POOL_IDLE_MAX 8  /* kept-alive connections per URL; more are opened when busy, closed after */
#define HOST_MAX 255

/* KEYS[1] = cooldown key, KEYS[2] = window key; ARGV = token, cooldown ms, limit, window ms.
 * The window key gets its expiry in the same script that creates it, so no key is left without
 * one; a refused claim undoes its own SET and INCR. Returns {1, 0} or {0, ms until free}. */
static const char CLAIM_SCRIPT[] =
    "local cd, lim, win = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local set, wait, refused = false, 0, false\n"
    "if cd > 0 then\n"
    "  if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', cd) then set = true\n"
    "  else refused = true; wait = redis.call('PTTL', KEYS[1]) end\n"
    "end\n"
    "if lim > 0 then\n"
    "  local n = redis.call('INCR', KEYS[2])\n"
    "  if n == 1 or redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], win) end\n"
    "  if n > lim then\n"
    "    refused = true\n"
    "    local t = redis.call('PTTL', KEYS[2])\n"
    "    if t > wait then wait = t end\n"
    "  end\n"
    "end\n"
    "if refused then\n"
    "  if set then redis.call('DEL', KEYS[1]) end\n"
    "  if lim > 0 then redis.call('DECR', KEYS[2]) end\n"
    "  if wait < 1 then wait = 1 end\n"
    "  return {0, wait}\n"
    "end\n"
    "return {1, 0}\n";

/* ARGV = token, cooldown ms, limit. The cooldown goes only while it holds our token; the count
 * is decremented only while its window lives (a DECR on a missing key would make one without
 * expiry). */
static const char RELEASE_SCRIPT[] =
    "if tonumber(ARGV[2]) > 0 and redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "if tonumber(ARGV[3]) > 0 and redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "  if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end\n"
    "end\n"
    "return 1\n";

struct conn {
    redisContext *ctx;
    pid_t pid;       /* the process that opened it: a forked child never writes to it */
    long timeout_ms; /* read/write timeout currently set on the socket */
};

struct guard_redis {
    struct guard_redis *next;
    int refs;
    struct secret url; /* the registry key; it holds the password */
    char host[HOST_MAX + 1];
    int port, db;
    struct secret user, password;
    char shown[HOST_MAX + 40]; /* redis://host:port/db, for messages */
    struct conn idle[POOL_IDLE_MAX];
    int n_idle;
};

/* One lock for the registry and every pool's idle list; never held across I/O. */
static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct guard_redis *pools;

/* ---- URL ---- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes p[0..n) into a secret. -1 on a bad escape or out of memory. */
static int decode_secret(const char *p, size_t n, struct secret *s)
{
    char *tmp = malloc(n + 1);
    size_t i, o = 0;
    int rc;
    if (!tmp)
        return -1;
    for (i = 0; i < n; i++) {
        if (p[i] == '%') {
            int hi, lo;
            if (i + 2 >= n || (hi = hexval(p[i + 1])) < 0 || (lo = hexval(p[i + 2])) < 0) {
                secure_wipe(tmp, o); /* the bytes written so far */
                free(tmp);
                return -1;
            }
            tmp[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            tmp[o++] = p[i];
        }
    }
    tmp[o] = 0;
    rc = secret_set(s, tmp, o);
    secure_wipe(tmp, o + 1);
    free(tmp);
    return rc;
}

static int parse_number(const char *p, size_t n, long max, long *out)
{
    long v = 0;
    size_t i;
    if (n == 0 || n > 9)
        return -1;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* redis://[[user]:password@]host[:port][/db]; the messages never repeat the URL. */
static int parse_url(struct guard_redis *p, const char *url, size_t n, char *err, size_t errlen)
{
    const char *s = url + 8, *end = url + n, *at, *slash, *host, *host_end, *port = NULL;
    long v;
    slash = memchr(s, '/', (size_t)(end - s));
    if (!slash)
        slash = end;
    at = NULL;
    for (const char *q = s; q < slash; q++)
        if (*q == '@')
            at = q; /* the last '@' before the path: a password may hold an encoded one */
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (!colon) {
            guard_msg(err, errlen, "guard URL: the part before '@' must be [user]:password");
            return -1;
        }
        if ((colon > s && decode_secret(s, (size_t)(colon - s), &p->user)) ||
            decode_secret(colon + 1, (size_t)(at - colon - 1), &p->password)) {
            guard_msg(err, errlen, "guard URL: bad %%-escape in the user or password (or out of memory)");
            return -1;
        }
        if (p->password.len == 0)
            secret_clear(&p->password);
        s = at + 1;
    }
    host = s;
    if (s < slash && *s == '[') {
        host_end = memchr(s, ']', (size_t)(slash - s));
        if (!host_end) {
            guard_msg(err, errlen, "guard URL: unclosed '[' in the host");
            return -1;
        }
        host++;
        if (host_end + 1 < slash) {
            if (host_end[1] != ':') {
                guard_msg(err, errlen, "guard URL: junk after the IPv6 address");
                return -1;
            }
            port = host_end + 2;
        }
    } else {
        host_end = memchr(s, ':', (size_t)(slash - s));
        if (host_end)
            port = host_end + 1;
        else
            host_end = slash;
    }
    if (host_end == host || (size_t)(host_end - host) > HOST_MAX) {
        guard_msg(err, errlen, "guard URL: the host is missing or too long");
        return -1;
    }
    for (const char *q = host; q < host_end; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '@' || *q == '?' || *q == '#' ||
            (*q == ':' && host[-1] != '[')) {
            guard_msg(err, errlen, "guard URL: the host has an invalid character");
            return -1;
        }
    memcpy(p->host, host, (size_t)(host_end - host));
    p->host[host_end - host] = 0;
    p->port = 6379;
    if (port) {
        if (parse_number(port, (size_t)(slash - port), 65535, &v) || v == 0) {
            guard_msg(err, errlen, "guard URL: the port must be 1 to 65535");
            return -1;
        }
        p->port = (int)v;
    }
    p->db = 0;
    if (slash < end && slash + 1 < end) {
        if (parse_number(slash + 1, (size_t)(end - slash - 1), 1000000, &v)) {
            guard_msg(err, errlen, "guard URL: the database after '/' must be a number");
            return -1;
        }
        p->db = (int)v;
    }
    snprintf(p->shown, sizeof p->shown, "redis://%s%s%s:%d/%d", host[-1] == '[' ? "[" : "", p->host,
             host[-1] == '[' ? "]" : "", p->port, p->db);
    return 0;
}

static void pool_free(struct guard_redis *p)
{
    int i;
    for (i = 0; i < p->n_idle; i++)
        redisFree(p->idle[i].ctx);
    secret_clear(&p->url);
    secret_clear(&p->user);
    secret_clear(&p->password);
    free(p);
}

struct guard_redis *guard_redis_open(const char *url, size_t n, char *err, size_t errlen)
{
    struct guard_redis *p = calloc(1, sizeof *p), *q;
    if (!p) {
        guard_msg(err, errlen, "out of memory");
        return NULL;
    }
    if (memchr(url, 0, n) || parse_url(p, url, n, err, errlen) || secret_set(&p->url, url, n)) {
        if (!err || !err[0])
            guard_msg(err, errlen, "guard URL: out of memory");
        pool_free(p);
        return NULL;
    }
    pthread_mutex_lock(&pools_lock);
    for (q = pools; q; q = q->next)
        if (q->url.len == n && memcmp(q->url.data, url, n) == 0)
            break;
    if (q) {
        q->refs++;
    } else {
        p->refs = 1;
        p->next = pools;
        pools = p;
    }
    pthread_mutex_unlock(&pools_lock);
    if (q) {
        pool_free(p);
        return q;
    }
    return p;
}

void guard_redis_close(struct guard_redis *p)
{
    struct guard_redis **pp;
    int last = 0;
    if (!p)
        return;
    pthread_mutex_lock(&pools_lock);
    if (--p->refs == 0) {
        for (pp = &pools; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        last = 1;
    }
    pthread_mutex_unlock(&pools_lock);
    if (last)
        pool_free(p); /* redisFree writes nothing: closing an inherited fd only drops our copy */
}

/* ---- connections ---- */

static struct timeval ms_tv(long ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

/* Why a round trip failed, for messages: hiredis's text, or "no answer in N ms" for a timeout. */
static void describe(const struct guard_redis *p, redisContext *c, int saved_errno, long timeout_ms,
                     const char *what, char *msg, size_t msglen)
{
    if (c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
        guard_msg(msg, msglen, "the guard store %s gave no answer to %s within %ld ms", p->shown, what, timeout_ms);
    else
        guard_msg(msg, msglen, "the guard store %s failed on %s: %s", p->shown, what,
                c->errstr[0] ? c->errstr : "connection lost");
}

/* Writes all of buf to the socket ourselves, so the bytes (AUTH's password) never sit in hiredis's
 * output buffer, which it frees without wiping. */
static int write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t k = write(fd, buf, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        buf += k;
        n -= (size_t)k;
    }
    return 0;
}

static size_t resp_arg(char *o, const char *p, size_t n)
{
    size_t k = (size_t)sprintf(o, "$%zu\r\n", n);
    memcpy(o + k, p, n);
    memcpy(o + k + n, "\r\n", 2);
    return k + n + 2;
}

static int authenticate(const struct guard_redis *p, redisContext *c, long timeout_ms, char *msg, size_t msglen)
{
    size_t cap = 64 + p->user.len + p->password.len, len;
    char *cmd = malloc(cap);
    redisReply *r = NULL;
    int ok = 0, saved;
    if (!cmd) {
        guard_msg(msg, msglen, "out of memory");
        return -1;
    }
    len = (size_t)sprintf(cmd, "*%d\r\n", p->user.data ? 3 : 2);
    len += resp_arg(cmd + len, "AUTH", 4);
    if (p->user.data)
        len += resp_arg(cmd + len, p->user.data, p->user.len);
    len += resp_arg(cmd + len, p->password.data, p->password.len);
    if (write_all(c->fd, cmd, len) == 0) {
        errno = 0;
        if (redisGetReply(c, (void **)&r) == REDIS_OK && r) {
            if (r->type == REDIS_REPLY_STATUS)
                ok = 1;
            else
                guard_msg(msg, msglen, "the guard store %s refused AUTH: %.*s", p->shown,
                        r->type == REDIS_REPLY_ERROR ? (int)r->len : 0, r->type == REDIS_REPLY_ERROR ? r->str : "");
        } else {
            saved = errno;
            describe(p, c, saved, timeout_ms, "AUTH", msg, msglen);
        }
    } else {
        saved = errno;
        guard_msg(msg, msglen, "the guard store %s failed on AUTH: %s", p->shown,
                saved == EAGAIN ? "write timed out" : strerror(saved));
    }
    if (r)
        freeReplyObject(r);
    secure_wipe(cmd, cap);
    free(cmd);
    return ok ? 0 : -1;
}

static redisContext *connect_new(const struct guard_redis *p, long connect_ms, long timeout_ms, char *msg,
                                 size_t msglen)
{
    redisContext *c = redisConnectWithTimeout(p->host, p->port, ms_tv(connect_ms));
    redisReply *r;
    if (!c) {
        guard_msg(msg, msglen, "out of memory for a connection to the guard store");
        return NULL;
    }
    if (c->err) {
        guard_msg(msg, msglen, "cannot connect to the guard store %s within %ld ms: %s", p->shown, connect_ms,
                c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, ms_tv(timeout_ms));
    if (p->password.data && authenticate(p, c, timeout_ms, msg, msglen)) {
        redisFree(c);
        return NULL;
    }
    if (p->db) {
        errno = 0;
        r = redisCommand(c, "SELECT %d", p->db);
        if (!r || r->type != REDIS_REPLY_STATUS) {
            if (r)
                guard_msg(msg, msglen, "the guard store %s refused SELECT: %.*s", p->shown,
                        r->type == REDIS_REPLY_ERROR ? (int)r->len : 0, r->type == REDIS_REPLY_ERROR ? r->str : "");
            else
                describe(p, c, errno, timeout_ms, "SELECT", msg, msglen);
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

/* A pooled connection of this process, or NULL (then the caller connects). */
static int take_idle(struct guard_redis *p, struct conn *out)
{
    pid_t me = getpid();
    int got = 0;
    pthread_mutex_lock(&pools_lock);
    while (p->n_idle && !got) {
        struct conn c = p->idle[--p->n_idle];
        if (c.pid == me) {
            *out = c;
            got = 1;
        } else {
            /* inherited through fork(): the parent owns the stream; our copy of the fd goes */
            redisFree(c.ctx);
        }
    }
    pthread_mutex_unlock(&pools_lock);
    return got;
}

static void give_back(struct guard_redis *p, struct conn *c)
{
    pthread_mutex_lock(&pools_lock);
    if (p->n_idle < POOL_IDLE_MAX) {
        p->idle[p->n_idle++] = *c;
        c->ctx = NULL;
    }
    pthread_mutex_unlock(&pools_lock);
    if (c->ctx)
        redisFree(c->ctx);
    c->ctx = NULL;
}

/* Runs one EVAL. Returns the reply (the connection goes back to the pool), or NULL with msg.
 * A pooled connection the server has closed (restart, idle timeout) fails before anything ran:
 * that case alone is tried once more on a new connection. */
static redisReply *eval(struct guard_redis *p, const char *script, const char *key, const char *token_hex,
                        long a, long b, long c3, int nargs, long connect_ms, long timeout_ms, char *msg,
                        size_t msglen)
{
    char k1[112], k2[112];
    int attempt;
    snprintf(k1, sizeof k1, "%s:c", key);
    snprintf(k2, sizeof k2, "%s:w", key);
    for (attempt = 0; attempt < 2; attempt++) {
        struct conn cn;
        redisReply *r;
        int pooled = take_idle(p, &cn), saved;
        if (!pooled) {
            cn.ctx = connect_new(p, connect_ms, timeout_ms, msg, msglen);
            if (!cn.ctx)
                return NULL;
            cn.pid = getpid();
            cn.timeout_ms = timeout_ms;
        } else if (cn.timeout_ms != timeout_ms) {
            redisSetTimeout(cn.ctx, ms_tv(timeout_ms));
            cn.timeout_ms = timeout_ms;
        }
        errno = 0;
        if (nargs == 3)
            r = redisCommand(cn.ctx, "EVAL %s 2 %s %s %s %ld %ld %ld", script, k1, k2, token_hex, a, b, c3);
        else
            r = redisCommand(cn.ctx, "EVAL %s 2 %s %s %s %ld %ld", script, k1, k2, token_hex, a, b);
        saved = errno;
        if (r) {
            give_back(p, &cn);
            return r;
        }
        if (pooled && attempt == 0 &&
            (cn.ctx->err == REDIS_ERR_EOF ||
             (cn.ctx->err == REDIS_ERR_IO && (saved == ECONNRESET || saved == EPIPE)))) {
            redisFree(cn.ctx);
            continue;
        }
        describe(p, cn.ctx, saved, timeout_ms, "EVAL", msg, msglen);
        redisFree(cn.ctx);
        return NULL;
    }
    return NULL;
}

enum guard_verdict guard_redis_claim(struct guard_redis *p, const char *key, const char token_hex[33],
                                     long cd_ms, long limit, long window_ms, long connect_ms,
                                     long timeout_ms, double *retry_after, char *msg, size_t msglen)
{
    redisReply *r = eval(p, CLAIM_SCRIPT, key, token_hex, cd_ms, limit, window_ms, 3, connect_ms, timeout_ms,
                         msg, msglen);
    enum guard_verdict v = GUARD_UNAVAILABLE;
    if (!r)
        return GUARD_UNAVAILABLE;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
        if (r->element[0]->integer == 1) {
            v = GUARD_GRANTED;
        } else {
            v = GUARD_REFUSED;
            *retry_after = (double)r->element[1]->integer / 1000.0;
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        guard_msg(msg, msglen, "the guard store %s refused the claim: %.*s", p->shown, (int)r->len, r->str);
    } else {
        guard_msg(msg, msglen, "the guard store %s gave an unexpected answer to the claim", p->shown);
    }
    freeReplyObject(r);
    return v;
}

void guard_redis_release(struct guard_redis *p, const char *key, const char token_hex[33], long cd_ms,
                         long limit, long connect_ms, long timeout_ms)
{
    char msg[8];
    redisReply *r = eval(p, RELEASE_SCRIPT, key, token_hex, cd_ms, limit, 0, 2, connect_ms, timeout_ms, msg,
                         sizeof msg);
    if (r)
        freeReplyObject(r);
}

/* ---- fork ---- */

void guard_redis_fork_prepare(void)
{
    pthread_mutex_lock(&pools_lock);
}

void guard_redis_fork_parent(void)
{
    pthread_mutex_unlock(&pools_lock);
}

void guard_redis_fork_child(void)
{
    pthread_mutex_unlock(&pools_lock);
}
