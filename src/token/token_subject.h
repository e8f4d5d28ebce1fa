/* Whose token a login needs, by the provider's flow: shared by the broker (each login) and the
 * CLI (token get --user, token test), so that both ask the token client for the same cache
 * entry. */
#ifndef MG_TOKEN_SUBJECT_H
#define MG_TOKEN_SUBJECT_H

#include <stddef.h>

#include "config.h"
#include "token.h"

/* Fills out for the provider's flow and returns its principal (malloc'd; out->principal is NOT
 * set: the caller points it at the returned string, or at its own copy):
 *   client_credentials: the app's principal (user, mailbox and password unused)
 *   delegated:          "user:NAME" (user's refresh token)
 *   service_account:    "mailbox:MAILBOX", subject = mailbox
 *   password:           the keyed-hash principal of (user, password), subject = mailbox,
 *                       out->password = password (not copied: keep it until the request).
 * The strings in out point at the arguments. */
char *token_subject_for(const struct provider_conf *p, const char *user, const char *mailbox,
                        const char *password, size_t len, struct token_subject *out);

#endif
