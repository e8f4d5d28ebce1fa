/* IMAP client side before login (RFC 3501 / RFC 9051): greeting, the few commands allowed
 * before authentication, LOGIN and AUTHENTICATE PLAIN. The session core does the I/O, TLS,
 * timers and the broker; this file only speaks the grammar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "imap.h"
#include "log.h"
#include "session_audit.h"
#include "util.h"

#ifndef MAILGATE_VERSION
#define MAILGATE_VERSION "unknown"
#endif

#define CLIENT_CAPS_MAX 80

/* Commands that exist but need an authenticated state. */
static const char *const commands_after_login[] = {
    "SELECT",      "EXAMINE",      "CREATE",      "DELETE",      "RENAME",   "SUBSCRIBE",
    "UNSUBSCRIBE", "LIST",         "LSUB",        "STATUS",      "APPEND",   "CHECK",
    "CLOSE",       "EXPUNGE",      "SEARCH",      "FETCH",       "STORE",    "COPY",
    "MOVE",        "UID",          "IDLE",        "NAMESPACE",   "ENABLE",   "UNSELECT",
    "GETQUOTA",    "GETQUOTAROOT", "SETQUOTA",    "GETACL",      "SETACL",   "DELETEACL",
    "LISTRIGHTS",  "MYRIGHTS",     "GETMETADATA", "SETMETADATA", "COMPRESS", "NOTIFY",
    "SORT",        "THREAD",       "ESEARCH",     "REPLACE",
};

/* Only what is honest before login (the server's own list comes with the tagged OK): STARTTLS
 * while it can be used, LOGINDISABLED while no password may be sent (login_type = secure
 * before TLS), AUTH=PLAIN once one may. */
static const char *client_caps(const struct session *s, char buf[CLIENT_CAPS_MAX])
{
    snprintf(buf, CLIENT_CAPS_MAX, "IMAP4rev1 SASL-IR LITERAL+ ID%s%s",
             session_starttls_allowed(s) ? " STARTTLS" : "",
             session_password_allowed(s) ? " AUTH=PLAIN" : " LOGINDISABLED");
    return buf;
}

/* ---- replies ---- */

/* Every BAD counts towards the session's limit of invalid commands. */
static void reply_bad(struct session *s, const char *tag, const char *text)
{
    session_reject(s, "%s BAD %s\r\n", tag, text);
}

