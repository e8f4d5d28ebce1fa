/* POP3 client side before login (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH,
 * RFC 3206 response codes): greeting, CAPA, USER/PASS, AUTH PLAIN, STLS, QUIT. The session core
 * does the I/O, TLS, timers and the broker; this file only speaks the grammar. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "pop3.h"
#include "util.h"

/* Honest before login: after the switch the server answers CAPA itself. TOP and UIDL are
 * mandatory-in-practice on every upstream we log in to (Exchange Online, Dovecot); PIPELINING
 * holds because pipelined commands are read one by one and the rest is relayed in order. */
#define CAPA_COMMON                                                                                \
    "TOP\r\n"                                                                                      \
    "UIDL\r\n"                                                                                     \
    "RESP-CODES\r\n"                                                                               \
    "AUTH-RESP-CODE\r\n"                                                                           \
    "PIPELINING\r\n"                                                                               \
    "IMPLEMENTATION mailgate\r\n"                                                                  \
    ".\r\n"
static const char CAPA_HEAD[] = "+OK Capability list follows\r\n";
static const char CAPA_STLS[] = "STLS\r\n";                /* while STLS can be used */
static const char CAPA_LOGIN[] = "USER\r\nSASL PLAIN\r\n"; /* once a password may be sent */
static const char CAPA_TAIL[] = CAPA_COMMON;

/* Commands of the TRANSACTION state (RFC 1939 section 5, NOOP included). */
static const char *const commands_after_login[] = {"STAT", "LIST", "RETR", "DELE", "NOOP",
                                                   "RSET", "TOP",  "UIDL", "LAST"};

/* ---- replies ---- */

/* Every -ERR for a malformed or misplaced command counts towards the session's limit. */
static void reply_bad(struct session *s, const char *text)
{
    session_reject(s, "-ERR %s\r\n", text);
}

static void reply_auth_failed(struct session *s)
{
    session_printf(s, "-ERR [AUTH] Authentication failed.\r\n");
}

static void reply_temp_failure(struct session *s)
{
    session_printf(s, "-ERR [SYS/TEMP] Temporary authentication failure, try again later.\r\n");
}

/* USER, PASS and AUTH before STLS (login_type = secure). attempt names a refused login
 * attempt for the log (NULL: the command alone is none). */
static int tls_required(struct session *s, const char *attempt)
{
    if (session_password_allowed(s))
        return 0;
    if (attempt)
        session_login_refused(s, NULL, "refused", attempt);
    session_reject(s, "-ERR [AUTH] Plaintext authentication is disabled, use STLS first.\r\n");
    return 1;
}

static int no_arguments(struct session *s, const struct pop3_command *cmd)
{
    if (cmd->argc == 0)
        return 1;
    reply_bad(s, "Unexpected arguments.");
    return 0;
}

/* ---- login ---- */

static void start_login(struct session *s, struct pop3_state *st, const char *user,
                        const char *password, size_t password_len)
{
    int rc = session_login(s, user, password, password_len); /* user may be st->user */
    st->user[0] = '\0';
    if (rc != 0) {
        reply_auth_failed(s); /* too long to be anybody's */
        return;
    }
    st->front = POP3_FRONT_LOGIN;
}

/* The end of an AUTH exchange. */
static void sasl_done(struct session *s, struct pop3_state *st, enum sasl_front_result r)
{
    switch (r) {
    case SASL_FRONT_LOGIN:
        st->front = POP3_FRONT_LOGIN;
        return;
    case SASL_FRONT_REFUSED:
        reply_auth_failed(s); /* too long to be anybody's */
        return;
    case SASL_FRONT_UNDECODABLE:
    case SASL_FRONT_MALFORMED:
        reply_bad(s, "Invalid authentication data.");
        return;
    case SASL_FRONT_OTHER_USER:
        session_printf(s, "-ERR [AUTH] Logging in as another user is not supported.\r\n");
        return;
    case SASL_FRONT_TOO_LONG:
        reply_bad(s, "Authentication data too long.");
        return;
    case SASL_FRONT_CANCELED:
        session_printf(s, "-ERR Authentication canceled.\r\n");
        return;
    case SASL_FRONT_UNSUPPORTED:
        session_printf(s, "-ERR Unsupported authentication mechanism.\r\n");
        return;
    case SASL_FRONT_CONTINUE:
        st->front = POP3_FRONT_SASL_CONTINUE;
        session_write(s, "+ \r\n", 4);
        return;
    case SASL_FRONT_WAIT:
        return;
    }
}

