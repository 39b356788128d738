/* session.h — username/password sessions shared by every client of the process with the same base
 * URL, username, password and auth mode: one login at a time for all of them (the others wait for
 * it), and after a 401 one renewal that every client then uses. Plain C: no Lua, no libcurl.
 *
 * A session is found by the base URL, the auth mode, the username and an HMAC of the password
 * under a key random to the process, so different credentials never share keys and the registry
 * never holds a password. Its keys are secrets: copied into a client's own secrets, wiped when the
 * last client lets go. After fork() a child keeps the keys but no login in progress. */
#ifndef SMSEND_SESSION_H
#define SMSEND_SESSION_H

#include <stddef.h>
#include "result.h"
#include "secret.h"

struct smsend_session;

/* The session for these credentials, shared with every other holder (NULL: out of memory). */
struct smsend_session *session_get(const char *base_url, int auth_token, const struct secret *username,
                                   const struct secret *password);
void session_put(struct smsend_session *s);

/* The generation of the session's keys (0: none yet); changes with every login and renewal. Cheap:
 * callers compare it with the generation they copied before each call. */
unsigned session_generation(const struct smsend_session *s);

/* Copies the session's keys when they differ from generation *gen; 1 when the caller has valid
 * keys now (copied or already its own), 0 when the session has none. -1: out of memory. */
int session_keys(struct smsend_session *s, unsigned *gen, struct secret *user_key, struct secret *key);

enum session_state {
    SESSION_READY,  /* keys newer than the caller's: take them with session_keys */
    SESSION_FAILED, /* a login that started after the caller began to wait failed: *failure_gen moved */
    SESSION_BUSY,   /* a login is running */
    SESSION_FREE    /* no keys, no login running: the caller may start one (session_begin_login) */
};
/* Where a waiter stands: gen and failures are what it saw when it began to wait. */
enum session_state session_state(struct smsend_session *s, unsigned gen, unsigned failures);
/* What the waiter records when it begins to wait. */
void session_marks(struct smsend_session *s, unsigned *gen, unsigned *failures);

/* 1: the caller now owns the one login of the session and must end it with session_login_done;
 * 0: another login is running. */
int session_begin_login(struct smsend_session *s);
/* The owner's login ended: with keys (user_key and key non-NULL: stored, the generation moves on
 * and *gen gets it), failed (user_key NULL, failure non-NULL: waiters see SESSION_FAILED and can
 * read it with session_failure) or abandoned (both NULL: a waiter may log in instead). -1 when the
 * keys could not be stored. */
int session_login_done(struct smsend_session *s, const struct secret *user_key, const struct secret *key,
                       const struct smsend_result *failure, unsigned *gen);
/* The last failed login's outcome (error, status, message, retryable; never a body). */
void session_failure(struct smsend_session *s, struct smsend_result *out);
/* A call with keys of generation gen got 401: the keys are dropped unless a renewal already
 * replaced them. */
void session_invalidate(struct smsend_session *s, unsigned gen);

/* Sleeps until the session changes (a login ends) or max_s seconds pass. */
void session_wait(struct smsend_session *s, double max_s);

#endif
