/* Worker process: listeners, the IPC link to the broker, signals, and the sessions' shared
 * context. Sessions and protocols live in session.c and imap_*.c. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "conn_count.h"
#include "dns_cache.h"
#include "http.h"
#include "imap.h"
#include "pop3.h"
#include "sandbox.h"
#include "smtp.h"
#include "tls_tickets.h"
#include "ipc.h"
#include "heap_trim.h"
#include "protolog.h"
#include "log.h"
#include "session.h"
#include "tls.h"
#include "util.h"
#include "worker_metrics.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define ACCEPT_PAUSE_MS 1000
/* On SIGTERM/SIGINT: how long goodbyes to clients still logging in may take to go out. */
#define SHUTDOWN_GRACE_MS 500

struct worker {
    struct worker_ctx ctx;
    struct config *cfg;
    struct listener *listeners;
    size_t n_listeners;
    struct event *sigterm, *sigint, *sigusr1;
    struct heap_trim *heap_trim;
    int terminating; /* SIGTERM/SIGINT seen */
    int exit_code;
};

static const struct proto_ops *proto_ops_for(enum mg_proto p)
{
    switch (p) {
    case MG_PROTO_IMAP:
        return &imap_proto_ops;
    case MG_PROTO_POP3:
        return &pop3_proto_ops;
    case MG_PROTO_SMTP:
        return &smtp_proto_ops;
    case MG_PROTO_HTTP: /* no sessions: src/http serves it */
        break;
    }
    return NULL;
}

/* ---- pending broker requests ---- */

static struct session **pending_slot(struct worker_ctx *w, uint32_t id)
{
    return &w->pending[id % WORKER_PENDING_BUCKETS];
}

/* The session waits for the answer to request id (one request at a time). */
static void add_pending(struct worker_ctx *w, struct session *s, uint32_t id)
{
    s->request_id = id;
    s->request_pending = 1;
    struct session **slot = pending_slot(w, id);
    s->pending_next = *slot;
    *slot = s;
}

int worker_send_auth_request(struct worker_ctx *w, struct session *s, struct ipc_auth_request *req)
{
    if (!w->ipc)
        return -1;
    req->id = ++w->next_request_id;
    if (ipc_encode_auth_request(bufferevent_get_output(w->ipc), req) != 0)
        return -1;
    add_pending(w, s, req->id);
    return 0;
}

int worker_send_token_refused(struct worker_ctx *w, struct session *s,
                              struct ipc_token_refused *ref)
{
    if (!w->ipc)
        return -1;
    ref->id = ++w->next_request_id;
    if (ipc_encode_token_refused(bufferevent_get_output(w->ipc), ref) != 0)
        return -1;
    add_pending(w, s, ref->id);
    return 0;
}

/* The session goes away with its request in flight: the broker drops the request's queued
 * password verification instead of spending a core on an answer nobody reads. */
void worker_cancel_auth_request(struct worker_ctx *w, struct session *s)
{
    if (w->ipc && ipc_encode_auth_cancel(bufferevent_get_output(w->ipc), s->request_id) != 0)
        log_debug("worker %d: cannot encode a cancel", w->index);
    for (struct session **p = pending_slot(w, s->request_id); *p; p = &(*p)->pending_next) {
        if (*p == s) {
            *p = s->pending_next;
            break;
        }
    }
    s->pending_next = NULL;
    s->request_pending = 0;
}

static struct session *take_pending(struct worker_ctx *w, uint32_t id)
{
    for (struct session **p = pending_slot(w, id); *p; p = &(*p)->pending_next) {
        struct session *s = *p;
        if (s->request_id == id) {
            *p = s->pending_next;
            s->pending_next = NULL;
            s->request_pending = 0;
            return s;
        }
    }
    return NULL;
}

/* ---- connections per address ---- */

/* Per worker: with N workers an address may hold up to N times the limit (whichever worker
 * wins the accept on the shared socket counts it). */
int worker_count_connection(struct worker_ctx *w, struct session *s)
{
    size_t n = conn_count_add(w->per_address, s->client_addr);
    uint32_t max = w->cfg->gateway.max_connections_per_ip;
    if (max && n > max) {
        log_info("session=%s client=%s refused: %zu connections from this address (limit %u)",
                 s->id, s->client_addr, n - 1, (unsigned)max);
        return 1;
    }
    return 0;
}

void worker_uncount_connection(struct worker_ctx *w, struct session *s)
{
    conn_count_remove(w->per_address, s->client_addr);
}

/* ---- IPC ---- */

static void broker_gone(struct worker *wk, const char *why)
{
    log_error("worker %d: %s; exiting", wk->ctx.index, why);
    wk->exit_code = 1;
    event_base_loopbreak(wk->ctx.base);
}

