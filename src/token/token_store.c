/* Persistent, encrypted token cache (see token_store.h). */
#include "token_store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "grant_store.h"
#include "jwt_claims.h"
#include "log.h"
#include "secretbox.h"
#include "store.h"
#include "token.h"
#include "token_fingerprint.h"
#include "util.h"

/* A stored token with less left than this is not worth loading. */
#define MIN_LEFT_S 60

struct token_store {
    struct token_client *tc;
    const struct config *cfg;
    struct store *st;
    struct secretbox *box;
    size_t seeded;        /* tokens loaded at attach */
    int64_t data_version; /* the store's, when last looked at (store_data_version) */
};

int64_t token_store_time_left(const char *token, size_t len, int64_t stored_left, int64_t now)
{
    json_t *claims = jwt_claims_decode(token, len);
    int64_t exp = 0;
    if (claims && jwt_claims_time(claims, "exp", &exp) == 0 && exp - now < stored_left)
        stored_left = exp - now;
    json_decref(claims);
    return stored_left;
}

char *token_store_context(const char *provider, const char *principal, const char *scope)
{
    return mg_printf("token:%s:%s:%s", provider, principal, scope);
}

/* `mailgate secrets rotate-key` may replace the key file while we run: follow it before each
 * use of the key. Returns 1 when a new key was taken up. */
static int follow_key(struct token_store *ts)
{
    char err[256];
    int changed = secretbox_follow_key_file(ts->box, err, sizeof err);
    if (changed > 0)
        log_info("the secret key file changed: sealing with the new key from now on");
    else if (changed < 0)
        log_error("%s; keeping the key in use", err);
    return changed > 0;
}

static enum store_status put_token(struct token_store *ts, struct token_record *t,
                                   const char *token, size_t len)
{
    char *ad = token_store_context(t->provider, t->principal, t->scope);
    t->sealed = secretbox_seal(ts->box, ad, token, len, &t->sealed_len);
    free(ad);
    if (!t->sealed)
        return STORE_ERROR;
    enum store_status rc = store_token_put(ts->st, t);
    free(t->sealed);
    t->sealed = NULL;
    return rc;
}

/* A write that waited for a rotate-key transaction lands after it and would keep the old
 * key's seal, which a restarted gateway cannot open: seal and write once more then. */
static void on_obtained(const char *provider, const char *principal, const char *scope,
                        const char *token, size_t len, int64_t expires_in, const char *credential,
                        void *arg)
{
    struct token_store *ts = arg;
    struct token_record t = {.provider = (char *)provider,
                             .principal = (char *)principal,
                             .scope = (char *)scope,
                             .expires_at = (int64_t)time(NULL) + expires_in,
                             .credential = (char *)credential};
    follow_key(ts);
    enum store_status rc = put_token(ts, &t, token, len);
    if (rc == STORE_OK && follow_key(ts))
        rc = put_token(ts, &t, token, len);
    if (rc != STORE_OK)
        log_warn("cannot store the token of provider %s: %s", provider, store_last_error(ts->st));
}

/* ---- the token client's store hooks: refused tokens, rows deleted by others ---- */

static void forget_row(void *arg, const char *provider, const char *principal, const char *scope)
{
    struct token_store *ts = arg;
    if (store_token_delete(ts->st, provider, principal, scope) == STORE_ERROR)
        log_warn("cannot delete the refused token of provider %s from the store: %s", provider,
                 store_last_error(ts->st));
}

static int store_changed(void *arg)
{
    struct token_store *ts = arg;
    int64_t version = 0;
    if (store_data_version(ts->st, &version) != STORE_OK || version == ts->data_version)
        return 0;
    ts->data_version = version;
    return 1;
}

static int row_stored(void *arg, const char *provider, const char *principal, const char *scope)
{
    struct token_store *ts = arg;
    struct token_record t;
    enum store_status rc = store_token_get(ts->st, provider, principal, scope, &t);
    if (rc == STORE_OK)
        token_record_clear(&t);
    return rc == STORE_OK ? 1 : rc == STORE_NOT_FOUND ? 0 : -1;
}

static const struct token_store_ops store_ops = {forget_row, store_changed, row_stored};

/* ---- refresh tokens: the token client's hooks onto grant_store.c ---- */

/* "user:NAME" -> NAME; NULL for any other principal. */
static const char *user_of(const char *principal)
{
    return strncmp(principal, "user:", 5) == 0 && principal[5] ? principal + 5 : NULL;
}

