/* OAuth 2.0 client credentials token client of the broker (see token.h).
 *
 * Two halves: the pure interpretation of token endpoint answers plus the request body builder
 * (unit-tested and fuzzed), and the per-(provider, scope) cache with single-flight requests,
 * background renewal and backoff, on top of the libcurl driver in token_http.c. */
#include "token.h"

#include <math.h>
#include <stdarg.h>
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
#include "form.h"
#include "jwt.h"
#include "log.h"
#include "token_http.h"
#include "util.h"

#define DESCRIPTION_MAX 200            /* bytes of error_description kept in a reason */
#define EXPIRES_IN_DEFAULT 600         /* seconds, when a 200 does not say (conservative) */
#define EXPIRES_IN_MAX (366LL * 86400) /* anything longer is clamped */
#define RETRY_AFTER_CAP (86400LL)      /* seconds; the cache clamps further */
#define EXPIRY_MARGIN_MS 30000         /* stop handing out a token this long before it dies */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define RETRY_AFTER_MAX_MS (10 * 60 * 1000)
#define BACKOFF_PERMFAIL_MS 30000

/* ==== pure parts ==== */

static void set_reason(struct token_response *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_reason(struct token_response *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

static void malformed(struct token_response *out, const char *what)
{
    out->status = TOKEN_TEMPFAIL;
    set_reason(out, "malformed token response: %s", what);
}

/* Copies remote text for a reason: first line only, control bytes blanked, at most max bytes
 * (cut on a UTF-8 boundary, marked with "..."). */
static void copy_line(char *dst, size_t size, const char *src, size_t max)
{
    size_t n = strcspn(src, "\r\n");
    int cut = 0;
    if (n > max)
        n = max, cut = 1;
    if (n > size - 4)
        n = size - 4, cut = 1;
    while (cut && n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
        n--; /* do not split a multi-byte character */
    for (size_t i = 0; i < n; i++)
        dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? ' ' : src[i];
    strcpy(dst + n, cut ? "..." : "");
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3). -1 when absent or invalid. */
static int64_t parse_retry_after(const char *h)
{
    if (!h)
        return -1;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t digits = strspn(h, "0123456789");
    if (digits > 0 && h[digits + strspn(h + digits, " \t")] == '\0') {
        if (digits > 12)
            return RETRY_AFTER_CAP;
        long long v = strtoll(h, NULL, 10);
        return v > RETRY_AFTER_CAP ? RETRY_AFTER_CAP : v;
    }
    time_t when = curl_getdate(h, NULL);
    if (when == (time_t)-1)
        return -1;
    double delta = difftime(when, time(NULL));
    if (delta <= 0)
        return 0;
    return delta > (double)RETRY_AFTER_CAP ? RETRY_AFTER_CAP : (int64_t)delta;
}

/* expires_in: a JSON number, or (some IdPs, older Entra v1) a string of digits. */
static int parse_expires_in(const json_t *v, int64_t *out)
{
    double secs;
    if (!v) {
        *out = EXPIRES_IN_DEFAULT;
        return 0;
    }
    if (json_is_integer(v)) {
        secs = (double)json_integer_value(v);
    } else if (json_is_real(v)) {
        secs = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strspn(s, "0123456789");
        if (n == 0 || n > 12 || s[n] != '\0')
            return -1;
        secs = (double)strtoll(s, NULL, 10);
    } else {
        return -1;
    }
    if (!(secs >= 1)) /* also rejects NaN */
        return -1;
    *out = secs > (double)EXPIRES_IN_MAX ? EXPIRES_IN_MAX : (int64_t)secs;
    return 0;
}

/* What goes into IPC and then into a SASL string: visible ASCII only, and it must fit. */
static int token_is_usable(const char *t, size_t len)
{
    if (len == 0 || len >= IPC_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return 0;
    return 1;
}

static void parse_success(const json_t *root, struct token_response *out)
{
    const json_t *token = json_object_get(root, "access_token");
    const json_t *type = json_object_get(root, "token_type");
    const json_t *refresh = json_object_get(root, "refresh_token");
    const char *problem = NULL;
    if (!json_is_string(token) || json_string_length(token) == 0)
        problem = "no access_token";
    else if (!json_is_string(type) || mg_ascii_casecmp(json_string_value(type), "Bearer") != 0)
        problem = "token_type is not Bearer";
    else if (!token_is_usable(json_string_value(token), json_string_length(token)))
        problem = "access_token too long or not printable";
    else if (parse_expires_in(json_object_get(root, "expires_in"), &out->expires_in) != 0)
        problem = "bad expires_in";
    else if (refresh && (!json_is_string(refresh) ||
                         !token_is_usable(json_string_value(refresh), json_string_length(refresh))))
        problem = "refresh_token too long or not printable";
    if (problem) {
        malformed(out, problem);
        return;
    }
    out->status = TOKEN_OK;
    out->token_len = json_string_length(token);
    out->access_token = mg_strndup(json_string_value(token), out->token_len);
    if (refresh) {
        out->refresh_len = json_string_length(refresh);
        out->refresh_token = mg_strndup(json_string_value(refresh), out->refresh_len);
    }
    set_reason(out, "ok");
}

/* Errors that say "come back later" although they arrive with a 4xx. */
static int is_temporary_error(const json_t *root, const char *error, const char *description)
{
    static const char *const temporary_errors[] = {"temporarily_unavailable", "server_error",
                                                   "slow_down"};
    static const json_int_t temporary_codes[] = {
        50196, /* loop detected: the client is being throttled */
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(temporary_errors); i++)
        if (strcmp(error, temporary_errors[i]) == 0)
            return 1;
    const json_t *codes = json_object_get(root, "error_codes");
    for (size_t c = 0; c < MG_ARRAY_LEN(temporary_codes); c++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "AADSTS%lld:", (long long)temporary_codes[c]);
        if (strncmp(description, prefix, strlen(prefix)) == 0)
            return 1;
        for (size_t i = 0; i < json_array_size(codes); i++)
            if (json_integer_value(json_array_get(codes, i)) == temporary_codes[c])
                return 1;
    }
    return 0;
}

/* A Microsoft/RFC 6749 error object. Returns 0 when the body has no usable "error". */
static int parse_oauth_error(const json_t *root, struct token_response *out)
{
    const json_t *error = json_object_get(root, "error");
    if (!json_is_string(error) || json_string_length(error) == 0)
        return 0;
    const json_t *desc_json = json_object_get(root, "error_description");
    const char *desc = json_is_string(desc_json) ? json_string_value(desc_json) : "";
    copy_line(out->error, sizeof out->error, json_string_value(error), sizeof out->error);
    if (out->error[0] == '\0')
        return 0; /* "\r\n...": nothing to name the error by */
    char line[DESCRIPTION_MAX + 4];
    copy_line(line, sizeof line, desc, DESCRIPTION_MAX);
    if (line[0])
        set_reason(out, "%s: %s", out->error, line);
    else
        set_reason(out, "%s", out->error);
    return 1 + is_temporary_error(root, json_string_value(error), desc);
}

static int is_tempfail_status(long status)
{
    return status == 429 || status == 408 || (status >= 500 && status <= 599);
}

static void parse_failure(long status, const json_t *root, struct token_response *out)
{
    int oauth = root ? parse_oauth_error(root, out) : 0;
    if (oauth == 1 && status >= 400 && status <= 499 && !is_tempfail_status(status)) {
        out->status = TOKEN_PERMFAIL;
        return;
    }
    out->status = TOKEN_TEMPFAIL;
    if (oauth)
        return; /* the reason already says what the IdP said */
    if (status == 429)
        set_reason(out, "HTTP 429: token endpoint throttling");
    else if (status >= 500 && status <= 599)
        set_reason(out, "HTTP %ld: token endpoint failure", status);
    else if (status > 0)
        set_reason(out, "HTTP %ld from token endpoint without an OAuth error", status);
    else
        set_reason(out, "no HTTP answer from token endpoint");
}

void token_parse_response(long http_status, const char *body, size_t len,
                          const char *retry_after_header, struct token_response *out)
{
    memset(out, 0, sizeof *out);
    out->status = TOKEN_TEMPFAIL;
    out->retry_after = parse_retry_after(retry_after_header);
    json_t *root = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    if (http_status == 200) {
        if (root)
            parse_success(root, out);
        else
            malformed(out, len ? "not a JSON object" : "empty body");
    } else {
        parse_failure(http_status, root, out);
    }
    json_decref(root);
}

void token_response_clear(struct token_response *r)
{
    if (r->access_token) {
        mg_wipe(r->access_token, r->token_len);
        free(r->access_token);
    }
    if (r->refresh_token) {
        mg_wipe(r->refresh_token, r->refresh_len);
        free(r->refresh_token);
    }
    memset(r, 0, sizeof *r);
}

char *token_client_credentials_body(const char *client_id, const char *client_secret,
                                    const char *scope)
{
    const struct form_field fields[] = {{"grant_type", "client_credentials"},
                                        {"client_id", client_id},
                                        {"client_secret", client_secret},
                                        {"scope", scope}};
    return form_encode(fields, MG_ARRAY_LEN(fields));
}

char *token_client_assertion_body(const char *client_id, const char *assertion, const char *scope)
{
    const struct form_field fields[] = {
        {"grant_type", "client_credentials"},
        {"client_id", client_id},
        {"scope", scope},
        {"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
        {"client_assertion", assertion}};
    return form_encode(fields, MG_ARRAY_LEN(fields));
}

/* ==== the cache and the client ==== */

struct token_wait {
    struct token_wait *prev, *next;
    struct token_wait **head; /* the list it is in: entry->waiters or entry->delivering */
    token_cb cb;
    void *arg;
};

struct token_entry {
    struct token_entry *next;
    struct token_client *tc;
    char *provider, *scope; /* the key */
    /* The provider's settings as of the latest token_get, for requests started by the timer
     * (the config they came from is not ours to keep pointers into). */
    char *endpoint, *client_id, *client_secret, *ca_file;
    /* Certificate credentials (instead of client_secret): a reference to the config's key. */
    EVP_PKEY *client_key;
    enum jwt_alg alg;
    char x5t[JWT_X5T_SIZE], x5t_s256[JWT_X5T_S256_SIZE];
    char *token; /* NULL when none or expired */
    size_t token_len;
    uint64_t renew_at_ms, expires_at_ms;
    int used; /* handed out since obtained: only then is a background renewal worth it */
    struct event *timer;
    struct token_http_req *inflight;
    struct token_wait *waiters, *delivering;
    uint64_t backoff_until_ms;
    unsigned failures;
    char last_reason[sizeof((struct token_response *)0)->reason];
};

struct token_client {
    struct event_base *base;
    struct token_http *http;
    struct token_entry *entries;
    uint64_t requests;
    token_obtained_cb observer;
    void *observer_arg;
};

/* jansson keeps copies of parsed strings (the access token among them) in memory it frees
 * itself; route it through allocators that wipe before freeing. Installed by token_client_new,
 * i.e. before the broker uses jansson for anything else (memory allocated by one allocator
 * must not be freed by the other). */
union alloc_header {
    size_t size;
    max_align_t align;
};

static void *wiping_malloc(size_t size)
{
    union alloc_header *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    return h + 1;
}

static void wiping_free(void *p)
{
    if (!p)
        return;
    union alloc_header *h = (union alloc_header *)p - 1;
    mg_wipe(p, h->size);
    free(h);
}

static void install_wiping_json_allocator(void)
{
    static int installed;
    if (!installed) {
        json_set_alloc_funcs(wiping_malloc, wiping_free);
        installed = 1;
    }
}

static void replace_setting(char **field, const char *value)
{
    if (*field && value && strcmp(*field, value) == 0)
        return;
    mg_free_secret(field); /* wipes: one of them is the client secret */
    *field = value ? mg_strdup(value) : NULL;
}

static void on_entry_timer(evutil_socket_t fd, short what, void *arg);

/* Takes a reference to the provider's private key (the config may be freed and reloaded). */
static void set_certificate(struct token_entry *e, const struct provider_conf *p)
{
    e->alg = p->client_assertion_alg;
    if (e->client_key == p->client_key)
        return;
    EVP_PKEY_free(e->client_key);
    e->client_key = NULL;
    if (!p->client_key)
        return;
    int bad = jwt_cert_thumbprints(p->client_cert_der, p->client_cert_der_len, e->x5t, e->x5t_s256);
    if (!bad && EVP_PKEY_up_ref(p->client_key) == 1)
        e->client_key = p->client_key;
}

/* A fresh signed assertion per request (unique jti, exp 10 min ahead); NULL with error set. */
static char *assertion_body(const struct token_entry *e, char *error, size_t error_size)
{
    struct jwt_assertion a = {.alg = e->alg,
                              .key = e->client_key,
                              .x5t = e->x5t,
                              .x5t_s256 = e->x5t_s256,
                              .client_id = e->client_id,
                              .audience = e->endpoint,
                              .now = (int64_t)time(NULL)};
    char *jwt = jwt_client_assertion(&a, error, error_size);
    if (!jwt)
        return NULL;
    char *body = token_client_assertion_body(e->client_id, jwt, e->scope);
    mg_free_secret(&jwt);
    return body;
}

static struct token_entry *entry_for(struct token_client *tc, const struct provider_conf *p)
{
    const char *scope = p->scope ? p->scope : "";
    struct token_entry *e;
    for (e = tc->entries; e; e = e->next)
        if (strcmp(e->provider, p->name) == 0 && strcmp(e->scope, scope) == 0)
            break;
    if (!e) {
        e = mg_calloc(1, sizeof *e);
        e->tc = tc;
        e->provider = mg_strdup(p->name);
        e->scope = mg_strdup(scope);
        e->timer = evtimer_new(tc->base, on_entry_timer, e);
        e->next = tc->entries;
        tc->entries = e;
    }
    replace_setting(&e->endpoint, p->token_endpoint);
    replace_setting(&e->client_id, p->client_id);
    replace_setting(&e->client_secret, p->client_secret);
    replace_setting(&e->ca_file, p->ca_file);
    set_certificate(e, p);
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
    e->used = 0; /* the waiters that asked for it do not count: only later demand does */
    e->failures = 0;
    e->backoff_until_ms = 0;
    e->last_reason[0] = '\0';
    arm_timer(e, e->renew_at_ms);
}

static uint64_t backoff_ms(struct token_entry *e, const struct token_response *tr)
{
    if (tr->status == TOKEN_PERMFAIL)
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

static void enter_backoff(struct token_entry *e, const struct token_response *tr)
{
    e->failures++;
    e->backoff_until_ms = mg_now_ms() + backoff_ms(e, tr);
    mg_strlcpy(e->last_reason, tr->reason, sizeof e->last_reason);
}

static void log_outcome(const struct token_entry *e, long status, const struct token_response *tr,
                        uint64_t duration_ms)
{
    if (tr->status == TOKEN_OK) {
        log_info("token request provider=%s status=%ld expires_in=%lld duration_ms=%llu",
                 e->provider, status, (long long)tr->expires_in, (unsigned long long)duration_ms);
        return;
    }
    char error[96], reason[600];
    uint64_t now = mg_now_ms();
    log_warn("token request failed provider=%s status=%ld result=%s error=%s reason=%s "
             "backoff_s=%llu duration_ms=%llu",
             e->provider, status, tr->status == TOKEN_PERMFAIL ? "permfail" : "tempfail",
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
        }
        token_cb cb = w->cb;
        void *arg = w->arg;
        free(w);
        cb(&res, arg);
    }
}

/* A permanent failure with a known AADSTS code gets its fix appended, for the log and for
 * `mailgate token get` (kept out of token_parse_response, whose reason is the IdP's own words). */
static void append_hint(struct token_response *tr)
{
    const char *hint = tr->status == TOKEN_PERMFAIL ? aadsts_hint_for_text(tr->reason) : NULL;
    size_t n = strlen(tr->reason);
    if (hint && n + 8 < sizeof tr->reason)
        snprintf(tr->reason + n, sizeof tr->reason - n, " (fix: %s)", hint);
}

static void on_http_done(const struct token_http_result *res, void *arg)
{
    struct token_entry *e = arg;
    e->inflight = NULL;
    struct token_response tr;
    if (res->transport_ok) {
        token_parse_response(res->status, res->body, res->len, res->retry_after, &tr);
        append_hint(&tr);
    } else {
        memset(&tr, 0, sizeof tr);
        tr.status = TOKEN_TEMPFAIL;
        tr.retry_after = -1;
        set_reason(&tr, "token request failed: %s", res->error);
    }
    int64_t expires_in = tr.expires_in;
    if (tr.status == TOKEN_OK) {
        store_token(e, &tr, mg_now_ms() - res->duration_ms);
        if (e->tc->observer)
            e->tc->observer(e->provider, e->scope, e->token, e->token_len, expires_in,
                            e->tc->observer_arg);
    } else
        enter_backoff(e, &tr);
    log_outcome(e, res->status, &tr, res->duration_ms);
    deliver(e, tr.status, tr.status == TOKEN_OK ? "" : e->last_reason);
    token_response_clear(&tr);
}

/* Starts the one request of an entry. On failure to even start, the entry backs off like after
 * a failed request (so a missing secret does not turn into a busy loop) and -1 is returned. */
static int start_request(struct token_entry *e)
{
    char error[CURL_ERROR_SIZE] = "";
    const char *missing = !e->endpoint                          ? "no token endpoint"
                          : !e->client_id                       ? "no client_id"
                          : !e->client_secret && !e->client_key ? "no client secret loaded"
                                                                : NULL;
    char *body = NULL;
    if (!missing)
        body = e->client_key
                   ? assertion_body(e, error, sizeof error)
                   : token_client_credentials_body(e->client_id, e->client_secret, e->scope);
    if (body) {
        e->inflight = token_http_post(e->tc->http, e->endpoint, e->ca_file, body, on_http_done, e,
                                      error, sizeof error);
        mg_free_secret(&body);
        if (e->inflight) {
            e->tc->requests++;
            log_debug("token request provider=%s started", e->provider);
            return 0;
        }
    }
    struct token_response tr = {.status = TOKEN_TEMPFAIL, .retry_after = -1};
    set_reason(&tr, "cannot request a token: %s", missing ? missing : error);
    enter_backoff(e, &tr);
    log_outcome(e, 0, &tr, 0);
    return -1;
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
    if (e->used && !e->inflight && now >= e->backoff_until_ms)
        start_request(e);
    arm_timer(e, e->expires_at_ms);
}

static void answer_now(token_cb cb, void *arg, enum token_status status, const char *token,
                       size_t token_len, const char *reason)
{
    struct token_result res = {
        .status = status, .access_token = token, .token_len = token_len, .reason = reason};
    cb(&res, arg);
}

struct token_wait *token_get(struct token_client *tc, const struct provider_conf *p, token_cb cb,
                             void *arg)
{
    struct token_entry *e = entry_for(tc, p);
    uint64_t now = mg_now_ms();
    if (e->token && now < e->expires_at_ms) {
        e->used = 1;
        if (now >= e->renew_at_ms && !e->inflight && now >= e->backoff_until_ms)
            start_request(e); /* in the background: this caller is served right away */
        answer_now(cb, arg, TOKEN_OK, e->token, e->token_len, "");
        return NULL;
    }
    if (e->token)
        drop_token(e);
    if (now < e->backoff_until_ms) {
        char reason[sizeof e->last_reason + 64];
        snprintf(reason, sizeof reason, "token endpoint backing off for %llu s after: %s",
                 (unsigned long long)((e->backoff_until_ms - now + 999) / 1000), e->last_reason);
        answer_now(cb, arg, TOKEN_TEMPFAIL, NULL, 0, reason);
        return NULL;
    }
    if (!e->inflight && start_request(e) != 0) {
        answer_now(cb, arg, TOKEN_TEMPFAIL, NULL, 0, e->last_reason);
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

void token_client_set_observer(struct token_client *tc, token_obtained_cb cb, void *arg)
{
    tc->observer = cb;
    tc->observer_arg = arg;
}

void token_client_seed(struct token_client *tc, const struct provider_conf *p, const char *token,
                       size_t len, int64_t expires_in)
{
    struct token_response tr = {.access_token = mg_strndup(token, len), .token_len = len};
    tr.expires_in = expires_in;
    store_token(entry_for(tc, p), &tr, mg_now_ms());
}

uint64_t token_client_requests(const struct token_client *tc)
{
    return tc->requests;
}

struct token_client *token_client_new(struct event_base *base, uint64_t timeout_ms)
{
    install_wiping_json_allocator();
    struct token_client *tc = mg_calloc(1, sizeof *tc);
    tc->base = base;
    tc->http = token_http_new(base, timeout_ms);
    if (!tc->http) {
        log_error("cannot initialise libcurl for the token client");
        free(tc);
        return NULL;
    }
    return tc;
}

static void free_waiters(struct token_wait *w)
{
    while (w) {
        struct token_wait *next = w->next;
        free(w);
        w = next;
    }
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
        token_http_cancel(e->inflight);
        free_waiters(e->waiters);
        free_waiters(e->delivering);
        event_free(e->timer);
        drop_token(e);
        mg_free_secret(&e->client_secret);
        EVP_PKEY_free(e->client_key);
        free(e->provider);
        free(e->scope);
        free(e->endpoint);
        free(e->client_id);
        free(e->ca_file);
        free(e);
    }
    token_http_free(&tc->http);
    free(tc);
}
