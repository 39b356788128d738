/* smsend.c — luaopen_smsend: the module table, smsend.new, and the module-level request_pin /
 * verify_pin with their per-Lua-state client cache (configurations compared in C memory). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "lsmsend.h"

#define CACHE_MT "smsend.cache"
#define CACHE_SLOTS 8 /* distinct configurations kept alive per Lua state */

/* The string options of a configuration, in a fixed order. */
static const size_t cfg_strings[] = {
    offsetof(struct client_config, base_url),   offsetof(struct client_config, user_key),
    offsetof(struct client_config, access_token), offsetof(struct client_config, session_key),
    offsetof(struct client_config, username),   offsetof(struct client_config, password),
    offsetof(struct client_config, cainfo),     offsetof(struct client_config, capath),
    offsetof(struct client_config, proxy),      offsetof(struct client_config, user_agent),
    offsetof(struct client_config, login_path), offsetof(struct client_config, token_path),
};
#define CFG_NSTR (sizeof cfg_strings / sizeof cfg_strings[0])
#define CFG_STR(cfg, i) ((const struct field_str *)((const char *)(cfg) + cfg_strings[i]))

/* A cached client and a private copy of the configuration it was made from. The copy holds
 * secrets, so it lives in C memory and is wiped when the slot is emptied; the lookup compares
 * configurations byte for byte, so two different ones can never share a client. */
struct cache_slot {
    struct smsend_client *c;
    unsigned long used;
    struct client_config cfg; /* strings point into blob */
    char *blob;
    size_t blob_size;
};

struct cache {
    int closed; /* the Lua state is closing: cache nothing any more */
    unsigned long tick;
    int last;   /* slot of the last hit: checked first */
    struct cache_slot slots[CACHE_SLOTS];
};

static void slot_empty(struct cache_slot *s)
{
    client_destroy(s->c);
    s->c = NULL;
    if (s->blob) {
        secure_wipe(s->blob, s->blob_size);
        free(s->blob);
    }
    s->blob = NULL;
    s->blob_size = 0;
}

static int slot_keep_config(struct cache_slot *s, const struct client_config *cfg)
{
    size_t i, size = 1;
    char *o;
    for (i = 0; i < CFG_NSTR; i++)
        size += CFG_STR(cfg, i)->n;
    if (!(s->blob = malloc(size)))
        return -1;
    s->blob_size = size;
    s->cfg = *cfg;
    o = s->blob;
    for (i = 0; i < CFG_NSTR; i++) {
        const struct field_str *f = CFG_STR(cfg, i);
        struct field_str *mine = (struct field_str *)((char *)&s->cfg + cfg_strings[i]);
        if (f->p) {
            memcpy(o, f->p, f->n);
            mine->p = o;
            o += f->n;
        }
    }
    return 0;
}

static int config_equal(const struct client_config *a, const struct client_config *b)
{
    size_t i;
    if (a->timeout != b->timeout || a->connect_timeout != b->connect_timeout ||
        a->min_interval != b->min_interval || a->auth != b->auth)
        return 0;
    for (i = 0; i < CFG_NSTR; i++) {
        const struct field_str *x = CFG_STR(a, i), *y = CFG_STR(b, i);
        if (!x->p != !y->p || x->n != y->n || (x->n && memcmp(x->p, y->p, x->n) != 0))
            return 0;
    }
    return 1;
}

static int cache_gc(lua_State *L)
{
    struct cache *cc = luaL_checkudata(L, 1, CACHE_MT);
    int i;
    for (i = 0; i < CACHE_SLOTS; i++)
        slot_empty(&cc->slots[i]);
    cc->closed = 1;
    return 0;
}

/* The cached client for cfg, creating (and possibly evicting the least recently used) on a miss.
 * Callers check the request first, so bad input creates and evicts nothing. */
