/* threads.c — N threads, each with its own Lua 5.4 state, hammering the smsend module at once.
 * Built twice by the Makefile: with -fsanitize=thread (`make tsan`) and normally (`make threads`,
 * run under valgrind memcheck for leaks). The module's sources are linked in directly and
 * registered with luaL_requiref, as an embedding program would.
 *
 *   threads BASE_URL [THREADS [ITERATIONS [MODE]]]
 *
 * BASE_URL is the sandbox gateway (http://127.0.0.1:PORT/API/v1.0/REST/), started by
 * spec/longrun/with_sandbox.lua. MODE says what every thread does, in its own state:
 *   calls (the default), the blocking calls:
 *   - ITERATIONS times: request_pin for its own recipient through one client, then verify_pin with
 *     the PIN the sandbox sent (read from /_sandbox/last_pin with a plain libcurl call), then a
 *     wrong PIN; a module-level smsend.request_pin every 10 iterations (per-state client cache);
 *   - every 25 iterations: smsend.new/close churn, a client left to the GC, bad input;
 *   ops, the pollable calls (request_pin_async / verify_pin_async), OPS_IN_FLIGHT at once:
 *   - ITERATIONS times: that many PIN requests to its own recipients in flight on one client,
 *     driven with poll() and wait(), then as many wrong PINs, then the right ones;
 *   - every 5 iterations: an op cancelled at once, and one dropped in flight for the GC;
 *   - every 25 iterations: a second client closed with ops in flight, an op born done;
 *   both: calls, then ops in a fresh state.
 * Each state is closed at the end (every __gc runs) and the thread reports its counts.
 * Exits 0 only when every thread finished with every call answered as expected. */
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

enum mode { MODE_CALLS, MODE_OPS, MODE_BOTH };

struct job {
    int id;
    int iterations;
    enum mode mode;
    const char *base_url;
    char control_url[512]; /* http://127.0.0.1:PORT/_sandbox/ */
    int ok;
    char report[1024];
};

/* last_pin(recipient) -> "123456" | nil: the sandbox's control endpoint, with libcurl directly. */
static int l_last_pin(lua_State *L)
{
    struct job *j = lua_touserdata(L, lua_upvalueindex(1));
    const char *rcpt = luaL_checkstring(L, 1);
    char url[700];
    struct control_answer s;
    const char *p;
    /* recipients here are "+39..." : '+' must be percent-encoded in a query */
    snprintf(url, sizeof url, "%slast_pin?recipient=%%2B%s", j->control_url, rcpt[0] == '+' ? rcpt + 1 : rcpt);
    if (control_get(url, 10, &s) != 200 || !s.data || !(p = strstr(s.data, "\"pin\":\""))) {
        free(s.data);
        lua_pushnil(L);
        return 1;
    }
    p += 7;
    lua_pushlstring(L, p, strcspn(p, "\""));
    free(s.data);
    return 1;
}

static const char *const CALLS_SCRIPT =
    "local smsend, base_url, id, iterations = ...\n"
    "local rcpt = string.format('+3934700%05d', id)\n"
    "local creds = { user_key = 'SBXUSER', access_token = 'SBXTOKEN', base_url = base_url, timeout = 20 }\n"
    "local function opts(extra)\n"
    "  local t = {}\n"
    "  for k, v in pairs(creds) do t[k] = v end\n"
    "  for k, v in pairs(extra or {}) do t[k] = v end\n"
    "  return t\n"
    "end\n"
    "local n = { request = 0, verify_ok = 0, wrong = 0, module = 0, churn = 0, invalid = 0 }\n"
    "local c = assert(smsend.new(opts()))\n"
    "for i = 1, iterations do\n"
    "  local st = c:request_pin{ recipient = rcpt, senderName = 'T' .. id, messageBody = 'code %PIN% #' .. i }\n"
    "  if not st.ok then error(('thread %d: request_pin %d: %s %s'):format(id, i, tostring(st.error), st.message)) end\n"
    "  n.request = n.request + 1\n"
    "  local pin = last_pin(rcpt)\n"
    "  if not pin then error(('thread %d: no PIN for %s'):format(id, rcpt)) end\n"
    "  local bad = pin == '000000' and '111111' or '000000'\n"
    "  st = c:verify_pin{ recipient = rcpt, pin = bad }\n"
    "  if st.error ~= 'wrong_pin' then error(('thread %d: wrong PIN gave %s %s'):format(id, tostring(st.error), st.message)) end\n"
    "  n.wrong = n.wrong + 1\n"
    "  st = c:verify_pin{ recipient = rcpt, pin = pin }\n"
    "  if not st.ok then error(('thread %d: verify_pin %d: %s %s'):format(id, i, tostring(st.error), st.message)) end\n"
    "  n.verify_ok = n.verify_ok + 1\n"
    "  if i % 10 == 0 then\n"
    "    st = smsend.request_pin(opts{ recipient = rcpt, user_agent = 'cfg' .. (i % 30) })\n"
    "    if not st.ok then error(('thread %d: module request_pin: %s'):format(id, st.message)) end\n"
    "    n.module = n.module + 1\n"
    "  end\n"
    "  if i % 25 == 0 then\n"
    "    for k = 1, 5 do\n"
    "      local x = assert(smsend.new(opts{ user_agent = 'churn' .. k }))\n"
    "      if k % 2 == 0 then x:close() end\n"
    "      n.churn = n.churn + 1\n"
    "    end\n"
    "    local x = assert(smsend.new(opts()))\n"
    "    st = x:request_pin{ recipient = 'nope', expiry = 0 / 0 }\n"
    "    if st.error ~= 'invalid_request' then error('bad input not refused') end\n"
    "    st = smsend.verify_pin(opts{ recipient = rcpt, pin = ('9'):rep(100) })\n"
    "    if st.error ~= 'invalid_request' then error('bad pin not refused') end\n"
    "    n.invalid = n.invalid + 2\n"
    "    collectgarbage()\n"
    "  end\n"
    "end\n"
    "c:close()\n"
    "return ('request=%d verify_ok=%d wrong=%d module=%d churn=%d invalid=%d')\n"
    "  :format(n.request, n.verify_ok, n.wrong, n.module, n.churn, n.invalid)\n";

