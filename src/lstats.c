/* lstats.c — smsend.stats() and smsend.metrics(): the process-wide counters of stats.c as a
 * table and as Prometheus text. Both read C memory only; neither can raise except for memory. */
#include <math.h>
#include "lsmsend.h"
#include "stats.h"

/* smsend.stats() -> { calls = { request_pin = { ok = n, <code> = n, ... }, ... }, logins = n,
 * renewals = n, cooldown_refusals = n, connections = n,
 * gateway_seconds = { count = n, sum = s, buckets = { { le = s, count = n (cumulative) }, ... } } } */
static int l_stats(lua_State *L)
{
    struct stats_snapshot s;
    unsigned long long cumulative = 0;
    int i, e;
    stats_read(&s);
    lua_createtable(L, 0, 6);
    lua_createtable(L, 0, STATS_NOPS);
    for (i = 0; i < STATS_NOPS; i++) {
        lua_createtable(L, 0, SMSEND_E__COUNT);
        for (e = 0; e < SMSEND_E__COUNT; e++) {
            lua_pushnumber(L, (lua_Number)s.calls[i][e]);
            lua_setfield(L, -2, e == SMSEND_OK ? "ok" : smsend_error_name((smsend_error)e));
        }
        lua_setfield(L, -2, stats_op_name((enum stats_op)i));
    }
    lua_setfield(L, -2, "calls");
    lua_pushnumber(L, (lua_Number)s.logins);
    lua_setfield(L, -2, "logins");
    lua_pushnumber(L, (lua_Number)s.renewals);
    lua_setfield(L, -2, "renewals");
    lua_pushnumber(L, (lua_Number)s.cooldown_refusals);
    lua_setfield(L, -2, "cooldown_refusals");
    lua_pushnumber(L, (lua_Number)s.connections);
    lua_setfield(L, -2, "connections");
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, (lua_Number)s.exchanges);
    lua_setfield(L, -2, "count");
    lua_pushnumber(L, (lua_Number)s.microseconds / 1e6);
    lua_setfield(L, -2, "sum");
    lua_createtable(L, STATS_NBUCKETS + 1, 0);
    for (i = 0; i <= STATS_NBUCKETS; i++) {
        cumulative += s.buckets[i];
        lua_createtable(L, 0, 2);
        lua_pushnumber(L, i < STATS_NBUCKETS ? (lua_Number)stats_bucket_us[i] / 1e6 : (lua_Number)HUGE_VAL);
        lua_setfield(L, -2, "le");
        lua_pushnumber(L, (lua_Number)cumulative);
        lua_setfield(L, -2, "count");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "buckets");
    lua_setfield(L, -2, "gateway_seconds");
    return 1;
}

static int add_text(void *ctx, const char *p, size_t n)
{
    luaL_addlstring(ctx, p, n);
    return 0;
}

/* smsend.metrics() -> the Prometheus text exposition (names smsend_*) */
static int l_metrics(lua_State *L)
{
    struct stats_snapshot s;
    luaL_Buffer b;
    stats_read(&s);
    luaL_buffinit(L, &b);
    stats_prometheus(&s, add_text, &b); /* Lua owns every byte: a memory error leaks nothing */
    luaL_pushresult(&b);
    return 1;
}

const luaL_Reg lsm_stats_functions[] = {
    {"stats", l_stats},
    {"metrics", l_metrics},
    {NULL, NULL},
};
