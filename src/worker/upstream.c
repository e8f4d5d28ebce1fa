/* Upstream connection for the login phase: plain connect, then TLS on the same socket. Doing
 * the TLS step separately keeps the failure taxonomy exact (connect vs TLS) and gives STARTTLS
 * the same code path as implicit TLS. */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>

#include "dns_cache.h"
#include "log.h"
#include "tls.h"
#include "tls_resume.h"
#include "util.h"
#include "worker_metrics.h"

/* The login dialog reads bounded lines; this only stops a flooding server from filling memory
 * between two reads. */
#define UPSTREAM_READ_HIGH (64 * 1024)

enum upstream_phase { PHASE_CONNECTING, PHASE_HANDSHAKE, PHASE_READY };

struct upstream {
    struct event_base *base;
    struct dns_cache *resolver;
    struct dns_wait *resolving; /* waiting for the resolver */
    struct dns_addrs addrs;     /* the host's addresses, tried in order */
    size_t next_addr;
    SSL_CTX *tls_ctx;
    char *host;
    char *resume_scope;
    uint16_t port;
    enum mg_tls_mode tls_mode;
    int tls_on;
    enum upstream_phase phase;
    struct bufferevent *bev;
    struct event *kick;  /* starts the connect from the loop, so no callback runs early */
    struct event *timer; /* the whole login phase */
    uint64_t timeout_ms;
    uint64_t started_ms;
    struct upstream_handler handler;
    void *arg;
};

const char *upstream_failure_name(enum upstream_failure f)
{
    switch (f) {
    case UPSTREAM_CONNECT_FAILED:
        return "connect failed";
    case UPSTREAM_TLS_FAILED:
        return "TLS failed";
    case UPSTREAM_PROTOCOL_ERROR:
        return "protocol error";
    case UPSTREAM_AUTH_REJECTED:
        return "authentication rejected";
    case UPSTREAM_TEMP_FAILURE:
        return "temporary failure";
    case UPSTREAM_TIMEOUT:
        return "timeout";
    }
    return "unknown";
}

static void fail(struct upstream *u, enum upstream_failure f, const char *detail)
{
    /* Quiet the connection first: the handler may free u. */
    if (u->bev)
        bufferevent_disable(u->bev, EV_READ | EV_WRITE);
    evtimer_del(u->timer);
    u->handler.on_failure(u->arg, f, detail);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    MG_UNUSED(bev);
    struct upstream *u = arg;
    if (u->phase == PHASE_READY)
        u->handler.on_input(u->arg);
}

static void start_handshake(struct upstream *u);
static void connect_next(struct upstream *u);

