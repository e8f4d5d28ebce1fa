/* Delegated authorizations at rest: a user's refresh token at a provider, sealed (secretbox.h)
 * under the associated data "refresh:PROVIDER:NAME" (NAME lower case, so that a sealed token
 * cannot be moved to another user or provider) and kept in the store's grants table. Used by
 * the broker (redeeming and rotating refresh tokens) and by "mailgate user authorize". */
#ifndef MG_GRANT_STORE_H
#define MG_GRANT_STORE_H

#include <stddef.h>

#include "store.h"

struct secretbox;

/* The user's refresh token at the provider, opened (malloc'd NUL-terminated, caller wipes);
 * NULL when there is none, it needs authorization, or it cannot be opened (logged). */
char *grant_store_load(struct store *st, const struct secretbox *box, const char *provider,
                       const char *user, size_t *len);
/* Seals and stores it, state authorized, replacing the previous one in one statement (a crash
 * leaves the old or the new token). 0 or -1 (logged). */
int grant_store_save(struct store *st, const struct secretbox *box, const char *provider,
                     const char *user, const char *refresh, size_t len);
/* The IdP refused it: state needs_authorization (refresh token dropped), audit event
 * "refresh_token_revoked" with the reason, a log_warn line. */
void grant_store_revoke(struct store *st, const char *provider, const char *user,
                        const char *reason);
/* Deletes every grant of the user and every cached token of its principal (inside the
 * caller's transaction, if any). STORE_OK when something was deleted, STORE_NOT_FOUND when
 * there was nothing, STORE_ERROR. */
enum store_status grant_store_forget(struct store *st, const char *user);
/* "refresh:PROVIDER:NAME" with NAME in lower case (malloc'd). */
char *grant_store_context(const char *provider, const char *user);
/* "user:NAME" with NAME in lower case (malloc'd): the principal of a user's cached access
 * tokens in the tokens table. */
char *grant_store_principal(const char *user);

#endif
