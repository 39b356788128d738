/* lsmsend.h — what the binding files (smsend.c, lclient.c, lsms.c) share: reading Lua tables into
 * the plain-C request and configuration structs, and turning results into status tables. */
#ifndef SMSEND_LSMSEND_H
#define SMSEND_LSMSEND_H

#include "compat.h"
#include "client.h"
#include "fields.h"
#include "result.h"
#include "stats.h"

#define LSMSEND_CLIENT_MT "smsend.client"

/* Names a table key can have: the request fields, then the options of smsend.new, option i of
 * config_options being K_FIRST_OPTION + i. */
enum lsm_key {
    K_UNKNOWN = -1,
    K_RECIPIENT = 0, K_SENDER, K_EXPIRY, K_MESSAGE, K_PIN,
    K_FIRST_OPTION
};

/* OP_NONE: a table of options only (request fields are unknown keys there). */
enum lsm_op { OP_NONE, OP_REQUEST, OP_VERIFY };

union lsm_request {
    struct pin_request rq;
    struct pin_verify vq;
};

/* Classifies the key at stack index idx (any Lua value); lsm_keys_init first (luaopen_smsend). */
int lsm_key_of(lua_State *L, int idx);
void lsm_keys_init(void);

/* Reads the value at idx into cfg for option i (a config_options index). Returns NULL, or the
 * message (static or in err) for a value of the wrong type or an enum's unknown word. */
const char *lsm_read_option(lua_State *L, int idx, int option, struct client_config *cfg, char *err, size_t errlen);

/* Reads the table at idx: the request fields of op (none for OP_NONE) into q and, when cfg is
 * not NULL, the options of smsend.new into cfg, finished by config_finish. Returns 0, or -1 with
 * r filled (invalid_request naming the key) for an unknown key, a value of the wrong type or an
 * empty environment variable. Raises when idx is not a table. */
int lsm_read_table(lua_State *L, int idx, enum lsm_op op, union lsm_request *q, struct client_config *cfg,
                   struct smsend_result *r);
/* The same without config_finish (no environment, no defaults): *given gets the options the
 * table gave (bit i: config_options[i]), for the module cache's quick comparison. km: the key map
 * of a function carrying the status keys (LSM_KEYMAP), which finds a key by its address; NULL
 * compares the key's bytes (the result is the same). */
/* config_finish for a table's options: 0, or -1 with r filled (invalid_request naming the option). */
int lsm_finish_config(struct client_config *cfg, struct smsend_result *r);
struct lsm_keymap;
#define LSM_KEYMAP(L) ((const struct lsm_keymap *)lua_touserdata((L), lua_upvalueindex(2 + RK_KEYMAP)))
int lsm_read_table_given(lua_State *L, int idx, enum lsm_op op, union lsm_request *q, struct client_config *cfg,
                         config_mask *given, const struct lsm_keymap *km, struct smsend_result *r);

/* The client call for op (OP_REQUEST or OP_VERIFY). */
void lsm_call(struct smsend_client *c, enum lsm_op op, const union lsm_request *q, struct smsend_result *r);

/* Every function that returns status tables carries the table's key strings as upvalues
 * 2 .. 1+LSM_NKEYS (upvalue 1 is its own: the client metatable or the module cache), so that
 * building a table sets interned keys with lua_rawset instead of looking names up each time. */
enum lsm_result_key {
    RK_BODY, RK_OK, RK_STATUS, RK_ERROR, RK_MESSAGE, RK_FIELD, RK_RETRYABLE, RK_ELAPSED,
    RK_RETRY_AFTER, RK_TRIES_REMAINING, RK_VALID,
    RK_BODY_OK, /* not a key: the gateway's usual answer {"status":"OK"}, pushed without interning */
    RK_KEYMAP,  /* not a key: the request tables' keys by address (a userdata, see lsm_read_table) */
    LSM_NKEYS
};
void lsm_push_keys(lua_State *L);

/* Pushes the status table for r (only from a function carrying the key upvalues); it may leave
 * one more value below the table, so callers return right after, with only the table. */
void lsm_push_result(lua_State *L, const struct smsend_result *r);
/* The same, for the table that ends a call: counts the call and its outcome for smsend.stats()
 * first, so that every call counts once (lop.c's ops are counted when their table is made). */
void lsm_push_call(lua_State *L, enum stats_op op, const struct smsend_result *r);

/* The stats operation of a request or verify call. */
#define LSM_STATS_OP(op) ((op) == OP_REQUEST ? STATS_REQUEST_PIN : STATS_VERIFY_PIN)

/* The open client at index 1 (methods carrying the client metatable as upvalue 1); raises on a
 * closed client or another type. */
struct smsend_client *lsm_check_client(lua_State *L);
/* Reads the request table at index 2 into q (a union lsm_request; raises if it is not a table);
 * -1 with r filled on a data error. lsm_read_table without options. */
int lsm_read_request(lua_State *L, enum lsm_op op, void *q, struct smsend_result *r);

/* The userdata at index 1, of the class whose metatable is the method's upvalue 1 (raises if not). */
void *lsm_check_self(lua_State *L, const char *name);

/* A named metatable with its metamethods, and an __index table of methods that carry the metatable
 * (upvalue 1) and the status-table keys (upvalues 2..): smsend.client and smsend.op. */
void lsm_register_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

/* lop.c: the smsend.op userdata of client:request_pin_async / verify_pin_async. */
#define LSMSEND_OP_MT "smsend.op"
void lsm_op_register(lua_State *L);
int lsm_request_pin_async(lua_State *L);
int lsm_verify_pin_async(lua_State *L);

/* Registers the smsend.client metatable and pushes the smsend.new function's needs. */
void lsm_client_register(lua_State *L);
int lsm_client_new(lua_State *L);

/* Functions without upvalues for the module table: lsms.c's SMS helpers, lstats.c's counters. */
extern const luaL_Reg lsm_sms_functions[];
extern const luaL_Reg lsm_stats_functions[];

#endif
