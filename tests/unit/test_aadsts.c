/* Tests for aadsts.c: finding the AADSTS code in an error_description and the fix table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "aadsts.h"
#include "util.h"

static void test_find(void **state)
{
    (void)state;
    assert_int_equal(aadsts_find("AADSTS7000215: Invalid client secret provided.", (size_t)-1),
                     7000215);
    assert_int_equal(aadsts_find("invalid_client: AADSTS700016: Application ...", (size_t)-1),
                     700016);
    /* the first code wins */
    assert_int_equal(aadsts_find("x AADSTS50173: y AADSTS70000: z", (size_t)-1), 50173);
    /* a prefix without digits is skipped, the next one found */
    assert_int_equal(aadsts_find("AADSTS: nothing, then AADSTS90002", (size_t)-1), 90002);
    assert_int_equal(aadsts_find("no code here", (size_t)-1), 0);
    assert_int_equal(aadsts_find("", (size_t)-1), 0);
    assert_int_equal(aadsts_find(NULL, 10), 0);
    assert_int_equal(aadsts_find("AADSTS", (size_t)-1), 0);
    assert_int_equal(aadsts_find("aadsts7000215", (size_t)-1), 0); /* Microsoft's spelling only */
    assert_int_equal(aadsts_find("AADSTS1234567890", (size_t)-1), 0); /* too long for a code */
    assert_int_equal(aadsts_find("AADSTS123456789", (size_t)-1), 123456789);
    /* len bounds the search: the code must be inside it */
    const char *t = "AADSTS700027 and more";
    assert_int_equal(aadsts_find(t, 9), 700);
    assert_int_equal(aadsts_find(t, 6), 0);
    char exact[] = {'A', 'A', 'D', 'S', 'T', 'S', '6', '5', '0', '0', '1'}; /* no NUL */
    assert_int_equal(aadsts_find(exact, sizeof exact), 65001);
}

static void test_table(void **state)
{
    (void)state;
    /* every code the issue names has a fix, one sentence ending in '.' */
    static const long codes[] = {7000215, 700016, 90002,  70011, 7000222, 700027, 700024,
                                 50173,   70000,  700082, 50076, 50079,   50057,  53003,
                                 65001,   50126,  50053,  50055, 70008};
    for (size_t i = 0; i < MG_ARRAY_LEN(codes); i++) {
        const char *h = aadsts_hint(codes[i]);
        assert_non_null(h);
        size_t n = strlen(h);
        assert_true(n > 20 && n < 200);
        assert_int_equal(h[n - 1], '.');
        assert_null(strchr(h, '\n'));
    }
    assert_non_null(strstr(aadsts_hint(7000215), "client_secret_file"));
    assert_non_null(strstr(aadsts_hint(7000222), "expired"));
    assert_non_null(strstr(aadsts_hint(700016), "client_id"));
    assert_non_null(strstr(aadsts_hint(700027), "certificate"));
    assert_non_null(strstr(aadsts_hint(65001), "admin consent"));
    assert_non_null(strstr(aadsts_hint(50076), "ulti-factor"));
    assert_non_null(strstr(aadsts_hint(50079), "the password flow cannot do MFA"));
    assert_non_null(strstr(aadsts_hint(50076), "Conditional Access"));
    assert_non_null(strstr(aadsts_hint(50126), "password"));
    assert_non_null(strstr(aadsts_hint(700082), "mailgate user authorize"));
    for (size_t i = 0; i < 3; i++)
        assert_non_null(strstr(aadsts_hint((long[]){50173, 70000, 700082}[i]), "re-authorize"));
    assert_null(aadsts_hint(0));
    assert_null(aadsts_hint(1));
    assert_null(aadsts_hint(50196)); /* temporary: no fix to apply */
}

static void test_hint_for_text(void **state)
{
    (void)state;
    assert_ptr_equal(aadsts_hint_for_text("invalid_client: AADSTS7000215: Invalid client secret"),
                     aadsts_hint(7000215));
    assert_null(aadsts_hint_for_text("invalid_client: no code"));
    assert_null(aadsts_hint_for_text("AADSTS99999999: unknown"));
    assert_null(aadsts_hint_for_text(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_hint_for_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
