/* Tests for the Argon2id verify pool (verify_pool.c): results come back on the loop thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <argon2.h>
#include <pthread.h>
#include <string.h>

#include <event2/event.h>

#include "password.h"
#include "verify_pool.h"

#define N_JOBS 12

struct outcome {
    int result;
    int calls;
    pthread_t thread;
    int *remaining;
    struct event_base *base;
};

/* Cheap parameters (the encoded string carries them) so that the test runs fast. */
static void make_hash(const char *pw, char *out, size_t outlen)
{
    static const unsigned char salt[16] = "0123456789abcdef";
    int rc = argon2id_hash_encoded(1, 64, 1, pw, strlen(pw), salt, sizeof salt, 16, out, outlen);
    assert_int_equal(rc, ARGON2_OK);
}

static void on_done(int result, void *arg)
{
    struct outcome *o = arg;
    o->result = result;
    o->calls++;
    o->thread = pthread_self();
    if (--*o->remaining == 0)
        event_base_loopbreak(o->base);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Runs the loop until every callback ran or 10 s passed. */
static void run_loop(struct event_base *base)
{
    struct event *timeout = evtimer_new(base, on_timeout, base);
    struct timeval tv = {10, 0};
    evtimer_add(timeout, &tv);
    event_base_dispatch(base);
    event_free(timeout);
}

static void test_results_come_back_on_the_loop_thread(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct verify_pool *vp = verify_pool_new(base, 3);
    assert_non_null(vp);
    char hash[PASSWORD_HASH_MAX];
    make_hash("right password", hash, sizeof hash);

    struct outcome out[N_JOBS];
    int remaining = N_JOBS;
    memset(out, 0, sizeof out);
    for (int i = 0; i < N_JOBS; i++) {
        out[i].remaining = &remaining;
        out[i].base = base;
        out[i].result = 42;
        const char *pw = i % 3 == 0 ? "right password" : i % 3 == 1 ? "wrong password" : "";
        const char *h = i == N_JOBS - 1 ? "$argon2id$garbage" : hash;
        assert_int_equal(verify_pool_submit(vp, h, pw, strlen(pw), on_done, &out[i]), 0);
    }
    /* Nothing is called back synchronously. */
    for (int i = 0; i < N_JOBS; i++)
        assert_int_equal(out[i].calls, 0);

    run_loop(base);
    assert_int_equal(remaining, 0);
    for (int i = 0; i < N_JOBS; i++) {
        int expected = i == N_JOBS - 1 ? -1 : i % 3 == 0 ? 1 : 0;
        assert_int_equal(out[i].calls, 1);
        assert_int_equal(out[i].result, expected);
        assert_true(pthread_equal(out[i].thread, pthread_self()));
    }
    verify_pool_free(&vp);
    assert_null(vp);
    event_base_free(base);
}

static void test_free_drops_pending_jobs_without_callbacks(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct verify_pool *vp = verify_pool_new(base, 1);
    assert_non_null(vp);
    char hash[PASSWORD_HASH_MAX];
    make_hash("pw", hash, sizeof hash);
    struct outcome out[N_JOBS];
    int remaining = N_JOBS;
    memset(out, 0, sizeof out);
    for (int i = 0; i < N_JOBS; i++) {
        out[i].remaining = &remaining;
        out[i].base = base;
        assert_int_equal(verify_pool_submit(vp, hash, "pw", 2, on_done, &out[i]), 0);
    }
    verify_pool_free(&vp);
    /* The loop has nothing left that could call back. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < N_JOBS; i++)
        assert_int_equal(out[i].calls, 0);
    event_base_free(base);
}

static void test_bad_arguments_are_refused(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct verify_pool *vp = verify_pool_new(base, 0); /* clamped to one thread */
    assert_non_null(vp);
    struct outcome o = {0};
    assert_int_equal(verify_pool_submit(vp, NULL, "pw", 2, on_done, &o), -1);
    assert_int_equal(verify_pool_submit(vp, "$argon2id$x", "pw", 2, NULL, &o), -1);
    assert_int_equal(verify_pool_submit(NULL, "$argon2id$x", "pw", 2, on_done, &o), -1);
    verify_pool_free(&vp);
    verify_pool_free(&vp); /* idempotent */
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_come_back_on_the_loop_thread),
        cmocka_unit_test(test_free_drops_pending_jobs_without_callbacks),
        cmocka_unit_test(test_bad_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
