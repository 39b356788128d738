/* hash.h — keyed hashing (SipHash-2-4) and random keys from the kernel.
 * Used where a value must be looked up without being kept in clear (cooldown recipients). */
#ifndef SMSEND_HASH_H
#define SMSEND_HASH_H

#include <stddef.h>
#include <stdint.h>

struct hash_key {
    uint64_t k0, k1;
};

/* Fills key with random bytes (getrandom, /dev/urandom, then a weak fallback). */
void hash_random_key(struct hash_key *key);
uint64_t siphash24(const struct hash_key *key, const void *data, size_t n);

#endif
