/* The authorization code grant's pure parts (auth_code.h). */
#include "auth_code.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "aadsts.h"
#include "config.h"
#include "form.h"
#include "jwt.h"
#include "util.h"

#define NONCE_BYTES 32
#define AUTHORIZE_FIELDS_MAX 11

_Static_assert((NONCE_BYTES * 4 + 2) / 3 == AUTH_CODE_NONCE_LEN, "base64url length of a nonce");

/* base64url of len bytes into out[AUTH_CODE_NONCE_LEN + 1]; the intermediate copy is wiped. */
static void encode_nonce(const unsigned char *bytes, size_t len, char *out)
{
    char *b64 = jwt_base64url(bytes, len);
    mg_strlcpy(out, b64, AUTH_CODE_NONCE_LEN + 1);
    mg_free_secret(&b64);
}

void auth_code_nonce(char out[AUTH_CODE_NONCE_LEN + 1])
{
    unsigned char bytes[NONCE_BYTES];
    mg_random_bytes(bytes, sizeof bytes);
    encode_nonce(bytes, sizeof bytes, out);
    mg_wipe(bytes, sizeof bytes);
}

int auth_code_challenge(const char *verifier, char out[AUTH_CODE_NONCE_LEN + 1])
{
    if (!verifier || !verifier[0])
        return -1;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)verifier, strlen(verifier), digest);
    encode_nonce(digest, sizeof digest, out);
    return 0;
}

char *auth_code_redirect_uri(const char *public_url)
{
    return mg_printf("%s%s", public_url, AUTH_CODE_CALLBACK_PATH);
}

char *auth_code_authorize_url(const struct provider_conf *p, const char *redirect_uri,
                              const char *state, const char *challenge, const char *login_hint)
{
    if (!p->authorization_endpoint || !p->client_id)
        return NULL;
    struct form_field f[AUTHORIZE_FIELDS_MAX] = {
        {"client_id", p->client_id, 0},
        {"response_type", "code", 0},
        {"redirect_uri", redirect_uri, 0},
        {"response_mode", "query", 0},
        {"scope", p->scope, 0},
        {"state", state, 0},
        {"code_challenge", challenge, 0},
        {"code_challenge_method", "S256", 0},
        {"login_hint", login_hint, 0},
    };
    size_t n = 9;
    if (p->type == MG_PROVIDER_GOOGLE) {
        f[n++] = (struct form_field){"access_type", "offline", 0};
        f[n++] = (struct form_field){"prompt", "consent", 0};
    }
    char *query = form_encode(f, n);
    char *url = mg_printf("%s%c%s", p->authorization_endpoint,
                          strchr(p->authorization_endpoint, '?') ? '&' : '?', query);
    free(query);
    return url;
}

void auth_code_error_words(const char *error, const char *description, char *out, size_t size)
{
    long code = description ? aadsts_find(description, strlen(description)) : 0;
    const char *hint = code ? aadsts_hint(code) : NULL;
    const char *what =
        error && strcmp(error, "access_denied") == 0
            ? "The sign-in was cancelled, or the permissions were declined, at the provider"
        : error && strcmp(error, "temporarily_unavailable") == 0
            ? "The provider cannot sign you in right now: try again in a few minutes"
            : "The provider refused the sign-in";
    char code_text[32] = "";
    if (code)
        snprintf(code_text, sizeof code_text, " (error AADSTS%ld)", code);
    snprintf(out, size, "%s%s.%s%s", what, code_text, hint ? " " : "", hint ? hint : "");
}
