/* stats.h — process-wide counters for smsend.stats() and smsend.metrics(): calls by operation and
 * outcome, logins, renewals, cooldown refusals, connections opened, and a latency histogram of
 * gateway exchanges. C11 atomics, shared by every thread and Lua state of the process; nothing
 * here ever holds a phone number, a PIN or a secret. Plain C, no Lua. */
#ifndef SMSEND_STATS_H
#define SMSEND_STATS_H

#include <stddef.h>
#include "result.h"

enum stats_op { STATS_REQUEST_PIN, STATS_VERIFY_PIN, STATS_LOGIN, STATS_CHECK_SESSION, STATS_NOPS };

/* Upper bounds of the latency buckets, in microseconds (Prometheus' default buckets, 5 ms to
 * 10 s); one more bucket holds everything slower. */
#define STATS_NBUCKETS 11
extern const unsigned long long stats_bucket_us[STATS_NBUCKETS];

/* One public call and its outcome (SMSEND_OK or the error code), counted once by the binding
 * when the status table is made; an outcome of cooldown also counts as a cooldown refusal. */
void stats_call(enum stats_op op, smsend_error outcome);
/* For the call paths: a login made (first or not), a renewal after a 401, a connection opened to
 * the gateway or proxy, and one HTTP exchange with the gateway that took seconds. */
void stats_login(void);
void stats_renewal(void);
void stats_connection(void);
void stats_gateway(double seconds);

struct stats_snapshot {
    unsigned long long calls[STATS_NOPS][SMSEND_E__COUNT]; /* [op][outcome] */
    unsigned long long logins, renewals, cooldown_refusals, connections;
    unsigned long long buckets[STATS_NBUCKETS + 1]; /* per bucket, not cumulative */
    unsigned long long exchanges;
    unsigned long long microseconds; /* summed over the exchanges */
};

/* A copy of every counter (each read atomically; the set is not one instant). */
void stats_read(struct stats_snapshot *out);

const char *stats_op_name(enum stats_op op);

/* Writes the Prometheus text exposition (format 0.0.4) of s, line by line, through out (which
 * returns 0, or -1 to stop), with no locale involved (a Lua state may have called os.setlocale).
 * Holds no memory of its own while out runs, so out may raise. Returns 0 or -1. */
int stats_prometheus(const struct stats_snapshot *s, int (*out)(void *ctx, const char *p, size_t n), void *ctx);

#endif
