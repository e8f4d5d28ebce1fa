/* Provider settings kept by the token client, and principals (see token_creds.h, token.h). */
#include "token_creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "config.h"
#include "token.h"
#include "util.h"

#define PASSWORD_KEY_LEN 32

/* ---- principals ---- */

char *token_app_principal(const struct provider_conf *p)
{
    return mg_printf("app:%s@%s", p->client_id ? p->client_id : "", p->tenant ? p->tenant : "");
}

char *token_password_principal(const char *user, const char *password, size_t len)
{
    static unsigned char key[PASSWORD_KEY_LEN];
    static int have_key;
    if (!have_key) {
        mg_random_bytes(key, sizeof key);
        have_key = 1;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof key,
                   (const unsigned char *)(len ? password : ""), len, mac, sizeof mac, &mac_len))
        mac_len = 0; /* the principal still differs from every real one: no cache sharing */
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
    for (size_t i = 0; i < mac_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return mg_printf("password:%s:%s", user ? user : "", mac_len ? hex : "unkeyed");
}

char *token_log_name(const char *principal)
{
    const char *hash = strncmp(principal, "password:", 9) == 0 ? strrchr(principal, ':') : NULL;
    return hash && hash > principal + 8 ? mg_strndup(principal, (size_t)(hash - principal))
                                        : mg_strdup(principal);
}

/* ---- provider settings ---- */

static void replace_setting(char **field, const char *value)
{
    if (*field && value && strcmp(*field, value) == 0)
        return;
    mg_free_secret(field); /* wipes: one of them is the client secret */
    *field = value ? mg_strdup(value) : NULL;
}

/* Keeps a reference to a key of the config (the config may be freed and reloaded). */
static void replace_key(EVP_PKEY **field, EVP_PKEY *key)
{
    if (*field == key)
        return;
    EVP_PKEY_free(*field);
    *field = key && EVP_PKEY_up_ref(key) == 1 ? key : NULL;
}

static void replace_der(struct provider_conf *c, const unsigned char *der, size_t len)
{
    if (c->client_cert_der_len == len && (len == 0 || memcmp(c->client_cert_der, der, len) == 0))
        return;
    free(c->client_cert_der);
    c->client_cert_der = len ? mg_malloc(len) : NULL;
    if (len)
        memcpy(c->client_cert_der, der, len);
    c->client_cert_der_len = len;
}

struct token_creds *token_creds_update(struct token_creds **list, const struct provider_conf *p)
{
    struct token_creds *c;
    for (c = *list; c; c = c->next)
        if (strcmp(c->conf.name, p->name) == 0)
            break;
    if (!c) {
        c = mg_calloc(1, sizeof *c);
        c->conf.name = mg_strdup(p->name);
        c->next = *list;
        *list = c;
    }
    struct provider_conf *k = &c->conf;
    replace_setting(&k->token_endpoint, p->token_endpoint);
    replace_setting(&k->client_id, p->client_id);
    replace_setting(&k->client_secret, p->client_secret);
    if (k->client_secret) /* the cache's own copy: out of core dumps like the config's */
        mg_protect_secret(k->client_secret, strlen(k->client_secret));
    replace_setting(&k->ca_file, p->ca_file);
    replace_setting(&k->client_secret_file, p->client_secret_file);
    replace_setting(&k->client_private_key, p->client_private_key);
    replace_setting(&k->sa_client_email, p->sa_client_email);
    replace_setting(&k->sa_key_id, p->sa_key_id);
    replace_key(&k->client_key, p->client_key);
    replace_key(&k->sa_key, p->sa_key);
    replace_der(k, p->client_cert_der, p->client_cert_der_len);
    k->client_assertion_alg = p->client_assertion_alg;
    token_fingerprint(p, c->fingerprint);
    return c;
}

void token_creds_view(const struct token_creds *c, const char *scope, struct provider_conf *out)
{
    *out = c->conf;
    out->scope = (char *)scope;
}

static void free_creds(struct token_creds *c)
{
    struct provider_conf *k = &c->conf;
    mg_free_secret(&k->client_secret);
    EVP_PKEY_free(k->client_key);
    EVP_PKEY_free(k->sa_key);
    free(k->name);
    free(k->token_endpoint);
    free(k->client_id);
    free(k->ca_file);
    free(k->client_secret_file);
    free(k->client_private_key);
    free(k->client_cert_der);
    free(k->sa_client_email);
    free(k->sa_key_id);
    free(c);
}

void token_creds_free_all(struct token_creds **list)
{
    while (*list) {
        struct token_creds *c = *list;
        *list = c->next;
        free_creds(c);
    }
}
