/* Tests for util.c and log.c helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "util.h"

static void test_durations(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(mg_parse_duration_ms("90", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(mg_parse_duration_ms("500ms", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(mg_parse_duration_ms("30m", &ms), 0);
    assert_int_equal(ms, 1800000);
    assert_int_equal(mg_parse_duration_ms("2h", &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(mg_parse_duration_ms("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(mg_parse_duration_ms("", &ms), -1);
    assert_int_equal(mg_parse_duration_ms("-1s", &ms), -1);
    assert_int_equal(mg_parse_duration_ms("10x", &ms), -1);
    assert_int_equal(mg_parse_duration_ms("10 s", &ms), -1);
    assert_int_equal(mg_parse_duration_ms("99999999999999999999", &ms), -1);
    assert_int_equal(mg_parse_duration_ms("18446744073709551615d", &ms), -1);
}

static void test_log_quote(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(log_quote(buf, sizeof buf, "alice", (size_t)-1), "\"alice\"");
    assert_string_equal(log_quote(buf, sizeof buf, "a\"b\\c", (size_t)-1), "\"a\\\"b\\\\c\"");
    assert_string_equal(log_quote(buf, sizeof buf, "x\r\ny\x01", 5), "\"x\\x0d\\x0ay\\x01\"");
    assert_string_equal(log_quote(buf, sizeof buf, "\xc3\xa4", (size_t)-1), "\"\\xc3\\xa4\"");
    const char *longs = "abcdefghijklmnopqrstuvwxyz0123456789";
    log_quote(buf, sizeof buf, longs, (size_t)-1);
    assert_true(strlen(buf) < sizeof buf);
    assert_non_null(strstr(buf, "...\""));
    assert_string_equal(log_quote(buf, sizeof buf, NULL, 0), "\"\"");
}

static void test_strings(void **state)
{
    (void)state;
    char small[4];
    assert_int_equal(mg_strlcpy(small, "abcdef", sizeof small), 6);
    assert_string_equal(small, "abc");
    char *p = mg_printf("%s-%d", "x", 42);
    assert_string_equal(p, "x-42");
    free(p);
    p = mg_strndup("hello", 3);
    assert_string_equal(p, "hel");
    mg_free_secret(&p);
    assert_null(p);
    assert_int_equal(mg_ascii_casecmp("LOGIN", "login"), 0);
    assert_true(mg_ascii_casecmp("LOGIN", "logout") != 0);
    assert_int_equal(mg_ascii_ncasecmp("AUTH=PLAIN", "auth=plainx", 10), 0);
    assert_true(mg_ct_equal("abc", "abc", 3));
    assert_false(mg_ct_equal("abc", "abd", 3));
}

static void test_read_file(void **state)
{
    (void)state;
    char path[] = "/tmp/mg-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "secret\r\n", 8), 8);
    close(fd);
    size_t len = 0;
    char *s = mg_read_file(path, 64, 1, &len);
    assert_non_null(s);
    assert_string_equal(s, "secret");
    assert_int_equal(len, 6);
    free(s);
    assert_null(mg_read_file(path, 4, 1, &len)); /* too large */
    unlink(path);
    assert_null(mg_read_file(path, 64, 1, &len)); /* missing */
}

static void test_enums(void **state)
{
    (void)state;
    enum mg_proto p;
    enum mg_tls_mode t;
    enum mg_log_level l;
    assert_int_equal(mg_proto_parse("pop3", &p), 0);
    assert_int_equal(p, MG_PROTO_POP3);
    assert_string_equal(mg_proto_name(MG_PROTO_SMTP), "smtp");
    assert_int_equal(mg_proto_parse("IMAP", &p), -1);
    assert_int_equal(mg_tls_mode_parse("starttls", &t), 0);
    assert_int_equal(t, MG_TLS_STARTTLS);
    assert_int_equal(mg_tls_mode_parse("none", &t), 0);
    assert_int_equal(t, MG_TLS_NONE);
    assert_int_equal(mg_tls_mode_parse("NONE", &t), -1);
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, MG_LOG_DEBUG);
    assert_int_equal(log_level_parse("verbose", &l), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations), cmocka_unit_test(test_log_quote),
        cmocka_unit_test(test_strings),   cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_enums),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
