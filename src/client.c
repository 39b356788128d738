/* client.c — configuration checks, credentials, lazy login with one renewal on 401, and the
 * interpretation of the gateway's answers for each call. The only place that decides whether
 * a call is retried: once, after a 401, and never for a PIN request whose body may have gone. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "answer.h"
#include "client.h"
#include "json.h"
#include "urlenc.h"
#include "utf8.h"

struct smsend_client {
    struct http_conn http;
    char *base_url; /* normalised: ends with '/' */
    char *url_request, *url_verify, *url_check;
    char *login_path, *token_path;
    struct secret user_key, key, username, password;
    int key_is_token; /* header name for key: Access_token or Session_key */
    int can_login;
    enum auth_mode auth;
    struct buf body;    /* JSON request body, reused between calls */
    struct buf scratch; /* the login URL (holds the password): wiped after each use */
    struct cooldown cooldown;
    double timeout;   /* seconds, for the whole call */
    double deadline;  /* of the call in progress (monotonic seconds) */
    int exchanges;    /* HTTP exchanges made by the call in progress */
    const struct secret *secrets[5];
    struct secret proxy; /* the proxy URL may hold a proxy password: kept out of messages */
};

int client_global_init(void)
{
    return http_global_init();
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void client_config_defaults(struct client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->auth = AUTH_SESSION;
    cfg->timeout = 10;
    cfg->connect_timeout = 5;
}

static void from_env(struct field_str *f, const char *name)
{
    const char *v = getenv(name);
    if (v && *v) {
        f->p = v;
        f->n = strlen(v);
    }
}

void client_config_from_env(struct client_config *cfg)
{
    if (!cfg->user_key.p && !cfg->access_token.p && !cfg->session_key.p && !cfg->username.p && !cfg->password.p) {
        from_env(&cfg->user_key, "SMSEND_USER_KEY");
        from_env(&cfg->access_token, "SMSEND_ACCESS_TOKEN");
        from_env(&cfg->session_key, "SMSEND_SESSION_KEY");
        from_env(&cfg->username, "SMSEND_USERNAME");
        from_env(&cfg->password, "SMSEND_PASSWORD");
    }
    if (!cfg->base_url.p)
        from_env(&cfg->base_url, "SMSEND_BASE_URL");
}

/* ---- configuration checks ---- */

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

/* Accepts https://host[:port][/path] and, for loopback hosts only, http://. */
static const char *check_base_url(const char *p, size_t n, int *len_with_slash)
{
    size_t i, start, host_end, auth_end;
    int https;
    if (n == 0 || n > 2000)
        return "base_url must be a URL of at most 2000 characters";
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7f)
            return "base_url must not contain spaces or control characters";
        if (c == '?' || c == '#')
            return "base_url must not contain a query or fragment";
    }
    if (n > 8 && strncasecmp(p, "https://", 8) == 0) {
        https = 1;
        start = 8;
    } else if (n > 7 && strncasecmp(p, "http://", 7) == 0) {
        https = 0;
        start = 7;
    } else {
        return "base_url must start with https:// (http:// only for loopback hosts)";
    }
    for (auth_end = start; auth_end < n && p[auth_end] != '/'; auth_end++)
        if (p[auth_end] == '@')
            return "base_url must not carry credentials; use the credential options";
    if (p[start] == '[') {
        for (host_end = start; host_end < auth_end && p[host_end] != ']'; host_end++)
            ;
        if (host_end == auth_end)
            return "base_url has an unterminated [IPv6] host";
        host_end++;
    } else {
        for (host_end = start; host_end < auth_end && p[host_end] != ':'; host_end++)
            ;
    }
    if (host_end == start)
        return "base_url has no host";
    if (host_end < auth_end) { /* port */
        size_t k;
        long port = 0;
        if (p[host_end] != ':' || host_end + 1 == auth_end)
            return "base_url has a malformed port";
        for (k = host_end + 1; k < auth_end; k++) {
            if (p[k] < '0' || p[k] > '9')
                return "base_url has a malformed port";
            port = port * 10 + (p[k] - '0');
            if (port > 65535)
                return "base_url has a malformed port";
        }
        if (port == 0)
            return "base_url has a malformed port";
    }
    if (!https && !is_loopback_host(p + start, host_end - start))
        return "base_url must be https:// for this host: credentials never travel in clear text "
               "(http:// is allowed only for 127.0.0.0/8, ::1 and localhost)";
    *len_with_slash = (int)n + (p[n - 1] == '/' ? 0 : 1);
    return NULL;
}

