/* lclient.c — the smsend.client userdata (methods, __gc/__close/__tostring), smsend.new, and
 * the conversions between Lua tables and the plain-C structs. Misuse raises; data errors
 * come back as status tables. No Lua value is created while a transfer runs. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lsmsend.h"

struct lclient {
    struct smsend_client *c; /* NULL once closed */
};

/* ---- keys ---- */

#define IS(lit) (n == sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)

enum lsm_key lsm_key_of(lua_State *L, int idx)
{
    size_t n;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        return K_UNKNOWN;
    s = lua_tolstring(L, idx, &n);
    switch (n) {
    case 3: return IS("pin") ? K_PIN : K_UNKNOWN;
    case 4: return IS("auth") ? K_AUTH : K_UNKNOWN;
    case 5: return IS("proxy") ? K_PROXY : K_UNKNOWN;
    case 6:
        if (IS("expiry")) return K_EXPIRY;
        if (IS("cainfo")) return K_CAINFO;
        if (IS("capath")) return K_CAPATH;
        return K_UNKNOWN;
    case 7: return IS("timeout") ? K_TIMEOUT : K_UNKNOWN;
    case 8:
        if (IS("user_key")) return K_USER_KEY;
        if (IS("base_url")) return K_BASE_URL;
        if (IS("username")) return K_USERNAME;
        if (IS("password")) return K_PASSWORD;
        return K_UNKNOWN;
    case 9: return IS("recipient") ? K_RECIPIENT : K_UNKNOWN;
    case 10:
        if (IS("senderName")) return K_SENDER;
        if (IS("user_agent")) return K_USER_AGENT;
        if (IS("login_path")) return K_LOGIN_PATH;
        if (IS("token_path")) return K_TOKEN_PATH;
        return K_UNKNOWN;
    case 11:
        if (IS("messageBody")) return K_MESSAGE;
        if (IS("session_key")) return K_SESSION_KEY;
        return K_UNKNOWN;
    case 12:
        if (IS("access_token")) return K_ACCESS_TOKEN;
        if (IS("min_interval")) return K_MIN_INTERVAL;
        return K_UNKNOWN;
    case 15: return IS("connect_timeout") ? K_CONNECT_TIMEOUT : K_UNKNOWN;
    default: return K_UNKNOWN;
    }
}

static const char *const key_names[K__COUNT] = {
    "recipient", "senderName", "expiry", "messageBody", "pin",
    "base_url", "user_key", "access_token", "session_key", "username", "password",
    "cainfo", "capath", "proxy", "user_agent", "login_path", "token_path",
    "auth", "timeout", "connect_timeout", "min_interval",
};

/* A printable rendering of any key for messages: strings are cut and stripped of control bytes. */
static void key_text(lua_State *L, int idx, char *out, size_t outlen)
{
    size_t n, i, k = 0;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING) {
        snprintf(out, outlen, "(%s key)", lua_typename(L, lua_type(L, idx)));
        return;
    }
    s = lua_tolstring(L, idx, &n);
    for (i = 0; i < n && k + 1 < outlen && k < 40; i++)
        out[k++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    out[k] = 0;
}

void lsm_unknown_key(lua_State *L, int idx, struct smsend_result *r)
{
    char name[SMSEND_FIELD_MAX];
    key_text(L, idx, name, sizeof name);
    result_invalid(r, name, "unknown field '%s'", name);
}

/* ---- options ---- */

static int read_string(lua_State *L, int idx, struct field_str *f)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        return -1;
    f->p = lua_tolstring(L, idx, &f->n);
    return 0;
}

static int read_number(lua_State *L, int idx, double *out)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return -1;
    *out = (double)lua_tonumber(L, idx);
    return 0;
}

