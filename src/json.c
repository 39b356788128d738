/* json.c — JSON writer for request bodies and the strict reader for gateway answers.
 * Everything here reads untrusted bytes with explicit lengths; it is fuzzed by fuzz/. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "json.h"
#include "utf8.h"

/* Bytes a JSON string cannot hold as they are: control bytes, '"' and '\\'. */
#define JSON_PLAIN(c) ((c) >= 0x20 && (c) != '"' && (c) != '\\')

char *json_write_string(char *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, from = 0; /* p[from..i) is plain and not yet copied */
    *o++ = '"';
    for (;;) {
        unsigned c;
        /* eight plain bytes at a time, then the rest one by one up to the next byte to escape */
        while (n - i >= 8) {
            uint64_t v = utf8_load8(p + i);
            if (UTF8_HAS_LESS(v, 0x20) | UTF8_HAS_ZERO(v ^ (UTF8_ONES * '"')) | UTF8_HAS_ZERO(v ^ (UTF8_ONES * '\\')))
                break;
            i += 8;
        }
        while (i < n && JSON_PLAIN(p[i]))
            i++;
        memcpy(o, p + from, i - from);
        o += i - from;
        if (i == n)
            break;
        c = p[i++];
        from = i;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    return o;
}

char *json_write_int(char *o, long long v)
{
    char tmp[JSON_INT_MAX];
    size_t k = 0;
    /* digits of the magnitude, computed unsigned so that LLONG_MIN works too */
    unsigned long long m = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[k++] = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (v < 0)
        *o++ = '-';
    while (k)
        *o++ = tmp[--k];
    return o;
}

int json_is_status_ok(const char *p, size_t n)
{
    return n == 15 && memcmp(p, "{\"status\":\"OK\"}", 15) == 0;
}

/* ---- reader ---- */

struct reader {
    const unsigned char *p, *end;
    int depth;
};

#define JSON_MAX_DEPTH 32

static void skip_ws(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

static int read_hex4(struct reader *r, unsigned *out)
{
    unsigned v = 0;
    int i;
    if (r->end - r->p < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        int h = hexval(r->p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    r->p += 4;
    *out = v;
    return 0;
}

/* Appends code point cp as UTF-8 into out (size cap, NUL kept). The first character that does
 * not fit closes the text (*len = cap marks it full), so a truncated text is always a prefix. */
static void put_bytes(char *out, size_t cap, size_t *len, const unsigned char *p, size_t k)
{
    if (!out || *len >= cap)
        return;
    if (*len + k >= cap) {
        out[*len] = 0;
        *len = cap; /* full */
        return;
    }
    memcpy(out + *len, p, k);
    *len += k;
    out[*len] = 0;
}

static void put_utf8(char *out, size_t cap, size_t *len, unsigned long cp)
{
    unsigned char tmp[4];
    size_t k;
    if (cp < 0x80) {
        tmp[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        tmp[0] = (unsigned char)(0xC0 | (cp >> 6));
        tmp[1] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (unsigned char)(0xE0 | (cp >> 12));
        tmp[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        tmp[0] = (unsigned char)(0xF0 | (cp >> 18));
        tmp[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    put_bytes(out, cap, len, tmp, k);
}

/* Reads a string literal (r->p at the opening quote). When out is given the decoded text is
 * stored there (truncated at a character boundary to fit cap); *has_nul tells whether the text
 * held a NUL (\u0000), which a C string cannot show. */
static int read_string(struct reader *r, char *out, size_t cap, int *has_nul)
{
    size_t len = 0;
    if (out && cap)
        out[0] = 0;
    if (has_nul)
        *has_nul = 0;
    r->p++; /* opening quote */
    while (r->p < r->end) {
        unsigned c = *r->p;
        if (c == '"') {
            r->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            unsigned long cp;
            if (++r->p >= r->end)
                return -1;
            c = *r->p++;
            switch (c) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                unsigned u, lo;
                if (read_hex4(r, &u))
                    return -1;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
                        return -1;
                    r->p += 2;
                    if (read_hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    cp = 0x10000 + (((unsigned long)u - 0xD800) << 10) + (lo - 0xDC00);
                } else if (u >= 0xDC00 && u <= 0xDFFF) {
                    return -1;
                } else {
                    cp = u;
                }
                break;
            }
            default:
                return -1;
            }
            if (cp == 0 && has_nul)
                *has_nul = 1;
            put_utf8(out, cap, &len, cp);
            continue;
        }
        {
            size_t k = utf8_decode(r->p, (size_t)(r->end - r->p), NULL);
            if (!k)
                return -1;
            put_bytes(out, cap, &len, r->p, k);
            r->p += k;
        }
    }
    return -1;
}

/* The value of a number already checked against JSON's grammar. By hand because strtod follows
 * the process locale, which any Lua state (os.setlocale) may change under every thread. Exact
 * for the small integers the gateway sends; close enough for anything else. */
static double decimal_value(const unsigned char *p, const unsigned char *end)
{
    double v = 0;
    long exp10 = 0, e = 0;
    int neg = 0, eneg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v < 1e300)
            v = v * 10 + (*p - '0');
        else
            exp10++;
    }
    if (p < end && *p == '.')
        for (p++; p < end && *p >= '0' && *p <= '9'; p++)
            if (v < 1e300) {
                v = v * 10 + (*p - '0');
                exp10--;
            }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
    }
    exp10 += eneg ? -e : e;
    if (v != 0 && exp10)
        v *= pow(10.0, (double)exp10);
    return neg ? -v : v;
}

static int read_number(struct reader *r, double *out)
{
    const unsigned char *start = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (r->p >= r->end)
        return -1;
    if (*r->p == '0') {
        r->p++;
    } else if (*r->p >= '1' && *r->p <= '9') {
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    } else {
        return -1;
    }
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
            return -1;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
            return -1;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    if (out)
        *out = decimal_value(start, r->p);
    return 0;
}

static int read_literal(struct reader *r, const char *word)
{
    size_t k = strlen(word);
    if ((size_t)(r->end - r->p) < k || memcmp(r->p, word, k) != 0)
        return -1;
    r->p += k;
    return 0;
}

static int read_value(struct reader *r);

static int read_container(struct reader *r, int is_object, struct json_status *top)
{
    unsigned char close = is_object ? '}' : ']';
    if (++r->depth > JSON_MAX_DEPTH)
        return -1;
    r->p++; /* opening bracket */
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(r);
        if (is_object) {
            char name[24];
            int nul;
            if (r->p >= r->end || *r->p != '"' || read_string(r, name, sizeof name, &nul))
                return -1;
            if (nul)
                name[0] = 0; /* "status\u0000x" is not "status" */
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':')
                return -1;
            r->p++;
            skip_ws(r);
            if (top && r->p < r->end && *r->p == '"' && strcmp(name, "status") == 0) {
                if (read_string(r, top->status, sizeof top->status, &nul))
                    return -1;
                top->has_status = !nul; /* "OK\u0000junk" is not "OK" */
                if (nul)
                    top->status[0] = 0;
            } else if (top && r->p < r->end && *r->p == '"' && strcmp(name, "error") == 0) {
                if (read_string(r, top->error, sizeof top->error, NULL))
                    return -1;
                top->has_error = 1;
            } else if (top && r->p < r->end && strcmp(name, "triesRemaining") == 0 &&
                       (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))) {
                if (read_number(r, &top->tries))
                    return -1;
                /* only a plausible count: no infinity from 1e999, no negatives */
                top->has_tries = top->tries >= 0 && top->tries <= 1e6;
                if (!top->has_tries)
                    top->tries = 0;
            } else if (read_value(r)) {
                return -1;
            }
        } else if (read_value(r)) {
            return -1;
        }
        skip_ws(r);
        if (r->p >= r->end)
            return -1;
        if (*r->p == ',') {
            r->p++;
            continue;
        }
        if (*r->p == close) {
            r->p++;
            r->depth--;
            return 0;
        }
        return -1;
    }
}

static int read_value(struct reader *r)
{
    skip_ws(r);
    if (r->p >= r->end)
        return -1;
    switch (*r->p) {
    case '{': return read_container(r, 1, NULL);
    case '[': return read_container(r, 0, NULL);
    case '"': return read_string(r, NULL, 0, NULL);
    case 't': return read_literal(r, "true");
    case 'f': return read_literal(r, "false");
    case 'n': return read_literal(r, "null");
    default: return read_number(r, NULL);
    }
}

int json_read_status(const char *p, size_t n, struct json_status *out)
{
    struct reader r;
    memset(out, 0, sizeof *out);
    r.p = (const unsigned char *)p;
    r.end = r.p + n;
    r.depth = 0;
    skip_ws(&r);
    if (r.p >= r.end || *r.p != '{')
        return -1;
    if (read_container(&r, 1, out))
        return -1;
    skip_ws(&r);
    return r.p == r.end ? 0 : -1;
}
