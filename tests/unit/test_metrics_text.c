/* Tests for the Prometheus text exposition (src/http/metrics_text.c): label escaping, counter
 * and histogram lines, HELP/TYPE before every family. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics_text.h"

static char *render(const struct metrics_report *r)
{
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(metrics_text_render(b, r), 0);
    size_t len = evbuffer_get_length(b);
    char *text = malloc(len + 1);
    evbuffer_remove(b, text, len);
    text[len] = '\0';
    evbuffer_free(b);
    return text;
}

static void test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t size;
        int rc;
        const char *out;
    } cases[] = {
        {"a\\b\"c\nd", 32, 0, "a\\\\b\\\"c\\nd"},
        {"plain", 32, 0, "plain"},
        {"", 1, 0, ""},
        /* too long: cut before a whole escape, terminated, -1 */
        {"\"\"\"", 6, -1, "\\\"\\\""},
    };
    char out[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(metrics_text_escape(cases[i].in, out, cases[i].size), cases[i].rc);
        assert_string_equal(out, cases[i].out);
    }
}

static void test_histogram_lines(void **state)
{
    (void)state;
    static struct metrics_report r;
    memset(&r, 0, sizeof r);
    metrics_observe(&r.totals.upstream_login, 3);
    metrics_observe(&r.totals.upstream_login, 120);
    metrics_observe(&r.totals.upstream_login, 20000);
    char *t = render(&r);
    assert_non_null(strstr(t, "# HELP mailgate_upstream_login_seconds "));
    assert_non_null(strstr(t, "# TYPE mailgate_upstream_login_seconds histogram\n"));
    assert_non_null(strstr(t, "mailgate_upstream_login_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(t, "mailgate_upstream_login_seconds_bucket{le=\"0.100\"} 1\n"));
    /* cumulative */
    assert_non_null(strstr(t, "mailgate_upstream_login_seconds_bucket{le=\"0.250\"} 2\n"));
    assert_non_null(strstr(t, "mailgate_upstream_login_seconds_bucket{le=\"10.000\"} 2\n"));
    assert_non_null(strstr(t, "mailgate_upstream_login_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "mailgate_upstream_login_seconds_sum 20.123\n"));
    assert_non_null(strstr(t, "mailgate_upstream_login_seconds_count 3\n"));
    free(t);
}

static void test_counters_and_labels(void **state)
{
    (void)state;
    static struct metrics_report r;
    memset(&r, 0, sizeof r);
    r.totals.logins[1][1] = 4; /* pop3 fail */
    r.totals.bytes_to_client = 1234567890123ull;
    r.totals.dns_cache_hits = 11;
    r.totals.dns_cache_misses = 2;
    r.n_workers = 1;
    r.workers[0].index = 7;
    r.workers[0].sessions_open[2] = 3;
    r.n_providers = 1;
    strcpy(r.providers[0].name, "we\"ird\\");
    r.providers[0].requests[2] = 5;
    r.healthy = 1;
    char *t = render(&r);
    assert_non_null(strstr(t, "# TYPE mailgate_logins_total counter\n"));
    assert_non_null(strstr(t, "mailgate_logins_total{protocol=\"pop3\",result=\"fail\"} 4\n"));
    assert_non_null(strstr(t, "mailgate_logins_total{protocol=\"imap\",result=\"ok\"} 0\n"));
    assert_non_null(
        strstr(t, "mailgate_relayed_bytes_total{direction=\"to_client\"} 1234567890123\n"));
    assert_non_null(strstr(t, "mailgate_sessions_open{protocol=\"smtp\",worker=\"7\"} 3\n"));
    assert_non_null(strstr(t, "mailgate_token_requests_total{provider=\"we\\\"ird\\\\\","
                              "result=\"permfail\"} 5\n"));
    assert_non_null(strstr(t, "mailgate_healthy 1\n"));
    assert_non_null(strstr(t, "mailgate_dns_cache_lookups_total{result=\"hit\"} 11\n"));
    assert_non_null(strstr(t, "mailgate_dns_cache_lookups_total{result=\"miss\"} 2\n"));
    /* every family: HELP then TYPE, each sample after its TYPE */
    for (const char *p = strstr(t, "# TYPE "); p; p = strstr(p + 1, "# TYPE "))
        assert_memory_equal(p - 1, "\n", 1);
    assert_int_equal(strncmp(t, "# HELP mailgate_sessions_open ", 30), 0);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_histogram_lines),
        cmocka_unit_test(test_counters_and_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
