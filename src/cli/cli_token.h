/* What "mailgate token get" and "mailgate token test" share: the configuration with secrets,
 * the store and the secretbox, the user (when one is named) and its provider, and one token
 * request through the broker's token client with the store attached (token_store.h): a cached
 * token is served from the store, and a rotated or revoked refresh token is persisted exactly
 * as the gateway does. */
#ifndef MG_CLI_TOKEN_H
#define MG_CLI_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "password.h"
#include "store.h"
#include "token.h"

struct secretbox;

struct cli_token_opts {
    const char *provider; /* NULL: the user's, or the only one */
    const char *user;     /* NULL: the provider's app token (client credentials only) */
    bool password_stdin;  /* flow = password: the user's IdP password on stdin */
    bool fresh;           /* ask the IdP even when a stored token is still valid */
};

struct cli_token_ctx {
    struct config *cfg;
    struct store *st;
    struct secretbox *box;
    struct user_record user; /* user.name NULL without a user */
    const struct provider_conf *p;
    char password[PASSWORD_MAX + 2]; /* flow = password only; wiped by cli_token_close */
    size_t password_len;
};

/* The outcome of one request. */
struct cli_token {
    enum token_status status;
    char *token; /* malloc'd (TOKEN_OK); wiped by cli_token_clear */
    size_t len;
    bool cached;        /* served from the cache (the store) without asking the IdP */
    int64_t expires_at; /* unix seconds from the store's row; 0 when unknown */
    char principal[320];
    char reason[640];
};

/* Loads everything for the options; 0, or the exit code (1 failure, 2 usage error) after a
 * message on stderr. Call cli_token_close in both cases. */
int cli_token_open(const char *config_path, const struct cli_token_opts *o,
                   struct cli_token_ctx *c);
void cli_token_close(struct cli_token_ctx *c);

/* One token for the context's provider and user (bounded by token_timeout); fresh: from the
 * IdP, not the store's cache (the new token replaces the stored one). */
void cli_token_fetch(struct cli_token_ctx *c, struct cli_token *t, bool fresh);
void cli_token_clear(struct cli_token *t);

/* Why there is no token, as lines on out each starting with prefix: the reason and the fix
 * (AADSTS hint, "run mailgate user authorize", "temporary: try again"). */
void cli_token_explain_failure(const struct cli_token_ctx *c, const struct cli_token *t, FILE *out,
                               const char *prefix);

/* "token flush [--provider P] [--user NAME]" (cli_token_flush.c); argv[0] is "flush". */
int cli_token_flush(const char *config_path, int argc, char **argv);
/* "token test NAME [--protocol P] [--password-stdin]" (cli_token_test.c); argv[0] is "test". */
int cli_token_test(const char *config_path, int argc, char **argv);

/* Prints value after "label: " with control bytes replaced (claims are remote text). */
void cli_print_field(FILE *out, const char *label, const char *value);

#endif
