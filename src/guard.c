/* guard.c — the guard's API, its keys (HMAC-SHA-256 of the number) and the process store: one
 * table for the whole process under a mutex. The Redis store lives in guard_redis.c. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "guard.h"
#include "guard_redis.h"
#include "hash.h"
#include "secret.h"
#include "sha256.h"

#define KEY_PREFIX "smsend:v1:"
#define KEY_HASH_BYTES 16 /* 128 bits of the HMAC: collisions between numbers are out of reach */
#define DERIVE_PREFIX "smsend-guard-v1:"
#define DEFAULT_WINDOW 600.0
#define DEFAULT_CONNECT_MS 5000
#define DEFAULT_TIMEOUT_MS 10000
#define E164_MAX 16 /* '+' and 15 digits */

struct smsend_guard {
    double min_interval;
    long pins_per_window;
    double window;
    long connect_ms, timeout_ms;
    struct guard_redis *redis; /* NULL: the process store */
    struct hmac_sha256 hk;
};

void guard_msg(char *msg, size_t n, const char *fmt, ...)
{
    va_list ap;
    if (!msg || !n)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
}

/* ---- the process store ---- */

struct slot {
    unsigned char id[KEY_HASH_BYTES];
    unsigned char token[16];
    double cd_until;  /* monotonic seconds; the cooldown holds while now < cd_until */
    double win_until; /* end of the window that win_count counts in */
    long win_count;
};

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *store; /* GUARD_PROCESS_SLOTS entries, allocated on the first claim */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int slot_live(const struct slot *s, double now)
{
    return s->cd_until > now || (s->win_count > 0 && s->win_until > now);
}

/* The live entry for id, or NULL; *free_out gets the first reusable slot of the neighbourhood. */
static struct slot *store_find(const unsigned char id[KEY_HASH_BYTES], double now, struct slot **free_out)
{
    uint64_t h;
    size_t i, base;
    struct slot *found = NULL, *free_slot = NULL;
    memcpy(&h, id, sizeof h);
    base = (size_t)(h % GUARD_PROCESS_SLOTS);
    for (i = 0; i < GUARD_PROCESS_PROBE; i++) {
        struct slot *s = &store[(base + i) % GUARD_PROCESS_SLOTS];
        if (!slot_live(s, now)) {
            if (!free_slot)
                free_slot = s;
        } else if (memcmp(s->id, id, KEY_HASH_BYTES) == 0) {
            found = s;
            break;
        }
    }
    if (free_out)
        *free_out = free_slot;
    return found;
}

static enum guard_verdict process_claim(const struct smsend_guard *g, const unsigned char id[KEY_HASH_BYTES],
                                        const unsigned char token[16], double *retry_after, char *msg,
                                        size_t msglen)
{
    struct slot *s, *free_slot;
    double now, wait = 0;
    pthread_mutex_lock(&store_lock);
    now = mono_now(); /* under the lock: a clock read before it could be older than a claim made meanwhile */
    if (!store && !(store = calloc(GUARD_PROCESS_SLOTS, sizeof *store))) {
        pthread_mutex_unlock(&store_lock);
        guard_msg(msg, msglen, "out of memory for the process guard table");
        return GUARD_UNAVAILABLE;
    }
    s = store_find(id, now, &free_slot);
    if (s) {
        if (g->min_interval > 0 && s->cd_until > now)
            wait = s->cd_until - now;
        if (g->pins_per_window > 0 && s->win_until > now && s->win_count >= g->pins_per_window &&
            s->win_until - now > wait)
            wait = s->win_until - now;
        if (wait > 0) {
            pthread_mutex_unlock(&store_lock);
            *retry_after = wait;
            return GUARD_REFUSED;
        }
    } else {
        if (!free_slot) {
            pthread_mutex_unlock(&store_lock);
            guard_msg(msg, msglen, "the process guard table is full near this number (%d live claims)",
                    GUARD_PROCESS_PROBE);
            return GUARD_UNAVAILABLE;
        }
        s = free_slot;
        memset(s, 0, sizeof *s);
        memcpy(s->id, id, KEY_HASH_BYTES);
    }
    if (g->pins_per_window > 0) {
        if (s->win_until > now) {
            s->win_count++;
        } else {
            s->win_count = 1;
            s->win_until = now + g->window;
        }
    }
    if (g->min_interval > 0) {
        s->cd_until = now + g->min_interval;
        memcpy(s->token, token, 16);
    }
    pthread_mutex_unlock(&store_lock);
    return GUARD_GRANTED;
}

