/* guard_threads.c — the process guard across OS threads: N threads, each with its own Lua 5.4
 * state and the smsend module linked in (luaL_requiref, as an embedding program would), released
 * together by a barrier, send REQUESTS request_pin calls in all to NUMBERS numbers with
 * min_interval = 60. Exactly NUMBERS may reach the gateway, whatever the interleaving: the count
 * is taken from the sandbox's own record (/_sandbox/requests) before and after. Run by
 * spec/deploy_threads_spec.lua, and built with -fsanitize=thread by `make tsan`.
 *
 *   guard_threads BASE_URL [THREADS [REQUESTS [GUARD [NUMBERS]]]]   (8, 1000, "process", 10)
 *
 * BASE_URL is the sandbox gateway (http://127.0.0.1:PORT/API/v1.0/REST/); GUARD is the guard
 * option ("process" or "redis://..."); the numbers are +3934799NNNNN from 00000. Every thread
 * walks the numbers in the same order, so the threads meet on each number at once; every 5th call
 * goes through the module-level smsend.request_pin (its per-state client cache) instead of the
 * thread's client. A refused call must be "cooldown" with retry_after in 1..60 (the seconds until
 * the claim frees can never exceed min_interval); anything else fails the run.
 * Prints "guard_threads: T threads, R requests, N numbers: S sent, C cooldown, G at the gateway"
 * and exits 0 only when S = G = N and S + C = R. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "control_get.h"
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_smsend(lua_State *L);

#define MAX_THREADS 64
#define MAX_NUMBERS 100000

struct job {
    int id;
    int requests;          /* this thread's share */
    int numbers;
    const char *base_url;
    const char *guard;
    pthread_barrier_t *start;
    int rounds;            /* barrier rounds passed: 1 + numbers in a full run */
    long sent, cooldown;
    int ok;
    char report[512];
};

static long count_of(const char *hay, const char *needle)
{
    long n = 0;
    size_t step = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += step)
        n++;
    return n;
}

/* PIN requests the sandbox has recorded so far (cjson writes "/" as "\/"), or -1. */
static long gateway_requests(const char *control_url)
{
    char url[600];
    struct control_answer s;
    long status, n = -1;
    snprintf(url, sizeof url, "%srequests", control_url);
    status = control_get(url, 20, &s);
    if (status == 200 && !s.overflow && s.data)
        n = count_of(s.data, "\"path\":\"2fa\\/request\"") + count_of(s.data, "\"path\":\"2fa/request\"");
    else if (status == 200 && !s.data)
        n = 0;
    free(s.data);
    return n;
}

/* together(): every thread waits here until all have come: once after loading the module, then
 * before each first request for a number, so that every number's first claim is contended by
 * every thread at the same instant. */
static int l_together(lua_State *L)
{
    struct job *j = lua_touserdata(L, lua_upvalueindex(1));
    j->rounds++;
    pthread_barrier_wait(j->start);
    return 0;
}

/* A thread that fails still takes its part in the remaining rounds, or the others would wait for
 * ever. */
static void finish_rounds(struct job *j)
{
    while (j->rounds < 1 + j->numbers) {
        j->rounds++;
        pthread_barrier_wait(j->start);
    }
}

static const char *const SCRIPT =
    "local smsend, base_url, guard, id, requests, numbers = ...\n"
    "local function opts(extra)\n"
    "  local t = { user_key = 'SBXUSER', access_token = 'SBXTOKEN', base_url = base_url, timeout = 20,\n"
    "              min_interval = 60, guard = guard }\n"
    "  for k, v in pairs(extra or {}) do t[k] = v end\n"
    "  return t\n"
    "end\n"
    "local c = assert(smsend.new(opts()))\n"
    "local sent, cooldown = 0, 0\n"
    "together()\n"
    "for i = 0, requests - 1 do\n"
    "  local rcpt = ('+3934799%05d'):format(i % numbers)\n"
    "  if i < numbers then together() end\n"
    "  local st\n"
    "  if i % 5 == 4 then st = smsend.request_pin(opts{ recipient = rcpt })\n"
    "  else st = c:request_pin{ recipient = rcpt } end\n"
    "  if st.ok then\n"
    "    sent = sent + 1\n"
    "  elseif st.error == 'cooldown' then\n"
    "    if not (st.retry_after and st.retry_after >= 1 and st.retry_after <= 60) then\n"
    "      error(('thread %d: cooldown with retry_after %s'):format(id, tostring(st.retry_after)))\n"
    "    end\n"
    "    cooldown = cooldown + 1\n"
    "  else\n"
    "    error(('thread %d: request %d for %s: %s %s'):format(id, i, rcpt, tostring(st.error), tostring(st.message)))\n"
    "  end\n"
    "end\n"
    "c:close()\n"
    "return sent, cooldown\n";

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

