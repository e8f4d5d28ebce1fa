/* Tests for the broker's end of POST /tlsrpt (broker/tlsrpt_inbox.c) with a real store: pieces
 * joined into a report, stored once per report-id, refusals of what the worker may send wrong
 * (bad JSON, over the size, pieces of an abandoned report). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "store.h"
#include "store_tlsrpt.h"
#include "tlsrpt.h"
#include "tlsrpt_inbox.h"
#include "util.h"

struct env {
    char dir[64];
    struct store *st;
    struct tlsrpt_inbox in;
};

static int open_env(void **state)
{
    struct env *e = mg_calloc(1, sizeof *e);
    strcpy(e->dir, "/tmp/mg-test-inbox-XXXXXX");
    char err[256];
    if (!mkdtemp(e->dir) || !(e->st = store_open(e->dir, err, sizeof err)))
        return -1;
    *state = e;
    return 0;
}

static int close_env(void **state)
{
    struct env *e = *state;
    tlsrpt_inbox_clear(&e->in);
    store_close(&e->st);
    char *cmd = mg_printf("rm -rf '%s'", e->dir);
    int rc = system(cmd);
    free(cmd);
    free(e);
    return rc;
}

/* Sends json as the worker does (ipc_encode_tlsrpt), each frame through the decoder; returns
 * the result of the last piece. */
static struct ipc_tlsrpt_result send_pieces(struct env *e, uint32_t id, const char *json,
                                            size_t len, size_t *pieces)
{
    struct evbuffer *buf = evbuffer_new();
    assert_int_equal(ipc_encode_tlsrpt(buf, id, json, len), 0);
    static struct ipc_msg msg;
    struct ipc_tlsrpt_result res = {.id = 0xffffffff};
    *pieces = 0;
    int done = 0;
    while (!done) {
        assert_int_equal(ipc_decode(buf, &msg), 1);
        assert_int_equal(msg.type, IPC_TLSRPT_PART);
        (*pieces)++;
        done = tlsrpt_inbox_add(&e->in, e->st, &msg.u.tlsrpt_part, &res);
        assert_int_equal(done, msg.u.tlsrpt_part.last);
    }
    assert_int_equal(evbuffer_get_length(buf), 0);
    evbuffer_free(buf);
    return res;
}

static int count_reports(const struct tlsrpt_policy_sum *p, void *arg)
{
    *(int64_t *)arg += p->reports;
    return 0;
}

static int64_t reports_stored(struct env *e)
{
    int64_t n = 0;
    assert_int_equal(store_tlsrpt_policies(e->st, 0, count_reports, &n), STORE_OK);
    return n;
}

/* A report whose normalised form takes several frames: 32 policies of 8 failures. */
static char *big_report(void)
{
    struct tlsrpt_report r = {.report_id = "r1", .organization = "Org", .contact = ""};
    r.n_policies = TLSRPT_MAX_POLICIES;
    r.policies = mg_calloc(r.n_policies, sizeof *r.policies);
    static struct tlsrpt_failure f[8];
    for (size_t i = 0; i < 8; i++)
        f[i] = (struct tlsrpt_failure){
            "certificate-expired",     "192.0.2.1", "mx1.example.com", "", "198.51.100.7",
            "https://example.com/why", "X509",      (int64_t)i + 1};
    for (size_t i = 0; i < r.n_policies; i++)
        r.policies[i] = (struct tlsrpt_policy){.policy_type = "sts",
                                               .policy_domain = "example.com",
                                               .successful = 9,
                                               .failures = f,
                                               .n_failures = 8};
    char *json = tlsrpt_to_json(&r);
    free(r.policies);
    return json;
}

static void test_joined_and_stored_once(void **state)
{
    struct env *e = *state;
    char *json = big_report();
    size_t pieces;
    struct ipc_tlsrpt_result res = send_pieces(e, 7, json, strlen(json), &pieces);
    assert_true(pieces >= 3);
    assert_int_equal(res.id, 7);
    assert_int_equal(res.result, TLSRPT_STORED);
    assert_int_equal(reports_stored(e), 1);
    res = send_pieces(e, 8, json, strlen(json), &pieces);
    assert_int_equal(res.id, 8);
    assert_int_equal(res.result, TLSRPT_DUPLICATE);
    assert_int_equal(reports_stored(e), 1);
    free(json);
}

static void test_refusals(void **state)
{
    struct env *e = *state;
    const char *bad = "{\"report-id\":\"r2\"}";
    size_t pieces;
    struct ipc_tlsrpt_result res = send_pieces(e, 1, bad, strlen(bad), &pieces);
    assert_int_equal(res.result, TLSRPT_REFUSED);
    assert_string_equal(res.reason, "the report has no policies array");
    /* over the normalised size: refused whatever it holds */
    size_t big = TLSRPT_MAX_NORMALISED + 1;
    char *junk = mg_malloc(big);
    memset(junk, ' ', big);
    res = send_pieces(e, 2, junk, big, &pieces);
    free(junk);
    assert_int_equal(res.result, TLSRPT_REFUSED);
    assert_non_null(strstr(res.reason, "too large"));
    assert_int_equal(reports_stored(e), 0);
}

/* A report left unfinished is abandoned when the pieces of another one arrive. */
static void test_abandoned(void **state)
{
    struct env *e = *state;
    struct ipc_tlsrpt_part part = {.id = 3, .last = 0, .data_len = 5};
    memcpy(part.data, "{\"rep", 5);
    struct ipc_tlsrpt_result res;
    assert_int_equal(tlsrpt_inbox_add(&e->in, e->st, &part, &res), 0);
    char *json = big_report();
    size_t pieces;
    res = send_pieces(e, 4, json, strlen(json), &pieces);
    free(json);
    assert_int_equal(res.id, 4);
    assert_int_equal(res.result, TLSRPT_STORED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_joined_and_stored_once, open_env, close_env),
        cmocka_unit_test_setup_teardown(test_refusals, open_env, close_env),
        cmocka_unit_test_setup_teardown(test_abandoned, open_env, close_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
