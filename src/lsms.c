/* lsms.c — smsend.normalize_recipient and smsend.sms_segments: the thin Lua side of phone.c and sms.c.
 * A non-string argument is misuse and raises; text that cannot be used returns nil, message. */
#include "lsmsend.h"
#include "phone.h"
#include "sms.h"

/* Strictly a string: Lua would turn the number 393471234567 into a string, but a number has
 * already lost the '+' or leading zeros the caller meant, so accepting it would hide the bug. */
static const char *check_string(lua_State *L, int idx, size_t *n)
{
    luaL_checktype(L, idx, LUA_TSTRING);
    return lua_tolstring(L, idx, n);
}

/* smsend.normalize_recipient(s) -> "+NNN..." | nil, message */
static int l_normalize_recipient(lua_State *L)
{
    size_t n;
    const char *s = check_string(L, 1, &n);
    char out[PHONE_E164_MAX + 1], err[256];
    int len = phone_normalize(s, n, out, err, sizeof err);
    if (len < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushlstring(L, out, (size_t)len);
    return 1;
}

/* smsend.sms_segments(text) -> { encoding, units, segments } | nil, message */
static int l_sms_segments(lua_State *L)
{
    size_t n;
    const char *s = check_string(L, 1, &n);
    struct sms_count c;
    char err[128];
    if (sms_count(s, n, &c, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, sms_encoding_name(c.encoding));
    lua_setfield(L, -2, "encoding");
    lua_pushinteger(L, (lua_Integer)c.units);
    lua_setfield(L, -2, "units");
    lua_pushinteger(L, (lua_Integer)c.segments);
    lua_setfield(L, -2, "segments");
    return 1;
}

const luaL_Reg lsm_sms_functions[] = {
    {"normalize_recipient", l_normalize_recipient},
    {"sms_segments", l_sms_segments},
    {NULL, NULL},
};
