/* Session core: connections, TLS/STARTTLS, timers, broker request, upstream, relay, closing.
 * Protocol grammar lives elsewhere (struct proto_ops). */
#include "session.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "log.h"
#include "relay.h"
#include "sasl.h"
#include "session_audit.h"
#include "session_io.h"
#include "tls.h"
#include "util.h"
#include "worker_metrics.h"

#define MAX_BAD_COMMANDS 10
#define CLOSE_FLUSH_MS 5000
#define CLOSE_LINGER_MS 2000
#define UPSTREAM_TIMEOUT_CAP_MS 30000
#define UPSTREAM_TIMEOUT_MIN_MS 1000

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);

static struct timeval ms_to_tv(uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void arm_timer(struct event *ev, uint64_t ms)
{
    struct timeval tv = ms_to_tv(ms);
    evtimer_add(ev, &tv);
}

/* ---- logging ---- */

/* reason: the details; cause: the outcome as one fixed word of the login audit (ipc.h). */
static void log_login(struct session *s, const char *result, const char *reason, const char *cause)
{
    if (!s->login_active)
        return;
    s->login_active = 0;
    session_audit_login(s, cause, mg_now_ms() - s->login_started_ms);
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

static void wipe_token(struct session *s)
{
    if (s->token) {
        mg_wipe(s->token, s->token_len);
        free(s->token);
        s->token = NULL;
        s->token_len = 0;
    }
}

/* The protocol's login-phase state goes (wiped: it may have held a secret). */
static void free_proto_state(struct session *s)
{
    if (!s->proto)
        return;
    if (s->ops->release_state)
        s->ops->release_state(s->proto);
    mg_wipe(s->proto, s->ops->state_size);
    free(s->proto);
    s->proto = NULL;
}

/* ---- closing ---- */

static void free_event_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct session *s = arg;
    struct worker_ctx *w = s->w;
    session_free(s);
    if (w->stopping && w->n_sessions == 0)
        event_base_loopbreak(w->base); /* every goodbye is out: the worker may exit now */
}

static void schedule_free(struct session *s)
{
    struct timeval zero = {0, 0};
    evtimer_add(s->free_event, &zero);
}

static void flush_event_cb(struct bufferevent *bev, short what, void *arg)
{
    MG_UNUSED(bev), MG_UNUSED(what);
    schedule_free(arg);
}

static void linger_read_cb(struct bufferevent *bev, void *arg)
{
    MG_UNUSED(arg);
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

/* Last words are out: half-close and swallow what the client still sends for a moment. Closing
 * with unread input makes the kernel send RST, and the client may never read our goodbye. */
static void start_linger(struct session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->client);
    if (ssl && SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);
    shutdown(bufferevent_getfd(s->client), SHUT_WR);
    linger_read_cb(s->client, s);
    bufferevent_setcb(s->client, linger_read_cb, NULL, flush_event_cb, s);
    bufferevent_setwatermark(s->client, EV_READ, 0, 0);
    bufferevent_disable(s->client, EV_WRITE);
    bufferevent_enable(s->client, EV_READ);
    arm_timer(s->flush_timer, CLOSE_LINGER_MS);
}

static void flush_written_cb(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        start_linger(arg);
}

static void flush_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    schedule_free(arg);
}

/* Marks the session closing and quiets it; the memory is freed from the loop later, so every
 * caller up the stack may still look at s (and must return as soon as it sees s->closing). */
