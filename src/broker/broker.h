/* The broker: the one process that holds secrets (store, client secrets, tokens). Workers ask it
 * "check this login for this protocol" over their socketpair; it answers "ok: mailbox,
 * provider, access token" or "fail: reason". Password verification runs in the verify pool,
 * token requests in the token client; the broker's loop never blocks on either. */
#ifndef MG_BROKER_H
#define MG_BROKER_H

struct event_base;
struct config;
struct store;
struct broker;
struct token_client;
struct secretbox;

/* cfg must have been loaded with CONFIG_LOAD_SECRETS; cfg and store outlive the broker. */
struct broker *broker_new(struct event_base *base, const struct config *cfg, struct store *st);
void broker_free(struct broker **b);
/* The broker's token client (for token_store.c's persistence hooks). */
struct token_client *broker_token_client(struct broker *b);
/* Serves IPC on fd (one end of a worker's socketpair); the broker owns and closes fd.
 * on_ready(index) runs when that worker reports its listeners bound. */
int broker_add_worker(struct broker *b, int fd, int index, void (*on_ready)(int index, void *arg),
                      void *arg);
/* Drops the IPC connection of a worker (it died); its pending requests are cancelled. */
void broker_remove_worker(struct broker *b, int index);
/* SIGHUP: new logins use cfg (providers, lockout and delay settings); the caller frees the old
 * config only after this. Jobs in flight look their provider up again by name. */
void broker_set_config(struct broker *b, const struct config *cfg);
/* The key of the secrets at rest, for the sign-in page's refresh tokens (box outlives b). */
void broker_set_secretbox(struct broker *b, struct secretbox *box);

#endif
