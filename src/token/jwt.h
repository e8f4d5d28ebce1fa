/* Signed JWTs (RFC 7523, RFC 7515/7518). Pure: no I/O, no global state.
 *
 * Client assertions: what Entra ID calls certificate credentials. The header carries alg (RS256 or
 * PS256), typ JWT and the certificate's thumbprints x5t (SHA-1) and x5t#S256 (SHA-256), base64url
 * of the DER digest; the claims are aud (the token endpoint), iss = sub (the client id), a unique
 * jti, iat, nbf and a short exp. */
#ifndef MG_JWT_H
#define MG_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "config.h" /* enum jwt_alg: a [provider] setting */

/* "RS256" / "PS256" (exact case, as in JOSE). Returns 0 or -1. */
int jwt_alg_parse(const char *s, enum jwt_alg *out);
const char *jwt_alg_name(enum jwt_alg alg);

/* base64url without padding (RFC 7515 2). Returns a malloc'd NUL-terminated string. */
char *jwt_base64url(const void *data, size_t len);

#define JWT_X5T_SIZE 28      /* 27 characters (20-byte SHA-1) + NUL */
#define JWT_X5T_S256_SIZE 44 /* 43 characters (32-byte SHA-256) + NUL */

/* Thumbprints of a DER certificate. Returns 0, or -1 when hashing fails. */
int jwt_cert_thumbprints(const unsigned char *der, size_t der_len, char x5t[JWT_X5T_SIZE],
                         char x5t_s256[JWT_X5T_S256_SIZE]);

#define JWT_ASSERTION_LIFETIME 600 /* seconds: Microsoft suggests a short-lived assertion */

struct jwt_assertion {
    enum jwt_alg alg;
    EVP_PKEY *key;   /* an RSA private key */
    const char *x5t; /* from jwt_cert_thumbprints */
    const char *x5t_s256;
    const char *client_id; /* iss and sub */
    const char *audience;  /* aud: the token endpoint URL */
    int64_t now;           /* iat and nbf, Unix seconds */
    int64_t lifetime;      /* exp = now + lifetime; 0: JWT_ASSERTION_LIFETIME */
    const char *jti;       /* NULL: a fresh random UUID */
};

/* Builds and signs header.claims.signature. Returns a malloc'd string (the caller wipes and
 * frees it: it is a bearer credential for its lifetime) or NULL with a message in error. */
char *jwt_client_assertion(const struct jwt_assertion *a, char *error, size_t error_size);

/* Google service account assertions (RFC 7523 JWT bearer grant, domain-wide delegation): header
 * alg RS256, typ JWT, kid = the key file's private_key_id; claims iss = client_email, scope, aud
 * = the token endpoint, sub = the mailbox to act as, iat and exp = iat + one hour (Google's
 * maximum). */
#define JWT_SA_LIFETIME 3600

struct jwt_sa_assertion {
    EVP_PKEY *key;            /* the key file's RSA private_key */
    const char *key_id;       /* kid; NULL or "": no kid */
    const char *client_email; /* iss */
    const char *scope;        /* space separated */
    const char *audience;     /* aud: the token endpoint (the key file's token_uri) */
    const char *subject;      /* sub: the mailbox */
    int64_t now;              /* iat, Unix seconds */
};

/* Returns header.claims.signature (malloc'd; the caller wipes and frees it) or NULL with a
 * message in error. */
char *jwt_service_account_assertion(const struct jwt_sa_assertion *a, char *error,
                                    size_t error_size);

#endif
