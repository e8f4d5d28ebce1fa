/* POST /tlsrpt (tlsrpt_post.h): checks, parsing in the worker, the broker round trip. */
#include "tlsrpt_post.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "http_internal.h"
#include "log.h"
#include "session.h"
#include "tlsrpt.h"
#include "util.h"

#define BROKER_TIMEOUT_S 30

/* A request waiting for the broker to store its report. */
struct tlsrpt_pending {
    struct tlsrpt_pending *next;
    struct http_server *server;
    struct evhttp_request *req; /* evhttp keeps it until answered, even if the client left */
    uint32_t id;
    struct event *timer;
    char peer[IPC_ADDR_MAX];
    char host[256];
    char path[256];
};

/* ---- where reports are taken ---- */

/* The host and path an https URI names: "https://HOST[:PORT][/PATH][?QUERY]"; path "/" when
 * there is none. 0, or -1 when it is not https or does not fit. */
static int https_target(const char *uri, char *host, size_t host_size, char *path, size_t path_size)
{
    if (mg_ascii_ncasecmp(uri, "https://", 8) != 0)
        return -1;
    const char *h = uri + 8;
    size_t hlen = strcspn(h, ":/?#");
    const char *p = h + hlen + strcspn(h + hlen, "/?#");
    size_t plen = *p == '/' ? strcspn(p, "?#") : 0;
    if (hlen == 0 || hlen >= host_size || plen >= path_size)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (hlen > 1 && host[hlen - 1] == '.')
        host[hlen - 1] = '\0';
    if (plen)
        memcpy(path, p, plen);
    else
        path[plen++] = '/';
    path[plen] = '\0';
    return 0;
}

const struct domain_conf *tlsrpt_post_target(const struct config *cfg, const char *host,
                                             const char *path)
{
    for (size_t i = 0; i < cfg->n_domains; i++) {
        const struct domain_conf *d = &cfg->domains[i];
        for (size_t j = 0; j < d->tls_rpt.n; j++) {
            char h[256], p[256];
            if (https_target(d->tls_rpt.v[j], h, sizeof h, p, sizeof p) == 0 &&
                mg_ascii_casecmp(h, host) == 0 && (!path || strcmp(p, path) == 0))
                return d;
        }
    }
    return NULL;
}

int tlsrpt_post_enabled(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_domains; i++)
        for (size_t j = 0; j < cfg->domains[i].tls_rpt.n; j++)
            if (mg_ascii_ncasecmp(cfg->domains[i].tls_rpt.v[j], "https://", 8) == 0)
                return 1;
    return 0;
}

/* ---- answering ---- */

static void log_answer(const struct tlsrpt_pending *p, int status)
{
    http_log_answer(p->server, p->peer, p->host, EVHTTP_REQ_POST, p->path, status);
}

static void finish(struct tlsrpt_pending *p, int code, const char *reason, const char *text)
{
    for (struct tlsrpt_pending **link = &p->server->tlsrpt_pending; *link; link = &(*link)->next) {
        if (*link == p) {
            *link = p->next;
            break;
        }
    }
    if (code == HTTP_SERVUNAVAIL)
        evhttp_add_header(evhttp_request_get_output_headers(p->req), "Retry-After", "300");
    http_fail(p->req, code, reason, text);
    log_answer(p, code);
    if (p->timer)
        event_free(p->timer);
    free(p);
}

static void on_broker_timeout(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    finish(arg, HTTP_SERVUNAVAIL, "Service Unavailable", "the report cannot be stored now");
}

int tlsrpt_post_result(struct http_server *s, const struct ipc_tlsrpt_result *res)
{
    struct tlsrpt_pending *p = s->tlsrpt_pending;
    while (p && p->id != res->id)
        p = p->next;
    if (!p)
        return 0;
    switch (res->result) {
    case TLSRPT_STORED:
        finish(p, 201, "Created", "report stored");
        break;
    case TLSRPT_DUPLICATE:
        finish(p, HTTP_OK, "OK", "report stored already");
        break;
    case TLSRPT_REFUSED:
        finish(p, HTTP_BADREQUEST, "Bad Request", res->reason);
        break;
    case TLSRPT_FAILED:
    default:
        finish(p, HTTP_SERVUNAVAIL, "Service Unavailable", "the report cannot be stored now");
    }
    return 1;
}

