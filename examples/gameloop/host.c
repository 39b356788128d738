/* host.c — a game server's 20 Hz main loop embedding Lua 5.4, with the smsend module linked in from
 * build/libsmsend.a. An admin command is gated by an SMS PIN, and the PIN calls never stall the
 * loop: the admin script starts them with request_pin_async / verify_pin_async and polls them once
 * per tick, the way the host polls everything else.
 *
 *   make -C examples/gameloop                (builds ../../build/libsmsend.a first when needed)
 *   export SMSEND_USER_KEY=... SMSEND_ACCESS_TOKEN=...
 *   build/gameloop/host examples/gameloop/admin.lua wipe_world "+39 347 123 4567"
 *
 * Every tick (50 ms, on an absolute CLOCK_MONOTONIC schedule) the host reads what the console typed
 * without waiting (poll(2) with a zero timeout), calls the script's tick(line), and steps its world;
 * the command itself reaches the script (start(action, phone)) during the first tick.
 * The script's answer "allow" performs the command, "refuse" does not. When the command is settled
 * the host prints its figures, which spec/gameloop_spec.lua reads:
 *   host: ticks=N seconds=S worst_gap_ms=G longest_tick_ms=T
 * worst_gap_ms is the longest time between the starts of two ticks (50 when nothing stalls),
 * longest_tick_ms the longest time spent in the script in one tick.
 * Exit status: 0 performed, 1 refused, 2 usage or script error.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_smsend(lua_State *L); /* the only symbol libsmsend.a exports */

#define TICK_NS 50000000L   /* 20 Hz */
#define MAX_TICKS 1200      /* a command not settled within a minute is refused */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* memset that the compiler may not drop as a dead store. */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

/* The console, read without blocking: bytes gather in buf until a line is complete. */
struct console {
    char buf[256];
    size_t len;
    int eof;
};

/* Reads what is ready; 1 with a line (without its newline) in out when one is complete. */
static int console_line(struct console *c, char *out, size_t outlen) {
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    char *nl;
    size_t n;
    if (!c->eof && c->len < sizeof c->buf && poll(&p, 1, 0) > 0) {
        ssize_t got = read(STDIN_FILENO, c->buf + c->len, sizeof c->buf - c->len);
        if (got > 0)
            c->len += (size_t)got;
        else if (got == 0 || errno != EINTR)
            c->eof = 1;
    }
    nl = memchr(c->buf, '\n', c->len);
    if (!nl && c->len == sizeof c->buf) /* an overlong line: drop it */
        nl = c->buf + c->len - 1;
    if (!nl)
        return 0;
    n = (size_t)(nl - c->buf);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, c->buf, n);
    out[n] = 0;
    if (n && out[n - 1] == '\r')
        out[n - 1] = 0;
    n = (size_t)(nl - c->buf) + 1;
    memmove(c->buf, c->buf + n, c->len - n);
    wipe(c->buf + c->len - n, n); /* a PIN passed through here */
    c->len -= n;
    return 1;
}

/* Calls admin[name](...) with nargs arguments already pushed; leaves its first two results. */
static int call_admin(lua_State *L, int admin, const char *name, int nargs) {
    lua_getfield(L, admin, name);
    lua_insert(L, -1 - nargs);
    if (lua_pcall(L, nargs, 2, 0) != LUA_OK) {
        fprintf(stderr, "host: admin.%s failed: %s\n", name, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    lua_State *L;
    struct console con = {{0}, 0, 0};
    struct timespec next;
    double start, last, worst = 0, longest = 0;
    long world = 0;
    int admin, ticks = 0, verdict = -1;

    if (argc != 4) {
        fprintf(stderr, "usage: %s ADMIN.lua ACTION PHONE\n", argc > 0 ? argv[0] : "host");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    L = luaL_newstate();
    if (!L) {
        fputs("host: cannot create a Lua state\n", stderr);
        return 2;
    }
    luaL_openlibs(L);
    luaL_requiref(L, "smsend", luaopen_smsend, 0);
    lua_pop(L, 1);
    if (luaL_dofile(L, argv[1]) != LUA_OK || !lua_istable(L, -1)) {
        fprintf(stderr, "host: %s: %s\n", argv[1], lua_isstring(L, -1) ? lua_tostring(L, -1) : "returns no table");
        lua_close(L);
        return 2;
    }
    admin = lua_gettop(L);

    start = last = now_s();
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (verdict < 0 && ticks < MAX_TICKS) {
        char line[128];
        double t0 = now_s(), took;
        if (t0 - last > worst)
            worst = t0 - last;
        last = t0;
        ticks++;

        /* The command arrives during the first tick (here from the command line; in a game, from
         * an admin's client); then each tick is the admin script's turn: nil while it waits, then
         * "allow" or "refuse" and a reason. */
        if (ticks == 1) {
            lua_pushstring(L, argv[2]);
            lua_pushstring(L, argv[3]);
            if (call_admin(L, admin, "start", 2) != 0) {
                lua_close(L);
                return 2;
            }
            lua_settop(L, admin);
        }
        if (console_line(&con, line, sizeof line))
            lua_pushstring(L, line);
        else if (con.eof && con.len == 0)
            lua_pushboolean(L, 0); /* the console is closed */
        else
            lua_pushnil(L);
        wipe(line, sizeof line);
        if (call_admin(L, admin, "tick", 1) != 0) {
            verdict = 0;
        } else if (lua_isstring(L, -2)) {
            const char *v = lua_tostring(L, -2);
            verdict = strcmp(v, "allow") == 0;
            if (!verdict)
                printf("host: %s refused: %s\n", argv[2], lua_isstring(L, -1) ? lua_tostring(L, -1) : "no reason");
        }
        if (lua_gettop(L) > admin)
            lua_settop(L, admin);
        took = now_s() - t0;
        if (took > longest)
            longest = took;

        world += ticks % 7; /* the rest of the game's tick */

        /* sleep to the next tick on the schedule; if a tick overran, start again from now */
        next.tv_nsec += TICK_NS;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        if (now_s() > (double)next.tv_sec + (double)next.tv_nsec / 1e9)
            clock_gettime(CLOCK_MONOTONIC, &next);
        else
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {}
    }
    if (verdict < 0) {
        printf("host: %s refused: not settled in %d ticks\n", argv[2], MAX_TICKS);
        verdict = 0;
    }
    if (verdict)
        printf("host: performing %s\n", argv[2]);
    printf("host: ticks=%d seconds=%.2f worst_gap_ms=%.1f longest_tick_ms=%.1f world=%ld\n", ticks, now_s() - start,
           worst * 1000, longest * 1000, world);
    lua_close(L); /* the client's finalizer wipes its credentials */
    wipe(&con, sizeof con);
    return verdict ? 0 : 1;
}
