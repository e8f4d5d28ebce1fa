/* A scripted HTTPS token endpoint for unit tests of the token client: a thread serving one
 * request per connection on 127.0.0.1 with a fresh self-signed certificate (SAN IP:127.0.0.1),
 * answering each request with the next queued answer (HTTP 500 when none is queued) and
 * recording every request body. */
#ifndef MG_TEST_FAKE_IDP_H
#define MG_TEST_FAKE_IDP_H

#include <stddef.h>

struct fake_idp;

struct fake_idp *fake_idp_start(void);
void fake_idp_stop(struct fake_idp **f);

const char *fake_idp_url(const struct fake_idp *f);     /* https://127.0.0.1:PORT/token */
const char *fake_idp_ca_file(const struct fake_idp *f); /* PEM of the server's certificate */

/* Queues the answer to a future request (body: JSON text, copied). */
void fake_idp_push(struct fake_idp *f, int status, const char *body);
/* Requests answered so far, and a copy of the body of request i (malloc'd, NULL if none). */
size_t fake_idp_requests(struct fake_idp *f);
char *fake_idp_body(struct fake_idp *f, size_t i);

/* The answer of a successful token request. */
#define FAKE_IDP_TOKEN(token, expires_in)                                                          \
    "{\"token_type\":\"Bearer\",\"expires_in\":" #expires_in ",\"access_token\":\"" token "\"}"

#endif
