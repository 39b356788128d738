/* config.c — every option of smsend.new, driven by options.def: defaults, the environment
 * fallback, one check per option and the rules between them, and the private, wiped copy whose
 * comparison decides whether two configurations may share a client. Plain C, no Lua. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include "config.h"
#include "secret.h"
#include "utf8.h"

/* ---- the checks, one per check name of options.def ---- */

/* Each returns NULL, or why the value is refused: a phrase that follows the option's name. */

static const char *check_header_credential(const char *p, size_t n)
{
    return secret_check(p, n, SMSEND_SECRET_MAX, 0); /* travels in a header: no edge spaces */
}

static const char *check_login_credential(const char *p, size_t n)
{
    return secret_check(p, n, SMSEND_SECRET_MAX, 1); /* percent-encoded into the login query */
}

/* Only spellings that every URL parser, libcurl's included, reads as a loopback address: the
 * name localhost, [::1], and a dotted quad 127.a.b.c of plain decimal octets. Leading zeros
 * (octal to libcurl: 0127.0.0.1 is 87.0.0.1), hex, short forms (127.1) and single numbers are
 * refused, and so is anything libcurl would hand to a resolver. */
static int is_loopback_host(const char *h, size_t n)
{
    int octets = 0, first = -1;
    size_t i = 0;
    if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
        return 1;
    if (n == 5 && memcmp(h, "[::1]", 5) == 0)
        return 1;
    while (i < n) { /* dotted quad with 127 in front */
        int v = 0, digits = 0;
        size_t start = i;
        while (i < n && h[i] >= '0' && h[i] <= '9' && digits < 4) {
            v = v * 10 + (h[i++] - '0');
            digits++;
        }
        if (!digits || v > 255 || (digits > 1 && h[start] == '0'))
            return 0;
        if (first < 0)
            first = v;
        octets++;
        if (i == n)
            break;
        if (h[i++] != '.')
            return 0;
        if (i == n)
            return 0;
    }
    return octets == 4 && first == 127;
}

/* host[:port] in p[start..end): a name, a dotted quad or an [IPv6] literal, then a port from 1
 * to 65535 (required when need_port). Sets *host_end past the host. */
static const char *check_host_port(const char *p, size_t start, size_t end, int need_port, size_t *host_end)
{
    size_t h, k;
    long port = 0;
    if (start < end && p[start] == '[') {
        for (h = start; h < end && p[h] != ']'; h++)
            ;
        if (h == end)
            return "has an unterminated [IPv6] host";
        h++;
    } else {
        for (h = start; h < end && p[h] != ':'; h++)
            ;
    }
    if (h == start)
        return "has no host";
    *host_end = h;
    if (h == end)
        return need_port ? "has no port" : NULL;
    if (p[h] != ':' || h + 1 == end)
        return "has a malformed port";
    for (k = h + 1; k < end; k++)
        if (p[k] < '0' || p[k] > '9' || (port = port * 10 + (p[k] - '0')) > 65535)
            return "has a malformed port";
    return port == 0 ? "has a malformed port" : NULL;
}

/* Text of a bounded size without control characters: a URL (at most 2000 characters, no spaces
 * either), or a file name or header value (at most 4096 bytes). */
static const char *check_chars(const char *p, size_t n, int url)
{
    if (n == 0 || n > (url ? 2000u : 4096u))
        return url ? "must be a URL of at most 2000 characters" : "must be a non-empty string of at most 4096 bytes";
    if (utf8_has_ctl(p, n, url))
        return url ? "must not contain spaces or control characters" : "must not contain control characters";
    return NULL;
}

static int is_clear_text(const char *p, size_t n)
{
    return n > 7 && strncasecmp(p, "http://", 7) == 0;
}

