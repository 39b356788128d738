/* lclient.c — the smsend.client userdata (methods, __gc/__close/__tostring), smsend.new, and
 * the conversions between Lua tables and the plain-C structs. Misuse raises; data errors
 * come back as status tables. No Lua value is created while a transfer runs. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "lsmsend.h"

struct lclient {
    struct smsend_client *c; /* NULL once closed */
};

/* ---- keys ---- */

static const char *const fields[K_FIRST_OPTION] = {
    [K_RECIPIENT] = "recipient", [K_SENDER] = "senderName", [K_EXPIRY] = "expiry",
    [K_MESSAGE] = "messageBody", [K_PIN] = "pin",
};

/* Every key a table may hold (request fields, then options), grouped by length, so that a key
 * is compared with the few names of its length only: built once per process. */
#define KEY_COUNT (K_FIRST_OPTION + CONFIG_NOPTIONS)
#define KEY_MAX_LEN 31
static struct {
    const char *name;
    int k;
} keys_by_len[KEY_COUNT];
static unsigned char keys_from[KEY_MAX_LEN + 2]; /* names of length n: [keys_from[n], keys_from[n+1]) */
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void keys_build(void)
{
    size_t n;
    int i, j = 0;
    for (n = 0; n <= KEY_MAX_LEN; n++) {
        keys_from[n] = (unsigned char)j;
        for (i = 0; i < KEY_COUNT; i++) {
            const char *name = i < K_FIRST_OPTION ? fields[i] : config_options[i - K_FIRST_OPTION].name;
            if (strlen(name) == n) {
                keys_by_len[j].name = name;
                keys_by_len[j++].k = i;
            }
        }
    }
    keys_from[KEY_MAX_LEN + 1] = (unsigned char)j;
}

void lsm_keys_init(void)
{
    pthread_once(&keys_once, keys_build);
}

/* The same keys by address, per Lua state. A key name is a short string, and Lua interns short
 * strings (LuaJIT every string): any string equal to a name is the very string the map holds, kept
 * alive in the registry. So a key is found by its address alone, with no byte compared; an address
 * the map does not hold is looked up by its bytes, which only an unknown key ever pays. */
#define KEYMAP_SLOTS 64 /* a power of two, over twice KEY_COUNT */
struct lsm_keymap {
    const void *ptr[KEYMAP_SLOTS];
    int code[KEYMAP_SLOTS];
};
#define KEYMAP_REG "smsend.keymap"

static unsigned keymap_slot(const void *p)
{
    return (unsigned)(((uintptr_t)p * UINT64_C(0x9E3779B97F4A7C15)) >> 58) & (KEYMAP_SLOTS - 1);
}

/* Pushes the state's key map, made (with the table that keeps its strings alive) on first use. */
static void push_keymap(lua_State *L)
{
    struct lsm_keymap *km;
    int i;
    lua_getfield(L, LUA_REGISTRYINDEX, KEYMAP_REG);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    km = lua_newuserdata(L, sizeof *km);
    memset(km, 0, sizeof *km);
    lua_createtable(L, KEY_COUNT, 0); /* the names, kept alive for as long as the state lives */
    for (i = 0; i < KEY_COUNT; i++) {
        const char *s;
        unsigned h;
        lua_pushstring(L, keys_by_len[i].name);
        s = lua_tostring(L, -1);
        lua_rawseti(L, -2, i + 1);
        for (h = keymap_slot(s); km->ptr[h]; h = (h + 1) & (KEYMAP_SLOTS - 1))
            ;
        km->ptr[h] = s;
        km->code[h] = keys_by_len[i].k;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, KEYMAP_REG ".names");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, KEYMAP_REG);
}

static int keymap_find(const struct lsm_keymap *km, lua_State *L, int idx)
{
    const char *s;
    unsigned h;
    if (lua_type(L, idx) != LUA_TSTRING)
        return K_UNKNOWN;
    s = lua_tolstring(L, idx, NULL);
    for (h = keymap_slot(s); km->ptr[h]; h = (h + 1) & (KEYMAP_SLOTS - 1))
        if (km->ptr[h] == s)
            return km->code[h];
    return lsm_key_of(L, idx);
}

int lsm_key_of(lua_State *L, int idx)
{
    size_t n;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
    int i;
    if (!s || n > KEY_MAX_LEN)
        return K_UNKNOWN;
    for (i = keys_from[n]; i < keys_from[n + 1]; i++)
        if (keys_by_len[i].name[0] == s[0] && memcmp(keys_by_len[i].name, s, n) == 0)
            return keys_by_len[i].k;
    return K_UNKNOWN;
}

static const char *key_name(int k)
{
    return k < K_FIRST_OPTION ? fields[k] : config_options[k - K_FIRST_OPTION].name;
}

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

