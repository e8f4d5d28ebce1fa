/* Unit tests of grant_store.c: sealed refresh tokens in the store, revocation and forgetting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grant_store.h"
#include "log.h"
#include "secretbox.h"
#include "store.h"
#include "util.h"

static const char refresh[] = "0.AXoA-refresh-token-secret-body_1234567890";

struct fixture {
    char dir[64];
    struct store *st;
    struct secretbox *box;
};

static int setup(void **state)
{
    struct fixture *f = mg_calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/mg-test-grant-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char err[256] = "";
    f->st = store_open(f->dir, err, sizeof err);
    uint8_t key[SECRETBOX_KEY_LEN];
    mg_random_bytes(key, sizeof key);
    f->box = secretbox_from_key(key);
    log_init("test", MG_LOG_ERROR);
    *state = f;
    return f->st ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(&f->st);
    secretbox_free(&f->box);
    char *cmd = mg_printf("rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void test_context(void **state)
{
    (void)state;
    char *ad = grant_store_context("entra", "Alice@Example.TEST");
    assert_string_equal(ad, "refresh:entra:alice@example.test");
    free(ad);
    char *principal = grant_store_principal("Bob");
    assert_string_equal(principal, "user:bob");
    free(principal);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    size_t len = 0;
    assert_null(grant_store_load(f->st, f->box, "entra", "alice", &len));
    assert_int_equal(grant_store_save(f->st, f->box, "entra", "alice", refresh, strlen(refresh)),
                     0);
    /* Sealed in the store: the plaintext is nowhere in the row. */
    struct grant_record g;
    assert_int_equal(store_grant_get(f->st, "alice", "entra", &g), STORE_OK);
    assert_int_equal(g.sealed_len, strlen(refresh) + SECRETBOX_OVERHEAD);
    assert_null(memmem(g.sealed, g.sealed_len, "refresh-token", 13));
    grant_record_clear(&g);
    char *got = grant_store_load(f->st, f->box, "entra", "ALICE", &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(refresh));
    assert_string_equal(got, refresh);
    mg_free_secret(&got);
    /* Bound to the provider and user: another key opens nothing. */
    assert_null(grant_store_load(f->st, f->box, "google", "alice", &len));
    uint8_t key[SECRETBOX_KEY_LEN] = {1};
    struct secretbox *other = secretbox_from_key(key);
    assert_null(grant_store_load(f->st, other, "entra", "alice", &len));
    secretbox_free(&other);
    /* A rotated refresh token replaces the old one. */
    assert_int_equal(grant_store_save(f->st, f->box, "entra", "alice", "rotated", 7), 0);
    got = grant_store_load(f->st, f->box, "entra", "alice", &len);
    assert_string_equal(got, "rotated");
    mg_free_secret(&got);
}

/* A row moved to another user does not open (the associated data names the user). */
static void test_row_bound_to_user(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(grant_store_save(f->st, f->box, "entra", "alice", refresh, strlen(refresh)),
                     0);
    struct grant_record g;
    assert_int_equal(store_grant_get(f->st, "alice", "entra", &g), STORE_OK);
    free(g.user);
    g.user = mg_strdup("mallory");
    assert_int_equal(store_grant_put(f->st, &g), STORE_OK);
    grant_record_clear(&g);
    size_t len = 0;
    assert_null(grant_store_load(f->st, f->box, "entra", "mallory", &len));
}

static int count_audit(const struct audit_record *a, void *arg)
{
    assert_string_equal(a->event, "refresh_token_revoked");
    assert_string_equal(a->user, "alice");
    assert_string_equal(a->provider, "entra");
    assert_string_equal(a->detail, "invalid_grant: AADSTS50173: revoked");
    (*(int *)arg)++;
    return 0;
}

static void test_revoke(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(grant_store_save(f->st, f->box, "entra", "alice", refresh, strlen(refresh)),
                     0);
    grant_store_revoke(f->st, "entra", "alice", "invalid_grant: AADSTS50173: revoked");
    size_t len = 0;
    assert_null(grant_store_load(f->st, f->box, "entra", "alice", &len));
    struct grant_record g;
    assert_int_equal(store_grant_get(f->st, "alice", "entra", &g), STORE_OK);
    assert_int_equal(g.state, GRANT_NEEDS_AUTHORIZATION);
    assert_null(g.sealed);
    grant_record_clear(&g);
    int n = 0;
    assert_int_equal(store_audit_list(f->st, 0, NULL, count_audit, &n), STORE_OK);
    assert_int_equal(n, 1);
    /* Authorizing again brings it back. */
    assert_int_equal(grant_store_save(f->st, f->box, "entra", "alice", "new", 3), 0);
    char *got = grant_store_load(f->st, f->box, "entra", "alice", &len);
    assert_string_equal(got, "new");
    mg_free_secret(&got);
}

static void test_forget(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(grant_store_forget(f->st, "alice"), STORE_NOT_FOUND);
    assert_int_equal(grant_store_save(f->st, f->box, "entra", "alice", refresh, strlen(refresh)),
                     0);
    uint8_t blob[] = {1};
    struct token_record t = {.provider = "entra",
                             .principal = "user:alice",
                             .scope = "s",
                             .sealed = blob,
                             .sealed_len = 1,
                             .expires_at = 1};
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    assert_int_equal(grant_store_forget(f->st, "Alice"), STORE_OK);
    struct token_record got;
    assert_int_equal(store_token_get(f->st, "entra", "user:alice", "s", &got), STORE_NOT_FOUND);
    struct grant_record g;
    assert_int_equal(store_grant_get(f->st, "alice", "entra", &g), STORE_NOT_FOUND);
    /* Only cached tokens left: still something forgotten. */
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    assert_int_equal(grant_store_forget(f->st, "alice"), STORE_OK);
    assert_int_equal(grant_store_forget(f->st, "alice"), STORE_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_bound_to_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
