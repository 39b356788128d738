/* guard.h — claims on a phone number before a PIN is sent: at most one PIN per min_interval and
 * pins_per_window per window, in process memory or in Redis. Plain C: no Lua, no libcurl.
 *
 * Store keys are "smsend:v1:" + 32 hex digits of HMAC-SHA-256(hash key, "+digits"), the same on
 * every node for the same hash key, and never the number. The hash key is guard_key when given;
 * otherwise "smsend-guard-v1:" + derive (the user_key, else the username), so every node of one
 * account agrees without configuration, and rotating the user_key changes every key (the old
 * claims are forgotten: each number may get one PIN early). "v1" lets the scheme be rotated.
 *
 * Process store: one table for the whole process (every client and Lua state), under a mutex,
 * GUARD_PROCESS_SLOTS entries of 56 bytes (896 KiB, allocated on the first claim);
 * expired entries are reused; a number whose GUARD_PROCESS_PROBE neighbouring slots all hold live
 * claims of other numbers is UNAVAILABLE, never let through.
 * Redis store: one EVAL per claim on a kept-alive connection (a small pool per URL, process-wide).
 * After fork() a child never uses the parent's lock state or Redis connections. */
#ifndef SMSEND_GUARD_H
#define SMSEND_GUARD_H

#include <stddef.h>

#define GUARD_PROCESS_SLOTS 16384
#define GUARD_PROCESS_PROBE 64

struct guard_config {
    double min_interval;            /* seconds, 0 = off */
    long pins_per_window;           /* 0 = off */
    double window;                  /* seconds (default 600) */
    const char *url; size_t url_n;  /* NULL or "process": process memory; "redis://[:pw@]host:port[/db]" */
    const char *key; size_t key_n;  /* guard_key (a secret) or NULL: derive */
    const char *derive; size_t derive_n; /* user_key, else username: used when key is NULL */
    long connect_timeout_ms, timeout_ms; /* bound every Redis round trip */
};
struct smsend_guard;
/* 0 and *out (NULL when both limits are off: no guard at all), or -1 with a message (bad URL). */
int guard_open(const struct guard_config *cfg, struct smsend_guard **out, char *err, size_t errlen);
void guard_close(struct smsend_guard *g);          /* wipes the key; NULL is fine */
enum guard_verdict { GUARD_GRANTED, GUARD_REFUSED, GUARD_UNAVAILABLE };
struct guard_claim { char key[96]; unsigned char token[16]; int held; };
/* e164 is the normalised "+digits" number. GRANTED: c->held = 1. REFUSED: *retry_after = seconds
 * until a claim can succeed. UNAVAILABLE: the store could not be reached in time (msg says why,
 * never with a password). */
enum guard_verdict guard_claim(struct smsend_guard *g, const char *e164, size_t n,
                               struct guard_claim *c, double *retry_after, char *msg, size_t msglen);
/* The call certainly sent nothing: give the claim back (cooldown key deleted only if it still holds
 * our token; window count decremented). Best effort, bounded by the timeouts. */
void guard_release(struct smsend_guard *g, struct guard_claim *c);
/* The store key for a number ("smsend:v1:" + hex HMAC-SHA-256(key, e164), truncated as you choose),
 * the same on every node for the same guard_key; writes at most 96 bytes with the NUL. */
int guard_key_for(const struct smsend_guard *g, const char *e164, size_t n, char out[96]);

#endif
