/* lua_host.c — a minimal stand-in for the lua5.4 command, built with -fsanitize=address,undefined
 * by `make asan`. Linking the sanitizer runtime into the interpreter (instead of LD_PRELOAD-ing it
 * into lua5.4) keeps it out of every child the specs start: nginx, sh, sed, openssl and luarocks
 * would otherwise run under LeakSanitizer too and fail on their own harmless exit-time leaks.
 * Lua children started with util.run_lua use arg[-1], i.e. this host, so they are checked too.
 *
 *   lua_host [-e chunk]... script [args...]
 *
 * Like lua.c it runs LUA_INIT_5_4 (or LUA_INIT) first ("@file" or a chunk), fills `arg`
 * (arg[-1] is this program, arg[0] the script), passes the arguments as `...`, prints errors
 * with a traceback, and closes the state on a normal end so every __gc runs before the
 * leak check. os.exit(code, true) (busted's way out) closes the state as well.
 *
 * dlclose() is defined here as a no-op: lua_close unloads C modules, and LeakSanitizer reports
 * leaks at exit, by which time an unloaded smsend.so would show as "<unknown module>" frames.
 * liblua5.4 calls dlclose through its PLT, so this definition (exported because a linked
 * library refers to it) takes the place of libc's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int dlclose(void *handle);
int dlclose(void *handle)
{
    (void)handle;
    return 0;
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int report(lua_State *L, int status, const char *progname)
{
    if (status != LUA_OK) {
        fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status;
}

static int docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg, status;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    status = lua_pcall(L, narg, nres, base);
    lua_remove(L, base);
    return status;
}

static int dochunk(lua_State *L, int status)
{
    if (status == LUA_OK)
        status = docall(L, 0, 0);
    return status;
}

static int handle_init(lua_State *L, const char *progname)
{
    const char *name = "=LUA_INIT_5_4", *init = getenv(name + 1);
    if (!init) {
        name = "=LUA_INIT";
        init = getenv(name + 1);
    }
    if (!init)
        return LUA_OK;
    if (init[0] == '@')
        return report(L, dochunk(L, luaL_loadfile(L, init + 1)), progname);
    return report(L, dochunk(L, luaL_loadbuffer(L, init, strlen(init), name)), progname);
}

int main(int argc, char **argv)
{
    const char *progname = argc > 0 ? argv[0] : "lua_host";
    int script = 1, i, status = LUA_OK, nargs;
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create a Lua state\n", progname);
        return 1;
    }
    luaL_openlibs(L);
    while (script < argc && strcmp(argv[script], "-e") == 0 && script + 1 < argc)
        script += 2;
    /* arg: arg[-k] are the interpreter and its options, arg[0] the script, arg[1..] its args */
    lua_createtable(L, argc - script > 0 ? argc - script : 0, script + 1);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
    status = handle_init(L, progname);
    for (i = 1; status == LUA_OK && i < script; i += 2) {
        const char *chunk = argv[i + 1];
        status = report(L, dochunk(L, luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)")), progname);
    }
    if (status == LUA_OK && script < argc) {
        status = luaL_loadfile(L, strcmp(argv[script], "-") == 0 ? NULL : argv[script]);
        if (status == LUA_OK) {
            nargs = argc - script - 1;
            luaL_checkstack(L, nargs + 3, "too many arguments");
            for (i = script + 1; i < argc; i++)
                lua_pushstring(L, argv[i]);
            status = docall(L, nargs, 0);
        }
        report(L, status, progname);
    }
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