void tlsrpt_post_abandon(struct http_server *s)
{
    while (s->tlsrpt_pending)
        finish(s->tlsrpt_pending, HTTP_SERVUNAVAIL, "Service Unavailable", "shutting down");
}

/* ---- the request ---- */

/* The normalised report to the broker in pieces that fit a frame. */
static int send_report(struct worker_ctx *w, uint32_t id, const char *json)
{
    if (!w || !w->ipc)
        return -1;
    return ipc_encode_tlsrpt(bufferevent_get_output(w->ipc), id, json, strlen(json));
}

static void wait_for_broker(struct http_server *s, struct evhttp_request *req, const char *json,
                            const char *peer, const char *host, const char *path)
{
    struct tlsrpt_pending *p = mg_calloc(1, sizeof *p);
    p->server = s;
    p->req = req;
    mg_strlcpy(p->peer, peer, sizeof p->peer);
    mg_strlcpy(p->host, host, sizeof p->host);
    mg_strlcpy(p->path, path, sizeof p->path);
    p->next = s->tlsrpt_pending;
    s->tlsrpt_pending = p;
    if (s->worker) { /* none: no broker link was given (http_server_set_worker) */
        p->timer = evtimer_new(s->worker->base, on_broker_timeout, p);
        p->id = ++s->worker->next_request_id;
    }
    if (!p->timer || send_report(s->worker, p->id, json) != 0) {
        finish(p, HTTP_SERVUNAVAIL, "Service Unavailable", "the report cannot be stored now");
        return;
    }
    struct timeval tv = {BROKER_TIMEOUT_S, 0};
    evtimer_add(p->timer, &tv);
}

/* application/tlsrpt+gzip or application/tlsrpt+json, parameters allowed; 1 gzip, 0 json, -1
 * anything else. */
static int content_kind(struct evhttp_request *req)
{
    const char *type = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    if (!type)
        return -1;
    size_t n = strcspn(type, "; \t");
    if (n == 23 && mg_ascii_ncasecmp(type, "application/tlsrpt+gzip", n) == 0)
        return 1;
    if (n == 23 && mg_ascii_ncasecmp(type, "application/tlsrpt+json", n) == 0)
        return 0;
    return -1;
}

/* 0 with *out set, or the HTTP status the request was answered with. */
static int parse_body(struct evhttp_request *req, int gzipped, struct tlsrpt_report *out)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const unsigned char *body = len ? evbuffer_pullup(in, -1) : (const unsigned char *)"";
    char why[256] = "";
    /* A gzip body labelled +json is still gzip (some senders mislabel it). */
    enum tlsrpt_status rc =
        tlsrpt_parse_body(body, len, gzipped || tlsrpt_is_gzip(body, len), out, why, sizeof why);
    if (rc == TLSRPT_OK)
        return 0;
    if (rc == TLSRPT_TOO_LARGE) {
        http_fail(req, HTTP_ENTITYTOOLARGE, "Payload Too Large", why);
        return HTTP_ENTITYTOOLARGE;
    }
    http_fail(req, HTTP_BADREQUEST, "Bad Request", why);
    return HTTP_BADREQUEST;
}

/* 0 when the request may go on; else the status it was answered with. */
static int check_request(struct evhttp_request *req, int *gzipped)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        http_fail(req, HTTP_BADMETHOD, "Method Not Allowed", "TLS reports are POSTed");
        return HTTP_BADMETHOD;
    }
    *gzipped = content_kind(req);
    if (*gzipped < 0) {
        http_fail(req, 415, "Unsupported Media Type",
                  "send application/tlsrpt+gzip or application/tlsrpt+json");
        return 415;
    }
    return 0;
}

void tlsrpt_post_serve(struct http_server *s, struct evhttp_request *req, const char *peer,
                       const char *host, const char *path)
{
    int gzipped, status = check_request(req, &gzipped);
    struct tlsrpt_report r = {0};
    if (!status)
        status = parse_body(req, gzipped, &r);
    if (!status) {
        char *json = tlsrpt_to_json(&r);
        tlsrpt_free(&r);
        wait_for_broker(s, req, json, peer, host, path); /* logs when answered */
        free(json);
        return;
    }
    tlsrpt_free(&r);
    http_log_answer(s, peer, host, evhttp_request_get_command(req), path, status);
}
