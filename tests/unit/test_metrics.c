/* Tests for the operation counters: histograms (metrics.c), their IPC messages (ipc.c: round
 * trip, strict decoding) and the broker's totals and health verdict (broker_metrics.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <event2/buffer.h>

#include "broker_metrics.h"
#include "ipc.h"
#include "lockout.h"
#include "metrics.h"
#include "token.h"
#include "verify_pool.h"

/* broker_metrics_answer()'s sources, which these tests do not call. */
uint64_t token_client_cache_hits(const struct token_client *tc)
{
    (void)tc;
    return 0;
}

void verify_pool_stats(struct verify_pool *vp, struct verify_stats *out)
{
    (void)vp;
    memset(out, 0, sizeof *out);
}

uint64_t lockouts_started(const struct lockouts *l)
{
    (void)l;
    return 0;
}

static void test_observe_buckets(void **state)
{
    (void)state;
    struct metrics_histogram h = {0};
    metrics_observe(&h, 0);     /* <= 5 ms */
    metrics_observe(&h, 5);     /* the bound itself belongs to its bucket */
    metrics_observe(&h, 6);     /* <= 10 ms */
    metrics_observe(&h, 60000); /* above every bound: only in the count */
    assert_int_equal(h.buckets[0], 2);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.count, 4);
    assert_int_equal(h.sum_ms, 60011);
}

static void test_login_result_words(void **state)
{
    (void)state;
    assert_int_equal(metrics_login_result_of("ok"), METRICS_LOGIN_OK);
    assert_int_equal(metrics_login_result_of("refused"), METRICS_LOGIN_REFUSED);
    assert_int_equal(metrics_login_result_of("whatever"), METRICS_LOGIN_ERROR);
    assert_null(metrics_login_result_name(METRICS_LOGIN_RESULTS));
    assert_string_equal(metrics_token_result_name(3), "needs_auth");
}

static struct metrics_snapshot sample_snapshot(void)
{
    struct metrics_snapshot s;
    memset(&s, 0, sizeof s);
    s.worker_index = 3;
    s.sessions_open[1] = 2;
    s.c.logins[0][METRICS_LOGIN_OK] = 5;
    s.c.bytes_to_client = UINT64_MAX;
    s.c.dns_cache_hits = 8;
    s.c.dns_cache_misses = 1;
    metrics_observe(&s.c.upstream_connect, 42);
    metrics_observe(&s.c.upstream_login, 99999);
    return s;
}

static int round_trip(int (*encode)(struct evbuffer *, const void *), const void *in,
                      struct ipc_msg *out)
{
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(encode(b, in), 0);
    int rc = ipc_decode(b, out);
    assert_int_equal(evbuffer_get_length(b), 0);
    evbuffer_free(b);
    return rc;
}

static int encode_snapshot(struct evbuffer *b, const void *m)
{
    return ipc_encode_metrics_snapshot(b, m);
}

static int encode_report(struct evbuffer *b, const void *m)
{
    return ipc_encode_metrics_report(b, m);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    struct metrics_snapshot s = sample_snapshot();
    struct ipc_msg msg;
    assert_int_equal(round_trip(encode_snapshot, &s, &msg), 1);
    assert_int_equal(msg.type, IPC_METRICS_SNAPSHOT);
    assert_memory_equal(&msg.u.snapshot, &s, sizeof s);
}

static void test_report_round_trip(void **state)
{
    (void)state;
    static struct metrics_report r, *got;
    memset(&r, 0, sizeof r);
    r.id = 77;
    strcpy(r.health, "worker 1 has not reported for 4000 ms");
    r.totals = sample_snapshot().c;
    r.n_workers = METRICS_WORKERS_MAX;
    r.workers[63].index = 63;
    r.workers[63].sessions_open[2] = 9;
    r.n_providers = METRICS_PROVIDERS_MAX;
    strcpy(r.providers[0].name, "contoso \"eu\"\\");
    r.providers[31].requests[4] = 12;
    r.lockouts = 3;
    static struct ipc_msg msg;
    assert_int_equal(round_trip(encode_report, &r, &msg), 1);
    assert_int_equal(msg.type, IPC_METRICS_REPORT);
    got = &msg.u.report;
    assert_memory_equal(got, &r, sizeof r);
}

static void test_report_limits_are_refused(void **state)
{
    (void)state;
    static struct metrics_report r;
    memset(&r, 0, sizeof r);
    r.n_workers = METRICS_WORKERS_MAX + 1;
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(ipc_encode_metrics_report(b, &r), -1);
    r.n_workers = 0;
    r.healthy = 2;
    assert_int_equal(ipc_encode_metrics_report(b, &r), -1);
    assert_int_equal(evbuffer_get_length(b), 0);
    evbuffer_free(b);
}

/* Decoding is strict: a histogram whose buckets hold more than its count, a count of entries
 * past the array, a draining flag other than 0/1, a short body. */