const char *lsm_read_option(lua_State *L, int idx, int option, struct client_config *cfg, char *err, size_t errlen)
{
    const struct option_info *o = &config_options[option];
    struct field_str f = {"", 0};
    double v;
    switch (o->kind) {
    case OPTION_SECONDS:
    case OPTION_INTEGER:
        if (read_number(L, idx, &v) != 0) {
            snprintf(err, errlen, "%s must be %s, got %s", o->name,
                     o->kind == OPTION_SECONDS ? "a number of seconds" : "a whole number", luaL_typename(L, idx));
            return err;
        }
        config_set_number(cfg, option, v);
        return NULL;
    case OPTION_ENUM: /* a word of another type is as wrong as an unknown word */
        read_string(L, idx, &f);
        return config_set_enum(cfg, option, f.p, f.n, err, errlen) == 0 ? NULL : err;
    default:
        if (read_string(L, idx, &f) != 0) {
            snprintf(err, errlen, "%s must be a string, got %s", o->name, luaL_typename(L, idx));
            return err;
        }
        config_set_string(cfg, option, f.p, f.n);
        return NULL;
    }
}

/* ---- request fields ---- */

/* Reads the value at idx for request field k of op into q; -1 with r filled for a wrong type or a
 * field that does not belong to op. The values themselves are checked in fields.c. */
static int read_field(lua_State *L, int idx, int k, enum lsm_op op, union lsm_request *q, struct smsend_result *r)
{
    struct field_str *s = NULL;
    if (op == OP_REQUEST && k == K_EXPIRY) {
        if (read_number(L, idx, &q->rq.expiry) != 0) {
            result_invalid(r, "expiry", "expiry must be a number of minutes, got %s", luaL_typename(L, idx));
            return -1;
        }
        q->rq.has_expiry = 1;
        return 0;
    }
    if (op == OP_REQUEST)
        s = k == K_RECIPIENT ? &q->rq.recipient : k == K_SENDER ? &q->rq.sender : k == K_MESSAGE ? &q->rq.message : NULL;
    else if (op == OP_VERIFY)
        s = k == K_RECIPIENT ? &q->vq.recipient : k == K_PIN ? &q->vq.pin : NULL;
    if (!s) {
        result_invalid(r, key_name(k), "unknown field '%s'", key_name(k));
        return -1;
    }
    if (read_string(L, idx, s) != 0) {
        result_invalid(r, key_name(k), "%s must be a string, got %s", key_name(k), luaL_typename(L, idx));
        return -1;
    }
    return 0;
}

/* An unknown key at idx (or one that does not belong where it is). */
static void unknown_key(lua_State *L, int idx, int k, enum lsm_op op, struct smsend_result *r)
{
    char name[SMSEND_FIELD_MAX];
    key_text(L, idx, name, sizeof name);
    if (op != OP_NONE)
        result_invalid(r, name, "unknown field '%s'", name);
    else if (k == K_UNKNOWN)
        result_invalid(r, name, "unknown option '%s'", name);
    else
        result_invalid(r, name, "'%s' is a request field, not an option of smsend.new", name);
}

