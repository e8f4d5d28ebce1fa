/* Tests for the token client: answer parsing, the form body, and the cache/backoff behaviour
 * of the async client against endpoints that fail without a server (refused connections). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "token.h"
#include "token_fingerprint.h"
#include "util.h"

#define TOKEN "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2ln"

static void parse(long status, const char *body, const char *retry_after,
                  struct token_response *out)
{
    token_parse_response(status, body, strlen(body), retry_after, out);
    /* Whatever the answer, the reason is terminated and never leaks the token. */
    assert_true(memchr(out->reason, '\0', sizeof out->reason) != NULL);
    assert_null(strstr(out->reason, TOKEN));
    assert_true(out->reason[0] != '\0');
}

static void test_success_number(void **state)
{
    (void)state;
    struct token_response r;
    parse(200,
          "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
          "\"access_token\":\"" TOKEN "\"}",
          NULL, &r);
    assert_int_equal(r.status, TOKEN_OK);
    assert_string_equal(r.access_token, TOKEN);
    assert_int_equal(r.token_len, strlen(TOKEN));
    assert_int_equal(r.expires_in, 3599);
    assert_int_equal(r.retry_after, -1);
    token_response_clear(&r);
    assert_null(r.access_token);
}

static void test_success_string_expiry(void **state)
{
    (void)state;
    struct token_response r;
    parse(200, "{\"token_type\":\"bearer\",\"expires_in\":\"3600\",\"access_token\":\"" TOKEN "\"}",
          NULL, &r);
    assert_int_equal(r.status, TOKEN_OK);
    assert_int_equal(r.expires_in, 3600);
    token_response_clear(&r);
    parse(200, "{\"token_type\":\"Bearer\",\"expires_in\":\"36x\",\"access_token\":\"" TOKEN "\"}",
          NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_null(r.access_token);
    parse(200, "{\"token_type\":\"Bearer\",\"expires_in\":-5,\"access_token\":\"" TOKEN "\"}", NULL,
          &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
}

static void test_refresh_token(void **state)
{
    (void)state;
    struct token_response r;
    parse(200,
          "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"" TOKEN "\","
          "\"refresh_token\":\"0.AXk-rt_1\",\"scope\":\"IMAP.AccessAsUser.All\"}",
          NULL, &r);
    assert_int_equal(r.status, TOKEN_OK);
    assert_string_equal(r.refresh_token, "0.AXk-rt_1");
    assert_int_equal(r.refresh_len, 10);
    assert_null(strstr(r.reason, "0.AXk"));
    token_response_clear(&r);
    assert_null(r.refresh_token);
    parse(200, "{\"token_type\":\"Bearer\",\"access_token\":\"" TOKEN "\"}", NULL, &r);
    assert_null(r.refresh_token);
    token_response_clear(&r);
    parse(200, "{\"token_type\":\"Bearer\",\"access_token\":\"" TOKEN "\",\"refresh_token\":7}",
          NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_null(r.access_token);
    parse(200,
          "{\"token_type\":\"Bearer\",\"access_token\":\"" TOKEN "\","
          "\"refresh_token\":\"a b\"}",
          NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
}

static void test_malformed_success(void **state)
{
    (void)state;
    struct token_response r;
    parse(200, "{\"token_type\":\"Bearer\",\"expires_in\":3599}", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_null(r.access_token);
    assert_non_null(strstr(r.reason, "malformed"));
    parse(200, "{\"token_type\":\"mac\",\"expires_in\":3599,\"access_token\":\"" TOKEN "\"}", NULL,
          &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_null(r.access_token);
    assert_non_null(strstr(r.reason, "Bearer"));
    parse(200, "", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_non_null(strstr(r.reason, "malformed"));
    parse(200, "access_token=" TOKEN "&token_type=bearer", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_null(r.access_token);
    parse(200, "[\"" TOKEN "\"]", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    /* A token that cannot travel in one IPC frame or contains spaces is no token. */
    parse(200, "{\"token_type\":\"Bearer\",\"expires_in\":1,\"access_token\":\"a b\"}", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
}

struct error_case {
    long status;
    const char *error;
    int code;
    const char *line;
    enum token_status expect;
};

static void check_error(const struct error_case *c)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"error\":\"%s\",\"error_description\":\"%s\\r\\nTrace ID: 0000aaaa-11bb\\r\\n"
             "Correlation ID: aaaa0000-bb11\\r\\nTimestamp: 2026-01-09 02:02:12Z\","
             "\"error_codes\":[%d],\"timestamp\":\"2026-01-09 02:02:12Z\","
             "\"trace_id\":\"0000aaaa-11bb\",\"correlation_id\":\"aaaa0000-bb11\"}",
             c->error, c->line, c->code);
    struct token_response r;
    parse(c->status, body, NULL, &r);
    assert_int_equal(r.status, c->expect);
    assert_string_equal(r.error, c->error);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: %s", c->error, c->line);
    assert_string_equal(r.reason, expected); /* first line only: no trace id */
    assert_null(r.access_token);
}

static void test_microsoft_errors(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {401, "invalid_client", 7000215,
         "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
         "request is the client secret value, not the client secret ID.",
         TOKEN_PERMFAIL},
        {400, "unauthorized_client", 700016,
         "AADSTS700016: Application with identifier 'abc' was not found in the directory "
         "'Contoso'.",
         TOKEN_PERMFAIL},
        {400, "invalid_request", 90002, "AADSTS90002: Tenant 'nope' not found.", TOKEN_PERMFAIL},
        {400, "invalid_scope", 70011,
         "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
         TOKEN_PERMFAIL},
        {400, "temporarily_unavailable", 0, "AADSTS00000: Try later.", TOKEN_TEMPFAIL},
        {400, "invalid_request", 50196,
         "AADSTS50196: The server terminated an operation because "
         "it encountered a client request loop.",
         TOKEN_TEMPFAIL},
        {503, "invalid_client", 7000215, "AADSTS7000215: but a 5xx is never permanent",
         TOKEN_TEMPFAIL},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(cases); i++)
        check_error(&cases[i]);
}

static void test_retry_after(void **state)
{
    (void)state;
    struct token_response r;
    parse(429, "{\"error\":\"too_many_requests\"}", "3", &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_int_equal(r.retry_after, 3);

    char date[64];
    time_t when = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    parse(503, "<html><body>Service Unavailable</body></html>", date, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_true(r.retry_after >= 115 && r.retry_after <= 120);
    assert_non_null(strstr(r.reason, "503"));

    parse(503, "", "Thu, 01 Jan 1970 00:00:00 GMT", &r); /* in the past: retry at once */
    assert_int_equal(r.retry_after, 0);
    parse(503, "", "soon", &r);
    assert_int_equal(r.retry_after, -1);
}

static void test_other_failures(void **state)
{
    (void)state;
    struct token_response r;
    parse(500, "<html><head><title>500</title></head><body>oops</body></html>", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_string_equal(r.reason, "HTTP 500: token endpoint failure");
    parse(404, "<html>Not Found</html>", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL); /* no OAuth error: not known to be permanent */
    parse(400, "", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    parse(302, "", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    parse(0, "", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    parse(400, "{\"error\":\"\\r\\nx\"}", NULL, &r); /* error with an empty first line */
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_string_equal(r.reason, "HTTP 400 from token endpoint without an OAuth error");
    token_parse_response(200, NULL, 0, NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
}

static void test_huge_description(void **state)
{
    (void)state;
    size_t n = 100000;
    char *body = mg_malloc(n + 100);
    int off = snprintf(body, n + 100, "{\"error\":\"invalid_client\",\"error_description\":\"");
    memset(body + off, 'x', n);
    strcpy(body + off + n, "\"}");
    struct token_response r;
    parse(401, body, NULL, &r);
    free(body);
    assert_int_equal(r.status, TOKEN_PERMFAIL);
    assert_true(strlen(r.reason) < 256); /* fits an IPC reason */
    assert_true(strncmp(r.reason, "invalid_client: xxx", 19) == 0);
    assert_string_equal(r.reason + strlen(r.reason) - 3, "...");
}

static struct provider_conf secret_provider(void)
{
    struct provider_conf p = {.name = "contoso",
                              .tenant = "contoso.onmicrosoft.com",
                              .client_id = "id-1_2.3~",
                              .client_secret = "a&b=c+d e/\xc3\xa9%",
                              .token_endpoint = "https://login.example/token",
                              .scope = "https://outlook.office365.com/.default"};
    return p;
}

static void check_body(char *body, const char *expected)
{
    assert_non_null(body);
    assert_string_equal(body, expected);
    mg_free_secret(&body);
}

static void test_app_body(void **state)
{
    (void)state;
    struct provider_conf p = secret_provider();
    char err[256] = "";
    check_body(token_app_body(&p, err, sizeof err),
               "grant_type=client_credentials&client_id=id-1_2.3~"
               "&scope=https%3A%2F%2Foutlook.office365.com%2F.default"
               "&client_secret=a%26b%3Dc%2Bd%20e%2F%C3%A9%25");
    p.client_secret = NULL; /* client credentials need the client's own credentials */
    assert_null(token_app_body(&p, err, sizeof err));
    assert_string_equal(err, "no client secret loaded");
    p = secret_provider();
    p.client_id = NULL;
    assert_null(token_app_body(&p, err, sizeof err));
    assert_string_equal(err, "no client_id");
}

static void test_refresh_body(void **state)
{
    (void)state;
    struct provider_conf p = secret_provider();
    p.scope = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access";
    char err[256] = "";
    check_body(token_refresh_body(&p, "0.AXk-r+t/1=", err, sizeof err),
               "grant_type=refresh_token&client_id=id-1_2.3~&refresh_token=0.AXk-r%2Bt%2F1%3D"
               "&scope=https%3A%2F%2Foutlook.office.com%2FIMAP.AccessAsUser.All%20offline_access"
               "&client_secret=a%26b%3Dc%2Bd%20e%2F%C3%A9%25");
    p.client_secret = NULL; /* a public client: no client authentication */
    check_body(token_refresh_body(&p, "rt", err, sizeof err),
               "grant_type=refresh_token&client_id=id-1_2.3~&refresh_token=rt"
               "&scope=https%3A%2F%2Foutlook.office.com%2FIMAP.AccessAsUser.All%20offline_access");
    p.client_secret_file = "/etc/mailgate/secret"; /* configured, but not loaded here */
    assert_null(token_refresh_body(&p, "rt", err, sizeof err));
    assert_string_equal(err, "no client secret loaded");
    p.client_secret_file = NULL;
    p.token_endpoint = NULL;
    assert_null(token_refresh_body(&p, "rt", err, sizeof err));
    assert_string_equal(err, "no token endpoint");
}

static void test_password_body(void **state)
{
    (void)state;
    struct provider_conf p = secret_provider();
    p.client_secret = NULL;
    char err[256] = "";
    static const char password[] = "p&ss w\0rd=\xc3\xa9"; /* any byte, NUL included */
    check_body(token_password_body(&p, "alice@contoso.com", password, sizeof password - 1, err,
                                   sizeof err),
               "grant_type=password&client_id=id-1_2.3~&username=alice%40contoso.com"
               "&password=p%26ss%20w%00rd%3D%C3%A9"
               "&scope=https%3A%2F%2Foutlook.office365.com%2F.default");
    p.client_secret = "s";
    check_body(token_password_body(&p, "bob", "", 0, err, sizeof err),
               "grant_type=password&client_id=id-1_2.3~&username=bob&password="
               "&scope=https%3A%2F%2Foutlook.office365.com%2F.default&client_secret=s");
}

/* invalid_grant is the user's problem for the refresh and password grants only. */
static void test_grant_status(void **state)
{
    (void)state;
    struct token_response r;
    parse(400,
          "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS50126: Error validating "
          "credentials due to invalid username or password.\"}",
          NULL, &r);
    assert_int_equal(r.status, TOKEN_PERMFAIL);
    assert_string_equal(r.error, "invalid_grant");
    assert_int_equal(token_grant_status(TOKEN_GRANT_PASSWORD, &r), TOKEN_DENIED);
    assert_int_equal(token_grant_status(TOKEN_GRANT_REFRESH_TOKEN, &r), TOKEN_NEEDS_AUTH);
    assert_int_equal(token_grant_status(TOKEN_GRANT_CLIENT_CREDENTIALS, &r), TOKEN_PERMFAIL);
    assert_int_equal(token_grant_status(TOKEN_GRANT_JWT_BEARER, &r), TOKEN_PERMFAIL);
    parse(400, "{\"error\":\"invalid_client\"}", NULL, &r);
    assert_int_equal(token_grant_status(TOKEN_GRANT_PASSWORD, &r), TOKEN_PERMFAIL);
    assert_int_equal(token_grant_status(TOKEN_GRANT_REFRESH_TOKEN, &r), TOKEN_PERMFAIL);
    parse(503, "{\"error\":\"invalid_grant\"}", NULL, &r); /* a 5xx is never permanent */
    assert_int_equal(token_grant_status(TOKEN_GRANT_REFRESH_TOKEN, &r), TOKEN_TEMPFAIL);
    /* Device code polling states stay recognisable by their error. */
    parse(400, "{\"error\":\"authorization_pending\"}", NULL, &r);
    assert_string_equal(r.error, "authorization_pending");
    parse(400, "{\"error\":\"slow_down\"}", NULL, &r);
    assert_int_equal(r.status, TOKEN_TEMPFAIL);
    assert_string_equal(r.error, "slow_down");
}

static void test_principals(void **state)
{
    (void)state;
    struct provider_conf p = secret_provider();
    char *app = token_app_principal(&p);
    assert_string_equal(app, "app:id-1_2.3~@contoso.onmicrosoft.com");
    free(app);
    char *a = token_password_principal("alice", "secret", 6);
    char *b = token_password_principal("alice", "secret", 6);
    char *c = token_password_principal("alice", "secreT", 6);
    char *d = token_password_principal("bob", "secret", 6);
    assert_string_equal(a, b); /* the same password: the same entry */
    assert_string_not_equal(a, c);
    assert_true(strncmp(a, "password:alice:", 15) == 0);
    assert_int_equal(strlen(a), 15 + 64);
    for (const char *h = strrchr(a, ':') + 1; *h; h++)
        assert_non_null(strchr("0123456789abcdef", *h));
    assert_null(strstr(a, "secret"));
    assert_string_equal(strchr(d + 9, ':'), strchr(a + 9, ':')); /* keyed by password only */
    free(a), free(b), free(c), free(d);
}

/* ---- the async client, against endpoints that fail fast ---- */

struct outcome {
    int calls;
    enum token_status status;
    char reason[512];
};

static void record(const struct token_result *res, void *arg)
{
    struct outcome *o = arg;
    o->calls++;
    o->status = res->status;
    mg_strlcpy(o->reason, res->reason, sizeof o->reason);
}

/* A port on 127.0.0.1 that refuses connections: bound but not listening. */
static int refusing_port(int *fd)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*fd >= 0);
    assert_int_equal(bind(*fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

struct fixture {
    struct event_base *base;
    struct token_client *tc;
    struct provider_conf p;
    char endpoint[128];
    int fd;
};

static int setup(void **state)
{
    struct fixture *f = mg_calloc(1, sizeof *f);
    f->base = event_base_new();
    f->tc = token_client_new(f->base, 5000);
    snprintf(f->endpoint, sizeof f->endpoint, "https://127.0.0.1:%d/tenant/oauth2/v2.0/token",
             refusing_port(&f->fd));
    f->p.name = "contoso";
    f->p.client_id = "11111111-2222-3333-4444-555555555555";
    f->p.client_secret = "s3cret";
    f->p.token_endpoint = f->endpoint;
    f->p.scope = "https://outlook.office365.com/.default";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    token_client_free(&f->tc);
    assert_null(f->tc);
    event_base_free(f->base);
    close(f->fd);
    free(f);
    return 0;
}

static void run_until(struct fixture *f, const int *calls, int want)
{
    for (int i = 0; i < 500 && *calls < want; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
}

static void test_single_flight_and_backoff(void **state)
{
    struct fixture *f = *state;
    struct outcome a = {0}, b = {0}, c = {0};
    assert_non_null(token_get(f->tc, &f->p, record, &a));
    assert_non_null(token_get(f->tc, &f->p, record, &b));
    assert_int_equal(token_client_requests(f->tc), 1); /* two waiters, one request */
    run_until(f, &b.calls, 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.status, TOKEN_TEMPFAIL);
    assert_non_null(strstr(a.reason, "token request failed"));
    assert_null(strstr(a.reason, "s3cret"));

    /* Backing off now: answered at once, no new request. */
    assert_null(token_get(f->tc, &f->p, record, &c));
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, TOKEN_TEMPFAIL);
    assert_true(strncmp(c.reason, "token endpoint backing off for ", 31) == 0);
    assert_non_null(strstr(c.reason, " s after: token request failed"));
    assert_int_equal(token_client_requests(f->tc), 1);

    /* After the backoff (1 s +-20 %) a new request goes out. */
    usleep(1300 * 1000);
    assert_non_null(token_get(f->tc, &f->p, record, &c));
    assert_int_equal(token_client_requests(f->tc), 2);
    run_until(f, &c.calls, 2);
    assert_int_equal(c.calls, 2);
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    struct outcome a = {0}, b = {0};
    struct token_wait *wa = token_get(f->tc, &f->p, record, &a);
    assert_non_null(wa);
    assert_non_null(token_get(f->tc, &f->p, record, &b));
    token_wait_cancel(wa);
    run_until(f, &b.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.calls, 0);
}

static void test_free_with_waiters(void **state)
{
    struct fixture *f = *state;
    struct outcome a = {0};
    assert_non_null(token_get(f->tc, &f->p, record, &a));
    token_client_free(&f->tc); /* in flight: no callback, no leak (ASan) */
    assert_int_equal(a.calls, 0);
}

static void test_https_only(void **state)
{
    struct fixture *f = *state;
    struct outcome a = {0};
    snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:1/token");
    assert_non_null(token_get(f->tc, &f->p, record, &a));
    run_until(f, &a.calls, 1);
    assert_int_equal(a.status, TOKEN_TEMPFAIL);
    assert_non_null(strstr(a.reason, "http"));
}

static void test_missing_secret(void **state)
{
    struct fixture *f = *state;
    struct outcome a = {0};
    f->p.client_secret = NULL; /* a worker-side config */
    assert_null(token_get(f->tc, &f->p, record, &a));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, TOKEN_TEMPFAIL);
    assert_non_null(strstr(a.reason, "no client secret"));
    assert_int_equal(token_client_requests(f->tc), 0);
}

static void record_token(const struct token_result *res, void *arg)
{
    char *out = arg;
    mg_strlcpy(out, res->status == TOKEN_OK ? res->access_token : "(failed)", 64);
}

static int observed;

static void observer(const char *provider, const char *principal, const char *scope,
                     const char *token, size_t len, int64_t expires_in, const char *credential,
                     void *arg)
{
    (void)provider, (void)principal, (void)scope, (void)token, (void)len, (void)expires_in;
    (void)credential, (void)arg;
    observed++;
}

/* Seeds the app's token as if loaded from the store; the next get serves it. */
static void seed_and_get(struct fixture *f)
{
    char *app = token_app_principal(&f->p);
    struct token_subject subj = {.grant = TOKEN_GRANT_CLIENT_CREDENTIALS, .principal = app};
    token_client_seed(f->tc, &f->p, &subj, "seeded-token", 12, 3600);
    free(app);
    char got[64] = "";
    assert_null(token_get(f->tc, &f->p, record_token, got));
    assert_string_equal(got, "seeded-token");
}

/* A seeded token (as loaded from the store) is served without a request, and the observer is
 * not called for it (it is not new). */
static void test_seed(void **state)
{
    struct fixture *f = *state;
    observed = 0;
    token_client_set_observer(f->tc, observer, NULL);
    seed_and_get(f);
    assert_int_equal(token_client_requests(f->tc), 0);
    assert_int_equal(observed, 0);
    /* Another scope is another entry: not seeded. */
    struct outcome a = {0};
    f->p.scope = "https://other/.default";
    assert_non_null(token_get(f->tc, &f->p, record, &a));
    assert_int_equal(token_client_requests(f->tc), 1);
    run_until(f, &a.calls, 1);
    assert_int_equal(a.status, TOKEN_TEMPFAIL);
    assert_int_equal(observed, 0);
    token_client_set_observer(f->tc, NULL, NULL);
}

/* A cached token is not served once the provider's credential changed (a reload with a new
 * client secret): the next get asks the IdP, and going back does not bring the token back.
 * The backoff after the new secret's failure does not hold back the next credential. */
static void test_changed_secret_drops_the_cached_token(void **state)
{
    struct fixture *f = *state;
    seed_and_get(f);
    f->p.client_secret = "n3w-s3cret";
    struct outcome a = {0};
    assert_non_null(token_get(f->tc, &f->p, record, &a));
    assert_int_equal(token_client_requests(f->tc), 1);
    run_until(f, &a.calls, 1);
    assert_int_equal(a.status, TOKEN_TEMPFAIL); /* the endpoint refuses connections */
    struct outcome b = {0};
    assert_null(token_get(f->tc, &f->p, record, &b)); /* backing off: answered at once */
    assert_int_equal(b.status, TOKEN_TEMPFAIL);
    f->p.client_secret = "s3cret";
    assert_non_null(token_get(f->tc, &f->p, record, &b));
    assert_int_equal(token_client_requests(f->tc), 2);
    run_until(f, &b.calls, 2);
}

static void test_fingerprint(void **state)
{
    (void)state;
    struct provider_conf p = {.name = "contoso", .tenant = "t", .client_id = "app"};
    char a[TOKEN_FINGERPRINT_SIZE], b[TOKEN_FINGERPRINT_SIZE], c[TOKEN_FINGERPRINT_SIZE];
    token_fingerprint(&p, a);
    assert_string_equal(token_credential_kind(&p), "client registration");
    p.client_secret = "s3cret";
    token_fingerprint(&p, b);
    assert_int_equal(strlen(b), TOKEN_FINGERPRINT_HEX);
    assert_string_not_equal(a, b);
    assert_string_equal(token_credential_kind(&p), "client secret");
    /* Fields are length-prefixed: moving bytes between two fields changes the digest. */
    p.client_id = "ap";
    p.client_secret = "ps3cret";
    token_fingerprint(&p, c);
    assert_string_not_equal(b, c);
    p.client_id = "app";
    p.client_secret = "s3cret";
    token_fingerprint(&p, c);
    assert_string_equal(b, c); /* deterministic: the store compares across processes */
    unsigned char der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    p.client_cert_der = der;
    p.client_cert_der_len = sizeof der;
    token_fingerprint(&p, c);
    assert_string_not_equal(b, c);
    assert_string_equal(token_credential_kind(&p), "client certificate");
}

int main(void)
{
    log_init("test", MG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_number),
        cmocka_unit_test(test_success_string_expiry),
        cmocka_unit_test(test_refresh_token),
        cmocka_unit_test(test_malformed_success),
        cmocka_unit_test(test_microsoft_errors),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_other_failures),
        cmocka_unit_test(test_huge_description),
        cmocka_unit_test(test_app_body),
        cmocka_unit_test(test_refresh_body),
        cmocka_unit_test(test_password_body),
        cmocka_unit_test(test_grant_status),
        cmocka_unit_test(test_principals),
        cmocka_unit_test_setup_teardown(test_single_flight_and_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_secret_drops_the_cached_token, setup,
                                        teardown),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
