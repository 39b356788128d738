/* answer.h — readers for the gateway's plain-text answers: the login answer USER_KEY;SECRET
 * and checksession's true/false. Pure functions over untrusted bytes (fuzzed in fuzz/). */
#ifndef SMSEND_ANSWER_H
#define SMSEND_ANSWER_H

#include <stddef.h>

/* Splits a login answer into its two parts (views into p). Trailing CR/LF/spaces are ignored.
 * Both parts must be acceptable credentials (secret_check). Returns 0 or -1. */
int answer_login_split(const char *p, size_t n, const char **key, size_t *key_n, const char **secret,
                       size_t *secret_n);

/* 1 for "true", 0 for "false" (trailing white space ignored), -1 for anything else. */
int answer_bool(const char *p, size_t n);

#endif