int lsm_read_table_given(lua_State *L, int idx, enum lsm_op op, union lsm_request *q, struct client_config *cfg,
                         config_mask *given, const struct lsm_keymap *km, struct smsend_result *r)
{
    char err[256];
    luaL_checktype(L, idx, LUA_TTABLE);
    memset(q, 0, sizeof *q);
    *given = 0;
    if (cfg)
        config_init(cfg);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int k = km ? keymap_find(km, L, -2) : lsm_key_of(L, -2);
        if (k >= K_FIRST_OPTION && cfg) {
            if (lsm_read_option(L, -1, k - K_FIRST_OPTION, cfg, err, sizeof err)) {
                result_invalid(r, key_name(k), "%s", err);
                return -1;
            }
            *given |= CONFIG_BIT(k - K_FIRST_OPTION);
        } else if (k != K_UNKNOWN && k < K_FIRST_OPTION && op != OP_NONE) {
            if (read_field(L, -1, k, op, q, r) != 0)
                return -1;
        } else {
            unknown_key(L, -2, k, op, r);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

int lsm_finish_config(struct client_config *cfg, struct smsend_result *r)
{
    char err[256], field[SMSEND_FIELD_MAX];
    if (config_finish(cfg, err, sizeof err, field, sizeof field) == 0)
        return 0;
    result_invalid(r, field, "%s", err);
    return -1;
}

int lsm_read_table(lua_State *L, int idx, enum lsm_op op, union lsm_request *q, struct client_config *cfg,
                   struct smsend_result *r)
{
    config_mask given;
    if (lsm_read_table_given(L, idx, op, q, cfg, &given, NULL, r) != 0)
        return -1;
    return cfg ? lsm_finish_config(cfg, r) : 0;
}

void lsm_call(struct smsend_client *c, enum lsm_op op, const union lsm_request *q, struct smsend_result *r)
{
    if (op == OP_REQUEST)
        client_request_pin(c, &q->rq, r);
    else
        client_verify_pin(c, &q->vq, r);
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
    for (i = 0; i < LSM_NKEYS; i++) {
        if (i == RK_KEYMAP)
            push_keymap(L);
        else
            lua_pushstring(L, names[i]);
    }
}

#define PUSH_KEY(k) lua_pushvalue(L, lua_upvalueindex(2 + (k)))

/* t[key] = value for the table on top of the stack, the key from the function's upvalues. */
static void set_boolean(lua_State *L, int key, int b)
{
    PUSH_KEY(key);
    lua_pushboolean(L, b);
    lua_rawset(L, -3);
}

/* counts: a whole value comes out as an integer; durations stay floats */
static void set_number(lua_State *L, int key, double v, int count)
{
    PUSH_KEY(key);
    if (count && v == floor(v) && v >= 0 && v < 1e15)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
    lua_rawset(L, -3);
}

static void set_string(lua_State *L, int key, const char *s)
{
    PUSH_KEY(key);
    lua_pushstring(L, s);
    lua_rawset(L, -3);
}

void lsm_push_call(lua_State *L, enum stats_op op, const struct smsend_result *r)
{
    stats_call(op, r->error);
    lsm_push_result(L, r);
}

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
    set_boolean(L, RK_OK, r->error == SMSEND_OK);
    if (r->status > 0)
        set_number(L, RK_STATUS, (double)r->status, 1);
    if (r->error != SMSEND_OK)
        set_string(L, RK_ERROR, smsend_error_name(r->error));
    set_string(L, RK_MESSAGE, r->message);
    if (r->field[0])
        set_string(L, RK_FIELD, r->field);
    set_boolean(L, RK_RETRYABLE, r->retryable);
    set_number(L, RK_ELAPSED, r->elapsed, 0);
    if (r->retry_after >= 0)
        set_number(L, RK_RETRY_AFTER, r->retry_after, 0);
    if (r->tries_remaining >= 0)
        set_number(L, RK_TRIES_REMAINING, r->tries_remaining, 1);
    if (r->valid >= 0)
        set_boolean(L, RK_VALID, r->valid);
}

/* ---- the client userdata ---- */

/* The methods carry their class's metatable as upvalue 1: comparing with it is the type check
 * luaL_checkudata makes, without looking the name up in the registry on every call. */
void *lsm_check_self(lua_State *L, const char *name)
{
    void *u = lua_touserdata(L, 1);
    int ok = 0;
    if (u && lua_getmetatable(L, 1)) {
        ok = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
    }
    return ok ? u : luaL_checkudata(L, 1, name); /* raises the usual message */
}

struct smsend_client *lsm_check_client(lua_State *L)
{
    struct lclient *u = lsm_check_self(L, LSMSEND_CLIENT_MT);
    if (!u->c)
        luaL_error(L, "attempt to use a closed smsend.client");
    return u->c;
}

int lsm_read_request(lua_State *L, enum lsm_op op, void *q, struct smsend_result *r)
{
    config_mask none;
    return lsm_read_table_given(L, 2, op, q, NULL, &none, LSM_KEYMAP(L), r);
}

/* c:request_pin(q) / c:verify_pin(q): the request table at index 2, then the call. */
static int method_call(lua_State *L, enum lsm_op op)
{
    struct smsend_client *c = lsm_check_client(L);
    union lsm_request q;
    struct smsend_result r;
    result_clear(&r);
    if (lsm_read_request(L, op, &q, &r) == 0)
        lsm_call(c, op, &q, &r);
    lsm_push_call(L, LSM_STATS_OP(op), &r);
    return 1;
}

/* c:login() / c:check_session(): no arguments. */
static int plain_call(lua_State *L, void (*fn)(struct smsend_client *, struct smsend_result *), enum stats_op op)
{
    struct smsend_client *c = lsm_check_client(L);
    struct smsend_result r;
    fn(c, &r);
    lsm_push_call(L, op, &r);
    return 1;
}

/* The methods themselves: which call each one makes. */
static int m_request_pin(lua_State *L) { return method_call(L, OP_REQUEST); }
static int m_verify_pin(lua_State *L) { return method_call(L, OP_VERIFY); }
static int m_login(lua_State *L) { return plain_call(L, client_login, STATS_LOGIN); }
static int m_check_session(lua_State *L) { return plain_call(L, client_check_session, STATS_CHECK_SESSION); }

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
    union lsm_request unused;
    struct smsend_result r;
    struct lclient *u;
    char err[512], field[SMSEND_FIELD_MAX];
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    result_clear(&r);
    if (lsm_read_table(L, 1, OP_NONE, &unused, &cfg, &r) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, r.message);
        return 2;
    }
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
        {"request_pin_async", lsm_request_pin_async},
        {"verify_pin_async", lsm_verify_pin_async},
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
    lsm_op_register(L);
    lsm_register_class(L, LSMSEND_CLIENT_MT, meta, methods);
}

void lsm_register_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
    if (luaL_newmetatable(L, name)) {
        luaL_setfuncs(L, meta, 0);
        lua_newtable(L);
        lua_pushvalue(L, -2);
        lsm_push_keys(L);
        luaL_setfuncs(L, methods, 1 + LSM_NKEYS); /* upvalue 1: the metatable, for the type check */
        lua_setfield(L, -2, "__index");
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}
