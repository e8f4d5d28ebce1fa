/* SMTP submission client side before AUTH (RFC 5321, 6409, 3207, 4954, 8314): greeting,
 * EHLO/HELO, STARTTLS, AUTH PLAIN and LOGIN, and the few commands answered locally. After AUTH
 * the session is a protocol-blind relay, so every reply to MAIL, RCPT, DATA and BDAT comes from
 * the upstream: the gateway never accepts a message on its own. The session core does the I/O,
 * TLS, timers and the broker; this file only speaks the grammar. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "log.h"
#include "session_audit.h"
#include "smtp.h"
#include "util.h"

/* How long a client's EHLO waits for a worker's first capability probe. */
#define CAPS_WAIT_MS 5000

static const char *hostname(const struct session *s)
{
    return s->listener->conf->hostname;
}

/* Every rejected command counts towards the session's limit of invalid commands. */
static void reply_bad(struct session *s, const char *reply)
{
    session_reject(s, "%s\r\n", reply);
}

static void reply_auth_failed(struct session *s)
{
    session_printf(s, "535 5.7.8 Authentication credentials invalid\r\n");
}

/* ---- EHLO ---- */

static void send_ehlo_reply(struct session *s)
{
    if (!session_password_allowed(s)) {
        /* Before TLS with login_type = secure: only STARTTLS, no AUTH (RFC 3207, 8314). */
        session_printf(s, "250-%s\r\n250 STARTTLS\r\n", hostname(s));
        return;
    }
    struct smtp_ehlo_caps caps;
    smtp_caps_get(s->w, &caps, NULL);
    char lines[512];
    if (smtp_ehlo_format(&caps, lines, sizeof lines) < 0)
        lines[0] = '\0';
    session_printf(s, "250-%s\r\n%s%s250 AUTH PLAIN LOGIN\r\n", hostname(s),
                   session_starttls_allowed(s) ? "250-STARTTLS\r\n" : "", lines);
}

static void caps_known(void *arg)
{
    struct session *s = arg;
    struct smtp_state *st = s->proto;
    evtimer_del(st->wait_timer);
    smtp_caps_cancel(&st->waiter);
    if (st->front != SMTP_FRONT_WAIT_CAPS || s->closing)
        return; /* nothing after a goodbye (login timeout, shutdown) */
    st->front = SMTP_FRONT_COMMANDS;
    send_ehlo_reply(s);
    if (s->state == SESSION_PRELOGIN && !s->closing)
        s->ops->on_client_input(s); /* what the client pipelined after EHLO */
}

static void wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    caps_known(arg); /* answer with what is known: nothing the upstream might refuse */
}

static void cmd_ehlo(struct session *s, struct smtp_state *st, const struct smtp_command *cmd)
{
    if (cmd->arg_len == 0) {
        reply_bad(s, "501 5.5.4 Syntax: EHLO hostname");
        return;
    }
    st->greeted = SMTP_GREETED_EHLO; /* also resets a transaction: there is none before AUTH */
    session_set_client_id(s, cmd->arg, cmd->arg_len);
    struct smtp_ehlo_caps caps;
    if (session_password_allowed(s) && !smtp_caps_get(s->w, &caps, &st->waiter)) {
        st->front = SMTP_FRONT_WAIT_CAPS;
        struct timeval tv = {.tv_sec = CAPS_WAIT_MS / 1000, .tv_usec = CAPS_WAIT_MS % 1000 * 1000};
        evtimer_add(st->wait_timer, &tv);
        return;
    }
    send_ehlo_reply(s);
}

static void cmd_helo(struct session *s, struct smtp_state *st, const struct smtp_command *cmd)
{
    if (cmd->arg_len == 0) {
        reply_bad(s, "501 5.5.4 Syntax: HELO hostname");
        return;
    }
    st->greeted = SMTP_GREETED_HELO;
    session_set_client_id(s, cmd->arg, cmd->arg_len);
    session_printf(s, "250 %s\r\n", hostname(s));
}

