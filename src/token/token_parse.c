/* The pure half of the token client (see token.h): interpretation of token endpoint answers and
 * the request bodies of every grant. No I/O, no global state: unit-tested and fuzzed. */
#include "token.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "form.h"
#include "jwt.h"
#include "util.h"

#define DESCRIPTION_MAX 200            /* bytes of error_description kept in a reason */
#define EXPIRES_IN_DEFAULT 600         /* seconds, when a 200 does not say (conservative) */
#define EXPIRES_IN_MAX (366LL * 86400) /* anything longer is clamped */
#define RETRY_AFTER_CAP (86400LL)      /* seconds; the cache clamps further */
#define CLIENT_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define JWT_BEARER_GRANT "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define FIELDS_MAX 8 /* form fields of the longest body */

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

/* ---- bodies built from a provider's settings ---- */

/* Fields of a body under construction; assertion holds the signed client assertion, if any,
 * until the body is encoded. */
struct body_fields {
    struct form_field f[FIELDS_MAX];
    size_t n;
    char *assertion;
};

static void add_field(struct body_fields *b, const char *name, const char *value, size_t len)
{
    b->f[b->n++] = (struct form_field){name, value, len};
}

/* Certificate credentials: a fresh assertion (unique jti, exp 10 min ahead) per request. */
static char *sign_client_assertion(const struct provider_conf *p, char *err, size_t errlen)
{
    char x5t[JWT_X5T_SIZE], x5t_s256[JWT_X5T_S256_SIZE];
    if (jwt_cert_thumbprints(p->client_cert_der, p->client_cert_der_len, x5t, x5t_s256) != 0) {
        snprintf(err, errlen, "cannot hash the client certificate");
        return NULL;
    }
    struct jwt_assertion a = {.alg = p->client_assertion_alg,
                              .key = p->client_key,
                              .x5t = x5t,
                              .x5t_s256 = x5t_s256,
                              .client_id = p->client_id,
                              .audience = p->token_endpoint,
                              .now = (int64_t)time(NULL)};
    return jwt_client_assertion(&a, err, errlen);
}

/* Client authentication (RFC 6749 2.3): the certificate's assertion, else the client secret,
 * else none (a public client) unless a secret or key is configured but not loaded. */
static int add_client_auth(struct body_fields *b, const struct provider_conf *p, int required,
                           char *err, size_t errlen)
{
    if (p->client_key) {
        b->assertion = sign_client_assertion(p, err, errlen);
        if (!b->assertion)
            return -1;
        add_field(b, "client_assertion_type", CLIENT_ASSERTION_TYPE, 0);
        add_field(b, "client_assertion", b->assertion, 0);
        return 0;
    }
    if (p->client_secret) {
        add_field(b, "client_secret", p->client_secret, 0);
        return 0;
    }
    if (required || p->client_secret_file || p->client_private_key) {
        snprintf(err, errlen, "no client secret loaded");
        return -1;
    }
    return 0;
}

/* scope and client authentication close every body with a client. */
static char *finish_fields(struct body_fields *b, const struct provider_conf *p, int auth_required,
                           char *err, size_t errlen)
{
    add_field(b, "scope", p->scope, 0);
    if (add_client_auth(b, p, auth_required, err, errlen) != 0)
        return NULL;
    char *body = form_encode(b->f, b->n);
    mg_free_secret(&b->assertion);
    return body;
}

/* grant_type and client_id, checking what every grant with a client needs. */
static int start_fields(struct body_fields *b, const struct provider_conf *p, const char *grant,
                        char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (!p->token_endpoint || !p->client_id) {
        snprintf(err, errlen, "%s", !p->token_endpoint ? "no token endpoint" : "no client_id");
        return -1;
    }
    add_field(b, "grant_type", grant, 0);
    add_field(b, "client_id", p->client_id, 0);
    return 0;
}

char *token_app_body(const struct provider_conf *p, char *err, size_t errlen)
{
    struct body_fields b;
    if (start_fields(&b, p, "client_credentials", err, errlen) != 0)
        return NULL;
    return finish_fields(&b, p, 1, err, errlen);
}

char *token_refresh_body(const struct provider_conf *p, const char *refresh_token, char *err,
                         size_t errlen)
{
    struct body_fields b;
    if (start_fields(&b, p, "refresh_token", err, errlen) != 0)
        return NULL;
    add_field(&b, "refresh_token", refresh_token, 0);
    return finish_fields(&b, p, 0, err, errlen);
}

char *token_password_body(const struct provider_conf *p, const char *username, const char *password,
                          size_t password_len, char *err, size_t errlen)
{
    struct body_fields b;
    if (start_fields(&b, p, "password", err, errlen) != 0)
        return NULL;
    add_field(&b, "username", username, 0);
    add_field(&b, "password", password_len ? password : "", password_len);
    return finish_fields(&b, p, 0, err, errlen);
}

char *token_auth_code_body(const struct provider_conf *p, const char *code,
                           const char *redirect_uri, const char *verifier, char *err, size_t errlen)
{
    struct body_fields b;
    if (start_fields(&b, p, "authorization_code", err, errlen) != 0)
        return NULL;
    add_field(&b, "code", code, 0);
    add_field(&b, "redirect_uri", redirect_uri, 0);
    add_field(&b, "code_verifier", verifier, 0);
    return finish_fields(&b, p, 0, err, errlen);
}

char *token_jwt_bearer_body(const struct provider_conf *p, const char *mailbox, char *err,
                            size_t errlen)
{
    if (!p->sa_key || !p->token_endpoint) {
        snprintf(err, errlen, "%s",
                 !p->sa_key ? "no service account key loaded" : "no token endpoint");
        return NULL;
    }
    struct jwt_sa_assertion a = {.key = p->sa_key,
                                 .key_id = p->sa_key_id,
                                 .client_email = p->sa_client_email,
                                 .scope = p->scope,
                                 .audience = p->token_endpoint,
                                 .subject = mailbox,
                                 .now = (int64_t)time(NULL)};
    char *jwt = jwt_service_account_assertion(&a, err, errlen);
    if (!jwt)
        return NULL;
    const struct form_field fields[] = {{"grant_type", JWT_BEARER_GRANT, 0}, {"assertion", jwt, 0}};
    char *body = form_encode(fields, MG_ARRAY_LEN(fields));
    mg_free_secret(&jwt);
    return body;
}

/* invalid_grant (RFC 6749 5.2) refuses the grant itself: for a refresh token the user must
 * authorize again, for a password the user gave wrong (or unusable) credentials. */
enum token_status token_grant_status(enum token_grant grant, const struct token_response *r)
{
    if (r->status != TOKEN_PERMFAIL || strcmp(r->error, "invalid_grant") != 0)
        return r->status;
    if (grant == TOKEN_GRANT_REFRESH_TOKEN)
        return TOKEN_NEEDS_AUTH;
    if (grant == TOKEN_GRANT_PASSWORD)
        return TOKEN_DENIED;
    return TOKEN_PERMFAIL;
}