#define OPS_IN_FLIGHT 4

static const char *const OPS_SCRIPT =
    "local smsend, base_url, id, iterations, k = ...\n"
    "local function rcpt(j) return string.format('+393470%03d%03d', id, j) end\n"
    "local creds = { user_key = 'SBXUSER', access_token = 'SBXTOKEN', base_url = base_url, timeout = 20 }\n"
    "local n = { request = 0, wrong = 0, verify_ok = 0, cancelled = 0, collected = 0, closed = 0, born_done = 0 }\n"
    "local function fail(what, st) error(('thread %d: %s: %s %s'):format(id, what, tostring(st and st.error), st and st.message or '')) end\n"
    "-- every op of list to its table: poll them all, sleep in the first one's wait (it drives the others too)\n"
    "local function settle(list)\n"
    "  local out, left = {}, #list\n"
    "  while left > 0 do\n"
    "    local first\n"
    "    for i, op in ipairs(list) do\n"
    "      if not out[i] then\n"
    "        out[i] = op:poll()\n"
    "        if out[i] then left = left - 1 elseif not first then first = op end\n"
    "      end\n"
    "    end\n"
    "    if first then first:wait(0.005) end\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "local c = assert(smsend.new(creds))\n"
    "for i = 1, iterations do\n"
    "  local list = {}\n"
    "  for j = 1, k do list[j] = c:request_pin_async{ recipient = rcpt(j), messageBody = 'code %PIN% #' .. i } end\n"
    "  for _, st in ipairs(settle(list)) do if not st.ok then fail('request', st) end; n.request = n.request + 1 end\n"
    "  local pins, wrong = {}, {}\n"
    "  for j = 1, k do\n"
    "    pins[j] = last_pin(rcpt(j))\n"
    "    if not pins[j] then error(('thread %d: no PIN for %s'):format(id, rcpt(j))) end\n"
    "    wrong[j] = c:verify_pin_async{ recipient = rcpt(j), pin = pins[j] == '000000' and '111111' or '000000' }\n"
    "  end\n"
    "  for _, st in ipairs(settle(wrong)) do if st.error ~= 'wrong_pin' then fail('wrong PIN', st) end; n.wrong = n.wrong + 1 end\n"
    "  list = {}\n"
    "  for j = 1, k do list[j] = c:verify_pin_async{ recipient = rcpt(j), pin = pins[j] } end\n"
    "  for _, st in ipairs(settle(list)) do if not st.ok then fail('verify', st) end; n.verify_ok = n.verify_ok + 1 end\n"
    "  if i % 5 == 0 then\n"
    "    local st = c:request_pin_async{ recipient = rcpt(900) }:cancel()\n"
    "    if st.error ~= 'cancelled' or not st.retryable then fail('cancel at once', st) end\n"
    "    n.cancelled = n.cancelled + 1\n"
    "    c:request_pin_async{ recipient = rcpt(901) }:poll()\n"
    "    n.collected = n.collected + 1\n"
    "    collectgarbage()\n"
    "  end\n"
    "  if i % 25 == 0 then\n"
    "    local x = assert(smsend.new(creds))\n"
    "    local a, b = x:request_pin_async{ recipient = rcpt(902) }, x:verify_pin_async{ recipient = rcpt(903), pin = '1' }\n"
    "    x:close()\n"
    "    if a:poll().error ~= 'cancelled' or b:poll().error ~= 'cancelled' then fail('close', a:poll()) end\n"
    "    n.closed = n.closed + 2\n"
    "    local st = c:request_pin_async{ recipient = 'nope' }:poll()\n"
    "    if st.error ~= 'invalid_request' then fail('born done', st) end\n"
    "    n.born_done = n.born_done + 1\n"
    "  end\n"
    "end\n"
    "c:close()\n"
    "return ('ops: request=%d wrong=%d verify_ok=%d cancelled=%d collected=%d closed=%d born_done=%d')\n"
    "  :format(n.request, n.wrong, n.verify_ok, n.cancelled, n.collected, n.closed, n.born_done)\n";

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

