/* GET /metrics and GET /healthz (http_internal.h): on every http listener, on any Host, only
 * for clients in [gateway] metrics_allow (others get 403). Both ask the broker for the whole
 * gateway's numbers (worker_metrics_query) and answer when it replies: /metrics renders them
 * (metrics_text.c), /healthz says 200 "ok" when the broker answered within HEALTH_TIMEOUT_MS
 * and judged every worker alive, else 503 with the reason. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "cidr.h"
#include "config.h"
#include "http_internal.h"
#include "metrics_text.h"
#include "util.h"
#include "worker_metrics.h"

/* The broker answers from memory at once; a second means it is stopped or stuck. */
#define HEALTH_TIMEOUT_MS 1000
#define HTTP_FORBIDDEN_CODE 403 /* evhttp 2.1 names no constant for it */

struct http_op {
    struct http_server *server;
    struct evhttp_request *req;
    int healthz;
    struct metrics_query *query;
    struct http_op *next;
};

static void unlink_op(struct http_op *op)
{
    for (struct http_op **p = &op->server->ops; *p; p = &(*p)->next) {
        if (*p == op) {
            *p = op->next;
            return;
        }
    }
}

static void send_metrics(struct evhttp_request *req, const struct metrics_report *r)
{
    struct evbuffer *body = evbuffer_new();
    if (!body || metrics_text_render(body, r) != 0) {
        http_reply_error(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
    } else {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", METRICS_TEXT_CONTENT_TYPE);
        evhttp_add_header(h, "Cache-Control", "no-store");
        evhttp_send_reply(req, HTTP_OK, "OK", body);
    }
    if (body)
        evbuffer_free(body);
}

static void on_report(const struct metrics_report *r, void *arg)
{
    struct http_op *op = arg;
    unlink_op(op);
    if (!r)
        http_reply_error(op->req, HTTP_SERVUNAVAIL, "Service Unavailable",
                         "the broker did not answer");
    else if (!op->healthz)
        send_metrics(op->req, r);
    else if (r->healthy)
        http_reply(op->req, HTTP_OK, "OK", "text/plain; charset=utf-8", "ok\n");
    else
        http_reply_error(op->req, HTTP_SERVUNAVAIL, "Service Unavailable", r->health);
    free(op);
}

static int allowed(const struct http_server *s, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    const struct sockaddr *sa = evcon ? evhttp_connection_get_addr(evcon) : NULL;
    return sa && cidr_list_match(&s->cfg->gateway.metrics_allow, sa);
}

int http_ops_route(struct http_server *s, struct evhttp_request *req, const char *path, int post)
{
    int healthz = strcmp(path, "/healthz") == 0;
    if (!healthz && strcmp(path, "/metrics") != 0)
        return 0;
    if (!allowed(s, req)) {
        http_reply_error(req, HTTP_FORBIDDEN_CODE, "Forbidden", "not in metrics_allow");
        return 1;
    }
    if (post) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        http_reply_error(req, HTTP_BADMETHOD, "Method Not Allowed", "use GET");
        return 1;
    }
    struct http_op *op = mg_calloc(1, sizeof *op);
    op->server = s;
    op->req = req;
    op->healthz = healthz;
    op->query = worker_metrics_query(HEALTH_TIMEOUT_MS, on_report, op);
    if (!op->query) {
        free(op);
        http_reply_error(req, HTTP_SERVUNAVAIL, "Service Unavailable", "the broker is gone");
        return 1;
    }
    op->next = s->ops;
    s->ops = op;
    return 1;
}

void http_ops_abort(struct http_server *s)
{
    while (s->ops) {
        struct http_op *op = s->ops;
        s->ops = op->next;
        worker_metrics_cancel(op->query);
        http_reply_error(op->req, HTTP_SERVUNAVAIL, "Service Unavailable", "shutting down");
        free(op);
    }
}