static struct smsend_client *cache_get(struct cache *cc, const struct client_config *cfg, struct smsend_result *r)
{
    struct cache_slot *victim = NULL, *s = &cc->slots[cc->last];
    char err[512], field[SMSEND_FIELD_MAX];
    struct smsend_client *c;
    int i;
    cc->tick++;
    if (s->c && config_equal(cfg, &s->cfg)) { /* the usual case: the same configuration again */
        s->used = cc->tick;
        return s->c;
    }
    for (i = 0; i < CACHE_SLOTS; i++) {
        s = &cc->slots[i];
        if (s->c && config_equal(cfg, &s->cfg)) {
            s->used = cc->tick;
            cc->last = i;
            return s->c;
        }
        if (!victim || !s->c || (victim->c && s->used < victim->used))
            victim = s;
    }
    c = client_create(cfg, err, sizeof err, field, sizeof field);
    if (!c) {
        result_invalid(r, field[0] ? field : "user_key", "%s", err);
        return NULL;
    }
    slot_empty(victim);
    if (slot_keep_config(victim, cfg) != 0) {
        client_destroy(c);
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        r->retryable = 1;
        return NULL;
    }
    victim->c = c;
    victim->used = cc->tick;
    cc->last = (int)(victim - cc->slots);
    return c;
}

/* smsend.request_pin(t) / smsend.verify_pin(t): request fields and smsend.new options in one table. */
static int module_call(lua_State *L, enum lsm_op op)
{
    struct cache *cc = lua_touserdata(L, lua_upvalueindex(1));
    struct client_config cfg;
    union {
        struct pin_request rq;
        struct pin_verify vq;
    } q;
    struct smsend_result r;
    struct smsend_client *c;
    char err[256];
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    client_config_defaults(&cfg);
    memset(&q, 0, sizeof q);
    result_clear(&r);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        enum lsm_key k = lsm_key_of(L, -2);
        if (k == K_UNKNOWN) {
            lsm_unknown_key(L, -2, &r);
            goto out;
        }
        if (k < K_FIRST_OPTION) {
            if (lsm_read_field(L, -1, k, op, &q, &r) != 0)
                goto out;
        } else {
            const char *why = lsm_read_option(L, -1, k, &cfg, err, sizeof err);
            if (why) {
                char name[SMSEND_FIELD_MAX];
                size_t n;
                const char *s = lua_tolstring(L, -2, &n);
                snprintf(name, sizeof name, "%.*s", (int)n, s);
                result_invalid(&r, name, "%s", why);
                goto out;
            }
        }
        lua_pop(L, 1);
    }
    client_config_from_env(&cfg);
    /* Checked once, here, before a client is chosen; the client then trusts the flag. */
    if (op == OP_REQUEST ? fields_check_request(&q.rq, &r) : fields_check_verify(&q.vq, &r))
        goto out;
    if (op == OP_REQUEST)
        q.rq.checked = 1;
    else
        q.vq.checked = 1;
    if (cc->closed) {
        /* A finalizer running while the state closes: serve the call with a one-off client,
         * so nothing is left behind in a cache that will never be collected again. */
        char field[SMSEND_FIELD_MAX];
        c = client_create(&cfg, err, sizeof err, field, sizeof field);
        if (!c) {
            result_invalid(&r, field[0] ? field : "user_key", "%s", err);
            goto out;
        }
        if (op == OP_REQUEST)
            client_request_pin(c, &q.rq, &r);
        else
            client_verify_pin(c, &q.vq, &r);
        lsm_push_result(L, &r);
        client_destroy(c);
        return 1;
    }
    c = cache_get(cc, &cfg, &r);
    if (c) {
        if (op == OP_REQUEST)
            client_request_pin(c, &q.rq, &r);
        else
            client_verify_pin(c, &q.vq, &r);
    }
out:
    lsm_push_result(L, &r);
    return 1;
}

static int l_request_pin(lua_State *L)
{
    return module_call(L, OP_REQUEST);
}

static int l_verify_pin(lua_State *L)
{
    return module_call(L, OP_VERIFY);
}

__attribute__((visibility("default"))) int luaopen_smsend(lua_State *L)
{
    static const luaL_Reg cached_fns[] = {
        {"request_pin", l_request_pin},
        {"verify_pin", l_verify_pin},
        {NULL, NULL},
    };
    struct cache *cc;
    if (client_global_init() != 0)
        return luaL_error(L, "smsend: libcurl could not be initialised");
    lsm_client_register(L);
    lua_newtable(L);
    cc = lua_newuserdata(L, sizeof *cc);
    memset(cc, 0, sizeof *cc);
    if (luaL_newmetatable(L, CACHE_MT)) {
        lua_pushcfunction(L, cache_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lsm_push_keys(L);
    luaL_setfuncs(L, cached_fns, 1 + LSM_NKEYS); /* upvalue 1: the cache; then the status keys */
    lua_pushcfunction(L, lsm_client_new);
    lua_setfield(L, -2, "new");
    lua_pushliteral(L, SMSEND_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lsm_sms_register(L);
    return 1;
}
