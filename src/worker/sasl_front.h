/* The client's side of SASL before login, shared by every protocol (session core): the
 * mechanisms PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), the continuation answers
 * ("*" cancels), strict base64, the authzid rule, and the start of the login. The protocol only
 * says the words: its command, its continuation ("+ ", "334 ") and its replies to each result. */
#ifndef MG_SASL_FRONT_H
#define MG_SASL_FRONT_H

#include <stddef.h>

#include "ipc.h"
#include "session.h"

enum sasl_front_mech { SASL_MECH_PLAIN = 1, SASL_MECH_LOGIN = 2 };

enum sasl_front_result {
    SASL_FRONT_WAIT,        /* no complete answer line yet */
    SASL_FRONT_CONTINUE,    /* send a continuation with sasl_front_prompt(), read the answer */
    SASL_FRONT_LOGIN,       /* session_login() has started the login */
    SASL_FRONT_UNSUPPORTED, /* a mechanism that is not offered */
    SASL_FRONT_TOO_LONG,    /* the answer line was too long (the rest of it is dropped) */
    SASL_FRONT_CANCELED,    /* the client answered "*" */
    SASL_FRONT_UNDECODABLE, /* not strict base64; for LOGIN also an empty field or a NUL */
    SASL_FRONT_MALFORMED,   /* PLAIN: not "authzid NUL authcid NUL passwd", or too long */
    SASL_FRONT_OTHER_USER,  /* PLAIN: the authzid names somebody else */
    SASL_FRONT_REFUSED      /* user name or password too long to be anybody's */
};

enum sasl_front_step {
    SASL_STEP_NONE,
    SASL_STEP_PLAIN,      /* waiting for the PLAIN message */
    SASL_STEP_LOGIN_USER, /* waiting for the user name */
    SASL_STEP_LOGIN_PASS  /* waiting for the password */
};

struct sasl_front {
    enum sasl_front_step step;
    char user[IPC_USER_MAX]; /* LOGIN: the user name until the password comes */
};

/* The client asked for mechanism mech (one of mechs, a set of enum sasl_front_mech), with an
 * initial response ir (NULL: none). */
enum sasl_front_result sasl_front_start(struct session *s, struct sasl_front *f, unsigned mechs,
                                        const char *mech, size_t mech_len, const char *ir,
                                        size_t ir_len);
/* The client's answer line to a continuation. */
enum sasl_front_result sasl_front_answer(struct session *s, struct sasl_front *f, const char *line,
                                         size_t len);
/* Reads the answer line (at most size-1 bytes) with session_read_line() and handles it. */
enum sasl_front_result sasl_front_read(struct session *s, struct sasl_front *f, size_t size);
/* The base64 prompt of the continuation ("" for PLAIN). */
const char *sasl_front_prompt(const struct sasl_front *f);
/* Ends the exchange (a too long line, STARTTLS, the state freed); wipes the user name. */
void sasl_front_reset(struct sasl_front *f);

#endif
