/* A self-signed test certificate (unit tests only): the TLS server of fake_idp.c, the config
 * tests' listener and client certificates, the JWT thumbprint tests. */
#ifndef MG_CERT_FIXTURE_H
#define MG_CERT_FIXTURE_H

#include <openssl/x509.h>

/* Valid from a minute ago for an hour, subject and issuer CN=cn, signed with key (SHA-256);
 * with ip (e.g. "127.0.0.1") also a subjectAltName IP entry. NULL when OpenSSL fails. */
X509 *test_self_signed_cert(EVP_PKEY *key, const char *cn, const char *ip);

#endif
