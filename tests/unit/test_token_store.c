/* Tests of token_store.c: tokens are persisted under their principal (never for the password
 * grant), and at start every stored, unexpired token of a configured provider is seeded with
 * the grant of the provider's flow. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "fake_idp.h"
#include "log.h"
#include "secretbox.h"
#include "store.h"
#include "token.h"
#include "token_store.h"
#include "util.h"

#define SCOPE "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"

enum { APP, USERS, GOOGLE, PASSWORD, N_PROVIDERS };

struct fixture {
    char dir[64];
    struct store *st;
    struct secretbox *box;
    struct event_base *base;
    struct token_client *tc;
    struct fake_idp *idp;
    struct provider_conf providers[N_PROVIDERS];
    struct config cfg;
};

static void provider(struct fixture *f, int i, const char *name, enum mg_flow flow)
{
    struct provider_conf *p = &f->providers[i];
    p->name = (char *)name;
    p->flow = flow;
    p->tenant = "t";
    p->client_id = "app-1";
    p->client_secret = "s";
    p->scope = SCOPE;
    p->token_endpoint = (char *)fake_idp_url(f->idp);
    p->ca_file = (char *)fake_idp_ca_file(f->idp);
}

static int setup(void **state)
{
    struct fixture *f = mg_calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/mg-test-token-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char err[256] = "";
    f->st = store_open(f->dir, err, sizeof err);
    uint8_t key[SECRETBOX_KEY_LEN] = {1, 2, 3};
    f->box = secretbox_from_key(key);
    f->base = event_base_new();
    f->tc = token_client_new(f->base, 5000);
    f->idp = fake_idp_start();
    provider(f, APP, "app", MG_FLOW_CLIENT_CREDENTIALS);
    provider(f, USERS, "users", MG_FLOW_DELEGATED);
    provider(f, GOOGLE, "google", MG_FLOW_SERVICE_ACCOUNT);
    provider(f, PASSWORD, "ropc", MG_FLOW_PASSWORD);
    f->cfg.providers = f->providers;
    f->cfg.n_providers = N_PROVIDERS;
    *state = f;
    return f->st ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    token_client_free(&f->tc);
    event_base_free(f->base);
    fake_idp_stop(&f->idp);
    secretbox_free(&f->box);
    store_close(&f->st);
    char *cmd = mg_printf("rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void put(struct fixture *f, const char *provider_name, const char *principal,
                const char *scope, const char *token, int64_t left)
{
    char *ad = token_store_context(provider_name, principal, scope);
    struct token_record t = {.provider = (char *)provider_name,
                             .principal = (char *)principal,
                             .scope = (char *)scope,
                             .expires_at = (int64_t)time(NULL) + left};
    t.sealed = secretbox_seal(f->box, ad, token, strlen(token), &t.sealed_len);
    free(ad);
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    free(t.sealed);
}

struct outcome {
    int calls;
    enum token_status status;
    char token[64];
};

static void record(const struct token_result *res, void *arg)
{
    struct outcome *o = arg;
    o->calls++;
    o->status = res->status;
    mg_strlcpy(o->token, res->status == TOKEN_OK ? res->access_token : "", sizeof o->token);
}

/* The token a subject gets at once (cached), or "" when it would need a request. */
static const char *cached(struct fixture *f, int provider_index, enum token_grant grant,
                          const char *principal, const char *subject, struct outcome *o)
{
    struct token_subject s = {.grant = grant, .principal = principal, .subject = subject};
    memset(o, 0, sizeof *o);
    struct token_wait *w = token_get_for(f->tc, &f->providers[provider_index], &s, record, o);
    token_wait_cancel(w);
    return o->token;
}

