/* pollwait.c — the least an event loop can spend waiting for the ops of `make bench`: poll(2) on
 * one descriptor, from Lua. Not part of the module; built for Lua 5.4 and LuaJIT by bench.mk.
 *
 *   local readable = require("pollwait").readable
 *   readable(fd, seconds|nil) -> true when fd is readable, false when `seconds` passed first
 *   (nil: no limit). The op:poll()-driven rows wait with it on op:pollfd() for op:timeout(), so
 *   that what they measure is the module's pollable path, not a Lua event loop's own cost. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <lua.h>
#include <lauxlib.h>

static int l_readable(lua_State *L)
{
    struct pollfd p;
    int ms = -1, n;
    p.fd = (int)luaL_checkinteger(L, 1);
    p.events = POLLIN;
    p.revents = 0;
    if (!lua_isnoneornil(L, 2)) {
        lua_Number s = luaL_checknumber(L, 2);
        ms = s <= 0 ? 0 : s > 3600 ? 3600000 : (int)(s * 1000.0 + 0.999);
    }
    do
        n = poll(&p, 1, ms);
    while (n < 0 && errno == EINTR);
    lua_pushboolean(L, n > 0);
    return 1;
}

__attribute__((visibility("default"))) int luaopen_pollwait(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_readable);
    lua_setfield(L, -2, "readable");
    return 1;
}
