/* Shared by http_server.c (listening, TLS, limits) and http_route.c (answers). */
#ifndef MG_HTTP_INTERNAL_H
#define MG_HTTP_INTERNAL_H

#include <openssl/ssl.h>

#include "config.h"

struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct tlsrpt_pending;
struct worker_ctx;

/* A [domain]'s own certificate, for the names it is served under (SNI). */
struct http_sni {
    const struct domain_conf *domain;
    SSL_CTX *ctx;
};

struct http_server {
    const struct config *cfg;
    const struct listener_conf *conf;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *tls; /* NULL for tls = none */
    struct http_sni *sni;
    size_t n_sni;
    struct worker_ctx *worker;             /* the broker link, for TLS reports */
    struct tlsrpt_pending *tlsrpt_pending; /* POST /tlsrpt waiting for the broker */
};

/* evhttp's callback for every request (arg: the struct http_server). */
void http_route(struct evhttp_request *req, void *arg);

/* The [domain] a web name belongs to: NAME, or mta-sts., autoconfig. or autodiscover. in front
 * of it; *prefix gets what was in front ("" for NAME itself). NULL when none. */
const struct domain_conf *http_domain_of_host(const struct config *cfg, const char *host,
                                              const char **prefix);

/* Answers code with a text/plain body "CODE REASON: why". */
void http_fail(struct evhttp_request *req, int code, const char *reason, const char *why);
/* The access log line of one request (method: enum evhttp_cmd_type). */
void http_log_request(const struct http_server *s, const char *peer, const char *host, int method,
                      const char *path, int status);

#endif
