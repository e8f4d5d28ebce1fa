/* The token client's cache (see token.h): entries keyed (provider, principal, scope) with
 * single-flight requests, background renewal, backoff and an idle sweep, on top of the libcurl
 * driver in token_http.c and the request bodies of token_parse.c. */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "aadsts.h"
#include "config.h"
#include "json_wipe.h"
#include "log.h"
#include "token_creds.h"
#include "token_http.h"
#include "util.h"

#define EXPIRY_MARGIN_MS 30000 /* stop handing out a token this long before it dies */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define RETRY_AFTER_MAX_MS (10 * 60 * 1000)
#define BACKOFF_PERMFAIL_MS 30000

struct token_wait {
    struct token_wait *prev, *next;
    struct token_wait **head; /* the list it is in: entry->waiters or entry->delivering */
    token_cb cb;
    void *arg;
};

struct token_entry {
    struct token_entry *next;
    struct token_client *tc;
    struct token_creds *creds; /* creds->conf.name is the first part of the key */
    char *principal, *scope;   /* the rest of the key */
    char *log_name;            /* the principal without a password's hash */
    enum token_grant grant;
    char *subject; /* JWT bearer and password grants: the mailbox */
    char *token;   /* NULL when none or expired */
    size_t token_len;
    uint64_t renew_at_ms, expires_at_ms;
    /* Which token this is (token_result.token_id = serial << 32 | generation) and when it was
     * obtained: 0 when unknown (seeded from the store), i.e. "not fresh". */
    uint32_t serial, generation;
    uint64_t obtained_ms;
    /* The credentials (token_fingerprint.h) of the token and of the last request: see
     * forget_other_credential. */
    char fingerprint[TOKEN_FINGERPRINT_SIZE], request_fingerprint[TOKEN_FINGERPRINT_SIZE];
    int used; /* handed out since obtained: only then is a background renewal worth it */
    struct event *timer;
    struct token_http_req *inflight;
    struct token_wait *waiters, *delivering;
    uint64_t backoff_until_ms;
    unsigned failures;
    enum token_status last_status; /* of the failure that started the backoff */
    char last_reason[sizeof((struct token_response *)0)->reason];
};

struct token_client {
    struct event_base *base;
    struct token_http *http;
    struct token_entry *entries;
    size_t n_entries;
    struct token_creds *creds;
    struct event *sweep_timer;
    uint64_t requests, cache_hits;
    token_outcome_cb outcome;
    void *outcome_arg;
    token_obtained_cb observer;
    void *observer_arg;
    struct token_refresh_ops refresh_ops;
    void *refresh_arg;
    struct token_store_ops store_ops;
    void *store_arg;
    uint32_t next_serial;
};

/* ---- entries ---- */

static void on_entry_timer(evutil_socket_t fd, short what, void *arg);
static void on_sweep_timer(evutil_socket_t fd, short what, void *arg);

static void arm_sweep(struct token_client *tc)
{
    if (evtimer_pending(tc->sweep_timer, NULL))
        return;
    struct timeval tv = {.tv_sec = TOKEN_SWEEP_MS / 1000};
    evtimer_add(tc->sweep_timer, &tv);
}

static struct token_entry *entry_for(struct token_client *tc, const struct provider_conf *p,
                                     const struct token_subject *subj)
{
    const char *scope = p->scope ? p->scope : "";
    struct token_creds *creds = token_creds_update(&tc->creds, p);
    struct token_entry *e;
    for (e = tc->entries; e; e = e->next)
        if (e->creds == creds && strcmp(e->principal, subj->principal) == 0 &&
            strcmp(e->scope, scope) == 0)
            break;
    if (!e) {
        e = mg_calloc(1, sizeof *e);
        e->tc = tc;
        e->creds = creds;
        e->principal = mg_strdup(subj->principal);
        e->log_name = token_log_name(subj->principal);
        e->scope = mg_strdup(scope);
        e->timer = evtimer_new(tc->base, on_entry_timer, e);
        e->serial = ++tc->next_serial;
        e->next = tc->entries;
        tc->entries = e;
        tc->n_entries++;
        arm_sweep(tc);
    }
    e->grant = subj->grant; /* a reloaded config may have changed the provider's flow */
    free(e->subject);
    e->subject = subj->subject ? mg_strdup(subj->subject) : NULL;
    return e;
}

