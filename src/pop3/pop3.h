/* POP3 before login, private to pop3_front.c (client side) and pop3_upstream.c (the SASL
 * login at the server). Both share one struct pop3_state per session: the session core frees
 * it at the switch to relay. */
#ifndef MG_POP3_H
#define MG_POP3_H

#include <stddef.h>

#include "ipc.h"
#include "login_dialog.h"
#include "pop3_parser.h"
#include "sasl_front.h"
#include "session.h"

#define POP3_UPSTREAM_MAX_LINE 8192 /* one server line during login */
#define POP3_UPSTREAM_MAX_LINES 32  /* server lines during one login */

enum pop3_front_state {
    POP3_FRONT_COMMANDS,      /* reading commands */
    POP3_FRONT_SASL_CONTINUE, /* sent "+ ", waiting for the client's base64 line */
    POP3_FRONT_LOGIN          /* a login is in progress */
};

enum pop3_upstream_state {
    POP3_UP_IDLE,
    POP3_UP_GREETING,
    POP3_UP_STLS,          /* "STLS" sent (plain connection to a port-110 style server) */
    POP3_UP_TLS_HANDSHAKE, /* upgrade in progress */
    POP3_UP_AUTH,          /* "AUTH <mechanism>" sent, waiting for "+ " */
    POP3_UP_RESPONSE,      /* our base64 line sent */
    POP3_UP_CHALLENGE      /* error challenge answered with an empty line, waiting for -ERR */
};

struct pop3_state {
    enum pop3_front_state front;
    char user[IPC_USER_MAX]; /* from USER, waiting for PASS; empty when none */
    struct sasl_front sasl;

    enum pop3_upstream_state up;
    struct server_lines lines;
    struct login_sasl upstream_sasl; /* waits for "+ " */
};

extern const struct proto_ops pop3_proto_ops;

/* pop3_upstream.c */
void pop3_upstream_ready(struct session *s);
void pop3_upstream_input(struct session *s);
/* Forgets the dialog (after a failure, or when the state is freed); wipes the secret. */
void pop3_upstream_reset(struct pop3_state *st);

/* pop3_front.c: the upstream login succeeded. Answers the client and switches the session to
 * relay; the pop3_state is gone afterwards. */
void pop3_front_logged_in(struct session *s);

#endif
