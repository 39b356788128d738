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
#include "guard.h"
#include "http.h"
#include "session.h"
#include "stats.h"
#include "json.h"
#include "secret.h"
#include "urlenc.h"
#include "utf8.h"

struct smsend_op;

struct smsend_client {
    struct http_client http;
    struct smsend_op *ops;        /* live ops (in flight or done, not yet freed) */
    struct smsend_op *login_owner; /* the op whose login is in flight: others wait for it */
    struct smsend_op *last, *spare; /* the last blocking call's op (its answer is r->body), a free one */
    unsigned key_gen;             /* bumped by every login: a 401 with older keys needs no new login */
    CURLU *u_request, *u_verify, *u_check; /* the gateway URLs parsed once (never the login URL) */
    char *base_url; /* normalised: ends with '/' */
    char *url_request, *url_verify, *url_check;
    const char *login_path, *token_path; /* in config */
    struct secret user_key, key, username, password;
    int key_is_token; /* header name for key: Access_token or Session_key */
    int can_login;
    enum auth_mode auth;
    struct smsend_guard *guard;   /* claims per number (min_interval, pins_per_window), or NULL */
    struct smsend_session *session; /* username/password: the process-wide session, else NULL */
    unsigned session_gen;         /* generation of the session's keys this client holds */
    int guard_fail_open;          /* guard_fail = "open": send when the store cannot be reached */
    double timeout;   /* seconds, for the whole call */
    long timeout_ms;  /* the same, for the first exchange of a call */
    const struct secret *secrets[5];
    struct secret proxy; /* the proxy URL may hold a proxy password: kept out of messages */
    /* The configuration the client was made from, in a private copy wiped at destroy: the
     * module-level cache compares with it, and every option is read from it (guard, guard_fail,
     * guard_key, pins_per_window, window, ...: config.cfg.<option>, strings NUL-terminated). */
    struct config_copy config;
    struct phone_countries countries; /* allowed_countries, parsed (restricted == 0: any) */
};

static void on_exchange_done(struct http_exchange *x, void *owner);
static int client_open_guard(struct smsend_client *c, const struct client_config *cfg, char *err, size_t errlen);

