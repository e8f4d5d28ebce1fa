/* Session core, a login attempt: the broker request and its answer, the upstream connection and
 * its login dialog's outcome, refused tokens (the broker's verdict, one retry), the failure
 * delay and the login log line. The connection's lifecycle is session.c (session_core.h). */
#include "session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "protolog.h"
#include "sasl.h"
#include "session_audit.h"
#include "session_core.h"
#include "tls.h"
#include "util.h"
#include "worker_metrics.h"

#define UPSTREAM_TIMEOUT_CAP_MS 30000
#define UPSTREAM_TIMEOUT_MIN_MS 1000

void session_log_login(struct session *s, const char *result, const char *reason, const char *cause)
{
    if (!s->login_active)
        return;
    s->login_active = 0;
    session_audit_login(s, cause, reason, mg_now_ms() - s->login_started_ms);
    worker_metrics_login(s->ops->protocol, result);
    char user[300], mailbox[360], why[300], word[IPC_CAUSE_MAX + 8];
    log_info("login session=%s listener=%s client=%s user=%s mailbox=%s result=%s reason=%s "
             "duration_ms=%llu cause=%s",
             s->id, s->listener->conf->name, s->client_addr,
             log_quote(user, sizeof user, s->user, (size_t)-1),
             log_quote(mailbox, sizeof mailbox, s->mailbox, (size_t)-1), result,
             log_quote(why, sizeof why, reason, (size_t)-1),
             (unsigned long long)(mg_now_ms() - s->login_started_ms),
             log_quote(word, sizeof word, cause, (size_t)-1));
}

void session_wipe_token(struct session *s)
{
    if (s->token) {
        mg_wipe(s->token, s->token_len);
        free(s->token);
        s->token = NULL;
        s->token_len = 0;
    }
}

static int is_authentication_failure(enum login_failure f)
{
    return f == LOGIN_FAIL_CREDENTIALS || f == LOGIN_FAIL_DISABLED || f == LOGIN_FAIL_UPSTREAM_AUTH;
}

/* How long the client still waits for the answer to a failed login. Every authentication
 * failure (wrong password, unknown user, protocol disabled, mailbox or token refused upstream)
 * is answered auth_failure_delay after the login command arrived: however long finding it out
 * took, the answer comes at the same moment, so its timing does not tell a right password the
 * upstream refused from a wrong one. No jitter: a fixed moment hides the cause; noise on top of
 * a time that depends on the cause would only be averaged away. "Try later" failures are
 * answered at once. After repeated failures the broker's throttle sends a longer delay (the
 * pair's or the address's), also with an accepted password, so that a refusal by the upstream
 * is answered at the same moment as a wrong guess would have been. */
static uint64_t failure_answer_delay_ms(const struct session *s, enum login_failure why)
{
    if (!is_authentication_failure(why))
        return 0;
    uint64_t delay =
        s->broker_delay_ms ? s->broker_delay_ms : s->w->cfg->gateway.auth_failure_delay_ms;
    uint64_t due = s->login_started_ms + delay;
    uint64_t now = mg_now_ms();
    return due > now ? due - now : 0;
}

void session_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct session *s = arg;
    if (s->state != SESSION_AUTH_DELAY)
        return;
    s->ops->on_login_failed(s, s->held_failure);
    if (!s->closing)
        session_resume_commands(s);
}

/* Ends a login attempt that failed: logs it with its cause and real duration, lets go of the
 * token and the upstream. The protocol answers from the loop (never from inside the caller's
 * stack), after failure_answer_delay_ms(); client input waits meanwhile. */
static void login_failed(struct session *s, enum login_failure why, const char *result,
                         const char *reason, const char *cause)
{
    session_log_login(s, result, reason, cause);
    session_wipe_token(s);
    upstream_free(&s->upstream);
    s->state = SESSION_AUTH_DELAY;
    s->held_failure = why;
    session_arm_timer(s->delay_timer, failure_answer_delay_ms(s, why));
}

