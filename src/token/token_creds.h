/* Private to the token client: a provider's settings as the cache keeps them (the config they
 * came from may be freed and reloaded while requests are under way), and the principals that
 * name whose token an entry holds. */
#ifndef MG_TOKEN_CREDS_H
#define MG_TOKEN_CREDS_H

#include <stddef.h>

#include <openssl/types.h>

#include "config.h"
#include "token_fingerprint.h"

/* A provider's settings as of the latest token_get, for requests started by the timer (the
 * config they came from is not ours to keep pointers into). Shared by the provider's entries;
 * lives as long as the client (one per provider name ever seen). */
struct token_creds {
    struct token_creds *next;
    /* Owned copies of the fields the request bodies use (scope excepted: it is the entry's);
     * the keys are references taken with EVP_PKEY_up_ref. */
    struct provider_conf conf;
    /* Of conf's credential (token_fingerprint.h), kept with every token obtained with it. */
    char fingerprint[TOKEN_FINGERPRINT_SIZE];
};

/* The provider's record in *list (created on first use), brought up to date with p: copies of
 * the strings (the client secret wiped when replaced), references to the keys, the
 * fingerprint. */
struct token_creds *token_creds_update(struct token_creds **list, const struct provider_conf *p);
/* The provider as the body builders of token_parse.c see it, with the entry's scope. out points
 * into c: valid until the next update. */
void token_creds_view(const struct token_creds *c, const char *scope, struct provider_conf *out);
/* For logs: a password principal without its hash (which would be a password oracle for anyone
 * holding the process key, and says nothing useful). Malloc'd. */
char *token_log_name(const char *principal);
void token_creds_free_all(struct token_creds **list);

#endif