static void close_session(struct session *s, const char *why, int flush)
{
    if (s->closing)
        return;
    log_login(s, "error", why, "aborted");
    log_debug("session=%s closing: %s", s->id, why);
    s->closing = 1;
    s->state = SESSION_CLOSING;
    evtimer_del(s->login_timer);
    evtimer_del(s->delay_timer);
    if (s->request_pending)
        worker_cancel_auth_request(s->w, s);
    wipe_token(s);
    if (s->upstream_bev)
        bufferevent_disable(s->upstream_bev, EV_READ | EV_WRITE);
    if (flush && s->client && evbuffer_get_length(bufferevent_get_output(s->client)) > 0) {
        /* Input is swallowed meanwhile: a client blocked in send() would never read. */
        bufferevent_setcb(s->client, linger_read_cb, flush_written_cb, flush_event_cb, s);
        bufferevent_setwatermark(s->client, EV_WRITE, 0, 0);
        bufferevent_setwatermark(s->client, EV_READ, 0, 0);
        bufferevent_enable(s->client, EV_READ | EV_WRITE);
        arm_timer(s->flush_timer, CLOSE_FLUSH_MS);
        return;
    }
    if (s->client)
        bufferevent_disable(s->client, EV_READ | EV_WRITE);
    schedule_free(s);
}

void session_close(struct session *s)
{
    close_session(s, "closed by the protocol", 1);
}

void session_free(struct session *s)
{
    log_login(s, "error", "session ended", "aborted");
    if (s->request_pending)
        worker_cancel_auth_request(s->w, s);
    worker_uncount_connection(s->w, s);
    free_proto_state(s);
    relay_free(&s->relay);
    upstream_free(&s->upstream);
    conn_free(&s->upstream_bev);
    conn_free(&s->client);
    wipe_token(s);
    event_free(s->login_timer);
    event_free(s->delay_timer);
    event_free(s->flush_timer);
    event_free(s->free_event);
    if (s->prev)
        s->prev->next = s->next;
    else
        s->w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->w->n_sessions--;
    free(s);
}

int session_bad_command(struct session *s)
{
    if (++s->bad_commands < MAX_BAD_COMMANDS)
        return 0;
    s->ops->goodbye(s, GOODBYE_TOO_MANY_ERRORS);
    close_session(s, "too many invalid commands", 1);
    return -1;
}

/* Gives the protocol whatever input is waiting (pipelined commands, or input left unread
 * during a login attempt or while the client did not read our replies): reading resumes, but
 * bytes already buffered would never make the read callback run again. */
static void resume_commands(struct session *s)
{
    if (session_output_full(s)) {
        session_wait_for_output(s);
        return;
    }
    s->state = SESSION_PRELOGIN;
    bufferevent_enable(s->client, EV_READ);
    if (evbuffer_get_length(session_input(s)) > 0)
        s->ops->on_client_input(s);
}

/* ---- TLS on the client connection ---- */

static void install_client_callbacks(struct session *s)
{
    bufferevent_setcb(s->client, client_read_cb, client_write_cb, client_event_cb, s);
    bufferevent_setwatermark(s->client, EV_READ, 0, CLIENT_INPUT_MAX);
    bufferevent_setwatermark(s->client, EV_WRITE, CLIENT_OUTPUT_RESUME, 0);
    bufferevent_enable(s->client, EV_READ | EV_WRITE);
}

int session_starttls_allowed(const struct session *s)
{
    return s->listener->conf->tls == MG_TLS_STARTTLS && !s->client_tls;
}

static void starttls_flushed_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    if (s->state != SESSION_STARTTLS || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    SSL *ssl = tls_server_ssl_new(s->w->server_tls, s->ops->protocol);
    if (!ssl || tls_upgrade(s->w->base, &s->client, ssl, BUFFEREVENT_SSL_ACCEPTING) != 0) {
        log_error("session=%s cannot start TLS", s->id);
        close_session(s, "cannot start TLS", 0);
        return;
    }
    s->state = SESSION_HANDSHAKE;
    install_client_callbacks(s);
}

void session_start_tls(struct session *s)
{
    struct evbuffer *in = session_input(s);
    /* Anything sent after the command and before the handshake is not protected: drop it. */
    evbuffer_drain(in, evbuffer_get_length(in));
    s->skipping_line = 0;
    s->state = SESSION_STARTTLS;
    bufferevent_disable(s->client, EV_READ);
    bufferevent_setcb(s->client, NULL, starttls_flushed_cb, client_event_cb, s);
    bufferevent_setwatermark(s->client, EV_WRITE, 0, 0);
    bufferevent_enable(s->client, EV_WRITE);
}