/* Per failure: the log's result, and the audit's word when the broker gave none. */
static const struct {
    const char *result, *cause;
} failure_words[] = {
    [LOGIN_FAIL_CREDENTIALS] = {"fail", "wrong password"},
    [LOGIN_FAIL_DISABLED] = {"fail", "protocol disabled"},
    [LOGIN_FAIL_TEMPORARY] = {"tempfail", "busy"},
    [LOGIN_FAIL_UPSTREAM_AUTH] = {"fail", "upstream refused"},
    [LOGIN_FAIL_UPSTREAM_UNAVAILABLE] = {"tempfail", "upstream unavailable"},
    [LOGIN_FAIL_INTERNAL] = {"error", "internal error"},
};

static const char *failure_result(enum login_failure f)
{
    return (size_t)f < MG_ARRAY_LEN(failure_words) ? failure_words[f].result : "error";
}

static const char *failure_cause(enum login_failure f)
{
    return (size_t)f < MG_ARRAY_LEN(failure_words) ? failure_words[f].cause : "internal error";
}

/* login_failed() with the log result the failure implies; cause NULL or "": failure_cause. */
static void hold_failure(struct session *s, enum login_failure why, const char *reason,
                         const char *cause)
{
    login_failed(s, why, failure_result(why), reason,
                 cause && cause[0] ? cause : failure_cause(why));
}

/* ---- login: broker ---- */

void session_login_refused(struct session *s, const char *user, const char *result,
                           const char *reason)
{
    if (s->login_active)
        return; /* cannot happen: no command is read while a login is in progress */
    mg_strlcpy(s->user, user ? user : "", sizeof s->user);
    s->mailbox[0] = s->provider[0] = '\0';
    s->login_active = 1;
    s->login_started_ms = mg_now_ms();
    s->broker_delay_ms = 0;
    session_log_login(s, result, reason, "refused");
}

int session_login(struct session *s, const char *user, const char *password, size_t password_len)
{
    if (strlen(user) >= IPC_USER_MAX || password_len >= IPC_PASSWORD_MAX) {
        session_login_refused(s, user, "fail", "user name or password too long");
        return -1;
    }
    struct ipc_auth_request req;
    memset(&req, 0, sizeof req);
    req.protocol = s->ops->protocol;
    mg_strlcpy(req.listener, s->listener->conf->name, sizeof req.listener);
    mg_strlcpy(req.client_addr, s->client_addr, sizeof req.client_addr);
    mg_strlcpy(req.user, user, sizeof req.user);
    memcpy(req.password, password, password_len);
    req.password_len = (uint32_t)password_len;

    mg_strlcpy(s->user, user, sizeof s->user);
    s->mailbox[0] = s->provider[0] = s->reason[0] = '\0';
    s->token_retried = 0;
    s->login_active = 1;
    s->login_started_ms = mg_now_ms();
    s->broker_delay_ms = 0;
    s->state = SESSION_AUTH_WAIT;
    int rc = worker_send_auth_request(s->w, s, &req);
    mg_wipe(&req, sizeof req);
    if (rc != 0)
        hold_failure(s, LOGIN_FAIL_INTERNAL, "broker unavailable", NULL);
    return 0;
}

/* ---- login: upstream ---- */

static void upstream_ready_cb(void *arg)
{
    struct session *s = arg;
    protolog_tap_upstream(s, upstream_bufferevent(s->upstream));
    s->ops->upstream_ready(s);
}

static void upstream_input_cb(void *arg)
{
    struct session *s = arg;
    s->ops->on_upstream_input(s);
}

static void upstream_failure_cb(void *arg, enum upstream_failure f, const char *detail)
{
    session_upstream_failed(arg, f, detail);
}

static const struct upstream_handler upstream_handler = {
    .on_ready = upstream_ready_cb,
    .on_input = upstream_input_cb,
    .on_failure = upstream_failure_cb,
};

