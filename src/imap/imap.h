/* IMAP before login, private to imap_front.c (client side) and imap_upstream.c (the SASL
 * login at the server). Both share one struct imap_state per session: the session core frees
 * it at the switch to relay. */
#ifndef MG_IMAP_H
#define MG_IMAP_H

#include <stddef.h>

#include "imap_parser.h"
#include "login_dialog.h"
#include "sasl_front.h"
#include "session.h"

#define IMAP_UPSTREAM_MAX_LINE 8192 /* one server line during login */
#define IMAP_UPSTREAM_MAX_LINES 64  /* server lines during one login */
#define IMAP_SASL_LINE_MAX 8192     /* a client's AUTHENTICATE continuation line */

enum imap_front_state {
    IMAP_FRONT_COMMANDS,      /* reading commands */
    IMAP_FRONT_SASL_CONTINUE, /* sent "+ ", waiting for the client's base64 line */
    IMAP_FRONT_LOGIN          /* a login is in progress */
};

enum imap_upstream_state {
    IMAP_UP_IDLE,
    IMAP_UP_GREETING,
    IMAP_UP_STARTTLS,       /* "A0 STARTTLS" sent */
    IMAP_UP_TLS_HANDSHAKE,  /* upgrade in progress */
    IMAP_UP_CAPABILITY,     /* "A0 CAPABILITY" sent */
    IMAP_UP_AUTH,           /* "A1 AUTHENTICATE <mechanism>" sent */
    IMAP_UP_POST_CAPABILITY /* "A2 CAPABILITY" sent after A1 OK */
};

struct imap_state {
    struct imap_parser *parser;
    enum imap_front_state front;
    char tag[IMAP_MAX_TAG + 1]; /* of the command being answered later */
    struct sasl_front sasl;

    enum imap_upstream_state up;
    struct server_lines lines;
    char *caps;                      /* the server's latest capability list */
    struct login_sasl upstream_sasl; /* waits for "+" when the server has no SASL-IR */
};

extern const struct proto_ops imap_proto_ops;

/* imap_upstream.c */
void imap_upstream_ready(struct session *s);
void imap_upstream_input(struct session *s);
/* Forgets the dialog (after a failure, or when the state is freed); wipes the secret. */
void imap_upstream_reset(struct imap_state *st);

/* imap_front.c: the upstream login succeeded with these capabilities (may be empty). Answers
 * the client and switches the session to relay; the imap_state is gone afterwards. */
void imap_front_logged_in(struct session *s, const char *caps, size_t caps_len);

#endif
