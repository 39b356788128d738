/* guard_redis.h — the Redis store behind guard.c (private to the guard): a kept-alive connection
 * pool per URL, shared by the process, and the claim/release scripts. Plain C over hiredis. */
#ifndef SMSEND_GUARD_REDIS_H
#define SMSEND_GUARD_REDIS_H

#include <stddef.h>
#include "guard.h"

struct guard_redis;

/* The pool for url (refcounted: the same URL gives the same pool), or NULL with err (a bad URL;
 * nothing is connected yet). err never holds the password. */
struct guard_redis *guard_redis_open(const char *url, size_t n, char *err, size_t errlen);
void guard_redis_close(struct guard_redis *p);

/* One round trip: the cooldown key <key>:c (SET NX PX cd_ms) and the window count <key>:w
 * (INCR, PEXPIRE window_ms when new; undone when over limit). 0 disables either. */
enum guard_verdict guard_redis_claim(struct guard_redis *p, const char *key, const char token_hex[33],
                                     long cd_ms, long limit, long window_ms, long connect_ms,
                                     long timeout_ms, double *retry_after, char *msg, size_t msglen);
void guard_redis_release(struct guard_redis *p, const char *key, const char token_hex[33], long cd_ms,
                         long limit, long connect_ms, long timeout_ms);

/* printf into msg[0..n) (guard.c); msg may be NULL. */
void guard_msg(char *msg, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* pthread_atfork handlers, installed by guard.c with its own. */
void guard_redis_fork_prepare(void);
void guard_redis_fork_parent(void);
void guard_redis_fork_child(void);

#endif
