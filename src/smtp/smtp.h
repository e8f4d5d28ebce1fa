/* SMTP submission before AUTH, private to smtp_front.c (client side), smtp_upstream.c (the
 * SASL login at the server) and smtp_caps.c (what the upstream supports, learned by a probe
 * before any client logs in). One struct smtp_state per session; the session core frees it at
 * the switch to relay. */
#ifndef MG_SMTP_H
#define MG_SMTP_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "login_dialog.h"
#include "sasl_front.h"
#include "session.h"
#include "smtp_parser.h"
#include "upstream.h"

#define SMTP_UPSTREAM_MAX_LINES 256 /* server lines during one login or probe */

/* ---- the upstream dialog up to AUTH, shared by the login and the capability probe ----
 *   220 greeting -> EHLO -> [STARTTLS -> 220 -> TLS -> EHLO] -> ready (extensions known)
 * A plain connection without STARTTLS in the EHLO answer is a failure: no token in clear. */
enum smtp_hello_step {
    SMTP_HELLO_GREETING,
    SMTP_HELLO_EHLO,
    SMTP_HELLO_STARTTLS,
    SMTP_HELLO_TLS, /* handshake after STARTTLS */
    SMTP_HELLO_EHLO_TLS,
    SMTP_HELLO_DONE
};

struct smtp_hello {
    enum smtp_hello_step step;
    const char *hostname; /* our EHLO name (the listener's hostname) */
    struct server_lines lines;
    struct smtp_reply reply;
    struct smtp_ehlo_caps caps; /* from the last EHLO answer (after TLS when DONE) */
};

struct smtp_failure {
    enum upstream_failure kind;
    char detail[IPC_REASON_MAX];
};

enum smtp_hello_result { SMTP_HELLO_WAIT, SMTP_HELLO_READY, SMTP_HELLO_FAILED };

void smtp_hello_init(struct smtp_hello *h, const char *hostname);
void smtp_hello_reset(struct smtp_hello *h);
/* The upstream is connected (or its STARTTLS handshake is done). */
enum smtp_hello_result smtp_hello_on_ready(struct smtp_hello *h, struct upstream *u,
                                           struct smtp_failure *err);
/* Reads the next complete reply into h->reply: 1, 0 (need more input) or -1 (err filled). */
int smtp_hello_read_reply(struct smtp_hello *h, struct upstream *u, struct smtp_failure *err);
/* Handles h->reply while step < DONE. After READY, h->caps holds the extensions. After
 * upstream_start_tls() (WAIT with step TLS) no input may be read until on_ready. */
enum smtp_hello_result smtp_hello_on_reply(struct smtp_hello *h, struct upstream *u,
                                           struct smtp_failure *err);

/* ---- capabilities (smtp_caps.c), per worker process ---- */
struct smtp_caps_waiter {
    struct smtp_caps_waiter *prev, *next;
    int queued;
    void (*done)(void *arg); /* the first probe ended: call smtp_caps_get() again */
    void *arg;
};

/* Starts the probes that are due (none known yet, stale after 10 minutes, retry after a
 * failure). Called for every new SMTP session. */
void smtp_caps_prime(struct worker_ctx *w);
/* The extensions every provider's SMTP server supports. Returns 1 (caps filled: what is known,
 * possibly nothing), or 0 while a first probe is still running; then waiter->done is called
 * once it ends, unless smtp_caps_cancel() was called first. */
int smtp_caps_get(struct worker_ctx *w, struct smtp_ehlo_caps *caps,
                  struct smtp_caps_waiter *waiter);
void smtp_caps_cancel(struct smtp_caps_waiter *waiter);
/* A login at provider's SMTP server saw these extensions after TLS: refreshes the cache. */
void smtp_caps_learned(struct worker_ctx *w, const char *provider,
                       const struct smtp_ehlo_caps *caps);

/* ---- login phase state ---- */
enum smtp_front_state {
    SMTP_FRONT_COMMANDS,
    SMTP_FRONT_SASL_CONTINUE, /* sent "334 <prompt>", waiting for the client's base64 line */
    SMTP_FRONT_WAIT_CAPS,     /* EHLO answer held until the first probe ends (bounded) */
    SMTP_FRONT_LOGIN          /* a login is in progress */
};

enum smtp_greeted { SMTP_GREETED_NONE, SMTP_GREETED_HELO, SMTP_GREETED_EHLO };

enum smtp_upstream_state {
    SMTP_UP_IDLE,
    SMTP_UP_HELLO,         /* greeting, EHLO, STARTTLS, EHLO */
    SMTP_UP_AUTH,          /* "AUTH <mechanism>" sent, waiting for "334 " */
    SMTP_UP_AUTH_RESPONSE, /* our base64 line sent */
    SMTP_UP_AUTH_CHALLENGE /* error challenge answered (empty line, or AQ== for OAUTHBEARER) */
};

struct smtp_state {
    struct session *s;
    enum smtp_front_state front;
    enum smtp_greeted greeted;
    uint64_t skip_bytes; /* chunk of a refused BDAT still to swallow */
    struct sasl_front sasl;
    struct smtp_caps_waiter waiter;
    struct event *wait_timer;

    enum smtp_upstream_state up;
    struct smtp_hello hello;
    struct login_sasl upstream_sasl;
};

extern const struct proto_ops smtp_proto_ops;

/* smtp_upstream.c */
void smtp_upstream_ready(struct session *s);
void smtp_upstream_input(struct session *s);
/* Forgets the login dialog (after a failure, or when the state is freed). */
void smtp_upstream_reset(struct smtp_state *st);

/* smtp_front.c: the upstream accepted our token. Answers the client and switches the session
 * to relay; the smtp_state is gone afterwards. */
void smtp_front_logged_in(struct session *s);

#endif
