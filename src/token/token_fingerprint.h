/* Which credential a token was obtained with, without keeping the credential: a truncated
 * SHA-256 over the provider's name, client_id, tenant and its secret part (the client secret,
 * the certificate and the public half of its key, or the service account's key). Stored with
 * each cached token (token_store.c), compared by the token client before it serves a cached
 * token (a reload with a new secret) and by `mailgate check-config` (cli_credentials.c). */
#ifndef MG_TOKEN_FINGERPRINT_H
#define MG_TOKEN_FINGERPRINT_H

#include <stddef.h>

struct provider_conf;

/* 16 bytes of the digest in hex: enough to tell two credentials apart, too short to serve as
 * a test for guessed secrets beyond what any 128-bit hash allows. */
#define TOKEN_FINGERPRINT_HEX 32
#define TOKEN_FINGERPRINT_SIZE (TOKEN_FINGERPRINT_HEX + 1)

/* p's fingerprint into out ("" when the digest cannot be computed: out of memory). */
void token_fingerprint(const struct provider_conf *p, char out[TOKEN_FINGERPRINT_SIZE]);
/* What the secret part of p's credential is, for messages: "client certificate", "service
 * account key", "client secret" or "client registration" (a public client: only its id). */
const char *token_credential_kind(const struct provider_conf *p);

#endif