static void connect_failed(struct upstream *u, short what)
{
    char detail[256];
    if (u->next_addr < u->addrs.n) {
        /* Refused or unreachable there: the host's next address may answer (an AAAA record
         * without IPv6 routing, one server of several down). */
        log_debug("upstream %s:%u: address %zu of %zu failed (%s); trying the next", u->host,
                  u->port, u->next_addr, u->addrs.n,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        connect_next(u);
        return;
    }
    int dns_error = bufferevent_socket_get_dns_error(u->bev);
    if (dns_error)
        snprintf(detail, sizeof detail, "%s:%u: %s", u->host, u->port,
                 evutil_gai_strerror(dns_error));
    else if (what & BEV_EVENT_EOF)
        snprintf(detail, sizeof detail, "%s:%u: connection closed", u->host, u->port);
    else
        snprintf(detail, sizeof detail, "%s:%u: %s", u->host, u->port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    fail(u, UPSTREAM_CONNECT_FAILED, detail);
}

static void log_handshake(const struct upstream *u, SSL *ssl)
{
    if (ssl)
        log_debug("upstream %s:%u: %s, %s", u->host, u->port, SSL_get_version(ssl),
                  SSL_session_reused(ssl) ? "session resumed" : "full handshake");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct upstream *u = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (u->phase == PHASE_CONNECTING && u->tls_mode == MG_TLS_IMPLICIT) {
            start_handshake(u);
            return;
        }
        if (u->phase == PHASE_HANDSHAKE) {
            u->tls_on = 1;
            log_handshake(u, bufferevent_openssl_get_ssl(bev));
        }
        if (!u->tls_on || u->tls_mode == MG_TLS_IMPLICIT) /* not again after STARTTLS */
            worker_metrics_upstream_connected(mg_now_ms() - u->started_ms);
        u->phase = PHASE_READY;
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        u->handler.on_ready(u->arg);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    char detail[300], why[256];
    switch (u->phase) {
    case PHASE_CONNECTING:
        connect_failed(u, what);
        return;
    case PHASE_HANDSHAKE:
        tls_describe_error(bev, why, sizeof why);
        snprintf(detail, sizeof detail, "%s:%u: %s", u->host, u->port, why);
        fail(u, UPSTREAM_TLS_FAILED, detail);
        return;
    case PHASE_READY:
        if (what & BEV_EVENT_ERROR)
            tls_describe_error(bev, why, sizeof why);
        else
            mg_strlcpy(why, "connection closed by the server", sizeof why);
        snprintf(detail, sizeof detail, "%s:%u: %s", u->host, u->port, why);
        fail(u, UPSTREAM_PROTOCOL_ERROR, detail);
        return;
    }
}

static void install_callbacks(struct upstream *u)
{
    bufferevent_setcb(u->bev, on_read, NULL, on_event, u);
    bufferevent_setwatermark(u->bev, EV_READ, 0, UPSTREAM_READ_HIGH);
    /* Before the connect there is no socket yet; the connect enables what it needs. */
    if (u->phase != PHASE_CONNECTING)
        bufferevent_enable(u->bev, EV_READ | EV_WRITE);
}

static SSL *upstream_ssl_new(struct upstream *u)
{
    SSL *ssl = tls_client_ssl_new(u->tls_ctx, u->host);
    if (ssl)
        tls_resume_offer(ssl, u->resume_scope, u->host, u->port);
    return ssl;
}

static void start_handshake(struct upstream *u)
{
    char detail[300];
    SSL *ssl = upstream_ssl_new(u);
    if (!ssl || tls_upgrade(u->base, &u->bev, ssl, BUFFEREVENT_SSL_CONNECTING) != 0) {
        snprintf(detail, sizeof detail, "%s:%u: cannot start TLS", u->host, u->port);
        fail(u, UPSTREAM_TLS_FAILED, detail);
        return;
    }
    u->phase = PHASE_HANDSHAKE;
    install_callbacks(u);
}

/* Plain first, and the socket stays ours: tls_upgrade() reuses it. A new one per address
 * tried: a socket whose connect failed cannot connect again. */
static int new_socket(struct upstream *u)
{
    conn_free(&u->bev);
    u->bev = bufferevent_socket_new(u->base, -1, 0);
    if (!u->bev) {
        fail(u, UPSTREAM_CONNECT_FAILED, "cannot create a socket");
        return -1;
    }
    install_callbacks(u);
    return 0;
}

static socklen_t to_sockaddr(const struct upstream *u, const struct dns_addr *a,
                             struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (a->family == AF_INET) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)out;
        v4->sin_family = AF_INET;
        v4->sin_addr = a->u.v4;
        v4->sin_port = htons(u->port);
        return sizeof *v4;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = a->u.v6;
    v6->sin6_port = htons(u->port);
    return sizeof *v6;
}

/* The next of the resolved addresses; its failure comes back through connect_failed(). */
static void connect_next(struct upstream *u)
{
    if (new_socket(u) != 0)
        return;
    struct sockaddr_storage addr;
    socklen_t len = to_sockaddr(u, &u->addrs.a[u->next_addr++], &addr);
    if (bufferevent_socket_connect(u->bev, (struct sockaddr *)&addr, (int)len) != 0)
        connect_failed(u, BEV_EVENT_ERROR);
}

static void connect_resolved(struct upstream *u, const struct dns_addrs *addrs)
{
    if (addrs->error || !addrs->n) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s:%u: %s", u->host, u->port,
                 evutil_gai_strerror(addrs->error ? addrs->error : EVUTIL_EAI_NONAME));
        fail(u, UPSTREAM_CONNECT_FAILED, detail);
        return;
    }
    u->addrs = *addrs;
    u->next_addr = 0;
    connect_next(u);
}