static char *load_refresh(void *arg, const char *provider, const char *principal, size_t *len)
{
    struct token_store *ts = arg;
    const char *user = user_of(principal);
    if (!user)
        return NULL;
    follow_key(ts);
    return grant_store_load(ts->st, ts->box, provider, user, len);
}

static int store_rotated(void *arg, const char *provider, const char *principal,
                         const char *refresh, size_t len)
{
    struct token_store *ts = arg;
    const char *user = user_of(principal);
    if (!user)
        return -1;
    follow_key(ts);
    int rc = grant_store_save(ts->st, ts->box, provider, user, refresh, len);
    if (rc == 0 && follow_key(ts)) /* see on_obtained */
        rc = grant_store_save(ts->st, ts->box, provider, user, refresh, len);
    return rc;
}

static void mark_revoked(void *arg, const char *provider, const char *principal, const char *reason)
{
    struct token_store *ts = arg;
    const char *user = user_of(principal);
    if (user)
        grant_store_revoke(ts->st, provider, user, reason);
}

static const struct token_refresh_ops refresh_ops = {load_refresh, store_rotated, mark_revoked};

/* Which grant a stored row belongs to, by the provider's flow and the principal's kind:
 * app-only tokens are stored under the app that obtained them (so a changed client_id or
 * tenant never picks up the previous app's token), delegated ones under "user:NAME", service
 * account ones under "mailbox:MAILBOX". Password tokens are never stored. Returns 0 when the
 * row is one to seed, filling subj (whose strings point into principal). */
static int subject_of(const struct provider_conf *p, const char *principal, const char *app,
                      struct token_subject *subj)
{
    memset(subj, 0, sizeof *subj);
    subj->principal = principal;
    switch (p->flow) {
    case MG_FLOW_CLIENT_CREDENTIALS:
        subj->grant = TOKEN_GRANT_CLIENT_CREDENTIALS;
        return strcmp(principal, app) == 0 ? 0 : -1;
    case MG_FLOW_DELEGATED:
        subj->grant = TOKEN_GRANT_REFRESH_TOKEN;
        return strncmp(principal, "user:", 5) == 0 && principal[5] ? 0 : -1;
    case MG_FLOW_SERVICE_ACCOUNT:
        subj->grant = TOKEN_GRANT_JWT_BEARER;
        subj->subject = principal + 8;
        return strncmp(principal, "mailbox:", 8) == 0 && principal[8] ? 0 : -1;
    case MG_FLOW_PASSWORD:
        break;
    }
    return -1;
}

/* A row obtained with another credential than p's current one is left alone: serving it would
 * hide a wrong new secret until the old token expires. Rows from before fingerprints were kept
 * ("") are taken as they are. The row stays, so `check-config` can tell. */
static int obtained_with_other_credential(const struct provider_conf *p,
                                          const struct token_record *t)
{
    char now[TOKEN_FINGERPRINT_SIZE];
    token_fingerprint(p, now);
    if (!t->credential[0] || strcmp(t->credential, now) == 0)
        return 0;
    log_info("provider %s: the %s changed since the stored token of %s was obtained; a new one "
             "will be requested",
             p->name, token_credential_kind(p), t->principal);
    return 1;
}

/* Seeds one stored row into the token client when it belongs to a configured provider's
 * current flow, app, scope and credential, and has enough life left. Never stops the
 * listing. */
static int load_one(const struct token_record *t, void *arg)
{
    struct token_store *ts = arg;
    const struct provider_conf *p = config_provider(ts->cfg, t->provider);
    if (!p || strcmp(t->scope, p->scope ? p->scope : "") != 0 ||
        obtained_with_other_credential(p, t))
        return 0;
    char *app = token_app_principal(p);
    struct token_subject subj;
    int wanted = subject_of(p, t->principal, app, &subj) == 0;
    free(app);
    int64_t left = t->expires_at - (int64_t)time(NULL);
    if (!wanted || left <= MIN_LEFT_S)
        return 0;
    char *ad = token_store_context(t->provider, t->principal, t->scope);
    size_t len = 0;
    char *token = secretbox_open_blob(ts->box, ad, t->sealed, t->sealed_len, &len);
    free(ad);
    if (!token) {
        log_warn("provider %s: the stored token of %s cannot be decrypted with the current key; "
                 "a new one will be requested",
                 p->name, t->principal);
        return 0;
    }
    left = token_store_time_left(token, len, left, (int64_t)time(NULL));
    if (left <= MIN_LEFT_S) {
        log_info("provider %s: the stored token of %s has expired (its exp claim); dropping it",
                 p->name, t->principal);
        forget_row(ts, t->provider, t->principal, t->scope);
    } else {
        token_client_seed(ts->tc, p, &subj, token, len, left);
        ts->seeded++;
    }
    log_debug("provider %s: reusing the stored token of %s (%lld s left)", p->name, t->principal,
              (long long)left);
    mg_wipe(token, len);
    free(token);
    return 0;
}

