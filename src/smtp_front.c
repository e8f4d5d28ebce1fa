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
#include "sasl.h"
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
    session_printf(s, "%s\r\n", reply);
    session_bad_command(s);
}

static void reply_auth_failed(struct session *s)
{
    session_printf(s, "535 5.7.8 Authentication credentials invalid\r\n");
}

/* ---- EHLO ---- */

static void send_ehlo_reply(struct session *s)
{
    if (!s->client_tls) {
        /* Before TLS on a starttls listener: only STARTTLS, no AUTH (RFC 3207, 8314). */
        session_printf(s, "250-%s\r\n250 STARTTLS\r\n", hostname(s));
        return;
    }
    struct smtp_ehlo_caps caps;
    smtp_caps_get(s->w, &caps, NULL);
    char lines[512];
    if (smtp_ehlo_format(&caps, lines, sizeof lines) < 0)
        lines[0] = '\0';
    session_printf(s, "250-%s\r\n%s250 AUTH PLAIN LOGIN\r\n", hostname(s), lines);
}

static void caps_known(void *arg)
{
    struct session *s = arg;
    struct smtp_state *st = s->proto;
    evtimer_del(st->wait_timer);
    smtp_caps_cancel(&st->waiter);
    if (st->front != SMTP_FRONT_WAIT_CAPS)
        return;
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
    struct smtp_ehlo_caps caps;
    if (s->client_tls && !smtp_caps_get(s->w, &caps, &st->waiter)) {
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

static void start_login(struct session *s, struct smtp_state *st, const char *user,
                        const char *password, size_t password_len)
{
    if (session_login(s, user, password, password_len) != 0) {
        reply_auth_failed(s); /* too long to be anybody's */
        return;
    }
    st->front = SMTP_FRONT_LOGIN;
}

static void login_with_plain(struct session *s, struct smtp_state *st, const char *b64, size_t len)
{
    unsigned char msg[SMTP_LINE_MAX];
    long n = b64_decode(b64, len, msg, sizeof msg);
    if (n < 0) {
        reply_bad(s, "501 5.5.2 Cannot decode the response");
        return;
    }
    struct sasl_plain plain;
    if (sasl_plain_decode(msg, (size_t)n, &plain) != 0 ||
        (plain.authzid[0] && strcmp(plain.authzid, plain.authcid) != 0))
        reply_auth_failed(s); /* malformed, or logging in as somebody else */
    else
        start_login(s, st, plain.authcid, plain.passwd, plain.passwd_len);
    sasl_plain_wipe(&plain);
    mg_wipe(msg, (size_t)n);
}

/* AUTH LOGIN: the user name is known, ask for the password. */
static void ask_password(struct session *s, struct smtp_state *st)
{
    st->front = SMTP_FRONT_AUTH_LOGIN_PASS;
    session_printf(s, "334 UGFzc3dvcmQ6\r\n");
}

static int take_login_user(struct session *s, struct smtp_state *st, const char *b64, size_t len)
{
    if (sasl_login_decode_b64(b64, len, st->login_user, sizeof st->login_user) < 0) {
        reply_bad(s, "501 5.5.2 Cannot decode the response");
        return -1;
    }
    return 0;
}

static void cmd_auth(struct session *s, struct smtp_state *st, const struct smtp_command *cmd)
{
    const char *mech, *ir;
    size_t mech_len, ir_len;
    if (!s->client_tls) {
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
    char name[24];
    mg_strlcpy(name, mech, mech_len + 1 < sizeof name ? mech_len + 1 : sizeof name);
    if (mg_ascii_casecmp(name, "PLAIN") == 0) {
        if (ir_len == 0) {
            st->front = SMTP_FRONT_AUTH_PLAIN;
            session_printf(s, "334 \r\n");
        } else {
            login_with_plain(s, st, ir, ir_len);
        }
        return;
    }
    if (mg_ascii_casecmp(name, "LOGIN") == 0) {
        if (ir_len == 0) {
            st->front = SMTP_FRONT_AUTH_LOGIN_USER;
            session_printf(s, "334 VXNlcm5hbWU6\r\n");
        } else if (take_login_user(s, st, ir, ir_len) == 0) {
            ask_password(s, st);
        }
        return;
    }
    reply_bad(s, "504 5.5.4 Unrecognized authentication type");
}

/* The client's answer to a 334: base64, or "*" to cancel. */
static void sasl_response(struct session *s, struct smtp_state *st, const char *line, size_t len)
{
    enum smtp_front_state step = st->front;
    st->front = SMTP_FRONT_COMMANDS;
    if (len == 1 && line[0] == '*') {
        mg_wipe(st->login_user, sizeof st->login_user);
        session_printf(s, "501 5.7.0 Authentication canceled\r\n");
        return;
    }
    switch (step) {
    case SMTP_FRONT_AUTH_PLAIN:
        login_with_plain(s, st, line, len);
        return;
    case SMTP_FRONT_AUTH_LOGIN_USER:
        if (take_login_user(s, st, line, len) == 0)
            ask_password(s, st);
        return;
    case SMTP_FRONT_AUTH_LOGIN_PASS: {
        char password[IPC_PASSWORD_MAX];
        long n = sasl_login_decode_b64(line, len, password, sizeof password);
        if (n < 0)
            reply_bad(s, "501 5.5.2 Cannot decode the response");
        else
            start_login(s, st, st->login_user, password, (size_t)n);
        mg_wipe(password, sizeof password);
        mg_wipe(st->login_user, sizeof st->login_user);
        return;
    }
    case SMTP_FRONT_COMMANDS:
    case SMTP_FRONT_WAIT_CAPS:
    case SMTP_FRONT_LOGIN:
        return;
    }
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

/* One line of at most SMTP_LINE_MAX bytes. An overlong line is answered once and the rest of
 * it, up to its end, is swallowed (never taken as a command). Returns 1, 0 or -1. */
static int read_line(struct smtp_state *st, struct evbuffer *in, char *buf, size_t *len)
{
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (st->skip_line) {
        if (eol.pos < 0) {
            evbuffer_drain(in, evbuffer_get_length(in));
            return 0;
        }
        st->skip_line = 0;
        evbuffer_drain(in, (size_t)eol.pos + eol_len);
        return 0;
    }
    if (eol.pos < 0 && evbuffer_get_length(in) > SMTP_LINE_MAX) {
        evbuffer_drain(in, evbuffer_get_length(in));
        st->skip_line = 1;
        return -1;
    }
    return session_read_line(in, buf, SMTP_LINE_MAX + 1, len);
}

static void handle_line(struct session *s, struct smtp_state *st, const char *line, size_t len)
{
    if (st->front != SMTP_FRONT_COMMANDS) {
        sasl_response(s, st, line, len);
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
        int r = read_line(st, in, line, &len);
        if (r == 0) {
            if (st->skip_line || evbuffer_get_length(in) == avail)
                return; /* no complete line yet */
            continue;   /* the tail of an overlong line went */
        }
        if (r < 0) {
            st->front = SMTP_FRONT_COMMANDS;
            mg_wipe(st->login_user, sizeof st->login_user);
            reply_bad(s, "500 5.5.6 Line too long");
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
    }
}

void smtp_front_logged_in(struct session *s)
{
    session_printf(s, "235 2.7.0 Authentication successful\r\n");
    session_login_done(s); /* anything the client pipelined after AUTH is relayed */
}

static void *smtp_new_state(struct session *s)
{
    struct smtp_state *st = mg_calloc(1, sizeof *st);
    st->s = s;
    st->waiter.done = caps_known;
    st->waiter.arg = s;
    st->wait_timer = evtimer_new(s->w->base, wait_timeout_cb, s);
    smtp_caps_prime(s->w);
    return st;
}

static void smtp_free_state(void *state)
{
    struct smtp_state *st = state;
    smtp_caps_cancel(&st->waiter);
    if (st->wait_timer)
        event_free(st->wait_timer);
    smtp_upstream_reset(st);
    mg_wipe(st, sizeof *st);
    free(st);
}

const struct proto_ops smtp_proto_ops = {
    .protocol = MG_PROTO_SMTP,
    .new_state = smtp_new_state,
    .free_state = smtp_free_state,
    .greeting = smtp_greeting,
    .on_client_input = smtp_on_client_input,
    .on_tls_ready = smtp_on_tls_ready,
    .on_login_failed = smtp_on_login_failed,
    .upstream_ready = smtp_upstream_ready,
    .on_upstream_input = smtp_upstream_input,
    .goodbye = smtp_goodbye,
};