static void drop_token(struct token_entry *e)
{
    if (e->token) {
        mg_wipe(e->token, e->token_len);
        free(e->token);
    }
    e->token = NULL;
    e->token_len = 0;
}

static void free_waiters(struct token_wait *w)
{
    while (w) {
        struct token_wait *next = w->next;
        free(w);
        w = next;
    }
}

static void free_entry(struct token_entry *e)
{
    token_http_cancel(e->inflight);
    free_waiters(e->waiters);
    free_waiters(e->delivering);
    event_free(e->timer);
    drop_token(e);
    free(e->principal);
    free(e->log_name);
    free(e->scope);
    free(e->subject);
    free(e);
}

static void arm_timer(struct token_entry *e, uint64_t at_ms)
{
    uint64_t now = mg_now_ms(), delay = at_ms > now ? at_ms - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(delay / 1000), .tv_usec = (long)(delay % 1000) * 1000};
    evtimer_add(e->timer, &tv);
}

/* renew_at = obtained + min(0.8 L, L - 5 min), but not before obtained + L / 2. */
static void store_token(struct token_entry *e, struct token_response *tr, uint64_t obtained_ms)
{
    drop_token(e);
    e->token = tr->access_token;
    e->token_len = tr->token_len;
    tr->access_token = NULL;
    uint64_t life = (uint64_t)tr->expires_in * 1000;
    uint64_t renew = life * 8 / 10;
    if (life > TOKEN_RENEW_BEFORE_MS && life - TOKEN_RENEW_BEFORE_MS < renew)
        renew = life - TOKEN_RENEW_BEFORE_MS;
    if (renew < life / 2)
        renew = life / 2;
    uint64_t margin = life / 10 < EXPIRY_MARGIN_MS ? life / 10 : EXPIRY_MARGIN_MS;
    e->renew_at_ms = obtained_ms + renew;
    e->expires_at_ms = obtained_ms + life - margin;
    e->generation++;
    e->obtained_ms = obtained_ms;
    e->used = 0; /* the waiters that asked for it do not count: only later demand does */
    e->failures = 0;
    e->backoff_until_ms = 0;
    e->last_status = TOKEN_OK;
    e->last_reason[0] = '\0';
    arm_timer(e, e->renew_at_ms);
}

static uint64_t token_id_of(const struct token_entry *e)
{
    return (uint64_t)e->serial << 32 | e->generation;
}

/* ---- failures ---- */

static int is_permanent(enum token_status status)
{
    return status == TOKEN_PERMFAIL || status == TOKEN_NEEDS_AUTH || status == TOKEN_DENIED;
}

static uint64_t backoff_ms(struct token_entry *e, const struct token_response *tr,
                           enum token_status status)
{
    if (is_permanent(status))
        return BACKOFF_PERMFAIL_MS;
    if (tr->retry_after >= 0) {
        uint64_t ms = (uint64_t)tr->retry_after * 1000;
        return ms < BACKOFF_MIN_MS       ? BACKOFF_MIN_MS
               : ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS
                                         : ms;
    }
    unsigned shift = e->failures > 7 ? 6 : e->failures - 1;
    uint64_t base = (uint64_t)BACKOFF_MIN_MS << shift;
    if (base > BACKOFF_MAX_MS)
        base = BACKOFF_MAX_MS;
    uint32_t r;
    mg_random_bytes(&r, sizeof r);
    /* +-20 %: spread the retries of many brokers sharing one app registration. */
    return base * 8 / 10 + (uint64_t)((double)base * 0.4 * ((double)r / 4294967296.0));
}

static void enter_backoff(struct token_entry *e, const struct token_response *tr,
                          enum token_status status)
{
    e->failures++;
    e->backoff_until_ms = mg_now_ms() + backoff_ms(e, tr, status);
    e->last_status = status;
    mg_strlcpy(e->last_reason, tr->reason, sizeof e->last_reason);
}

static const char *status_name(enum token_status status)
{
    static const char *const names[] = {"ok", "tempfail", "permfail", "needs_auth", "denied"};
    return (unsigned)status < MG_ARRAY_LEN(names) ? names[status] : "?";
}

