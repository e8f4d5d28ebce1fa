/* The IMAP login at the upstream server with SASL XOAUTH2 or OAUTHBEARER (MECH below):
 *
 *   greeting (* OK [CAPABILITY ...])  [A0 STARTTLS when the server wants it]  [A0 CAPABILITY]
 *   A1 AUTHENTICATE MECH <b64>         (or without SASL-IR: wait for "+", then the b64 line)
 *   error challenge "+ <b64 json>"  -> empty line or AQ== -> A1 NO   (Exchange says NO at once)
 *   A1 OK [CAPABILITY ...]  or untagged * CAPABILITY before it (Gmail)  or  A2 CAPABILITY
 *
 * Server lines are parsed with imap_reply (pure, fuzzed) and bounded in length and number. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "imap_reply.h"
#include "upstream.h"
#include "util.h"

static void remember_caps(struct imap_state *st, const struct imap_reply *r)
{
    if (!r->caps)
        return;
    free(st->caps);
    st->caps = mg_strndup(r->caps, r->caps_len);
}

void imap_upstream_reset(struct imap_state *st)
{
    login_sasl_reset(&st->upstream_sasl);
    free(st->caps);
    st->caps = NULL;
    server_lines_stop(&st->lines);
    st->up = IMAP_UP_IDLE;
}

/* Sends AUTHENTICATE with the response (SASL-IR), or without it; then the response waits for
 * the server's "+". */
static void send_authenticate(struct session *s, struct imap_state *st)
{
    char cap[32];
    snprintf(cap, sizeof cap, "AUTH=%s", session_sasl_mechanism(s));
    if (!st->caps || !imap_caps_has(st->caps, strlen(st->caps), cap)) {
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "the server does not offer %s", cap);
        return;
    }
    int sasl_ir = imap_caps_has(st->caps, strlen(st->caps), "SASL-IR");
    if (login_sasl_build(s, &st->upstream_sasl) != 0)
        return;
    free(st->caps); /* what the server says after login counts from here */
    st->caps = NULL;
    st->up = IMAP_UP_AUTH;
    if (sasl_ir) {
        login_sasl_say(s, "A1 AUTHENTICATE ", " ");
        login_sasl_send(s, &st->upstream_sasl);
        return;
    }
    login_sasl_say(s, "A1 AUTHENTICATE ", "\r\n");
}

/* After the greeting or STARTTLS: capabilities are needed before authenticating. */
static void continue_with_caps(struct session *s, struct imap_state *st)
{
    if (st->caps) {
        send_authenticate(s, st);
        return;
    }
    st->up = IMAP_UP_CAPABILITY;
    upstream_send(s->upstream, "A0 CAPABILITY\r\n");
}

static void on_greeting(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    if (r->kind == IMAP_REPLY_UNTAGGED && r->status == IMAP_STATUS_BYE) {
        session_upstream_failedf(s, UPSTREAM_TEMP_FAILURE, "greeting: BYE %.*s",
                                 login_text_len(r->text_len), r->text);
        return;
    }
    if (r->kind != IMAP_REPLY_UNTAGGED || r->status != IMAP_STATUS_OK) {
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "unexpected greeting: %.*s",
                                 login_text_len(r->text_len), r->text);
        return;
    }
    if (!upstream_is_tls(s->upstream)) {
        /* Capabilities seen before TLS are not trusted (injection). */
        st->up = IMAP_UP_STARTTLS;
        upstream_send(s->upstream, "A0 STARTTLS\r\n");
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
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "STARTTLS refused: %.*s",
                                 login_text_len(r->text_len), r->text);
        return;
    }
    st->up = IMAP_UP_TLS_HANDSHAKE;
    if (upstream_start_tls(s->upstream) != 0)
        session_upstream_failedf(s, UPSTREAM_TLS_FAILED, "cannot start TLS");
}

static void on_capability_reply(struct session *s, struct imap_state *st,
                                const struct imap_reply *r)
{
    remember_caps(st, r);
    if (!is_tagged(r, "A0"))
        return;
    if (r->status != IMAP_STATUS_OK || !st->caps) {
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "CAPABILITY failed: %.*s",
                                 login_text_len(r->text_len), r->text);
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
    upstream_send(s->upstream, "A2 CAPABILITY\r\n");
}

static void auth_refused(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    if (r->status == IMAP_STATUS_BAD)
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "AUTHENTICATE: BAD %.*s",
                                 login_text_len(r->text_len), r->text);
    else if (strcmp(r->code, "UNAVAILABLE") == 0)
        session_upstream_failedf(s, UPSTREAM_TEMP_FAILURE, "AUTHENTICATE: NO [UNAVAILABLE] %.*s",
                                 login_text_len(r->text_len), r->text);
    else
        session_upstream_failedf(s, UPSTREAM_AUTH_REJECTED, "AUTHENTICATE: NO %s%s%s%.*s%s",
                                 r->code[0] ? "[" : "", r->code, r->code[0] ? "] " : "",
                                 login_text_len(r->text_len), r->text,
                                 login_sasl_note(&st->upstream_sasl));
}

static void on_continuation(struct session *s, struct imap_state *st, const struct imap_reply *r)
{
    if (login_sasl_pending(&st->upstream_sasl))
        login_sasl_send(s, &st->upstream_sasl);
    else /* an error challenge: the NO follows */
        login_sasl_challenge(s, &st->upstream_sasl, r->text, r->text_len);
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
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "unexpected tag %s", r->tag);
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
        session_upstream_failedf(s, UPSTREAM_TEMP_FAILURE, "BYE %.*s", login_text_len(r->text_len),
                                 r->text);
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
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "unexpected data from the server");
        return;
    }
}

void imap_upstream_ready(struct session *s)
{
    struct imap_state *st = s->proto;
    if (st->up == IMAP_UP_TLS_HANDSHAKE) {
        st->up = IMAP_UP_CAPABILITY;
        upstream_send(s->upstream, "A0 CAPABILITY\r\n");
        return;
    }
    imap_upstream_reset(st);
    server_lines_start(&st->lines, IMAP_UPSTREAM_MAX_LINE, IMAP_UPSTREAM_MAX_LINES);
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
        if (session_upstream_line(s, &st->lines, &len) <= 0)
            return;
        struct imap_reply reply;
        if (imap_reply_parse(st->lines.buf, len, &reply) != 0) {
            session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR, "invalid line: %.*s",
                                     login_text_len(len), st->lines.buf);
            return;
        }
        handle_reply(s, st, &reply);
    }
}
