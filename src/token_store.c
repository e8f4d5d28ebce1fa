/* Persistent, encrypted token cache (see token_store.h). */
#include "token_store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "secretbox.h"
#include "store.h"
#include "token.h"
#include "util.h"

/* A stored token with less left than this is not worth loading. */
#define MIN_LEFT_S 60

struct token_store {
    struct token_client *tc;
    const struct config *cfg;
    struct store *st;
    const struct secretbox *box;
};

char *token_store_context(const char *provider, const char *principal, const char *scope)
{
    return mg_printf("token:%s:%s:%s", provider, principal, scope);
}

/* App-only tokens are stored under the app that obtained them, so that a changed client_id or
 * tenant never picks up the previous app's token after a restart. malloc'd. */
static char *app_principal(const struct provider_conf *p)
{
    return mg_printf("app:%s@%s", p->client_id ? p->client_id : "", p->tenant ? p->tenant : "");
}

static void on_obtained(const char *provider, const char *scope, const char *token, size_t len,
                        int64_t expires_in, void *arg)
{
    struct token_store *ts = arg;
    const struct provider_conf *p = config_provider(ts->cfg, provider);
    if (!p)
        return;
    char *principal = app_principal(p);
    char *ad = token_store_context(provider, principal, scope);
    struct token_record t = {.provider = (char *)provider,
                             .principal = principal,
                             .scope = (char *)scope,
                             .expires_at = (int64_t)time(NULL) + expires_in};
    t.sealed = secretbox_seal(ts->box, ad, token, len, &t.sealed_len);
    free(ad);
    if (!t.sealed) {
        log_error("cannot encrypt the token of provider %s for the store", provider);
        free(principal);
        return;
    }
    if (store_token_put(ts->st, &t) != STORE_OK)
        log_warn("cannot store the token of provider %s: %s", provider, store_last_error(ts->st));
    free(t.sealed);
    free(principal);
}

static void load_one(struct token_store *ts, const struct provider_conf *p)
{
    const char *scope = p->scope ? p->scope : "";
    struct token_record t;
    char *principal = app_principal(p);
    enum store_status found = store_token_get(ts->st, p->name, principal, scope, &t);
    char *ad = token_store_context(p->name, principal, scope);
    free(principal);
    if (found != STORE_OK) {
        free(ad);
        return;
    }
    int64_t left = t.expires_at - (int64_t)time(NULL);
    size_t len = 0;
    char *token =
        left > MIN_LEFT_S ? secretbox_open_blob(ts->box, ad, t.sealed, t.sealed_len, &len) : NULL;
    free(ad);
    if (token) {
        token_client_seed(ts->tc, p, token, len, left);
        log_info("provider %s: reusing the stored token (%lld s left)", p->name, (long long)left);
        mg_wipe(token, len);
        free(token);
    } else if (left > MIN_LEFT_S) {
        log_warn("provider %s: the stored token cannot be decrypted with the current key; "
                 "a new one will be requested",
                 p->name);
    }
    token_record_clear(&t);
}

struct token_store *token_store_attach(struct token_client *tc, const struct config *cfg,
                                       struct store *st, const struct secretbox *box)
{
    struct token_store *ts = mg_calloc(1, sizeof *ts);
    ts->tc = tc;
    ts->cfg = cfg;
    ts->st = st;
    ts->box = box;
    for (size_t i = 0; i < cfg->n_providers; i++)
        load_one(ts, &cfg->providers[i]);
    token_client_set_observer(tc, on_obtained, ts);
    return ts;
}

void token_store_detach(struct token_store **tsp)
{
    if (!tsp || !*tsp)
        return;
    token_client_set_observer((*tsp)->tc, NULL, NULL);
    free(*tsp);
    *tsp = NULL;
}
