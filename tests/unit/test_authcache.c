/* Tests for the auth cache (authcache.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "authcache.h"

#define HASH_A                                                                                     \
    "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B                                                                                     \
    "$argon2id$v=19$m=65536,t=3,p=1$b3RoZXJzYWx0MTIz$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define TTL 60000
#define T0 1000000

static int check(struct auth_cache *c, const char *user, const char *hash, const char *pw,
                 uint64_t now)
{
    return auth_cache_check(c, user, hash, pw, strlen(pw), now);
}

static void remember(struct auth_cache *c, const char *user, const char *hash, const char *pw,
                     uint64_t now)
{
    auth_cache_remember(c, user, hash, pw, strlen(pw), now);
}

static int setup(void **state)
{
    *state = auth_cache_new(TTL, 100);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    struct auth_cache *c = *state;
    auth_cache_free(&c);
    assert_null(c);
    return 0;
}

static void test_empty_cache_misses(void **state)
{
    struct auth_cache *c = *state;
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0), 0);
    assert_int_equal(auth_cache_size(c), 0);
}

static void test_remember_then_hit(void **state)
{
    struct auth_cache *c = *state;
    remember(c, "alice", HASH_A, "secret", T0);
    assert_int_equal(auth_cache_size(c), 1);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0 + 1), 1);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0 + TTL - 1), 1);
}

static void test_wrong_password_misses(void **state)
{
    struct auth_cache *c = *state;
    remember(c, "alice", HASH_A, "secret", T0);
    assert_int_equal(check(c, "alice", HASH_A, "Secret", T0), 0);
    assert_int_equal(check(c, "alice", HASH_A, "secre", T0), 0);
    assert_int_equal(check(c, "alice", HASH_A, "secret ", T0), 0);
    assert_int_equal(check(c, "alice", HASH_A, "", T0), 0);
    /* A miss does not drop the good entry. */
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0), 1);
}

static void test_password_bytes_after_nul_count(void **state)
{
    struct auth_cache *c = *state;
    auth_cache_remember(c, "alice", HASH_A, "ab\0cd", 5, T0);
    assert_int_equal(auth_cache_check(c, "alice", HASH_A, "ab\0cd", 5, T0), 1);
    assert_int_equal(auth_cache_check(c, "alice", HASH_A, "ab\0ce", 5, T0), 0);
    assert_int_equal(auth_cache_check(c, "alice", HASH_A, "ab", 2, T0), 0);
}

static void test_changed_hash_misses(void **state)
{
    struct auth_cache *c = *state;
    remember(c, "alice", HASH_A, "secret", T0);
    /* The password was changed (or the user deleted and re-added): new hash, old entry useless. */
    assert_int_equal(check(c, "alice", HASH_B, "secret", T0), 0);
    remember(c, "alice", HASH_B, "newsecret", T0 + 5);
    assert_int_equal(auth_cache_size(c), 1);
    assert_int_equal(check(c, "alice", HASH_B, "newsecret", T0 + 6), 1);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0 + 6), 0);
}

static void test_other_user_misses(void **state)
{
    struct auth_cache *c = *state;
    remember(c, "alice", HASH_A, "secret", T0);
    assert_int_equal(check(c, "bob", HASH_A, "secret", T0), 0);
    assert_int_equal(check(c, "alic", HASH_A, "secret", T0), 0);
    assert_int_equal(check(c, "alice2", HASH_A, "secret", T0), 0);
}

static void test_ttl_expiry(void **state)
{
    struct auth_cache *c = *state;
    remember(c, "alice", HASH_A, "secret", T0);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0 + TTL - 1), 1);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0 + TTL), 0);
    /* The expired entry is dropped on sight. */
    assert_int_equal(auth_cache_size(c), 0);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0), 0);
}

static void test_remember_again_extends_ttl(void **state)
{
    struct auth_cache *c = *state;
    remember(c, "alice", HASH_A, "secret", T0);
    remember(c, "alice", HASH_A, "secret", T0 + TTL / 2);
    assert_int_equal(auth_cache_size(c), 1);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0 + TTL + 1), 1);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0 + TTL / 2 + TTL), 0);
}

static void test_forget(void **state)
{
    struct auth_cache *c = *state;
    remember(c, "alice", HASH_A, "secret", T0);
    remember(c, "bob", HASH_B, "hunter2", T0);
    auth_cache_forget(c, "ALICE");
    assert_int_equal(auth_cache_size(c), 1);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0), 0);
    assert_int_equal(check(c, "bob", HASH_B, "hunter2", T0), 1);
    auth_cache_forget(c, "nobody"); /* harmless */
    assert_int_equal(auth_cache_size(c), 1);
}