const char *lsm_read_option(lua_State *L, int idx, enum lsm_key k, struct client_config *cfg, char *err, size_t errlen)
{
    struct field_str *s = NULL;
    double *d = NULL;
    switch (k) {
    case K_BASE_URL: s = &cfg->base_url; break;
    case K_USER_KEY: s = &cfg->user_key; break;
    case K_ACCESS_TOKEN: s = &cfg->access_token; break;
    case K_SESSION_KEY: s = &cfg->session_key; break;
    case K_USERNAME: s = &cfg->username; break;
    case K_PASSWORD: s = &cfg->password; break;
    case K_CAINFO: s = &cfg->cainfo; break;
    case K_CAPATH: s = &cfg->capath; break;
    case K_PROXY: s = &cfg->proxy; break;
    case K_USER_AGENT: s = &cfg->user_agent; break;
    case K_LOGIN_PATH: s = &cfg->login_path; break;
    case K_TOKEN_PATH: s = &cfg->token_path; break;
    case K_TIMEOUT: d = &cfg->timeout; break;
    case K_CONNECT_TIMEOUT: d = &cfg->connect_timeout; break;
    case K_MIN_INTERVAL: d = &cfg->min_interval; break;
    case K_AUTH: {
        struct field_str a;
        if (read_string(L, idx, &a) == 0 && a.n == 7 && memcmp(a.p, "session", 7) == 0)
            cfg->auth = AUTH_SESSION;
        else if (read_string(L, idx, &a) == 0 && a.n == 5 && memcmp(a.p, "token", 5) == 0)
            cfg->auth = AUTH_TOKEN;
        else
            return "auth must be \"session\" or \"token\"";
        return NULL;
    }
    default:
        snprintf(err, errlen, "unknown option");
        return err;
    }
    if (s && read_string(L, idx, s) != 0) {
        snprintf(err, errlen, "%s must be a string, got %s", key_names[k], luaL_typename(L, idx));
        return err;
    }
    if (d && read_number(L, idx, d) != 0) {
        snprintf(err, errlen, "%s must be a number of seconds, got %s", key_names[k], luaL_typename(L, idx));
        return err;
    }
    return NULL;
}

/* ---- request fields ---- */

int lsm_read_field(lua_State *L, int idx, enum lsm_key k, enum lsm_op op, void *q, struct smsend_result *r)
{
    struct pin_request *rq = q;
    struct pin_verify *vq = q;
    struct field_str *s;
    if (op == OP_REQUEST) {
        switch (k) {
        case K_RECIPIENT: s = &rq->recipient; break;
        case K_SENDER: s = &rq->sender; break;
        case K_MESSAGE: s = &rq->message; break;
        case K_EXPIRY: {
            if (read_number(L, idx, &rq->expiry) != 0) {
                result_invalid(r, "expiry", "expiry must be a number of minutes, got %s", luaL_typename(L, idx));
                return -1;
            }
            rq->has_expiry = 1;
            return 0;
        }
        default:
            result_invalid(r, key_names[k], "unknown field '%s'", key_names[k]);
            return -1;
        }
    } else {
        switch (k) {
        case K_RECIPIENT: s = &vq->recipient; break;
        case K_PIN: s = &vq->pin; break;
        default:
            result_invalid(r, key_names[k], "unknown field '%s'", key_names[k]);
            return -1;
        }
    }
    if (read_string(L, idx, s) != 0) {
        result_invalid(r, key_names[k], "%s must be a string, got %s", key_names[k], luaL_typename(L, idx));
        return -1;
    }
    return 0;
}

/* ---- status tables ---- */

void lsm_push_keys(lua_State *L)
{
    static const char *const names[LSM_NKEYS] = {
        [RK_BODY] = "body", [RK_OK] = "ok", [RK_STATUS] = "status", [RK_ERROR] = "error",
        [RK_MESSAGE] = "message", [RK_FIELD] = "field", [RK_RETRYABLE] = "retryable",
        [RK_ELAPSED] = "elapsed", [RK_RETRY_AFTER] = "retry_after",
        [RK_TRIES_REMAINING] = "tries_remaining", [RK_VALID] = "valid",
        [RK_BODY_OK] = "{\"status\":\"OK\"}",
    };
    int i;
    for (i = 0; i < LSM_NKEYS; i++)
        lua_pushstring(L, names[i]);
}

