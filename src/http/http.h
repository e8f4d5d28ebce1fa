/* The worker's HTTP listeners ([listen] protocol = http): autoconfig for mail clients, the
 * MTA-STS policy and the sign-in page, served with libevent's evhttp on the socket the broker
 * bound. Documents are answered from the configuration alone, at once; the sign-in page asks
 * the broker over IPC (signin_web.c). */
#ifndef MG_HTTP_H
#define MG_HTTP_H

#include <openssl/ssl.h>

#include "config.h"

struct http_server;
struct ipc_signin_answer;
struct ipc_tlsrpt_result;
struct worker_ctx;

/* Limits of one request (evhttp refuses larger ones: 431/413, and closes the connection). */
#define HTTP_MAX_HEADERS_SIZE (8 * 1024)
#define HTTP_MAX_BODY_SIZE (64 * 1024) /* an Autodiscover request is < 1 KiB */
/* With TLS reports taken over HTTPS, evhttp reads bodies up to TLSRPT_MAX_JSON; every other
 * path still answers a body over HTTP_MAX_BODY_SIZE with 413. */
#define HTTP_TIMEOUT_MAX_S 30 /* read and write timeout; the listener's login_timeout if less */

/* Serves listener l on the listening socket fd (owned from now on). With tls = implicit it
 * builds its own TLS contexts from [tls] and from each [domain] with a certificate (chosen by
 * SNI), so it must run before the sandbox: they read files. Logs and returns NULL on failure
 * (fd closed). */
struct http_server *http_server_new(struct worker_ctx *w, const struct config *cfg,
                                    const struct listener_conf *l, int fd);
/* The broker's answer to a sign-in request (IPC_SIGNIN_ANSWER); one nobody waits for (its
 * connection's listener closed) is dropped. */
void http_signin_answer(const struct ipc_signin_answer *a);
/* The worker's broker link: TLS reports (tlsrpt_post.h) are stored by the broker. */
void http_server_set_worker(struct http_server *s, struct worker_ctx *w);
/* The broker's answer about a TLS report: 1 when it was for a request of s. */
int http_server_tlsrpt_result(struct http_server *s, const struct ipc_tlsrpt_result *res);
/* Stops accepting (closes the listening socket); open connections are closed too. */
void http_server_free(struct http_server **s);

#endif
