/* The broker's half of the sign-in page (the worker's is src/http/signin_web.c): GET
 * /oauth/start makes a record (signin_state.h) and answers the provider's authorize URL with
 * PKCE (S256); GET /oauth/callback takes the record, redeems the code at the token endpoint
 * (libcurl multi on the broker's loop), stores the refresh token sealed for the user
 * (token_store_save_authorization), gives the token client the access token and, for a user
 * without a gateway password, makes one (Argon2id hash stored; the password goes to the worker
 * once, for the page). Nothing of the exchange (code, state, verifier, tokens, password) is
 * logged. */
#ifndef MG_SIGNIN_H
#define MG_SIGNIN_H

#include "ipc.h"

struct config;
struct event_base;
struct secretbox;
struct store;
struct token_client;
struct signin;

/* Sends an answer to the worker conn (the broker's worker connection). */
typedef void (*signin_reply_fn)(void *conn, const struct ipc_signin_answer *a);

struct signin *signin_new(struct event_base *base, const struct config *cfg, struct store *st,
                          struct token_client *tc, signin_reply_fn reply);
void signin_free(struct signin **s); /* exchanges in flight are dropped unanswered */
void signin_set_config(struct signin *s, const struct config *cfg);
/* The key the refresh tokens are sealed with; until it is set every callback fails. */
void signin_set_secretbox(struct signin *s, struct secretbox *box);

void signin_start(struct signin *s, void *conn, const struct ipc_signin_start *m);
void signin_finish(struct signin *s, void *conn, const struct ipc_signin_finish *m);
/* The worker conn has gone: its exchanges still run (the code is spent either way) and store
 * what they get, but nobody is answered. */
void signin_conn_gone(struct signin *s, void *conn);

#endif