#define PUSH_KEY(k) lua_pushvalue(L, lua_upvalueindex(2 + (k)))

void lsm_push_result(lua_State *L, const struct smsend_result *r)
{
    /* r->body points into the client's buffer: copy it into Lua before anything else allocates,
     * since an allocation may run a finalizer that closes or reuses that client. */
    int has_body = r->status > 0 && !r->body_is_secret;
    if (has_body) {
        if (result_body_is_ok(r))
            PUSH_KEY(RK_BODY_OK);
        else
            lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    }
    lua_createtable(L, 0, 8);
    if (has_body) { /* the string stays below the table: callers return only the top value */
        PUSH_KEY(RK_BODY);
        lua_pushvalue(L, -3);
        lua_rawset(L, -3);
    }
    PUSH_KEY(RK_OK);
    lua_pushboolean(L, r->error == SMSEND_OK);
    lua_rawset(L, -3);
    if (r->status > 0) {
        PUSH_KEY(RK_STATUS);
        lua_pushinteger(L, (lua_Integer)r->status);
        lua_rawset(L, -3);
    }
    if (r->error != SMSEND_OK) {
        PUSH_KEY(RK_ERROR);
        lua_pushstring(L, smsend_error_name(r->error));
        lua_rawset(L, -3);
    }
    PUSH_KEY(RK_MESSAGE);
    lua_pushstring(L, r->message);
    lua_rawset(L, -3);
    if (r->field[0]) {
        PUSH_KEY(RK_FIELD);
        lua_pushstring(L, r->field);
        lua_rawset(L, -3);
    }
    PUSH_KEY(RK_RETRYABLE);
    lua_pushboolean(L, r->retryable);
    lua_rawset(L, -3);
    PUSH_KEY(RK_ELAPSED);
    lua_pushnumber(L, r->elapsed);
    lua_rawset(L, -3);
    if (r->retry_after >= 0) {
        PUSH_KEY(RK_RETRY_AFTER);
        lua_pushnumber(L, r->retry_after);
        lua_rawset(L, -3);
    }
    if (r->tries_remaining >= 0) {
        PUSH_KEY(RK_TRIES_REMAINING);
        if (r->tries_remaining == floor(r->tries_remaining) && r->tries_remaining < 1e15)
            lua_pushinteger(L, (lua_Integer)r->tries_remaining);
        else
            lua_pushnumber(L, r->tries_remaining);
        lua_rawset(L, -3);
    }
    if (r->valid >= 0) {
        PUSH_KEY(RK_VALID);
        lua_pushboolean(L, r->valid);
        lua_rawset(L, -3);
    }
}

/* ---- the client userdata ---- */

/* The methods carry the metatable as their upvalue: comparing with it is the type check
 * luaL_checkudata makes, without looking the name up in the registry on every call. */
static struct smsend_client *check_open(lua_State *L)
{
    struct lclient *u = lua_touserdata(L, 1);
    int ok = 0;
    if (u && lua_getmetatable(L, 1)) {
        ok = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
    }
    if (!ok)
        u = luaL_checkudata(L, 1, LSMSEND_CLIENT_MT); /* raises the usual message */
    if (!u->c)
        luaL_error(L, "attempt to use a closed smsend.client");
    return u->c;
}

/* Reads the request table at index 2 into q; returns -1 with r filled on a data error. */
static int read_request_table(lua_State *L, enum lsm_op op, void *q, struct smsend_result *r)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
        enum lsm_key k = lsm_key_of(L, -2);
        if (k == K_UNKNOWN || k >= K_FIRST_OPTION) {
            lsm_unknown_key(L, -2, r);
            return -1;
        }
        if (lsm_read_field(L, -1, k, op, q, r) != 0)
            return -1;
        lua_pop(L, 1);
    }
    return 0;
}

