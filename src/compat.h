/* compat.h — the few differences between Lua 5.4 and LuaJIT (5.1 ABI) that the binding meets.
 * Written against the 5.3+ API; shims only when LUA_VERSION_NUM < 503. */
#ifndef SMSEND_COMPAT_H
#define SMSEND_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

#if LUA_VERSION_NUM < 503
/* LuaJIT numbers are doubles: an integral double is an integer for our purposes. */
#define SMSEND_NO_INTEGER_SUBTYPE 1
#endif

#endif
