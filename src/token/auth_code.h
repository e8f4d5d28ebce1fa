/* The OAuth 2.0 authorization code grant with PKCE (RFC 6749 4.1, RFC 7636) for the sign-in
 * page, pure parts: random nonces (state, verifier, the browser cookie), the S256 challenge,
 * the provider's authorize URL and the words a page shows for the provider's error. The token
 * request's body is token_auth_code_body (token.h). */
#ifndef MG_AUTH_CODE_H
#define MG_AUTH_CODE_H

#include <stddef.h>

struct provider_conf;

/* base64url of 32 random bytes (256 bits), the length RFC 7636 4.1 recommends for a verifier. */
#define AUTH_CODE_NONCE_LEN 43
/* The path of the redirect URI under [gateway] public_url. */
#define AUTH_CODE_CALLBACK_PATH "/oauth/callback"

/* A fresh random nonce (state, code verifier, browser binding): AUTH_CODE_NONCE_LEN characters
 * of base64url and a NUL. */
void auth_code_nonce(char out[AUTH_CODE_NONCE_LEN + 1]);

/* RFC 7636 4.2: BASE64URL(SHA256(verifier)) without padding. 0, or -1 for an empty verifier. */
int auth_code_challenge(const char *verifier, char out[AUTH_CODE_NONCE_LEN + 1]);

/* PUBLIC_URL/oauth/callback (malloc'd). */
char *auth_code_redirect_uri(const char *public_url);

/* The provider's authorization_endpoint with client_id, response_type=code, redirect_uri,
 * response_mode=query, scope, state, code_challenge (S256) and login_hint, every value
 * percent-encoded; Google also gets access_type=offline and prompt=consent (its refresh token
 * comes only so). malloc'd, or NULL when the provider has no authorize endpoint or client. */
char *auth_code_authorize_url(const struct provider_conf *p, const char *redirect_uri,
                              const char *state, const char *challenge, const char *login_hint);

/* One or two sentences for an error the provider sent to the callback (error, and its
 * error_description, where only the AADSTS code is read: the rest is the provider's text, which
 * a page should not repeat as it came): access_denied as "declined", others as "refused", and
 * the fix for the code when aadsts.c knows it. */
void auth_code_error_words(const char *error, const char *description, char *out, size_t size);

#endif