/* ---- client events ---- */

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    MG_UNUSED(bev);
    struct session *s = arg;
    if (s->state == SESSION_PRELOGIN)
        s->ops->on_client_input(s);
}

/* A client outside allow = or over max_connections_per_ip hears the protocol's goodbye instead
 * of a greeting; on an implicit TLS listener after the handshake, so that it can read it. */
static void greet(struct session *s)
{
    if (s->not_allowed) {
        log_info("session=%s listener=%s client=%s refused: address not allowed", s->id,
                 s->listener->conf->name, s->client_addr);
        s->ops->goodbye(s, GOODBYE_ADDRESS_NOT_ALLOWED);
        session_audit_login(s, "address not allowed", 0); /* who knocked, for the audit */
        close_session(s, "address not allowed", 1);
    } else if (s->over_limit) {
        s->ops->goodbye(s, GOODBYE_TOO_MANY_CONNECTIONS);
        close_session(s, "too many connections from this address", 1);
    } else {
        s->ops->greeting(s);
    }
}

/* The client has read our replies down to CLIENT_OUTPUT_RESUME. */
static void client_write_cb(struct bufferevent *bev, void *arg)
{
    MG_UNUSED(bev);
    struct session *s = arg;
    if (s->state == SESSION_OUTPUT_WAIT)
        resume_commands(s);
}

static void handshake_done(struct session *s)
{
    int after_starttls = s->client_tls == 0 && s->listener->conf->tls == MG_TLS_STARTTLS;
    s->client_tls = 1;
    s->state = SESSION_PRELOGIN;
    if (after_starttls)
        s->ops->on_tls_ready(s);
    else
        greet(s);
    if (!s->closing)
        resume_commands(s);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (s->state == SESSION_HANDSHAKE)
            handshake_done(s);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (what & BEV_EVENT_ERROR) {
        char why[256];
        tls_describe_error(bev, why, sizeof why);
        log_debug("session=%s client error%s: %s", s->id,
                  s->state == SESSION_HANDSHAKE ? " in TLS handshake" : "", why);
    }
    close_session(s, "client closed the connection", 0);
}

/* ---- timers ---- */

static void login_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct session *s = arg;
    if (s->state == SESSION_RELAY || s->closing)
        return;
    /* Nothing can be said in the clear while TLS is being set up. */
    if (s->state != SESSION_HANDSHAKE && s->state != SESSION_STARTTLS)
        s->ops->goodbye(s, GOODBYE_LOGIN_TIMEOUT);
    close_session(s, "login timeout", 1);
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

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct session *s = arg;
    if (s->state != SESSION_AUTH_DELAY)
        return;
    s->ops->on_login_failed(s, s->held_failure);
    if (!s->closing)
        resume_commands(s);
}

/* Ends a login attempt that failed: logs it with its cause and real duration, lets go of the
 * token and the upstream. The protocol answers from the loop (never from inside the caller's
 * stack), after failure_answer_delay_ms(); client input waits meanwhile. */