/* Accepts https://host[:port][/path] and, for loopback hosts only, http://. */
static const char *check_base_url(const char *p, size_t n)
{
    size_t start, host_end = 0, auth_end;
    const char *why;
    if ((why = check_chars(p, n, 1)) != NULL)
        return why;
    if (memchr(p, '?', n) || memchr(p, '#', n))
        return "must not contain a query or fragment";
    if (n > 8 && strncasecmp(p, "https://", 8) == 0)
        start = 8;
    else if (is_clear_text(p, n))
        start = 7;
    else
        return "must start with https:// (http:// only for loopback hosts)";
    for (auth_end = start; auth_end < n && p[auth_end] != '/'; auth_end++)
        if (p[auth_end] == '@')
            return "must not carry credentials; use the credential options";
    if ((why = check_host_port(p, start, auth_end, 0, &host_end)) != NULL)
        return why;
    if (start == 7 && !is_loopback_host(p + start, host_end - start))
        return "must be https:// for this host: credentials never travel in clear text "
               "(http:// is allowed only for 127.0.0.0/8, ::1 and localhost)";
    return NULL;
}

static const char *check_path(const char *p, size_t n)
{
    size_t i;
    if (n == 0 || n > 200)
        return "must be a relative path of 1 to 200 characters";
    if (p[0] == '/')
        return "must be relative to base_url (no leading '/')";
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
              c == '-' || c == '.' || c == '_' || c == '~'))
            return "may hold only letters, digits and - . _ ~ /";
    }
    return NULL;
}

/* [scheme://][user[:password]@]host[:port][/]: libcurl's proxy syntax, checked here so that a
 * malformed proxy is a configuration error, not a misleading network error later. */
static const char *check_proxy(const char *p, size_t n)
{
    static const char *const schemes[] = {"http://", "https://", "socks4://", "socks4a://", "socks5://", "socks5h://"};
    size_t i, start = 0, end, host_end;
    const char *sep, *why;
    if ((why = check_chars(p, n, 1)) != NULL)
        return why;
    if ((sep = memmem(p, n, "://", 3)) != NULL) {
        for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
            if ((size_t)(sep + 3 - p) == strlen(schemes[i]) && strncasecmp(p, schemes[i], strlen(schemes[i])) == 0)
                start = strlen(schemes[i]);
        if (!start)
            return "scheme must be http, https, socks4, socks4a, socks5 or socks5h";
    }
    for (end = start; end < n && p[end] != '/'; end++)
        ;
    if (end < n && end + 1 != n)
        return "must not have a path";
    for (i = end; i > start; i--) /* user-info ends at the last '@' */
        if (p[i - 1] == '@') {
            start = i;
            break;
        }
    return check_host_port(p, start, end, 0, &host_end);
}

/* A file name or a header value. */
static const char *check_text(const char *p, size_t n)
{
    return check_chars(p, n, 0);
}

/* "process", or redis://[:password@]host:port[/db]: a typo is a configuration error here, not a
 * guard that cannot reach its store at the first PIN request. */
static const char *check_guard(const char *p, size_t n)
{
    size_t start = 8, end, i, host_end;
    const char *why;
    if (n == 7 && memcmp(p, "process", 7) == 0)
        return NULL;
    if ((why = check_chars(p, n, 1)) != NULL)
        return why;
    if (n < 8 || memcmp(p, "redis://", 8) != 0) /* as guard.c reads it: lower case */
        return "must be \"process\" or redis://[:password@]host:port[/db]";
    for (end = start; end < n && p[end] != '/'; end++)
        ;
    for (i = end; i > start; i--) /* the password ends at the last '@' */
        if (p[i - 1] == '@') {
            if (p[start] != ':' || i - 1 == start + 1)
                return "must give a password as redis://:password@host:port (no user name)";
            start = i;
            break;
        }
    if ((why = check_host_port(p, start, end, 1, &host_end)) != NULL)
        return why;
    if (end < n) {
        for (i = end + 1; i < n && i < end + 6; i++)
            if (p[i] < '0' || p[i] > '9')
                break;
        if (i == end + 1 || i != n)
            return "has a malformed database number (after host:port, /0 to /99999)";
    }
    return NULL;
}

static const char *check_guard_key(const char *p, size_t n)
{
    const char *why = secret_check(p, n, SMSEND_SECRET_MAX, 1);
    if (!why && n < 16)
        why = "must be at least 16 bytes: it keys the hash that keeps phone numbers out of the store";
    return why;
}

