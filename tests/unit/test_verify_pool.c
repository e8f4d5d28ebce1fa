/* Tests for the Argon2id verify pool (verify_pool.c): results come back on the loop thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <argon2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static struct verify_ticket *submit(struct verify_pool *vp, const char *user, const char *hash,
                                    const char *pw, verify_done_cb cb, void *arg)
{
    struct verify_request req = {.user = user, .hash = hash, .pw = pw, .len = pw ? strlen(pw) : 0};
    return verify_pool_submit(vp, &req, cb, arg);
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
        char user[16];
        snprintf(user, sizeof user, "user%d", i);
        assert_non_null(submit(vp, user, h, pw, on_done, &out[i]));
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
        char pw[16];
        snprintf(pw, sizeof pw, "pw%d", i);
        assert_non_null(submit(vp, "u", hash, pw, on_done, &out[i]));
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
    assert_null(submit(vp, "u", NULL, "pw", on_done, &o));
    assert_null(submit(vp, NULL, "$argon2id$x", "pw", on_done, &o));
    assert_null(submit(vp, "u", "$argon2id$x", "pw", NULL, &o));
    assert_null(submit(NULL, "u", "$argon2id$x", "pw", on_done, &o));
    verify_pool_free(&vp);
    verify_pool_free(&vp); /* idempotent */
    event_base_free(base);
}

/* ---- scheduling, sharing, cancelling ---- */

/* Completion order of the callbacks (1 thread: the order the jobs ran in). */
struct ordered {
    int result, calls, order;
    int *next_order, *remaining;
    struct event_base *base;
};

static void on_ordered(int result, void *arg)
{
    struct ordered *o = arg;
    o->result = result;
    o->calls++;
    o->order = (*o->next_order)++;
    if (--*o->remaining == 0)
        event_base_loopbreak(o->base);
}

/* A verification slow enough (16 MiB, 2 passes) that the single thread is busy with it while
 * the test queues the rest. */
static void make_slow_hash(char *out, size_t outlen)
{
    static const unsigned char salt[16] = "fedcba9876543210";
    int rc = argon2id_hash_encoded(2, 16384, 1, "slow", 4, salt, sizeof salt, 16, out, outlen);
    assert_int_equal(rc, ARGON2_OK);
}

struct fixture {
    struct event_base *base;
    struct verify_pool *vp;
    char hash[PASSWORD_HASH_MAX], slow[PASSWORD_HASH_MAX];
    struct ordered o[16];
    int next_order, remaining;
};

static struct fixture *fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    f->vp = verify_pool_new(f->base, 1);
    make_hash("right", f->hash, sizeof f->hash);
    make_slow_hash(f->slow, sizeof f->slow);
    for (int i = 0; i < 16; i++) {
        f->o[i].next_order = &f->next_order;
        f->o[i].remaining = &f->remaining;
        f->o[i].base = f->base;
        f->o[i].order = -1;
    }
    return f;
}

static struct verify_ticket *fixture_submit(struct fixture *f, int i, const char *user,
                                            const char *hash, const char *pw)
{
    f->remaining++;
    return submit(f->vp, user, hash, pw, on_ordered, &f->o[i]);
}

/* Every counter of the pool's stats. */
static void assert_stats(struct fixture *f, uint64_t computations, uint64_t shared,
                         uint64_t prechecked, uint64_t dropped)
{
    struct verify_stats st;
    verify_pool_stats(f->vp, &st);
    assert_int_equal(st.computations, computations);
    assert_int_equal(st.shared, shared);
    assert_int_equal(st.prechecked, prechecked);
    assert_int_equal(st.dropped, dropped);
}

static void fixture_free(struct fixture *f)
{
    verify_pool_free(&f->vp);
    event_base_free(f->base);
    free(f);
}

/* Five guesses for alice are queued before bob's login: bob's runs second, not sixth. */
static void test_users_are_served_round_robin(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    assert_non_null(fixture_submit(f, 0, "blocker", f->slow, "slow"));
    char pw[16];
    for (int i = 1; i <= 5; i++) {
        snprintf(pw, sizeof pw, "guess%d", i);
        assert_non_null(fixture_submit(f, i, "Alice", f->hash, pw));
    }
    assert_non_null(fixture_submit(f, 6, "bob", f->hash, "right"));
    run_loop(f->base);
    assert_int_equal(f->remaining, 0);
    assert_int_equal(f->o[6].result, 1);
    assert_true(f->o[6].order < f->o[3].order); /* before alice's third guess */
    fixture_free(f);
}

