/* Self-signed test certificates (see cert_fixture.h). */
#include "cert_fixture.h"

#include <stdio.h>

#include <openssl/x509v3.h>

static int add_ip_san(X509 *cert, const char *ip)
{
    char value[64];
    snprintf(value, sizeof value, "IP:%s", ip);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, value);
    int ok = san && X509_add_ext(cert, san, -1) == 1;
    X509_EXTENSION_free(san);
    return ok;
}

X509 *test_self_signed_cert(EVP_PKEY *key, const char *cn, const char *ip)
{
    X509 *cert = X509_new();
    if (!cert)
        return NULL;
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, name);
    if ((ip && !add_ip_san(cert, ip)) || X509_sign(cert, key, EVP_sha256()) <= 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}