static const char *check_countries(const char *p, size_t n)
{
    struct phone_countries unused;
    return phone_countries_parse(p, n, &unused);
}

static const char *check_timeout(double v)
{
    return v > 0 && v <= 86400 ? NULL : "must be a number of seconds above 0 and at most 86400";
}

static const char *check_interval(double v)
{
    return v >= 0 && v <= 31536000 ? NULL : "must be a number of seconds from 0 to 31536000";
}

static const char *check_window(double v)
{
    return v > 0 && v <= 31536000 ? NULL : "must be a number of seconds above 0 and at most 31536000";
}

static const char *check_count(double v)
{
    return v >= 0 && v <= 1000000 && v == (double)(long)v ? NULL : "must be a whole number from 0 to 1000000";
}

static const char *const enum_auth[] = {"session", "token", NULL};
static const char *const enum_guard_fail[] = {"closed", "open", NULL};

/* ---- the table ---- */

#define OPTION_HOW_STRING(check, def) .check_str = check_##check, .str_default = def
#define OPTION_HOW_SECRET(check, def) .check_str = check_##check, .str_default = def
#define OPTION_HOW_CREDENTIAL(check, def) .check_str = check_##check, .str_default = def
#define OPTION_HOW_SECONDS(check, def) .check_num = check_##check, .num_default = def
#define OPTION_HOW_INTEGER(check, def) .check_num = check_##check, .num_default = def
#define OPTION_HOW_ENUM(check, def) .words = enum_##check, .num_default = def

