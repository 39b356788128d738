/* lsmsend.h — what the binding files (smsend.c, lclient.c, lsms.c) share: reading Lua tables into
 * the plain-C request and configuration structs, and turning results into status tables. */
#ifndef SMSEND_LSMSEND_H
#define SMSEND_LSMSEND_H

#include "compat.h"
#include "client.h"
#include "fields.h"
#include "result.h"

#define LSMSEND_CLIENT_MT "smsend.client"

/* Names a table key can have: request fields first, then smsend.new options. */
enum lsm_key {
    K_UNKNOWN = -1,
    K_RECIPIENT = 0, K_SENDER, K_EXPIRY, K_MESSAGE, K_PIN,
    K_BASE_URL, K_USER_KEY, K_ACCESS_TOKEN, K_SESSION_KEY, K_USERNAME, K_PASSWORD,
    K_CAINFO, K_CAPATH, K_PROXY, K_USER_AGENT, K_LOGIN_PATH, K_TOKEN_PATH,
    K_AUTH, K_TIMEOUT, K_CONNECT_TIMEOUT, K_MIN_INTERVAL,
    K__COUNT
};
#define K_FIRST_OPTION K_BASE_URL

enum lsm_op { OP_REQUEST, OP_VERIFY };

/* Classifies the key at stack index idx (any Lua value). */
enum lsm_key lsm_key_of(lua_State *L, int idx);

/* Reads the value at idx into cfg for option k. Returns NULL or a message (static or in err). */
const char *lsm_read_option(lua_State *L, int idx, enum lsm_key k, struct client_config *cfg, char *err, size_t errlen);

/* Reads the value at idx for request field k of op into q (a struct pin_request or pin_verify).
 * On a wrong type or a field that does not belong to op, fills r and returns -1. */
int lsm_read_field(lua_State *L, int idx, enum lsm_key k, enum lsm_op op, void *q, struct smsend_result *r);

/* invalid_request for an unknown key at idx. */
void lsm_unknown_key(lua_State *L, int idx, struct smsend_result *r);

/* Every function that returns status tables carries the table's key strings as upvalues
 * 2 .. 1+LSM_NKEYS (upvalue 1 is its own: the client metatable or the module cache), so that
 * building a table sets interned keys with lua_rawset instead of looking names up each time. */
enum lsm_result_key {
    RK_BODY, RK_OK, RK_STATUS, RK_ERROR, RK_MESSAGE, RK_FIELD, RK_RETRYABLE, RK_ELAPSED,
    RK_RETRY_AFTER, RK_TRIES_REMAINING, RK_VALID,
    RK_BODY_OK, /* not a key: the gateway's usual answer {"status":"OK"}, pushed without interning */
    LSM_NKEYS
};
void lsm_push_keys(lua_State *L);

/* Pushes the status table for r (only from a function carrying the key upvalues); it may leave
 * one more value below the table, so callers return right after, with only the table. */
void lsm_push_result(lua_State *L, const struct smsend_result *r);

/* The open client at index 1 (methods carrying the client metatable as upvalue 1); raises on a
 * closed client or another type. */
struct smsend_client *lsm_check_client(lua_State *L);
/* Reads the request table at index 2 into q (raises if it is not a table); -1 with r filled on a
 * data error. */
int lsm_read_request(lua_State *L, enum lsm_op op, void *q, struct smsend_result *r);

/* lop.c: the smsend.op userdata of client:request_pin_async / verify_pin_async. */
#define LSMSEND_OP_MT "smsend.op"
void lsm_op_register(lua_State *L);
int lsm_request_pin_async(lua_State *L);
int lsm_verify_pin_async(lua_State *L);

/* Registers the smsend.client metatable and pushes the smsend.new function's needs. */
void lsm_client_register(lua_State *L);
int lsm_client_new(lua_State *L);

void lsm_sms_register(lua_State *L);

#endif