int client_global_init(void)
{
    return http_global_init();
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
    c->timeout_ms = to_ms(cfg->timeout);
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
    rc = http_open(&c->http, &o, on_exchange_done, err, errlen);
    free((char *)o.user_agent);
    if (rc) {
        snprintf(field, fieldlen, "%s", "base_url");
        client_destroy(c);
        return NULL;
    }
    if (secret_isset(&c->user_key) && secret_isset(&c->key) &&
        http_set_auth(&c->http, &c->user_key, c->key_is_token ? "Access_token" : "Session_key", &c->key))
        goto oom;
    if (client_open_guard(c, cfg, err, errlen) != 0) {
        snprintf(field, fieldlen, "%s", "guard");
        client_destroy(c);
        return NULL;
    }
    /* username/password: the session is the process's, shared with every client of the same
     * credentials; keys given to smsend.new stay this client's own */
    if (c->can_login && !(c->session = session_get(c->base_url, c->auth == AUTH_TOKEN, &c->username, &c->password)))
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

int client_has_options(const struct smsend_client *c, const struct client_config *cfg, config_mask set)
{
    return config_equal_in(&c->config.cfg, cfg, set);
}

int client_option_is(const struct smsend_client *c, int option, const struct client_config *cfg)
{
    return config_option_equal(&c->config.cfg, cfg, option) && config_copy_owns(&c->config, option);
}

/* The guard for the client's PIN requests: none when no limit is set. Store keys are derived from
 * the user_key, else the username (see guard.h). */
static int client_open_guard(struct smsend_client *c, const struct client_config *cfg, char *err, size_t errlen)
{
    struct guard_config g;
    memset(&g, 0, sizeof g);
    c->guard_fail_open = cfg->guard_fail == GUARD_FAIL_OPEN;
    g.min_interval = cfg->min_interval;
    g.pins_per_window = (long)cfg->pins_per_window;
    g.window = cfg->window;
    g.url = c->config.cfg.guard.p;
    g.url_n = c->config.cfg.guard.n;
    g.key = c->config.cfg.guard_key.p;
    g.key_n = c->config.cfg.guard_key.n;
    if (secret_isset(&c->user_key)) {
        g.derive = c->user_key.data;
        g.derive_n = c->user_key.len;
    } else {
        g.derive = c->username.data;
        g.derive_n = c->username.len;
    }
    g.connect_timeout_ms = to_ms(cfg->connect_timeout);
    g.timeout_ms = to_ms(cfg->timeout);
    return guard_open(&g, &c->guard, err, errlen);
}

/* ---- ops: every call, blocking or not, is one of these state machines ---- */

enum op_kind { OPK_REQUEST, OPK_VERIFY, OPK_LOGIN, OPK_CHECK };
enum op_step {
    STEP_LOGIN,      /* this op's login exchange is in flight */
    STEP_WAIT_LOGIN, /* another op of the client is logging in: use its keys when it is done */
    STEP_CALL,       /* the gateway call is in flight */
    STEP_DONE
};

struct smsend_op {
    struct smsend_client *c;       /* NULL once the client is gone (the op is then done) */
    struct smsend_op *next, *prev; /* in c->ops */
    enum op_kind kind;
    enum op_step step;
    struct http_transport *t;      /* the client's own (pollable ops) or one borrowed from the pool */
    int pollable;                  /* started by *_async: drives the client's own transport */
    struct http_waker *waker;      /* pollable: the descriptor it is waited on by (held until freed) */
    struct http_exchange *x;       /* in flight */
    struct buf answer;             /* the answer once done (r.body points into it) */
    struct http_call call;         /* the gateway call (not the login) */
    struct buf body;               /* JSON request body: holds the recipient and, for verify, the PIN */
    struct buf login_url;          /* only while this op logs in: holds the password */
    struct smsend_result r;
    double t0, deadline;
    int exchanges;                 /* HTTP exchanges started so far */
    int fresh_login;               /* the keys in use came from a login made for this op */
    int session_owner;             /* this op's login is the session's one login */
    unsigned wait_gen, wait_failures; /* the session as it was when this op began to wait */
    int renewed;                   /* the one renewal after a 401 was made */
    unsigned key_gen;              /* keys the call was last sent with */
    size_t rcpt_n;
    struct guard_claim claim;      /* PIN requests: the number's claim, given back if nothing was sent */
    char guard_note[200];          /* guard_fail = "open" and the store was down: said in message */
};

static int have_keys(const struct smsend_client *c)
{
    return secret_isset(&c->user_key) && secret_isset(&c->key);
}

static void op_detach_exchange(struct smsend_op *op)
{
    if (op->x) {
        http_release(op->x);
        op->x = NULL;
    }
}

static void op_unlink(struct smsend_op *op)
{
    struct smsend_client *c = op->c;
    if (!c)
        return;
    if (op->prev)
        op->prev->next = op->next;
    else
        c->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->next = op->prev = NULL;
}

static void op_free_memory(struct smsend_op *op)
{
    buf_wipe_free(&op->body);
    buf_wipe_free(&op->login_url);
    buf_free(&op->answer);
    free(op);
}

/* Frees an op; NULL is fine. A client keeps one free op for its next call. */
void smsend_op_free(struct smsend_op *op)
{
    struct smsend_client *c;
    if (!op)
        return;
    smsend_op_cancel(op);
    c = op->c;
    op_detach_exchange(op);
    op_unlink(op);
    http_waker_release(op->waker);
    op->waker = NULL;
    /* The body is written from its start and only up to len (+ its NUL); past that the block
     * holds zeros from the wipe when its last op was freed, or bytes this module never wrote. */
    secure_wipe(op->body.data, op->body.len + 1);
    buf_reset(&op->body);
    if (c && !c->spare) {
        op->c = NULL;
        c->spare = op;
        return;
    }
    op_free_memory(op);
}

/* A done op gives a borrowed transport back to the pool; called after driving, never inside. */
static void op_settle(struct smsend_op *op)
{
    if (op->step == STEP_DONE && op->t) {
        if (op->t->pooled)
            http_give_back(op->t);
        op->t = NULL;
    }
}

static struct smsend_op *op_new(struct smsend_client *c, enum op_kind kind, int pollable)
{
    struct smsend_op *op = c->spare;
    if (op) {
        c->spare = NULL;
    } else {
        if (!(op = calloc(1, sizeof *op)))
            return NULL;
        buf_init(&op->body, 0);
        buf_init(&op->login_url, 0);
        buf_init(&op->answer, HTTP_BODY_CAP);
    }
    op->c = c;
    op->kind = kind;
    op->step = STEP_CALL;
    op->x = NULL;
    op->t = NULL;
    op->pollable = pollable;
    op->waker = NULL;
    if (pollable) {
        struct http_transport *own = http_take(&c->http, 1);
        op->waker = own ? http_waker_hold(own) : NULL;
    }
    op->t0 = http_now();
    op->deadline = op->t0 + c->timeout;
    op->exchanges = op->fresh_login = op->renewed = op->session_owner = 0;
    op->key_gen = 0;
    op->claim.held = 0;
    op->guard_note[0] = 0;
    result_clear(&op->r);
    op->prev = NULL;
    op->next = c->ops;
    if (c->ops)
        c->ops->prev = op;
    c->ops = op;
    return op;
}

/* The op is finished: its result is final from here on. The answer is copied out of the exchange,
 * which goes back to its transport at once. */
static void op_done(struct smsend_op *op)
{
    struct smsend_client *c = op->c;
    op->step = STEP_DONE;
    buf_reset(&op->answer);
    if (op->x && op->r.status > 0 && !op->r.body_is_secret && op->r.body.len &&
        buf_append(&op->answer, op->r.body.data, op->r.body.len) == 0)
        op->r.body = op->answer;
    else
        op->r.body = (struct buf){0};
    op_detach_exchange(op);
    op->r.elapsed = http_now() - op->t0;
    if (op->claim.held && c) {
        /* The number was claimed before anything was sent. Every request that may have reached the
         * gateway keeps the claim, whatever error followed: only a call that certainly sent
         * nothing (retryable) gives it back. */
        if (op->r.retryable)
            guard_release(c->guard, &op->claim);
        secure_wipe(&op->claim, sizeof op->claim);
    }
    if (op->kind == OPK_VERIFY) /* the body held the PIN the user typed */
        secure_wipe(op->body.data, op->body.len);
}

/* ---- answers ---- */

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
static void map_status(struct smsend_client *c, struct http_exchange *x, struct smsend_result *r)
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
        r->retry_after = http_retry_after(x);
    /* 429: the gateway refused the call before acting on it, so no SMS went out */
    r->retryable = s == 429;
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

/* Reads a finished login exchange into the client's keys. 0, or -1 with op->r filled. */
static int read_login(struct smsend_op *op, struct http_exchange *x)
{
    struct smsend_client *c = op->c;
    struct smsend_result *r = &op->r;
    const char *key, *secret;
    size_t key_n, secret_n;
    int rc;
    rc = http_finish(x, c->secrets, 5, r);
    if (rc) {
        r->retryable = 1; /* only the login went out: the gateway call never did */
        r->body_is_secret = 1; /* a broken login answer may still hold keys */
        secure_wipe(x->resp.data, x->resp.len);
        return -1;
    }
    r->body_is_secret = 1; /* no login answer is ever handed to Lua, failed or not */
    if (r->status != 200) {
        char detail[JSON_TEXT_MAX + 4];
        scrubbed_detail(c, &r->body, detail, sizeof detail);
        if (quotes_login_query(c, detail))
            detail[0] = 0;
        result_fail(r, SMSEND_E_LOGIN_FAILED, "login refused by the gateway (HTTP %ld)%s", r->status, detail);
        secure_wipe(x->resp.data, x->resp.len);
        return -1;
    }
    /* 200: USER_KEY;SECRET, maybe followed by a line break */
    if (answer_login_split(r->body.data, r->body.len, &key, &key_n, &secret, &secret_n)) {
        secure_wipe(x->resp.data, x->resp.len);
        result_fail(r, SMSEND_E_BAD_RESPONSE, "the login answer is not USER_KEY;SECRET");
        return -1;
    }
    rc = secret_set(&c->user_key, key, key_n) || secret_set(&c->key, secret, secret_n);
    secure_wipe(x->resp.data, x->resp.len);
    c->key_is_token = c->auth == AUTH_TOKEN;
    if (rc || http_set_auth(&c->http, &c->user_key, c->key_is_token ? "Access_token" : "Session_key", &c->key)) {
        secret_clear(&c->key);
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        r->retryable = 1;
        return -1;
    }
    c->key_gen++;
    result_clear(r);
    r->status = 200; /* login() reports it; a call that follows starts from a clear result */
    r->body_is_secret = 1;
    return 0;
}

/* What a finished gateway call means, per kind of call. */
static void read_answer(struct smsend_op *op, struct http_exchange *x)
{
    struct smsend_client *c = op->c;
    struct smsend_result *r = &op->r;
    struct json_status js;
    if (op->kind == OPK_CHECK) {
        int valid = answer_bool(r->body.data, r->body.len);
        if (r->status == 401) {
            r->valid = 0;
            result_message(r, "session not valid (HTTP 401)");
        } else if (r->status != 200) {
            map_status(c, x, r);
        } else if (valid < 0) {
            result_fail(r, SMSEND_E_BAD_RESPONSE, "checksession answered neither true nor false");
        } else {
            r->valid = valid;
            result_message(r, valid ? "session valid" : "session not valid");
        }
        return;
    }
    if (r->status != 200) {
        map_status(c, x, r);
    } else if (json_is_status_ok(r->body.data, r->body.len)) {
        if (op->guard_note[0])
            result_fail(r, SMSEND_OK, "PIN sent; %s", op->guard_note);
        else
            result_message(r, op->kind == OPK_REQUEST ? "PIN sent" : "PIN verified");
    } else if (json_read_status(r->body.data, r->body.len, &js) != 0 || !js.has_status) {
        result_fail(r, SMSEND_E_BAD_RESPONSE,
                    op->kind == OPK_REQUEST ? "HTTP 200 without {\"status\":\"OK\"}" : "HTTP 200 without a JSON status");
    } else if (strcmp(js.status, "OK") == 0) {
        result_message(r, op->kind == OPK_REQUEST ? "PIN sent" : "PIN verified");
    } else if (op->kind == OPK_VERIFY && strcmp(js.status, "ERROR") == 0) {
        result_fail(r, SMSEND_E_WRONG_PIN, "%s", js.has_error && js.error[0] ? js.error : "wrong PIN");
        if (js.has_tries)
            r->tries_remaining = js.tries;
    } else {
        result_fail(r, SMSEND_E_BAD_RESPONSE,
                    op->kind == OPK_REQUEST ? "HTTP 200 without {\"status\":\"OK\"}" : "HTTP 200 with an unknown status");
    }
}

/* ---- steps ---- */

/* Starts one exchange of the op. The first uses the configured timeout as it stands in the handle;
 * later ones (after a login) get only what is left of the call's time. 0, or -1 with op done. */
static int op_exchange(struct smsend_op *op, struct http_call *call)
{
    struct smsend_client *c = op->c;
    call->timeout_ms = c->timeout_ms;
    if (op->exchanges++ > 0) {
        double left = op->deadline - http_now();
        if (left < 0.001) {
            result_fail(&op->r, SMSEND_E_TIMEOUT, "the call's timeout passed before this step could start");
            op->r.retryable = 1; /* the step that could send an SMS never started */
            op_done(op);
            return -1;
        }
        call->timeout_ms = (long)ceil(left * 1000.0);
    }
    op_detach_exchange(op);
    if (!op->t)
        op->t = http_take(&c->http, op->pollable);
    op->x = http_start(op->t, &c->http, call, op, &op->r);
    if (!op->x) {
        op_done(op);
        return -1;
    }
    return 0;
}

static void op_start_call(struct smsend_op *op)
{
    op->step = STEP_CALL;
    op->key_gen = op->c->key_gen;
    result_clear(&op->r);
    op_exchange(op, &op->call);
}

/* The op owned the session's one login: tell the session how it ended (ok: the client's new keys;
 * else the failure in op->r, or abandoned when cancelled). */
static void op_end_session_login(struct smsend_op *op, int ok)
{
    struct smsend_client *c = op->c;
    if (!op->session_owner || !c)
        return;
    op->session_owner = 0;
    if (ok)
        session_login_done(c->session, &c->user_key, &c->key, NULL, &c->session_gen);
    else
        session_login_done(c->session, NULL, NULL, op->r.error == SMSEND_E_CANCELLED ? NULL : &op->r, NULL);
}

static void op_start_login(struct smsend_op *op)
{
    struct smsend_client *c = op->c;
    struct buf *u = &op->login_url;
    struct http_call call;
    buf_reset(u);
    if (buf_puts(u, c->base_url) || buf_puts(u, c->auth == AUTH_TOKEN ? c->token_path : c->login_path) ||
        buf_puts(u, "?username=") || urlenc_append(u, c->username.data, c->username.len) ||
        buf_puts(u, "&password=") || urlenc_append(u, c->password.data, c->password.len)) {
        secure_wipe(u->data, u->size);
        result_fail(&op->r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        op->r.retryable = 1;
        op_done(op);
        return;
    }
    memset(&call, 0, sizeof call);
    call.method = HTTP_GET;
    call.url = u->data;
    call.url_is_scratch = 1;
    op->step = STEP_LOGIN;
    c->login_owner = op;
    stats_login();
    if (op_exchange(op, &call) != 0) {
        c->login_owner = NULL;
        secure_wipe(u->data, u->size);
        buf_reset(u);
        op_end_session_login(op, 0);
    }
}

/* Takes the session's keys when they are newer than the client's. -1 when out of memory. */
static int sync_session_keys(struct smsend_client *c)
{
    unsigned before = c->session_gen;
    int k;
    if (!c->session || (have_keys(c) && session_generation(c->session) == c->session_gen))
        return 0;
    k = session_keys(c->session, &c->session_gen, &c->user_key, &c->key);
    if (k < 0)
        return -1;
    if (k == 0) {
        secret_clear(&c->key); /* the session has no valid keys: neither has this client */
    } else if (c->session_gen != before) {
        c->key_is_token = c->auth == AUTH_TOKEN;
        c->key_gen++;
        if (http_set_auth(&c->http, &c->user_key, c->key_is_token ? "Access_token" : "Session_key", &c->key)) {
            secret_clear(&c->key);
            return -1;
        }
    }
    return 0;
}

static void op_wait_login(struct smsend_op *op)
{
    op->step = STEP_WAIT_LOGIN;
    if (op->c->session)
        session_marks(op->c->session, &op->wait_gen, &op->wait_failures);
}

/* Logs in for the op when nobody else does: a login of this client or of the process's session
 * is waited for instead. */
static void op_login_or_wait(struct smsend_op *op)
{
    struct smsend_client *c = op->c;
    if (c->login_owner) {
        op_wait_login(op);
    } else if (c->session && !session_begin_login(c->session)) {
        op_wait_login(op);
    } else {
        op->session_owner = c->session != NULL;
        op_start_login(op);
    }
}

/* Gets keys for the op's call: the client's own, the session's newer ones, a login in flight to
 * wait for, or a new login. */
static void op_need_keys(struct smsend_op *op)
{
    struct smsend_client *c = op->c;
    if (op->kind == OPK_LOGIN) { /* an explicit login always logs in, or shares one in flight */
        op_login_or_wait(op);
        return;
    }
    if (sync_session_keys(c) != 0) {
        result_fail(&op->r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        op->r.retryable = 1;
        op_done(op);
    } else if (have_keys(c)) {
        op_start_call(op);
    } else if (!c->can_login) {
        result_fail(&op->r, SMSEND_E_UNAUTHORIZED, "no credentials to call the gateway with");
        op_done(op);
    } else {
        op_login_or_wait(op);
    }
}

/* A login finished (ok or not): every op waiting for it goes on with its outcome. */
static void wake_waiters(struct smsend_client *c, const struct smsend_op *owner, int ok)
{
    struct smsend_op *w, *next;
    for (w = c->ops; w; w = next) {
        next = w->next;
        if (w->step != STEP_WAIT_LOGIN)
            continue;
        if (ok && w->kind == OPK_LOGIN) {
            result_message(&w->r, "logged in");
            op_done(w);
        } else if (ok) {
            w->fresh_login = 1;
            op_start_call(w);
        } else {
            w->r = owner->r; /* the same refusal or failure: nothing of w was sent */
            w->r.body = (struct buf){0};
            w->r.body_is_secret = 1;
            op_done(w);
        }
    }
}

static void on_exchange_done(struct http_exchange *x, void *owner)
{
    struct smsend_op *op = owner;
    struct smsend_client *c = op->c;
    if (op->step == STEP_LOGIN) {
        int ok = read_login(op, x) == 0;
        secure_wipe(op->login_url.data, op->login_url.size);
        buf_reset(&op->login_url);
        op_detach_exchange(op);
        c->login_owner = NULL;
        op_end_session_login(op, ok);
        wake_waiters(c, op, ok);
        if (!ok || op->kind == OPK_LOGIN) {
            if (ok)
                result_message(&op->r, "logged in");
            op_done(op);
        } else {
            op->fresh_login = 1;
            op_start_call(op);
        }
        return;
    }
    if (http_finish(x, c->secrets, 5, &op->r) != 0) {
        op_done(op);
        return;
    }
    if (op->r.status == 401 && op->kind != OPK_CHECK && c->can_login && !op->fresh_login && !op->renewed) {
        /* A 401 means the gateway refused the call, so nothing was sent: safe to repeat once,
         * with keys newer than the refused ones (another op may have renewed them already). */
        op->renewed = 1;
        stats_renewal();
        result_clear(&op->r);
        if (c->key_gen == op->key_gen) {
            secret_clear(&c->key);
            if (c->session) /* every client of the process drops these keys */
                session_invalidate(c->session, c->session_gen);
        }
        op_need_keys(op);
        return;
    }
    read_answer(op, x);
    op_done(op);
}

/* Ops waiting for another op's login have no timer of their own in libcurl. */
static void expire_waiters(struct smsend_client *c)
{
    struct smsend_op *w, *next;
    double now = http_now();
    for (w = c->ops; w; w = next) {
        next = w->next;
        if (w->step != STEP_WAIT_LOGIN)
            continue;
        if (now >= w->deadline) {
            result_fail(&w->r, SMSEND_E_TIMEOUT, "the call's timeout passed while waiting for the login");
            w->r.retryable = 1;
            op_done(w);
        } else if (!c->login_owner && c->session) {
            /* waiting for another client's login of the same session */
            switch (session_state(c->session, w->wait_gen, w->wait_failures)) {
            case SESSION_READY:
                w->fresh_login = 1;
                if (w->kind == OPK_LOGIN) { /* its login is the one that just ended */
                    if (sync_session_keys(c) != 0) {
                        result_fail(&w->r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
                        w->r.retryable = 1;
                    } else {
                        w->r.status = 200;
                        w->r.body_is_secret = 1;
                        result_message(&w->r, "logged in");
                    }
                    op_done(w);
                } else {
                    op_need_keys(w);
                }
                break;
            case SESSION_FAILED:
                session_failure(c->session, &w->r);
                op_done(w);
                break;
            case SESSION_FREE:
                op_need_keys(w);
                break;
            default:
                break;
            }
        } else if (!c->login_owner) {
            op_need_keys(w);
        }
    }
}

/* ---- starting calls ---- */

/* {"recipient":...,"senderName":...,"expiry":N,"messageBody":...}: one reservation for the
 * worst case, then plain writes (the field checks bound every length). */
#define PUT_LIT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

static int build_request_body(struct buf *b, const struct pin_request *q)
{
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

static int build_verify_body(struct buf *b, const struct pin_verify *q)
{
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

static void op_set_call(struct smsend_op *op, enum http_method m, const char *url, CURLU **parsed)
{
    memset(&op->call, 0, sizeof op->call);
    op->call.method = m;
    op->call.url = url;
    if (!*parsed)
        *parsed = http_parse_url(url); /* NULL (out of memory): the text URL serves as well */
    op->call.curlu = *parsed;
    op->call.with_auth = 1;
    if (m == HTTP_POST) {
        op->call.body = op->body.data;
        op->call.body_len = op->body.len;
    }
}

static struct smsend_op *op_failed_alloc(void)
{
    /* A static, always-done op for when not even an op can be allocated. */
    static _Thread_local struct smsend_op oom_op;
    result_clear(&oom_op.r);
    result_fail(&oom_op.r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
    oom_op.r.retryable = 1;
    oom_op.step = STEP_DONE;
    return &oom_op;
}

struct smsend_op *smsend_op_finished(struct smsend_client *c, const struct smsend_result *r)
{
    struct smsend_op *op = op_new(c, OPK_CHECK, 1);
    if (!op)
        return NULL;
    op->r = *r;
    op->r.body = (struct buf){0};
    op_done(op);
    return op;
}

/* Claims the op's number in the guard's store. 0 to go on (claimed, or the store is down and
 * guard_fail is "open"), -1 with op->r filled (cooldown, guard_unavailable): nothing sent. */
static int op_claim(struct smsend_op *op, const struct pin_request *q)
{
    struct smsend_client *c = op->c;
    char e164[PHONE_E164_MAX + 1], msg[160];
    size_t n;
    double retry_after = 0;
    if (!c->guard && !c->countries.restricted)
        return 0; /* nothing to claim or check: no need for the canonical number */
    n = (size_t)phone_e164(q->recipient.p, q->recipient.n, e164); /* checked: > 0 */
    msg[0] = 0;
    if (!phone_country_allowed(&c->countries, e164, n)) {
        result_fail(&op->r, SMSEND_E_COUNTRY_NOT_ALLOWED,
                    "recipient is in a country outside allowed_countries: nothing was sent");
        snprintf(op->r.field, sizeof op->r.field, "recipient");
        return -1;
    }
    if (!c->guard)
        return 0;
    switch (guard_claim(c->guard, e164, n, &op->claim, &retry_after, msg, sizeof msg)) {
    case GUARD_GRANTED:
        return 0;
    case GUARD_REFUSED:
        result_fail(&op->r, SMSEND_E_COOLDOWN,
                    "this number was sent a PIN too recently (min_interval or pins_per_window); nothing was sent");
        op->r.retry_after = ceil(retry_after);
        return -1;
    default:
        if (c->guard_fail_open) {
            snprintf(op->guard_note, sizeof op->guard_note, "the guard's store could not be reached (%.120s): sent unguarded",
                     msg);
            return 0;
        }
        result_fail(&op->r, SMSEND_E_GUARD_UNAVAILABLE, "the guard's store could not be reached, so nothing was sent: %s",
                    msg);
        op->r.retryable = 1;
        return -1;
    }
}

/* Goes on with a POST op whose checks passed: its body (built, or -1 when out of memory: nothing
 * sent), then its keys and the call. */
static struct smsend_op *op_post(struct smsend_op *op, int body_failed, const char *url, CURLU **parsed)
{
    if (body_failed) {
        result_fail(&op->r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        op->r.retryable = 1;
        op_done(op);
        return op;
    }
    op_set_call(op, HTTP_POST, url, parsed);
    op_need_keys(op);
    return op;
}

struct smsend_op *smsend_op_request_pin(struct smsend_client *c, const struct pin_request *q, int pollable)
{
    struct smsend_op *op = op_new(c, OPK_REQUEST, pollable);
    if (!op)
        return NULL;
    /* The number is claimed before anything is sent: two calls for one number, in any Lua state,
     * thread or machine sharing the store, cannot both pass. */
    if (fields_check_request(q, &op->r) || op_claim(op, q) != 0) {
        op_done(op);
        return op;
    }
    return op_post(op, build_request_body(&op->body, q), c->url_request, &c->u_request);
}

struct smsend_op *smsend_op_verify_pin(struct smsend_client *c, const struct pin_verify *q, int pollable)
{
    struct smsend_op *op = op_new(c, OPK_VERIFY, pollable);
    if (!op)
        return NULL;
    if (fields_check_verify(q, &op->r)) {
        op_done(op);
        return op;
    }
    return op_post(op, build_verify_body(&op->body, q), c->url_verify, &c->u_verify);
}

struct smsend_op *smsend_op_login(struct smsend_client *c, int pollable)
{
    struct smsend_op *op = op_new(c, OPK_LOGIN, pollable);
    if (!op)
        return NULL;
    if (!c->can_login) {
        result_fail(&op->r, SMSEND_E_INVALID_REQUEST, "login needs username and password");
        snprintf(op->r.field, sizeof op->r.field, "username");
        op_done(op);
    } else {
        op_need_keys(op);
    }
    return op;
}

struct smsend_op *smsend_op_check_session(struct smsend_client *c, int pollable)
{
    struct smsend_op *op = op_new(c, OPK_CHECK, pollable);
    if (!op)
        return NULL;
    if (!have_keys(c)) {
        op->r.valid = 0;
        result_message(&op->r, "not logged in yet");
        op_done(op);
        return op;
    }
    op_set_call(op, HTTP_GET, c->url_check, &c->u_check);
    op_start_call(op);
    return op;
}

/* ---- driving and waiting ---- */

int smsend_op_done(const struct smsend_op *op)
{
    return op->step == STEP_DONE;
}

const struct smsend_result *smsend_op_result(const struct smsend_op *op)
{
    return &op->r;
}

/* The transport an op's progress depends on: its own, or (waiting for another op's login) the
 * client's own one, where a pollable op may be logging in. */
static struct http_transport *op_transport(struct smsend_op *op)
{
    return op->t ? op->t : op->c->http.own;
}

int smsend_op_poll(struct smsend_op *op)
{
    if (op->step != STEP_DONE && op->c) {
        http_drive(op_transport(op));
        expire_waiters(op->c);
    }
    op_settle(op);
    return op->step == STEP_DONE;
}

int smsend_op_wait(struct smsend_op *op, double seconds)
{
    double until = seconds >= 0 ? http_now() + seconds : -1, now;
    do {
        double max = -1;
        struct http_transport *t;
        if (op->step == STEP_DONE || !op->c)
            break;
        now = http_now();
        if (until >= 0)
            max = until > now ? until - now : 0;
        t = op_transport(op);
        if (op->step == STEP_WAIT_LOGIN || !t) { /* no timer of libcurl's covers its deadline */
            double w = op->deadline > now ? op->deadline - now : 0;
            if (max < 0 || w < max)
                max = w;
        }
        if (op->step == STEP_WAIT_LOGIN && !op->c->login_owner && op->c->session)
            session_wait(op->c->session, max < 0 || max > 0.05 ? 0.05 : max); /* another client logs in */
        else if (t)
            http_wait(t, max);
        expire_waiters(op->c);
    } while (until < 0 || http_now() < until);
    op_settle(op);
    return op->step == STEP_DONE;
}

/* The waker is the descriptor: the handle handed out is the waker itself. */
struct smsend_op_fd *smsend_op_fd_keep(struct smsend_op *op)
{
    if (!op->waker)
        return NULL;
    op->waker->refs++;
    return (struct smsend_op_fd *)op->waker;
}

void smsend_op_fd_release(struct smsend_op_fd *fd)
{
    http_waker_release((struct http_waker *)fd);
}

int smsend_op_fd(struct smsend_op *op)
{
    if (op->waker)
        return op->waker->epfd;
    return op->c ? http_fd(op_transport(op)) : -1;
}

double smsend_op_timeout(struct smsend_op *op)
{
    double t, w;
    if (op->step == STEP_DONE || !op->c)
        return 0;
    t = http_timeout(op_transport(op));
    if (op->step == STEP_WAIT_LOGIN) {
        w = op->deadline - http_now();
        if (w < 0)
            w = 0;
        if (!op->c->login_owner && w > 0.01)
            w = 0.01; /* another client of the process logs in: look again soon */
        if (t < 0 || w < t)
            t = w;
    }
    return t;
}

int smsend_op_cancel(struct smsend_op *op)
{
    struct smsend_client *c = op->c;
    int sent = 0;
    if (op->step == STEP_DONE)
        return 0;
    if (op->x)
        sent = http_abort(op->x) && op->step == STEP_CALL;
    op_detach_exchange(op);
    if (c && c->login_owner == op) {
        c->login_owner = NULL;
        secure_wipe(op->login_url.data, op->login_url.size);
        buf_reset(&op->login_url);
    }
    result_clear(&op->r);
    result_fail(&op->r, SMSEND_E_CANCELLED,
                sent ? "cancelled after the request was written: the gateway may have acted on it"
                     : "cancelled before the request was sent");
    op->r.retryable = !sent;
    op_end_session_login(op, 0); /* abandoned: another client may log in */
    http_wake(op->waker);        /* a waiter parked on the descriptor sees it done */
    op_done(op);
    op_settle(op);
    /* ops that waited for this op's login log in themselves now */
    if (c) {
        struct smsend_op *w, *next;
        for (w = c->ops; w; w = next) {
            next = w->next;
            if (w->step == STEP_WAIT_LOGIN && !c->login_owner)
                op_need_keys(w);
        }
    }
    return 1;
}

/* ---- the blocking calls: start an op and wait for it ---- */

/* The last blocking call's op stays until the next call, so r->body can point into its answer. */
static void run_blocking(struct smsend_client *c, struct smsend_op *op, struct smsend_result *r)
{
    if (!op)
        op = op_failed_alloc();
    else
        smsend_op_wait(op, -1);
    *r = op->r;
    if (op->c == c)
        c->last = op;
}

static void drop_last(struct smsend_client *c)
{
    struct smsend_op *op = c->last;
    c->last = NULL;
    smsend_op_free(op);
}

void client_request_pin(struct smsend_client *c, const struct pin_request *q, struct smsend_result *r)
{
    drop_last(c);
    run_blocking(c, smsend_op_request_pin(c, q, 0), r);
}

void client_verify_pin(struct smsend_client *c, const struct pin_verify *q, struct smsend_result *r)
{
    drop_last(c);
    run_blocking(c, smsend_op_verify_pin(c, q, 0), r);
}

void client_login(struct smsend_client *c, struct smsend_result *r)
{
    drop_last(c);
    run_blocking(c, smsend_op_login(c, 0), r);
}

void client_check_session(struct smsend_client *c, struct smsend_result *r)
{
    drop_last(c);
    run_blocking(c, smsend_op_check_session(c, 0), r);
}

void client_destroy(struct smsend_client *c)
{
    struct smsend_op *op;
    if (!c)
        return;
    drop_last(c);
    /* ops still alive (pollable ones the caller holds) are cancelled and cut loose */
    while ((op = c->ops) != NULL) {
        smsend_op_cancel(op);
        op_detach_exchange(op);
        op_unlink(op);
        op->c = NULL;
    }
    if (c->spare)
        op_free_memory(c->spare);
    if (c->http.on_done) /* http_open ran (a client failing earlier has no transport) */
        http_close(&c->http);
    curl_url_cleanup(c->u_request);
    curl_url_cleanup(c->u_verify);
    curl_url_cleanup(c->u_check);
    secret_clear(&c->user_key);
    secret_clear(&c->key);
    secret_clear(&c->username);
    secret_clear(&c->password);
    secret_clear(&c->proxy);
    guard_close(c->guard);
    session_put(c->session);
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
