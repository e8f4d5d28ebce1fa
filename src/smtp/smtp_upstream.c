/* The SMTP login at the upstream server with SASL XOAUTH2 or OAUTHBEARER (MECH below), in the
 * two-step form every server takes (Dovecot's submission-login refuses AUTH lines longer than
 * ~1 KiB, and an Entra token makes the one-line form ~2.5 KB):
 *
 *   220 greeting -> EHLO -> [STARTTLS -> 220 -> TLS -> EHLO]  (smtp_hello, shared with the probe)
 *   AUTH MECH -> "334 " -> base64 line -> 235                 success: the client gets 235
 *   "334 <base64 json>" after our line = error challenge -> empty line or AQ== -> 535
 *
 * Server replies are parsed with smtp_parser (pure, fuzzed) and bounded in length and number. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "smtp.h"
#include "util.h"

static void set_failure(struct smtp_failure *err, enum upstream_failure kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_failure(struct smtp_failure *err, enum upstream_failure kind, const char *fmt, ...)
{
    err->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
}

static void send_ehlo(struct smtp_hello *h, struct upstream *u)
{
    upstream_send(u, "EHLO ");
    upstream_send(u, h->hostname);
    upstream_send(u, "\r\n");
}

/* A reply that ends the dialog: 4xx (and 421) is "try later", anything else a protocol error. */
static enum smtp_hello_result unexpected(const struct smtp_reply *r, const char *what,
                                         struct smtp_failure *err)
{
    set_failure(err, r->code / 100 == 4 ? UPSTREAM_TEMP_FAILURE : UPSTREAM_PROTOCOL_ERROR,
                "%s: %d %.*s", what, r->code, login_text_len(r->text_len), r->text);
    return SMTP_HELLO_FAILED;
}

void smtp_hello_init(struct smtp_hello *h, const char *hostname)
{
    smtp_hello_reset(h);
    h->hostname = hostname;
    server_lines_start(&h->lines, SMTP_LINE_MAX, SMTP_UPSTREAM_MAX_LINES);
    h->step = SMTP_HELLO_GREETING;
}

void smtp_hello_reset(struct smtp_hello *h)
{
    server_lines_stop(&h->lines);
    memset(h, 0, sizeof *h);
}

enum smtp_hello_result smtp_hello_on_ready(struct smtp_hello *h, struct upstream *u,
                                           struct smtp_failure *err)
{
    if (h->step == SMTP_HELLO_TLS) {
        if (!upstream_is_tls(u)) {
            set_failure(err, UPSTREAM_TLS_FAILED, "TLS not active after STARTTLS");
            return SMTP_HELLO_FAILED;
        }
        h->step = SMTP_HELLO_EHLO_TLS;
        send_ehlo(h, u);
    }
    return SMTP_HELLO_WAIT; /* GREETING: the server speaks first */
}

int smtp_hello_read_reply(struct smtp_hello *h, struct upstream *u, struct smtp_failure *err)
{
    if (h->reply.complete || h->reply.lines == 0)
        smtp_reply_init(&h->reply);
    for (;;) {
        size_t len = 0;
        int r =
            server_lines_read(&h->lines, upstream_input(u), &len, err->detail, sizeof err->detail);
        if (r <= 0) {
            err->kind = UPSTREAM_PROTOCOL_ERROR;
            return r;
        }
        switch (smtp_reply_feed(&h->reply, h->lines.buf, len)) {
        case SMTP_REPLY_MORE:
            continue;
        case SMTP_REPLY_DONE:
            return 1;
        case SMTP_REPLY_ERROR:
            break;
        }
        char q[LOGIN_REMOTE_TEXT_MAX + 16];
        set_failure(err, UPSTREAM_PROTOCOL_ERROR, "invalid reply line %s",
                    log_quote(q, sizeof q, h->lines.buf, len));
        return -1;
    }
}

static enum smtp_hello_result on_ehlo_reply(struct smtp_hello *h, struct upstream *u,
                                            struct smtp_failure *err)
{
    const struct smtp_reply *r = &h->reply;
    if (r->code != 250)
        return unexpected(r, "EHLO refused", err);
    smtp_ehlo_parse(r->text, r->text_len, &h->caps);
    if (upstream_is_tls(u)) {
        h->step = SMTP_HELLO_DONE;
        return SMTP_HELLO_READY;
    }
    if (!h->caps.starttls) {
        set_failure(err, UPSTREAM_PROTOCOL_ERROR,
                    "the server does not offer STARTTLS (a token is never sent in clear)");
        return SMTP_HELLO_FAILED;
    }
    h->step = SMTP_HELLO_STARTTLS;
    upstream_send(u, "STARTTLS\r\n");
    return SMTP_HELLO_WAIT;
}

enum smtp_hello_result smtp_hello_on_reply(struct smtp_hello *h, struct upstream *u,
                                           struct smtp_failure *err)
{
    const struct smtp_reply *r = &h->reply;
    switch (h->step) {
    case SMTP_HELLO_GREETING:
        if (r->code != 220)
            return unexpected(r, "greeting", err);
        h->step = SMTP_HELLO_EHLO;
        send_ehlo(h, u);
        return SMTP_HELLO_WAIT;
    case SMTP_HELLO_EHLO:
    case SMTP_HELLO_EHLO_TLS:
        return on_ehlo_reply(h, u, err);
    case SMTP_HELLO_STARTTLS:
        if (r->code != 220)
            return unexpected(r, "STARTTLS refused", err);
        h->step = SMTP_HELLO_TLS;
        /* Discards anything the server sent after its 220 (injection). */
        if (upstream_start_tls(u) != 0) {
            set_failure(err, UPSTREAM_TLS_FAILED, "cannot start TLS");
            return SMTP_HELLO_FAILED;
        }
        return SMTP_HELLO_WAIT;
    case SMTP_HELLO_TLS:
    case SMTP_HELLO_DONE:
        break;
    }
    set_failure(err, UPSTREAM_PROTOCOL_ERROR, "unexpected reply %d", r->code);
    return SMTP_HELLO_FAILED;
}