static void *run(void *arg)
{
    struct job *j = arg;
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(j->report, sizeof j->report, "cannot create a Lua state");
        finish_rounds(j);
        return NULL;
    }
    luaL_openlibs(L);
    lua_pushlightuserdata(L, j);
    lua_pushcclosure(L, l_together, 1);
    lua_setglobal(L, "together");
    lua_pushcfunction(L, traceback);
    if (luaL_loadbuffer(L, SCRIPT, strlen(SCRIPT), "=guard_threads") != LUA_OK) {
        snprintf(j->report, sizeof j->report, "load: %s", lua_tostring(L, -1));
    } else {
        luaL_requiref(L, "smsend", luaopen_smsend, 1);
        lua_pushstring(L, j->base_url);
        lua_pushstring(L, j->guard);
        lua_pushinteger(L, j->id);
        lua_pushinteger(L, j->requests);
        lua_pushinteger(L, j->numbers);
        if (lua_pcall(L, 6, 2, 1) != LUA_OK) {
            snprintf(j->report, sizeof j->report, "FAILED: %s", lua_tostring(L, -1));
        } else {
            j->sent = (long)lua_tointeger(L, -2);
            j->cooldown = (long)lua_tointeger(L, -1);
            snprintf(j->report, sizeof j->report, "%ld sent, %ld cooldown", j->sent, j->cooldown);
            j->ok = 1;
        }
    }
    finish_rounds(j);
    lua_close(L);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t tid[MAX_THREADS];
    struct job jobs[MAX_THREADS];
    pthread_barrier_t start;
    char control_url[512];
    int nthreads, requests, numbers, i, failed = 0;
    long sent = 0, cooldown = 0, before, after, at_gateway;
    const char *rest, *guard;
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL [THREADS [REQUESTS [GUARD]]]\n", argv[0]);
        return 2;
    }
    nthreads = argc > 2 ? atoi(argv[2]) : 8;
    requests = argc > 3 ? atoi(argv[3]) : 1000;
    guard = argc > 4 ? argv[4] : "process";
    numbers = argc > 5 ? atoi(argv[5]) : 10;
    if (nthreads < 1 || nthreads > MAX_THREADS || requests < nthreads || numbers < 1 || numbers > MAX_NUMBERS ||
        requests / nthreads < numbers) {
        fprintf(stderr, "guard_threads: 1 to %d threads, 1 to %d numbers, every thread asking for each\n",
                MAX_THREADS, MAX_NUMBERS);
        return 2;
    }
    rest = strstr(argv[1], "/API/");
    if (!rest || (size_t)(rest - argv[1]) > 400) {
        fprintf(stderr, "guard_threads: BASE_URL must look like http://127.0.0.1:PORT/API/v1.0/REST/\n");
        return 2;
    }
    snprintf(control_url, sizeof control_url, "%.*s/_sandbox/", (int)(rest - argv[1]), argv[1]);
    /* the module initialises libcurl itself (pthread_once); the counting calls here need it first */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    before = gateway_requests(control_url);
    if (before < 0) {
        fprintf(stderr, "guard_threads: cannot read %srequests\n", control_url);
        return 1;
    }
    if (pthread_barrier_init(&start, NULL, (unsigned)nthreads) != 0)
        return 1;
    for (i = 0; i < nthreads; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].id = i + 1;
        /* REQUESTS in all, the remainder spread over the first threads */
        jobs[i].requests = requests / nthreads + (i < requests % nthreads ? 1 : 0);
        jobs[i].base_url = argv[1];
        jobs[i].guard = guard;
        jobs[i].numbers = numbers;
        jobs[i].start = &start;
    }
    for (i = 0; i < nthreads; i++)
        if (pthread_create(&tid[i], NULL, run, &jobs[i]) != 0) {
            fprintf(stderr, "guard_threads: pthread_create failed\n");
            return 1;
        }
    for (i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&start);
    for (i = 0; i < nthreads; i++) {
        printf("thread %d: %s\n", jobs[i].id, jobs[i].report);
        if (!jobs[i].ok)
            failed++;
        sent += jobs[i].sent;
        cooldown += jobs[i].cooldown;
    }
    after = gateway_requests(control_url);
    at_gateway = after < 0 ? -1 : after - before;
    curl_global_cleanup();
    printf("guard_threads: %d threads, %d requests, %d numbers: %ld sent, %ld cooldown, %ld at the gateway\n",
           nthreads, requests, numbers, sent, cooldown, at_gateway);
    if (failed)
        printf("guard_threads: FAILED in %d of %d threads\n", failed, nthreads);
    else if (sent != numbers || at_gateway != numbers || sent + cooldown != requests)
        printf("guard_threads: FAILED: exactly %d PINs must go out\n", numbers);
    else
        return 0;
    return 1;
}
