/* Shared by http_server.c (listening, TLS, limits) and http_route.c (answers). */
#ifndef MG_HTTP_INTERNAL_H
#define MG_HTTP_INTERNAL_H

#include <openssl/ssl.h>

#include "config.h"

struct conn_count;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct evkeyvalq;
struct worker_ctx;

#define HTTP_HOST_MAX 255
struct http_conn;
struct http_op;
struct tlsrpt_pending;
struct worker_ctx;

/* A [domain]'s own certificate, for the names it is served under (SNI). */
struct http_sni {
    const struct domain_conf *domain;
    SSL_CTX *ctx;
};

struct http_server {
    struct worker_ctx *w; /* the broker link (the sign-in page) */
    const struct config *cfg;
    const struct listener_conf *conf;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *tls; /* NULL for tls = none */
    struct http_sni *sni;
    size_t n_sni;
    struct conn_count *per_address; /* max_connections_per_ip, per listener (http_conn.c) */
    struct http_conn *conns;        /* the connections counted */
    struct http_op *ops;            /* /metrics and /healthz waiting for the broker */
    struct worker_ctx *worker;             /* the broker link, for TLS reports */
    struct tlsrpt_pending *tlsrpt_pending; /* POST /tlsrpt waiting for the broker */
};

/* An answer with a text body (http_route.c). */
void http_reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                const char *body);
/* "CODE REASON: why" as text/plain. */
void http_reply_error(struct evhttp_request *req, int code, const char *reason, const char *why);

/* http_conn.c: counts each connection against its client address at its first request (evhttp
 * 2.1 tells nothing earlier) and uncounts it when it closes. 0: over max_connections_per_ip,
 * answered 503 with Connection: close; 1: go on. */
int http_conn_admit(struct http_server *s, struct evhttp_request *req);
/* Before evhttp_free: forgets every counted connection without callbacks. */
void http_conn_forget_all(struct http_server *s);

/* http_ops.c: GET /metrics and /healthz. Returns 1 when path is one of them (answered now or
 * once the broker answers), 0 otherwise. */
int http_ops_route(struct http_server *s, struct evhttp_request *req, const char *path, int post);
/* Before evhttp_free: answers 503 to every request still waiting for the broker. */
void http_ops_abort(struct http_server *s);

/* evhttp's callback for every request (arg: the struct http_server). */
void http_route(struct evhttp_request *req, void *arg);

/* The request's log line (never its query: it holds addresses, codes, states). */
void http_log_request(const struct http_server *s, struct evhttp_request *req, const char *host,
                      const char *path, int status);

/* GET /oauth/start and /oauth/callback (signin_web.c): 0 when path is neither, else 1: answered
 * (an error), or waiting for the broker (the answer and its log line come later). */
int http_signin_route(struct http_server *s, struct evhttp_request *req, const char *host,
                      const char *path, const struct evkeyvalq *query);
/* Answers every request of s still waiting for the broker with 503 (s is going away). */
void http_signin_drop(struct http_server *s);

/* The [domain] a web name belongs to: NAME, or mta-sts., autoconfig. or autodiscover. in front
 * of it; *prefix gets what was in front ("" for NAME itself). NULL when none. */
const struct domain_conf *http_domain_of_host(const struct config *cfg, const char *host,
                                              const char **prefix);

/* Answers code with a text/plain body "CODE REASON: why". */
void http_fail(struct evhttp_request *req, int code, const char *reason, const char *why);
/* The access log line of one request (method: enum evhttp_cmd_type). */
void http_log_answer(const struct http_server *s, const char *peer, const char *host, int method,
                     const char *path, int status);

#endif