static void test_case_insensitive_user(void **state)
{
    struct auth_cache *c = *state;
    remember(c, "Alice", HASH_A, "secret", T0);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0), 1);
    assert_int_equal(check(c, "ALICE", HASH_A, "secret", T0), 1);
    remember(c, "ALICE", HASH_A, "secret", T0);
    assert_int_equal(auth_cache_size(c), 1);
}

static void test_capacity_evicts_oldest(void **state)
{
    (void)state;
    struct auth_cache *c = auth_cache_new(TTL, 3);
    assert_non_null(c);
    remember(c, "u1", HASH_A, "p1", T0);
    remember(c, "u2", HASH_A, "p2", T0 + 1);
    remember(c, "u3", HASH_A, "p3", T0 + 2);
    /* Refreshing u1 makes u2 the oldest. */
    remember(c, "u1", HASH_A, "p1", T0 + 3);
    remember(c, "u4", HASH_A, "p4", T0 + 4);
    assert_int_equal(auth_cache_size(c), 3);
    assert_int_equal(check(c, "u2", HASH_A, "p2", T0 + 5), 0);
    assert_int_equal(check(c, "u1", HASH_A, "p1", T0 + 5), 1);
    assert_int_equal(check(c, "u3", HASH_A, "p3", T0 + 5), 1);
    assert_int_equal(check(c, "u4", HASH_A, "p4", T0 + 5), 1);
    auth_cache_free(&c);
}

static void test_expired_entries_make_room_first(void **state)
{
    (void)state;
    struct auth_cache *c = auth_cache_new(TTL, 3);
    assert_non_null(c);
    remember(c, "u1", HASH_A, "p1", T0);
    remember(c, "u2", HASH_A, "p2", T0 + TTL / 2);
    remember(c, "u3", HASH_A, "p3", T0 + TTL / 2);
    /* u1 has expired: it goes, u2 and u3 stay although the cache was full. */
    remember(c, "u4", HASH_A, "p4", T0 + TTL + 1);
    assert_int_equal(auth_cache_size(c), 3);
    assert_int_equal(check(c, "u2", HASH_A, "p2", T0 + TTL + 2), 1);
    assert_int_equal(check(c, "u3", HASH_A, "p3", T0 + TTL + 2), 1);
    assert_int_equal(check(c, "u4", HASH_A, "p4", T0 + TTL + 2), 1);
    auth_cache_free(&c);
}

static void test_many_users(void **state)
{
    (void)state;
    enum { N = 5000, MAX = 1000 };
    struct auth_cache *c = auth_cache_new(TTL, MAX);
    assert_non_null(c);
    char user[32], pw[32];
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof user, "user%d", i);
        snprintf(pw, sizeof pw, "pw%d", i);
        remember(c, user, HASH_A, pw, T0 + (uint64_t)i);
    }
    assert_int_equal(auth_cache_size(c), MAX);
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof user, "USER%d", i);
        snprintf(pw, sizeof pw, "pw%d", i);
        assert_int_equal(check(c, user, HASH_A, pw, T0 + N), i >= N - MAX);
    }
    auth_cache_free(&c);
}

static void test_disabled_cache_remembers_nothing(void **state)
{
    (void)state;
    struct auth_cache *c = auth_cache_new(0, 100);
    assert_non_null(c);
    remember(c, "alice", HASH_A, "secret", T0);
    assert_int_equal(auth_cache_size(c), 0);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0), 0);
    auth_cache_free(&c);
    c = auth_cache_new(TTL, 0);
    assert_non_null(c);
    remember(c, "alice", HASH_A, "secret", T0);
    assert_int_equal(check(c, "alice", HASH_A, "secret", T0), 0);
    auth_cache_free(&c);
}

static void test_two_caches_do_not_share_keys(void **state)
{
    struct auth_cache *c = *state;
    struct auth_cache *other = auth_cache_new(TTL, 100);
    remember(c, "alice", HASH_A, "secret", T0);
    assert_int_equal(check(other, "alice", HASH_A, "secret", T0), 0);
    auth_cache_free(&other);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_cache_misses),
        T(test_remember_then_hit),
        T(test_wrong_password_misses),
        T(test_password_bytes_after_nul_count),
        T(test_changed_hash_misses),
        T(test_other_user_misses),
        T(test_ttl_expiry),
        T(test_remember_again_extends_ttl),
        T(test_forget),
        T(test_case_insensitive_user),
        cmocka_unit_test(test_capacity_evicts_oldest),
        cmocka_unit_test(test_expired_entries_make_room_first),
        cmocka_unit_test(test_many_users),
        cmocka_unit_test(test_disabled_cache_remembers_nothing),
        T(test_two_caches_do_not_share_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