static int is_clear_text(const char *p, size_t n)
{
    return n > 7 && strncasecmp(p, "http://", 7) == 0;
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
    const char *sep;
    if (n == 0 || n > 2000)
        return "proxy must be a URL of at most 2000 characters";
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f)
            return "proxy must not contain spaces or control characters";
    if ((sep = memmem(p, n, "://", 3)) != NULL) {
        for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
            if ((size_t)(sep + 3 - p) == strlen(schemes[i]) && strncasecmp(p, schemes[i], strlen(schemes[i])) == 0)
                start = strlen(schemes[i]);
        if (!start)
            return "proxy scheme must be http, https, socks4, socks4a, socks5 or socks5h";
    }
    for (end = start; end < n && p[end] != '/'; end++)
        ;
    if (end < n && end + 1 != n)
        return "proxy must not have a path";
    for (i = end; i > start; i--) /* user-info ends at the last '@' */
        if (p[i - 1] == '@') {
            start = i;
            break;
        }
    if (start < end && p[start] == '[') {
        for (host_end = start; host_end < end && p[host_end] != ']'; host_end++)
            ;
        if (host_end == end)
            return "proxy has an unterminated [IPv6] host";
        host_end++;
    } else {
        for (host_end = start; host_end < end && p[host_end] != ':'; host_end++)
            ;
    }
    if (host_end == start)
        return "proxy has no host";
    if (host_end < end) {
        long port = 0;
        size_t k;
        if (p[host_end] != ':' || host_end + 1 == end)
            return "proxy has a malformed port";
        for (k = host_end + 1; k < end; k++) {
            if (p[k] < '0' || p[k] > '9' || (port = port * 10 + (p[k] - '0')) > 65535)
                return "proxy has a malformed port";
        }
        if (port == 0)
            return "proxy has a malformed port";
    }
    return NULL;
}

static const char *check_plain(const char *p, size_t n, int allow_ctl)
{
    size_t i;
    if (n == 0 || n > 4096)
        return "must be a non-empty string of at most 4096 bytes";
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == 0 || (!allow_ctl && (c < 0x20 || c == 0x7f)))
            return "must not contain control characters";
    }
    return NULL;
}