static void cmd_user(struct session *s, struct pop3_state *st, const struct pop3_command *cmd)
{
    if (tls_required(s, NULL))
        return;
    st->user[0] = '\0';
    if (cmd->argc != 1) {
        reply_bad(s, "USER needs a user name.");
        return;
    }
    const struct pop3_arg *a = &cmd->args[0];
    if (a->len >= sizeof st->user) {
        reply_bad(s, "User name too long.");
        return;
    }
    memcpy(st->user, a->str, a->len);
    st->user[a->len] = '\0';
    session_printf(s, "+OK Send the password with PASS.\r\n");
}

static void cmd_pass(struct session *s, struct pop3_state *st, const struct pop3_command *cmd)
{
    if (tls_required(s, "PASS before STLS"))
        return;
    if (!st->user[0]) {
        reply_bad(s, "Send USER first.");
        return;
    }
    if (cmd->argc != 1 || cmd->args[0].len == 0) {
        st->user[0] = '\0';
        reply_bad(s, "PASS needs a password.");
        return;
    }
    start_login(s, st, st->user, cmd->args[0].str, cmd->args[0].len);
}

static void cmd_auth(struct session *s, struct pop3_state *st, const struct pop3_command *cmd)
{
    if (tls_required(s, cmd->argc > 0 ? "AUTH before STLS" : NULL))
        return;
    st->user[0] = '\0';
    if (cmd->argc == 0) { /* the mechanism list, as Outlook and others ask for it */
        session_printf(s, "+OK\r\nPLAIN\r\n.\r\n");
        return;
    }
    const struct pop3_arg *mech = &cmd->args[0], *ir = cmd->argc == 2 ? &cmd->args[1] : NULL;
    sasl_done(s, st,
              sasl_front_start(s, &st->sasl, SASL_MECH_PLAIN, mech->str, mech->len,
                               ir ? ir->str : NULL, ir ? ir->len : 0));
}

/* The client's answer to "+ ": base64, or "*" to cancel. Returns 0 when no full line yet. */
static int read_sasl_response(struct session *s, struct pop3_state *st)
{
    enum sasl_front_result r = sasl_front_read(s, &st->sasl, POP3_MAX_LINE + 1);
    if (r == SASL_FRONT_WAIT)
        return 0;
    st->front = POP3_FRONT_COMMANDS;
    sasl_done(s, st, r);
    return 1;
}

/* ---- other commands ---- */

static void cmd_capa(struct session *s, struct pop3_state *st, const struct pop3_command *cmd)
{
    MG_UNUSED(st);
    if (!no_arguments(s, cmd))
        return;
    session_write(s, CAPA_HEAD, sizeof CAPA_HEAD - 1);
    if (session_starttls_allowed(s))
        session_write(s, CAPA_STLS, sizeof CAPA_STLS - 1);
    if (session_password_allowed(s))
        session_write(s, CAPA_LOGIN, sizeof CAPA_LOGIN - 1);
    session_write(s, CAPA_TAIL, sizeof CAPA_TAIL - 1);
}

static void cmd_quit(struct session *s, struct pop3_state *st, const struct pop3_command *cmd)
{
    MG_UNUSED(st), MG_UNUSED(cmd);
    session_printf(s, "+OK Logging out.\r\n");
    session_close(s);
}

static void cmd_stls(struct session *s, struct pop3_state *st, const struct pop3_command *cmd)
{
    if (!session_starttls_allowed(s)) {
        reply_bad(s, "STLS is not available now.");
        return;
    }
    if (!no_arguments(s, cmd))
        return;
    st->user[0] = '\0';
    session_printf(s, "+OK Begin TLS negotiation now.\r\n");
    session_start_tls(s);
}

static void cmd_apop(struct session *s, struct pop3_state *st, const struct pop3_command *cmd)
{
    MG_UNUSED(st), MG_UNUSED(cmd);
    reply_bad(s, "APOP is not supported, use USER and PASS.");
}

struct pop3_command_handler {
    const char *name;
    void (*run)(struct session *s, struct pop3_state *st, const struct pop3_command *cmd);
};

static const struct pop3_command_handler handlers[] = {
    {"CAPA", cmd_capa}, {"USER", cmd_user}, {"PASS", cmd_pass}, {"AUTH", cmd_auth},
    {"STLS", cmd_stls}, {"QUIT", cmd_quit}, {"APOP", cmd_apop},
};

