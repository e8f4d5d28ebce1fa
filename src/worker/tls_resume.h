/* Upstream TLS session resumption, per worker: see tls_resume.c for what is kept and why. */
#ifndef MG_TLS_RESUME_H
#define MG_TLS_RESUME_H

#include <openssl/ssl.h>

/* Makes ctx (an upstream context) keep the sessions its connections receive. 0 or -1. */
int tls_resume_enable(SSL_CTX *ctx);

/* Before the handshake of ssl (from a context given to tls_resume_enable): remembers where its
 * new sessions go and offers a stored one for the same scope (the provider), host and port.
 * Returns 1 when a session was offered, 0 otherwise (a full handshake follows). scope NULL:
 * no resumption. */
int tls_resume_offer(SSL *ssl, const char *scope, const char *host, unsigned port);

#endif
