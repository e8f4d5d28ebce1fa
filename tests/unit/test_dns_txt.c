/* Tests for dns_txt.c (the _mta-sts and _smtp._tls TXT records of RFC 8461 3.1 and RFC 8460 3)
 * and sts_policy.c (the policy file of RFC 8461 3.2, MX pattern matching of 4.1): untrusted DNS
 * and HTTP input, parsed strictly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dns_txt.h"
#include "sts_policy.h"

static const char *sts(const char *rec, char id[STS_RECORD_ID_MAX + 1])
{
    return sts_record_parse(rec, strlen(rec), id);
}

static void test_sts_record_valid(void **state)
{
    (void)state;
    char id[STS_RECORD_ID_MAX + 1];
    assert_null(sts("v=STSv1; id=20160831085700Z", id));
    assert_string_equal(id, "20160831085700Z");
    assert_null(sts("v=STSv1;id=abc;", id));
    assert_string_equal(id, "abc");
    assert_null(sts("v=STSv1 ;\tid=a1 ; ext.name-1=x!y ;  ", id));        /* blanks around ';' */
    assert_null(sts("v=STSv1; id=12345678901234567890123456789012", id)); /* 32 */
    assert_null(sts("v=STSv1; foo=bar; id=x", id));                       /* extension before id */
    assert_string_equal(id, "x");
}

static void test_sts_record_invalid(void **state)
{
    (void)state;
    char id[STS_RECORD_ID_MAX + 1];
    const char *bad[] = {
        "v=STSv1",                                       /* no field */
        "v=STSv1;",                                      /* no id */
        "v=STSv1; id=",                                  /* empty id */
        "v=STSv1; id=123456789012345678901234567890123", /* 33 */
        "v=STSv1; id=abc-def",                           /* not alnum */
        "v=STSv1; id=a; id=b",                           /* twice */
        "v=STSv1; ID=abc",                               /* names are case-sensitive */
        "v=STSv2; id=abc",                               /* version */
        "v=STSv1 id=abc",                                /* no ';' */
        "v=STSv1; id=abc; ext",                          /* not name=value */
        "v=STSv1; id=abc; ext=a b",                      /* space in a value */
        "v=STSv1; id=abc; ext=a=b",                      /* '=' in a value */
        "v=STSv1; id=abc; _ext=a",                       /* name starts with '_' */
        "v=STSv1; id=abc;; x=y",                         /* empty field */
        "V=STSv1; id=abc",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_non_null(sts(bad[i], id));
        assert_string_equal(id, "");
    }
    /* bytes a TXT record can hold but a valid one does not */
    static const char nul[] = "v=STSv1; id=ab\0c";
    assert_non_null(sts_record_parse(nul, sizeof nul - 1, id));
    assert_non_null(sts("v=STSv1; id=abc\x7f", id));
    assert_non_null(sts("v=STSv1; id=abc; x=\xc3\xa9", id));
}

static void test_select_one_record(void **state)
{
    (void)state;
    struct dns_txt recs[] = {{"v=spf1 -all", 11}, {"v=STSv1; id=1", 13}, {"v=STSv1 id=2", 12}};
    assert_int_equal(dns_txt_select(recs, 3, "v=STSv1;"), 1);
    assert_int_equal(dns_txt_select(recs, 1, "v=STSv1;"), -1);
    assert_int_equal(dns_txt_select(NULL, 0, "v=STSv1;"), -1);
    struct dns_txt two[] = {{"v=STSv1; id=1", 13}, {"v=STSv1; id=2", 13}};
    assert_int_equal(dns_txt_select(two, 2, "v=STSv1;"), -2);
}

static const char *tlsrpt(const char *rec, struct mg_strlist *rua)
{
    dns_strlist_free(rua);
    return tlsrpt_record_parse(rec, strlen(rec), rua);
}

