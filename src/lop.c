/* lop.c — the smsend.op userdata: client:request_pin_async / verify_pin_async, poll, wait, cancel,
 * and cqueues' pollable protocol (pollfd, events, timeout). The op is the same C state machine the
 * blocking calls wait on; this file only turns it into Lua values once it is done. */
#include <string.h>
#include "lsmsend.h"

struct lop {
    struct smsend_op *op; /* NULL once its status table is built (the C op is then freed) */
    int fd;               /* op:pollfd(), fixed for the op's life */
    struct smsend_op_fd *keep; /* holds that descriptor open until the op object is collected */
    enum stats_op kind;   /* what it counts as in smsend.stats() */
};

/* The uservalue (a table: LuaJIT keeps userdata environments as tables) holds [1] the client
 * userdata, so an op keeps its client alive, and [2] the status table once done. */
#if LUA_VERSION_NUM >= 504
#define set_uv(L, idx) lua_setiuservalue((L), (idx), 1)
#define get_uv(L, idx) lua_getiuservalue((L), (idx), 1)
#elif LUA_VERSION_NUM >= 502
#define set_uv(L, idx) lua_setuservalue((L), (idx))
#define get_uv(L, idx) lua_getuservalue((L), (idx))
#else
#define set_uv(L, idx) lua_setfenv((L), (idx))
#define get_uv(L, idx) lua_getfenv((L), (idx))
#endif

static struct lop *check_op(lua_State *L)
{
    return lsm_check_self(L, LSMSEND_OP_MT);
}

/* Pushes the stored status table, or nil. */
static int push_stored(lua_State *L)
{
    get_uv(L, 1);
    lua_rawgeti(L, -1, 2);
    lua_remove(L, -2);
    return !lua_isnil(L, -1);
}

/* Frees the C op (an op still in flight is cancelled first). */
static void release(struct lop *u)
{
    smsend_op_free(u->op);
    u->op = NULL;
}

/* done: build the op's status table, keep it, free the C op, and return the table; else nil. */
static int answer(lua_State *L, struct lop *u, int done)
{
    int top;
    if (!done) {
        lua_pushnil(L);
        return 1;
    }
    get_uv(L, 1);
    top = lua_gettop(L);
    lsm_push_call(L, u->kind, smsend_op_result(u->op)); /* may leave the body string below the table */
    lua_pushvalue(L, -1);
    lua_rawseti(L, top, 2);
    lua_replace(L, top);
    lua_settop(L, top);
    release(u);
    return 1;
}

static int o_poll(lua_State *L)
{
    struct lop *u = check_op(L);
    if (!u->op)
        return push_stored(L), 1;
    return answer(L, u, smsend_op_poll(u->op));
}

static int o_wait(lua_State *L)
{
    struct lop *u = check_op(L);
    double secs = -1;
    if (!lua_isnoneornil(L, 2)) {
        secs = (double)luaL_checknumber(L, 2);
        luaL_argcheck(L, secs >= 0 && secs == secs, 2, "seconds must be a number >= 0 or nil");
    }
    if (!u->op)
        return push_stored(L), 1;
    return answer(L, u, smsend_op_wait(u->op, secs));
}

static int o_done(lua_State *L)
{
    struct lop *u = check_op(L);
    lua_pushboolean(L, !u->op || smsend_op_done(u->op));
    return 1;
}

static int o_cancel(lua_State *L)
{
    struct lop *u = check_op(L);
    if (!u->op)
        return push_stored(L), 1;
    smsend_op_cancel(u->op);
    return answer(L, u, 1);
}

static int o_pollfd(lua_State *L)
{
    struct lop *u = check_op(L);
    lua_pushinteger(L, u->fd);
    return 1;
}

static int o_events(lua_State *L)
{
    check_op(L);
    lua_pushliteral(L, "r");
    return 1;
}

static int o_timeout(lua_State *L)
{
    struct lop *u = check_op(L);
    double t = u->op ? smsend_op_timeout(u->op) : 0;
    if (t < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, t);
    return 1;
}

/* __gc and __close: an op collected or closed while in flight is cancelled. */
static int o_gc(lua_State *L)
{
    struct lop *u = luaL_checkudata(L, 1, LSMSEND_OP_MT);
    release(u);
    smsend_op_fd_release(u->keep);
    u->keep = NULL;
    return 0;
}

static int o_tostring(lua_State *L)
{
    struct lop *u = luaL_checkudata(L, 1, LSMSEND_OP_MT);
    int done = !u->op || smsend_op_done(u->op);
    lua_pushfstring(L, "smsend.op (%s): %p", done ? "done" : "in flight", (void *)u);
    return 1;
}

/* client:request_pin_async(t) / verify_pin_async(t): misuse raises; bad fields give an op born
 * done with the invalid_request table. */
static int start(lua_State *L, enum lsm_op kind)
{
    struct smsend_client *c = lsm_check_client(L);
    union {
        struct pin_request rq;
        struct pin_verify vq;
    } q;
    struct smsend_result r;
    struct lop *u;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    /* the userdata and its uservalue first, so a Lua memory error cannot leak a C op */
    u = lua_newuserdata(L, sizeof *u);
    u->op = NULL;
    u->fd = -1;
    u->keep = NULL;
    u->kind = LSM_STATS_OP(kind);
    luaL_setmetatable(L, LSMSEND_OP_MT);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    set_uv(L, 3);
    memset(&q, 0, sizeof q);
    result_clear(&r);
    lua_pushvalue(L, 2); /* lsm_read_request reads the table at index 2 */
    lua_replace(L, 2);
    if (lsm_read_request(L, kind, &q, &r) != 0)
        u->op = smsend_op_finished(c, &r);
    else
        u->op = kind == OP_REQUEST ? smsend_op_request_pin(c, &q.rq, 1) : smsend_op_verify_pin(c, &q.vq, 1);
    lua_settop(L, 3);
    if (!u->op)
        return luaL_error(L, "smsend: out of memory starting a call");
    u->fd = smsend_op_fd(u->op);
    u->keep = smsend_op_fd_keep(u->op);
    return 1;
}

int lsm_request_pin_async(lua_State *L)
{
    return start(L, OP_REQUEST);
}

int lsm_verify_pin_async(lua_State *L)
{
    return start(L, OP_VERIFY);
}

void lsm_op_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"poll", o_poll},       {"wait", o_wait},     {"done", o_done},       {"cancel", o_cancel},
        {"pollfd", o_pollfd},   {"events", o_events}, {"timeout", o_timeout}, {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", o_gc},
#if LUA_VERSION_NUM >= 504
        {"__close", o_gc},
#endif
        {"__tostring", o_tostring},
        {NULL, NULL},
    };
    lsm_register_class(L, LSMSEND_OP_MT, meta, methods);
}