const struct option_info config_options[CONFIG_NOPTIONS] = {
#define OPT(id, kind_, def, env_, check)                                                                           \
    [CONFIG_OPT_##id] = {.name = #id, .name_len = sizeof #id - 1, .kind = OPTION_##kind_,                          \
                         .offset = offsetof(struct client_config, id), .env = env_, OPTION_HOW_##kind_(check, def)},
#include "options.def"
#undef OPT
};

static int is_string_kind(enum option_kind k)
{
    return k == OPTION_STRING || k == OPTION_SECRET || k == OPTION_CREDENTIAL;
}

static struct field_str *str_of(struct client_config *cfg, int i)
{
    return (struct field_str *)((char *)cfg + config_options[i].offset);
}

static const struct field_str *cstr_of(const struct client_config *cfg, int i)
{
    return (const struct field_str *)((const char *)cfg + config_options[i].offset);
}

static double num_of(const struct client_config *cfg, int i)
{
    return *(const double *)((const char *)cfg + config_options[i].offset);
}

static int enum_of(const struct client_config *cfg, int i)
{
    return *(const int *)((const char *)cfg + config_options[i].offset);
}

/* Every option at its default, no string given: built by the compiler from options.def. */
#define OPTION_INIT_STRING(def) {NULL, 0}
#define OPTION_INIT_SECRET(def) {NULL, 0}
#define OPTION_INIT_CREDENTIAL(def) {NULL, 0}
#define OPTION_INIT_SECONDS(def) (def)
#define OPTION_INIT_INTEGER(def) (def)
#define OPTION_INIT_ENUM(def) (def)
static const struct client_config config_defaults = {
#define OPT(name, kind, def, env, check) .name = OPTION_INIT_##kind(def),
#include "options.def"
#undef OPT
};

void config_init(struct client_config *cfg)
{
    *cfg = config_defaults;
}

int config_find(const char *name, size_t n)
{
    int i;
    for (i = 0; i < CONFIG_NOPTIONS; i++)
        if (config_options[i].name_len == n && memcmp(config_options[i].name, name, n) == 0)
            return i;
    return -1;
}

void config_set_string(struct client_config *cfg, int i, const char *p, size_t n)
{
    str_of(cfg, i)->p = p;
    str_of(cfg, i)->n = n;
}

void config_set_number(struct client_config *cfg, int i, double v)
{
    *(double *)((char *)cfg + config_options[i].offset) = v;
}

int config_set_enum(struct client_config *cfg, int i, const char *p, size_t n, char *err, size_t errlen)
{
    const struct option_info *o = &config_options[i];
    int k, len;
    for (k = 0; o->words[k]; k++)
        if (strlen(o->words[k]) == n && memcmp(o->words[k], p, n) == 0) {
            *(int *)((char *)cfg + o->offset) = k;
            return 0;
        }
    len = snprintf(err, errlen, "%s must be", o->name);
    for (k = 0; o->words[k] && len >= 0 && (size_t)len < errlen; k++)
        len += snprintf(err + len, errlen - (size_t)len, "%s\"%s\"", k == 0 ? " " : o->words[k + 1] ? ", " : " or ",
                        o->words[k]);
    return -1;
}

#define FAIL(fld, ...)                                                                                             \
    do {                                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                                        \
        snprintf(field, fieldlen, "%s", fld);                                                                      \
        return -1;                                                                                                 \
    } while (0)

int config_finish(struct client_config *cfg, char *err, size_t errlen, char *field, size_t fieldlen)
{
    int i, any_credential = 0;
    for (i = 0; i < CONFIG_NOPTIONS; i++)
        if (config_options[i].kind == OPTION_CREDENTIAL && str_of(cfg, i)->p)
            any_credential = 1;
    for (i = 0; i < CONFIG_NOPTIONS; i++) {
        const struct option_info *o = &config_options[i];
        struct field_str *f = is_string_kind(o->kind) ? str_of(cfg, i) : NULL;
        const char *v;
        if (!f || f->p || (o->kind == OPTION_CREDENTIAL && any_credential))
            continue;
        v = o->env ? getenv(o->env) : NULL;
        if (v && !*v && o->kind == OPTION_CREDENTIAL)
            v = NULL; /* an emptied credential is no credential: the set rules below still apply */
        if (v) {
            if (!*v) /* an empty SMSEND_BASE_URL must never mean the production gateway */
                FAIL(o->name, "%s is set but empty: unset it or give it a value", o->env);
            config_set_string(cfg, i, v, strlen(v));
        } else if (o->str_default) {
            config_set_string(cfg, i, o->str_default, strlen(o->str_default));
        }
    }
    return 0;
}

/* The rules between the credentials, after each of them passed its own check. */
static int check_credentials(const struct client_config *cfg, char *err, size_t errlen, char *field, size_t fieldlen)
{
    if (cfg->access_token.p && cfg->session_key.p)
        FAIL("access_token", "give access_token or session_key, not both");
    if (!cfg->username.p != !cfg->password.p)
        FAIL(cfg->username.p ? "password" : "username", "username and password go together");
    if ((cfg->access_token.p || cfg->session_key.p) && !cfg->user_key.p)
        FAIL("user_key", "access_token and session_key need user_key");
    if (cfg->user_key.p && !cfg->access_token.p && !cfg->session_key.p && !cfg->username.p)
        FAIL("user_key", "user_key needs access_token or session_key (or username and password)");
    if (!cfg->user_key.p && !cfg->username.p)
        FAIL("user_key", "no credentials: give user_key with access_token or session_key, or username and password "
                         "(or set SMSEND_USER_KEY with SMSEND_ACCESS_TOKEN or SMSEND_SESSION_KEY, or "
                         "SMSEND_USERNAME with SMSEND_PASSWORD)");
    return 0;
}

static const char *check_option(const struct client_config *cfg, int i)
{
    const struct option_info *o = &config_options[i];
    const struct field_str *f;
    int k;
    if (!is_string_kind(o->kind)) {
        if (o->kind != OPTION_ENUM)
            return o->check_num(num_of(cfg, i));
        for (k = 0; o->words[k]; k++)
            ;
        return (unsigned)enum_of(cfg, i) < (unsigned)k ? NULL : "is not one of its words";
    }
    f = cstr_of(cfg, i);
    if (!f->p)
        return o->str_default ? "is missing (the configuration was not finished)" : NULL;
    return o->check_str(f->p, f->n);
}

int config_parse(const struct client_config *cfg, struct config_parsed *out, char *err, size_t errlen, char *field,
                 size_t fieldlen)
{
    const char *why;
    int i, pass;
    err[0] = 0;
    field[0] = 0;
    memset(out, 0, sizeof *out);
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < CONFIG_NOPTIONS; i++)
            if ((config_options[i].kind == OPTION_CREDENTIAL) == (pass == 0) && (why = check_option(cfg, i)))
                FAIL(config_options[i].name, "%s %s", config_options[i].name, why);
        if (pass == 0 && check_credentials(cfg, err, errlen, field, fieldlen))
            return -1;
    }
    out->clear_text = is_clear_text(cfg->base_url.p, cfg->base_url.n);
    if (cfg->proxy.p && out->clear_text)
        FAIL("proxy", "an http:// base_url never goes through a proxy: the proxy would read the credentials "
                      "in clear text (use https:// to go through a proxy)");
    if (cfg->allowed_countries.p)
        phone_countries_parse(cfg->allowed_countries.p, cfg->allowed_countries.n, &out->countries);
    return 0;
}

