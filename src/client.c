/* client.c — a client built from a checked configuration (config.c), credentials, lazy login
 * with one renewal on 401, and the interpretation of the gateway's answers for each call. The only place that decides whether
 * a call is retried: once, after a 401, and never for a PIN request whose body may have gone. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "answer.h"
#include "client.h"
#include "cooldown.h"
#include "http.h"
#include "secret.h"
#include "json.h"
#include "urlenc.h"
#include "utf8.h"

struct smsend_client {
    struct http_conn http;
    char *base_url; /* normalised: ends with '/' */
    char *url_request, *url_verify, *url_check;
    const char *login_path, *token_path; /* in config */
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
    /* The configuration the client was made from, in a private copy wiped at destroy: the
     * module-level cache compares with it, and every option is read from it (guard, guard_fail,
     * guard_key, pins_per_window, window, ...: config.cfg.<option>, strings NUL-terminated). */
    struct config_copy config;
    struct phone_countries countries; /* allowed_countries, parsed (restricted == 0: any) */
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

/* ---- building a client from a checked configuration ---- */

static char *join(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
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

/* The User-Agent header: the module and libcurl, then the caller's text. */
static char *user_agent(const struct field_str *extra)
{
    const char *cv = http_curl_version();
    size_t n = strlen("smsend-lua/" SMSEND_VERSION " ") + strlen(cv) + (extra->p ? extra->n + 1 : 0);
    char *ua = malloc(n + 1);
    if (ua)
        snprintf(ua, n + 1, "smsend-lua/%s %s%s%s", SMSEND_VERSION, cv, extra->p ? " " : "", extra->p ? extra->p : "");
    return ua;
}

/* Everything but the transport, from the client's own copy of the configuration. */
static int build(struct smsend_client *c, const struct config_parsed *parsed)
{
    const struct client_config *cfg = &c->config.cfg;
    size_t base_n = cfg->base_url.n;
    buf_init(&c->body, 0);
    buf_init(&c->scratch, 0);
    cooldown_init(&c->cooldown, cfg->min_interval);
    c->countries = parsed->countries;
    c->auth = (enum auth_mode)cfg->auth;
    c->can_login = cfg->username.p != NULL;
    c->key_is_token = cfg->access_token.p != NULL;
    c->timeout = cfg->timeout;
    c->login_path = cfg->login_path.p;
    c->token_path = cfg->token_path.p;
    c->base_url = join(cfg->base_url.p, base_n, cfg->base_url.p[base_n - 1] == '/' ? "" : "/");
    if (!c->base_url)
        return -1;
    base_n = strlen(c->base_url);
    c->url_request = join(c->base_url, base_n, "2fa/request");
    c->url_verify = join(c->base_url, base_n, "2fa/verify");
    c->url_check = join(c->base_url, base_n, "checksession");
    if (!c->url_request || !c->url_verify || !c->url_check)
        return -1;
    if (set_secret(&c->user_key, &cfg->user_key) ||
        set_secret(&c->key, cfg->access_token.p ? &cfg->access_token : &cfg->session_key) ||
        set_secret(&c->username, &cfg->username) || set_secret(&c->password, &cfg->password) ||
        set_secret(&c->proxy, &cfg->proxy))
        return -1;
    c->secrets[0] = &c->user_key;
    c->secrets[1] = &c->key;
    c->secrets[2] = &c->username;
    c->secrets[3] = &c->password;
    c->secrets[4] = &c->proxy;
    return 0;
}

struct smsend_client *client_create(const struct client_config *cfg, char *err, size_t errlen, char *field,
                                    size_t fieldlen)
{
    struct smsend_client *c;
    struct config_parsed parsed;
    struct http_options o;
    int rc;
    if (config_parse(cfg, &parsed, err, errlen, field, fieldlen))
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c || config_copy_make(&c->config, cfg) || build(c, &parsed))
        goto oom;
    /* The copy's strings are C strings: http_open makes the transport's one copy of them. */
    memset(&o, 0, sizeof o);
    o.timeout_ms = to_ms(cfg->timeout);
    o.connect_timeout_ms = to_ms(cfg->connect_timeout);
    o.cainfo = c->config.cfg.cainfo.p;
    o.capath = c->config.cfg.capath.p;
    o.proxy = c->config.cfg.proxy.p;
    o.clear_text = parsed.clear_text;
    if (!(o.user_agent = user_agent(&c->config.cfg.user_agent)))
        goto oom;
    rc = http_open(&c->http, &o, err, errlen);
    free((char *)o.user_agent);
    if (rc) {
        snprintf(field, fieldlen, "%s", "base_url");
        client_destroy(c);
        return NULL;
    }
    if (secret_isset(&c->user_key) && secret_isset(&c->key) &&
        http_set_auth(&c->http, &c->user_key, c->key_is_token ? "Access_token" : "Session_key", &c->key))
        goto oom;
    return c;
oom:
    client_destroy(c);
    snprintf(err, errlen, "out of memory");
    snprintf(field, fieldlen, "%s", "");
    return NULL;
}

int client_has_config(const struct smsend_client *c, const struct client_config *cfg)
{
    return config_equal(&c->config.cfg, cfg);
}

int client_option_is(const struct smsend_client *c, int option, const struct client_config *cfg)
{
    return config_option_equal(&c->config.cfg, cfg, option) && config_copy_owns(&c->config, option);
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
    config_copy_free(&c->config);
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