/* A TLS report's result goes to the web listener whose request waits for it. */
static void handle_tlsrpt_result(struct worker *wk, const struct ipc_tlsrpt_result *res)
{
    for (size_t i = 0; i < wk->n_listeners; i++)
        if (wk->listeners[i].http && http_server_tlsrpt_result(wk->listeners[i].http, res))
            return;
    log_debug("worker %d: TLS report result for a closed request ignored", wk->ctx.index);
}

static void handle_ipc_message(struct worker *wk, struct ipc_msg *msg)
{
    if (msg->type == IPC_TICKET_KEYS) {
        tls_tickets_set_keys(&msg->u.tickets);
        return;
    }
    if (msg->type == IPC_SIGNIN_ANSWER) {
        http_signin_answer(&msg->u.signin_answer);
        return;
    }
    if (msg->type == IPC_METRICS_REPORT) {
        worker_metrics_on_report(&msg->u.report);
        return;
    }
    if (msg->type == IPC_TLSRPT_RESULT) {
        handle_tlsrpt_result(wk, &msg->u.tlsrpt_result);
        return;
    }
    if (msg->type != IPC_AUTH_RESPONSE) {
        log_warn("worker %d: unexpected IPC message type %d ignored", wk->ctx.index,
                 (int)msg->type);
        return;
    }
    struct session *s = take_pending(&wk->ctx, msg->u.res.id);
    if (s)
        session_on_auth_response(s, &msg->u.res);
    else
        log_debug("worker %d: response for a closed session ignored", wk->ctx.index);
}

static void ipc_read_cb(struct bufferevent *bev, void *arg)
{
    struct worker *wk = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct ipc_msg msg;
        int r = ipc_decode(in, &msg);
        if (r == 0)
            return;
        if (r < 0) {
            broker_gone(wk, "protocol error on the broker link");
            return;
        }
        handle_ipc_message(wk, &msg);
        ipc_msg_wipe(&msg);
    }
}

static void ipc_event_cb(struct bufferevent *bev, short what, void *arg)
{
    MG_UNUSED(bev);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        broker_gone(arg, "the broker closed the connection");
}

/* ---- listeners ---- */

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    MG_UNUSED(evl);
    session_new(arg, fd, sa, salen);
}

static void resume_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct listener *l = arg;
    evconnlistener_enable(l->evl);
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err == EMFILE || err == ENFILE) {
        /* Out of descriptors: pause instead of spinning on a socket we cannot accept. */
        log_warn("listener %s: %s; pausing accept for %d ms", l->conf->name, strerror(err),
                 ACCEPT_PAUSE_MS);
        evconnlistener_disable(evl);
        struct timeval tv = {ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000};
        evtimer_add(l->resume_timer, &tv);
        return;
    }
    log_warn("listener %s: accept: %s", l->conf->name, strerror(err));
}

/* fd: the broker's listening socket (non-blocking, shared by every worker: the kernel wakes
 * each one polling it, one accept() wins, the others see EAGAIN, which libevent ignores). */
static int open_listener(struct worker *wk, struct listener *l, const struct listener_conf *conf,
                         int fd)
{
    l->w = &wk->ctx;
    l->conf = conf;
    if (conf->protocol == MG_PROTO_HTTP) {
        evutil_make_socket_closeonexec(fd);
        l->http = http_server_new(&wk->ctx, wk->cfg, conf, fd);
        if (l->http)
            http_server_set_worker(l->http, &wk->ctx);
        return l->http ? 0 : -1;
    }
    l->ops = proto_ops_for(conf->protocol);
    if (!l->ops) {
        log_error("listener %s: protocol %s is not supported", conf->name,
                  mg_proto_name(conf->protocol));
        return -1;
    }
    evutil_make_socket_closeonexec(fd);
    /* backlog 0: already listening (the broker called listen()). */
    l->evl = evconnlistener_new(wk->ctx.base, accept_cb, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!l->evl) {
        log_error("listener %s: cannot accept on %s: %s", conf->name, conf->address,
                  strerror(errno));
        close(fd);
        return -1;
    }
    evconnlistener_set_error_cb(l->evl, accept_error_cb);
    l->resume_timer = evtimer_new(wk->ctx.base, resume_accept_cb, l);
    return 0;
}

static void close_listeners(struct worker *wk)
{
    for (size_t i = 0; i < wk->n_listeners; i++) {
        struct listener *l = &wk->listeners[i];
        if (l->evl)
            evconnlistener_free(l->evl);
        http_server_free(&l->http);
        if (l->resume_timer)
            event_free(l->resume_timer);
        l->evl = NULL;
        l->resume_timer = NULL;
    }
}

