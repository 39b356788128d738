/* stats.c — the process-wide counters (relaxed C11 atomics: each is exact, and no lock is taken on
 * a call path) and their Prometheus text rendering. The names and labels carry only operations,
 * error codes and bucket bounds. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "stats.h"

const unsigned long long stats_bucket_us[STATS_NBUCKETS] = {5000,   10000,   25000,   50000,   100000, 250000,
                                                            500000, 1000000, 2500000, 5000000, 10000000};

static atomic_ullong calls[STATS_NOPS][SMSEND_E__COUNT];
static atomic_ullong logins, renewals, cooldown_refusals, connections, exchanges;
static atomic_ullong buckets[STATS_NBUCKETS + 1];
static atomic_ullong microseconds; /* the latency sum, in whole microseconds: integers add exactly */

static void add(atomic_ullong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long get(atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void stats_call(enum stats_op op, smsend_error outcome)
{
    if ((unsigned)op >= STATS_NOPS || (unsigned)outcome >= SMSEND_E__COUNT)
        return;
    add(&calls[op][outcome]);
    if (outcome == SMSEND_E_COOLDOWN)
        add(&cooldown_refusals);
}

void stats_login(void)
{
    add(&logins);
}

void stats_renewal(void)
{
    add(&renewals);
}

void stats_connection(void)
{
    add(&connections);
}

void stats_gateway(double seconds)
{
    unsigned long long us;
    int i = 0;
    if (!(seconds >= 0)) /* NaN or a clock that went back: counted, as no time */
        seconds = 0;
    if (seconds > 1e9)
        seconds = 1e9;
    us = (unsigned long long)(seconds * 1e6 + 0.5);
    while (i < STATS_NBUCKETS && us > stats_bucket_us[i])
        i++;
    add(&buckets[i]);
    add(&exchanges);
    atomic_fetch_add_explicit(&microseconds, us, memory_order_relaxed);
}

void stats_read(struct stats_snapshot *s)
{
    int i, e;
    for (i = 0; i < STATS_NOPS; i++)
        for (e = 0; e < SMSEND_E__COUNT; e++)
            s->calls[i][e] = get(&calls[i][e]);
    s->logins = get(&logins);
    s->renewals = get(&renewals);
    s->cooldown_refusals = get(&cooldown_refusals);
    s->connections = get(&connections);
    for (i = 0; i <= STATS_NBUCKETS; i++)
        s->buckets[i] = get(&buckets[i]);
    s->exchanges = get(&exchanges);
    s->microseconds = get(&microseconds);
}

const char *stats_op_name(enum stats_op op)
{
    static const char *const names[STATS_NOPS] = {"request_pin", "verify_pin", "login", "check_session"};
    return (unsigned)op < STATS_NOPS ? names[op] : "unknown";
}

struct sink {
    int (*out)(void *ctx, const char *p, size_t n);
    void *ctx;
};

static int put(const struct sink *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int put(const struct sink *b, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= sizeof line ? -1 : b->out(b->ctx, line, (size_t)n);
}

/* Seconds from microseconds as "2.5", "0.005", "10": digits only, whatever the locale. */
static const char *seconds_text(unsigned long long us, char out[32])
{
    int k;
    snprintf(out, 32, "%llu.%06llu", us / 1000000, us % 1000000);
    for (k = (int)strlen(out) - 1; out[k] == '0'; k--)
        out[k] = 0;
    if (out[k] == '.')
        out[k] = 0;
    return out;
}

static int counter(const struct sink *b, const char *name, const char *help, unsigned long long v)
{
    return put(b, "# HELP smsend_%s %s\n# TYPE smsend_%s counter\nsmsend_%s %llu\n", name, help, name, name, v);
}

int stats_prometheus(const struct stats_snapshot *s, int (*out)(void *ctx, const char *p, size_t n), void *ctx)
{
    const struct sink sink = {out, ctx}, *b = &sink;
    unsigned long long cumulative = 0;
    char text[32];
    int i, e, rc = 0;
    rc |= put(b, "# HELP smsend_calls_total Calls by operation and outcome (ok or the error code).\n"
                 "# TYPE smsend_calls_total counter\n");
    for (i = 0; i < STATS_NOPS; i++)
        for (e = 0; e < SMSEND_E__COUNT; e++)
            rc |= put(b, "smsend_calls_total{op=\"%s\",outcome=\"%s\"} %llu\n", stats_op_name((enum stats_op)i),
                      e == SMSEND_OK ? "ok" : smsend_error_name((smsend_error)e), s->calls[i][e]);
    rc |= counter(b, "logins_total", "Logins with username and password.", s->logins);
    rc |= counter(b, "renewals_total", "Logins repeated after the gateway refused an expired session.", s->renewals);
    rc |= counter(b, "cooldown_refusals_total", "PIN requests refused by the cooldown, nothing sent.",
                  s->cooldown_refusals);
    rc |= counter(b, "connections_total", "Connections opened to the gateway or its proxy.", s->connections);
    rc |= put(b, "# HELP smsend_gateway_seconds Time of each HTTP exchange with the gateway.\n"
                 "# TYPE smsend_gateway_seconds histogram\n");
    for (i = 0; i < STATS_NBUCKETS; i++) {
        cumulative += s->buckets[i];
        rc |= put(b, "smsend_gateway_seconds_bucket{le=\"%s\"} %llu\n", seconds_text(stats_bucket_us[i], text),
                  cumulative);
    }
    cumulative += s->buckets[STATS_NBUCKETS];
    rc |= put(b, "smsend_gateway_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
    rc |= put(b, "smsend_gateway_seconds_sum %s\nsmsend_gateway_seconds_count %llu\n",
              seconds_text(s->microseconds, text), s->exchanges);
    return rc ? -1 : 0;
}