static void log_outcome(const struct token_entry *e, long status, const struct token_response *tr,
                        enum token_status result, uint64_t duration_ms)
{
    if (e->tc->outcome)
        e->tc->outcome(e->creds->conf.name, result, e->tc->outcome_arg);
    if (result == TOKEN_OK) {
        log_info("token request provider=%s principal=%s status=%ld expires_in=%lld "
                 "duration_ms=%llu",
                 e->creds->conf.name, e->log_name, status, (long long)tr->expires_in,
                 (unsigned long long)duration_ms);
        return;
    }
    char error[96], reason[600];
    uint64_t now = mg_now_ms();
    log_warn("token request failed provider=%s principal=%s status=%ld result=%s error=%s "
             "reason=%s backoff_s=%llu duration_ms=%llu",
             e->creds->conf.name, e->log_name, status, status_name(result),
             log_quote(error, sizeof error, tr->error, (size_t)-1),
             log_quote(reason, sizeof reason, tr->reason, (size_t)-1),
             (unsigned long long)(e->backoff_until_ms > now
                                      ? (e->backoff_until_ms - now + 999) / 1000
                                      : 0),
             (unsigned long long)duration_ms);
}

/* Hands the outcome to every waiter. Callbacks may call token_get or cancel other waiters
 * (including ones still to be called here), so they are taken one at a time off a list that
 * token_wait_cancel also knows about. */
static void deliver(struct token_entry *e, enum token_status status, const char *reason)
{
    e->delivering = e->waiters;
    e->waiters = NULL;
    for (struct token_wait *w = e->delivering; w; w = w->next)
        w->head = &e->delivering;
    struct token_wait *w;
    while ((w = e->delivering)) {
        e->delivering = w->next;
        if (w->next)
            w->next->prev = NULL;
        struct token_result res = {.status = status, .reason = reason};
        if (status == TOKEN_OK) {
            res.access_token = e->token;
            res.token_len = e->token_len;
            res.token_id = token_id_of(e);
        }
        token_cb cb = w->cb;
        void *arg = w->arg;
        free(w);
        cb(&res, arg);
    }
}

/* A permanent failure with a known AADSTS code gets its fix appended, for the log and for
 * `mailgate token get` (kept out of token_parse_response, whose reason is the IdP's own words). */
static void append_hint(struct token_response *tr, enum token_status status)
{
    const char *hint = is_permanent(status) ? aadsts_hint_for_text(tr->reason) : NULL;
    size_t n = strlen(tr->reason);
    if (hint && n + 8 < sizeof tr->reason)
        snprintf(tr->reason + n, sizeof tr->reason - n, " (fix: %s)", hint);
}

/* ---- what the refresh grant tells the store ---- */

static const char *user_of(const char *principal)
{
    return strncmp(principal, "user:", 5) == 0 ? principal + 5 : principal;
}

/* The new refresh token is stored before anybody gets the access token that came with it: once
 * a client has logged in with it, losing the rotated refresh token would mean re-authorizing. */
static void save_rotated(const struct token_entry *e, const struct token_response *tr)
{
    const struct token_client *tc = e->tc;
    if (e->grant != TOKEN_GRANT_REFRESH_TOKEN || !tr->refresh_token)
        return;
    if (tc->refresh_ops.rotated &&
        tc->refresh_ops.rotated(tc->refresh_arg, e->creds->conf.name, e->principal,
                                tr->refresh_token, tr->refresh_len) == 0)
        return;
    log_error("provider=%s principal=%s: cannot store the rotated refresh token; the previous "
              "one stays stored",
              e->creds->conf.name, e->log_name);
}

static void report_revoked(const struct token_entry *e, const char *reason)
{
    const struct token_client *tc = e->tc;
    if (tc->refresh_ops.revoked)
        tc->refresh_ops.revoked(tc->refresh_arg, e->creds->conf.name, e->principal, reason);
}

/* The stored refresh token, in a body. NULL with *fail = TOKEN_NEEDS_AUTH when there is none. */
static char *refresh_grant_body(const struct token_entry *e, const struct provider_conf *p,
                                enum token_status *fail, char *err, size_t errlen)
{
    const struct token_client *tc = e->tc;
    size_t len = 0;
    char *refresh = tc->refresh_ops.load
                        ? tc->refresh_ops.load(tc->refresh_arg, p->name, e->principal, &len)
                        : NULL;
    if (!refresh) {
        *fail = TOKEN_NEEDS_AUTH;
        snprintf(err, errlen, "user %s is not authorized: run mailgate user authorize",
                 user_of(e->principal));
        return NULL;
    }
    char *body = token_refresh_body(p, refresh, err, errlen);
    mg_wipe(refresh, len);
    free(refresh);
    return body;
}