static void test_seed_by_flow(void **state)
{
    struct fixture *f = *state;
    put(f, "app", "app:app-1@t", SCOPE, "t-app", 3600);
    put(f, "app", "app:old-app@t", SCOPE, "t-old-app", 3600);
    put(f, "users", "user:alice", SCOPE, "t-alice", 3600);
    put(f, "users", "user:bob", SCOPE, "t-bob", 30); /* too little left */
    put(f, "users", "user:dave", "https://other/.default", "t-dave", 3600);
    put(f, "users", "app:app-1@t", SCOPE, "t-users-app", 3600); /* not this flow's */
    put(f, "google", "mailbox:carol@example.com", SCOPE, "t-carol", 3600);
    put(f, "ropc", "password:erin:00ff", SCOPE, "t-erin", 3600);
    put(f, "gone", "app:app-1@t", SCOPE, "t-gone", 3600);
    struct token_store *ts = token_store_attach(f->tc, &f->cfg, f->st, f->box);
    assert_int_equal(token_client_entries(f->tc), 3);
    struct outcome o;
    assert_string_equal(cached(f, APP, TOKEN_GRANT_CLIENT_CREDENTIALS, "app:app-1@t", NULL, &o),
                        "t-app");
    assert_string_equal(cached(f, USERS, TOKEN_GRANT_REFRESH_TOKEN, "user:alice", NULL, &o),
                        "t-alice");
    assert_string_equal(cached(f, GOOGLE, TOKEN_GRANT_JWT_BEARER, "mailbox:carol@example.com",
                               "carol@example.com", &o),
                        "t-carol");
    assert_int_equal(token_client_entries(f->tc), 3); /* the seeded entries, nothing new */
    /* Not seeded: bob asks for a new token (no refresh ops here: needs authorization). */
    assert_string_equal(cached(f, USERS, TOKEN_GRANT_REFRESH_TOKEN, "user:bob", NULL, &o), "");
    assert_int_equal(o.status, TOKEN_NEEDS_AUTH);
    token_store_detach(&ts);
}

static void run_until(struct fixture *f, const int *calls)
{
    for (int i = 0; i < 2000 && *calls < 1; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(*calls, 1);
}

/* Obtained tokens are sealed under their principal; password tokens are not stored. */
static void test_persist(void **state)
{
    struct fixture *f = *state;
    struct token_store *ts = token_store_attach(f->tc, &f->cfg, f->st, f->box);
    fake_idp_push(f->idp, 200, FAKE_IDP_TOKEN("t-app", 3600));
    fake_idp_push(f->idp, 200, FAKE_IDP_TOKEN("t-pw", 3600));
    struct outcome a = {0}, b = {0};
    assert_non_null(token_get(f->tc, &f->providers[APP], record, &a));
    run_until(f, &a.calls);
    char *principal = token_password_principal("erin", "pw", 2);
    struct token_subject s = {.grant = TOKEN_GRANT_PASSWORD,
                              .principal = principal,
                              .subject = "erin@example.com",
                              .password = "pw",
                              .password_len = 2};
    assert_non_null(token_get_for(f->tc, &f->providers[PASSWORD], &s, record, &b));
    run_until(f, &b.calls);
    assert_string_equal(b.token, "t-pw");
    struct token_record t;
    assert_int_equal(store_token_get(f->st, "ropc", principal, SCOPE, &t), STORE_NOT_FOUND);
    free(principal);
    assert_int_equal(store_token_get(f->st, "app", "app:app-1@t", SCOPE, &t), STORE_OK);
    char *ad = token_store_context("app", "app:app-1@t", SCOPE);
    size_t len = 0;
    char *plain = secretbox_open_blob(f->box, ad, t.sealed, t.sealed_len, &len);
    assert_non_null(plain);
    assert_string_equal(plain, "t-app");
    assert_true(t.expires_at > (int64_t)time(NULL) + 3500);
    free(plain);
    free(ad);
    token_record_clear(&t);
    token_store_detach(&ts);
}

/* The JWT's exp claim shortens the stored expiry, never lengthens it; opaque tokens and JWTs
 * without exp keep the stored one. */
static void test_time_left_from_exp(void **state)
{
    (void)state;
    static const char exp_1000[] = "eyJhbGciOiJub25lIn0.eyJleHAiOjEwMDB9.c2ln";
    static const char no_exp[] = "eyJhbGciOiJub25lIn0.eyJpYXQiOjEwMDB9.c2ln";
    size_t n = strlen(exp_1000);
    assert_int_equal(token_store_time_left(exp_1000, n, 3600, 2000), -1000); /* expired */
    assert_int_equal(token_store_time_left(exp_1000, n, 3600, 900), 100);
    assert_int_equal(token_store_time_left(exp_1000, n, 50, 900), 50);
    assert_int_equal(token_store_time_left(no_exp, strlen(no_exp), 3600, 2000), 3600);
    assert_int_equal(token_store_time_left("ya29.opaque", 11, 3600, 2000), 3600);
}

int main(void)
{
    log_init("test", MG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_by_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist, setup, teardown),
        cmocka_unit_test(test_time_left_from_exp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