/* Equal requests (user without case, hash, password) share one verification. */
static void test_equal_requests_share_one_verification(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    assert_non_null(fixture_submit(f, 0, "blocker", f->slow, "slow"));
    for (int i = 1; i <= 5; i++)
        assert_non_null(fixture_submit(f, i, i % 2 ? "carol" : "CAROL", f->hash, "right"));
    assert_non_null(fixture_submit(f, 6, "carol", f->hash, "wrong"));
    run_loop(f->base);
    assert_stats(f, 3, 4, 0, 0); /* computed: blocker, carol's right, carol's wrong */
    for (int i = 1; i <= 5; i++)
        assert_int_equal(f->o[i].result, 1);
    assert_int_equal(f->o[6].result, 0);
    fixture_free(f);
}

/* Waits (without running the loop) until the pool has finished n verifications. */
static void wait_for_computations(struct verify_pool *vp, uint64_t n)
{
    struct verify_stats st;
    for (int i = 0; i < 10000; i++) {
        verify_pool_stats(vp, &st);
        if (st.computations >= n)
            return;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    fail_msg("the pool did not finish %llu verification(s) in 10 s", (unsigned long long)n);
}

/* An equal request that arrives after the verification ended but before the loop answered it
 * (so before the broker's auth cache learned the password) joins it: no second Argon2. */
static void test_equal_request_joins_a_finished_verification(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    assert_non_null(fixture_submit(f, 0, "hank", f->hash, "right"));
    wait_for_computations(f->vp, 1);
    assert_non_null(fixture_submit(f, 1, "hank", f->hash, "right"));
    run_loop(f->base);
    assert_int_equal(f->remaining, 0);
    assert_int_equal(f->o[0].result, 1);
    assert_int_equal(f->o[1].result, 1);
    assert_stats(f, 1, 1, 0, 0);
    fixture_free(f);
}

/* A cancelled ticket is never answered; a queued verification nobody waits for is dropped,
 * one that another login shares still runs. */
static void test_cancel_drops_queued_verifications(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    assert_non_null(fixture_submit(f, 0, "blocker", f->slow, "slow"));
    struct verify_ticket *gone1 = fixture_submit(f, 1, "dave", f->hash, "a");
    struct verify_ticket *gone2 = fixture_submit(f, 2, "dave", f->hash, "b");
    struct verify_ticket *shared = fixture_submit(f, 3, "erin", f->hash, "right");
    assert_non_null(fixture_submit(f, 4, "erin", f->hash, "right"));
    verify_pool_cancel(f->vp, gone1);
    verify_pool_cancel(f->vp, gone2);
    verify_pool_cancel(f->vp, shared);
    f->remaining -= 3;
    run_loop(f->base);
    assert_int_equal(f->remaining, 0);
    assert_int_equal(f->o[1].calls + f->o[2].calls + f->o[3].calls, 0);
    assert_int_equal(f->o[4].result, 1);
    assert_stats(f, 2, 1, 0, 2); /* computed: blocker, erin */
    fixture_free(f);
}

static int known_frank(const char *user, const char *hash, const char *pw, size_t len, void *arg)
{
    (void)hash, (void)pw, (void)len, (void)arg;
    return strcmp(user, "frank") == 0;
}

/* The precheck (the auth cache) runs as a queued job starts: no Argon2 when it knows. */
static void test_precheck_skips_argon2(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    verify_pool_set_precheck(f->vp, known_frank, NULL);
    assert_non_null(fixture_submit(f, 0, "frank", f->hash, "not checked"));
    assert_non_null(fixture_submit(f, 1, "gina", f->hash, "wrong"));
    run_loop(f->base);
    assert_int_equal(f->o[0].result, 1);
    assert_int_equal(f->o[1].result, 0);
    assert_stats(f, 1, 0, 1, 0);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_come_back_on_the_loop_thread),
        cmocka_unit_test(test_free_drops_pending_jobs_without_callbacks),
        cmocka_unit_test(test_bad_arguments_are_refused),
        cmocka_unit_test(test_users_are_served_round_robin),
        cmocka_unit_test(test_equal_requests_share_one_verification),
        cmocka_unit_test(test_equal_request_joins_a_finished_verification),
        cmocka_unit_test(test_cancel_drops_queued_verifications),
        cmocka_unit_test(test_precheck_skips_argon2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
