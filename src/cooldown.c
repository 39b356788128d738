/* cooldown.c — per-client recipient cooldown with fixed memory (COOLDOWN_SLOTS entries),
 * keyed by the phone rule's canonical form of each recipient. */
#include <stdlib.h>
#include "cooldown.h"
#include "phone.h"

void cooldown_init(struct cooldown *c, double interval)
{
    c->interval = interval;
    c->slots = NULL;
    hash_random_key(&c->key);
}

void cooldown_free(struct cooldown *c)
{
    free(c->slots);
    c->slots = NULL;
}

/* Keyed by the canonical "+NNN..." form, so "+39..." and "0039..." are one number. */
static uint64_t recipient_hash(const struct cooldown *c, const char *p, size_t n)
{
    char e164[PHONE_E164_MAX + 1];
    int k = phone_e164(p, n, e164);
    uint64_t h = k > 0 ? siphash24(&c->key, e164, (size_t)k) : siphash24(&c->key, p, n);
    return h ? h : 1; /* 0 marks a free slot */
}

double cooldown_left(struct cooldown *c, const char *recipient, size_t n, double now)
{
    uint64_t h;
    size_t i, base;
    if (c->interval <= 0 || !c->slots)
        return 0;
    h = recipient_hash(c, recipient, n);
    base = (size_t)(h % COOLDOWN_SLOTS);
    for (i = 0; i < COOLDOWN_PROBE; i++) {
        struct cooldown_slot *s = &c->slots[(base + i) % COOLDOWN_SLOTS];
        if (s->h == h) {
            double left = s->t + c->interval - now;
            return left > 0 ? left : 0;
        }
    }
    return 0;
}

void cooldown_mark(struct cooldown *c, const char *recipient, size_t n, double now)
{
    uint64_t h;
    size_t i, base;
    struct cooldown_slot *victim = NULL;
    if (c->interval <= 0)
        return;
    if (!c->slots && !(c->slots = calloc(COOLDOWN_SLOTS, sizeof *c->slots)))
        return; /* out of memory: the guard is best effort, the request itself went out */
    h = recipient_hash(c, recipient, n);
    base = (size_t)(h % COOLDOWN_SLOTS);
    for (i = 0; i < COOLDOWN_PROBE; i++) {
        struct cooldown_slot *s = &c->slots[(base + i) % COOLDOWN_SLOTS];
        if (s->h == h) {
            victim = s;
            break;
        }
        /* free, expired, or else the oldest in the window */
        if (!victim || s->h == 0 || (victim->h != 0 && s->t < victim->t))
            victim = s;
        if (s->h == 0 || s->t + c->interval <= now)
            victim = s;
    }
    victim->h = h;
    victim->t = now;
}

void cooldown_release(struct cooldown *c, const char *recipient, size_t n, double when)
{
    uint64_t h;
    size_t i, base;
    if (c->interval <= 0 || !c->slots)
        return;
    h = recipient_hash(c, recipient, n);
    base = (size_t)(h % COOLDOWN_SLOTS);
    for (i = 0; i < COOLDOWN_PROBE; i++) {
        struct cooldown_slot *s = &c->slots[(base + i) % COOLDOWN_SLOTS];
        if (s->h == h) {
            if (s->t == when) /* still our own mark, not a later one */
                s->h = 0;
            return;
        }
    }
}
