/* sha256.h — SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), plain C.
 * The guard keys its store entries with them; the vectors are checked in spec/c/test_guard.c. */
#ifndef SMSEND_SHA256_H
#define SMSEND_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST 32
#define SHA256_BLOCK 64

struct sha256_ctx {
    uint32_t h[8];
    uint64_t bytes;                  /* message length so far */
    unsigned char buf[SHA256_BLOCK]; /* partial block */
    size_t fill;
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *p, size_t n);
/* Writes the digest and wipes the context. */
void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_DIGEST]);
void sha256(const void *p, size_t n, unsigned char out[SHA256_DIGEST]);

/* An HMAC key made ready once: the hash states after the inner and the outer padded key, so each
 * MAC costs two short hashes. It holds key material: hmac_sha256_wipe() before it is freed. */
struct hmac_sha256 {
    struct sha256_ctx inner, outer;
};

void hmac_sha256_init(struct hmac_sha256 *k, const void *key, size_t key_n);
void hmac_sha256_mac(const struct hmac_sha256 *k, const void *msg, size_t n, unsigned char out[SHA256_DIGEST]);
void hmac_sha256_wipe(struct hmac_sha256 *k);
/* One call: key, message, digest. */
void hmac_sha256(const void *key, size_t key_n, const void *msg, size_t n, unsigned char out[SHA256_DIGEST]);

#endif
