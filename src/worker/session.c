/* Session core, the connection's lifecycle: client events, TLS/STARTTLS, timers, closing, the
 * switch to the relay, creation. A login attempt (broker request, upstream login, failure delay)
 * is session_login.c; protocol grammar lives elsewhere (struct proto_ops). */
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
#include "protolog.h"
#include "relay.h"
#include "session_audit.h"
#include "session_core.h"
#include "session_io.h"
#include "tls.h"
#include "util.h"
#include "worker_metrics.h"

#define MAX_BAD_COMMANDS 10
#define CLOSE_FLUSH_MS 5000
#define CLOSE_LINGER_MS 2000

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);

static struct timeval ms_to_tv(uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

void session_arm_timer(struct event *ev, uint64_t ms)
{
    struct timeval tv = ms_to_tv(ms);
    evtimer_add(ev, &tv);
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
    session_arm_timer(s->flush_timer, CLOSE_LINGER_MS);
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
    session_log_login(s, "error", why, "aborted");
    log_debug("session=%s closing: %s", s->id, why);
    s->closing = 1;
    s->state = SESSION_CLOSING;
    evtimer_del(s->login_timer);
    evtimer_del(s->delay_timer);
    if (s->request_pending)
        worker_cancel_auth_request(s->w, s);
    session_wipe_token(s);
    if (s->upstream_bev)
        bufferevent_disable(s->upstream_bev, EV_READ | EV_WRITE);
    if (flush && s->client && evbuffer_get_length(bufferevent_get_output(s->client)) > 0) {
        /* Input is swallowed meanwhile: a client blocked in send() would never read. */
        bufferevent_setcb(s->client, linger_read_cb, flush_written_cb, flush_event_cb, s);
        bufferevent_setwatermark(s->client, EV_WRITE, 0, 0);
        bufferevent_setwatermark(s->client, EV_READ, 0, 0);
        bufferevent_enable(s->client, EV_READ | EV_WRITE);
        session_arm_timer(s->flush_timer, CLOSE_FLUSH_MS);
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
    session_log_login(s, "error", "session ended", "aborted");
    if (s->request_pending)
        worker_cancel_auth_request(s->w, s);
    worker_uncount_connection(s->w, s);
    free_proto_state(s);
    relay_free(&s->relay);
    upstream_free(&s->upstream);
    conn_free(&s->upstream_bev);
    conn_free(&s->client);
    protolog_close(s);
    session_wipe_token(s);
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
void session_resume_commands(struct session *s)
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
    protolog_tap_client(s);
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
        session_audit_login(s, "address not allowed", "", 0); /* who knocked, for the audit */
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
        session_resume_commands(s);
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
        session_resume_commands(s);
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

static void relay_tap_cb(void *arg, int from_client, const void *data, size_t len)
{
    protolog_relayed(arg, from_client, data, len);
}

void session_login_done(struct session *s)
{
    if (s->closing || s->state != SESSION_UPSTREAM)
        return;
    session_log_login(s, "ok", "", "ok");
    worker_metrics_upstream_logged_in(mg_now_ms() - upstream_started_ms(s->upstream));
    evtimer_del(s->login_timer);
    session_wipe_token(s);
    /* Detach: the login phase's parser, buffers and secrets go now. */
    free_proto_state(s);
    s->upstream_bev = upstream_detach(&s->upstream);
    s->state = SESSION_RELAY;
    protolog_relay(s);
    struct relay_params params = {.idle_timeout_ms = s->listener->conf->idle_timeout_ms,
                                  .done = relay_done_cb,
                                  .tap = s->plog ? relay_tap_cb : NULL,
                                  .arg = s};
    s->relay = relay_new(s->w->base, s->client, s->upstream_bev, &params);
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
    s->delay_timer = evtimer_new(w->base, session_delay_cb, s);
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
    protolog_open(s);
    if (open_client(s, fd) != 0) {
        log_error("session=%s cannot set up the client connection", s->id);
        session_free(s);
        return NULL;
    }
    log_debug("session=%s listener=%s client=%s connected", s->id, l->conf->name, s->client_addr);
    session_arm_timer(s->login_timer, l->conf->login_timeout_ms);
    if (s->state == SESSION_PRELOGIN)
        greet(s);
    return s;
}
