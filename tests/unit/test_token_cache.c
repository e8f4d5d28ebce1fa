/* Tests of the token client's cache for every grant, against a scripted HTTPS token endpoint
 * (fake_idp.c): what each grant sends, refresh token rotation and revocation, the password
 * grant's non-persistence, background renewal and the idle sweep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "config.h"
#include "fake_idp.h"
#include "log.h"
#include "token.h"
#include "token_fingerprint.h"
#include "util.h"

#define SCOPE "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"

/* What happened, in order: hooks and callbacks append to it. */
static char events[1024];

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    size_t n = strlen(events);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(events + n, sizeof events - n, fmt, ap);
    va_end(ap);
}

struct fixture {
    struct event_base *base;
    struct token_client *tc;
    struct fake_idp *idp;
    struct provider_conf p;
    const char *stored_refresh; /* what load returns; NULL: not authorized */
    int rotate_fails;
    int store_changed, row_stored; /* what the store hooks answer */
};

static char *load(void *arg, const char *provider, const char *principal, size_t *len)
{
    struct fixture *f = arg;
    note("load %s %s;", provider, principal);
    if (!f->stored_refresh)
        return NULL;
    *len = strlen(f->stored_refresh);
    return mg_strdup(f->stored_refresh);
}

static int rotated(void *arg, const char *provider, const char *principal, const char *refresh,
                   size_t len)
{
    struct fixture *f = arg;
    note("rotated %s %s %.*s;", provider, principal, (int)len, refresh);
    return f->rotate_fails ? -1 : 0;
}

static void revoked(void *arg, const char *provider, const char *principal, const char *reason)
{
    struct fixture *f = arg;
    f->stored_refresh = NULL; /* what grant_store_revoke does: "needs authorization" */
    note("revoked %s %s;", provider, principal);
    assert_non_null(strstr(reason, "invalid_grant"));
}

static void observer(const char *provider, const char *principal, const char *scope,
                     const char *token, size_t len, int64_t expires_in, const char *credential,
                     void *arg)
{
    (void)arg;
    assert_int_equal(strlen(credential), TOKEN_FINGERPRINT_HEX);
    note("observed %s %s %s %.*s %lld;", provider, principal, scope, (int)len, token,
         (long long)expires_in);
}

static const struct token_refresh_ops ops = {load, rotated, revoked};

static void forget(void *arg, const char *provider, const char *principal, const char *scope)
{
    (void)arg;
    (void)scope;
    note("forget %s %s;", provider, principal);
}

static int changed(void *arg)
{
    struct fixture *f = arg;
    int was = f->store_changed;
    f->store_changed = 0;
    return was;
}

static int stored(void *arg, const char *provider, const char *principal, const char *scope)
{
    struct fixture *f = arg;
    (void)scope;
    note("stored? %s %s;", provider, principal);
    return f->row_stored;
}

static const struct token_store_ops store_ops = {forget, changed, stored};

static int setup(void **state)
{
    struct fixture *f = mg_calloc(1, sizeof *f);
    f->base = event_base_new();
    f->tc = token_client_new(f->base, 5000);
    f->idp = fake_idp_start();
    f->p.name = "contoso";
    f->p.tenant = "contoso.onmicrosoft.com";
    f->p.client_id = "app-1";
    f->p.token_endpoint = (char *)fake_idp_url(f->idp);
    f->p.ca_file = (char *)fake_idp_ca_file(f->idp);
    f->p.scope = SCOPE;
    f->stored_refresh = "rt-1";
    token_client_set_refresh_ops(f->tc, &ops, f);
    token_client_set_observer(f->tc, observer, NULL);
    token_client_set_store_ops(f->tc, &store_ops, f);
    f->row_stored = 1;
    events[0] = '\0';
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    token_client_free(&f->tc);
    event_base_free(f->base);
    fake_idp_stop(&f->idp);
    free(f);
    return 0;
}

struct outcome {
    int calls;
    enum token_status status;
    char token[128];
    char reason[512];
    uint64_t token_id;
};