/* Runs one script in a fresh state; 0 with its report appended to j->report, -1 on failure. */
static int run_script(struct job *j, const char *script, const char *name)
{
    lua_State *L = luaL_newstate();
    size_t used = strlen(j->report);
    int rc = -1;
    char *out = j->report + used;
    size_t room = sizeof j->report - used;
    if (used && room > 2) { /* "; " between the reports of both modes */
        memcpy(out, "; ", 3);
        out += 2;
        room -= 2;
    }
    if (!L) {
        snprintf(out, room, "cannot create a Lua state");
        return -1;
    }
    luaL_openlibs(L);
    /* an aggressive collector in every state, as in the busted runs */
    lua_gc(L, LUA_GCGEN, 1, 20);
    lua_pushlightuserdata(L, j);
    lua_pushcclosure(L, l_last_pin, 1);
    lua_setglobal(L, "last_pin");
    lua_pushcfunction(L, traceback);
    if (luaL_loadbuffer(L, script, strlen(script), name) != LUA_OK) {
        snprintf(out, room, "load: %s", lua_tostring(L, -1));
        lua_close(L);
        return -1;
    }
    luaL_requiref(L, "smsend", luaopen_smsend, 1);
    lua_pushstring(L, j->base_url);
    lua_pushinteger(L, j->id);
    lua_pushinteger(L, j->iterations);
    lua_pushinteger(L, OPS_IN_FLIGHT);
    if (lua_pcall(L, 5, 1, 1) != LUA_OK) {
        snprintf(out, room, "FAILED: %s", lua_tostring(L, -1));
    } else {
        snprintf(out, room, "%s", lua_tostring(L, -1));
        rc = 0;
    }
    lua_close(L);
    return rc;
}

static void *run(void *arg)
{
    struct job *j = arg;
    int ok = 1;
    if (j->mode != MODE_OPS)
        ok = run_script(j, CALLS_SCRIPT, "=threads") == 0;
    if (ok && j->mode != MODE_CALLS)
        ok = run_script(j, OPS_SCRIPT, "=threads-ops") == 0;
    j->ok = ok;
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t tid[MAX_THREADS];
    struct job jobs[MAX_THREADS];
    int nthreads, iterations, i, failed = 0;
    enum mode mode = MODE_CALLS;
    const char *rest;
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL [THREADS [ITERATIONS [calls|ops|both]]]\n", argv[0]);
        return 2;
    }
    if (argc > 4) {
        if (strcmp(argv[4], "ops") == 0)
            mode = MODE_OPS;
        else if (strcmp(argv[4], "both") == 0)
            mode = MODE_BOTH;
        else if (strcmp(argv[4], "calls") != 0) {
            fprintf(stderr, "threads: MODE is calls, ops or both\n");
            return 2;
        }
    }
    nthreads = argc > 2 ? atoi(argv[2]) : 8;
    iterations = argc > 3 ? atoi(argv[3]) : 300;
    if (nthreads < 1 || nthreads > MAX_THREADS || iterations < 1) {
        fprintf(stderr, "threads: 1 to %d threads and at least one iteration\n", MAX_THREADS);
        return 2;
    }
    rest = strstr(argv[1], "/API/");
    if (!rest || (size_t)(rest - argv[1]) > 400) {
        fprintf(stderr, "threads: BASE_URL must look like http://127.0.0.1:PORT/API/v1.0/REST/\n");
        return 2;
    }
    /* The module initialises libcurl itself (pthread_once); the harness's own last_pin calls
     * need it too, before any thread starts. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    for (i = 0; i < nthreads; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].id = i + 1;
        jobs[i].iterations = iterations;
        jobs[i].mode = mode;
        jobs[i].base_url = argv[1];
        snprintf(jobs[i].control_url, sizeof jobs[i].control_url, "%.*s/_sandbox/", (int)(rest - argv[1]), argv[1]);
    }
    for (i = 0; i < nthreads; i++)
        if (pthread_create(&tid[i], NULL, run, &jobs[i]) != 0) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 1;
        }
    for (i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    for (i = 0; i < nthreads; i++) {
        printf("thread %d: %s\n", jobs[i].id, jobs[i].report);
        if (!jobs[i].ok)
            failed++;
    }
    curl_global_cleanup();
    /* not "N passed, N failed": CI reads that form as the closing line of a test runner */
    if (failed)
        printf("threads: FAILED in %d of %d threads\n", failed, nthreads);
    else
        printf("threads: all %d threads done, %d iterations each (%s)\n", nthreads, iterations,
               mode == MODE_OPS ? "ops" : mode == MODE_BOTH ? "calls and ops" : "calls");
    return failed ? 1 : 0;
}