static void reply_auth_failed(struct session *s, const char *tag)
{
    session_printf(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", tag);
}

static void reply_privacy_required(struct session *s, const char *tag)
{
    session_printf(s, "%s NO [PRIVACYREQUIRED] Use STARTTLS before logging in.\r\n", tag);
}

static int no_arguments(struct session *s, const struct imap_command *cmd)
{
    if (cmd->argc == 0)
        return 1;
    reply_bad(s, cmd->tag, "Unexpected arguments.");
    return 0;
}

/* A plain string argument (atom, quoted or literal), not a list. */
static int is_string(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL;
}

/* ---- login ---- */

/* The command tagged tag goes on (tag may be st->tag): it is answered later. */
static void answer_later(struct imap_state *st, const char *tag, enum imap_front_state front)
{
    if (tag != st->tag)
        mg_strlcpy(st->tag, tag, sizeof st->tag);
    st->front = front;
}

static void start_login(struct session *s, struct imap_state *st, const char *tag, const char *user,
                        const char *password, size_t password_len)
{
    if (session_login(s, user, password, password_len) != 0)
        reply_auth_failed(s, tag); /* too long to be anybody's */
    else
        answer_later(st, tag, IMAP_FRONT_LOGIN);
}

/* The end of an AUTHENTICATE exchange (tag may be st->tag). */
static void sasl_done(struct session *s, struct imap_state *st, const char *tag,
                      enum sasl_front_result r)
{
    switch (r) {
    case SASL_FRONT_LOGIN:
        answer_later(st, tag, IMAP_FRONT_LOGIN);
        return;
    case SASL_FRONT_REFUSED:
        reply_auth_failed(s, tag); /* too long to be anybody's */
        return;
    case SASL_FRONT_UNDECODABLE:
    case SASL_FRONT_MALFORMED:
        reply_bad(s, tag, "Invalid authentication data.");
        return;
    case SASL_FRONT_OTHER_USER:
        session_printf(s,
                       "%s NO [AUTHORIZATIONFAILED] Logging in as another user is not "
                       "supported.\r\n",
                       tag);
        return;
    case SASL_FRONT_TOO_LONG:
        reply_bad(s, tag, "Authentication data too long.");
        return;
    case SASL_FRONT_CANCELED:
        session_printf(s, "%s BAD Authentication canceled.\r\n", tag);
        return;
    case SASL_FRONT_UNSUPPORTED:
        session_printf(s, "%s NO Unsupported authentication mechanism.\r\n", tag);
        return;
    case SASL_FRONT_CONTINUE:
        answer_later(st, tag, IMAP_FRONT_SASL_CONTINUE);
        session_write(s, "+ \r\n", 4);
        return;
    case SASL_FRONT_WAIT:
        return;
    }
}

static void cmd_login(struct session *s, struct imap_state *st, const struct imap_command *cmd)
{
    if (!session_password_allowed(s)) {
        int named = cmd->argc >= 1 && is_string(&cmd->args[0]);
        session_login_refused(s, named ? cmd->args[0].str : NULL, "refused",
                              "LOGIN before STARTTLS");
        reply_privacy_required(s, cmd->tag);
        return;
    }
    if (cmd->argc != 2 || !is_string(&cmd->args[0]) || !is_string(&cmd->args[1])) {
        reply_bad(s, cmd->tag, "LOGIN needs a user name and a password.");
        return;
    }
    const struct imap_arg *user = &cmd->args[0], *pass = &cmd->args[1];
    if (user->len == 0 || memchr(user->str, '\0', user->len)) {
        session_login_refused(s, user->str, "fail", "invalid user name");
        reply_auth_failed(s, cmd->tag);
        return;
    }
    start_login(s, st, cmd->tag, user->str, pass->str, pass->len);
}

static void cmd_authenticate(struct session *s, struct imap_state *st,
                             const struct imap_command *cmd)
{
    if (!session_password_allowed(s)) {
        session_login_refused(s, NULL, "refused", "AUTHENTICATE before STARTTLS");
        reply_privacy_required(s, cmd->tag);
        return;
    }
    if (cmd->argc < 1 || cmd->argc > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
        (cmd->argc == 2 && !is_string(&cmd->args[1]))) {
        reply_bad(s, cmd->tag, "AUTHENTICATE needs a mechanism name.");
        return;
    }
    const struct imap_arg *ir = cmd->argc == 2 ? &cmd->args[1] : NULL;
    sasl_done(s, st, cmd->tag,
              sasl_front_start(s, &st->sasl, SASL_MECH_PLAIN, cmd->args[0].str, cmd->args[0].len,
                               ir ? ir->str : NULL, ir ? ir->len : 0));
}

/* The client's answer to "+ ": base64, or "*" to cancel. Returns 0 when no full line yet. */
static int read_sasl_response(struct session *s, struct imap_state *st)
{
    enum sasl_front_result r = sasl_front_read(s, &st->sasl, IMAP_SASL_LINE_MAX);
    if (r == SASL_FRONT_WAIT)
        return 0;
    st->front = IMAP_FRONT_COMMANDS;
    sasl_done(s, st, st->tag, r);
    return 1;
}

/* ---- other commands ---- */

static void cmd_capability(struct session *s, struct imap_state *st, const struct imap_command *cmd)
{
    MG_UNUSED(st);
    char caps[CLIENT_CAPS_MAX];
    if (no_arguments(s, cmd))
        session_printf(s, "* CAPABILITY %s\r\n%s OK CAPABILITY completed.\r\n",
                       client_caps(s, caps), cmd->tag);
}

static void cmd_noop(struct session *s, struct imap_state *st, const struct imap_command *cmd)
{
    MG_UNUSED(st);
    if (no_arguments(s, cmd))
        session_printf(s, "%s OK NOOP completed.\r\n", cmd->tag);
}

static void cmd_logout(struct session *s, struct imap_state *st, const struct imap_command *cmd)
{
    MG_UNUSED(st);
    if (!no_arguments(s, cmd))
        return;
    session_printf(s, "* BYE Logging out.\r\n%s OK LOGOUT completed.\r\n", cmd->tag);
    session_close(s);
}

static void cmd_starttls(struct session *s, struct imap_state *st, const struct imap_command *cmd)
{
    MG_UNUSED(st);
    if (!session_starttls_allowed(s)) {
        reply_bad(s, cmd->tag, "STARTTLS is not available now.");
        return;
    }
    if (!no_arguments(s, cmd))
        return;
    session_printf(s, "%s OK Begin TLS negotiation now.\r\n", cmd->tag);
    session_start_tls(s);
}

/* The value after field `key` in an ID list (RFC 2971: field value pairs), or NULL. */
static const struct imap_arg *id_field(const struct imap_command *cmd, const char *key)
{
    for (size_t i = 1; i + 1 < cmd->argc; i += 2) {
        const struct imap_arg *k = &cmd->args[i], *v = &cmd->args[i + 1];
        if (k->type == IMAP_ARG_LIST_END || v->type == IMAP_ARG_LIST_END)
            return NULL;
        if (k->len == strlen(key) && strncasecmp(k->str, key, k->len) == 0 && !v->is_nil)
            return v;
    }
    return NULL;
}

/* The audit's client identity: "name/version" from the client's ID. */
static void remember_client_id(struct session *s, const struct imap_command *cmd)
{
    const struct imap_arg *name = id_field(cmd, "name"), *version = id_field(cmd, "version");
    char id[IPC_CLIENT_ID_MAX];
    if (!name)
        return;
    snprintf(id, sizeof id, "%.*s%s%.*s", (int)strnlen(name->str, name->len), name->str,
             version ? "/" : "", version ? (int)strnlen(version->str, version->len) : 0,
             version ? version->str : "");
    session_set_client_id(s, id, strlen(id));
}

static void cmd_id(struct session *s, struct imap_state *st, const struct imap_command *cmd)
{
    MG_UNUSED(st);
    const struct imap_arg *a = cmd->args;
    int nil = cmd->argc == 1 && a[0].type == IMAP_ARG_ATOM && a[0].is_nil;
    int list = cmd->argc >= 2 && a[0].type == IMAP_ARG_LIST_START &&
               a[cmd->argc - 1].type == IMAP_ARG_LIST_END;
    if (!nil && !list) {
        reply_bad(s, cmd->tag, "ID needs NIL or a parenthesised list.");
        return;
    }
    if (list)
        remember_client_id(s, cmd);
    session_printf(s, "* ID (\"name\" \"mailgate\" \"version\" \"%s\")\r\n%s OK ID completed.\r\n",
                   MAILGATE_VERSION, cmd->tag);
}

struct imap_command_handler {
    const char *name;
    void (*run)(struct session *s, struct imap_state *st, const struct imap_command *cmd);
};

static const struct imap_command_handler handlers[] = {
    {"CAPABILITY", cmd_capability},     {"NOOP", cmd_noop}, {"LOGOUT", cmd_logout},
    {"STARTTLS", cmd_starttls},         {"ID", cmd_id},     {"LOGIN", cmd_login},
    {"AUTHENTICATE", cmd_authenticate},
};

static void dispatch(struct session *s, struct imap_state *st, const struct imap_command *cmd)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(handlers); i++) {
        if (strcmp(cmd->name, handlers[i].name) == 0) {
            handlers[i].run(s, st, cmd);
            return;
        }
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(commands_after_login); i++) {
        if (strcmp(cmd->name, commands_after_login[i]) == 0) {
            session_reject(s, "%s BAD Command %s is not allowed before login.\r\n", cmd->tag,
                           cmd->name);
            return;
        }
    }
    reply_bad(s, cmd->tag, "Unknown command.");
}

