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
/* The same for the options in set only: a caller that knows the others would come out as c's. */
int client_has_options(const struct smsend_client *c, const struct client_config *cfg, config_mask set);
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

/* Pollable calls. Each start function returns an op (NULL only when out of memory) that may be
 * born done (bad fields, cooldown: nothing sent). The blocking calls above are exactly "start an
 * op and wait for it". An op keeps its client's transport busy; client_destroy cancels the ops
 * still in flight and cuts them loose (they stay valid until smsend_op_free). */
struct smsend_op;
/* pollable: the op is driven by its caller (poll, wait, the descriptor) on the client's own
 * connections; else it is a blocking call's op, on connections borrowed from the process pool. */
struct smsend_op *smsend_op_request_pin(struct smsend_client *c, const struct pin_request *q, int pollable);
struct smsend_op *smsend_op_verify_pin(struct smsend_client *c, const struct pin_verify *q, int pollable);
struct smsend_op *smsend_op_login(struct smsend_client *c, int pollable);
struct smsend_op *smsend_op_check_session(struct smsend_client *c, int pollable);
/* An op born done with r (a request the binding could not read: nothing sent). */
struct smsend_op *smsend_op_finished(struct smsend_client *c, const struct smsend_result *r);
/* Does what is ready without waiting; 1 once done. */
int smsend_op_poll(struct smsend_op *op);
/* Waits at most seconds (< 0: until done); 1 once done. */
int smsend_op_wait(struct smsend_op *op, double seconds);
int smsend_op_done(const struct smsend_op *op);
/* Abandons the call (error cancelled); 0 when it was already done. */
int smsend_op_cancel(struct smsend_op *op);
/* The result once done; r->body stays valid until smsend_op_free. */
const struct smsend_result *smsend_op_result(const struct smsend_op *op);
/* A descriptor that becomes readable when smsend_op_poll has work (the same for the op's life,
 * -1 once its client is gone), and seconds until it must be polled anyway (< 0: no timer). */
int smsend_op_fd(struct smsend_op *op);
double smsend_op_timeout(struct smsend_op *op);
void smsend_op_free(struct smsend_op *op);
/* Keeps the op's descriptor open (and its number the op's) beyond smsend_op_free and the client's
 * close, until smsend_op_fd_release: for a binding whose op object outlives the C op. NULL when
 * the op has no descriptor of its own. */
struct smsend_op_fd *smsend_op_fd_keep(struct smsend_op *op);
void smsend_op_fd_release(struct smsend_op_fd *fd);

/* A redacted description for tostring: no secret, no part of one. */
void client_describe(const struct smsend_client *c, char *out, size_t outlen);

#endif
