/* The connection to an upstream mail server during login: connect (host names through the
 * worker's resolver cache, dns_cache.h, never blocking), then TLS (implicit now;
 * upstream_start_tls() upgrades a plain connection after a protocol's STARTTLS), all bounded by
 * one timer. The protocol's login dialog reads and writes through it; at the end
 * upstream_detach() hands the bufferevent to the relay. Failures are named so the protocol
 * layer can decide what the client is told. */
#ifndef MG_UPSTREAM_H
#define MG_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config.h"

struct bufferevent;
struct event_base;
struct evbuffer;
struct dns_cache;

enum upstream_failure {
    UPSTREAM_CONNECT_FAILED, /* DNS, refused, unreachable */
    UPSTREAM_TLS_FAILED,     /* handshake or certificate verification */
    UPSTREAM_PROTOCOL_ERROR, /* bad greeting, unexpected reply, missing capability, closed */
    UPSTREAM_AUTH_REJECTED,  /* the server refused our token */
    UPSTREAM_TEMP_FAILURE,   /* the server says try later (BYE, [UNAVAILABLE]) */
    UPSTREAM_TIMEOUT
};

const char *upstream_failure_name(enum upstream_failure f);

/* Callbacks run from the event loop, never from inside an upstream_* call. They may free the
 * upstream (upstream code never touches it after calling one). */
struct upstream_handler {
    void (*on_ready)(void *arg); /* connected (+ TLS when implicit), or upgrade finished */
    void (*on_input)(void *arg); /* new bytes in upstream_input() */
    void (*on_failure)(void *arg, enum upstream_failure f, const char *detail);
};

struct upstream_params {
    struct event_base *base;
    struct dns_cache *resolver; /* host names; NULL: blocking resolver (tests only) */
    SSL_CTX *tls_ctx;           /* verifies the peer; used for implicit TLS and upgrades */
    const struct server_addr *server;
    const char *resume_scope; /* sessions are resumed only within it (the provider); NULL: never */
    uint64_t timeout_ms;      /* whole login phase: connect, TLS, dialog */
};

struct upstream;

struct upstream *upstream_connect(const struct upstream_params *params,
                                  const struct upstream_handler *handler, void *arg);
/* After the server accepted STARTTLS: discards anything buffered from before (injection) and
 * starts the handshake; on_ready runs again when it is done. Returns 0 or -1. */
int upstream_start_tls(struct upstream *u);
int upstream_is_tls(const struct upstream *u);
const char *upstream_host(const struct upstream *u);
/* When upstream_connect() was called (mg_now_ms()): the start of the upstream login. */
uint64_t upstream_started_ms(const struct upstream *u);

struct evbuffer *upstream_input(struct upstream *u);
/* The connection as it is now (it is replaced by STARTTLS): for the protocol log's taps. */
struct bufferevent *upstream_bufferevent(struct upstream *u);
void upstream_write(struct upstream *u, const void *data, size_t len);
/* Writes a NUL-terminated protocol text (a command, a line end). */
void upstream_send(struct upstream *u, const char *text);

/* Ends the login phase: stops the timer, clears the callbacks and returns the bufferevent
 * (with anything the server sent after the login still in its input) for the relay. */
struct bufferevent *upstream_detach(struct upstream **u);
void upstream_free(struct upstream **u);

#endif