/* ---- input ---- */

/* Feeds the parser straight from the input buffer's chunks (no copy of the buffer), up to the
 * first result that needs action. */
static enum imap_parse_result feed_parser(struct imap_parser *p, struct evbuffer *in,
                                          size_t *consumed)
{
    struct evbuffer_iovec vec[16];
    int n = evbuffer_peek(in, -1, NULL, vec, 16);
    if (n > 16)
        n = 16;
    enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
    size_t total = 0;
    for (int i = 0; i < n && r == IMAP_PARSE_NEED_MORE; i++) {
        size_t used = 0;
        r = imap_parser_feed(p, vec[i].iov_base, vec[i].iov_len, &used);
        total += used;
    }
    evbuffer_drain(in, total);
    *consumed = total;
    return r;
}

static void handle_parse_error(struct session *s, struct imap_state *st)
{
    if (imap_parser_error_fatal(st->parser)) {
        session_printf(s, "* BYE %s\r\n", imap_parser_error(st->parser));
        session_close(s);
        return;
    }
    reply_bad(s, imap_parser_error_tag(st->parser), imap_parser_error(st->parser));
}

static void imap_on_client_input(struct session *s)
{
    struct imap_state *st = s->proto;
    while (!s->closing && s->state == SESSION_PRELOGIN &&
           evbuffer_get_length(session_input(s)) > 0) {
        if (st->front == IMAP_FRONT_SASL_CONTINUE) {
            if (!read_sasl_response(s, st))
                return;
            continue;
        }
        if (!session_skip_line(s))
            return; /* the rest of a too long AUTHENTICATE line is still coming */
        size_t consumed = 0;
        enum imap_parse_result r = feed_parser(st->parser, session_input(s), &consumed);
        switch (r) {
        case IMAP_PARSE_NEED_MORE:
            if (consumed == 0)
                return; /* cannot happen with a correct parser; never spin */
            break;
        case IMAP_PARSE_LITERAL_CONTINUE:
            session_write(s, "+ Ready for literal data\r\n", 26);
            break;
        case IMAP_PARSE_COMMAND:
            dispatch(s, st, imap_parser_command(st->parser));
            imap_parser_reset(st->parser);
            break;
        case IMAP_PARSE_ERROR:
            handle_parse_error(s, st);
            imap_parser_reset(st->parser);
            break;
        }
    }
}