static void process_release(const struct smsend_guard *g, const unsigned char id[KEY_HASH_BYTES],
                            const unsigned char token[16])
{
    struct slot *s;
    double now;
    pthread_mutex_lock(&store_lock);
    now = mono_now();
    if (store && (s = store_find(id, now, NULL))) {
        if (g->min_interval > 0 && s->cd_until > now && memcmp(s->token, token, 16) == 0)
            s->cd_until = 0;
        if (g->pins_per_window > 0 && s->win_until > now && s->win_count > 0)
            s->win_count--;
    }
    pthread_mutex_unlock(&store_lock);
}

/* fork(): the child gets the locks in a known state (taken here, released on both sides), and the
 * Redis pools drop the parent's connections (guard_redis.c checks the owner pid). */
static void fork_prepare(void)
{
    pthread_mutex_lock(&store_lock);
    guard_redis_fork_prepare();
}

static void fork_parent(void)
{
    guard_redis_fork_parent();
    pthread_mutex_unlock(&store_lock);
}

static void fork_child(void)
{
    guard_redis_fork_child();
    pthread_mutex_unlock(&store_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void install_atfork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- keys ---- */

static int e164_ok(const char *p, size_t n)
{
    size_t i;
    if (!p || n < 2 || n > E164_MAX || p[0] != '+')
        return 0;
    for (i = 1; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

static void number_id(const struct smsend_guard *g, const char *e164, size_t n, unsigned char id[KEY_HASH_BYTES])
{
    unsigned char mac[SHA256_DIGEST];
    hmac_sha256_mac(&g->hk, e164, n, mac);
    memcpy(id, mac, KEY_HASH_BYTES);
    secure_wipe(mac, sizeof mac);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

int guard_key_for(const struct smsend_guard *g, const char *e164, size_t n, char out[96])
{
    unsigned char id[KEY_HASH_BYTES];
    if (!g || !e164_ok(e164, n))
        return -1;
    number_id(g, e164, n, id);
    memcpy(out, KEY_PREFIX, sizeof KEY_PREFIX - 1);
    hex(id, sizeof id, out + sizeof KEY_PREFIX - 1);
    return (int)(sizeof KEY_PREFIX - 1 + 2 * KEY_HASH_BYTES);
}

/* ---- the API ---- */

static long to_ms(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    if (ms < 1)
        return 1;
    return ms > 1e15 ? (long)1e15 : (long)ms;
}

int guard_open(const struct guard_config *cfg, struct smsend_guard **out, char *err, size_t errlen)
{
    struct smsend_guard *g;
    double window = cfg->window;
    *out = NULL;
    if (isnan(cfg->min_interval) || cfg->min_interval < 0 || isinf(cfg->min_interval)) {
        guard_msg(err, errlen, "min_interval must be a number of seconds >= 0");
        return -1;
    }
    if (cfg->pins_per_window < 0) {
        guard_msg(err, errlen, "pins_per_window must be >= 0");
        return -1;
    }
    if (isnan(window) || window < 0 || isinf(window)) {
        guard_msg(err, errlen, "window must be a number of seconds > 0");
        return -1;
    }
    if (cfg->min_interval <= 0 && cfg->pins_per_window <= 0)
        return 0; /* no limit: no guard */
    if (!(g = calloc(1, sizeof *g))) {
        guard_msg(err, errlen, "out of memory");
        return -1;
    }
    g->min_interval = cfg->min_interval;
    g->pins_per_window = cfg->pins_per_window;
    g->window = window > 0 ? window : DEFAULT_WINDOW;
    g->connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS;
    g->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (cfg->url && !(cfg->url_n == 7 && memcmp(cfg->url, "process", 7) == 0)) {
        if (cfg->url_n > 8 && memcmp(cfg->url, "redis://", 8) == 0) {
            if (!(g->redis = guard_redis_open(cfg->url, cfg->url_n, err, errlen))) {
                free(g);
                return -1;
            }
        } else {
            guard_msg(err, errlen, "guard must be \"process\" or \"redis://[:password@]host:port[/db]\"");
            free(g);
            return -1;
        }
    }
    if (cfg->key && cfg->key_n) {
        hmac_sha256_init(&g->hk, cfg->key, cfg->key_n);
    } else {
        size_t n = sizeof DERIVE_PREFIX - 1 + (cfg->derive ? cfg->derive_n : 0);
        char *k = malloc(n ? n : 1);
        if (!k) {
            guard_redis_close(g->redis);
            free(g);
            guard_msg(err, errlen, "out of memory");
            return -1;
        }
        memcpy(k, DERIVE_PREFIX, sizeof DERIVE_PREFIX - 1);
        if (cfg->derive && cfg->derive_n)
            memcpy(k + sizeof DERIVE_PREFIX - 1, cfg->derive, cfg->derive_n);
        hmac_sha256_init(&g->hk, k, n);
        secure_wipe(k, n);
        free(k);
    }
    pthread_once(&atfork_once, install_atfork);
    *out = g;
    return 0;
}

void guard_close(struct smsend_guard *g)
{
    if (!g)
        return;
    guard_redis_close(g->redis);
    hmac_sha256_wipe(&g->hk);
    free(g);
}

enum guard_verdict guard_claim(struct smsend_guard *g, const char *e164, size_t n, struct guard_claim *c,
                               double *retry_after, char *msg, size_t msglen)
{
    unsigned char id[KEY_HASH_BYTES];
    enum guard_verdict v;
    double wait = 0;
    c->held = 0;
    c->key[0] = 0;
    if (retry_after)
        *retry_after = 0;
    if (!g)
        return GUARD_GRANTED; /* no limit configured: nothing to hold */
    if (!e164_ok(e164, n)) {
        guard_msg(msg, msglen, "the guard needs a normalised number (+ and 1 to 15 digits)");
        return GUARD_UNAVAILABLE;
    }
    guard_key_for(g, e164, n, c->key);
    {
        struct hash_key t;
        hash_random_key(&t);
        memcpy(c->token, &t, sizeof c->token);
    }
    if (g->redis) {
        char token_hex[33];
        hex(c->token, sizeof c->token, token_hex);
        v = guard_redis_claim(g->redis, c->key, token_hex, g->min_interval > 0 ? to_ms(g->min_interval) : 0,
                              g->pins_per_window, to_ms(g->window), g->connect_ms, g->timeout_ms, &wait, msg,
                              msglen);
    } else {
        number_id(g, e164, n, id);
        v = process_claim(g, id, c->token, &wait, msg, msglen);
        secure_wipe(id, sizeof id);
    }
    if (v == GUARD_GRANTED)
        c->held = 1;
    else if (v == GUARD_REFUSED && retry_after)
        *retry_after = wait;
    return v;
}

static int unhex(const char *p, unsigned char *out, size_t n)
{
    size_t i;
    for (i = 0; i < 2 * n; i++) {
        int d = p[i] >= '0' && p[i] <= '9' ? p[i] - '0' : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        if (i & 1)
            out[i / 2] = (unsigned char)(out[i / 2] | d);
        else
            out[i / 2] = (unsigned char)(d << 4);
    }
    return 0;
}

void guard_release(struct smsend_guard *g, struct guard_claim *c)
{
    if (!g || !c || !c->held)
        return;
    c->held = 0;
    if (g->redis) {
        char token_hex[33];
        hex(c->token, sizeof c->token, token_hex);
        guard_redis_release(g->redis, c->key, token_hex, g->min_interval > 0 ? to_ms(g->min_interval) : 0,
                            g->pins_per_window, g->connect_ms, g->timeout_ms);
    } else {
        unsigned char id[KEY_HASH_BYTES];
        /* the claim's key carries the id in hex after the prefix */
        if (strncmp(c->key, KEY_PREFIX, sizeof KEY_PREFIX - 1) == 0 &&
            unhex(c->key + sizeof KEY_PREFIX - 1, id, sizeof id) == 0)
            process_release(g, id, c->token);
    }
}
