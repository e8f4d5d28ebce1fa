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

/* Sends json as pieces of `step` bytes; returns the result (the last piece's). */
static struct ipc_tlsrpt_result send_pieces(struct env *e, uint32_t id, const char *json,
                                            size_t len, size_t step)
{
    static struct ipc_tlsrpt_part part;
    struct ipc_tlsrpt_result res = {.id = 0xffffffff};
    size_t off = 0;
    do {
        size_t n = len - off < step ? len - off : step;
        part.id = id;
        part.data_len = (uint32_t)n;
        memcpy(part.data, json + off, n);
        off += n;
        part.last = off == len;
        int done = tlsrpt_inbox_add(&e->in, e->st, &part, &res);
        assert_int_equal(done, part.last);
    } while (off < len);
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

static const char report[] = "{\"report-id\":\"r1\",\"organization-name\":\"Org\","
                             "\"policies\":[{\"policy\":{\"policy-type\":\"sts\"},\"summary\":{"
                             "\"total-successful-session-count\":9}}]}";

static void test_joined_and_stored_once(void **state)
{
    struct env *e = *state;
    struct ipc_tlsrpt_result res = send_pieces(e, 7, report, strlen(report), 10);
    assert_int_equal(res.id, 7);
    assert_int_equal(res.result, TLSRPT_STORED);
    assert_int_equal(reports_stored(e), 1);
    res = send_pieces(e, 8, report, strlen(report), IPC_TLSRPT_PART_MAX);
    assert_int_equal(res.id, 8);
    assert_int_equal(res.result, TLSRPT_DUPLICATE);
    assert_int_equal(reports_stored(e), 1);
}

static void test_refusals(void **state)
{
    struct env *e = *state;
    const char *bad = "{\"report-id\":\"r2\"}";
    struct ipc_tlsrpt_result res = send_pieces(e, 1, bad, strlen(bad), 4);
    assert_int_equal(res.result, TLSRPT_REFUSED);
    assert_string_equal(res.reason, "the report has no policies array");
    /* over the normalised size: refused whatever it holds */
    size_t big = TLSRPT_MAX_NORMALISED + 1;
    char *junk = mg_malloc(big);
    memset(junk, ' ', big);
    res = send_pieces(e, 2, junk, big, IPC_TLSRPT_PART_MAX);
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
    res = send_pieces(e, 4, report, strlen(report), 50);
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
