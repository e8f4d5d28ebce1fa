/* Tests for login names (login_name.c): every row of the name table, valid and invalid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "login_name.h"

#define DOMAIN "contoso.com"

static void expect_valid(const char *input, const char *domain, enum login_form form,
                         const char *user, const char *alias)
{
    struct login_name n;
    if (login_name_parse(input, domain, &n) != 0)
        fail_msg("'%s' was refused", input);
    assert_int_equal(n.form, form);
    assert_string_equal(n.user, user);
    assert_string_equal(n.alias, alias);
}

static void expect_invalid(const char *input)
{
    struct login_name n;
    if (login_name_parse(input, DOMAIN, &n) == 0)
        fail_msg("'%s' was accepted as user '%s' alias '%s'", input, n.user, n.alias);
    assert_string_equal(n.user, "");
}

static void test_short_name(void **state)
{
    (void)state;
    expect_valid("alice", DOMAIN, LOGIN_SHORT, "alice@contoso.com", "");
    /* without default_domain short names stay as they are (existing users keep working) */
    expect_valid("alice", NULL, LOGIN_SHORT, "alice", "");
    expect_valid("alice", "", LOGIN_SHORT, "alice", "");
}

static void test_upn(void **state)
{
    (void)state;
    expect_valid("alice@contoso.com", DOMAIN, LOGIN_UPN, "alice@contoso.com", "");
    expect_valid("Alice@Fabrikam.com", DOMAIN, LOGIN_UPN, "Alice@Fabrikam.com", "");
    expect_valid("alice@contoso.com", NULL, LOGIN_UPN, "alice@contoso.com", "");
}

static void test_domain_user(void **state)
{
    (void)state;
    expect_valid("contoso.com\\alice", DOMAIN, LOGIN_DOMAIN_USER, "alice@contoso.com", "");
    expect_valid("contoso.com/alice", DOMAIN, LOGIN_DOMAIN_USER, "alice@contoso.com", "");
    /* a NetBIOS-style domain stands for default_domain when it is its first label */
    expect_valid("CONTOSO\\alice", DOMAIN, LOGIN_DOMAIN_USER, "alice@contoso.com", "");
    expect_valid("fabrikam\\alice", DOMAIN, LOGIN_DOMAIN_USER, "alice@fabrikam", "");
    expect_valid("contoso\\alice", NULL, LOGIN_DOMAIN_USER, "alice@contoso", "");
}

static void test_upn_alias(void **state)
{
    (void)state;
    expect_valid("alice@contoso.com\\shared", DOMAIN, LOGIN_UPN_ALIAS, "alice@contoso.com",
                 "shared");
    expect_valid("alice@contoso.com/shared@contoso.com", DOMAIN, LOGIN_UPN_ALIAS,
                 "alice@contoso.com", "shared@contoso.com");
}

static void test_domain_user_alias(void **state)
{
    (void)state;
    expect_valid("contoso\\alice\\shared", DOMAIN, LOGIN_DOMAIN_USER_ALIAS, "alice@contoso.com",
                 "shared");
    expect_valid("contoso.com/alice\\shared@contoso.com", DOMAIN, LOGIN_DOMAIN_USER_ALIAS,
                 "alice@contoso.com", "shared@contoso.com");
}

static void test_invalid_shapes(void **state)
{
    (void)state;
    expect_invalid("");
    expect_invalid("a@b@c");      /* 0 \, 2 @ */
    expect_invalid("a@b\\c\\d");  /* 2 \, 1 @ */
    expect_invalid("a\\b\\c\\d"); /* 3 \ */
    expect_invalid("a@b@c\\d");   /* 1 \, 2 @ */
    expect_invalid("\\alice");    /* empty parts */
    expect_invalid("alice\\");
    expect_invalid("contoso\\\\alice");
    expect_invalid("alice@"); /* half an address */
    expect_invalid("@contoso.com");
    expect_invalid("alice@contoso.com\\");      /* upn\ without an alias */
    expect_invalid("contoso\\alice@x");         /* domain\user with an @ in the user */
    expect_invalid("alice@contoso.com\\a@b@c"); /* alias with two @ */
    expect_invalid("alice@contoso.com\\@x");
    expect_invalid("al ice"); /* space, control byte */
    expect_invalid("alice\t");
    expect_invalid("alice\x7f");
}

