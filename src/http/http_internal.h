/* Shared by http_server.c (listening, TLS, limits) and http_route.c (answers). */
#ifndef MG_HTTP_INTERNAL_H
#define MG_HTTP_INTERNAL_H

#include <openssl/ssl.h>

#include "config.h"

struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct evkeyvalq;
struct worker_ctx;

#define HTTP_HOST_MAX 255

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
};

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

#endif