/* ---- session hooks ---- */

static void imap_greeting(struct session *s)
{
    char caps[CLIENT_CAPS_MAX];
    session_printf(s, "* OK [CAPABILITY %s] %s\r\n", client_caps(s, caps),
                   s->listener->conf->banner);
}

static void imap_on_tls_ready(struct session *s)
{
    MG_UNUSED(s); /* the client asks for CAPABILITY again (RFC 3501 6.2.1) */
}

static void imap_on_login_failed(struct session *s, enum login_failure why)
{
    struct imap_state *st = s->proto;
    imap_upstream_reset(st);
    st->front = IMAP_FRONT_COMMANDS;
    switch (why) {
    case LOGIN_FAIL_CREDENTIALS:
    case LOGIN_FAIL_DISABLED:
    case LOGIN_FAIL_UPSTREAM_AUTH:
        reply_auth_failed(s, st->tag);
        return;
    case LOGIN_FAIL_TEMPORARY:
    case LOGIN_FAIL_INTERNAL:
        session_printf(s,
                       "%s NO [UNAVAILABLE] Temporary authentication failure, try again "
                       "later.\r\n",
                       st->tag);
        return;
    case LOGIN_FAIL_UPSTREAM_UNAVAILABLE:
        session_printf(s,
                       "%s NO [UNAVAILABLE] The mail server is not available, try again "
                       "later.\r\n",
                       st->tag);
        return;
    }
}

static void imap_goodbye(struct session *s, enum session_goodbye why)
{
    switch (why) {
    case GOODBYE_LOGIN_TIMEOUT:
        session_printf(s, "* BYE Login timeout.\r\n");
        return;
    case GOODBYE_TOO_MANY_ERRORS:
        session_printf(s, "* BYE Too many invalid commands.\r\n");
        return;
    case GOODBYE_SHUTDOWN:
        session_printf(s, "* BYE Server shutting down.\r\n");
        return;
    case GOODBYE_TOO_MANY_CONNECTIONS:
        session_printf(s, "* BYE [UNAVAILABLE] Too many connections from your address.\r\n");
        return;
    case GOODBYE_ADDRESS_NOT_ALLOWED:
        session_printf(s, "* BYE Access from your address is not allowed.\r\n");
        return;
    }
}

/* The server's capability list goes into a response code: it must be plain atoms. */
static int caps_are_safe(const char *caps, size_t len)
{
    if (len == 0 || len > 4000)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)caps[i];
        if (c < 0x20 || c > 0x7e || c == ']' || c == '[')
            return 0;
    }
    return 1;
}

void imap_front_logged_in(struct session *s, const char *caps, size_t caps_len)
{
    struct imap_state *st = s->proto;
    if (caps && caps_are_safe(caps, caps_len))
        session_printf(s, "%s OK [CAPABILITY %.*s] Logged in\r\n", st->tag, (int)caps_len, caps);
    else
        session_printf(s, "%s OK Logged in\r\n", st->tag);
    session_login_done(s);
}

static void imap_init_state(struct session *s, void *state)
{
    MG_UNUSED(s);
    struct imap_state *st = state;
    st->parser = imap_parser_new();
}

static void imap_release_state(void *state)
{
    struct imap_state *st = state;
    imap_parser_free(&st->parser);
    imap_upstream_reset(st);
}

const struct proto_ops imap_proto_ops = {
    .protocol = MG_PROTO_IMAP,
    .state_size = sizeof(struct imap_state),
    .init_state = imap_init_state,
    .release_state = imap_release_state,
    .greeting = imap_greeting,
    .on_client_input = imap_on_client_input,
    .on_tls_ready = imap_on_tls_ready,
    .on_login_failed = imap_on_login_failed,
    .upstream_ready = imap_upstream_ready,
    .on_upstream_input = imap_upstream_input,
    .goodbye = imap_goodbye,
};