static char *dup_range(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

#define FAIL(fld, ...)                                  \
    do {                                                \
        snprintf(err, errlen, __VA_ARGS__);             \
        snprintf(field, fieldlen, "%s", fld);           \
        return -1;                                      \
    } while (0)

static int check_config(const struct client_config *cfg, char *err, size_t errlen, char *field, size_t fieldlen)
{
    const char *why;
    int dummy;
    const struct {
        const char *name;
        const struct field_str *f;
        int edge_spaces;
    } creds[] = {
        {"user_key", &cfg->user_key, 0},     {"access_token", &cfg->access_token, 0},
        {"session_key", &cfg->session_key, 0}, {"username", &cfg->username, 1},
        {"password", &cfg->password, 1},
    };
    size_t i;
    for (i = 0; i < sizeof creds / sizeof creds[0]; i++) {
        if (creds[i].f->p && (why = secret_check(creds[i].f->p, creds[i].f->n, SMSEND_SECRET_MAX, creds[i].edge_spaces)))
            FAIL(creds[i].name, "%s %s", creds[i].name, why);
    }
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
    if (cfg->base_url.p && (why = check_base_url(cfg->base_url.p, cfg->base_url.n, &dummy)))
        FAIL("base_url", "%s", why);
    if (!(cfg->timeout > 0 && cfg->timeout <= 86400))
        FAIL("timeout", "timeout must be a number of seconds above 0 and at most 86400");
    if (!(cfg->connect_timeout > 0 && cfg->connect_timeout <= 86400))
        FAIL("connect_timeout", "connect_timeout must be a number of seconds above 0 and at most 86400");
    if (!(cfg->min_interval >= 0 && cfg->min_interval <= 31536000))
        FAIL("min_interval", "min_interval must be a number of seconds from 0 to 31536000");
    if (cfg->login_path.p && (why = check_path(cfg->login_path.p, cfg->login_path.n)))
        FAIL("login_path", "login_path %s", why);
    if (cfg->token_path.p && (why = check_path(cfg->token_path.p, cfg->token_path.n)))
        FAIL("token_path", "token_path %s", why);
    if (cfg->cainfo.p && (why = check_plain(cfg->cainfo.p, cfg->cainfo.n, 0)))
        FAIL("cainfo", "cainfo %s", why);
    if (cfg->capath.p && (why = check_plain(cfg->capath.p, cfg->capath.n, 0)))
        FAIL("capath", "capath %s", why);
    if (cfg->proxy.p && (why = check_proxy(cfg->proxy.p, cfg->proxy.n)))
        FAIL("proxy", "%s", why);
    if (cfg->proxy.p && cfg->base_url.p && is_clear_text(cfg->base_url.p, cfg->base_url.n))
        FAIL("proxy", "an http:// base_url never goes through a proxy: the proxy would read the credentials "
                      "in clear text (use https:// to go through a proxy)");
    if (cfg->user_agent.p && (why = check_plain(cfg->user_agent.p, cfg->user_agent.n, 0)))
        FAIL("user_agent", "user_agent %s", why);
    return 0;
}

static int set_secret(struct secret *s, const struct field_str *f)
{
    return f->p ? secret_set(s, f->p, f->n) : 0;
}

static long to_ms(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    return ms < 1 ? 1 : (long)ms;
}

struct smsend_client *client_create(const struct client_config *cfg, char *err, size_t errlen, char *field,
                                    size_t fieldlen)
{
    struct smsend_client *c;
    struct http_options o;
    char *ua = NULL, *cainfo = NULL, *capath = NULL, *proxy = NULL;
    const char *base = cfg->base_url.p ? cfg->base_url.p : SMSEND_DEFAULT_BASE_URL;
    size_t base_n = cfg->base_url.p ? cfg->base_url.n : strlen(SMSEND_DEFAULT_BASE_URL);
    int ok;
    err[0] = 0;
    field[0] = 0;
    if (check_config(cfg, err, errlen, field, fieldlen))
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    buf_init(&c->body, 0);
    buf_init(&c->scratch, 0);
    cooldown_init(&c->cooldown, cfg->min_interval);
    c->auth = cfg->auth;
    c->can_login = cfg->username.p != NULL;
    c->key_is_token = cfg->access_token.p != NULL;
    c->base_url = malloc(base_n + 2);
    if (!c->base_url)
        goto oom;
    memcpy(c->base_url, base, base_n);
    if (base[base_n - 1] != '/')
        c->base_url[base_n++] = '/';
    c->base_url[base_n] = 0;
    c->url_request = join(c->base_url, "2fa/request");
    c->url_verify = join(c->base_url, "2fa/verify");
    c->url_check = join(c->base_url, "checksession");
    c->login_path = cfg->login_path.p ? dup_range(cfg->login_path.p, cfg->login_path.n) : strdup("login");
    c->token_path = cfg->token_path.p ? dup_range(cfg->token_path.p, cfg->token_path.n) : strdup("token");
    if (!c->url_request || !c->url_verify || !c->url_check || !c->login_path || !c->token_path)
        goto oom;
    if (set_secret(&c->user_key, &cfg->user_key) ||
        set_secret(&c->key, cfg->access_token.p ? &cfg->access_token : &cfg->session_key) ||
        set_secret(&c->username, &cfg->username) || set_secret(&c->password, &cfg->password) ||
        set_secret(&c->proxy, &cfg->proxy))
        goto oom;
    c->secrets[0] = &c->user_key;
    c->secrets[1] = &c->key;
    c->secrets[2] = &c->username;
    c->secrets[3] = &c->password;
    c->secrets[4] = &c->proxy;
    c->timeout = cfg->timeout;

    {
        const char *cv = http_curl_version();
        size_t n = strlen("smsend-lua/" SMSEND_VERSION " ") + strlen(cv) + (cfg->user_agent.p ? cfg->user_agent.n + 1 : 0);
        ua = malloc(n + 1);
        if (!ua)
            goto oom;
        snprintf(ua, n + 1, "smsend-lua/%s %s%s%.*s", SMSEND_VERSION, cv, cfg->user_agent.p ? " " : "",
                 (int)(cfg->user_agent.p ? cfg->user_agent.n : 0), cfg->user_agent.p ? cfg->user_agent.p : "");
    }
    cainfo = cfg->cainfo.p ? dup_range(cfg->cainfo.p, cfg->cainfo.n) : NULL;
    capath = cfg->capath.p ? dup_range(cfg->capath.p, cfg->capath.n) : NULL;
    proxy = cfg->proxy.p ? dup_range(cfg->proxy.p, cfg->proxy.n) : NULL;
    if ((cfg->cainfo.p && !cainfo) || (cfg->capath.p && !capath) || (cfg->proxy.p && !proxy))
        goto oom;
    o.timeout_ms = to_ms(cfg->timeout);
    o.connect_timeout_ms = to_ms(cfg->connect_timeout);
    o.cainfo = cainfo;
    o.capath = capath;
    o.proxy = proxy;
    o.user_agent = ua;
    o.clear_text = is_clear_text(base, base_n);
    ok = http_open(&c->http, &o, err, errlen) == 0;
    free(ua);
    free(cainfo);
    free(capath);
    if (proxy) {
        secure_wipe(proxy, strlen(proxy)); /* a proxy URL may carry a proxy password */
        free(proxy);
    }
    ua = cainfo = capath = proxy = NULL;
    if (!ok) {
        snprintf(field, fieldlen, "%s", "base_url");
        client_destroy(c);
        return NULL;
    }
    if (secret_isset(&c->user_key) && secret_isset(&c->key) &&
        http_set_auth(&c->http, &c->user_key, c->key_is_token ? "Access_token" : "Session_key", &c->key))
        goto oom;
    return c;
oom:
    free(ua);
    free(cainfo);
    free(capath);
    free(proxy);
    client_destroy(c);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void client_destroy(struct smsend_client *c)
{
    if (!c)
        return;
    http_close(&c->http);
    secret_clear(&c->user_key);
    secret_clear(&c->key);
    secret_clear(&c->username);
    secret_clear(&c->password);
    secret_clear(&c->proxy);
    buf_wipe_free(&c->body);
    buf_wipe_free(&c->scratch);
    cooldown_free(&c->cooldown);
    free(c->base_url);
    free(c->url_request);
    free(c->url_verify);
    free(c->url_check);
    free(c->login_path);
    free(c->token_path);
    secure_wipe(c, sizeof *c);
    free(c);
}

void client_describe(const struct smsend_client *c, char *out, size_t outlen)
{
    const char *auth;
    if (secret_isset(&c->key) && !c->can_login)
        auth = c->key_is_token ? "access_token" : "session_key";
    else
        auth = c->auth == AUTH_TOKEN ? "username/password, token" : "username/password, session";
    snprintf(out, outlen, "smsend.client (%s, %s)", auth, c->base_url);
}

/* ---- answers ---- */

static int have_keys(const struct smsend_client *c)
{
    return secret_isset(&c->user_key) && secret_isset(&c->key);
}

static void scrubbed_detail(const struct smsend_client *c, const struct buf *body, char *out, size_t outlen)
{
    struct json_status js;
    size_t i;
    out[0] = 0;
    if (!body->len)
        return;
    if (json_read_status(body->data, body->len, &js) == 0) {
        if (js.has_error)
            snprintf(out, outlen, ": %s", js.error);
    } else if (body->len <= 160 && utf8_count(body->data, body->len) >= 0) {
        for (i = 0; i < body->len; i++)
            if ((unsigned char)body->data[i] < 0x20 && body->data[i] != '\n' && body->data[i] != '\r' &&
                body->data[i] != '\t')
                return;
        snprintf(out, outlen, ": %.*s", (int)body->len, body->data);
        for (i = 0; out[i]; i++)
            if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t')
                out[i] = ' ';
    }
    if (secret_found_in(c->secrets, 5, out, strlen(out)))
        out[0] = 0;
}

/* Maps a non-200 answer to its error code. */
static void map_status(struct smsend_client *c, struct smsend_result *r)
{
    char detail[JSON_TEXT_MAX + 4];
    long s = r->status;
    scrubbed_detail(c, &r->body, detail, sizeof detail);
    r->retryable = 0;
    if (s == 400)
        result_fail(r, SMSEND_E_BAD_REQUEST, "the gateway rejected the request (HTTP 400)%s", detail);
    else if (s == 401)
        result_fail(r, SMSEND_E_UNAUTHORIZED, "the gateway refused the credentials (HTTP 401)%s", detail);
    else if (s == 404)
        result_fail(r, SMSEND_E_NOT_FOUND, "the gateway does not know this user_key or path (HTTP 404)%s", detail);
    else if (s == 429)
        result_fail(r, SMSEND_E_RATE_LIMITED, "the gateway is rate limiting (HTTP 429)%s", detail);
    else if (s >= 500 && s <= 599)
        result_fail(r, SMSEND_E_SERVER_ERROR, "the gateway failed (HTTP %ld)%s", s, detail);
    else
        result_fail(r, SMSEND_E_UNEXPECTED_STATUS, "unexpected answer from the gateway (HTTP %ld)%s", s, detail);
    if (s == 429 || s == 503)
        r->retry_after = http_retry_after(&c->http);
    /* 429: the gateway refused the call before acting on it, so no SMS went out */
    r->retryable = s == 429;
}

/* Starts the bookkeeping of one public call: timeout bounds the whole call, logins included. */
static double begin_call(struct smsend_client *c)
{
    double t0 = now_seconds();
    c->deadline = t0 + c->timeout;
    c->exchanges = 0;
    return t0;
}

/* One HTTP exchange within the call. The first uses the configured timeout as it stands in the
 * handle (nothing to set); later ones (after a login) get only what is left of the call's time. */
static int exchange(struct smsend_client *c, struct http_call *call, struct smsend_result *r)
{
    call->timeout_ms = 0;
    if (c->exchanges++ > 0) {
        double left = c->deadline - now_seconds();
        if (left < 0.001) {
            result_fail(r, SMSEND_E_TIMEOUT, "the call's timeout passed before this step could start");
            r->retryable = 1; /* the step that could send an SMS never started */
            return -1;
        }
        call->timeout_ms = (long)ceil(left * 1000.0);
    }
    return http_perform(&c->http, call, r);
}

/* 1 when text holds the username or password as the login URL carries them (percent-encoded):
 * a refusal page that quotes the request URL must not reach a message. */
static int quotes_login_query(const struct smsend_client *c, const char *text)
{
    const struct secret *both[2] = {&c->username, &c->password};
    struct buf enc;
    size_t i;
    int found = 0;
    buf_init(&enc, 0);
    for (i = 0; i < 2 && !found; i++) {
        buf_reset(&enc);
        if (urlenc_append(&enc, both[i]->data, both[i]->len) != 0)
            found = 1; /* cannot tell: say nothing */
        else if (enc.len && memmem(text, strlen(text), enc.data, enc.len))
            found = 1;
    }
    buf_wipe_free(&enc);
    return found;
}

static int do_login(struct smsend_client *c, struct smsend_result *r)
{
    struct http_call call;
    const char *key, *secret;
    size_t key_n, secret_n;
    int rc;
    buf_reset(&c->scratch);
    if (buf_puts(&c->scratch, c->base_url) ||
        buf_puts(&c->scratch, c->auth == AUTH_TOKEN ? c->token_path : c->login_path) ||
        buf_puts(&c->scratch, "?username=") || urlenc_append(&c->scratch, c->username.data, c->username.len) ||
        buf_puts(&c->scratch, "&password=") || urlenc_append(&c->scratch, c->password.data, c->password.len)) {
        secure_wipe(c->scratch.data, c->scratch.size);
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        r->retryable = 1;
        return -1;
    }
    memset(&call, 0, sizeof call);
    call.method = HTTP_GET;
    call.url = c->scratch.data;
    call.url_is_scratch = 1;
    call.secrets = c->secrets;
    call.nsecrets = 5;
    rc = exchange(c, &call, r);
    secure_wipe(c->scratch.data, c->scratch.size);
    buf_reset(&c->scratch);
    if (rc) {
        r->retryable = 1; /* only the login went out: the PIN call never did */
        r->body_is_secret = 1; /* a broken login answer may still hold keys */
        secure_wipe(c->http.resp.data, c->http.resp.len);
        return -1;
    }
    if (r->status != 200) {
        char detail[JSON_TEXT_MAX + 4];
        scrubbed_detail(c, &r->body, detail, sizeof detail);
        if (quotes_login_query(c, detail))
            detail[0] = 0;
        result_fail(r, SMSEND_E_LOGIN_FAILED, "login refused by the gateway (HTTP %ld)%s", r->status, detail);
        /* a refusal page may quote the request URL, password included: never hand it to Lua */
        r->body_is_secret = 1;
        secure_wipe(c->http.resp.data, c->http.resp.len);
        return -1;
    }
    /* 200: USER_KEY;SECRET, maybe followed by a line break */
    r->body_is_secret = 1;
    if (answer_login_split(r->body.data, r->body.len, &key, &key_n, &secret, &secret_n)) {
        secure_wipe(c->http.resp.data, c->http.resp.len);
        result_fail(r, SMSEND_E_BAD_RESPONSE, "the login answer is not USER_KEY;SECRET");
        return -1;
    }
    rc = secret_set(&c->user_key, key, key_n) || secret_set(&c->key, secret, secret_n);
    secure_wipe(c->http.resp.data, c->http.resp.len);
    c->key_is_token = c->auth == AUTH_TOKEN;
    if (rc || http_set_auth(&c->http, &c->user_key, c->key_is_token ? "Access_token" : "Session_key", &c->key)) {
        secret_clear(&c->key);
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        r->retryable = 1;
        return -1;
    }
    return 0;
}

/* One authenticated exchange, logging in first when needed and once more after a 401 when a
 * session could have expired. Returns 0 when an HTTP answer is in r, -1 when r holds a failure. */
static int call_authed(struct smsend_client *c, struct http_call *call, struct smsend_result *r)
{
    int fresh = 0;
    if (!have_keys(c)) {
        if (!c->can_login) {
            result_fail(r, SMSEND_E_UNAUTHORIZED, "no credentials to call the gateway with");
            return -1;
        }
        if (do_login(c, r))
            return -1;
        fresh = 1;
        result_clear(r);
    }
    if (exchange(c, call, r))
        return -1;
    if (r->status == 401 && c->can_login && !fresh) {
        /* A 401 means the gateway refused the call, so nothing was sent: safe to repeat once. */
        secret_clear(&c->key);
        result_clear(r);
        if (do_login(c, r))
            return -1;
        result_clear(r);
        if (exchange(c, call, r))
            return -1;
    }
    return 0;
}

static void init_call(struct smsend_client *c, struct http_call *call, enum http_method m, const char *url)
{
    memset(call, 0, sizeof *call);
    call->method = m;
    call->url = url;
    call->with_auth = 1;
    call->secrets = c->secrets;
    call->nsecrets = 5;
}

/* Appends a literal without a length check: callers reserved the worst case up front. */
#define PUT_LIT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

/* {"recipient":...,"senderName":...,"expiry":N,"messageBody":...}: one reservation for the
 * worst case, then plain writes (the field checks bound every length). */
static int build_request_body(struct smsend_client *c, const struct pin_request *q)
{
    struct buf *b = &c->body;
    size_t need = 64 + JSON_STRING_MAX(q->recipient.n) + JSON_INT_MAX;
    char *o;
    if (q->sender.p)
        need += JSON_STRING_MAX(q->sender.n);
    if (q->message.p)
        need += JSON_STRING_MAX(q->message.n);
    buf_reset(b);
    if (buf_reserve(b, need))
        return -1;
    o = PUT_LIT(b->data, "{\"recipient\":");
    o = json_write_string(o, q->recipient.p, q->recipient.n);
    if (q->sender.p) {
        o = PUT_LIT(o, ",\"senderName\":");
        o = json_write_string(o, q->sender.p, q->sender.n);
    }
    if (q->expiry > 0) {
        o = PUT_LIT(o, ",\"expiry\":");
        o = json_write_int(o, q->expiry);
    }
    if (q->message.p) {
        o = PUT_LIT(o, ",\"messageBody\":");
        o = json_write_string(o, q->message.p, q->message.n);
    }
    *o++ = '}';
    *o = 0;
    b->len = (size_t)(o - b->data);
    return 0;
}

void client_request_pin(struct smsend_client *c, const struct pin_request *q, struct smsend_result *r)
{
    double t0 = begin_call(c), left;
    struct http_call call;
    struct json_status js;
    result_clear(r);
    if (fields_check_request(q, r))
        goto done;
    left = cooldown_left(&c->cooldown, q->recipient.p, q->recipient.n, t0);
    if (left > 0) {
        result_fail(r, SMSEND_E_COOLDOWN, "a PIN was requested for this recipient less than %g seconds ago",
                    c->cooldown.interval);
        r->retry_after = ceil(left);
        goto done;
    }
    if (build_request_body(c, q)) {
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        r->retryable = 1;
        goto done;
    }
    init_call(c, &call, HTTP_POST, c->url_request);
    call.body = c->body.data;
    call.body_len = c->body.len;
    if (call_authed(c, &call, r) == 0) {
        if (r->status != 200)
            map_status(c, r);
        else if (json_is_status_ok(r->body.data, r->body.len) ||
                 (json_read_status(r->body.data, r->body.len, &js) == 0 && js.has_status &&
                  strcmp(js.status, "OK") == 0))
            result_message(r, "PIN sent");
        else
            result_fail(r, SMSEND_E_BAD_RESPONSE, "HTTP 200 without {\"status\":\"OK\"}");
    }
    /* Count every request that may have reached the gateway, whatever error followed: only a call
     * that certainly sent nothing (retryable) leaves the recipient free. */
    if (!r->retryable)
        cooldown_mark(&c->cooldown, q->recipient.p, q->recipient.n, t0);
done:
    r->elapsed = now_seconds() - t0;
}

static int build_verify_body(struct smsend_client *c, const struct pin_verify *q)
{
    struct buf *b = &c->body;
    char *o;
    buf_reset(b);
    if (buf_reserve(b, 32 + JSON_STRING_MAX(q->recipient.n) + JSON_STRING_MAX(q->pin.n)))
        return -1;
    o = PUT_LIT(b->data, "{\"recipient\":");
    o = json_write_string(o, q->recipient.p, q->recipient.n);
    o = PUT_LIT(o, ",\"pin\":");
    o = json_write_string(o, q->pin.p, q->pin.n);
    *o++ = '}';
    *o = 0;
    b->len = (size_t)(o - b->data);
    return 0;
}

void client_verify_pin(struct smsend_client *c, const struct pin_verify *q, struct smsend_result *r)
{
    double t0 = begin_call(c);
    struct http_call call;
    struct json_status js;
    result_clear(r);
    if (fields_check_verify(q, r))
        goto done;
    if (build_verify_body(c, q)) {
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        r->retryable = 1;
        goto done;
    }
    init_call(c, &call, HTTP_POST, c->url_verify);
    call.body = c->body.data;
    call.body_len = c->body.len;
    if (call_authed(c, &call, r) == 0) {
        if (r->status != 200)
            map_status(c, r);
        else if (json_is_status_ok(r->body.data, r->body.len))
            result_message(r, "PIN verified");
        else if (json_read_status(r->body.data, r->body.len, &js) != 0 || !js.has_status)
            result_fail(r, SMSEND_E_BAD_RESPONSE, "HTTP 200 without a JSON status");
        else if (strcmp(js.status, "OK") == 0)
            result_message(r, "PIN verified");
        else if (strcmp(js.status, "ERROR") == 0) {
            result_fail(r, SMSEND_E_WRONG_PIN, "%s", js.has_error && js.error[0] ? js.error : "wrong PIN");
            if (js.has_tries)
                r->tries_remaining = js.tries;
        } else
            result_fail(r, SMSEND_E_BAD_RESPONSE, "HTTP 200 with an unknown status");
    }
    /* the body held the PIN the user typed */
    secure_wipe(c->body.data, c->body.len);
done:
    r->elapsed = now_seconds() - t0;
}

void client_login(struct smsend_client *c, struct smsend_result *r)
{
    double t0 = begin_call(c);
    result_clear(r);
    if (!c->can_login) {
        result_fail(r, SMSEND_E_INVALID_REQUEST, "login needs username and password");
        snprintf(r->field, sizeof r->field, "username");
    } else if (do_login(c, r) == 0) {
        snprintf(r->message, sizeof r->message, "logged in");
    }
    r->elapsed = now_seconds() - t0;
}

void client_check_session(struct smsend_client *c, struct smsend_result *r)
{
    double t0 = begin_call(c);
    struct http_call call;
    result_clear(r);
    if (!have_keys(c)) {
        r->valid = 0;
        snprintf(r->message, sizeof r->message, "not logged in yet");
        goto done;
    }
    init_call(c, &call, HTTP_GET, c->url_check);
    if (exchange(c, &call, r) == 0) {
        int valid = answer_bool(r->body.data, r->body.len);
        if (r->status == 401) {
            r->valid = 0;
            snprintf(r->message, sizeof r->message, "session not valid (HTTP 401)");
        } else if (r->status != 200) {
            map_status(c, r);
        } else if (valid < 0) {
            result_fail(r, SMSEND_E_BAD_RESPONSE, "checksession answered neither true nor false");
        } else {
            r->valid = valid;
            snprintf(r->message, sizeof r->message, valid ? "session valid" : "session not valid");
        }
    }
done:
    r->elapsed = now_seconds() - t0;
}