static void dispatch(struct session *s, struct pop3_state *st, const struct pop3_command *cmd)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(handlers); i++) {
        if (strcmp(cmd->keyword, handlers[i].name) == 0) {
            handlers[i].run(s, st, cmd);
            return;
        }
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(commands_after_login); i++) {
        if (strcmp(cmd->keyword, commands_after_login[i]) == 0) {
            reply_bad(s, "Command not allowed before login.");
            return;
        }
    }
    reply_bad(s, "Unknown command.");
}

/* ---- input ---- */

/* Returns 0 when no complete line has come yet. */
static int read_command(struct session *s, struct pop3_state *st)
{
    char line[POP3_MAX_LINE + 1];
    size_t len = 0;
    int r = session_read_line(s, line, sizeof line, &len);
    if (r == 0)
        return 0;
    if (r < 0) {
        reply_bad(s, "Line too long.");
        return 1;
    }
    struct pop3_command cmd;
    enum pop3_parse_status ps = pop3_command_parse(line, len, &cmd);
    if (ps == POP3_PARSE_OK)
        dispatch(s, st, &cmd);
    else
        reply_bad(s, pop3_parse_status_text(ps));
    mg_wipe(line, len); /* may have held a password */
    return 1;
}

static void pop3_on_client_input(struct session *s)
{
    struct pop3_state *st = s->proto;
    while (!s->closing && s->state == SESSION_PRELOGIN && st->front != POP3_FRONT_LOGIN &&
           evbuffer_get_length(session_input(s)) > 0) {
        int progress =
            st->front == POP3_FRONT_SASL_CONTINUE ? read_sasl_response(s, st) : read_command(s, st);
        if (!progress)
            return; /* no complete line yet */
    }
}

/* ---- session hooks ---- */

static void pop3_greeting(struct session *s)
{
    session_printf(s, "+OK %s\r\n", s->listener->conf->banner);
}

static void pop3_on_tls_ready(struct session *s)
{
    struct pop3_state *st = s->proto;
    st->user[0] = '\0'; /* RFC 2595: the client issues CAPA again; nothing is said */
    st->front = POP3_FRONT_COMMANDS;
}

static void pop3_on_login_failed(struct session *s, enum login_failure why)
{
    struct pop3_state *st = s->proto;
    pop3_upstream_reset(st);
    st->front = POP3_FRONT_COMMANDS;
    st->user[0] = '\0';
    switch (why) {
    case LOGIN_FAIL_CREDENTIALS:
    case LOGIN_FAIL_DISABLED:
    case LOGIN_FAIL_UPSTREAM_AUTH:
        reply_auth_failed(s);
        return;
    case LOGIN_FAIL_TEMPORARY:
    case LOGIN_FAIL_INTERNAL:
    case LOGIN_FAIL_UPSTREAM_UNAVAILABLE:
        reply_temp_failure(s);
        return;
    }
}

static void pop3_goodbye(struct session *s, enum session_goodbye why)
{
    switch (why) {
    case GOODBYE_LOGIN_TIMEOUT:
        session_printf(s, "-ERR Disconnected: login timeout.\r\n");
        return;
    case GOODBYE_TOO_MANY_ERRORS:
        session_printf(s, "-ERR Disconnected: too many invalid commands.\r\n");
        return;
    case GOODBYE_SHUTDOWN:
        session_printf(s, "-ERR [SYS/TEMP] Server shutting down.\r\n");
        return;
    case GOODBYE_TOO_MANY_CONNECTIONS:
        session_printf(s, "-ERR [SYS/TEMP] Too many connections from your address.\r\n");
        return;
    case GOODBYE_ADDRESS_NOT_ALLOWED:
        session_printf(s, "-ERR [AUTH] Access from your address is not allowed.\r\n");
        return;
    }
}

void pop3_front_logged_in(struct session *s)
{
    session_printf(s, "+OK Logged in.\r\n");
    session_login_done(s);
}

static void pop3_release_state(void *state)
{
    pop3_upstream_reset(state);
}

const struct proto_ops pop3_proto_ops = {
    .protocol = MG_PROTO_POP3,
    .state_size = sizeof(struct pop3_state),
    .release_state = pop3_release_state,
    .greeting = pop3_greeting,
    .on_client_input = pop3_on_client_input,
    .on_tls_ready = pop3_on_tls_ready,
    .on_login_failed = pop3_on_login_failed,
    .upstream_ready = pop3_upstream_ready,
    .on_upstream_input = pop3_upstream_input,
    .goodbye = pop3_goodbye,
};
