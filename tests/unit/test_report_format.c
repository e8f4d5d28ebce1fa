/* Tests for the report formats (report_format.c): aligned table, JSON array, CSV quoting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report_format.h"

static const char *const columns[] = {"user", "logins", "client"};

static void sample(struct report_table *t)
{
    report_table_init(t, columns, 3, "sns");
    report_table_add(t, (const char *const[]){"alice", "12", "Thunderbird, \"beta\""});
    report_table_add(t, (const char *const[]){"=cmd|calc", "", NULL});
}

/* The table printed in format f, as a malloc'd string. */
static char *print(struct report_table *t, enum report_format f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_int_equal(report_print(out, t, f), 0);
    fclose(out);
    return buf;
}

static void test_parse(void **state)
{
    (void)state;
    enum report_format f;
    assert_int_equal(report_format_parse("csv", &f), 0);
    assert_int_equal(f, REPORT_CSV);
    assert_int_equal(report_format_parse("JSON", &f), -1);
    assert_int_equal(report_format_parse("", &f), -1);
}

static void test_table_aligns_and_hides(void **state)
{
    (void)state;
    struct report_table t;
    sample(&t);
    char *text = print(&t, REPORT_TABLE);
    assert_string_equal(text, "user       logins  client\n"
                              "alice      12      Thunderbird, \"beta\"\n"
                              "=cmd|calc          \n");
    free(text);
    t.hide_last = 1;
    text = print(&t, REPORT_TABLE);
    assert_string_equal(text, "user       logins\nalice      12\n=cmd|calc  \n");
    free(text);
    report_table_free(&t);
}

static void test_json_types(void **state)
{
    (void)state;
    struct report_table t;
    sample(&t);
    char *text = print(&t, REPORT_JSON);
    json_error_t err;
    json_t *rows = json_loads(text, 0, &err);
    assert_non_null(rows);
    assert_int_equal(json_array_size(rows), 2);
    json_t *first = json_array_get(rows, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "logins")), 12);
    assert_string_equal(json_string_value(json_object_get(first, "client")),
                        "Thunderbird, \"beta\"");
    assert_true(json_is_null(json_object_get(json_array_get(rows, 1), "logins")));
    json_decref(rows);
    free(text);
    report_table_free(&t);
}

static void test_csv_quotes_and_defuses_formulas(void **state)
{
    (void)state;
    struct report_table t;
    sample(&t);
    char *text = print(&t, REPORT_CSV);
    assert_string_equal(text, "user,logins,client\r\n"
                              "alice,12,\"Thunderbird, \"\"beta\"\"\"\r\n"
                              "\"'=cmd|calc\",,\r\n");
    free(text);
    report_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_table_aligns_and_hides),
        cmocka_unit_test(test_json_types),
        cmocka_unit_test(test_csv_quotes_and_defuses_formulas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
