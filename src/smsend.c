/* smsend.c — luaopen_smsend: the module table, smsend.new, the module-level request_pin /
 * verify_pin with their per-Lua-state client cache, and the undocumented smsend._internal. */
#include <stdio.h>
#include <string.h>
#include "lsmsend.h"
#include "smsend.h"

void lsm_guard_register(lua_State *L); /* lguard.c */

#define CACHE_MT "smsend.cache"
#define CACHE_SLOTS 8 /* distinct configurations kept alive per Lua state */

/* A cached client knows the configuration it was made from (its private, wiped copy), and the
 * lookup compares configurations option by option, so two different ones never share a client.
 *
 * The quick way first: a call that gives the same options (the same set of keys, the same values)
 * as the call that made a slot gets that slot's client without finishing its configuration. The
 * options it does not give are what the slot's own call did not give either, and they were taken
 * from the environment and the defaults when the slot was made: so a cached client keeps the
 * SMSEND_* values it was made with, as a client of smsend.new does, and no call pays for reading
 * the environment again. Anything else (other keys, other values) takes the full way: the
 * configuration finished, then compared with every slot's. */
struct cache_slot {
    struct smsend_client *c;
    unsigned long used;
    config_mask given; /* the options the call that made it gave */
};

struct cache {
    int closed; /* the Lua state is closing: cache nothing any more */
    unsigned long tick;
    int last;   /* slot of the last hit: checked first */
    struct cache_slot slots[CACHE_SLOTS];
};

static int cache_gc(lua_State *L)
{
    struct cache *cc = luaL_checkudata(L, 1, CACHE_MT);
    int i;
    for (i = 0; i < CACHE_SLOTS; i++) {
        client_destroy(cc->slots[i].c);
        cc->slots[i].c = NULL;
    }
    cc->closed = 1;
    return 0;
}

/* The quick way: the client of the slot made by a call that gave exactly these options (cfg not
 * finished: only the options in given are looked at), or NULL. */
static struct smsend_client *cache_find_given(struct cache *cc, const struct client_config *cfg, config_mask given)
{
    int i, k;
    for (k = 0; k <= CACHE_SLOTS; k++) { /* the last hit first, then every slot */
        struct cache_slot *s = &cc->slots[i = k == 0 ? cc->last : k - 1];
        if (s->c && s->given == given && client_has_options(s->c, cfg, given)) {
            cc->last = i;
            s->used = ++cc->tick;
            return s->c;
        }
    }
    return NULL;
}

/* The cached client for cfg (finished), creating (and possibly evicting the least recently used)
 * on a miss; given: the options the caller's table gave. Callers check the request first, so bad
 * input creates and evicts nothing. */