/* ---- requests ---- */

static void on_http_done(const struct token_http_result *res, void *arg)
{
    struct token_entry *e = arg;
    e->inflight = NULL;
    struct token_response tr;
    if (res->transport_ok) {
        token_parse_response(res->status, res->body, res->len, res->retry_after, &tr);
    } else {
        memset(&tr, 0, sizeof tr);
        tr.status = TOKEN_TEMPFAIL;
        tr.retry_after = -1;
        snprintf(tr.reason, sizeof tr.reason, "token request failed: %s", res->error);
    }
    enum token_status status = token_grant_status(e->grant, &tr);
    append_hint(&tr, status);
    int64_t expires_in = tr.expires_in;
    if (status == TOKEN_OK) {
        save_rotated(e, &tr);
        store_token(e, &tr, mg_now_ms() - res->duration_ms);
        memcpy(e->fingerprint, e->request_fingerprint, sizeof e->fingerprint);
        if (e->tc->observer && e->grant != TOKEN_GRANT_PASSWORD) /* never persisted */
            e->tc->observer(e->creds->conf.name, e->principal, e->scope, e->token, e->token_len,
                            expires_in, e->fingerprint, e->tc->observer_arg);
    } else {
        if (status == TOKEN_NEEDS_AUTH)
            report_revoked(e, tr.reason);
        enter_backoff(e, &tr, status);
    }
    log_outcome(e, res->status, &tr, status, res->duration_ms);
    deliver(e, status, status == TOKEN_OK ? "" : e->last_reason);
    token_response_clear(&tr);
}

/* The body for the entry's grant; subj carries the password (password grant only: without it
 * there is nothing to renew with). NULL with err (and *fail) set. */
static char *request_body(const struct token_entry *e, const struct token_subject *subj,
                          enum token_status *fail, char *err, size_t errlen)
{
    struct provider_conf p;
    token_creds_view(e->creds, e->scope, &p);
    switch (e->grant) {
    case TOKEN_GRANT_CLIENT_CREDENTIALS:
        return token_app_body(&p, err, errlen);
    case TOKEN_GRANT_REFRESH_TOKEN:
        return refresh_grant_body(e, &p, fail, err, errlen);
    case TOKEN_GRANT_JWT_BEARER:
        return token_jwt_bearer_body(&p, e->subject, err, errlen);
    case TOKEN_GRANT_PASSWORD:
        if (subj && subj->password)
            return token_password_body(&p, e->subject, subj->password, subj->password_len, err,
                                       errlen);
        break;
    }
    snprintf(err, errlen, "no password to request a token with");
    return NULL;
}

/* Starts the one request of an entry: TOKEN_OK when it is under way. When it cannot even
 * start, the entry backs off like after a failed request (so a missing secret does not turn
 * into a busy loop) and TOKEN_TEMPFAIL is returned; a user without a refresh token gets
 * TOKEN_NEEDS_AUTH at once (nothing was asked of the IdP). The reason is in last_reason. */
static enum token_status start_request(struct token_entry *e, const struct token_subject *subj)
{
    char error[CURL_ERROR_SIZE + 64] = "";
    enum token_status fail = TOKEN_TEMPFAIL;
    char *body = request_body(e, subj, &fail, error, sizeof error);
    memcpy(e->request_fingerprint, e->creds->fingerprint, sizeof e->request_fingerprint);
    if (body) {
        e->inflight =
            token_http_post(e->tc->http, e->creds->conf.token_endpoint, e->creds->conf.ca_file,
                            body, on_http_done, e, error, sizeof error);
        mg_free_secret(&body); /* token_http has its own copy: the password ends here */
        if (e->inflight) {
            e->tc->requests++;
            log_debug("token request provider=%s started principal=%s", e->creds->conf.name,
                      e->log_name);
            return TOKEN_OK;
        }
    }
    if (fail == TOKEN_NEEDS_AUTH) {
        e->last_status = fail;
        mg_strlcpy(e->last_reason, error, sizeof e->last_reason);
        return fail;
    }
    struct token_response tr = {.status = TOKEN_TEMPFAIL, .retry_after = -1};
    snprintf(tr.reason, sizeof tr.reason, "cannot request a token: %s", error);
    enter_backoff(e, &tr, TOKEN_TEMPFAIL);
    log_outcome(e, 0, &tr, TOKEN_TEMPFAIL, 0);
    return TOKEN_TEMPFAIL;
}