/* ---- comparing and keeping ---- */

/* constant_time: every byte is read whatever the first difference (secrets), eight at a time. */
static int same_bytes(const char *a, const char *b, size_t n, int constant_time)
{
    uint64_t diff = 0, x, y;
    size_t i = 0;
    if (!constant_time)
        return memcmp(a, b, n) == 0;
    for (; n - i >= 8; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    for (; i < n; i++)
        diff |= (uint64_t)(unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int config_option_equal(const struct client_config *a, const struct client_config *b, int i)
{
    enum option_kind k = config_options[i].kind;
    const struct field_str *x, *y;
    if (k == OPTION_ENUM)
        return enum_of(a, i) == enum_of(b, i);
    if (!is_string_kind(k))
        return num_of(a, i) == num_of(b, i);
    x = cstr_of(a, i);
    y = cstr_of(b, i);
    return !x->p == !y->p && x->n == y->n && (!x->n || same_bytes(x->p, y->p, x->n, k != OPTION_STRING));
}

int config_equal(const struct client_config *a, const struct client_config *b)
{
    int i;
    for (i = 0; i < CONFIG_NOPTIONS; i++)
        if (!config_option_equal(a, b, i))
            return 0;
    return 1;
}

int config_equal_in(const struct client_config *a, const struct client_config *b, config_mask set)
{
    int i;
    for (i = 0; set; i++, set >>= 1)
        if ((set & 1) && !config_option_equal(a, b, i))
            return 0;
    return 1;
}

int config_copy_make(struct config_copy *dst, const struct client_config *src)
{
    size_t size = 1;
    char *o;
    int i;
    for (i = 0; i < CONFIG_NOPTIONS; i++)
        if (is_string_kind(config_options[i].kind) && cstr_of(src, i)->p)
            size += cstr_of(src, i)->n + 1;
    dst->cfg = *src;
    dst->size = 0;
    if (!(dst->blob = malloc(size)))
        return -1;
    dst->size = size;
    o = dst->blob;
    for (i = 0; i < CONFIG_NOPTIONS; i++) {
        const struct field_str *f = cstr_of(src, i);
        if (!is_string_kind(config_options[i].kind) || !f->p)
            continue;
        memcpy(o, f->p, f->n);
        o[f->n] = 0; /* the strings of a copy are C strings too, ready for libcurl */
        config_set_string(&dst->cfg, i, o, f->n);
        o += f->n + 1;
    }
    return 0;
}

int config_copy_owns(const struct config_copy *c, int i)
{
    const struct field_str *f = cstr_of(&c->cfg, i);
    if (!is_string_kind(config_options[i].kind) || !f->p)
        return 1;
    return c->blob && f->p >= c->blob && f->p + f->n < c->blob + c->size;
}

void config_copy_free(struct config_copy *c)
{
    if (c->blob) {
        secure_wipe(c->blob, c->size);
        free(c->blob);
    }
    c->blob = NULL;
    c->size = 0;
    secure_wipe(&c->cfg, sizeof c->cfg);
}