/* ---- setup and teardown ---- */

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    MG_UNUSED(what);
    struct worker *wk = arg;
    if (wk->terminating)
        return; /* Ctrl-C: SIGINT from the terminal, then SIGTERM from the broker */
    log_info("worker %d: signal %d, stopping", wk->ctx.index, (int)sig);
    wk->terminating = 1;
    wk->ctx.stopping = 1;
    close_listeners(wk);
    /* Sessions in the login phase say goodbye and close; relaying ones close at once. The loop
     * ends when the last one is freed (session.c), or after the grace period at the latest. */
    for (struct session *s = wk->ctx.sessions; s; s = s->next)
        session_shutdown(s); /* frees nothing now: the frees are scheduled on the loop */
    if (wk->ctx.n_sessions == 0) {
        event_base_loopbreak(wk->ctx.base);
        return;
    }
    struct timeval grace = {SHUTDOWN_GRACE_MS / 1000, (SHUTDOWN_GRACE_MS % 1000) * 1000};
    event_base_loopexit(wk->ctx.base, &grace);
}

/* SIGUSR1 after a reload: the new workers accept now. Sessions go on untouched (the upstream
 * relay, IDLE, a long FETCH); each still ends by its own idle timeout at the latest, and the
 * worker exits when the last one is freed (session.c). */
static void on_drain_signal(evutil_socket_t sig, short what, void *arg)
{
    MG_UNUSED(sig), MG_UNUSED(what);
    struct worker *wk = arg;
    if (wk->ctx.stopping)
        return;
    log_info("worker %d: replaced by a reload; finishing %zu session(s)", wk->ctx.index,
             wk->ctx.n_sessions);
    wk->ctx.stopping = 1;
    close_listeners(wk);
    if (wk->ctx.n_sessions == 0)
        event_base_loopbreak(wk->ctx.base);
}

static int setup_tls(struct worker *wk)
{
    /* No certificate: every listener has tls = none (the config allows only that). */
    if (wk->cfg->tls.certificate) {
        wk->ctx.server_tls = tls_server_ctx_new(&wk->cfg->tls);
        if (!wk->ctx.server_tls)
            return -1;
        tls_tickets_enable(wk->ctx.server_tls, wk->cfg->tls.session_ticket_lifetime_ms);
    }
    wk->ctx.client_tls = tls_client_cache_new();
    /* Load every provider's trust store now: a bad ca_file shows at start, not at login. */
    for (size_t i = 0; i < wk->cfg->n_providers; i++)
        if (!tls_client_ctx(wk->ctx.client_tls, wk->cfg->providers[i].ca_file))
            return -1;
    return 0;
}

/* [gateway] resolver: those nameservers only, with no search list (names in the file are
 * complete); otherwise /etc/resolv.conf. Inactive DNS must not keep the loop alive. */
