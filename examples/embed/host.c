/* host.c — a program that embeds Lua the way game and server programs do, with the smsend module
 * linked in from a static library instead of loaded from a .so at run time. The same file builds
 * against Lua 5.4 (build/libsmsend.a) and LuaJIT (build/luajit/libsmsend.a).
 *
 *   make -C examples/embed          (builds the static libraries first when needed)
 *   export SMSEND_USER_KEY=... SMSEND_ACCESS_TOKEN=...
 *   build/embed/host examples/embed/config.lua wipe_world "+39 347 123 4567"
 *   build/embed/host-luajit examples/embed/config.lua wipe_world "+39 347 123 4567"
 *
 * The host creates a Lua state, opens the standard libraries, registers smsend (luaL_requiref on
 * Lua 5.2+, package.preload on Lua 5.1/LuaJIT, which have no luaL_requiref), so that
 * `require "smsend"` finds the linked-in module without searching package.cpath, gives the
 * scripts an ask(prompt) function that reads the console, and runs the configuration script. For
 * an admin command it calls the script's guard(action, phone) and performs the command only when
 * guard returns true. Exit status: 0 performed, 1 refused, 2 usage or script error.
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "smsend.h" /* luaopen_smsend: the only symbol the static library exports */

/* memset that the compiler may not drop as a dead store. */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

/* ask(prompt) -> the line typed (without its newline), or nil at end of input. */
static int l_ask(lua_State *L) {
    const char *prompt = luaL_checkstring(L, 1);
    char line[128];
    size_t len;

    fputs(prompt, stdout);
    fflush(stdout); /* the prompt has no newline */
    if (!fgets(line, sizeof line, stdin)) {
        lua_pushnil(L);
        return 1;
    }
    len = strcspn(line, "\r\n");
    if (line[len] == '\0' && len == sizeof line - 1) { /* too long: drop the rest of the line */
        int c;
        while ((c = getchar()) != EOF && c != '\n') {}
    }
    lua_pushlstring(L, line, len);
    wipe(line, sizeof line); /* a PIN passed through here; the Lua string is the only copy left */
    return 1;
}

/* The host's own admin commands: the script decides whether, only the host does. */
static const struct {
    const char *name, *done;
} actions[] = {
    {"wipe_world", "world wiped, new world generated"},
    {"ban_player", "player banned"},
    {"list_players", "0 players online"},
};

static int find_action(const char *name) {
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(actions[i].name, name) == 0) return (int)i;
    return -1;
}

int main(int argc, char **argv) {
    lua_State *L;
    int action, allowed, status;

    if (argc != 4) {
        fprintf(stderr, "usage: %s CONFIG.lua ACTION PHONE\n", argc > 0 ? argv[0] : "host");
        return 2;
    }
    action = find_action(argv[2]);
    if (action < 0) {
        fprintf(stderr, "host: no such admin action: %s\n", argv[2]);
        return 2;
    }

    L = luaL_newstate();
    if (!L) {
        fputs("host: cannot create a Lua state\n", stderr);
        return 2;
    }
    luaL_openlibs(L);
#if LUA_VERSION_NUM >= 502
    luaL_requiref(L, "smsend", luaopen_smsend, 0); /* package.loaded.smsend; 0 = no global */
    lua_pop(L, 1);
#else
    /* The first require "smsend" runs this loader, as it would one found on package.cpath, and
     * sets package.loaded.smsend; no global is made. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_smsend);
    lua_setfield(L, -2, "smsend");
    lua_pop(L, 2);
#endif
    lua_register(L, "ask", l_ask);

    /* Run the configuration once, as at server start: it defines guard(action, phone). */
    if (luaL_dofile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "host: configuration failed: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 2;
    }

    /* An admin typed a command: ask the configuration. Errors count as a refusal. */
    lua_getglobal(L, "guard"); /* returns the type only from Lua 5.3 on */
    if (lua_type(L, -1) != LUA_TFUNCTION) {
        fputs("host: the configuration defines no guard(action, phone)\n", stderr);
        lua_close(L);
        return 2;
    }
    lua_pushstring(L, argv[2]);
    lua_pushstring(L, argv[3]);
    status = lua_pcall(L, 2, 1, 0);
    if (status != LUA_OK) {
        fprintf(stderr, "host: guard failed: %s\n", lua_tostring(L, -1));
        allowed = 0;
    } else {
        allowed = lua_isboolean(L, -1) && lua_toboolean(L, -1); /* only true itself, not "yes" */
    }
    lua_pop(L, 1);

    if (allowed) {
        printf("host: performing %s\n", actions[action].name);
        printf("host: %s\n", actions[action].done);
    } else {
        printf("host: %s refused\n", argv[2]);
    }
    fflush(stdout);
    lua_close(L); /* runs the client's finalizer, which wipes its credentials */
    return allowed ? 0 : 1;
}
