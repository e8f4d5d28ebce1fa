/* OAuth 2.0 token client of the broker: client credentials against Entra ID's v2.0 token
 * endpoint, libcurl multi driven by the broker's libevent loop (never blocks it).
 *
 * Cache: one entry per (provider, scope). A token is served from the cache while it has more
 * than TOKEN_RENEW_BEFORE_MS left; inside that window it is still served but a background
 * renewal starts; an expired or missing token makes callers wait. Single-flight: at most one
 * request per entry is in flight, every waiter gets its result. After a temporary failure the
 * entry backs off (Retry-After when given, else exponential with jitter, 1 s .. 60 s) and
 * callers get TOKEN_TEMPFAIL at once during the backoff, unless a still-valid token exists. */
#ifndef MG_TOKEN_H
#define MG_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

struct event_base;
struct provider_conf;

#define TOKEN_RENEW_BEFORE_MS (5 * 60 * 1000)

enum token_status {
    TOKEN_OK = 0,
    TOKEN_TEMPFAIL = 1, /* 5xx, 429, timeout, connection/TLS error, unparseable answer */
    TOKEN_PERMFAIL = 2  /* 4xx with an OAuth error: bad secret, unknown app/tenant, bad scope */
};

/* The outcome handed to a waiter. Pointers are valid only during the callback. */
struct token_result {
    enum token_status status;
    const char *access_token; /* TOKEN_OK only */
    size_t token_len;
    const char *reason; /* human readable, for logs: never contains a token or secret */
};

typedef void (*token_cb)(const struct token_result *res, void *arg);

struct token_client;
struct token_wait;

/* timeout_ms: one HTTP request, connect included. */
struct token_client *token_client_new(struct event_base *base, uint64_t timeout_ms);
void token_client_free(struct token_client **tc); /* wipes cached tokens; no callbacks */

/* Calls cb with a token for the provider (client credentials, p->scope). When a usable token is
 * cached, cb runs synchronously and NULL is returned; otherwise a handle is returned and cb runs
 * later from the event loop (or synchronously with TOKEN_TEMPFAIL during a backoff, also
 * returning NULL). */
struct token_wait *token_get(struct token_client *tc, const struct provider_conf *p, token_cb cb,
                             void *arg);
/* The waiter's callback will not be called. The request itself goes on for the others. */
void token_wait_cancel(struct token_wait *w);

/* Persistence hooks (token_store.c). The observer runs whenever a request obtains a token
 * (expires_in in seconds); seeding installs a token obtained earlier (e.g. loaded from the store
 * at start) as if it had just been obtained with expires_in seconds left. */
typedef void (*token_obtained_cb)(const char *provider, const char *scope, const char *token,
                                  size_t len, int64_t expires_in, void *arg);
void token_client_set_observer(struct token_client *tc, token_obtained_cb cb, void *arg);
void token_client_seed(struct token_client *tc, const struct provider_conf *p, const char *token,
                       size_t len, int64_t expires_in);

/* Requests sent to token endpoints since start (for tests and metrics). */
uint64_t token_client_requests(const struct token_client *tc);

/* ---- pure parts, unit-tested and fuzzed ---- */

struct token_response {
    enum token_status status;
    char *access_token; /* malloc'd, TOKEN_OK only; free with token_response_clear */
    size_t token_len;
    int64_t expires_in;  /* seconds */
    char *refresh_token; /* malloc'd when a 200 answer carried one (delegated flows), else NULL */
    size_t refresh_len;
    int64_t retry_after; /* seconds from Retry-After, -1 when absent */
    char error[64];      /* OAuth "error", e.g. invalid_client */
    char reason[512];    /* e.g. "invalid_client: AADSTS7000215: Invalid client secret provided" */
};

/* Interprets an HTTP answer of a token endpoint: status code, body, and the Retry-After header
 * value (NULL when absent). 200 with a JSON access_token (and token_type Bearer) is TOKEN_OK
 * (with the refresh_token when there is one; a malformed refresh_token makes it malformed);
 * 429 and 5xx are TEMPFAIL; other 4xx with a Microsoft-shaped JSON error are PERMFAIL, except
 * errors Microsoft documents as temporary (temporarily_unavailable, AADSTS50196 loop detection
 * throttling ...); anything unparseable is TEMPFAIL. Never fails to fill reason. */
void token_parse_response(long http_status, const char *body, size_t len,
                          const char *retry_after_header, struct token_response *out);
void token_response_clear(struct token_response *r);

/* Builds the x-www-form-urlencoded body for the client credentials grant (all values
 * percent-encoded). Returns malloc'd string; the caller wipes and frees it. */
char *token_client_credentials_body(const char *client_id, const char *client_secret,
                                    const char *scope);

/* The same grant with certificate credentials: client_assertion_type jwt-bearer and the signed
 * client_assertion (jwt.h) instead of client_secret. Malloc'd; the caller wipes and frees it. */
char *token_client_assertion_body(const char *client_id, const char *assertion, const char *scope);

#endif
