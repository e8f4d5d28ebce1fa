/* [tls] policy applied to a server SSL_CTX: see tls_policy.h. */
#include "tls_policy.h"

#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "util.h"

int tls_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    MG_UNUSED(buf), MG_UNUSED(size), MG_UNUSED(rwflag), MG_UNUSED(userdata);
    return 0; /* an encrypted key fails to load instead of prompting on a terminal */
}

const char *tls_openssl_reason(void)
{
    const char *reason = ERR_reason_error_string(ERR_peek_error());
    return reason ? reason : "unknown error";
}

__attribute__((format(printf, 3, 4))) static int fail(struct tls_policy_failure *why,
                                                      const char *key, const char *fmt, ...)
{
    why->key = key;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof why->message, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return -1;
}

static int set_protocols(SSL_CTX *ctx, const struct tls_conf *conf, struct tls_policy_failure *why)
{
    int min = conf->min_version == MG_TLS_VERSION_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1)
        return fail(why, "min_version", "cannot set the minimum version: %s", tls_openssl_reason());
    const char *ciphers = conf->ciphers ? conf->ciphers : TLS_DEFAULT_CIPHERS;
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
        return fail(why, "ciphers", "'%s' selects no TLS 1.2 cipher suite", ciphers);
    /* Our order (forward secrecy, AEAD, strongest first) rather than whatever the client
     * lists first. */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    return 0;
}

static bool current_certificate_is_ecdsa(SSL_CTX *ctx)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    EVP_PKEY *key = cert ? X509_get0_pubkey(cert) : NULL;
    return key && EVP_PKEY_is_a(key, "EC");
}

/* One certificate chain and its key; OpenSSL files it under the key's type, so an RSA and an
 * ECDSA pair live side by side in one context. */
static int use_pair(SSL_CTX *ctx, const char *cert_key, const char *cert, const char *pkey_key,
                    const char *pkey, struct tls_policy_failure *why)
{
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return fail(why, cert_key, "cannot load the certificate chain %s: %s", cert,
                    tls_openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(ctx, pkey, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH)
        return fail(why, pkey_key, "cannot use the private key %s: %s", pkey, tls_openssl_reason());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(why, pkey_key, "the private key %s does not match the certificate %s", pkey,
                    cert);
    ERR_clear_error();
    return 0;
}

static int use_certificates(SSL_CTX *ctx, const struct tls_conf *conf,
                            struct tls_policy_failure *why)
{
    if (use_pair(ctx, "certificate", conf->certificate, "private_key", conf->private_key, why))
        return -1;
    if (!conf->ecdsa_certificate)
        return 0;
    /* Two ECDSA certificates would share one slot: the second would silently replace the
     * first. */
    if (current_certificate_is_ecdsa(ctx))
        return fail(why, "certificate",
                    "%s is an ECDSA certificate; with ecdsa_certificate set, certificate must "
                    "be the RSA one",
                    conf->certificate);
    if (use_pair(ctx, "ecdsa_certificate", conf->ecdsa_certificate, "ecdsa_private_key",
                 conf->ecdsa_private_key, why))
        return -1;
    if (!current_certificate_is_ecdsa(ctx))
        return fail(why, "ecdsa_certificate", "%s is not an ECDSA certificate",
                    conf->ecdsa_certificate);
    return 0;
}

int tls_policy_apply(SSL_CTX *ctx, const struct tls_conf *conf, struct tls_policy_failure *why)
{
    why->key = NULL;
    why->message[0] = '\0';
    SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
    if (set_protocols(ctx, conf, why) != 0)
        return -1;
    return use_certificates(ctx, conf, why);
}

bool tls_policy_ciphers_valid(const char *list)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return false;
    /* OpenSSL refuses a list without any TLS 1.2 suite (the TLS 1.3 ones are set apart). */
    bool ok = SSL_CTX_set_cipher_list(ctx, list) == 1;
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return ok;
}