static struct evdns_base *new_dns_base(struct worker *wk)
{
    const struct mg_strlist *ns = &wk->cfg->gateway.resolver;
    if (!ns->n)
        return evdns_base_new(wk->ctx.base,
                              EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    struct evdns_base *dns = evdns_base_new(wk->ctx.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    for (size_t i = 0; dns && i < ns->n; i++) {
        if (evdns_base_nameserver_ip_add(dns, ns->v[i]) != 0) {
            log_error("worker %d: resolver %s cannot be used", wk->ctx.index, ns->v[i]);
            evdns_base_free(dns, 0);
            return NULL;
        }
    }
    return dns;
}

static int setup_dns(struct worker *wk)
{
    wk->ctx.dns = new_dns_base(wk);
    if (!wk->ctx.dns) {
        if (wk->cfg->gateway.resolver.n)
            return -1;
        log_warn("worker %d: no DNS configuration; using the blocking resolver", wk->ctx.index);
        return 0;
    }
    /* The hosts file is read now: the sandbox's chroot hides it later. */
    wk->ctx.resolver = dns_cache_new(wk->ctx.base, wk->ctx.dns, "/etc/hosts");
    return 0;
}

static int setup_listeners(struct worker *wk, const struct worker_start *start)
{
    if (start->n_listen != wk->cfg->n_listeners) {
        log_error("worker %d: %zu listening sockets for %zu listeners", wk->ctx.index,
                  start->n_listen, wk->cfg->n_listeners);
        return -1;
    }
    wk->n_listeners = wk->cfg->n_listeners;
    wk->listeners = mg_calloc(wk->n_listeners ? wk->n_listeners : 1, sizeof *wk->listeners);
    for (size_t i = 0; i < wk->n_listeners; i++)
        if (open_listener(wk, &wk->listeners[i], &wk->cfg->listeners[i], start->listen_fds[i]) != 0)
            return -1;
    return 0;
}

/* The bytes the broker validated, never the file: it may have changed since. */
static struct config *load_config(const struct worker_start *start)
{
    size_t len = 0;
    char *data = mg_read_fd(start->config_fd, CONFIG_MAX_BYTES, 0, &len);
    close(start->config_fd);
    if (!data) {
        log_error("worker %d: cannot read the configuration from the broker: %s", start->index,
                  strerror(errno));
        return NULL;
    }
    struct config *cfg =
        config_load_bytes(start->config_path, data, len, CONFIG_SKIP_SECRETS, stderr);
    mg_wipe(data, len); /* the file may hold a client_secret */
    free(data);
    return cfg;
}

static int setup_ipc(struct worker *wk, int ipc_fd)
{
    evutil_make_socket_nonblocking(ipc_fd);
    evutil_make_socket_closeonexec(ipc_fd);
    wk->ctx.ipc = bufferevent_socket_new(wk->ctx.base, ipc_fd, BEV_OPT_CLOSE_ON_FREE);
    if (!wk->ctx.ipc) {
        close(ipc_fd);
        return -1;
    }
    bufferevent_setcb(wk->ctx.ipc, ipc_read_cb, NULL, ipc_event_cb, wk);
    bufferevent_enable(wk->ctx.ipc, EV_READ | EV_WRITE);
    return 0;
}

static int setup(struct worker *wk, const struct worker_start *start)
{
    if (setup_ipc(wk, start->ipc_fd) != 0) {
        log_error("worker %d: cannot use the broker link", wk->ctx.index);
        return -1;
    }
    wk->cfg = load_config(start);
    if (!wk->cfg)
        return -1;
    wk->ctx.cfg = wk->cfg;
    wk->ctx.per_address = conn_count_new();
    log_set_level(wk->cfg->gateway.log_level);
    if (setup_tls(wk) != 0 || setup_dns(wk) != 0 || setup_listeners(wk, start) != 0)
        return -1;
    wk->sigterm = evsignal_new(wk->ctx.base, SIGTERM, on_stop_signal, wk);
    wk->sigint = evsignal_new(wk->ctx.base, SIGINT, on_stop_signal, wk);
    wk->sigusr1 = evsignal_new(wk->ctx.base, SIGUSR1, on_drain_signal, wk);
    evsignal_add(wk->sigterm, NULL);
    evsignal_add(wk->sigint, NULL);
    evsignal_add(wk->sigusr1, NULL);
    wk->heap_trim = heap_trim_new(wk->ctx.base);
    if (ipc_encode_ready(bufferevent_get_output(wk->ctx.ipc), (uint32_t)wk->ctx.index) != 0)
        return -1;
    worker_metrics_start(&wk->ctx);
    return 0;
}

static void teardown(struct worker *wk)
{
    worker_metrics_stop(); /* answers what the web listeners still wait for */
    close_listeners(wk);
    while (wk->ctx.sessions)
        session_free(wk->ctx.sessions);
    protolog_worker_free(&wk->ctx);
    free(wk->listeners);
    if (wk->ctx.ipc)
        bufferevent_free(wk->ctx.ipc);
    if (wk->sigterm)
        event_free(wk->sigterm);
    if (wk->sigint)
        event_free(wk->sigint);
    if (wk->sigusr1)
        event_free(wk->sigusr1);
    heap_trim_free(&wk->heap_trim);
    tls_tickets_clear();
    dns_cache_free(&wk->ctx.resolver);
    if (wk->ctx.dns)
        evdns_base_free(wk->ctx.dns, 0);
    tls_client_cache_free(&wk->ctx.client_tls);
    if (wk->ctx.server_tls)
        SSL_CTX_free(wk->ctx.server_tls);
    conn_count_free(&wk->ctx.per_address);
    config_free(&wk->cfg);
    event_base_free(wk->ctx.base);
}

int worker_main(const struct worker_start *start)
{
    int index = start->index;
    log_init("worker", MG_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    struct worker wk;
    memset(&wk, 0, sizeof wk);
    wk.ctx.index = index;
    wk.ctx.base = event_base_new();
    if (!wk.ctx.base) {
        log_error("worker %d: cannot create the event loop", index);
        return 1;
    }
    int rc = 1;
    if (setup(&wk, start) == 0 && worker_sandbox_enter(wk.cfg) == 0) {
        log_debug("worker %d: serving", index);
        event_base_dispatch(wk.ctx.base);
        rc = wk.exit_code;
    }
    teardown(&wk);
    return rc;
}