/* Client credentials, refresh and JWT bearer tokens can be renewed without the client. */
static int renewable(const struct token_entry *e)
{
    return e->grant != TOKEN_GRANT_PASSWORD;
}

static void on_entry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct token_entry *e = arg;
    uint64_t now = mg_now_ms();
    if (!e->token)
        return;
    if (now >= e->expires_at_ms) {
        drop_token(e); /* nobody asked in time: let it go rather than keep a secret around */
        return;
    }
    if (e->used && renewable(e) && !e->inflight && now >= e->backoff_until_ms)
        start_request(e, NULL);
    arm_timer(e, e->expires_at_ms);
}

static void answer_now(token_cb cb, void *arg, enum token_status status, const char *token,
                       size_t token_len, const char *reason)
{
    struct token_result res = {
        .status = status, .access_token = token, .token_len = token_len, .reason = reason};
    cb(&res, arg);
}

static void answer_cached(const struct token_entry *e, token_cb cb, void *arg)
{
    struct token_result res = {.status = TOKEN_OK,
                               .access_token = e->token,
                               .token_len = e->token_len,
                               .token_id = token_id_of(e),
                               .reason = ""};
    cb(&res, arg);
}

static int subject_is_complete(const struct token_subject *s)
{
    int needs_subject = s->grant == TOKEN_GRANT_JWT_BEARER || s->grant == TOKEN_GRANT_PASSWORD;
    return s->principal && (!needs_subject || s->subject);
}

/* During a backoff: the refusal again when it was about the user, else a temporary failure. */
static void answer_backoff(const struct token_entry *e, uint64_t now, token_cb cb, void *arg)
{
    if (e->last_status == TOKEN_NEEDS_AUTH || e->last_status == TOKEN_DENIED) {
        answer_now(cb, arg, e->last_status, NULL, 0, e->last_reason);
        return;
    }
    char reason[sizeof e->last_reason + 64];
    snprintf(reason, sizeof reason, "token endpoint backing off for %llu s after: %s",
             (unsigned long long)((e->backoff_until_ms - now + 999) / 1000), e->last_reason);
    answer_now(cb, arg, TOKEN_TEMPFAIL, NULL, 0, reason);
}

/* A user refused for a revoked refresh token may have been authorized again since (mailgate
 * user authorize writes the store, not to us): then the backoff is over at once. The store
 * says "needs authorization" until then, so this never sends the revoked token again. */
static int reauthorized(struct token_entry *e)
{
    const struct token_refresh_ops *ops = &e->tc->refresh_ops;
    if (e->grant != TOKEN_GRANT_REFRESH_TOKEN || e->last_status != TOKEN_NEEDS_AUTH || !ops->load)
        return 0;
    size_t len = 0;
    char *refresh = ops->load(e->tc->refresh_arg, e->creds->conf.name, e->principal, &len);
    if (!refresh)
        return 0;
    mg_wipe(refresh, len);
    free(refresh);
    e->backoff_until_ms = 0;
    return 1;
}

static void follow_store(struct token_client *tc);

/* The provider's credential changed (a reload with a new client secret): a token obtained with
 * the old one is not served, and a backoff after the old one's failure does not hold back the
 * new one. */
static void forget_other_credential(struct token_entry *e)
{
    const char *now = e->creds->fingerprint;
    if (e->backoff_until_ms && strcmp(e->request_fingerprint, now) != 0)
        e->backoff_until_ms = 0;
    if (!e->token || strcmp(e->fingerprint, now) == 0)
        return;
    log_info("provider=%s principal=%s: the %s changed since the cached token was obtained; "
             "asking for a new one",
             e->creds->conf.name, e->log_name, token_credential_kind(&e->creds->conf));
    drop_token(e);
}

/* token_get_for once the entry is known; subj is NULL when asking again for an entry's own
 * subject (token_get_again). */
