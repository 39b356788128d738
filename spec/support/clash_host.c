/* clash_host.c — a Lua host with its own functions named like the module's internals (buf_init,
 * http_open, json_write), for spec/exports_spec.lua. Built with CLASH_STATIC it links the module
 * in from a static library (which must not define those names again); built without it and with
 * -rdynamic it loads smsend.so through require (whose calls must not land in these). Either way
 * it runs the script given as argv[1], which calls the module, and then calls its own functions.
 * Exit status 0 only when both the module and the host's functions did their own work. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "smsend.h"

/* Signatures unlike the module's on purpose: a call from the module into these breaks it. */
int buf_init(void);
int http_open(const char *what);
int json_write(int x);
int buf_init(void) { return 11; }
int http_open(const char *what) { return what ? 22 : -1; }
int json_write(int x) { return 33 + x; }

int main(int argc, char **argv) {
    lua_State *L;
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRIPT.lua\n", argc > 0 ? argv[0] : "clash_host");
        return 2;
    }
    L = luaL_newstate();
    if (!L) return 2;
    luaL_openlibs(L);
#ifdef CLASH_STATIC /* package.preload works on every Lua; examples/embed shows luaL_requiref too */
    lua_pushcfunction(L, luaopen_smsend);
    lua_setglobal(L, "open_smsend");
    if (luaL_dostring(L, "package.preload.smsend, open_smsend = open_smsend, nil") != 0) return 2;
#endif
    if (luaL_dofile(L, argv[1]) != 0) {
        fprintf(stderr, "clash_host: %s\n", lua_tostring(L, -1));
        rc = 1;
    }
    lua_close(L);
    printf("host: %d %d %d\n", buf_init(), http_open("x"), json_write(0));
    fflush(stdout);
    return rc;
}
