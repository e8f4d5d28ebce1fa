/* The TLS policy towards clients ([tls]): protocol versions, TLS 1.2 cipher suites and the
 * certificates, applied to a server SSL_CTX. One function for both users, so that what
 * `check-config` (and every config load) accepts is exactly what the workers will run: the
 * config check applies it to a throwaway context, tls.c to the workers' real one.
 *
 * Defaults: TLS 1.2 and 1.3; TLS 1.2 only with ECDHE key exchange and AEAD ciphers (AES-GCM,
 * ChaCha20-Poly1305), so every session has forward secrecy and no CBC/SHA-1 suite is offered;
 * TLS 1.3 with OpenSSL's suites (all of them are ECDHE/AEAD); the server's order of suites wins.
 * Up to two certificates: `certificate` (RSA or ECDSA) and `ecdsa_certificate` (ECDSA, with
 * an RSA `certificate`); OpenSSL presents the one the client's signature algorithms allow. */
#ifndef MG_TLS_POLICY_H
#define MG_TLS_POLICY_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "config.h"

/* Mozilla's "intermediate" TLS 1.2 suites: ECDHE, then AES-GCM or ChaCha20-Poly1305. */
#define TLS_DEFAULT_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Why tls_policy_apply() failed: the [tls] key at fault ("certificate", "private_key",
 * "ecdsa_certificate", "ecdsa_private_key", "ciphers"; NULL: the context itself) and what is
 * wrong, as one sentence without the key's name. */
struct tls_policy_failure {
    const char *key;
    char message[512];
};

/* Sets versions, suites, server preference and loads each configured certificate with its
 * key, checking that they match and that `ecdsa_certificate` is ECDSA while `certificate` is
 * not then. An encrypted private key fails instead of prompting. 0, or -1 with *why filled. */
int tls_policy_apply(SSL_CTX *ctx, const struct tls_conf *conf, struct tls_policy_failure *why);

/* A TLS 1.2 cipher list (OpenSSL syntax) selects at least one TLS 1.2 suite. */
bool tls_policy_ciphers_valid(const char *list);

/* OpenSSL helpers shared with the other PEM readers of the config. */
/* pem_password_cb that refuses: an encrypted key fails to load instead of prompting. */
int tls_no_passphrase(char *buf, int size, int rwflag, void *userdata);
/* The reason of the first error in OpenSSL's queue, or "unknown error". */
const char *tls_openssl_reason(void);

#endif
