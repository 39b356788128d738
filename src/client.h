/* client.h — a gateway client: configuration, credentials, login and renewal, and the calls
 * (request a PIN, verify a PIN, log in, check the session). Plain C, no Lua. */
#ifndef SMSEND_CLIENT_H
#define SMSEND_CLIENT_H

#include <stddef.h>
#include "config.h"
#include "fields.h"
#include "result.h"

#define SMSEND_VERSION "0.1.0"

/* Opaque: everything about the transport, secrets and the cooldown stays in client.c. */
struct smsend_client;

/* Once per process before the first client, thread-safe: what the transport needs. 0 on success. */
int client_global_init(void);

/* Checks cfg (finished by config_finish) with config_parse and builds a client from its own
 * copy of it. On a bad configuration returns NULL with a message in err and the name of the
 * offending option in field (both NUL-terminated). */
struct smsend_client *client_create(const struct client_config *cfg, char *err, size_t errlen, char *field,
                                    size_t fieldlen);

/* 1 when c was made from a configuration equal to cfg, option by option (so that a cache never
 * hands one configuration's client, credentials included, to another). */
int client_has_config(const struct smsend_client *c, const struct client_config *cfg);
/* 1 when c holds the same value as cfg for that one option (config_options index), in its own
 * copy of the configuration. */
int client_option_is(const struct smsend_client *c, int option, const struct client_config *cfg);

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
