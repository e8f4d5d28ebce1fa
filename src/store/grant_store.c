/* Sealed refresh tokens in the store (see grant_store.h). */
#include "grant_store.h"

#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "secretbox.h"
#include "store.h"
#include "util.h"

/* User names compare without case in the store (ASCII, as SQLite's NOCASE): the associated
 * data must not depend on how the name was typed. */
static char *lower_copy(const char *s)
{
    char *copy = mg_strdup(s);
    for (char *p = copy; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return copy;
}

char *grant_store_context(const char *provider, const char *user)
{
    char *name = lower_copy(user);
    char *ad = mg_printf("refresh:%s:%s", provider, name);
    free(name);
    return ad;
}

char *grant_store_principal(const char *user)
{
    char *name = lower_copy(user);
    char *principal = mg_printf("user:%s", name);
    free(name);
    return principal;
}

char *grant_store_load(struct store *st, const struct secretbox *box, const char *provider,
                       const char *user, size_t *len)
{
    struct grant_record g;
    enum store_status found = store_grant_get(st, user, provider, &g);
    if (found == STORE_ERROR)
        log_warn("cannot read the authorization of %s at provider %s: %s", user, provider,
                 store_last_error(st));
    if (found != STORE_OK || g.state != GRANT_AUTHORIZED || !g.sealed) {
        grant_record_clear(&g);
        return NULL;
    }
    char *ad = grant_store_context(provider, user);
    char *refresh = secretbox_open_blob(box, ad, g.sealed, g.sealed_len, len);
    free(ad);
    if (!refresh)
        log_warn("the refresh token of %s at provider %s cannot be decrypted with the current "
                 "key: the user must be authorized again",
                 user, provider);
    grant_record_clear(&g);
    return refresh;
}

int grant_store_save(struct store *st, const struct secretbox *box, const char *provider,
                     const char *user, const char *refresh, size_t len)
{
    char *ad = grant_store_context(provider, user);
    struct grant_record g = {.user = (char *)user,
                             .provider = (char *)provider,
                             .state = GRANT_AUTHORIZED,
                             .reason = ""};
    g.sealed = secretbox_seal(box, ad, refresh, len, &g.sealed_len);
    free(ad);
    if (!g.sealed) {
        log_error("cannot encrypt the refresh token of %s at provider %s", user, provider);
        return -1;
    }
    enum store_status rc = store_grant_put(st, &g);
    free(g.sealed);
    if (rc != STORE_OK) {
        log_error("cannot store the refresh token of %s at provider %s: %s", user, provider,
                  store_last_error(st));
        return -1;
    }
    return 0;
}

void grant_store_revoke(struct store *st, const char *provider, const char *user,
                        const char *reason)
{
    log_warn("provider %s refused the refresh token of %s (%s): the user needs authorization "
             "again (mailgate user authorize %s)",
             provider, user, reason ? reason : "no reason given", user);
    if (store_grant_set_state(st, user, provider, GRANT_NEEDS_AUTHORIZATION, reason) == STORE_ERROR)
        log_error("cannot mark the authorization of %s at provider %s: %s", user, provider,
                  store_last_error(st));
    if (store_audit_add(st, "refresh_token_revoked", user, provider, reason) != STORE_OK)
        log_error("cannot add an audit event: %s", store_last_error(st));
}

enum store_status grant_store_forget(struct store *st, const char *user)
{
    char *principal = grant_store_principal(user);
    enum store_status grants = store_grant_delete(st, user);
    enum store_status tokens =
        grants == STORE_ERROR ? STORE_ERROR : store_token_delete_principal(st, principal);
    free(principal);
    if (grants == STORE_ERROR || tokens == STORE_ERROR)
        return STORE_ERROR;
    return grants == STORE_OK || tokens == STORE_OK ? STORE_OK : STORE_NOT_FOUND;
}
