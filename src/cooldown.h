/* cooldown.h — the optional abuse guard: at most one PIN request per recipient per interval.
 * A bounded table of keyed recipient hashes and times; old entries are reused, never grown. */
#ifndef SMSEND_COOLDOWN_H
#define SMSEND_COOLDOWN_H

#include <stddef.h>
#include <stdint.h>
#include "hash.h"

#define COOLDOWN_SLOTS 4096
#define COOLDOWN_PROBE 16

struct cooldown {
    double interval; /* seconds; 0 = off */
    struct hash_key key;
    struct cooldown_slot {
        uint64_t h;
        double t;
    } *slots;        /* allocated on first use */
};

void cooldown_init(struct cooldown *c, double interval);
void cooldown_free(struct cooldown *c);
/* Seconds left before recipient may get another PIN, or 0 when it may now. */
double cooldown_left(struct cooldown *c, const char *recipient, size_t n, double now);
/* Records a request to recipient at time now. */
void cooldown_mark(struct cooldown *c, const char *recipient, size_t n, double now);
/* Forgets the mark made at time when (a request that certainly sent nothing). */
void cooldown_release(struct cooldown *c, const char *recipient, size_t n, double when);

#endif