/* ---- the login ---- */

static void fail(struct session *s, const struct smtp_failure *err)
{
    session_upstream_failed(s, err->kind, err->detail);
}

void smtp_upstream_reset(struct smtp_state *st)
{
    smtp_hello_reset(&st->hello);
    login_sasl_reset(&st->upstream_sasl);
    st->up = SMTP_UP_IDLE;
}

void smtp_upstream_ready(struct session *s)
{
    struct smtp_state *st = s->proto;
    struct smtp_failure err;
    if (st->up == SMTP_UP_IDLE) {
        smtp_upstream_reset(st);
        smtp_hello_init(&st->hello, s->listener->conf->hostname);
        st->up = SMTP_UP_HELLO;
    }
    if (smtp_hello_on_ready(&st->hello, s->upstream, &err) == SMTP_HELLO_FAILED)
        fail(s, &err);
}

/* Exchange's reasons worth a hint in the log (lessons from sasl-xoauth2's users). */
static const char *rejection_hint(const struct smtp_reply *r)
{
    if (strcmp(r->enhanced, "5.7.139") == 0)
        return " (SMTP AUTH is disabled for the tenant or the mailbox)";
    if (strcmp(r->enhanced, "5.7.3") == 0)
        return " (usually a token for another mailbox, or no permission on it)";
    return "";
}

static void auth_refused(struct session *s, struct smtp_state *st, const struct smtp_reply *r)
{
    session_upstream_failedf(s, r->code / 100 == 4 ? UPSTREAM_TEMP_FAILURE : UPSTREAM_AUTH_REJECTED,
                             "AUTH %s: %d %.*s%s%s", session_sasl_mechanism(s), r->code,
                             login_text_len(r->text_len), r->text, rejection_hint(r),
                             login_sasl_note(&st->upstream_sasl));
}

/* The server asked for our response: the token goes out here and is wiped right after. */
static void send_response(struct session *s, struct smtp_state *st)
{
    if (login_sasl_build(s, &st->upstream_sasl) != 0)
        return;
    login_sasl_send(s, &st->upstream_sasl);
    st->up = SMTP_UP_AUTH_RESPONSE;
}

static void on_hello_ready(struct session *s, struct smtp_state *st)
{
    smtp_caps_learned(s->w, s->provider, &st->hello.caps);
    unsigned mech = s->sasl == MG_SASL_OAUTHBEARER ? SMTP_AUTH_OAUTHBEARER : SMTP_AUTH_XOAUTH2;
    if (!(st->hello.caps.auth & mech)) {
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "the server does not offer AUTH %s",
                                 session_sasl_mechanism(s));
        return;
    }
    st->up = SMTP_UP_AUTH;
    login_sasl_say(s, "AUTH ", "\r\n");
}

static void on_auth_reply(struct session *s, struct smtp_state *st, const struct smtp_reply *r)
{
    struct smtp_failure err;
    switch (st->up) {
    case SMTP_UP_AUTH:
        if (r->code == 334)
            send_response(s, st);
        else if (r->code / 100 == 4)
            auth_refused(s, st, r);
        else if (unexpected(r, "AUTH not accepted", &err) == SMTP_HELLO_FAILED)
            fail(s, &err); /* nothing of ours was rejected yet: not a credentials problem */
        return;
    case SMTP_UP_AUTH_RESPONSE:
        if (r->code == 235) {
            smtp_front_logged_in(s); /* st is gone after this */
            return;
        }
        if (r->code == 334) { /* an error challenge: the 535 follows */
            st->up = SMTP_UP_AUTH_CHALLENGE;
            login_sasl_challenge(s, &st->upstream_sasl, r->text, r->text_len);
            return;
        }
        auth_refused(s, st, r);
        return;
    case SMTP_UP_AUTH_CHALLENGE:
        if (r->code / 100 == 4 || r->code / 100 == 5)
            auth_refused(s, st, r);
        else if (unexpected(r, "after the error challenge", &err) == SMTP_HELLO_FAILED)
            fail(s, &err);
        return;
    case SMTP_UP_IDLE:
    case SMTP_UP_HELLO:
        break;
    }
    session_upstream_failed(s, UPSTREAM_PROTOCOL_ERROR, "unexpected data from the server");
}

void smtp_upstream_input(struct session *s)
{
    /* Every round re-checks the session: a reply may end the login (failure frees the
     * upstream; success frees st and hands the rest of the input to the relay). */
    while (!s->closing && s->state == SESSION_UPSTREAM && s->upstream) {
        struct smtp_state *st = s->proto;
        struct smtp_failure err;
        if (st->up == SMTP_UP_IDLE || st->hello.step == SMTP_HELLO_TLS)
            return;
        int r = smtp_hello_read_reply(&st->hello, s->upstream, &err);
        if (r == 0)
            return;
        if (r < 0) {
            fail(s, &err);
            return;
        }
        if (st->up != SMTP_UP_HELLO) {
            on_auth_reply(s, st, &st->hello.reply);
            continue;
        }
        switch (smtp_hello_on_reply(&st->hello, s->upstream, &err)) {
        case SMTP_HELLO_WAIT:
            break;
        case SMTP_HELLO_READY:
            on_hello_ready(s, st);
            break;
        case SMTP_HELLO_FAILED:
            fail(s, &err);
            return;
        }
    }
}
