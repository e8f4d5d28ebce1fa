/* OAuth 2.0 token client of the broker: every grant mailgate uses (client credentials, refresh
 * token, password, JWT bearer) against a token endpoint, libcurl multi driven by the broker's
 * libevent loop (never blocks it).
 *
 * Cache: one entry per (provider, principal, scope), remembering its grant and subject. A token is
 * served from the cache while it has more than TOKEN_RENEW_BEFORE_MS left; inside that window it
 * is still served but a background renewal starts (not for the password grant, whose password
 * is not kept); an expired or missing token makes callers wait. Single-flight: at most one
 * request per entry is in flight, every waiter gets its result. After a temporary failure the
 * entry backs off (Retry-After when given, else exponential with jitter, 1 s .. 60 s) and
 * callers get TOKEN_TEMPFAIL at once during the backoff, unless a still-valid token exists;
 * after a permanent one it backs off 30 s, answering TOKEN_TEMPFAIL (PERMFAIL) or the same
 * TOKEN_NEEDS_AUTH / TOKEN_DENIED, so a refused grant never turns into a storm of requests. */
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
    TOKEN_PERMFAIL = 2, /* 4xx with an OAuth error: bad secret, unknown app/tenant, bad scope */
    /* Delegated flow: the user has no refresh token, or the IdP refused it (invalid_grant:
     * revoked, expired, password changed: AADSTS50173, 70000, 700082, 70008 ...). The user must
     * be authorized again (mailgate user authorize). */
    TOKEN_NEEDS_AUTH = 3,
    /* Password flow (ROPC): the IdP refused the user's credentials (invalid_grant: wrong
     * password AADSTS50126, MFA required AADSTS50076/50079, account disabled AADSTS50057 ...). */
    TOKEN_DENIED = 4
};

/* How a token is obtained (the OAuth grant sent to the token endpoint). */
enum token_grant {
    TOKEN_GRANT_CLIENT_CREDENTIALS = 0, /* app-only: client_secret or certificate assertion */
    TOKEN_GRANT_REFRESH_TOKEN = 1,      /* delegated: the user's stored refresh token */
    TOKEN_GRANT_PASSWORD = 2,           /* ROPC: the client's password, never stored */
    TOKEN_GRANT_JWT_BEARER = 3 /* Google service account: RFC 7523 assertion, sub = mailbox */
};

/* Whose token: the second part of the cache key (provider, principal, scope).
 *   client credentials: principal "app:CLIENT_ID@TENANT" (token_app_principal)
 *   refresh token:      principal "user:NAME" (the local user name, lower case)
 *   JWT bearer:         principal "mailbox:MAILBOX", subject = the mailbox (the JWT's sub)
 *   password:           principal "password:NAME:HEX" where HEX is a keyed hash of the password
 *                       (token_password_principal), subject = the mailbox (the ROPC username);
 *                       such tokens are never persisted and never renewed in the background. */
struct token_subject {
    enum token_grant grant;
    const char *principal;
    const char *subject;  /* JWT bearer and password grants */
    const char *password; /* password grant only; used for this request and wiped after it */
    size_t password_len;
};

