/* Signed JWT client assertions (see jwt.h). */
#include "jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "util.h"

#define JWT_SIGNATURE_MAX 2048 /* bytes: RSA keys up to 16384 bits */

int jwt_alg_parse(const char *s, enum jwt_alg *out)
{
    if (strcmp(s, "RS256") == 0)
        *out = JWT_RS256;
    else if (strcmp(s, "PS256") == 0)
        *out = JWT_PS256;
    else
        return -1;
    return 0;
}

const char *jwt_alg_name(enum jwt_alg alg)
{
    return alg == JWT_PS256 ? "PS256" : "RS256";
}

char *jwt_base64url(const void *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = mg_malloc(len / 3 * 4 + 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

static int digest_b64url(const EVP_MD *md, const unsigned char *der, size_t der_len, char *out,
                         size_t out_size)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(der, der_len, digest, &n, md, NULL) != 1)
        return -1;
    char *text = jwt_base64url(digest, n);
    size_t len = mg_strlcpy(out, text, out_size);
    free(text);
    return len < out_size ? 0 : -1;
}

int jwt_cert_thumbprints(const unsigned char *der, size_t der_len, char x5t[JWT_X5T_SIZE],
                         char x5t_s256[JWT_X5T_S256_SIZE])
{
    if (!der || der_len == 0)
        return -1;
    if (digest_b64url(EVP_sha1(), der, der_len, x5t, JWT_X5T_SIZE) != 0 ||
        digest_b64url(EVP_sha256(), der, der_len, x5t_s256, JWT_X5T_S256_SIZE) != 0)
        return -1;
    return 0;
}

static void set_error(char *error, size_t size, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason)
        snprintf(error, size, "%s: %s", what, reason);
    else
        snprintf(error, size, "%s", what);
    ERR_clear_error();
}

/* A random (version 4) UUID, as Microsoft's libraries use for jti. */
static int random_uuid(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

/* base64url(compact JSON of obj); steals obj. NULL when obj is NULL or cannot be dumped. */
static char *encode_json(json_t *obj)
{
    if (!obj)
        return NULL;
    /* Into our own buffer: the broker installs its own jansson allocator (token.c), so what
     * json_dumps returns could not simply be free()d. */
    size_t len = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    char *text = len ? mg_malloc(len) : NULL;
    if (text && json_dumpb(obj, text, len, JSON_COMPACT) != len) {
        free(text);
        text = NULL;
    }
    json_decref(obj);
    if (!text)
        return NULL;
    char *out = jwt_base64url(text, len);
    free(text);
    return out;
}

/* Signs data with SHA-256 and the algorithm's padding; returns the signature length or 0. */
static size_t sign(enum jwt_alg alg, EVP_PKEY *key, const char *data, unsigned char *sig,
                   size_t sig_size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = sig_size;
    int ok = ctx && EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, key) == 1;
    if (ok && alg == JWT_PS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    else if (ok)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    if (ok)
        ok = EVP_DigestSign(ctx, sig, &len, (const unsigned char *)data, strlen(data)) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? len : 0;
}

/* Builds and signs base64url(header).base64url(claims).signature; steals header and claims.
 * what names the token in messages ("client assertion", "service account assertion"). */
static char *sign_jwt(enum jwt_alg alg, EVP_PKEY *key, json_t *header, json_t *claims,
                      const char *what, char *error, size_t error_size)
{
    char *header_text = encode_json(header);
    char *claims_text = encode_json(claims);
    if (!header_text || !claims_text) {
        free(header_text);
        free(claims_text);
        snprintf(error, error_size, "cannot encode the %s", what);
        return NULL;
    }
    char *input = mg_printf("%s.%s", header_text, claims_text);
    free(header_text);
    free(claims_text);
    unsigned char sig[JWT_SIGNATURE_MAX];
    size_t sig_len = sign(alg, key, input, sig, sizeof sig);
    if (sig_len == 0) {
        char what_sign[64];
        snprintf(what_sign, sizeof what_sign, "cannot sign the %s", what);
        set_error(error, error_size, what_sign);
        free(input);
        return NULL;
    }
    char *sig_text = jwt_base64url(sig, sig_len);
    char *jwt = mg_printf("%s.%s", input, sig_text);
    free(sig_text);
    free(input);
    return jwt;
}

/* The key must be RSA and its signature fit our buffer. what: "client" or "service account". */
static int check_rsa_key(EVP_PKEY *key, const char *what, char *error, size_t error_size)
{
    if (!key || !EVP_PKEY_is_a(key, "RSA")) {
        snprintf(error, error_size, "the %s private key is not an RSA key", what);
        return -1;
    }
    if ((size_t)EVP_PKEY_get_size(key) > JWT_SIGNATURE_MAX) {
        snprintf(error, error_size, "the %s private key is too large", what);
        return -1;
    }
    return 0;
}

char *jwt_client_assertion(const struct jwt_assertion *a, char *error, size_t error_size)
{
    error[0] = '\0';
    if (check_rsa_key(a->key, "client", error, error_size) != 0)
        return NULL;
    if (!a->x5t || !a->x5t_s256 || !a->client_id || !a->audience) {
        snprintf(error, error_size, "incomplete client assertion parameters");
        return NULL;
    }
    char jti[37];
    if (!a->jti && random_uuid(jti) != 0) {
        set_error(error, error_size, "no random bytes for jti");
        return NULL;
    }
    json_int_t now = (json_int_t)a->now;
    json_int_t exp = now + (a->lifetime > 0 ? a->lifetime : JWT_ASSERTION_LIFETIME);
    json_t *header = json_pack("{s:s, s:s, s:s, s:s}", "alg", jwt_alg_name(a->alg), "typ", "JWT",
                               "x5t", a->x5t, "x5t#S256", a->x5t_s256);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", a->audience, "iss",
                               a->client_id, "sub", a->client_id, "jti", a->jti ? a->jti : jti,
                               "iat", now, "nbf", now, "exp", exp);
    return sign_jwt(a->alg, a->key, header, claims, "client assertion", error, error_size);
}

char *jwt_service_account_assertion(const struct jwt_sa_assertion *a, char *error,
                                    size_t error_size)
{
    error[0] = '\0';
    if (check_rsa_key(a->key, "service account", error, error_size) != 0)
        return NULL;
    if (!a->client_email || !a->scope || !a->audience || !a->subject) {
        snprintf(error, error_size, "incomplete service account assertion parameters");
        return NULL;
    }
    json_int_t now = (json_int_t)a->now;
    json_t *header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    if (header && a->key_id && a->key_id[0])
        json_object_set_new(header, "kid", json_string(a->key_id));
    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", a->client_email, "scope", a->scope,
                  "aud", a->audience, "sub", a->subject, "iat", now, "exp", now + JWT_SA_LIFETIME);
    return sign_jwt(JWT_RS256, a->key, header, claims, "service account assertion", error,
                    error_size);
}
