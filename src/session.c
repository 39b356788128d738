/* session.c — the process-wide registry of username/password sessions (see session.h): a list
 * under one mutex, a condition variable per session for the clients waiting on its login.
 * The lock is held only to read or change a session, never across network I/O. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hash.h"
#include "session.h"
#include "sha256.h"

struct smsend_session {
    struct smsend_session *next;
    int refs;
    char *base_url;
    int auth_token;
    unsigned char who[SHA256_DIGEST]; /* HMAC(process key, username NUL password) */
    struct secret user_key, key;      /* valid when has_keys */
    int has_keys;
    atomic_uint gen;                  /* bumped when keys are stored */
    unsigned failures;                /* bumped when a login fails */
    struct smsend_result failure;     /* the last failed login's outcome, body-less */
    int login_busy;
    pthread_cond_t changed;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct smsend_session *sessions;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned char process_key[32];

static void after_fork_child(void)
{
    struct smsend_session *s;
    pthread_mutex_init(&lock, NULL);
    for (s = sessions; s; s = s->next) {
        s->login_busy = 0; /* its owner was a thread of the parent */
        pthread_cond_init(&s->changed, NULL);
    }
}

static void init_once(void)
{
    struct hash_key k[2];
    hash_random_key(&k[0]);
    hash_random_key(&k[1]);
    memcpy(process_key, k, sizeof process_key);
    pthread_atfork(NULL, NULL, after_fork_child);
}

static void identity(const struct secret *username, const struct secret *password, unsigned char out[SHA256_DIGEST])
{
    struct hmac_sha256 h;
    struct sha256_ctx c;
    hmac_sha256_init(&h, process_key, sizeof process_key);
    c = h.inner;
    sha256_update(&c, username->data, username->len);
    sha256_update(&c, "", 1);
    sha256_update(&c, password->data, password->len);
    {
        unsigned char inner[SHA256_DIGEST];
        sha256_final(&c, inner);
        c = h.outer;
        sha256_update(&c, inner, sizeof inner);
        sha256_final(&c, out);
    }
    hmac_sha256_wipe(&h);
}

struct smsend_session *session_get(const char *base_url, int auth_token, const struct secret *username,
                                   const struct secret *password)
{
    unsigned char who[SHA256_DIGEST];
    struct smsend_session *s;
    pthread_once(&once, init_once);
    identity(username, password, who);
    pthread_mutex_lock(&lock);
    for (s = sessions; s; s = s->next)
        if (s->auth_token == auth_token && memcmp(s->who, who, sizeof who) == 0 && strcmp(s->base_url, base_url) == 0)
            break;
    if (s) {
        s->refs++;
    } else if ((s = calloc(1, sizeof *s)) != NULL && (s->base_url = strdup(base_url)) != NULL) {
        s->refs = 1;
        s->auth_token = auth_token;
        memcpy(s->who, who, sizeof who);
        pthread_cond_init(&s->changed, NULL);
        s->next = sessions;
        sessions = s;
    } else {
        free(s);
        s = NULL;
    }
    pthread_mutex_unlock(&lock);
    secure_wipe(who, sizeof who);
    return s;
}

void session_put(struct smsend_session *s)
{
    struct smsend_session **pp;
    int last;
    if (!s)
        return;
    pthread_mutex_lock(&lock);
    last = --s->refs == 0;
    if (last)
        for (pp = &sessions; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                break;
            }
    pthread_mutex_unlock(&lock);
    if (!last)
        return;
    secret_clear(&s->user_key);
    secret_clear(&s->key);
    pthread_cond_destroy(&s->changed);
    free(s->base_url);
    secure_wipe(s, sizeof *s);
    free(s);
}

unsigned session_generation(const struct smsend_session *s)
{
    return atomic_load_explicit(&s->gen, memory_order_acquire);
}

int session_keys(struct smsend_session *s, unsigned *gen, struct secret *user_key, struct secret *key)
{
    int rc = 0;
    pthread_mutex_lock(&lock);
    if (s->has_keys) {
        unsigned g = atomic_load_explicit(&s->gen, memory_order_relaxed);
        rc = 1;
        if (g != *gen) {
            if (secret_set(user_key, s->user_key.data, s->user_key.len) ||
                secret_set(key, s->key.data, s->key.len))
                rc = -1;
            else
                *gen = g;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void session_marks(struct smsend_session *s, unsigned *gen, unsigned *failures)
{
    pthread_mutex_lock(&lock);
    *gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
    *failures = s->failures;
    pthread_mutex_unlock(&lock);
}

enum session_state session_state(struct smsend_session *s, unsigned gen, unsigned failures)
{
    enum session_state st;
    pthread_mutex_lock(&lock);
    if (s->has_keys && atomic_load_explicit(&s->gen, memory_order_relaxed) != gen)
        st = SESSION_READY;
    else if (s->failures != failures)
        st = SESSION_FAILED;
    else if (s->login_busy)
        st = SESSION_BUSY;
    else if (s->has_keys)
        st = SESSION_READY; /* the same keys the waiter had, valid again (not invalidated) */
    else
        st = SESSION_FREE;
    pthread_mutex_unlock(&lock);
    return st;
}

int session_begin_login(struct smsend_session *s)
{
    int mine;
    pthread_mutex_lock(&lock);
    mine = !s->login_busy;
    if (mine)
        s->login_busy = 1;
    pthread_mutex_unlock(&lock);
    return mine;
}

int session_login_done(struct smsend_session *s, const struct secret *user_key, const struct secret *key,
                       const struct smsend_result *failure, unsigned *gen)
{
    int rc = 0;
    pthread_mutex_lock(&lock);
    s->login_busy = 0;
    if (user_key && key) {
        if (secret_set(&s->user_key, user_key->data, user_key->len) || secret_set(&s->key, key->data, key->len)) {
            secret_clear(&s->user_key);
            secret_clear(&s->key);
            s->has_keys = 0;
            result_clear(&s->failure);
            result_fail(&s->failure, SMSEND_E_OUT_OF_MEMORY, "out of memory");
            s->failure.retryable = 1;
            s->failures++;
            rc = -1;
        } else {
            s->has_keys = 1;
            atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
            if (gen)
                *gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
        }
    } else if (failure) {
        s->failure = *failure;
        s->failure.body = (struct buf){0};
        s->failure.body_is_secret = 1;
        s->failures++;
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&lock);
    return rc;
}

void session_invalidate(struct smsend_session *s, unsigned gen)
{
    pthread_mutex_lock(&lock);
    if (s->has_keys && atomic_load_explicit(&s->gen, memory_order_relaxed) == gen) {
        secret_clear(&s->user_key);
        secret_clear(&s->key);
        s->has_keys = 0;
    }
    pthread_mutex_unlock(&lock);
}

void session_wait(struct smsend_session *s, double max_s)
{
    struct timespec ts;
    if (max_s <= 0)
        return;
    if (max_s > 1)
        max_s = 1;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)max_s;
    ts.tv_nsec += (long)((max_s - (double)(time_t)max_s) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&lock);
    if (s->login_busy)
        pthread_cond_timedwait(&s->changed, &lock, &ts);
    pthread_mutex_unlock(&lock);
}

void session_failure(struct smsend_session *s, struct smsend_result *out)
{
    pthread_mutex_lock(&lock);
    *out = s->failure;
    pthread_mutex_unlock(&lock);
}