static void test_too_long(void **state)
{
    (void)state;
    char name[LOGIN_NAME_MAX + 1];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    expect_invalid(name);
    /* fits alone, but not with the default domain appended */
    name[LOGIN_NAME_MAX - 3] = '\0';
    expect_invalid(name);
    struct login_name n;
    assert_int_equal(login_name_parse(name, NULL, &n), 0);
}

static void test_canonical_and_short_form(void **state)
{
    (void)state;
    char out[LOGIN_NAME_MAX];
    assert_int_equal(login_name_canonical("alice", DOMAIN, out, sizeof out), 0);
    assert_string_equal(out, "alice@contoso.com");
    assert_int_equal(login_name_canonical("bob@fabrikam.com", DOMAIN, out, sizeof out), 0);
    assert_string_equal(out, "bob@fabrikam.com");
    assert_int_equal(login_name_canonical("alice", NULL, out, sizeof out), 0);
    assert_string_equal(out, "alice");
    assert_int_equal(login_name_canonical("alice", DOMAIN, out, 8), -1);
    assert_int_equal(login_name_short_form("alice@CONTOSO.com", DOMAIN, out, sizeof out), 0);
    assert_string_equal(out, "alice");
    assert_int_equal(login_name_short_form("alice@fabrikam.com", DOMAIN, out, sizeof out), -1);
    assert_int_equal(login_name_short_form("alice", DOMAIN, out, sizeof out), -1);
    assert_int_equal(login_name_short_form("alice@contoso.com", NULL, out, sizeof out), -1);
}

static void test_reserved(void **state)
{
    (void)state;
    assert_true(login_name_reserved("anonymous"));
    assert_true(login_name_reserved("Guest"));
    assert_true(login_name_reserved("guest@contoso.com"));
    assert_true(login_name_reserved("ANONYMOUS@fabrikam.com"));
    assert_false(login_name_reserved("guests"));
    assert_false(login_name_reserved("alice"));
    assert_false(login_name_reserved("guest.user@contoso.com"));
}

static void test_alias_address(void **state)
{
    (void)state;
    char out[LOGIN_NAME_MAX];
    assert_int_equal(login_name_alias_address("shared", "alice@contoso.com",
                                              "alice@mail.contoso.com", out, sizeof out),
                     0);
    assert_string_equal(out, "shared@contoso.com");
    /* a short user name: the domain of its mailbox */
    assert_int_equal(
        login_name_alias_address("shared", "alice", "alice@fabrikam.com", out, sizeof out), 0);
    assert_string_equal(out, "shared@fabrikam.com");
    assert_int_equal(login_name_alias_address("sales@fabrikam.com", "alice@contoso.com",
                                              "alice@contoso.com", out, sizeof out),
                     0);
    assert_string_equal(out, "sales@fabrikam.com");
    assert_int_equal(login_name_alias_address("a@b@c", "alice@contoso.com", "alice@contoso.com",
                                              out, sizeof out),
                     -1);
    assert_int_equal(login_name_alias_address("shared", "alice", "nodomain", out, sizeof out), -1);
    assert_int_equal(login_name_alias_address("shared", "alice@contoso.com", "x@y", out, 10), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_name),        cmocka_unit_test(test_upn),
        cmocka_unit_test(test_domain_user),       cmocka_unit_test(test_upn_alias),
        cmocka_unit_test(test_domain_user_alias), cmocka_unit_test(test_invalid_shapes),
        cmocka_unit_test(test_too_long),          cmocka_unit_test(test_canonical_and_short_form),
        cmocka_unit_test(test_reserved),          cmocka_unit_test(test_alias_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
