/* The persistent half of the token cache: every access token the token client obtains is
 * sealed (secretbox.h, AES-256-GCM, associated data "token:PROVIDER:PRINCIPAL:SCOPE") and put
 * into the store; at start, unexpired tokens are loaded back into the token client, so that a
 * restarted gateway serves logins without asking the IdP. */
#ifndef MG_TOKEN_STORE_H
#define MG_TOKEN_STORE_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct provider_conf;
struct secretbox;
struct store;
struct token_client;
struct token_store;

/* Loads the cached tokens of cfg's providers into tc and installs the observer that persists
 * new ones, and the refresh-token hooks (grant_store.h: load, store a rotated one, mark a
 * revoked one "needs authorization" with an audit event). Before each use of the key the box
 * follows its key file, so a running gateway takes up a key rotated by `mailgate secrets
 * rotate-key` (and still opens rows sealed with the previous key). cfg, st, box and tc must outlive
 * the returned handle. */
struct token_store *token_store_attach(struct token_client *tc, const struct config *cfg,
                                       struct store *st, struct secretbox *box);
/* The same hooks without loading the stored tokens: every token comes from the IdP and
 * replaces the stored one (`mailgate token get --fresh`). */
struct token_store *token_store_attach_unseeded(struct token_client *tc, struct store *st,
                                                struct secretbox *box);
void token_store_detach(struct token_store **ts);

/* Seconds a stored token has left: the stored expiry's stored_left, or less when the token is
 * a JWT whose exp claim says so (a token stored under a wrong clock, or a bad one from the
 * IdP). Opaque tokens keep stored_left. Pure. */
int64_t token_store_time_left(const char *token, size_t len, int64_t stored_left, int64_t now);

/* A user's new delegated authorization (mailgate user authorize, the sign-in page). */
struct new_authorization {
    const struct provider_conf *p;
    const char *user; /* the local user name */
    const char *refresh;
    size_t refresh_len;
    const char *access; /* NULL: none (an imported refresh token) */
    size_t access_len;
    int64_t expires_in; /* of the access token, seconds */
    const char *how;    /* the audit event's detail: "device code", "sign-in page", ... */
};
/* Stores it in one transaction: the user's earlier access tokens deleted (they may be another
 * account's), the refresh token sealed (grant_store_save), the access token sealed into the
 * tokens table, the audit event "authorized". STORE_OK, or STORE_ERROR (rolled back; the
 * store's message in store_last_error). */
enum store_status token_store_save_authorization(struct store *st, const struct secretbox *box,
                                                 const struct new_authorization *a);

/* The associated data of a token row: "token:PROVIDER:PRINCIPAL:SCOPE" (malloc'd). */
char *token_store_context(const char *provider, const char *principal, const char *scope);

#endif
