/* Tests for the login throttling counters (throttle.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "throttle.h"

static const struct throttle_policy policy = {.lockout_threshold = 3,
                                              .window_ms = 1000,
                                              .lockout_ms = 5000,
                                              .base_delay_ms = 100,
                                              .max_delay_ms = 1000,
                                              .max_in_flight = 2,
                                              .max_entries = 100};

static void fail_n(struct throttle *t, const char *user, const char *addr, int n, uint64_t now)
{
    for (int i = 0; i < n; i++)
        throttle_failure(t, user, addr, now);
}

static void test_lockout_after_threshold(void **state)
{
    (void)state;
    struct throttle *t = throttle_new(&policy);
    fail_n(t, "alice", "10.0.0.1:1111", 2, 0);
    assert_int_equal(throttle_admit(t, "alice", "10.0.0.1:2222", 10), THROTTLE_GO);
    throttle_release(t, "10.0.0.1:2222");
    struct throttle_outcome o = throttle_failure(t, "ALICE", "10.0.0.1:3333", 10);
    assert_true(o.locked_now);
    /* Any port of the address, any case of the name: locked; the ceiling delay. */
    assert_int_equal(throttle_admit(t, "Alice", "10.0.0.1:4444", 20), THROTTLE_LOCKED);
    assert_int_equal(throttle_failure(t, "alice", "10.0.0.1:1", 20).delay_ms, 1000);
    /* Another address, another user: not locked. */
    assert_int_equal(throttle_admit(t, "alice", "10.0.0.2:1", 20), THROTTLE_GO);
    assert_int_equal(throttle_admit(t, "bob", "10.0.0.1:1", 20), THROTTLE_GO);
    /* The lockout ends on its own. */
    assert_int_equal(throttle_admit(t, "alice", "10.0.0.1:1", 5010), THROTTLE_GO);
    throttle_free(&t);
}

static void test_window_forgets(void **state)
{
    (void)state;
    struct throttle *t = throttle_new(&policy);
    fail_n(t, "alice", "10.0.0.1:1", 2, 0);
    assert_false(throttle_failure(t, "alice", "10.0.0.1:1", 1500).locked_now);
    assert_false(throttle_failure(t, "alice", "10.0.0.1:1", 1600).locked_now);
    assert_true(throttle_failure(t, "alice", "10.0.0.1:1", 1700).locked_now);
    throttle_free(&t);
}

static void test_success_resets_and_unlock(void **state)
{
    (void)state;
    struct throttle *t = throttle_new(&policy);
    fail_n(t, "alice", "10.0.0.1:1", 2, 0);
    throttle_success(t, "alice", "10.0.0.1:1");
    assert_false(throttle_failure(t, "alice", "10.0.0.1:1", 1).locked_now);
    fail_n(t, "alice", "10.0.0.1:1", 2, 2);
    fail_n(t, "alice", "[2001:db8::1]:5", 3, 2);
    assert_int_equal(throttle_admit(t, "alice", "10.0.0.1:9", 3), THROTTLE_LOCKED);
    assert_int_equal(throttle_unlock(t, "alice", "2001:db8::1"), 1);
    assert_int_equal(throttle_admit(t, "alice", "[2001:db8::1]:6", 3), THROTTLE_GO);
    throttle_release(t, "[2001:db8::1]:6");
    assert_int_equal(throttle_unlock(t, "ALICE", NULL), 1);
    assert_int_equal(throttle_admit(t, "alice", "10.0.0.1:9", 3), THROTTLE_GO);
    throttle_free(&t);
}

static void test_delay_grows_to_ceiling(void **state)
{
    (void)state;
    struct throttle_policy p = policy;
    p.lockout_threshold = 0;
    struct throttle *t = throttle_new(&p);
    uint32_t expect[] = {0, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_int_equal(throttle_failure(t, "u", "1.1.1.1:1", 0).delay_ms, expect[i]);
    /* The address's count drives it too: another user from there is delayed at once. */
    assert_int_equal(throttle_failure(t, "v", "1.1.1.1:1", 0).delay_ms, 1000);
    throttle_free(&t);
}

static void test_in_flight_limit(void **state)
{
    (void)state;
    struct throttle *t = throttle_new(&policy);
    assert_int_equal(throttle_admit(t, "a", "1.1.1.1:1", 0), THROTTLE_GO);
    assert_int_equal(throttle_admit(t, "b", "1.1.1.1:2", 0), THROTTLE_GO);
    assert_int_equal(throttle_admit(t, "c", "1.1.1.1:3", 0), THROTTLE_BUSY);
    assert_int_equal(throttle_admit(t, "c", "1.1.1.2:3", 0), THROTTLE_GO);
    throttle_release(t, "1.1.1.1:1");
    assert_int_equal(throttle_admit(t, "c", "1.1.1.1:3", 0), THROTTLE_GO);
    throttle_free(&t);
}

static void test_bounded_and_swept(void **state)
{
    (void)state;
    struct throttle *t = throttle_new(&policy);
    char addr[32];
    for (int i = 0; i < 500; i++) {
        snprintf(addr, sizeof addr, "10.1.%d.%d:1", i / 256, i % 256);
        throttle_failure(t, "u", addr, 0);
    }
    assert_true(throttle_size(t) <= 100);
    /* After the window, idle entries make room again. */
    throttle_failure(t, "u", "10.9.9.9:1", 70000);
    assert_true(throttle_size(t) <= 3);
    throttle_free(&t);
}

static void test_address_part(void **state)
{
    (void)state;
    char out[64];
    throttle_address("1.2.3.4:5678", out, sizeof out);
    assert_string_equal(out, "1.2.3.4");
    throttle_address("[2001:db8::1]:993", out, sizeof out);
    assert_string_equal(out, "2001:db8::1");
    throttle_address("2001:db8::1", out, sizeof out);
    assert_string_equal(out, "2001:db8::1");
    throttle_address("1.2.3.4", out, sizeof out);
    assert_string_equal(out, "1.2.3.4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lockout_after_threshold),
        cmocka_unit_test(test_window_forgets),
        cmocka_unit_test(test_success_resets_and_unlock),
        cmocka_unit_test(test_delay_grows_to_ceiling),
        cmocka_unit_test(test_in_flight_limit),
        cmocka_unit_test(test_bounded_and_swept),
        cmocka_unit_test(test_address_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