static void login_failed(struct session *s, enum login_failure why, const char *result,
                         const char *reason, const char *cause)
{
    log_login(s, result, reason, cause);
    wipe_token(s);
    upstream_free(&s->upstream);
    s->state = SESSION_AUTH_DELAY;
    s->held_failure = why;
    arm_timer(s->delay_timer, failure_answer_delay_ms(s, why));
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
    log_login(s, result, reason, "refused");
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
        .dns = s->w->dns,
        .tls_ctx = ctx,
        .server = server,
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
    wipe_token(s);
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
    wipe_token(s);
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

/* ---- relay ---- */

static void relay_done_cb(void *arg, const char *why)
{
    struct session *s = arg;
    struct relay_stats st;
    relay_get_stats(s->relay, &st);
    log_info("session=%s closed: %s client_bytes=%llu server_bytes=%llu duration_ms=%llu", s->id,
             why, (unsigned long long)st.client_bytes, (unsigned long long)st.upstream_bytes,
             (unsigned long long)(mg_now_ms() - s->started_ms));
    session_audit_end(s, st.client_bytes, st.upstream_bytes, mg_now_ms() - s->started_ms);
    close_session(s, why, 0);
}

void session_login_done(struct session *s)
{
    if (s->closing || s->state != SESSION_UPSTREAM)
        return;
    log_login(s, "ok", "", "ok");
    worker_metrics_upstream_logged_in(mg_now_ms() - upstream_started_ms(s->upstream));
    evtimer_del(s->login_timer);
    wipe_token(s);
    /* Detach: the login phase's parser, buffers and secrets go now. */
    free_proto_state(s);
    s->upstream_bev = upstream_detach(&s->upstream);
    s->state = SESSION_RELAY;
    s->relay = relay_new(s->w->base, s->client, s->upstream_bev, s->listener->conf->idle_timeout_ms,
                         relay_done_cb, s);
}

/* ---- shutdown ---- */

void session_shutdown(struct session *s)
{
    if (s->closing)
        return;
    if (s->state == SESSION_RELAY) {
        relay_done_cb(s, "server shutting down"); /* protocol-blind: nothing to say */
        return;
    }
    /* A login under way upstream ends here: its callbacks must not answer the client. */
    upstream_free(&s->upstream);
    /* Nothing can be said in the clear while TLS is being set up. */
    int speak = s->state != SESSION_HANDSHAKE && s->state != SESSION_STARTTLS;
    if (speak)
        s->ops->goodbye(s, GOODBYE_SHUTDOWN);
    close_session(s, "server shutting down", speak);
}

/* ---- creation ---- */

static void format_addr(const struct sockaddr *sa, int salen, char *out, size_t outlen)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getnameinfo(sa, (socklen_t)salen, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        mg_strlcpy(out, "unknown", outlen);
        return;
    }
    snprintf(out, outlen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static int open_client(struct session *s, int fd)
{
    if (s->listener->conf->tls == MG_TLS_IMPLICIT) {
        SSL *ssl = tls_server_ssl_new(s->w->server_tls, s->ops->protocol);
        if (!ssl) {
            close(fd);
            return -1;
        }
        s->client = tls_bev_new(s->w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING);
        s->state = SESSION_HANDSHAKE;
    } else {
        /* Plain and not owning fd, so that STARTTLS can reuse the socket. */
        s->client = bufferevent_socket_new(s->w->base, fd, 0);
        if (!s->client)
            close(fd);
        else
            conn_tune_socket(fd);
        s->state = SESSION_PRELOGIN;
    }
    if (!s->client)
        return -1;
    install_client_callbacks(s);
    return 0;
}

struct session *session_new(struct listener *l, int fd, const struct sockaddr *sa, int salen)
{
    struct worker_ctx *w = l->w;
    struct session *s = mg_calloc(1, sizeof *s);
    s->w = w;
    s->listener = l;
    s->ops = l->ops;
    s->started_ms = mg_now_ms();
    unsigned char rnd[4];
    mg_random_bytes(rnd, sizeof rnd);
    snprintf(s->id, sizeof s->id, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    format_addr(sa, salen, s->client_addr, sizeof s->client_addr);
    s->over_limit = worker_count_connection(w, s);
    s->not_allowed = !cidr_list_match(&l->conf->allow, sa);
    s->login_timer = evtimer_new(w->base, login_timeout_cb, s);
    s->delay_timer = evtimer_new(w->base, delay_cb, s);
    s->flush_timer = evtimer_new(w->base, flush_timeout_cb, s);
    s->free_event = evtimer_new(w->base, free_event_cb, s);
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->n_sessions++;
    s->proto = mg_calloc(1, s->ops->state_size);
    if (s->ops->init_state)
        s->ops->init_state(s, s->proto);
    if (open_client(s, fd) != 0) {
        log_error("session=%s cannot set up the client connection", s->id);
        session_free(s);
        return NULL;
    }
    log_debug("session=%s listener=%s client=%s connected", s->id, l->conf->name, s->client_addr);
    arm_timer(s->login_timer, l->conf->login_timeout_ms);
    if (s->state == SESSION_PRELOGIN)
        greet(s);
    return s;
}
