/* The POP3 login at the upstream server with SASL XOAUTH2 (RFC 5034, the form Microsoft
 * documents for Exchange Online):
 *
 *   greeting "+OK ..."            [STLS -> +OK -> TLS handshake, when the server is plain]
 *   AUTH XOAUTH2  ->  "+ "  ->  base64 line  ->  "+OK"                       (success)
 *                                            ->  "-ERR ..."                  (Exchange)
 *                                            ->  "+ <b64 json>" -> "" -> "-ERR ..."  (Dovecot)
 *
 * The two-step form is used always: every server takes it, and a long token never meets a
 * command-line limit. Server lines are parsed with pop3_reply_parse (pure, fuzzed) and bounded
 * in length and number. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"
#include "sasl.h"
#include "upstream.h"
#include "util.h"

#define REMOTE_TEXT_MAX 200 /* of the server's text kept for the log */

static void fail(struct session *s, enum upstream_failure f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct session *s, enum upstream_failure f, const char *fmt, ...)
{
    char detail[IPC_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    session_upstream_failed(s, f, detail);
}

static int text_len(const struct pop3_reply *r)
{
    return (int)(r->text_len < REMOTE_TEXT_MAX ? r->text_len : REMOTE_TEXT_MAX);
}

static void send_line(struct session *s, const char *line)
{
    upstream_write(s->upstream, line, strlen(line));
}

static void forget_sasl(struct pop3_state *st)
{
    if (st->sasl) {
        mg_wipe(st->sasl, st->sasl_size);
        free(st->sasl);
        st->sasl = NULL;
    }
    st->sasl_size = 0;
}

void pop3_upstream_reset(struct pop3_state *st)
{
    forget_sasl(st);
    free(st->line);
    st->line = NULL;
    st->up = POP3_UP_IDLE;
    st->up_lines = 0;
    st->challenge[0] = '\0';
}

/* Builds the XOAUTH2 response now (the session's token is wiped by session_xoauth2()) and
 * sends "AUTH XOAUTH2"; the response goes out after the server's "+ ". */
static void send_auth(struct session *s, struct pop3_state *st)
{
    size_t size = session_xoauth2_size(s);
    char *b64 = mg_malloc(size);
    if (session_xoauth2(s, b64, size) < 0) {
        mg_wipe(b64, size);
        free(b64);
        fail(s, UPSTREAM_PROTOCOL_ERROR, "cannot build XOAUTH2 (bad mailbox or token)");
        return;
    }
    st->sasl = b64;
    st->sasl_size = size;
    st->up = POP3_UP_AUTH;
    send_line(s, "AUTH XOAUTH2\r\n");
}

static void on_greeting(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    if (r->kind == POP3_REPLY_ERR) {
        fail(s, UPSTREAM_TEMP_FAILURE, "greeting: -ERR %.*s", text_len(r), r->text);
        return;
    }
    if (r->kind != POP3_REPLY_OK) {
        fail(s, UPSTREAM_PROTOCOL_ERROR, "unexpected greeting: %.*s", text_len(r), r->text);
        return;
    }
    if (!upstream_is_tls(s->upstream)) {
        st->up = POP3_UP_STLS;
        send_line(s, "STLS\r\n");
        return;
    }
    send_auth(s, st);
}

static void on_stls_reply(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    if (r->kind != POP3_REPLY_OK) {
        fail(s, UPSTREAM_PROTOCOL_ERROR, "STLS refused: %.*s", text_len(r), r->text);
        return;
    }
    st->up = POP3_UP_TLS_HANDSHAKE;
    if (upstream_start_tls(s->upstream) != 0)
        fail(s, UPSTREAM_TLS_FAILED, "cannot start TLS");
}

/* -ERR to our AUTH: temporary when the server says so (RFC 2449 SYS/TEMP, RFC 2449 IN-USE),
 * a refused token otherwise. */
static void auth_refused(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    const char *sep = st->challenge[0] ? " challenge: " : "";
    const char *open = r->code[0] ? "[" : "", *close = r->code[0] ? "] " : "";
    if (pop3_reply_code_is(r, "SYS/TEMP") || pop3_reply_code_is(r, "IN-USE"))
        fail(s, UPSTREAM_TEMP_FAILURE, "AUTH: -ERR %s%s%s%.*s", open, r->code, close, text_len(r),
             r->text);
    else if (st->up == POP3_UP_AUTH && !pop3_reply_code_is(r, "AUTH"))
        fail(s, UPSTREAM_PROTOCOL_ERROR, "AUTH XOAUTH2 refused: -ERR %s%s%s%.*s", open, r->code,
             close, text_len(r), r->text);
    else
        fail(s, UPSTREAM_AUTH_REJECTED, "AUTH: -ERR %s%s%s%.*s%s%s", open, r->code, close,
             text_len(r), r->text, sep, st->challenge);
}

static void on_continuation(struct session *s, struct pop3_state *st, const struct pop3_reply *r)
{
    if (st->up == POP3_UP_AUTH && st->sasl) {
        upstream_write(s->upstream, st->sasl, strlen(st->sasl));
        send_line(s, "\r\n");
        forget_sasl(st);
        st->up = POP3_UP_RESPONSE;
        return;
    }
    if (st->up == POP3_UP_RESPONSE) {
        /* An error challenge: answer with an empty response, the -ERR follows. */
        sasl_xoauth2_describe_error(r->text, r->text_len, st->challenge, sizeof st->challenge);
        st->up = POP3_UP_CHALLENGE;
        send_line(s, "\r\n");
        return;
    }
    fail(s, UPSTREAM_PROTOCOL_ERROR, "unexpected continuation during AUTH");
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
            fail(s, UPSTREAM_PROTOCOL_ERROR, "+OK before the XOAUTH2 response");
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
        fail(s, UPSTREAM_PROTOCOL_ERROR, "unexpected data from the server");
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
    st->line = mg_malloc(POP3_UPSTREAM_MAX_LINE + 1);
    st->up = POP3_UP_GREETING;
}

void pop3_upstream_input(struct session *s)
{
    /* Every round re-checks the session: a reply may end the login (failure frees the
     * upstream; success frees st and hands the rest of the input to the relay). */
    while (!s->closing && s->state == SESSION_UPSTREAM && s->upstream) {
        struct pop3_state *st = s->proto;
        if (st->up == POP3_UP_TLS_HANDSHAKE || !st->line)
            return;
        size_t len = 0;
        int r = session_read_line(upstream_input(s->upstream), st->line, POP3_UPSTREAM_MAX_LINE + 1,
                                  &len);
        if (r == 0)
            return;
        if (r < 0) {
            fail(s, UPSTREAM_PROTOCOL_ERROR, "line longer than %d bytes", POP3_UPSTREAM_MAX_LINE);
            return;
        }
        if (++st->up_lines > POP3_UPSTREAM_MAX_LINES) {
            fail(s, UPSTREAM_PROTOCOL_ERROR, "more than %d lines during login",
                 POP3_UPSTREAM_MAX_LINES);
            return;
        }
        struct pop3_reply reply;
        if (pop3_reply_parse(st->line, len, &reply) != 0) {
            fail(s, UPSTREAM_PROTOCOL_ERROR, "invalid line: %.*s",
                 (int)(len < REMOTE_TEXT_MAX ? len : REMOTE_TEXT_MAX), st->line);
            return;
        }
        handle_reply(s, st, &reply);
    }
}
