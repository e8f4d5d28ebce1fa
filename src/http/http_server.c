/* HTTP listeners (http.h) with libevent's evhttp: it parses requests, keeps connections alive
 * (HTTP/1.1), enforces the size limits and timeouts; TLS is an OpenSSL bufferevent under each
 * connection (evhttp_set_bevcb), with the [domain]'s own certificate chosen by SNI. */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>

#include "conn_count.h"
#include "http_internal.h"
#include "log.h"
#include "session.h"
#include "tls.h"
#include "tlsrpt.h"
#include "tlsrpt_post.h"
#include "util.h"

/* The SNI name picks a [domain] with a certificate of its own; any other name keeps [tls]. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    MG_UNUSED(alert);
    struct http_server *s = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const char *prefix;
    const struct domain_conf *d = name ? http_domain_of_host(s->cfg, name, &prefix) : NULL;
    if (!d && name) /* the host of its https tls_rpt URI */
        d = tlsrpt_post_target(s->cfg, name, NULL);
    for (size_t i = 0; d && i < s->n_sni; i++) {
        if (s->sni[i].domain == d) {
            SSL_set_SSL_CTX(ssl, s->sni[i].ctx);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

static int setup_tls(struct http_server *s)
{
    s->tls = tls_server_ctx_new(&s->cfg->tls);
    if (!s->tls)
        return -1;
    s->sni = mg_calloc(s->cfg->n_domains + 1, sizeof *s->sni);
    for (size_t i = 0; i < s->cfg->n_domains; i++) {
        const struct domain_conf *d = &s->cfg->domains[i];
        if (!d->certificate)
            continue;
        struct tls_conf t = domain_tls_conf(s->cfg, d);
        SSL_CTX *ctx = tls_server_ctx_new(&t);
        if (!ctx)
            return -1;
        s->sni[s->n_sni++] = (struct http_sni){d, ctx};
    }
    SSL_CTX_set_tlsext_servername_callback(s->tls, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(s->tls, s);
    return 0;
}

/* Every accepted connection gets a TLS bufferevent; evhttp sets its socket afterwards. */
static struct bufferevent *tls_bev_cb(struct event_base *base, void *arg)
{
    struct http_server *s = arg;
    SSL *ssl = tls_server_ssl_new(s->tls, MG_PROTO_HTTP);
    struct bufferevent *bev =
        ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
            : NULL;
    if (!bev) {
        /* evhttp would fall back to plain text on a NULL: out of memory is fatal here, as it
         * is for mg_malloc. */
        log_error("http %s: cannot create a TLS connection; exiting", s->conf->name);
        abort();
    }
    /* Browsers and curl close without close_notify; HTTP frames its own messages. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void set_limits(struct http_server *s)
{
    uint64_t timeout_s = s->conf->login_timeout_ms / 1000;
    if (timeout_s == 0)
        timeout_s = 1;
    if (timeout_s > HTTP_TIMEOUT_MAX_S)
        timeout_s = HTTP_TIMEOUT_MAX_S;
    evhttp_set_timeout(s->http, (int)timeout_s);
    evhttp_set_max_headers_size(s->http, HTTP_MAX_HEADERS_SIZE);
    evhttp_set_max_body_size(s->http,
                             tlsrpt_post_enabled(s->cfg) ? TLSRPT_MAX_JSON : HTTP_MAX_BODY_SIZE);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_default_content_type(s->http, "text/plain; charset=utf-8");
}

struct http_server *http_server_new(struct worker_ctx *w, const struct config *cfg,
                                    const struct listener_conf *l, int fd)
{
    struct event_base *base = w->base;
    struct http_server *s = mg_calloc(1, sizeof *s);
    s->w = w;
    s->cfg = cfg;
    s->conf = l;
    s->per_address = conn_count_new();
    s->http = evhttp_new(base);
    if (!s->http || (l->tls == MG_TLS_IMPLICIT && setup_tls(s) != 0)) {
        log_error("http %s: cannot set up the listener", l->name);
        close(fd);
        http_server_free(&s);
        return NULL;
    }
    set_limits(s);
    if (s->tls)
        evhttp_set_bevcb(s->http, tls_bev_cb, s);
    evhttp_set_gencb(s->http, http_route, s);
    s->bound = evhttp_accept_socket_with_handle(s->http, fd);
    if (!s->bound) {
        log_error("http %s: cannot accept on %s", l->name, l->address);
        close(fd);
        http_server_free(&s);
        return NULL;
    }
    return s;
}

void http_server_set_worker(struct http_server *s, struct worker_ctx *w)
{
    s->worker = w;
}

int http_server_tlsrpt_result(struct http_server *s, const struct ipc_tlsrpt_result *res)
{
    return tlsrpt_post_result(s, res);
}

void http_server_free(struct http_server **sp)
{
    struct http_server *s = *sp;
    if (!s)
        return;
    http_signin_drop(s); /* before evhttp frees the requests */
    http_ops_abort(s);
    http_conn_forget_all(s);
    tlsrpt_post_abandon(s); /* before evhttp_free frees their connections */
    if (s->http)
        evhttp_free(s->http); /* closes the bound socket and every connection */
    conn_count_free(&s->per_address);
    for (size_t i = 0; i < s->n_sni; i++)
        SSL_CTX_free(s->sni[i].ctx);
    free(s->sni);
    if (s->tls)
        SSL_CTX_free(s->tls);
    free(s);
    *sp = NULL;
}
