/* smsend.c — luaopen_smsend: the module table, smsend.new, and the module-level request_pin /
 * verify_pin with their per-Lua-state client cache (keyed by a keyed hash, never by secrets). */
#include <string.h>
#include "hash.h"
#include "lsmsend.h"

#define CACHE_MT "smsend.cache"
#define CACHE_SLOTS 8 /* distinct configurations kept alive per Lua state */

struct cache {
    int closed;         /* the Lua state is closing: cache nothing any more */
    struct hash_key k1, k2;
    unsigned long tick;
    struct buf scratch; /* serialised configuration (holds secrets): wiped after hashing */
    struct cache_slot {
        uint64_t h1, h2;
        unsigned long used;
        struct smsend_client *c;
    } slots[CACHE_SLOTS];
};

static int cache_gc(lua_State *L)
{
    struct cache *cc = luaL_checkudata(L, 1, CACHE_MT);
    int i;
    for (i = 0; i < CACHE_SLOTS; i++) {
        client_destroy(cc->slots[i].c);
        cc->slots[i].c = NULL;
    }
    buf_wipe_free(&cc->scratch);
    cc->closed = 1;
    return 0;
}

static int put_str(struct buf *b, int tag, const struct field_str *f)
{
    unsigned char head[5];
    if (!f->p)
        return 0;
    head[0] = (unsigned char)tag;
    head[1] = (unsigned char)(f->n >> 24);
    head[2] = (unsigned char)(f->n >> 16);
    head[3] = (unsigned char)(f->n >> 8);
    head[4] = (unsigned char)f->n;
    return buf_append(b, head, 5) || buf_append(b, f->p, f->n);
}

/* A canonical byte form of everything that makes two configurations different clients. */
static int serialise(struct buf *b, const struct client_config *cfg)
{
    const struct field_str *strs[] = {
        &cfg->base_url, &cfg->user_key, &cfg->access_token, &cfg->session_key, &cfg->username,
        &cfg->password, &cfg->cainfo, &cfg->capath, &cfg->proxy, &cfg->user_agent,
        &cfg->login_path, &cfg->token_path,
    };
    double nums[3];
    unsigned char auth = (unsigned char)cfg->auth;
    size_t i;
    buf_reset(b);
    for (i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (put_str(b, (int)i + 1, strs[i]))
            return -1;
    nums[0] = cfg->timeout;
    nums[1] = cfg->connect_timeout;
    nums[2] = cfg->min_interval;
    return buf_append(b, nums, sizeof nums) || buf_append(b, &auth, 1);
}

/* The cached client for cfg, creating (and possibly evicting the least recently used) on a miss.
 * q/op are checked before anything is created or evicted: bad input changes nothing. */
static struct smsend_client *cache_get(struct cache *cc, const struct client_config *cfg, enum lsm_op op,
                                       const void *q, struct smsend_result *r)
{
    uint64_t h1, h2;
    struct cache_slot *victim = NULL;
    char err[512], field[SMSEND_FIELD_MAX];
    int i, rc;
    rc = serialise(&cc->scratch, cfg);
    if (rc == 0) {
        h1 = siphash24(&cc->k1, cc->scratch.data, cc->scratch.len);
        h2 = siphash24(&cc->k2, cc->scratch.data, cc->scratch.len);
    }
    secure_wipe(cc->scratch.data, cc->scratch.len);
    if (rc != 0) {
        result_fail(r, SMSEND_E_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    cc->tick++;
    for (i = 0; i < CACHE_SLOTS; i++) {
        struct cache_slot *s = &cc->slots[i];
        if (s->c && s->h1 == h1 && s->h2 == h2) {
            s->used = cc->tick;
            return s->c;
        }
        if (!victim || !s->c || (victim->c && s->used < victim->used))
            victim = s;
    }
    if (op == OP_REQUEST ? fields_check_request(q, r) : fields_check_verify(q, r))
        return NULL;
    {
        struct smsend_client *c = client_create(cfg, err, sizeof err, field, sizeof field);
        if (!c) {
            result_invalid(r, field[0] ? field : "user_key", "%s", err);
            return NULL;
        }
        client_destroy(victim->c);
        victim->c = c;
        victim->h1 = h1;
        victim->h2 = h2;
        victim->used = cc->tick;
        return c;
    }
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
    c = cache_get(cc, &cfg, op, &q, &r);
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
    if (http_global_init() != 0)
        return luaL_error(L, "smsend: libcurl could not be initialised");
    lsm_client_register(L);
    lua_newtable(L);
    cc = lua_newuserdata(L, sizeof *cc);
    memset(cc, 0, sizeof *cc);
    buf_init(&cc->scratch, 0);
    hash_random_key(&cc->k1);
    hash_random_key(&cc->k2);
    if (luaL_newmetatable(L, CACHE_MT)) {
        lua_pushcfunction(L, cache_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    luaL_setfuncs(L, cached_fns, 1);
    lua_pushcfunction(L, lsm_client_new);
    lua_setfield(L, -2, "new");
    lua_pushliteral(L, SMSEND_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lsm_sms_register(L);
    return 1;
}