static void record(const struct token_result *res, void *arg)
{
    struct outcome *o = arg;
    o->calls++;
    o->token_id = res->token_id;
    o->status = res->status;
    mg_strlcpy(o->token, res->status == TOKEN_OK ? res->access_token : "", sizeof o->token);
    mg_strlcpy(o->reason, res->reason, sizeof o->reason);
    note("answer %d;", (int)res->status);
}

static void run_until(struct fixture *f, const int *calls, int want)
{
    for (int i = 0; i < 2000 && *calls < want; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(*calls, want);
}

static struct token_wait *get_user(struct fixture *f, const char *principal, struct outcome *o)
{
    struct token_subject s = {.grant = TOKEN_GRANT_REFRESH_TOKEN, .principal = principal};
    return token_get_for(f->tc, &f->p, &s, record, o);
}

static void assert_body(struct fixture *f, size_t i, const char *expected)
{
    char *body = fake_idp_body(f->idp, i);
    assert_non_null(body);
    assert_string_equal(body, expected);
    free(body);
}

/* The app-only grant keeps working as before, now under the app's principal. */
static void test_client_credentials(void **state)
{
    struct fixture *f = *state;
    f->p.client_secret = "s3cret";
    fake_idp_push(f->idp, 200, FAKE_IDP_TOKEN("app-token", 3600));
    struct outcome a = {0}, b = {0};
    assert_non_null(token_get(f->tc, &f->p, record, &a));
    run_until(f, &a.calls, 1);
    assert_int_equal(a.status, TOKEN_OK);
    assert_string_equal(a.token, "app-token");
    assert_null(token_get(f->tc, &f->p, record, &b)); /* cached */
    assert_string_equal(b.token, "app-token");
    assert_int_equal(fake_idp_requests(f->idp), 1);
    assert_body(f, 0,
                "grant_type=client_credentials&client_id=app-1&scope=https%3A%2F%2Foutlook."
                "office.com%2FIMAP.AccessAsUser.All%20offline_access&client_secret=s3cret");
    assert_string_equal(events, "observed contoso app:app-1@contoso.onmicrosoft.com " SCOPE
                                " app-token 3600;answer 0;answer 0;");
}

/* A rotated refresh token is stored before any waiter sees the access token. */
static void test_refresh_rotation(void **state)
{
    struct fixture *f = *state;
    fake_idp_push(f->idp, 200,
                  "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"at-1\","
                  "\"refresh_token\":\"rt-2\"}");
    struct outcome a = {0}, b = {0};
    assert_non_null(get_user(f, "user:alice", &a));
    assert_non_null(get_user(f, "user:alice", &b)); /* single flight */
    run_until(f, &b.calls, 1);
    assert_int_equal(a.status, TOKEN_OK);
    assert_string_equal(b.token, "at-1");
    assert_string_equal(events, "load contoso user:alice;rotated contoso user:alice rt-2;"
                                "observed contoso user:alice " SCOPE " at-1 3599;"
                                "answer 0;answer 0;");
    assert_int_equal(fake_idp_requests(f->idp), 1);
    assert_body(f, 0,
                "grant_type=refresh_token&client_id=app-1&refresh_token=rt-1&scope=https%3A%2F%2F"
                "outlook.office.com%2FIMAP.AccessAsUser.All%20offline_access");
    /* Another user is another entry. */
    f->stored_refresh = NULL;
    struct outcome c = {0};
    assert_null(get_user(f, "user:bob", &c));
    assert_int_equal(c.status, TOKEN_NEEDS_AUTH);
    assert_string_equal(c.reason, "user bob is not authorized: run mailgate user authorize");
    assert_int_equal(fake_idp_requests(f->idp), 1);
    assert_int_equal(token_client_entries(f->tc), 2);
}

/* When the rotated refresh token cannot be stored, the access token is still delivered. */
static void test_rotation_store_fails(void **state)
{
    struct fixture *f = *state;
    f->rotate_fails = 1;
    fake_idp_push(f->idp, 200,
                  "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"at-1\","
                  "\"refresh_token\":\"rt-2\"}");
    struct outcome a = {0};
    assert_non_null(get_user(f, "user:alice", &a));
    run_until(f, &a.calls, 1);
    assert_int_equal(a.status, TOKEN_OK);
    assert_string_equal(a.token, "at-1");
    assert_non_null(strstr(events, "rotated contoso user:alice rt-2;"));
}

/* invalid_grant: revoked once, TOKEN_NEEDS_AUTH with the fix, and no retry storm. */
static void test_refresh_revoked(void **state)
{
    struct fixture *f = *state;
    fake_idp_push(f->idp, 400,
                  "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS700082: The "
                  "refresh token has expired due to inactivity.\",\"error_codes\":[700082]}");
    struct outcome a = {0}, b = {0};
    assert_non_null(get_user(f, "user:alice", &a));
    run_until(f, &a.calls, 1);
    assert_int_equal(a.status, TOKEN_NEEDS_AUTH);
    assert_non_null(strstr(a.reason, "AADSTS700082"));
    assert_non_null(strstr(a.reason, "(fix: "));
    assert_non_null(strstr(a.reason, "mailgate user authorize"));
    assert_null(get_user(f, "user:alice", &b)); /* backing off: the same answer, at once */
    assert_int_equal(b.status, TOKEN_NEEDS_AUTH);
    assert_string_equal(b.reason, a.reason);
    assert_int_equal(fake_idp_requests(f->idp), 1);
    assert_string_equal(events, "load contoso user:alice;revoked contoso user:alice;answer 3;"
                                "load contoso user:alice;answer 3;");
    /* Authorized again (a new refresh token in the store): no waiting for the backoff. */
    f->stored_refresh = "rt-new";
    fake_idp_push(f->idp, 200,
                  "{\"token_type\":\"Bearer\",\"expires_in\":3600,\"access_token\":\"at-9\"}");
    struct outcome c = {0};
    assert_non_null(get_user(f, "user:alice", &c));
    run_until(f, &c.calls, 1);
    assert_int_equal(c.status, TOKEN_OK);
    assert_string_equal(c.token, "at-9");
    assert_int_equal(fake_idp_requests(f->idp), 2);
}

static struct token_wait *get_password(struct fixture *f, const char *password, struct outcome *o)
{
    char *principal = token_password_principal("alice", password, strlen(password));
    struct token_subject s = {.grant = TOKEN_GRANT_PASSWORD,
                              .principal = principal,
                              .subject = "alice@contoso.com",
                              .password = password,
                              .password_len = strlen(password)};
    struct token_wait *w = token_get_for(f->tc, &f->p, &s, record, o);
    free(principal);
    return w;
}

/* The password grant: cached per password, never observed (persisted), refused with a hint. */
static void test_password_grant(void **state)
{
    struct fixture *f = *state;
    fake_idp_push(f->idp, 200, FAKE_IDP_TOKEN("pw-token", 3600));
    struct outcome a = {0}, b = {0}, c = {0}, d = {0};
    assert_non_null(get_password(f, "right pw", &a));
    run_until(f, &a.calls, 1);
    assert_int_equal(a.status, TOKEN_OK);
    assert_string_equal(a.token, "pw-token");
    assert_body(f, 0,
                "grant_type=password&client_id=app-1&username=alice%40contoso.com"
                "&password=right%20pw&scope=https%3A%2F%2Foutlook.office.com%2FIMAP."
                "AccessAsUser.All%20offline_access");
    assert_null(get_password(f, "right pw", &b)); /* the same password: cached */
    assert_string_equal(b.token, "pw-token");

    fake_idp_push(f->idp, 400,
                  "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS50126: Error "
                  "validating credentials due to invalid username or password.\"}");
    assert_non_null(get_password(f, "wrong pw", &c)); /* another password: asks the IdP */
    run_until(f, &c.calls, 1);
    assert_int_equal(c.status, TOKEN_DENIED);
    assert_non_null(strstr(c.reason, "(fix: Wrong user name or password"));
    assert_null(get_password(f, "wrong pw", &d)); /* no second try within the backoff */
    assert_int_equal(d.status, TOKEN_DENIED);
    assert_int_equal(fake_idp_requests(f->idp), 2);
    assert_null(strstr(events, "observed"));
    assert_null(strstr(events, "revoked"));

    /* Never seeded either. */
    char *principal = token_password_principal("alice", "x", 1);
    struct token_subject s = {
        .grant = TOKEN_GRANT_PASSWORD, .principal = principal, .subject = "alice@contoso.com"};
    size_t before = token_client_entries(f->tc);
    token_client_seed(f->tc, &f->p, &s, "t", 1, 3600);
    assert_int_equal(token_client_entries(f->tc), before);
    free(principal);
}

/* The Google service account grant: a signed assertion per mailbox, persisted per mailbox. */
static void test_jwt_bearer(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    f->p.scope = "https://mail.google.com/";
    f->p.sa_client_email = "gw@project.iam.gserviceaccount.com";
    f->p.sa_key_id = "kid-1";
    f->p.sa_key = key;
    fake_idp_push(f->idp, 200, FAKE_IDP_TOKEN("ya29.sa", 3599));
    struct token_subject s = {.grant = TOKEN_GRANT_JWT_BEARER,
                              .principal = "mailbox:carol@example.com",
                              .subject = "carol@example.com"};
    struct outcome a = {0};
    assert_non_null(token_get_for(f->tc, &f->p, &s, record, &a));
    EVP_PKEY_free(key); /* the client holds its own reference */
    run_until(f, &a.calls, 1);
    assert_int_equal(a.status, TOKEN_OK);
    char *body = fake_idp_body(f->idp, 0);
    static const char prefix[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey";
    assert_true(strncmp(body, prefix, strlen(prefix)) == 0);
    assert_int_equal(strspn(body + strlen(prefix) - 2,
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
                     strlen(body + strlen(prefix) - 2));
    free(body);
    assert_string_equal(events, "observed contoso mailbox:carol@example.com "
                                "https://mail.google.com/ ya29.sa 3599;answer 0;");
}

/* Refresh entries renew in the background like app-only ones: with the stored refresh token. */
static void test_background_renewal(void **state)
{
    struct fixture *f = *state;
    struct token_subject s = {.grant = TOKEN_GRANT_REFRESH_TOKEN, .principal = "user:alice"};
    token_client_seed(f->tc, &f->p, &s, "old", 3, 2); /* renewal due after 1.6 s */
    struct outcome a = {0}, b = {0};
    assert_null(get_user(f, "user:alice", &a)); /* served, and marks the token as in use */
    assert_string_equal(a.token, "old");
    fake_idp_push(f->idp, 200, FAKE_IDP_TOKEN("new", 3600));
    for (int i = 0; i < 400 && !strstr(events, "observed"); i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
    assert_int_equal(fake_idp_requests(f->idp), 1);
    assert_null(get_user(f, "user:alice", &b));
    assert_string_equal(b.token, "new");
    assert_non_null(strstr(events, "load contoso user:alice;observed contoso user:alice"));
}

/* Idle entries go; entries with a token, a request or a backoff stay. */
static void test_idle_sweep(void **state)
{
    struct fixture *f = *state;
    f->stored_refresh = NULL;
    struct outcome a = {0}, b = {0}, c = {0};
    assert_null(get_user(f, "user:nobody", &a)); /* nothing asked: idle at once */
    assert_int_equal(a.status, TOKEN_NEEDS_AUTH);
    struct token_subject s = {.grant = TOKEN_GRANT_REFRESH_TOKEN, .principal = "user:seeded"};
    token_client_seed(f->tc, &f->p, &s, "tok", 3, 3600);
    f->stored_refresh = "rt";
    assert_non_null(get_user(f, "user:failing", &b)); /* 500: backs off about 1 s */
    run_until(f, &b.calls, 1);
    assert_int_equal(b.status, TOKEN_TEMPFAIL);
    assert_int_equal(token_client_entries(f->tc), 3);
    token_client_sweep(f->tc);
    assert_int_equal(token_client_entries(f->tc), 2); /* "nobody" is gone */
    usleep(1300 * 1000);
    token_client_sweep(f->tc);
    assert_int_equal(token_client_entries(f->tc), 1); /* the backoff is over */
    assert_null(get_user(f, "user:seeded", &c));
    assert_string_equal(c.token, "tok");
}

/* An app token as loaded from the store at start (obtained before: never "fresh"). */
static uint64_t seed_app_token(struct fixture *f, const char *token)
{
    char *principal = token_app_principal(&f->p);
    struct token_subject s = {.grant = TOKEN_GRANT_CLIENT_CREDENTIALS, .principal = principal};
    token_client_seed(f->tc, &f->p, &s, token, strlen(token), 3600);
    free(principal);
    struct outcome o = {0};
    assert_null(token_get(f->tc, &f->p, record, &o));
    assert_string_equal(o.token, token);
    assert_true(o.token_id != 0);
    return o.token_id;
}

/* Many logins report one refused token: it is dropped once (cache and store), one request
 * brings the next one for all of them; a token obtained just now is kept. */
static void test_refused_token_dropped_once(void **state)
{
    struct fixture *f = *state;
    f->p.client_secret = "s3cret";
    uint64_t old = seed_app_token(f, "stored-token");
    events[0] = '\0';
    assert_int_equal(token_client_refused(f->tc, old, 10000), TOKEN_REFUSAL_DROPPED);
    assert_int_equal(token_client_refused(f->tc, old, 10000), TOKEN_REFUSAL_DROPPED);
    assert_string_equal(events, "forget contoso app:app-1@contoso.onmicrosoft.com;");

    fake_idp_push(f->idp, 200, FAKE_IDP_TOKEN("new-token", 3600));
    struct outcome a = {0}, b = {0};
    assert_non_null(token_get_again(f->tc, old, record, &a));
    assert_non_null(token_get_again(f->tc, old, record, &b));
    run_until(f, &b.calls, 1);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.token, "new-token");
    assert_string_equal(b.token, "new-token");
    assert_int_equal(fake_idp_requests(f->idp), 1);
    assert_true(a.token_id != old && a.token_id == b.token_id);
    /* A late report of the old token leaves the new one alone. */
    assert_int_equal(token_client_refused(f->tc, old, 10000), TOKEN_REFUSAL_DROPPED);
    /* The new one refused at once: a permission problem; kept, nothing more is asked. */
    assert_int_equal(token_client_refused(f->tc, a.token_id, 10000), TOKEN_REFUSAL_FRESH);
    struct outcome c = {0};
    assert_null(token_get(f->tc, &f->p, record, &c));
    assert_string_equal(c.token, "new-token");
    assert_int_equal(fake_idp_requests(f->idp), 1);
}

static void test_refused_unknown_token(void **state)
{
    struct fixture *f = *state;
    struct outcome o = {0};
    assert_int_equal(token_client_refused(f->tc, 0x7700000001ull, 10000), TOKEN_REFUSAL_UNKNOWN);
    assert_null(token_get_again(f->tc, 0x7700000001ull, record, &o));
    assert_int_equal(o.status, TOKEN_TEMPFAIL);
    assert_int_equal(fake_idp_requests(f->idp), 0);
}

/* Another process deleted stored rows (token flush): the cached copies whose rows are gone
 * are dropped before the next token is handed out; the store is asked only after a change. */
static void test_deleted_row_drops_cached_copy(void **state)
{
    struct fixture *f = *state;
    f->p.client_secret = "s3cret";
    seed_app_token(f, "stored-token");
    assert_null(strstr(events, "stored?")); /* unchanged store: not asked */
    f->store_changed = 1;
    f->row_stored = 0;
    events[0] = '\0';
    fake_idp_push(f->idp, 200, FAKE_IDP_TOKEN("new-token", 3600));
    struct outcome o = {0};
    assert_non_null(token_get(f->tc, &f->p, record, &o));
    run_until(f, &o.calls, 1);
    assert_string_equal(o.token, "new-token");
    assert_non_null(strstr(events, "stored? contoso app:app-1@contoso.onmicrosoft.com;"));
    assert_null(strstr(events, "forget")); /* the row is gone already */
}

int main(void)
{
    log_init("test", MG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_store_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_grant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwt_bearer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_renewal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_token_dropped_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_unknown_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_row_drops_cached_copy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