static void test_bad_bodies(void **state)
{
    (void)state;
    struct metrics_snapshot s = sample_snapshot();
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(ipc_encode_metrics_snapshot(b, &s), 0);
    size_t len = evbuffer_get_length(b) - 4;
    unsigned char body[IPC_MAX_FRAME];
    evbuffer_copyout(b, body, 4); /* the length prefix */
    evbuffer_drain(b, 4);
    evbuffer_remove(b, body, len);
    evbuffer_free(b);
    static struct ipc_msg msg;
    assert_int_equal(ipc_decode_body(body, len, &msg), 1);
    assert_int_equal(ipc_decode_body(body, len - 1, &msg), -1);
    unsigned char bad[IPC_MAX_FRAME];
    memcpy(bad, body, len);
    bad[1 + 4 + 3] = 2; /* draining = 2 */
    assert_int_equal(ipc_decode_body(bad, len, &msg), -1);
    /* upstream_connect's first bucket (after index, draining, 3 sessions, 15 logins, 2 bytes)
     * says 2 observations when the count says 1 */
    memcpy(bad, body, len);
    size_t bucket0 = 1 + 4 * 5 + 8 * 17;
    bad[bucket0 + 7] = 2;
    assert_int_equal(ipc_decode_body(bad, len, &msg), -1);
    unsigned char query[] = {IPC_METRICS_QUERY, 0, 0, 0};
    assert_int_equal(ipc_decode_body(query, sizeof query, &msg), -1);
}

static struct metrics_snapshot snapshot_with_logins(uint64_t n, uint32_t draining)
{
    struct metrics_snapshot s;
    memset(&s, 0, sizeof s);
    s.draining = draining;
    s.c.logins[0][0] = n;
    return s;
}

static void test_broker_keeps_totals_of_gone_workers(void **state)
{
    (void)state;
    struct broker_metrics *m = broker_metrics_new();
    struct metrics_snapshot a = snapshot_with_logins(5, 0), b = snapshot_with_logins(7, 0);
    broker_metrics_snapshot(m, 0, &a, 1000);
    broker_metrics_snapshot(m, 1, &b, 1000);
    static struct metrics_report r;
    memset(&r, 0, sizeof r);
    broker_metrics_report(m, 2, 1500, &r);
    assert_int_equal(r.totals.logins[0][0], 12);
    assert_int_equal(r.n_workers, 2);
    assert_true(r.healthy);
    assert_string_equal(r.health, "ok");
    /* worker 1 dies: its 7 stay; its restart starts from 0 */
    broker_metrics_retire(m, 1);
    memset(&r, 0, sizeof r);
    broker_metrics_report(m, 2, 1500, &r);
    assert_int_equal(r.totals.logins[0][0], 12);
    assert_false(r.healthy);
    assert_string_equal(r.health, "1 of 2 workers running");
    struct metrics_snapshot again = snapshot_with_logins(1, 0);
    broker_metrics_snapshot(m, 1, &again, 2000);
    memset(&r, 0, sizeof r);
    broker_metrics_report(m, 2, 2000, &r);
    assert_int_equal(r.totals.logins[0][0], 13);
    broker_metrics_free(&m);
    assert_null(m);
}

static void test_broker_health(void **state)
{
    (void)state;
    struct broker_metrics *m = broker_metrics_new();
    struct metrics_snapshot live = snapshot_with_logins(0, 0), old = snapshot_with_logins(0, 1);
    broker_metrics_snapshot(m, 0, &live, 1000);
    broker_metrics_snapshot(m, 5, &old, 0); /* draining after a reload: not a slot */
    static struct metrics_report r;
    memset(&r, 0, sizeof r);
    broker_metrics_report(m, 1, 1000 + BROKER_METRICS_STALE_MS, &r);
    assert_true(r.healthy);
    memset(&r, 0, sizeof r);
    broker_metrics_report(m, 1, 1001 + BROKER_METRICS_STALE_MS, &r);
    assert_false(r.healthy);
    assert_string_equal(r.health, "worker 0 has not reported for 3001 ms");
    broker_metrics_free(&m);
}

static void test_broker_token_requests(void **state)
{
    (void)state;
    struct broker_metrics *m = broker_metrics_new();
    broker_metrics_token_request(m, "contoso", 0);
    broker_metrics_token_request(m, "contoso", 0);
    broker_metrics_token_request(m, "fabrikam", 1);
    broker_metrics_token_request(m, "fabrikam", METRICS_TOKEN_RESULTS); /* ignored */
    static struct metrics_report r;
    memset(&r, 0, sizeof r);
    broker_metrics_report(m, 0, 0, &r);
    assert_int_equal(r.n_providers, 2);
    assert_string_equal(r.providers[0].name, "contoso");
    assert_int_equal(r.providers[0].requests[0], 2);
    assert_int_equal(r.providers[1].requests[1], 1);
    broker_metrics_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observe_buckets),
        cmocka_unit_test(test_login_result_words),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_report_round_trip),
        cmocka_unit_test(test_report_limits_are_refused),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_broker_keeps_totals_of_gone_workers),
        cmocka_unit_test(test_broker_health),
        cmocka_unit_test(test_broker_token_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