/* cfg NULL: the stored tokens are not loaded (token_store_attach_unseeded). */
static struct token_store *attach(struct token_client *tc, const struct config *cfg,
                                  struct store *st, struct secretbox *box)
{
    struct token_store *ts = mg_calloc(1, sizeof *ts);
    ts->tc = tc;
    ts->cfg = cfg;
    ts->st = st;
    ts->box = box;
    store_data_version(st, &ts->data_version);
    if (cfg && store_token_list(st, load_one, ts) != STORE_OK)
        log_warn("cannot read the stored tokens: %s", store_last_error(st));
    else if (ts->seeded)
        log_info("reusing the stored tokens of %zu principal(s)", ts->seeded);
    ts->cfg = NULL; /* only the seeding reads it; a reload (SIGHUP) frees that config */
    token_client_set_observer(tc, on_obtained, ts);
    token_client_set_refresh_ops(tc, &refresh_ops, ts);
    token_client_set_store_ops(tc, &store_ops, ts);
    return ts;
}

struct token_store *token_store_attach(struct token_client *tc, const struct config *cfg,
                                       struct store *st, struct secretbox *box)
{
    return attach(tc, cfg, st, box);
}

struct token_store *token_store_attach_unseeded(struct token_client *tc, struct store *st,
                                                struct secretbox *box)
{
    return attach(tc, NULL, st, box);
}

void token_store_detach(struct token_store **tsp)
{
    if (!tsp || !*tsp)
        return;
    token_client_set_observer((*tsp)->tc, NULL, NULL);
    token_client_set_refresh_ops((*tsp)->tc, NULL, NULL);
    token_client_set_store_ops((*tsp)->tc, NULL, NULL);
    free(*tsp);
    *tsp = NULL;
}

/* ---- a new delegated authorization ---- */

/* The authorization's access token, sealed into the tokens table under the user's principal:
 * the gateway's first login of the user needs no request to the IdP. */
static enum store_status put_access_token(struct store *st, const struct secretbox *box,
                                          const struct new_authorization *a, const char *principal)
{
    const char *scope = a->p->scope ? a->p->scope : "";
    char *ad = token_store_context(a->p->name, principal, scope);
    char credential[TOKEN_FINGERPRINT_SIZE];
    token_fingerprint(a->p, credential); /* check-config compares it with the configured one */
    struct token_record t = {.provider = a->p->name,
                             .principal = (char *)principal,
                             .scope = (char *)scope,
                             .expires_at = (int64_t)time(NULL) + a->expires_in,
                             .credential = credential};
    t.sealed = secretbox_seal(box, ad, a->access, a->access_len, &t.sealed_len);
    enum store_status s = t.sealed ? store_token_put(st, &t) : STORE_ERROR;
    free(t.sealed);
    free(ad);
    return s;
}

enum store_status token_store_save_authorization(struct store *st, const struct secretbox *box,
                                                 const struct new_authorization *a)
{
    if (store_begin(st) != STORE_OK)
        return STORE_ERROR;
    char *principal = grant_store_principal(a->user);
    /* Access tokens of an earlier authorization may belong to another account. */
    enum store_status s = store_token_delete_principal(st, principal);
    if (s != STORE_ERROR &&
        (grant_store_save(st, box, a->p->name, a->user, a->refresh, a->refresh_len) != 0 ||
         (a->access && put_access_token(st, box, a, principal) != STORE_OK) ||
         store_audit_add(st, "authorized", a->user, a->p->name, a->how) != STORE_OK ||
         store_commit(st) != STORE_OK))
        s = STORE_ERROR;
    free(principal);
    if (s == STORE_ERROR) {
        store_rollback(st);
        return STORE_ERROR;
    }
    return STORE_OK;
}