static void on_resolved(void *arg, const struct dns_addrs *addrs)
{
    struct upstream *u = arg;
    u->resolving = NULL; /* the cache freed it */
    connect_resolved(u, addrs);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct upstream *u = arg;
    struct dns_addrs found;
    /* An address written as such needs no resolver: evdns would still go through its request
     * machinery for every login. */
    if (dns_addrs_parse_literal(u->host, &found)) {
        connect_resolved(u, &found);
        return;
    }
    if (u->resolver) {
        int now = dns_cache_resolve(u->resolver, u->host, &found, on_resolved, u, &u->resolving);
        worker_metrics_dns_lookup(now);
        if (now)
            connect_resolved(u, &found);
        return;
    }
    if (new_socket(u) == 0 &&
        bufferevent_socket_connect_hostname(u->bev, NULL, AF_UNSPEC, u->host, u->port) != 0)
        connect_failed(u, BEV_EVENT_ERROR);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct upstream *u = arg;
    char detail[300];
    static const char *const phases[] = {"connecting to", "TLS handshake with", "login at"};
    snprintf(detail, sizeof detail, "%s %s:%u after %llu ms", phases[u->phase], u->host, u->port,
             (unsigned long long)u->timeout_ms);
    fail(u, UPSTREAM_TIMEOUT, detail);
}

static struct timeval ms_to_tv(uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

struct upstream *upstream_connect(const struct upstream_params *params,
                                  const struct upstream_handler *handler, void *arg)
{
    struct upstream *u = mg_calloc(1, sizeof *u);
    u->base = params->base;
    u->resolver = params->resolver;
    u->tls_ctx = params->tls_ctx;
    u->host = mg_strdup(params->server->host);
    u->resume_scope = params->resume_scope ? mg_strdup(params->resume_scope) : NULL;
    u->port = params->server->port;
    u->tls_mode = params->server->tls;
    u->timeout_ms = params->timeout_ms;
    u->started_ms = mg_now_ms();
    u->handler = *handler;
    u->arg = arg;
    u->phase = PHASE_CONNECTING;
    u->kick = evtimer_new(u->base, on_kick, u);
    u->timer = evtimer_new(u->base, on_timeout, u);
    struct timeval zero = {0, 0}, limit = ms_to_tv(params->timeout_ms);
    evtimer_add(u->kick, &zero);
    evtimer_add(u->timer, &limit);
    return u;
}

int upstream_start_tls(struct upstream *u)
{
    if (u->phase != PHASE_READY || u->tls_on)
        return -1;
    SSL *ssl = upstream_ssl_new(u);
    if (!ssl || tls_upgrade(u->base, &u->bev, ssl, BUFFEREVENT_SSL_CONNECTING) != 0)
        return -1;
    u->phase = PHASE_HANDSHAKE;
    install_callbacks(u);
    return 0;
}

int upstream_is_tls(const struct upstream *u)
{
    return u->tls_on;
}

const char *upstream_host(const struct upstream *u)
{
    return u->host;
}

struct evbuffer *upstream_input(struct upstream *u)
{
    return bufferevent_get_input(u->bev);
}

struct bufferevent *upstream_bufferevent(struct upstream *u)
{
    return u->bev;
}

void upstream_write(struct upstream *u, const void *data, size_t len)
{
    bufferevent_write(u->bev, data, len);
}

void upstream_send(struct upstream *u, const char *text)
{
    upstream_write(u, text, strlen(text));
}

static void upstream_release(struct upstream *u)
{
    dns_cache_cancel(&u->resolving);
    event_free(u->kick);
    event_free(u->timer);
    free(u->host);
    free(u->resume_scope);
    free(u);
}

struct bufferevent *upstream_detach(struct upstream **up)
{
    struct upstream *u = *up;
    struct bufferevent *bev = u->bev;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    upstream_release(u);
    *up = NULL;
    return bev;
}

void upstream_free(struct upstream **up)
{
    if (!*up)
        return;
    conn_free(&(*up)->bev);
    upstream_release(*up);
    *up = NULL;
}

uint64_t upstream_started_ms(const struct upstream *u)
{
    return u->started_ms;
}