/* The outcome handed to a waiter. Pointers are valid only during the callback. */
struct token_result {
    enum token_status status;
    const char *access_token; /* TOKEN_OK only */
    size_t token_len;
    const char *reason; /* human readable, for logs: never contains a token or secret */
    /* TOKEN_OK: which token this is, for token_client_refused (never 0). */
    uint64_t token_id;
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
/* The same for any grant (see struct token_subject). token_get() is the client credentials case.
 * subj and its strings are copied as needed; the password is kept only until the request is
 * sent. */
struct token_wait *token_get_for(struct token_client *tc, const struct provider_conf *p,
                                 const struct token_subject *subj, token_cb cb, void *arg);
/* "app:CLIENT_ID@TENANT" (malloc'd). */
char *token_app_principal(const struct provider_conf *p);
/* "password:USER:HEX" (malloc'd), HEX = HMAC-SHA256 of the password under a random key made
 * once per process: equal passwords share a cache entry, and neither the key nor the password
 * ever leaves the process. */
char *token_password_principal(const char *user, const char *password, size_t len);

/* Refresh tokens live in the store (grant_store.h); the token client asks for them through
 * these hooks when a refresh-token request starts, and reports what the IdP said. */
struct token_refresh_ops {
    /* The current refresh token of (provider, principal): malloc'd (the caller wipes and frees
     * it), length in *len; NULL when there is none (never authorized, or needs authorization). */
    char *(*load)(void *arg, const char *provider, const char *principal, size_t *len);
    /* The IdP rotated the refresh token. Called before the new access token is handed to
     * anybody; must store it durably (one transaction) before returning. 0 or -1. */
    int (*rotated)(void *arg, const char *provider, const char *principal, const char *refresh,
                   size_t len);
    /* The IdP refused the refresh token for good (invalid_grant): mark the user as needing
     * authorization and write an audit event. reason is safe to log. */
    void (*revoked)(void *arg, const char *provider, const char *principal, const char *reason);
};
void token_client_set_refresh_ops(struct token_client *tc, const struct token_refresh_ops *ops,
                                  void *arg);

/* The waiter's callback will not be called. The request itself goes on for the others. */
void token_wait_cancel(struct token_wait *w);

/* Persistence hooks (token_store.c). The observer runs whenever a request obtains a token
 * (expires_in in seconds; credential: the fingerprint of the credential it was obtained with,
 * token_fingerprint.h); seeding installs a token obtained earlier (e.g. loaded from the store
 * at start) as if it had just been obtained with expires_in seconds left. */
typedef void (*token_obtained_cb)(const char *provider, const char *principal, const char *scope,
                                  const char *token, size_t len, int64_t expires_in,
                                  const char *credential, void *arg);
void token_client_set_observer(struct token_client *tc, token_obtained_cb cb, void *arg);
/* Counting hooks (GET /metrics): outcome runs when a request to the IdP ends, or could not
 * start (status: enum token_status); cache hits are logins served from the cache. */
typedef void (*token_outcome_cb)(const char *provider, enum token_status status, void *arg);
void token_client_set_outcome_cb(struct token_client *tc, token_outcome_cb cb, void *arg);
uint64_t token_client_cache_hits(const struct token_client *tc);
void token_client_seed(struct token_client *tc, const struct provider_conf *p,
                       const struct token_subject *subj, const char *token, size_t len,
                       int64_t expires_in);

/* The upstream refused the token token_id (from a token_result). A token the cache still
 * holds is dropped (cache and store: token_store_ops.forget), unless it was obtained less than
 * fresh_ms ago: a token that new is refused for a permission, not for being stale, and asking
 * again would only repeat that. Concurrent refusals of one token drop it once: the others find
 * it gone (or replaced) and get TOKEN_REFUSAL_DROPPED too. */
enum token_refusal {
    TOKEN_REFUSAL_DROPPED = 0, /* gone now (or already): token_get_again brings a new one */
    TOKEN_REFUSAL_FRESH = 1,   /* kept: it was obtained just now */
    TOKEN_REFUSAL_UNKNOWN = 2  /* no such entry (any more) */
};
enum token_refusal token_client_refused(struct token_client *tc, uint64_t token_id,
                                        uint64_t fresh_ms);
/* Like token_get_for, for the entry of token_id (its grant and subject): the token it holds
 * now, or a new one (single flight). TOKEN_TEMPFAIL at once for an unknown entry or the
 * password grant (its password is not kept). */
struct token_wait *token_get_again(struct token_client *tc, uint64_t token_id, token_cb cb,
                                   void *arg);

/* The store's side of the cache (token_store.c). */
struct token_store_ops {
    /* Deletes the stored row of a token the upstream refused. */
    void (*forget)(void *arg, const char *provider, const char *principal, const char *scope);
    /* 1 when someone else changed the store since the last call (checked before each
     * token_get_for); then every cached token is checked with stored() (1 there, 0 gone, -1
     * error) and dropped when its row is gone. */
    int (*changed)(void *arg);
    int (*stored)(void *arg, const char *provider, const char *principal, const char *scope);
};
void token_client_set_store_ops(struct token_client *tc, const struct token_store_ops *ops,
                                void *arg);

/* Requests sent to token endpoints since start (for tests and metrics). */
uint64_t token_client_requests(const struct token_client *tc);
/* Cache entries held (for tests and metrics). */
size_t token_client_entries(const struct token_client *tc);
/* Frees idle entries (no token, nothing in flight, nobody waiting, no backoff running) so that
 * per-user and per-password entries cannot pile up. Runs every TOKEN_SWEEP_MS on its own;
 * exposed for tests. */
#define TOKEN_SWEEP_MS (60 * 1000)
void token_client_sweep(struct token_client *tc);

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

/* invalid_grant refuses the grant itself: TOKEN_NEEDS_AUTH for the refresh grant, TOKEN_DENIED for
 * the password grant (TOKEN_PERMFAIL for the others); any other answer keeps its status. */
enum token_status token_grant_status(enum token_grant grant, const struct token_response *r);

/* x-www-form-urlencoded request bodies (every value percent-encoded), from the provider's
 * token_endpoint, client_id, scope and credentials. Client authentication: the certificate's
 * signed client_assertion when client_key is loaded, else client_secret, else none (a public
 * client; an error when client_secret_file or client_private_key is set but not loaded).
 * Malloc'd (the caller wipes and frees them: they carry secrets), or NULL with a message in err
 * (missing settings, a failed signature). */
/* grant_type=client_credentials; client authentication is required. */
char *token_app_body(const struct provider_conf *p, char *err, size_t errlen);
/* grant_type=refresh_token, client_id, refresh_token, scope. */
char *token_refresh_body(const struct provider_conf *p, const char *refresh_token, char *err,
                         size_t errlen);
/* grant_type=password (ROPC), client_id, username, password (any bytes), scope. */
char *token_password_body(const struct provider_conf *p, const char *username, const char *password,
                          size_t password_len, char *err, size_t errlen);
/* grant_type=authorization_code (the sign-in page, auth_code.h): client_id, code, redirect_uri
 * (the one of the authorize request), code_verifier (PKCE), scope. */
char *token_auth_code_body(const struct provider_conf *p, const char *code,
                           const char *redirect_uri, const char *verifier, char *err,
                           size_t errlen);
/* grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion = a fresh service account
 * JWT (jwt.h) signed with sa_key for the mailbox. */
char *token_jwt_bearer_body(const struct provider_conf *p, const char *mailbox, char *err,
                            size_t errlen);

#endif
