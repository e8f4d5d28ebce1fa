/* POST of TLS reports (RFC 8460 5.3) on an http listener: on the host and path of a [domain]'s
 * https tls_rpt URI. The body (application/tlsrpt+gzip or +json, at most TLSRPT_MAX_JSON bytes
 * before and after decompression) is parsed here, in the sandboxed worker; its normalised form
 * goes to the broker, which stores it, and the request is answered when the broker has:
 * 201 stored, 200 a duplicate, 400 malformed, 413 too large, 415 another type, 503 the store
 * or the broker cannot take it now. */
#ifndef MG_TLSRPT_POST_H
#define MG_TLSRPT_POST_H

#include <stddef.h>

#include "config.h"
#include "ipc.h"

struct evhttp_request;
struct http_server;
struct worker_ctx;

/* The [domain] whose tls_rpt has an https URI naming host and path (any path: NULL); NULL if
 * none. The host also picks the domain's certificate (SNI). */
const struct domain_conf *tlsrpt_post_target(const struct config *cfg, const char *host,
                                             const char *path);
/* 1 when some [domain] takes reports over HTTPS: the listeners then accept bodies that large. */
int tlsrpt_post_enabled(const struct config *cfg);
/* Answers the request, now (405, 415, 413, 400, 503) or when the broker has stored the report.
 * peer, host and path are for the log line, written when it is answered. */
void tlsrpt_post_serve(struct http_server *s, struct evhttp_request *req, const char *peer,
                       const char *host, const char *path);
/* The broker's answer (IPC_TLSRPT_RESULT): 1 when it was for a request of s. */
int tlsrpt_post_result(struct http_server *s, const struct ipc_tlsrpt_result *res);
/* Answers every request of s still waiting for the broker with 503 (the listener closes). */
void tlsrpt_post_abandon(struct http_server *s);

#endif
