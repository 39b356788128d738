/* freescan.c — an LD_PRELOAD library for the freed-memory spec: every block given to free(), or
 * left behind by a realloc() that moved it, is scanned (malloc_usable_size bytes) for sentinel
 * strings before it goes back to the allocator; at exit the number of such blocks per sentinel is
 * written to a file. A block that was wiped before its free holds no sentinel and counts nothing.
 *
 *   FREESCAN_SENTINELS  "label=value" lines (newline-separated; a value may hold any other byte)
 *   FREESCAN_OUT        file written at exit: "label count" lines, then "#blocks N" and "#bytes N"
 *
 * glibc only (__libc_free / __libc_realloc are the real allocator, so no dlsym, which itself
 * allocates). Nothing here allocates; the counters are atomic (libcurl may resolve in a thread). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void __libc_free(void *p);
extern void *__libc_realloc(void *p, size_t n);

#define MAX_SENTINELS 32
#define MAX_VALUE 512

struct sentinel {
    char label[64];
    char value[MAX_VALUE];
    size_t len;
    unsigned long blocks;
};

static struct sentinel sentinels[MAX_SENTINELS];
static int nsentinels;
static int parsed; /* 0 not yet, 1 in progress, 2 done */
static unsigned long blocks_scanned, bytes_scanned;

static void parse(void)
{
    const char *env, *p;
    int expected = 0;
    if (!__atomic_compare_exchange_n(&parsed, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return; /* another thread is at it, or it is done: at worst this block goes unscanned */
    env = getenv("FREESCAN_SENTINELS");
    for (p = env; p && *p && nsentinels < MAX_SENTINELS;) {
        const char *end = strchr(p, '\n'), *eq;
        size_t n = end ? (size_t)(end - p) : strlen(p);
        eq = memchr(p, '=', n);
        if (eq && eq > p && (size_t)(eq - p) < sizeof sentinels[0].label && n - (size_t)(eq - p) - 1 > 0 &&
            n - (size_t)(eq - p) - 1 < MAX_VALUE) {
            struct sentinel *s = &sentinels[nsentinels++];
            memcpy(s->label, p, (size_t)(eq - p));
            s->len = n - (size_t)(eq - p) - 1;
            memcpy(s->value, eq + 1, s->len);
        }
        p = end ? end + 1 : p + n;
    }
    __atomic_store_n(&parsed, 2, __ATOMIC_RELEASE);
}

static int ready(void)
{
    if (__atomic_load_n(&parsed, __ATOMIC_ACQUIRE) != 2)
        parse();
    return __atomic_load_n(&parsed, __ATOMIC_ACQUIRE) == 2;
}

/* Offset just past the last occurrence of s in p[0..n), or 0 when there is none. */
static size_t last_end(const char *p, size_t n, const struct sentinel *s)
{
    size_t end = 0, at = 0;
    const char *hit;
    while (at + s->len <= n && (hit = memmem(p + at, n - at, s->value, s->len)) != NULL) {
        end = (size_t)(hit - p) + s->len;
        at = (size_t)(hit - p) + 1;
    }
    return end;
}

/* One released region of a block: p[from..n) went back to the allocator as it was; `ends` holds,
 * per sentinel, where its last occurrence in the block ended. */
static void count_released(const size_t *ends, size_t from, size_t n)
{
    int i;
    __atomic_fetch_add(&blocks_scanned, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&bytes_scanned, (unsigned long)(n - from), __ATOMIC_RELAXED);
    for (i = 0; i < nsentinels; i++)
        if (ends[i] > from)
            __atomic_fetch_add(&sentinels[i].blocks, 1, __ATOMIC_RELAXED);
}

void free(void *p)
{
    size_t ends[MAX_SENTINELS], n;
    int i;
    if (p && ready()) {
        n = malloc_usable_size(p);
        for (i = 0; i < nsentinels; i++)
            ends[i] = last_end(p, n, &sentinels[i]);
        count_released(ends, 0, n);
    }
    __libc_free(p);
}

/* The old bytes stay in freed memory when realloc moves the block (all of them) or shrinks it in
 * place (the tail past the new size). They are looked at before the call, counted after it, once
 * it is known what was released. */
void *realloc(void *p, size_t n)
{
    size_t ends[MAX_SENTINELS], old_size, new_size;
    void *q;
    int i;
    if (!p || !ready())
        return __libc_realloc(p, n);
    if (n == 0) { /* glibc frees the block and returns NULL */
        free(p);
        return NULL;
    }
    old_size = malloc_usable_size(p);
    for (i = 0; i < nsentinels; i++)
        ends[i] = last_end(p, old_size, &sentinels[i]);
    q = __libc_realloc(p, n);
    if (!q)
        return NULL; /* p is untouched and still the caller's */
    new_size = malloc_usable_size(q);
    if (q != p)
        count_released(ends, 0, old_size);
    else if (new_size < old_size)
        count_released(ends, new_size, old_size);
    return q;
}

__attribute__((destructor)) static void report(void)
{
    const char *out = getenv("FREESCAN_OUT");
    char line[160];
    int fd, i, len;
    if (!out || !*out)
        return;
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    for (i = 0; i < nsentinels; i++) {
        len = snprintf(line, sizeof line, "%s %lu\n", sentinels[i].label, sentinels[i].blocks);
        if (len > 0 && write(fd, line, (size_t)len) < 0)
            break;
    }
    len = snprintf(line, sizeof line, "#blocks %lu\n#bytes %lu\n", blocks_scanned, bytes_scanned);
    if (len > 0 && write(fd, line, (size_t)len) < 0)
        len = 0;
    close(fd);
}
