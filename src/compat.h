/* compat.h — the few differences between Lua 5.4 and LuaJIT (5.1 ABI) that the binding meets.
 * Written against the 5.3+ API; a shim goes here, under LUA_VERSION_NUM < 503, only once some
 * binding file needs it (none does today: __close is the one difference, in lclient.c). */
#ifndef SMSEND_COMPAT_H
#define SMSEND_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#endif
