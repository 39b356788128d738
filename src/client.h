/* client.h — a gateway client: configuration, credentials, login and renewal, and the calls
 * (request a PIN, verify a PIN, log in, check the session). Plain C, no Lua. */
#ifndef SMSEND_CLIENT_H
#define SMSEND_CLIENT_H

#include <stddef.h>
#include "cooldown.h"
#include "fields.h"
#include "http.h"
#include "result.h"
#include "secret.h"

#define SMSEND_VERSION "0.1.0"
#define SMSEND_DEFAULT_BASE_URL "https://app.gateway.smsend.it/API/v1.0/REST/"

enum auth_mode { AUTH_SESSION = 0, AUTH_TOKEN = 1 };

/* Everything smsend.new accepts, as byte ranges owned by the caller. p == NULL: not given. */
struct client_config {
    struct field_str base_url;
    struct field_str user_key, access_token, session_key, username, password;
    struct field_str cainfo, capath, proxy, user_agent;
    struct field_str login_path, token_path;
    enum auth_mode auth;
    double timeout;         /* seconds */
    double connect_timeout; /* seconds */
    double min_interval;    /* seconds, 0 = off */
};

void client_config_defaults(struct client_config *cfg);

/* Reads SMSEND_* variables for the credentials when none were given, and SMSEND_BASE_URL
 * when no base_url was given. The pointers stay valid as long as the environment does. */
void client_config_from_env(struct client_config *cfg);

struct smsend_client;

/* Once per process before the first client, thread-safe: what the transport needs. 0 on success. */
int client_global_init(void);

/* Validates cfg and builds a client. On a bad configuration returns NULL with a message in
 * err and the name of the offending option in field (both NUL-terminated). */
struct smsend_client *client_create(const struct client_config *cfg, char *err, size_t errlen, char *field,
                                    size_t fieldlen);
/* Wipes every secret and frees everything. NULL is fine. */
void client_destroy(struct smsend_client *c);

/* The calls. Each one fills r completely; r->body is a view into the client's buffer that
 * stays valid until the next call on the same client. */
void client_request_pin(struct smsend_client *c, const struct pin_request *q, struct smsend_result *r);
void client_verify_pin(struct smsend_client *c, const struct pin_verify *q, struct smsend_result *r);
void client_login(struct smsend_client *c, struct smsend_result *r);
void client_check_session(struct smsend_client *c, struct smsend_result *r);

/* A redacted description for tostring: no secret, no part of one. */
void client_describe(const struct smsend_client *c, char *out, size_t outlen);

#endif