static uint64_t upstream_timeout_ms(const struct session *s)
{
    uint64_t deadline = s->started_ms + s->listener->conf->login_timeout_ms, now = mg_now_ms();
    uint64_t left = deadline > now ? deadline - now : 0;
    if (left > UPSTREAM_TIMEOUT_CAP_MS)
        left = UPSTREAM_TIMEOUT_CAP_MS;
    return left < UPSTREAM_TIMEOUT_MIN_MS ? UPSTREAM_TIMEOUT_MIN_MS : left;
}

static void start_upstream(struct session *s, struct ipc_auth_response *res)
{
    const struct provider_conf *p = config_provider(s->w->cfg, res->provider);
    if (!p) {
        hold_failure(s, LOGIN_FAIL_INTERNAL, "unknown provider in broker response", NULL);
        return;
    }
    mg_strlcpy(s->reason, res->reason, sizeof s->reason);
    const struct server_addr *server = provider_server(p, s->ops->protocol);
    if (!server) { /* the broker refuses such logins; should one get here, fail cleanly */
        s->state = SESSION_UPSTREAM;
        session_upstream_failedf(s, UPSTREAM_CONNECT_FAILED, "provider has no %s_server",
                                 mg_proto_name(s->ops->protocol));
        return;
    }
    SSL_CTX *ctx = tls_client_ctx(s->w->client_tls, p->ca_file);
    if (!ctx) {
        hold_failure(s, LOGIN_FAIL_INTERNAL, "no TLS context for the provider", NULL);
        return;
    }
    s->token = mg_malloc(res->token_len + 1);
    memcpy(s->token, res->token, res->token_len);
    s->token[res->token_len] = '\0';
    s->token_len = res->token_len;
    s->token_id = res->token_id;
    s->sasl = p->sasl;
    s->server = server;
    struct upstream_params params = {
        .base = s->w->base,
        .resolver = s->w->resolver,
        .tls_ctx = ctx,
        .server = server,
        .resume_scope = p->name,
        .timeout_ms = upstream_timeout_ms(s),
    };
    s->state = SESSION_UPSTREAM;
    s->upstream = upstream_connect(&params, &upstream_handler, s);
}

/* The upstream refused the broker's token: report it (the broker drops a stale token) and
 * wait for the verdict, a fresh token to try once more or how to fail. Never sends the token
 * back: its id names it. -1 when the broker cannot be asked. */
static int report_refused_token(struct session *s, const char *reason)
{
    struct ipc_token_refused ref = {
        .protocol = s->ops->protocol, .token_id = s->token_id, .want_token = !s->token_retried};
    mg_strlcpy(ref.user, s->user, sizeof ref.user);
    if (worker_send_token_refused(s->w, s, &ref) != 0)
        return -1;
    session_wipe_token(s);
    upstream_free(&s->upstream);
    s->token_refused = 1;
    s->token_retried = 1;
    mg_strlcpy(s->reason, reason, sizeof s->reason); /* the upstream's words, for the log */
    s->state = SESSION_AUTH_WAIT;
    return 0;
}

/* Temporary until a fresh token has been tried (the broker answers AUTH_FAIL only then). */
static void on_refusal_verdict(struct session *s, struct ipc_auth_response *res)
{
    s->token_refused = 0;
    if (res->status == AUTH_OK) {
        log_debug("session=%s upstream refused the token; retrying with a fresh one", s->id);
        start_upstream(s, res);
        return;
    }
    char reason[SESSION_REASON_MAX];
    if (snprintf(reason, sizeof reason, "%s; %s", s->reason, res->reason) < 0)
        reason[0] = '\0';
    if (res->status == AUTH_FAIL)
        hold_failure(s, LOGIN_FAIL_UPSTREAM_AUTH, reason, res->cause);
    else
        hold_failure(s, LOGIN_FAIL_TEMPORARY, reason, res->cause);
}