static struct token_wait *get_from_entry(struct token_entry *e, const struct token_subject *subj,
                                         token_cb cb, void *arg)
{
    uint64_t now = mg_now_ms();
    forget_other_credential(e);
    if (e->token && now < e->expires_at_ms) {
        e->used = 1;
        if (now >= e->renew_at_ms && renewable(e) && !e->inflight && now >= e->backoff_until_ms)
            start_request(e, NULL); /* in the background: this caller is served right away */
        e->tc->cache_hits++;
        answer_cached(e, cb, arg);
        return NULL;
    }
    if (e->token)
        drop_token(e);
    if (now < e->backoff_until_ms && !reauthorized(e)) {
        answer_backoff(e, now, cb, arg);
        return NULL;
    }
    enum token_status started = e->inflight ? TOKEN_OK : start_request(e, subj);
    if (started != TOKEN_OK) {
        answer_now(cb, arg, started, NULL, 0, e->last_reason);
        return NULL;
    }
    struct token_wait *w = mg_calloc(1, sizeof *w);
    w->cb = cb;
    w->arg = arg;
    w->head = &e->waiters;
    w->next = e->waiters;
    if (e->waiters)
        e->waiters->prev = w;
    e->waiters = w;
    return w;
}

struct token_wait *token_get_for(struct token_client *tc, const struct provider_conf *p,
                                 const struct token_subject *subj, token_cb cb, void *arg)
{
    if (!subject_is_complete(subj)) {
        answer_now(cb, arg, TOKEN_PERMFAIL, NULL, 0, "incomplete token request (no principal)");
        return NULL;
    }
    follow_store(tc);
    return get_from_entry(entry_for(tc, p, subj), subj, cb, arg);
}

struct token_wait *token_get(struct token_client *tc, const struct provider_conf *p, token_cb cb,
                             void *arg)
{
    char *principal = token_app_principal(p);
    struct token_subject subj = {.grant = TOKEN_GRANT_CLIENT_CREDENTIALS, .principal = principal};
    struct token_wait *w = token_get_for(tc, p, &subj, cb, arg);
    free(principal);
    return w;
}

