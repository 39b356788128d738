/* hash.c — SipHash-2-4 (Aumasson & Bernstein) and random key generation.
 * Written from the paper's description; the test vectors are checked in spec/c/. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif
#include "hash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                             \
    do {                                                                                                     \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                            \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                               \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                               \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                            \
    } while (0)

static uint64_t load64_le(const unsigned char *p)
{
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
           ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

uint64_t siphash24(const struct hash_key *key, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ key->k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ key->k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ key->k0;
    uint64_t v3 = 0x7465646279746573ULL ^ key->k1;
    uint64_t b = (uint64_t)n << 56, m;
    size_t i, full = n & ~(size_t)7;
    for (i = 0; i < full; i += 8) {
        m = load64_le(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    switch (n & 7) {
    case 7: b |= (uint64_t)p[i + 6] << 48; /* fall through */
    case 6: b |= (uint64_t)p[i + 5] << 40; /* fall through */
    case 5: b |= (uint64_t)p[i + 4] << 32; /* fall through */
    case 4: b |= (uint64_t)p[i + 3] << 24; /* fall through */
    case 3: b |= (uint64_t)p[i + 2] << 16; /* fall through */
    case 2: b |= (uint64_t)p[i + 1] << 8;  /* fall through */
    case 1: b |= (uint64_t)p[i];           /* fall through */
    default: break;
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void hash_random_key(struct hash_key *key)
{
    unsigned char raw[16];
    size_t got = 0;
#if defined(__linux__)
    while (got < sizeof raw) {
        ssize_t k = getrandom(raw + got, sizeof raw - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
#endif
    if (got < sizeof raw) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            while (got < sizeof raw) {
                ssize_t k = read(fd, raw + got, sizeof raw - got);
                if (k <= 0)
                    break;
                got += (size_t)k;
            }
            close(fd);
        }
    }
    if (got < sizeof raw) { /* last resort: unpredictable enough for a per-process cooldown key */
        struct timespec ts;
        uint64_t mix;
        clock_gettime(CLOCK_REALTIME, &ts);
        mix = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)key ^ (uint64_t)getpid();
        memcpy(raw, &mix, 8);
        mix = ~mix * 0x9E3779B97F4A7C15ULL;
        memcpy(raw + 8, &mix, 8);
    }
    key->k0 = load64_le(raw);
    key->k1 = load64_le(raw + 8);
}