static int m_request_pin(lua_State *L)
{
    struct smsend_client *c = check_open(L);
    struct pin_request q;
    struct smsend_result r;
    memset(&q, 0, sizeof q);
    result_clear(&r);
    if (read_request_table(L, OP_REQUEST, &q, &r) == 0)
        client_request_pin(c, &q, &r);
    lsm_push_result(L, &r);
    return 1;
}

static int m_verify_pin(lua_State *L)
{
    struct smsend_client *c = check_open(L);
    struct pin_verify q;
    struct smsend_result r;
    memset(&q, 0, sizeof q);
    result_clear(&r);
    if (read_request_table(L, OP_VERIFY, &q, &r) == 0)
        client_verify_pin(c, &q, &r);
    lsm_push_result(L, &r);
    return 1;
}

static int m_login(lua_State *L)
{
    struct smsend_client *c = check_open(L);
    struct smsend_result r;
    client_login(c, &r);
    lsm_push_result(L, &r);
    return 1;
}

static int m_check_session(lua_State *L)
{
    struct smsend_client *c = check_open(L);
    struct smsend_result r;
    client_check_session(c, &r);
    lsm_push_result(L, &r);
    return 1;
}

/* close(), __gc and __close: idempotent. */
static int m_close(lua_State *L)
{
    struct lclient *u = luaL_checkudata(L, 1, LSMSEND_CLIENT_MT);
    client_destroy(u->c);
    u->c = NULL;
    return 0;
}

static int m_tostring(lua_State *L)
{
    struct lclient *u = luaL_checkudata(L, 1, LSMSEND_CLIENT_MT);
    char text[2200];
    if (!u->c) {
        lua_pushfstring(L, "smsend.client (closed): %p", (void *)u);
        return 1;
    }
    client_describe(u->c, text, sizeof text);
    lua_pushfstring(L, "%s: %p", text, (void *)u);
    return 1;
}

static int m_is_closed(lua_State *L)
{
    struct lclient *u = luaL_checkudata(L, 1, LSMSEND_CLIENT_MT);
    lua_pushboolean(L, u->c == NULL);
    return 1;
}

/* smsend.new(options) -> client | nil, message */
int lsm_client_new(lua_State *L)
{
    struct client_config cfg;
    struct lclient *u;
    char err[512], field[SMSEND_FIELD_MAX];
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    client_config_defaults(&cfg);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        enum lsm_key k = lsm_key_of(L, -2);
        const char *why;
        if (k < K_FIRST_OPTION) {
            char name[SMSEND_FIELD_MAX];
            key_text(L, -2, name, sizeof name);
            lua_pushnil(L);
            if (k == K_UNKNOWN)
                lua_pushfstring(L, "unknown option '%s'", name);
            else
                lua_pushfstring(L, "'%s' is a request field, not an option of smsend.new", name);
            return 2;
        }
        if ((why = lsm_read_option(L, -1, k, &cfg, err, sizeof err)) != NULL) {
            lua_pushnil(L);
            lua_pushstring(L, why);
            return 2;
        }
        lua_pop(L, 1);
    }
    client_config_from_env(&cfg);
    /* Create the userdata first so a Lua memory error cannot leak a C client. */
    u = lua_newuserdata(L, sizeof *u);
    u->c = NULL;
    luaL_setmetatable(L, LSMSEND_CLIENT_MT);
    u->c = client_create(&cfg, err, sizeof err, field, sizeof field);
    if (!u->c) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

void lsm_client_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"request_pin", m_request_pin},
        {"verify_pin", m_verify_pin},
        {"login", m_login},
        {"check_session", m_check_session},
        {"close", m_close},
        {"is_closed", m_is_closed},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", m_close},
#if LUA_VERSION_NUM >= 504
        {"__close", m_close},
#endif
        {"__tostring", m_tostring},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, LSMSEND_CLIENT_MT)) {
        luaL_setfuncs(L, meta, 0);
        lua_newtable(L);
        lua_pushvalue(L, -2);
        lsm_push_keys(L);
        luaL_setfuncs(L, methods, 1 + LSM_NKEYS); /* upvalue 1: the metatable, for check_open */
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "smsend.client");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}
