/* sha256.c — SHA-256 and HMAC-SHA-256, written from FIPS 180-4 and RFC 2104.
 * Small and portable rather than fast: the guard hashes one phone number per claim. */
#include <string.h>
#include "secret.h"
#include "sha256.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               (uint32_t)p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; k = h[7];
    for (i = 0; i < 64; i++) {
        t1 = k + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
    secure_wipe(w, sizeof w); /* the schedule of a key block is key material */
}

void sha256_init(struct sha256_ctx *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->bytes = 0;
    c->fill = 0;
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t n)
{
    const unsigned char *p = data;
    c->bytes += n;
    if (c->fill) {
        size_t take = SHA256_BLOCK - c->fill < n ? SHA256_BLOCK - c->fill : n;
        memcpy(c->buf + c->fill, p, take);
        c->fill += take;
        p += take;
        n -= take;
        if (c->fill < SHA256_BLOCK)
            return;
        compress(c->h, c->buf);
        c->fill = 0;
    }
    for (; n >= SHA256_BLOCK; p += SHA256_BLOCK, n -= SHA256_BLOCK)
        compress(c->h, p);
    memcpy(c->buf, p, n);
    c->fill = n;
}

void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_DIGEST])
{
    uint64_t bits = c->bytes * 8;
    int i;
    c->buf[c->fill++] = 0x80;
    if (c->fill > SHA256_BLOCK - 8) {
        memset(c->buf + c->fill, 0, SHA256_BLOCK - c->fill);
        compress(c->h, c->buf);
        c->fill = 0;
    }
    memset(c->buf + c->fill, 0, SHA256_BLOCK - 8 - c->fill);
    for (i = 0; i < 8; i++)
        c->buf[SHA256_BLOCK - 1 - i] = (unsigned char)(bits >> (8 * i));
    compress(c->h, c->buf);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
    secure_wipe(c, sizeof *c);
}

void sha256(const void *p, size_t n, unsigned char out[SHA256_DIGEST])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, p, n);
    sha256_final(&c, out);
}

void hmac_sha256_init(struct hmac_sha256 *k, const void *key, size_t key_n)
{
    unsigned char block[SHA256_BLOCK];
    int i;
    memset(block, 0, sizeof block);
    if (key_n > SHA256_BLOCK)
        sha256(key, key_n, block); /* RFC 2104: long keys are hashed first */
    else if (key_n)
        memcpy(block, key, key_n);
    for (i = 0; i < SHA256_BLOCK; i++)
        block[i] ^= 0x36;
    sha256_init(&k->inner);
    sha256_update(&k->inner, block, sizeof block);
    for (i = 0; i < SHA256_BLOCK; i++)
        block[i] ^= 0x36 ^ 0x5c;
    sha256_init(&k->outer);
    sha256_update(&k->outer, block, sizeof block);
    secure_wipe(block, sizeof block);
}

void hmac_sha256_mac(const struct hmac_sha256 *k, const void *msg, size_t n, unsigned char out[SHA256_DIGEST])
{
    struct sha256_ctx c = k->inner;
    unsigned char inner[SHA256_DIGEST];
    sha256_update(&c, msg, n);
    sha256_final(&c, inner);
    c = k->outer;
    sha256_update(&c, inner, sizeof inner);
    sha256_final(&c, out);
    secure_wipe(inner, sizeof inner);
}

void hmac_sha256_wipe(struct hmac_sha256 *k)
{
    secure_wipe(k, sizeof *k);
}

void hmac_sha256(const void *key, size_t key_n, const void *msg, size_t n, unsigned char out[SHA256_DIGEST])
{
    struct hmac_sha256 k;
    hmac_sha256_init(&k, key, key_n);
    hmac_sha256_mac(&k, msg, n, out);
    hmac_sha256_wipe(&k);
}
