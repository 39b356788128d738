/* threads.c — N threads, each with its own Lua 5.4 state, hammering the smsend module at once.
 * Built twice by the Makefile: with -fsanitize=thread (`make tsan`) and normally (`make threads`,
 * run under valgrind memcheck for leaks). The module's sources are linked in directly and
 * registered with luaL_requiref, as an embedding program would.
 *
 *   threads BASE_URL [THREADS [ITERATIONS]]
 *
 * BASE_URL is the sandbox gateway (http://127.0.0.1:PORT/API/v1.0/REST/), started by
 * spec/longrun/threads.sh. Every thread, in its own state:
 *   - ITERATIONS times: request_pin for its own recipient through one client, then verify_pin with
 *     the PIN the sandbox sent (read from /_sandbox/last_pin with a plain libcurl call), then a
 *     wrong PIN; a module-level smsend.request_pin every 10 iterations (per-state client cache);
 *   - every 25 iterations: smsend.new/close churn, a client left to the GC, bad input;
 *   - closes its state (every __gc runs) and reports its counts.
 * Exits 0 only when every thread finished with every call answered as expected. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_smsend(lua_State *L);

#define MAX_THREADS 64

struct job {
    int id;
    int iterations;
    const char *base_url;
    char control_url[512]; /* http://127.0.0.1:PORT/_sandbox/ */
    int ok;
    char report[512];
};

struct sink {
    char data[256];
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n, room = sizeof s->data - 1 - s->len;
    if (len > room)
        len = room;
    memcpy(s->data + s->len, p, len);
    s->len += len;
    s->data[s->len] = 0;
    return size * n;
}

/* last_pin(recipient) -> "123456" | nil: the sandbox's control endpoint, with libcurl directly. */
static int l_last_pin(lua_State *L)
{
    struct job *j = lua_touserdata(L, lua_upvalueindex(1));
    const char *rcpt = luaL_checkstring(L, 1);
    char url[700];
    struct sink s;
    long status = 0;
    CURL *e = curl_easy_init();
    const char *p;
    if (!e)
        return luaL_error(L, "curl_easy_init failed");
    /* recipients here are "+39..." : '+' must be percent-encoded in a query */
    snprintf(url, sizeof url, "%slast_pin?recipient=%%2B%s", j->control_url, rcpt[0] == '+' ? rcpt + 1 : rcpt);
    memset(&s, 0, sizeof s);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (status != 200 || !(p = strstr(s.data, "\"pin\":\""))) {
        lua_pushnil(L);
        return 1;
    }
    p += 7;
    lua_pushlstring(L, p, strcspn(p, "\""));
    return 1;
}

static const char *const SCRIPT =
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
        return NULL;
    }
    luaL_openlibs(L);
    /* an aggressive collector in every state, as in the busted runs */
    lua_gc(L, LUA_GCGEN, 1, 20);
    lua_pushlightuserdata(L, j);
    lua_pushcclosure(L, l_last_pin, 1);
    lua_setglobal(L, "last_pin");
    lua_pushcfunction(L, traceback);
    if (luaL_loadbuffer(L, SCRIPT, strlen(SCRIPT), "=threads") != LUA_OK) {
        snprintf(j->report, sizeof j->report, "load: %s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    luaL_requiref(L, "smsend", luaopen_smsend, 1);
    lua_pushstring(L, j->base_url);
    lua_pushinteger(L, j->id);
    lua_pushinteger(L, j->iterations);
    if (lua_pcall(L, 4, 1, 1) != LUA_OK) {
        snprintf(j->report, sizeof j->report, "FAILED: %s", lua_tostring(L, -1));
    } else {
        snprintf(j->report, sizeof j->report, "%s", lua_tostring(L, -1));
        j->ok = 1;
    }
    lua_close(L);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t tid[MAX_THREADS];
    struct job jobs[MAX_THREADS];
    int nthreads, iterations, i, failed = 0;
    const char *rest;
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL [THREADS [ITERATIONS]]\n", argv[0]);
        return 2;
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
        printf("threads: all %d threads done, %d iterations each\n", nthreads, iterations);
    return failed ? 1 : 0;
}