static void wait_unlink(struct token_wait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *w->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

void token_wait_cancel(struct token_wait *w)
{
    if (!w)
        return;
    wait_unlink(w);
    free(w);
}

/* ---- tokens the upstream refused ---- */

static struct token_entry *entry_of_id(struct token_client *tc, uint64_t token_id)
{
    for (struct token_entry *e = tc->entries; e; e = e->next)
        if (e->serial == (uint32_t)(token_id >> 32))
            return e;
    return NULL;
}

/* The token goes from the cache and from the store: a restart must not bring it back. */
static void forget_token(struct token_entry *e)
{
    const struct token_client *tc = e->tc;
    drop_token(e);
    if (tc->store_ops.forget && e->grant != TOKEN_GRANT_PASSWORD)
        tc->store_ops.forget(tc->store_arg, e->creds->conf.name, e->principal, e->scope);
}

enum token_refusal token_client_refused(struct token_client *tc, uint64_t token_id,
                                        uint64_t fresh_ms)
{
    struct token_entry *e = entry_of_id(tc, token_id);
    if (!e)
        return TOKEN_REFUSAL_UNKNOWN;
    /* Another refusal of the same token got here first: it is gone or replaced already. */
    if (!e->token || e->generation != (uint32_t)token_id)
        return TOKEN_REFUSAL_DROPPED;
    uint64_t now = mg_now_ms();
    if (e->obtained_ms && now - e->obtained_ms < fresh_ms)
        return TOKEN_REFUSAL_FRESH;
    log_info("provider=%s principal=%s: the upstream refused a token obtained %s; dropping it",
             e->creds->conf.name, e->log_name, e->obtained_ms ? "earlier" : "before the restart");
    forget_token(e);
    return TOKEN_REFUSAL_DROPPED;
}

struct token_wait *token_get_again(struct token_client *tc, uint64_t token_id, token_cb cb,
                                   void *arg)
{
    struct token_entry *e = entry_of_id(tc, token_id);
    if (!e || e->grant == TOKEN_GRANT_PASSWORD) { /* no password to ask with: the client's next
                                                     login brings it */
        answer_now(cb, arg, TOKEN_TEMPFAIL, NULL, 0, "no fresh token without a new login");
        return NULL;
    }
    return get_from_entry(e, NULL, cb, arg);
}

/* Someone else changed the store (e.g. `mailgate token flush`, `user del`): a cached token
 * whose row has gone is dropped, so the next login gets a new one. Password tokens are never
 * stored. Runs only when the store says it changed, so a store that cannot be written (whose
 * rows are missing for that reason) does not turn into a request per login. */
static void follow_store(struct token_client *tc)
{
    const struct token_store_ops *ops = &tc->store_ops;
    if (!ops->changed || !ops->stored || !ops->changed(tc->store_arg))
        return;
    for (struct token_entry *e = tc->entries; e; e = e->next) {
        if (!e->token || e->grant == TOKEN_GRANT_PASSWORD ||
            ops->stored(tc->store_arg, e->creds->conf.name, e->principal, e->scope) != 0)
            continue;
        log_info("provider=%s principal=%s: the stored token was deleted; dropping the cached "
                 "copy",
                 e->creds->conf.name, e->log_name);
        drop_token(e);
    }
}

void token_client_set_store_ops(struct token_client *tc, const struct token_store_ops *ops,
                                void *arg)
{
    if (ops)
        tc->store_ops = *ops;
    else
        memset(&tc->store_ops, 0, sizeof tc->store_ops);
    tc->store_arg = arg;
}

/* ---- the idle sweep ---- */

static int entry_is_idle(const struct token_entry *e, uint64_t now)
{
    return !e->token && !e->inflight && !e->waiters && !e->delivering && now >= e->backoff_until_ms;
}

void token_client_sweep(struct token_client *tc)
{
    uint64_t now = mg_now_ms();
    struct token_entry **link = &tc->entries;
    while (*link) {
        struct token_entry *e = *link;
        if (entry_is_idle(e, now)) {
            *link = e->next;
            free_entry(e);
            tc->n_entries--;
        } else {
            link = &e->next;
        }
    }
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct token_client *tc = arg;
    token_client_sweep(tc);
    if (tc->entries)
        arm_sweep(tc);
}

/* ---- the client ---- */

void token_client_set_observer(struct token_client *tc, token_obtained_cb cb, void *arg)
{
    tc->observer = cb;
    tc->observer_arg = arg;
}

void token_client_set_refresh_ops(struct token_client *tc, const struct token_refresh_ops *ops,
                                  void *arg)
{
    if (ops)
        tc->refresh_ops = *ops;
    else
        memset(&tc->refresh_ops, 0, sizeof tc->refresh_ops);
    tc->refresh_arg = arg;
}

void token_client_seed(struct token_client *tc, const struct provider_conf *p,
                       const struct token_subject *subj, const char *token, size_t len,
                       int64_t expires_in)
{
    if (subj->grant == TOKEN_GRANT_PASSWORD || !subject_is_complete(subj))
        return; /* password tokens are never stored, so never seeded either */
    struct token_response tr = {.access_token = mg_strndup(token, len), .token_len = len};
    tr.expires_in = expires_in;
    struct token_entry *e = entry_for(tc, p, subj);
    store_token(e, &tr, mg_now_ms());
    memcpy(e->fingerprint, e->creds->fingerprint, sizeof e->fingerprint);
    e->obtained_ms = 0; /* obtained before we started: never "fresh" (token_client_refused) */
}

void token_client_set_outcome_cb(struct token_client *tc, token_outcome_cb cb, void *arg)
{
    tc->outcome = cb;
    tc->outcome_arg = arg;
}

uint64_t token_client_cache_hits(const struct token_client *tc)
{
    return tc->cache_hits;
}

uint64_t token_client_requests(const struct token_client *tc)
{
    return tc->requests;
}

size_t token_client_entries(const struct token_client *tc)
{
    return tc->n_entries;
}

struct token_client *token_client_new(struct event_base *base, uint64_t timeout_ms)
{
    json_wipe_install();
    struct token_client *tc = mg_calloc(1, sizeof *tc);
    tc->base = base;
    tc->http = token_http_new(base, timeout_ms);
    tc->sweep_timer = evtimer_new(base, on_sweep_timer, tc);
    if (!tc->http || !tc->sweep_timer) {
        log_error("cannot initialise libcurl for the token client");
        token_http_free(&tc->http);
        if (tc->sweep_timer)
            event_free(tc->sweep_timer);
        free(tc);
        return NULL;
    }
    return tc;
}

void token_client_free(struct token_client **tcp)
{
    struct token_client *tc = *tcp;
    if (!tc)
        return;
    *tcp = NULL;
    while (tc->entries) {
        struct token_entry *e = tc->entries;
        tc->entries = e->next;
        free_entry(e);
    }
    token_creds_free_all(&tc->creds);
    event_free(tc->sweep_timer);
    token_http_free(&tc->http);
    free(tc);
}
