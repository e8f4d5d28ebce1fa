/* Credential fingerprints (see token_fingerprint.h). */
#include "token_fingerprint.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config.h"
#include "util.h"

/* Each field goes in with its length first, so that no two different settings hash alike
 * ("ab" + "c" and "a" + "bc"). */
static int add_field(EVP_MD_CTX *md, const void *data, size_t len)
{
    uint64_t n = len;
    unsigned char be[8];
    for (int i = 7; i >= 0; i--, n >>= 8)
        be[i] = (unsigned char)n;
    return EVP_DigestUpdate(md, be, sizeof be) && (len == 0 || EVP_DigestUpdate(md, data, len));
}

static int add_text(EVP_MD_CTX *md, const char *s)
{
    return add_field(md, s ? s : "", s ? strlen(s) : 0);
}

/* The public half identifies a private key as well as the key itself, and is no secret. */
static int add_public_key(EVP_MD_CTX *md, EVP_PKEY *key)
{
    if (!key)
        return add_field(md, "", 0);
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    int ok = len > 0 && add_field(md, der, (size_t)len);
    OPENSSL_free(der);
    return ok;
}

static int add_credential(EVP_MD_CTX *md, const struct provider_conf *p)
{
    return add_text(md, "mailgate credential fingerprint 1") && add_text(md, p->name) &&
           add_text(md, p->client_id) && add_text(md, p->tenant) &&
           add_text(md, p->client_secret) &&
           add_field(md, p->client_cert_der, p->client_cert_der_len) &&
           add_public_key(md, p->client_key) && add_text(md, p->sa_client_email) &&
           add_text(md, p->sa_key_id) && add_public_key(md, p->sa_key);
}

void token_fingerprint(const struct provider_conf *p, char out[TOKEN_FINGERPRINT_SIZE])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && add_credential(md, p) &&
             EVP_DigestFinal_ex(md, digest, &len) && len * 2 >= TOKEN_FINGERPRINT_HEX;
    EVP_MD_CTX_free(md);
    out[0] = '\0';
    for (size_t i = 0; ok && i < TOKEN_FINGERPRINT_HEX / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    mg_wipe(digest, sizeof digest);
}

const char *token_credential_kind(const struct provider_conf *p)
{
    if (p->client_key || p->client_cert_der_len)
        return "client certificate";
    if (p->sa_key || p->sa_key_id)
        return "service account key";
    return p->client_secret || p->client_secret_file ? "client secret" : "client registration";
}
