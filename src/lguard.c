/* lguard.c — smsend.guard_key(recipient, options): the guard's store key for a number, as the C
 * guard computes it, for stores kept on the Lua side (smsend.resty's lua_shared_dict). */
#include <stdlib.h>
#include <string.h>
#include "compat.h"
#include "guard.h"
#include "phone.h"

void lsm_guard_register(lua_State *L);

/* options[name] as a string, or NULL when absent; any other type is misuse. */
static const char *opt_string(lua_State *L, int idx, const char *name, size_t *n)
{
    const char *s = NULL;
    *n = 0;
    if (lua_isnoneornil(L, idx))
        return NULL;
    lua_getfield(L, idx, name);
    if (lua_type(L, -1) == LUA_TSTRING)
        s = lua_tolstring(L, -1, n);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "bad argument #2 to 'guard_key' (%s must be a string)", name);
    lua_pop(L, 1); /* the string stays alive: the options table holds it */
    return s;
}

static const char *env_string(const char *name, size_t *n)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return NULL;
    *n = strlen(v);
    return v;
}

/* smsend.guard_key(recipient, options) -> "smsend:v1:<hex>" | nil, message. The hash key is
 * options.guard_key, else $SMSEND_GUARD_KEY, else derived from the user_key (else the username),
 * taken from options or, when options has no credentials at all, from the SMSEND_* environment
 * the way smsend.new does. */
static int l_guard_key(lua_State *L)
{
    size_t rn, uk_n, un_n, n;
    const char *r, *uk, *un;
    struct guard_config cfg;
    struct smsend_guard *g;
    char e164[PHONE_E164_MAX + 1], err[256], key[96];
    int len;
    luaL_checktype(L, 1, LUA_TSTRING);
    r = lua_tolstring(L, 1, &rn);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    memset(&cfg, 0, sizeof cfg);
    cfg.key = opt_string(L, 2, "guard_key", &cfg.key_n);
    if (!cfg.key)
        cfg.key = env_string("SMSEND_GUARD_KEY", &cfg.key_n);
    uk = opt_string(L, 2, "user_key", &uk_n);
    un = opt_string(L, 2, "username", &un_n);
    if (!uk && !un && !opt_string(L, 2, "access_token", &n) && !opt_string(L, 2, "session_key", &n) &&
        !opt_string(L, 2, "password", &n)) {
        uk = env_string("SMSEND_USER_KEY", &uk_n);
        un = env_string("SMSEND_USERNAME", &un_n);
    }
    cfg.derive = uk ? uk : un;
    cfg.derive_n = uk ? uk_n : un_n;
    len = phone_normalize(r, rn, e164, err, sizeof err);
    if (len < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    /* the key does not depend on the limits or the store: any limit makes a guard to ask */
    cfg.min_interval = 1;
    if (guard_open(&cfg, &g, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    len = guard_key_for(g, e164, (size_t)len, key);
    guard_close(g);
    if (len < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "recipient cannot be keyed");
        return 2;
    }
    lua_pushlstring(L, key, (size_t)len);
    return 1;
}

/* Adds guard_key to the module table on top of the stack. */
void lsm_guard_register(lua_State *L)
{
    lua_pushcfunction(L, l_guard_key);
    lua_setfield(L, -2, "guard_key");
}
