/* The POP3 login at the upstream server with SASL XOAUTH2 or OAUTHBEARER (MECH below; RFC
 * 5034, the form Microsoft documents for Exchange Online):
 *
 *   greeting "+OK ..."            [STLS -> +OK -> TLS handshake, when the server is plain]
 *   AUTH MECH  ->  "+ "  ->  base64 line  ->  "+OK"                       (success)
 *                                         ->  "-ERR ..."                  (Exchange)
 *                                         ->  "+ <b64 json>" -> "" or AQ== -> "-ERR ..." (Dovecot)
 *
 * The two-step form is used always: every server takes it, and a long token never meets a
 * command-line limit. Server lines are parsed with pop3_reply_parse (pure, fuzzed) and bounded
 * in length and number. */
#include "pop3.h"
#include "upstream.h"
#include "util.h"

void pop3_upstream_reset(struct pop3_state *st)
{
    login_sasl_reset(&st->upstream_sasl);
    server_lines_stop(&st->lines);
    st->up = POP3_UP_IDLE;
}

/* Builds the response now (the session's token is wiped by session_sasl_response()) and sends
 * "AUTH MECH"; the response goes out after the server's "+ ". */
static void send_auth(struct session *s, struct pop3_state *st)
{
    if (login_sasl_build(s, &st->upstream_sasl) != 0)
        return;
    st->up = POP3_UP_AUTH;
    login_sasl_say(s, "AUTH ", "\r\n");
}

static void on_greeting(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    if (r->kind == POP3_REPLY_ERR) {
        session_upstream_failedf(s, UPSTREAM_TEMP_FAILURE, "greeting: -ERR %.*s",
                                 login_text_len(r->text_len), r->text);
        return;
    }
    if (r->kind != POP3_REPLY_OK) {
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "unexpected greeting: %.*s",
                                 login_text_len(r->text_len), r->text);
        return;
    }
    if (!upstream_is_tls(s->upstream)) {
        st->up = POP3_UP_STLS;
        upstream_send(s->upstream, "STLS\r\n");
        return;
    }
    send_auth(s, st);
}

static void on_stls_reply(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    if (r->kind != POP3_REPLY_OK) {
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "STLS refused: %.*s",
                                 login_text_len(r->text_len), r->text);
        return;
    }
    st->up = POP3_UP_TLS_HANDSHAKE;
    if (upstream_start_tls(s->upstream) != 0)
        session_upstream_failedf(s, UPSTREAM_TLS_FAILED, "cannot start TLS");
}

/* -ERR to our AUTH: temporary when the server says so (RFC 2449 SYS/TEMP, RFC 2449 IN-USE),
 * a refused token otherwise. */
static void auth_refused(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    const char *open = r->code[0] ? "[" : "", *close = r->code[0] ? "] " : "";
    if (pop3_reply_code_is(r, "SYS/TEMP") || pop3_reply_code_is(r, "IN-USE"))
        session_upstream_failedf(s, UPSTREAM_TEMP_FAILURE, "AUTH: -ERR %s%s%s%.*s", open, r->code,
                                 close, login_text_len(r->text_len), r->text);
    else if (st->up == POP3_UP_AUTH && !pop3_reply_code_is(r, "AUTH"))
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "AUTH %s refused: -ERR %s%s%s%.*s",
                                 session_sasl_mechanism(s), open, r->code, close,
                                 login_text_len(r->text_len), r->text);
    else
        session_upstream_failedf(s, UPSTREAM_AUTH_REJECTED, "AUTH: -ERR %s%s%s%.*s%s", open,
                                 r->code, close, login_text_len(r->text_len), r->text,
                                 login_sasl_note(&st->upstream_sasl));
}

static void on_continuation(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    if (st->up == POP3_UP_AUTH && login_sasl_pending(&st->upstream_sasl)) {
        login_sasl_send(s, &st->upstream_sasl);
        st->up = POP3_UP_RESPONSE;
        return;
    }
    if (st->up == POP3_UP_RESPONSE) { /* an error challenge: the -ERR follows */
        st->up = POP3_UP_CHALLENGE;
        login_sasl_challenge(s, &st->upstream_sasl, r->text, r->text_len);
        return;
    }
    session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "unexpected continuation during AUTH");
}

static void on_auth_reply(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    switch (r->kind) {
    case POP3_REPLY_CONTINUATION:
        on_continuation(s, st, r);
        return;
    case POP3_REPLY_ERR:
        auth_refused(s, st, r);
        return;
    case POP3_REPLY_OK:
        if (st->up == POP3_UP_RESPONSE)
            pop3_front_logged_in(s); /* st is gone after this */
        else
            session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "+OK before the SASL response");
        return;
    }
}

static void handle_reply(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    switch (st->up) {
    case POP3_UP_GREETING:
        on_greeting(s, st, r);
        return;
    case POP3_UP_STLS:
        on_stls_reply(s, st, r);
        return;
    case POP3_UP_AUTH:
    case POP3_UP_RESPONSE:
    case POP3_UP_CHALLENGE:
        on_auth_reply(s, st, r);
        return;
    case POP3_UP_IDLE:
    case POP3_UP_TLS_HANDSHAKE:
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "unexpected data from the server");
        return;
    }
}

void pop3_upstream_ready(struct session *s)
{
    struct pop3_state *st = s->proto;
    if (st->up == POP3_UP_TLS_HANDSHAKE) {
        send_auth(s, st); /* no second greeting after STLS (RFC 2595) */
        return;
    }
    pop3_upstream_reset(st);
    server_lines_start(&st->lines, POP3_UPSTREAM_MAX_LINE, POP3_UPSTREAM_MAX_LINES);
    st->up = POP3_UP_GREETING;
}

void pop3_upstream_input(struct session *s)
{
    /* Every round re-checks the session: a reply may end the login (failure frees the
     * upstream; success frees st and hands the rest of the input to the relay). */
    while (!s->closing && s->state == SESSION_UPSTREAM && s->upstream) {
        struct pop3_state *st = s->proto;
        if (st->up == POP3_UP_TLS_HANDSHAKE || !st->lines.buf)
            return;
        size_t len = 0;
        if (session_upstream_line(s, &st->lines, &len) <= 0)
            return;
        struct pop3_reply reply;
        if (pop3_reply_parse(st->lines.buf, len, &reply) != 0) {
            session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "invalid line: %.*s",
                                     login_text_len(len), st->lines.buf);
            return;
        }
        handle_reply(s, st, &reply);
    }
}
