/* What an administrator does about a refused upstream login (mailgate token test), in one
 * sentence, from what we know: the token's claims (app-only roles, delegated scopes, or an
 * opaque token such as Google's), the protocol, the mailbox and the server's reply. Pure: no
 * I/O. */
#ifndef MG_PROBE_ADVICE_H
#define MG_PROBE_ADVICE_H

#include <stddef.h>

#include <jansson.h>

#include "proto.h"

/* How an upstream login ended: mailgate token test (cli/probe.c) and the broker's login log. */
enum probe_outcome {
    PROBE_WORKS = 0,       /* the server accepted the token */
    PROBE_REFUSED = 1,     /* the server refused the token (permissions, mailbox rights) */
    PROBE_UNAVAILABLE = 2, /* connect, TLS, protocol error, timeout, temporary failure */
};

struct probe_facts {
    enum mg_proto proto;
    enum probe_outcome outcome;
    const json_t *claims; /* the access token's claims; NULL for an opaque token */
    const char *mailbox;
    const char *user;  /* the local user name (for "mailgate user authorize"), or NULL */
    const char *reply; /* the server's last reply ("" when none) */
};

/* The fix for a refused login, one sentence ending in '.', into buf (always NUL-terminated);
 * "" when the login worked or the server was unavailable (the reply says enough then). */
void probe_advice(const struct probe_facts *f, char *buf, size_t size);

#endif
