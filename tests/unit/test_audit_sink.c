/* Tests for the broker's audit writer (audit_sink.c): records reach the store and the JSON
 * file, malformed ones are refused, a full queue drops instead of growing, old rows are pruned
 * at start. A real store in a temporary directory and a real event loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit_sink.h"
#include "config.h"
#include "store.h"
#include "store_logins.h"

#define QUEUE_MAX 4096 /* AUDIT_QUEUE_MAX */

struct fixture {
    char dir[64];
    char json_path[96];
    struct config cfg;
    struct store *st;
    struct event_base *base;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/mg-audit-sink-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->json_path, sizeof f->json_path, "%s/audit.jsonl", f->dir);
    f->cfg.gateway.audit_retention_ms = 90ull * 24 * 3600 * 1000;
    f->cfg.gateway.audit_log = f->json_path;
    char err[256];
    f->st = store_open(f->dir, err, sizeof err);
    f->base = event_base_new();
    *state = f;
    return f->st && f->base ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(&f->st);
    event_base_free(f->base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static struct ipc_audit record(int ok)
{
    struct ipc_audit a;
    memset(&a, 0, sizeof a);
    a.event = AUDIT_LOGIN;
    a.protocol = MG_PROTO_IMAP;
    a.ok = (uint32_t)ok;
    strcpy(a.session, "00c0ffee");
    strcpy(a.listener, "imaps");
    strcpy(a.client_addr, "198.51.100.4:40000");
    strcpy(a.user, "alice");
    strcpy(a.cause, ok ? "ok" : "wrong password");
    return a;
}

static int count_row(const struct login_event *e, void *arg)
{
    (void)e;
    ++*(size_t *)arg;
    return 0;
}

static size_t stored(struct store *st, const char *result)
{
    size_t n = 0;
    struct login_filter filter = {.result = result};
    assert_int_equal(store_login_events_list(st, &filter, count_row, &n), STORE_OK);
    return n;
}

static size_t json_lines(const char *path)
{
    FILE *in = fopen(path, "r");
    size_t n = 0;
    for (int c; in && (c = fgetc(in)) != EOF;)
        n += c == '\n';
    if (in)
        fclose(in);
    return n;
}

static void test_flood_is_bounded_and_malformed_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct audit_sink *a = audit_sink_new(f->base, &f->cfg, f->st, err, sizeof err);
    assert_non_null(a);
    struct ipc_audit bad = record(1);
    strcpy(bad.cause, "wrong password"); /* ok with a failure's word */
    audit_sink_push(a, &bad);
    for (int i = 0; i < QUEUE_MAX + 10; i++) {
        struct ipc_audit r = record(i % 2);
        audit_sink_push(a, &r);
    }
    /* one tick writes the whole queue in one transaction; the 10 beyond it were dropped */
    event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(stored(f->st, NULL), QUEUE_MAX);
    assert_int_equal(stored(f->st, "ok"), QUEUE_MAX / 2);
    assert_int_equal(json_lines(f->json_path), QUEUE_MAX);
    /* the queue is free again */
    struct ipc_audit r = record(1);
    audit_sink_push(a, &r);
    audit_sink_free(&a); /* writes what is still queued */
    assert_int_equal(stored(f->st, NULL), QUEUE_MAX + 1);
    assert_int_equal(json_lines(f->json_path), QUEUE_MAX + 1);
}

static void test_prunes_old_rows_at_start(void **state)
{
    struct fixture *f = *state;
    int64_t now = (int64_t)time(NULL);
    struct login_event old = {.at = now - 91 * 86400,
                              .event = "login",
                              .protocol = "imap",
                              .result = "ok",
                              .reason = "ok"};
    struct login_event recent = old;
    recent.at = now - 89 * 86400;
    assert_int_equal(store_login_events_add(f->st, (struct login_event[]){old, recent}, 2),
                     STORE_OK);
    char err[256];
    struct audit_sink *a = audit_sink_new(f->base, &f->cfg, f->st, err, sizeof err);
    assert_non_null(a);
    audit_sink_free(&a);
    assert_int_equal(stored(f->st, NULL), 1);
}

static void test_unwritable_log_refuses_to_start(void **state)
{
    struct fixture *f = *state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/no/such/dir/audit.jsonl", f->dir);
    f->cfg.gateway.audit_log = path;
    assert_null(audit_sink_new(f->base, &f->cfg, f->st, err, sizeof err));
    assert_non_null(strstr(err, "audit_log"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flood_is_bounded_and_malformed_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prunes_old_rows_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_log_refuses_to_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
