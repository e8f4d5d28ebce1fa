/* The IMAP login at the upstream server with SASL XOAUTH2:
 *
 *   greeting (* OK [CAPABILITY ...])  [A0 STARTTLS when the server wants it]  [A0 CAPABILITY]
 *   A1 AUTHENTICATE XOAUTH2 <b64>      (or without SASL-IR: wait for "+", then the b64 line)
 *   error challenge "+ <b64 json>"  -> empty line -> A1 NO      (Dovecot; Exchange says NO at once)
 *   A1 OK [CAPABILITY ...]  or untagged * CAPABILITY before it (Gmail)  or  A2 CAPABILITY
 *
 * Server lines are parsed with imap_reply (pure, fuzzed) and bounded in length and number. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imap.h"
#include "imap_reply.h"
#include "log.h"
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

static int text_len(const struct imap_reply *r)
{
    return (int)(r->text_len < REMOTE_TEXT_MAX ? r->text_len : REMOTE_TEXT_MAX);
}

static void send_line(struct session *s, const char *line)
{
    upstream_write(s->upstream, line, strlen(line));
}

static void remember_caps(struct imap_state *st, const struct imap_reply *r)
{
    if (!r->caps)
        return;
    free(st->caps);
    st->caps = mg_strndup(r->caps, r->caps_len);
}

void imap_upstream_reset(struct imap_state *st)
{
    if (st->sasl) {
        mg_wipe(st->sasl, st->sasl_len);
        free(st->sasl);
        st->sasl = NULL;
    }
    st->sasl_len = 0;
    st->sasl_sent = 0;
    free(st->caps);
    st->caps = NULL;
    free(st->line);
    st->line = NULL;
    st->up = IMAP_UP_IDLE;
    st->up_lines = 0;
    st->challenge[0] = '\0';
}

/* Sends AUTHENTICATE XOAUTH2; the token is wiped by session_xoauth2() and our copy right after
 * writing (bytes already handed to the connection cannot be wiped). */
static void send_authenticate(struct session *s, struct imap_state *st)
{
    if (!st->caps || !imap_caps_has(st->caps, strlen(st->caps), "AUTH=XOAUTH2")) {
        fail(s, UPSTREAM_PROTOCOL_ERROR, "the server does not offer AUTH=XOAUTH2");
        return;
    }
    int sasl_ir = imap_caps_has(st->caps, strlen(st->caps), "SASL-IR");
    size_t size = session_xoauth2_size(s);
    char *b64 = mg_malloc(size);
    long n = session_xoauth2(s, b64, size);
    if (n < 0) {
        mg_wipe(b64, size);
        free(b64);
        fail(s, UPSTREAM_PROTOCOL_ERROR, "cannot build XOAUTH2 (bad mailbox or token)");
        return;
    }
    free(st->caps); /* what the server says after login counts from here */
    st->caps = NULL;
    st->up = IMAP_UP_AUTH;
    if (sasl_ir) {
        send_line(s, "A1 AUTHENTICATE XOAUTH2 ");
        upstream_write(s->upstream, b64, (size_t)n);
        send_line(s, "\r\n");
        mg_wipe(b64, size);
        free(b64);
        st->sasl_sent = 1;
        return;
    }
    st->sasl = b64;
    st->sasl_len = size;
    send_line(s, "A1 AUTHENTICATE XOAUTH2\r\n");
}

/* After the greeting or STARTTLS: capabilities are needed before authenticating. */
static void continue_with_caps(struct session *s, struct imap_state *st)
{
    if (st->caps) {
        send_authenticate(s, st);
        return;
    }
    st->up = IMAP_UP_CAPABILITY;
    send_line(s, "A0 CAPABILITY\r\n");
}

static void on_greeting(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    if (r->kind == IMAP_REPLY_UNTAGGED && r->status == IMAP_STATUS_BYE) {
        fail(s, UPSTREAM_TEMP_FAILURE, "greeting: BYE %.*s", text_len(r), r->text);
        return;
    }
    if (r->kind != IMAP_REPLY_UNTAGGED || r->status != IMAP_STATUS_OK) {
        fail(s, UPSTREAM_PROTOCOL_ERROR, "unexpected greeting: %.*s", text_len(r), r->text);
        return;
    }
    if (!upstream_is_tls(s->upstream)) {
        /* Capabilities seen before TLS are not trusted (injection). */
        st->up = IMAP_UP_STARTTLS;
        send_line(s, "A0 STARTTLS\r\n");
        return;
    }
    remember_caps(st, r);
    continue_with_caps(s, st);
}

static int is_tagged(const struct imap_reply *r, const char *tag)
{
    return r->kind == IMAP_REPLY_TAGGED && strcmp(r->tag, tag) == 0;
}

static void on_starttls_reply(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    if (!is_tagged(r, "A0"))
        return; /* untagged chatter */
    if (r->status != IMAP_STATUS_OK) {
        fail(s, UPSTREAM_PROTOCOL_ERROR, "STARTTLS refused: %.*s", text_len(r), r->text);
        return;
    }
    st->up = IMAP_UP_TLS_HANDSHAKE;
    if (upstream_start_tls(s->upstream) != 0)
        fail(s, UPSTREAM_TLS_FAILED, "cannot start TLS");
}

static void on_capability_reply(struct session *s, struct imap_state *st,
                                const struct imap_reply *r)
{
    remember_caps(st, r);
    if (!is_tagged(r, "A0"))
        return;
    if (r->status != IMAP_STATUS_OK || !st->caps) {
        fail(s, UPSTREAM_PROTOCOL_ERROR, "CAPABILITY failed: %.*s", text_len(r), r->text);
        return;
    }
    send_authenticate(s, st);
}

