/* HTTP connections against max_connections_per_ip (http_internal.h). evhttp accepts by itself
 * and libevent 2.1 has no hook between accept and the first request, so a connection is
 * counted at its first request and uncounted by evhttp's close callback. A connection that
 * sends nothing is not counted: it ends with the listener's read timeout (at most 30 s). Each
 * http listener counts on its own, apart from the mail sessions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "config.h"
#include "conn_count.h"
#include "http_internal.h"
#include "ipc.h"
#include "log.h"
#include "util.h"
#include "worker_metrics.h"

struct http_conn {
    struct http_server *server;
    struct evhttp_connection *evcon;
    char addr[IPC_ADDR_MAX];
    int over; /* refused: closes after the 503 */
    struct http_conn *prev, *next;
};

static void forget(struct http_conn *c)
{
    conn_count_remove(c->server->per_address, c->addr);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->server->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    MG_UNUSED(evcon);
    forget(arg);
}

static struct http_conn *counted(struct http_server *s, struct evhttp_connection *evcon)
{
    for (struct http_conn *c = s->conns; c; c = c->next)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

static struct http_conn *count_new(struct http_server *s, struct evhttp_connection *evcon)
{
    struct http_conn *c = mg_calloc(1, sizeof *c);
    c->server = s;
    c->evcon = evcon;
    char *host = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &host, &port);
    snprintf(c->addr, sizeof c->addr, host && strchr(host, ':') ? "[%s]:%u" : "%s:%u",
             host ? host : "unknown", (unsigned)port);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    evhttp_connection_set_closecb(evcon, on_close, c);
    uint32_t max = s->cfg->gateway.max_connections_per_ip;
    size_t n = conn_count_add(s->per_address, c->addr);
    if (max && n > max) {
        log_info("http listener=%s client=%s refused: %zu connections from this address (limit "
                 "%u)",
                 s->conf->name, c->addr, n - 1, (unsigned)max);
        c->over = 1;
        worker_metrics_http_refused();
    }
    return c;
}

int http_conn_admit(struct http_server *s, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon)
        return 1;
    struct http_conn *c = counted(s, evcon);
    if (!c)
        c = count_new(s, evcon);
    if (!c->over)
        return 1;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    http_reply_error(req, HTTP_SERVUNAVAIL, "Service Unavailable",
                     "too many connections from your address");
    return 0;
}

void http_conn_forget_all(struct http_server *s)
{
    while (s->conns) {
        evhttp_connection_set_closecb(s->conns->evcon, NULL, NULL);
        forget(s->conns);
    }
}