static void cmd_starttls(struct session *s, struct smtp_state *st, const struct smtp_command *cmd)
{
    if (!session_starttls_allowed(s)) {
        reply_bad(s, s->client_tls ? "503 5.5.1 TLS already active"
                                   : "502 5.5.1 STARTTLS not available");
        return;
    }
    if (cmd->arg_len != 0) {
        reply_bad(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    st->greeted = SMTP_GREETED_NONE; /* RFC 3207 4.2: forget everything, EHLO again */
    session_printf(s, "220 2.0.0 Ready to start TLS\r\n");
    session_start_tls(s);
}

/* ---- AUTH ---- */

/* A step of AUTH: the command, or the client's answer to a 334. */
static void sasl_step(struct session *s, struct smtp_state *st, enum sasl_front_result r)
{
    st->front = SMTP_FRONT_COMMANDS;
    switch (r) {
    case SASL_FRONT_CONTINUE:
        st->front = SMTP_FRONT_SASL_CONTINUE;
        session_printf(s, "334 %s\r\n", sasl_front_prompt(&st->sasl));
        return;
    case SASL_FRONT_LOGIN:
        st->front = SMTP_FRONT_LOGIN;
        return;
    case SASL_FRONT_REFUSED:    /* too long to be anybody's */
    case SASL_FRONT_MALFORMED:  /* not a PLAIN message */
    case SASL_FRONT_OTHER_USER: /* logging in as somebody else */
        reply_auth_failed(s);
        return;
    case SASL_FRONT_UNDECODABLE:
        reply_bad(s, "501 5.5.2 Cannot decode the response");
        return;
    case SASL_FRONT_CANCELED:
        session_printf(s, "501 5.7.0 Authentication canceled\r\n");
        return;
    case SASL_FRONT_UNSUPPORTED:
        reply_bad(s, "504 5.5.4 Unrecognized authentication type");
        return;
    case SASL_FRONT_TOO_LONG:
        reply_bad(s, "500 5.5.6 Line too long");
        return;
    case SASL_FRONT_WAIT:
        return;
    }
}

static void cmd_auth(struct session *s, struct smtp_state *st, const struct smtp_command *cmd)
{
    const char *mech, *ir;
    size_t mech_len, ir_len;
    if (!session_password_allowed(s)) {
        session_login_refused(s, NULL, "refused", "AUTH before STARTTLS");
        session_printf(s, "530 5.7.0 Must issue a STARTTLS command first\r\n");
        return;
    }
    if (st->greeted != SMTP_GREETED_EHLO) {
        reply_bad(s, "503 5.5.1 Send EHLO first");
        return;
    }
    if (smtp_auth_split(cmd->arg, cmd->arg_len, &mech, &mech_len, &ir, &ir_len) != 0) {
        reply_bad(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return;
    }
    sasl_step(s, st,
              sasl_front_start(s, &st->sasl, SASL_MECH_PLAIN | SASL_MECH_LOGIN, mech, mech_len,
                               ir_len ? ir : NULL, ir_len));
}

/* ---- other commands ---- */

static void cmd_bdat(struct session *s, struct smtp_state *st, const struct smtp_command *cmd)
{
    uint64_t size;
    int last;
    if (smtp_bdat_parse(cmd->arg, cmd->arg_len, &size, &last) != 0) {
        reply_bad(s, "501 5.5.4 Syntax: BDAT size [LAST]");
        return;
    }
    st->skip_bytes = size; /* RFC 3030: the chunk follows even when the command is refused */
    reply_bad(s, "530 5.7.0 Authentication required");
}

static void dispatch(struct session *s, struct smtp_state *st, const struct smtp_command *cmd)
{
    switch (cmd->verb) {
    case SMTP_EHLO:
        cmd_ehlo(s, st, cmd);
        return;
    case SMTP_HELO:
        cmd_helo(s, st, cmd);
        return;
    case SMTP_STARTTLS:
        cmd_starttls(s, st, cmd);
        return;
    case SMTP_AUTH:
        cmd_auth(s, st, cmd);
        return;
    case SMTP_BDAT:
        cmd_bdat(s, st, cmd);
        return;
    case SMTP_MAIL:
    case SMTP_RCPT:
    case SMTP_DATA:
    case SMTP_VRFY:
    case SMTP_EXPN:
    case SMTP_ETRN:
        reply_bad(s, "530 5.7.0 Authentication required");
        return;
    case SMTP_RSET:
    case SMTP_NOOP:
        session_printf(s, "250 2.0.0 OK\r\n");
        return;
    case SMTP_HELP:
        session_printf(s, "214 2.0.0 mailgate: EHLO, STARTTLS, AUTH PLAIN or LOGIN, then "
                          "mail as usual\r\n");
        return;
    case SMTP_QUIT:
        session_printf(s, "221 2.0.0 Bye\r\n");
        session_close(s);
        return;
    case SMTP_UNKNOWN:
        break;
    }
    reply_bad(s, "500 5.5.2 Command unrecognized");
}

/* ---- input ---- */

static void handle_line(struct session *s, struct smtp_state *st, const char *line, size_t len)
{
    if (st->front == SMTP_FRONT_SASL_CONTINUE) {
        sasl_step(s, st, sasl_front_answer(s, &st->sasl, line, len));
        return;
    }
    struct smtp_command cmd;
    if (smtp_command_parse(line, len, &cmd) != 0) {
        reply_bad(s, "500 5.5.2 Command unrecognized");
        return;
    }
    dispatch(s, st, &cmd);
}

static void smtp_on_client_input(struct session *s)
{
    struct smtp_state *st = s->proto;
    char line[SMTP_LINE_MAX + 1];
    while (!s->closing && s->state == SESSION_PRELOGIN && st->front != SMTP_FRONT_WAIT_CAPS &&
           st->front != SMTP_FRONT_LOGIN) {
        struct evbuffer *in = session_input(s);
        size_t avail = evbuffer_get_length(in), len = 0;
        if (avail == 0)
            return;
        if (st->skip_bytes > 0) {
            size_t n = st->skip_bytes < avail ? (size_t)st->skip_bytes : avail;
            evbuffer_drain(in, n);
            st->skip_bytes -= n;
            continue;
        }
        int r = session_read_line(s, line, sizeof line, &len);
        if (r == 0)
            return; /* no complete line yet */
        if (r < 0) {
            sasl_front_reset(&st->sasl);
            sasl_step(s, st, SASL_FRONT_TOO_LONG);
            continue;
        }
        handle_line(s, st, line, len);
        mg_wipe(line, len);
    }
}

/* ---- session hooks ---- */

static void smtp_greeting(struct session *s)
{
    session_printf(s, "220 %s %s\r\n", hostname(s), s->listener->conf->banner);
}

static void smtp_on_tls_ready(struct session *s)
{
    struct smtp_state *st = s->proto;
    st->greeted = SMTP_GREETED_NONE; /* no new greeting after STARTTLS; the client EHLOs again */
}

static void smtp_on_login_failed(struct session *s, enum login_failure why)
{
    struct smtp_state *st = s->proto;
    smtp_upstream_reset(st);
    st->front = SMTP_FRONT_COMMANDS;
    switch (why) {
    case LOGIN_FAIL_CREDENTIALS:
    case LOGIN_FAIL_DISABLED:
    case LOGIN_FAIL_UPSTREAM_AUTH:
        reply_auth_failed(s);
        return;
    case LOGIN_FAIL_TEMPORARY:
    case LOGIN_FAIL_INTERNAL:
    case LOGIN_FAIL_UPSTREAM_UNAVAILABLE:
        session_printf(s, "454 4.7.0 Temporary authentication failure, try again later\r\n");
        return;
    }
}

static void smtp_goodbye(struct session *s, enum session_goodbye why)
{
    switch (why) {
    case GOODBYE_LOGIN_TIMEOUT:
        session_printf(s, "421 4.4.2 %s Timeout, closing connection\r\n", hostname(s));
        return;
    case GOODBYE_TOO_MANY_ERRORS:
        session_printf(s, "421 4.7.0 %s Too many errors, closing connection\r\n", hostname(s));
        return;
    case GOODBYE_SHUTDOWN:
        session_printf(s, "421 4.3.2 %s Service shutting down, closing connection\r\n",
                       hostname(s));
        return;
    case GOODBYE_TOO_MANY_CONNECTIONS:
        session_printf(s, "421 4.7.0 %s Too many connections from your address\r\n", hostname(s));
        return;
    case GOODBYE_ADDRESS_NOT_ALLOWED:
        session_printf(s, "554 5.7.1 %s Access from your address is not allowed\r\n", hostname(s));
        return;
    }
}

void smtp_front_logged_in(struct session *s)
{
    session_printf(s, "235 2.7.0 Authentication successful\r\n");
    session_login_done(s); /* anything the client pipelined after AUTH is relayed */
}

static void smtp_init_state(struct session *s, void *state)
{
    struct smtp_state *st = state;
    st->s = s;
    st->waiter.done = caps_known;
    st->waiter.arg = s;
    st->wait_timer = evtimer_new(s->w->base, wait_timeout_cb, s);
    smtp_caps_prime(s->w);
}

static void smtp_release_state(void *state)
{
    struct smtp_state *st = state;
    smtp_caps_cancel(&st->waiter);
    if (st->wait_timer)
        event_free(st->wait_timer);
    smtp_upstream_reset(st);
}

const struct proto_ops smtp_proto_ops = {
    .protocol = MG_PROTO_SMTP,
    .state_size = sizeof(struct smtp_state),
    .init_state = smtp_init_state,
    .release_state = smtp_release_state,
    .greeting = smtp_greeting,
    .on_client_input = smtp_on_client_input,
    .on_tls_ready = smtp_on_tls_ready,
    .on_login_failed = smtp_on_login_failed,
    .upstream_ready = smtp_upstream_ready,
    .on_upstream_input = smtp_upstream_input,
    .goodbye = smtp_goodbye,
};