static void logged_in(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    remember_caps(st, r);
    if (st->caps) {
        imap_front_logged_in(s, st->caps, strlen(st->caps)); /* st is gone after this */
        return;
    }
    st->up = IMAP_UP_POST_CAPABILITY;
    send_line(s, "A2 CAPABILITY\r\n");
}

static void auth_refused(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    const char *sep = st->challenge[0] ? " challenge: " : "";
    if (r->status == IMAP_STATUS_BAD)
        fail(s, UPSTREAM_PROTOCOL_ERROR, "AUTHENTICATE: BAD %.*s", text_len(r), r->text);
    else if (strcmp(r->code, "UNAVAILABLE") == 0)
        fail(s, UPSTREAM_TEMP_FAILURE, "AUTHENTICATE: NO [UNAVAILABLE] %.*s", text_len(r), r->text);
    else
        fail(s, UPSTREAM_AUTH_REJECTED, "AUTHENTICATE: NO %s%s%s%.*s%s%s", r->code[0] ? "[" : "",
             r->code, r->code[0] ? "] " : "", text_len(r), r->text, sep, st->challenge);
}

static void on_continuation(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    if (!st->sasl_sent && st->sasl) {
        upstream_write(s->upstream, st->sasl, strlen(st->sasl));
        send_line(s, "\r\n");
        mg_wipe(st->sasl, st->sasl_len);
        free(st->sasl);
        st->sasl = NULL;
        st->sasl_sent = 1;
        return;
    }
    /* An error challenge: answer with an empty response, the NO follows. */
    sasl_xoauth2_describe_error(r->text, r->text_len, st->challenge, sizeof st->challenge);
    send_line(s, "\r\n");
}

static void on_auth_reply(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    if (r->kind == IMAP_REPLY_CONTINUATION) {
        on_continuation(s, st, r);
        return;
    }
    if (r->kind == IMAP_REPLY_UNTAGGED) {
        remember_caps(st, r); /* Gmail sends * CAPABILITY before the tagged OK */
        return;
    }
    if (!is_tagged(r, "A1")) {
        fail(s, UPSTREAM_PROTOCOL_ERROR, "unexpected tag %s", r->tag);
        return;
    }
    if (r->status == IMAP_STATUS_OK)
        logged_in(s, st, r);
    else
        auth_refused(s, st, r);
}

static void on_post_capability(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    remember_caps(st, r);
    if (!is_tagged(r, "A2"))
        return;
    /* Logged in already: a failed CAPABILITY only costs the client the list. */
    if (st->caps)
        imap_front_logged_in(s, st->caps, strlen(st->caps));
    else
        imap_front_logged_in(s, NULL, 0);
}

static void handle_reply(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    if (r->kind == IMAP_REPLY_UNTAGGED && r->status == IMAP_STATUS_BYE &&
        st->up != IMAP_UP_GREETING) {
        fail(s, UPSTREAM_TEMP_FAILURE, "BYE %.*s", text_len(r), r->text);
        return;
    }
    switch (st->up) {
    case IMAP_UP_GREETING:
        on_greeting(s, st, r);
        return;
    case IMAP_UP_STARTTLS:
        on_starttls_reply(s, st, r);
        return;
    case IMAP_UP_CAPABILITY:
        on_capability_reply(s, st, r);
        return;
    case IMAP_UP_AUTH:
        on_auth_reply(s, st, r);
        return;
    case IMAP_UP_POST_CAPABILITY:
        on_post_capability(s, st, r);
        return;
    case IMAP_UP_IDLE:
    case IMAP_UP_TLS_HANDSHAKE:
        fail(s, UPSTREAM_PROTOCOL_ERROR, "unexpected data from the server");
        return;
    }
}

void imap_upstream_ready(struct session *s)
{
    struct imap_state *st = s->proto;
    if (st->up == IMAP_UP_TLS_HANDSHAKE) {
        st->up = IMAP_UP_CAPABILITY;
        send_line(s, "A0 CAPABILITY\r\n");
        return;
    }
    imap_upstream_reset(st);
    st->line = mg_malloc(IMAP_UPSTREAM_MAX_LINE + 1);
    st->up = IMAP_UP_GREETING;
}

void imap_upstream_input(struct session *s)
{
    /* Every round re-checks the session: a reply may end the login (failure frees the
     * upstream; success frees st and hands the rest of the input to the relay). */
    while (!s->closing && s->state == SESSION_UPSTREAM && s->upstream) {
        struct imap_state *st = s->proto;
        if (st->up == IMAP_UP_TLS_HANDSHAKE)
            return;
        size_t len = 0;
        int r = session_read_line(upstream_input(s->upstream), st->line, IMAP_UPSTREAM_MAX_LINE + 1,
                                  &len);
        if (r == 0)
            return;
        if (r < 0) {
            fail(s, UPSTREAM_PROTOCOL_ERROR, "line longer than %d bytes", IMAP_UPSTREAM_MAX_LINE);
            return;
        }
        if (++st->up_lines > IMAP_UPSTREAM_MAX_LINES) {
            fail(s, UPSTREAM_PROTOCOL_ERROR, "more than %d lines during login",
                 IMAP_UPSTREAM_MAX_LINES);
            return;
        }
        struct imap_reply reply;
        if (imap_reply_parse(st->line, len, &reply) != 0) {
            fail(s, UPSTREAM_PROTOCOL_ERROR, "invalid line: %.*s",
                 (int)(len < REMOTE_TEXT_MAX ? len : REMOTE_TEXT_MAX), st->line);
            return;
        }
        handle_reply(s, st, &reply);
    }
}