static struct smsend_client *cache_get(struct cache *cc, const struct client_config *cfg, config_mask given,
                                       struct smsend_result *r)
{
    struct cache_slot *victim = NULL, *s = &cc->slots[cc->last];
    char err[512], field[SMSEND_FIELD_MAX];
    struct smsend_client *c;
    int i;
    cc->tick++;
    if (s->c && client_has_config(s->c, cfg)) { /* the usual case: the same configuration again */
        s->used = cc->tick;
        return s->c;
    }
    for (i = 0; i < CACHE_SLOTS; i++) {
        s = &cc->slots[i];
        if (s->c && client_has_config(s->c, cfg)) {
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
    client_destroy(victim->c);
    victim->c = c;
    victim->used = cc->tick;
    victim->given = given;
    cc->last = (int)(victim - cc->slots);
    return c;
}

/* What a module-level call reads from its table, and the cached client it found the quick way. */
struct module_args {
    struct client_config cfg;
    union lsm_request q;
    struct smsend_result r;
    struct smsend_client *c;
    config_mask given;
};

/* Reads the table at index 1 (fields of op and options) into a and finds its cached client the
 * quick way. 0 with a->c that client, or NULL with a->cfg finished for the full way (cache_get);
 * -1 with a->r filled. */
static int module_read(lua_State *L, struct cache *cc, enum lsm_op op, const struct lsm_keymap *km,
                       struct module_args *a)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    result_clear(&a->r);
    a->c = NULL;
    if (lsm_read_table_given(L, 1, op, &a->q, &a->cfg, &a->given, km, &a->r) != 0)
        return -1;
    if (!cc->closed)
        a->c = cache_find_given(cc, &a->cfg, a->given);
    return a->c || lsm_finish_config(&a->cfg, &a->r) == 0 ? 0 : -1;
}

/* smsend.request_pin(t) / smsend.verify_pin(t): request fields and smsend.new options in one table. */
static int module_call(lua_State *L, enum lsm_op op)
{
    struct cache *cc = lua_touserdata(L, lua_upvalueindex(1));
    struct module_args a;
    if (module_read(L, cc, op, LSM_KEYMAP(L), &a) != 0)
        goto out;
    /* Checked once, here, before a client is chosen; the client then trusts the flag. */
    if (op == OP_REQUEST ? fields_check_request(&a.q.rq, &a.r) : fields_check_verify(&a.q.vq, &a.r))
        goto out;
    if (op == OP_REQUEST)
        a.q.rq.checked = 1;
    else
        a.q.vq.checked = 1;
    if (cc->closed) {
        /* A finalizer running while the state closes: serve the call with a one-off client,
         * so nothing is left behind in a cache that will never be collected again. */
        char err[512], field[SMSEND_FIELD_MAX];
        struct smsend_client *once = client_create(&a.cfg, err, sizeof err, field, sizeof field);
        if (!once) {
            result_invalid(&a.r, field[0] ? field : "user_key", "%s", err);
            goto out;
        }
        lsm_call(once, op, &a.q, &a.r);
        lsm_push_call(L, LSM_STATS_OP(op), &a.r);
        client_destroy(once);
        return 1;
    }
    if (!a.c)
        a.c = cache_get(cc, &a.cfg, a.given, &a.r);
    if (a.c)
        lsm_call(a.c, op, &a.q, &a.r);
out:
    lsm_push_call(L, LSM_STATS_OP(op), &a.r);
    return 1;
}

static int l_request_pin(lua_State *L) { return module_call(L, OP_REQUEST); }
static int l_verify_pin(lua_State *L) { return module_call(L, OP_VERIFY); }

/* ---- smsend._internal: for the module's own specs, not part of the API ---- */

static const char *const kind_names[] = {
    [OPTION_STRING] = "string",   [OPTION_SECRET] = "secret",   [OPTION_CREDENTIAL] = "credential",
    [OPTION_SECONDS] = "seconds", [OPTION_INTEGER] = "integer", [OPTION_ENUM] = "enum",
};

/* _internal.options() -> { {name=, kind=, env=, default=, words={...}}, ... } in options.def order */
static int i_options(lua_State *L)
{
    int i, k;
    lua_createtable(L, CONFIG_NOPTIONS, 0);
    for (i = 0; i < CONFIG_NOPTIONS; i++) {
        const struct option_info *o = &config_options[i];
        lua_createtable(L, 0, 5);
        lua_pushstring(L, o->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, kind_names[o->kind]);
        lua_setfield(L, -2, "kind");
        if (o->env) {
            lua_pushstring(L, o->env);
            lua_setfield(L, -2, "env");
        }
        if (o->kind == OPTION_ENUM) {
            lua_newtable(L);
            for (k = 0; o->words[k]; k++) {
                lua_pushstring(L, o->words[k]);
                lua_rawseti(L, -2, k + 1);
            }
            lua_setfield(L, -2, "words");
            lua_pushstring(L, o->words[(int)o->num_default]);
        } else if (o->kind == OPTION_SECONDS || o->kind == OPTION_INTEGER) {
            lua_pushnumber(L, o->num_default);
        } else if (o->str_default) {
            lua_pushstring(L, o->str_default);
        } else {
            lua_pushnil(L);
        }
        lua_setfield(L, -2, "default");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* _internal.errors() -> { {name=, retryable=true|false|"per call"}, ... } in errors.def order */
static int i_errors(lua_State *L)
{
    int e;
    lua_createtable(L, SMSEND_E__COUNT - 1, 0);
    for (e = 1; e < SMSEND_E__COUNT; e++) {
        enum smsend_retry rt = smsend_error_retryable((smsend_error)e);
        lua_createtable(L, 0, 2);
        lua_pushstring(L, smsend_error_name((smsend_error)e));
        lua_setfield(L, -2, "name");
        if (rt == SMSEND_RETRY_PER_CALL)
            lua_pushliteral(L, "per call");
        else
            lua_pushboolean(L, rt == SMSEND_RETRY_YES);
        lua_setfield(L, -2, "retryable");
        lua_rawseti(L, -2, e);
    }
    return 1;
}

/* _internal.holds(client, name, value) -> boolean: whether the client's own copy of its
 * configuration has value for option name, compared in C (a secret never comes back to Lua).
 * A nil value stands for what an option holds when nothing set it (no string, no default). */
static int i_holds(lua_State *L)
{
    struct smsend_client *c = lsm_check_client(L); /* no upvalue: luaL_checkudata decides */
    struct client_config cfg;
    size_t n;
    const char *name = luaL_checklstring(L, 2, &n), *why;
    int option = config_find(name, n);
    char err[256];
    luaL_argcheck(L, option >= 0, 2, "not an option");
    config_init(&cfg);
    if (!lua_isnoneornil(L, 3) && (why = lsm_read_option(L, 3, option, &cfg, err, sizeof err)) != NULL)
        return luaL_argerror(L, 3, why);
    lua_pushboolean(L, client_option_is(c, option, &cfg));
    return 1;
}

/* _internal.cached_client(options) -> lightuserdata | nil, message: the client the module-level
 * calls would use for these options (creating it as they would). */
static int i_cached_client(lua_State *L)
{
    struct cache *cc = lua_touserdata(L, lua_upvalueindex(1));
    struct module_args a;
    if (module_read(L, cc, OP_NONE, NULL, &a) == 0 && !a.c && !cc->closed)
        a.c = cache_get(cc, &a.cfg, a.given, &a.r);
    if (!a.c) {
        lua_pushnil(L);
        lua_pushstring(L, a.r.message);
        return 2;
    }
    lua_pushlightuserdata(L, a.c);
    return 1;
}

static void push_internal(lua_State *L, int cache_index)
{
    static const luaL_Reg plain[] = {
        {"options", i_options},
        {"errors", i_errors},
        {"holds", i_holds},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_setfuncs(L, plain, 0);
    lua_pushvalue(L, cache_index);
    lua_pushcclosure(L, i_cached_client, 1);
    lua_setfield(L, -2, "cached_client");
}

SMSEND_EXPORT int luaopen_smsend(lua_State *L)
{
    static const luaL_Reg cached_fns[] = {
        {"request_pin", l_request_pin},
        {"verify_pin", l_verify_pin},
        {NULL, NULL},
    };
    struct cache *cc;
    if (client_global_init() != 0)
        return luaL_error(L, "smsend: libcurl could not be initialised");
    lsm_keys_init();
    lsm_client_register(L);
    lua_newtable(L);
    cc = lua_newuserdata(L, sizeof *cc);
    memset(cc, 0, sizeof *cc);
    if (luaL_newmetatable(L, CACHE_MT)) {
        lua_pushcfunction(L, cache_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    push_internal(L, lua_gettop(L));
    lua_setfield(L, -3, "_internal");
    lsm_push_keys(L);
    luaL_setfuncs(L, cached_fns, 1 + LSM_NKEYS); /* upvalue 1: the cache; then the status keys */
    lua_pushcfunction(L, lsm_client_new);
    lua_setfield(L, -2, "new");
    lua_pushliteral(L, SMSEND_VERSION);
    lua_setfield(L, -2, "_VERSION");
    luaL_setfuncs(L, lsm_sms_functions, 0);
    luaL_setfuncs(L, lsm_stats_functions, 0);
    lsm_guard_register(L);
    return 1;
}