static void test_tlsrpt_record(void **state)
{
    (void)state;
    struct mg_strlist rua = {0};
    assert_null(tlsrpt("v=TLSRPTv1; rua=mailto:reports@example.com", &rua));
    assert_int_equal(rua.n, 1);
    assert_string_equal(rua.v[0], "mailto:reports@example.com");
    assert_null(tlsrpt("v=TLSRPTv1;rua=mailto:a@example.com , https://r.example.com/x%2Cy;", &rua));
    assert_int_equal(rua.n, 2);
    assert_string_equal(rua.v[1], "https://r.example.com/x%2Cy");
    assert_null(tlsrpt("v=TLSRPTv1; ext=1; rua=https://r.example.com", &rua));
    const char *bad[] = {
        "v=TLSRPTv1",
        "v=TLSRPTv1;",
        "v=TLSRPTv1; ext=1",                                         /* no rua */
        "v=TLSRPTv1; rua=",                                          /* empty */
        "v=TLSRPTv1; rua=reports@example.com",                       /* no scheme */
        "v=TLSRPTv1; rua=http://r.example.com",                      /* not https */
        "v=TLSRPTv1; rua=mailto:a@example.com,",                     /* empty URI */
        "v=TLSRPTv1; rua=mailto:a@example.com mailto:b@example.com", /* no ',' */
        "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com",
        "v=TLSRPTv1; rua=mailto:a!b@example.com", /* '!' unencoded */
        "v=STSv1; rua=mailto:a@example.com",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_non_null(tlsrpt(bad[i], &rua));
    dns_strlist_free(&rua);
}

static const char *policy(const char *text, struct sts_policy *p)
{
    static char why[160];
    sts_policy_free(p);
    return sts_policy_parse(text, strlen(text), p, why, sizeof why) == 0 ? NULL : why;
}

static void test_policy_valid(void **state)
{
    (void)state;
    struct sts_policy p = {0};
    /* RFC 8461 3.2's example, LF line ends */
    assert_null(policy("version: STSv1\nmode: enforce\nmx: mail.example.com\n"
                       "mx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n",
                       &p));
    assert_int_equal(p.mode, MG_MTA_STS_ENFORCE);
    assert_int_equal(p.mx.n, 3);
    assert_string_equal(p.mx.v[1], "*.example.net");
    assert_int_equal(p.max_age, 604800);
    /* CRLF, any order, blanks after ':', an extension, no final line end, upper case mx */
    assert_null(policy("mode:\ttesting\r\nmx: MX.Example.COM \r\nversion: STSv1\r\n"
                       "ext_1: any \xc3\xa9 value\r\nmax_age: 31557600",
                       &p));
    assert_int_equal(p.mode, MG_MTA_STS_TESTING);
    assert_string_equal(p.mx.v[0], "mx.example.com");
    assert_int_equal(p.max_age, 31557600);
    assert_null(policy("version: STSv1\nmode: none\nmax_age: 0\n", &p)); /* none: no mx */
    sts_policy_free(&p);
}

static void test_policy_invalid(void **state)
{
    (void)state;
    struct sts_policy p = {0};
    const char *bad[] = {
        "mode: enforce\nmx: a.example.com\nmax_age: 1\n", /* no version */
        "version: STSv2\nmode: enforce\nmx: a.example.com\nmax_age: 1\n",
        "version: STSv1\nmx: a.example.com\nmax_age: 1\n", /* no mode */
        "version: STSv1\nmode: strict\nmx: a.example.com\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",        /* no mx */
        "version: STSv1\nmode: enforce\nmx: a.example.com\n", /* no max_age */
        "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 31557601\n",
        "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: -1\n",
        "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 12345678901\n",
        "version: STSv1\nmode: enforce\nmx: a.*.example.com\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: *.*.example.com\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmode: testing\nmx: a.example.com\nmax_age: 1\n",
        "version: STSv1\n\nmode: enforce\nmx: a.example.com\nmax_age: 1\n", /* empty line */
        "version: STSv1\nmode enforce\nmx: a.example.com\nmax_age: 1\n",    /* no ':' */
        "version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n",                 /* no value */
        "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 1\n-x: y\n",
        "version: STSv1\nmode: enforce\rmx: a.example.com\nmax_age: 1\n", /* lone CR */
        "Version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 1\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_non_null(policy(bad[i], &p));
    static const char nul[] = "version: STSv1\nmode: none\0\nmax_age: 1\n";
    char why[160];
    assert_int_equal(sts_policy_parse(nul, sizeof nul - 1, &p, why, sizeof why), -1);
    assert_string_equal(why, "line 2: a line contains a NUL byte");
    assert_string_equal(
        policy("version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: x\n", &p),
        "line 4: max_age must be 1 to 10 digits");
    sts_policy_free(&p);
}

static void test_mx_matches(void **state)
{
    (void)state;
    const char *pattern = "*.mail.protection.outlook.com";
    assert_true(sts_mx_matches(pattern, "contoso-com.mail.protection.outlook.com"));
    assert_true(sts_mx_matches(pattern, "Contoso-com.MAIL.protection.outlook.com."));
    assert_false(sts_mx_matches(pattern, "mail.protection.outlook.com"));
    assert_false(sts_mx_matches(pattern, "a.b.mail.protection.outlook.com"));
    assert_false(sts_mx_matches(pattern, ".mail.protection.outlook.com"));
    /* RFC 8461 4.1: one label, so Microsoft 365's newer names never match this one */
    assert_false(sts_mx_matches("*.mx.microsoft", "contoso-com.a-v1.mx.microsoft"));
    assert_true(sts_mx_matches("mail.example.com", "MAIL.example.com."));
    assert_false(sts_mx_matches("mail.example.com", "mail.example.co"));
    assert_false(sts_mx_matches("mail.example.com", "xmail.example.com"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sts_record_valid),  cmocka_unit_test(test_sts_record_invalid),
        cmocka_unit_test(test_select_one_record), cmocka_unit_test(test_tlsrpt_record),
        cmocka_unit_test(test_policy_valid),      cmocka_unit_test(test_policy_invalid),
        cmocka_unit_test(test_mx_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
