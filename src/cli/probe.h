/* A blocking upstream login probe for `mailgate token test`: connect to a provider's IMAP, POP3
 * or SMTP server (TLS verified exactly like the workers do: CA, host name, SNI), authenticate
 * with SASL XOAUTH2 or OAUTHBEARER, and report what the server said. Used by the CLI only; the
 * gateway's own logins run in the workers' event loops.
 *
 * Each protocol is a small grammar (its commands and how to read a reply); the dialog is the
 * same for all three: greeting, STARTTLS when configured, AUTH command, continuation, our
 * response, then success, failure, or an error challenge that we answer before the failure. */
#ifndef MG_PROBE_H
#define MG_PROBE_H

#include <stddef.h>

#include "config.h"
#include "probe_advice.h" /* enum probe_outcome */
#include "proto.h"

struct probe_login {
    enum mg_proto proto;
    const struct server_addr *server;
    const char *ca_file;         /* NULL: the system trust store */
    const char *mechanism;       /* "XOAUTH2" or "OAUTHBEARER" */
    const char *response;        /* base64 of the initial client response (secret) */
    const char *challenge_reply; /* our answer to an error challenge: "" or "AQ==" */
    int timeout_s;               /* per network operation */
};

struct probe_report {
    enum probe_outcome outcome;
    char stage[32];      /* where it ended: "connect", "tls", "greeting", "starttls", "auth" */
    char reply[256];     /* the server's last reply (sanitised), or the local error */
    char challenge[256]; /* the decoded error challenge, when the server sent one */
};

/* Runs one login. Never logs or reports the response. Returns the outcome (also in out). */
enum probe_outcome probe_run(const struct probe_login *login, struct probe_report *out);

#endif
