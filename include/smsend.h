/* smsend.h — the public C interface of the smsend module, for programs that embed Lua and link
 * the module in (libsmsend.a) instead of loading smsend.so: luaopen_smsend and its export macro.
 *
 * Lua 5.2 and later:   luaL_requiref(L, "smsend", luaopen_smsend, 0); lua_pop(L, 1);
 * Lua 5.1 and LuaJIT:  put luaopen_smsend in package.preload.smsend (see docs/embedding.md).
 * Link: libsmsend.a $(pkg-config --libs libcurl hiredis) -pthread -lm, plus your Lua.
 *
 * Every other symbol of the module is hidden: luaopen_smsend is the only one a build exports. */
#ifndef SMSEND_H
#define SMSEND_H

/* The module is compiled with -fvisibility=hidden; this marks the one symbol that is not. */
#ifndef SMSEND_EXPORT
#if defined(__GNUC__) || defined(__clang__)
#define SMSEND_EXPORT __attribute__((visibility("default")))
#else
#define SMSEND_EXPORT
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Declared without lua.h, so this header does not depend on which Lua's headers are on the
 * include path; struct lua_State is the type behind lua.h's lua_State. */
struct lua_State;

/* Pushes the module table (what require "smsend" returns) and returns 1. */
SMSEND_EXPORT int luaopen_smsend(struct lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