void session_on_auth_response(struct session *s, struct ipc_auth_response *res)
{
    s->request_pending = 0;
    if (s->state != SESSION_AUTH_WAIT || s->closing)
        return;
    if (s->token_refused) {
        on_refusal_verdict(s, res);
        return;
    }
    s->broker_delay_ms = res->delay_ms;
    mg_strlcpy(s->mailbox, res->mailbox, sizeof s->mailbox);
    mg_strlcpy(s->provider, res->provider, sizeof s->provider);
    switch (res->status) {
    case AUTH_OK:
        start_upstream(s, res);
        return;
    case AUTH_FAIL:
        hold_failure(s, LOGIN_FAIL_CREDENTIALS, res->reason, res->cause);
        return;
    case AUTH_TEMPFAIL:
        hold_failure(s, LOGIN_FAIL_TEMPORARY, res->reason, res->cause);
        return;
    case AUTH_DISABLED:
        hold_failure(s, LOGIN_FAIL_DISABLED, res->reason, res->cause);
        return;
    }
    hold_failure(s, LOGIN_FAIL_INTERNAL, "unknown broker status", NULL);
}

size_t session_sasl_response_size(const struct session *s)
{
    if (s->sasl == MG_SASL_OAUTHBEARER)
        return sasl_oauthbearer_size(s->mailbox, s->server->host, s->token_len);
    return sasl_xoauth2_size(s->mailbox, s->token_len);
}

long session_sasl_response(struct session *s, char *out, size_t outlen)
{
    if (!s->token)
        return -1;
    long n = s->sasl == MG_SASL_OAUTHBEARER
                 ? sasl_oauthbearer_encode(s->mailbox, s->server->host, s->server->port, s->token,
                                           s->token_len, out, outlen)
                 : sasl_xoauth2_encode(s->mailbox, s->token, s->token_len, out, outlen);
    session_wipe_token(s);
    return n;
}

const char *session_sasl_mechanism(const struct session *s)
{
    return mg_sasl_name(s->sasl);
}

void session_upstream_failedf(struct session *s, enum upstream_failure f, const char *fmt, ...)
{
    char detail[IPC_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    session_upstream_failed(s, f, detail);
}

static enum login_failure upstream_to_login_failure(enum upstream_failure f)
{
    switch (f) {
    case UPSTREAM_AUTH_REJECTED:
        return LOGIN_FAIL_UPSTREAM_AUTH;
    case UPSTREAM_CONNECT_FAILED:
    case UPSTREAM_TLS_FAILED:
    case UPSTREAM_PROTOCOL_ERROR:
    case UPSTREAM_TEMP_FAILURE:
    case UPSTREAM_TIMEOUT:
        return LOGIN_FAIL_UPSTREAM_UNAVAILABLE;
    }
    return LOGIN_FAIL_UPSTREAM_UNAVAILABLE;
}

void session_upstream_failed(struct session *s, enum upstream_failure f, const char *detail)
{
    if (s->closing || s->state != SESSION_UPSTREAM)
        return;
    char reason[SESSION_REASON_MAX];
    /* s->reason: the broker's hint on an accepted login (e.g. the token lacks a permission) */
    int hint = f == UPSTREAM_AUTH_REJECTED && s->reason[0];
    snprintf(reason, sizeof reason, "upstream %s: %s%s%.*s", upstream_failure_name(f), detail,
             hint ? "; " : "", IPC_REASON_MAX - 1, hint ? s->reason : "");
    if (f == UPSTREAM_AUTH_REJECTED && report_refused_token(s, reason) == 0)
        return;
    enum login_failure lf = upstream_to_login_failure(f);
    const char *result = f == UPSTREAM_PROTOCOL_ERROR ? "error" : failure_result(lf);
    login_failed(s, lf, result, reason, failure_cause(lf));
}
