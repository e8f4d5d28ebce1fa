/* Tests for cidr.c: the allow = parser (config input: strict) and matching client addresses,
 * IPv4-mapped IPv6 included. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cidr.h"

/* A client address as accept() gives it: AF_INET6 when the text has a ':'. */
static struct sockaddr_storage sockaddr_of(const char *text)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    int v6 = strchr(text, ':') != NULL;
    ss.ss_family = v6 ? AF_INET6 : AF_INET;
    void *addr = v6 ? (void *)&sin6->sin6_addr : (void *)&sin->sin_addr;
    assert_int_equal(inet_pton(ss.ss_family, text, addr), 1);
    return ss;
}

static bool allows(const char *list, const char *addr)
{
    struct cidr_list l;
    char err[160] = "";
    assert_int_equal(cidr_list_parse(list, &l, err, sizeof err), 0);
    struct sockaddr_storage ss = sockaddr_of(addr);
    bool r = cidr_list_match(&l, (struct sockaddr *)&ss);
    cidr_list_free(&l);
    return r;
}

static void test_parse_valid(void **state)
{
    (void)state;
    struct cidr c;
    const char *why = NULL;
    assert_int_equal(cidr_parse("10.0.0.0/8", &c, &why), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(cidr_parse("192.0.2.7", &c, &why), 0);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(cidr_parse("0.0.0.0/0", &c, &why), 0);
    assert_int_equal(c.prefix, 0);
    assert_int_equal(cidr_parse("2001:db8::/32", &c, &why), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(cidr_parse("::1", &c, &why), 0);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(cidr_parse("::/0", &c, &why), 0);
    /* A mapped rule is the IPv4 rule it carries. */
    assert_int_equal(cidr_parse("::ffff:10.0.0.0/104", &c, &why), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(cidr_parse("10.1.3.0/23", &c, &why), -1); /* bit 23 set */
    assert_int_equal(cidr_parse("10.1.2.0/24", &c, &why), 0);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/08",
        "10.0.0.0/8/8",
        "10.0.0/8",
        "10.0.0.256",
        "010.0.0.0",
        "0x0a.0.0.0",
        "10.0.0.0 /8",
        "host.example",
        "2001:db8::/129",
        "2001:db8:::/32",
        "fe80::1%eth0",
        "10.1.0.0/8",
        "2001:db8::1/32",
        "1.2.3.4/1000000",
        "::ffff:10.0.0.1/104",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000001.2.3.4",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct cidr c;
        const char *why = NULL;
        if (cidr_parse(bad[i], &c, &why) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(why);
    }
}

static void test_list_parse(void **state)
{
    (void)state;
    struct cidr_list l;
    char err[160] = "";
    assert_int_equal(cidr_list_parse("10.0.0.0/8, 2001:db8::/32 192.0.2.1,,", &l, err, sizeof err),
                     0);
    assert_int_equal(l.n, 3);
    struct cidr_list copy;
    cidr_list_copy(&copy, &l);
    assert_int_equal(copy.n, 3);
    assert_memory_equal(copy.v, l.v, 3 * sizeof *l.v);
    cidr_list_free(&copy);
    cidr_list_free(&l);
    assert_null(l.v);

    assert_int_equal(cidr_list_parse("10.0.0.0/8, 300.1.1.1/8", &l, err, sizeof err), -1);
    assert_int_equal(l.n, 0);
    assert_null(l.v);
    assert_non_null(strstr(err, "'300.1.1.1/8'"));
    assert_int_equal(cidr_list_parse(" , ", &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "no address range"));
}

static void test_match(void **state)
{
    (void)state;
    assert_true(allows("10.0.0.0/8", "10.255.1.2"));
    assert_false(allows("10.0.0.0/8", "11.0.0.1"));
    assert_false(allows("10.0.0.0/8", "127.0.0.1"));
    assert_true(allows("127.0.0.0/8", "127.0.0.1"));
    assert_true(allows("192.168.4.0/22", "192.168.7.255"));
    assert_false(allows("192.168.4.0/22", "192.168.8.0"));
    assert_true(allows("192.0.2.1", "192.0.2.1"));
    assert_false(allows("192.0.2.1", "192.0.2.2"));
    assert_true(allows("0.0.0.0/0", "203.0.113.9"));
    assert_false(allows("0.0.0.0/0", "2001:db8::1")); /* families do not mix */
    assert_true(allows("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(allows("2001:db8::/32", "2001:db9::1"));
    assert_true(allows("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(allows("2001:db8::/33", "2001:db8:8000::1"));
    assert_true(allows("::/0", "::1"));
    assert_false(allows("::/0", "10.0.0.1"));
    /* IPv4-mapped clients (a dual-stack listener) match the IPv4 rules, and only those. */
    assert_true(allows("10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_false(allows("10.0.0.0/8", "::ffff:11.1.2.3"));
    assert_false(allows("::/0", "::ffff:10.1.2.3"));
    assert_true(allows("::ffff:10.0.0.0/104", "10.9.9.9"));
    assert_true(allows("10.0.0.0/8, 2001:db8::/32", "2001:db8::5"));
}

static void test_empty_list_allows_all(void **state)
{
    (void)state;
    struct cidr_list l = {0};
    struct sockaddr_storage a = sockaddr_of("198.51.100.1"), b = sockaddr_of("2001:db8::1");
    assert_true(cidr_list_match(&l, (struct sockaddr *)&a));
    assert_true(cidr_list_match(&l, (struct sockaddr *)&b));
    struct sockaddr_storage unix_sa = {.ss_family = AF_UNIX};
    assert_true(cidr_list_match(&l, (struct sockaddr *)&unix_sa));
    char err[64];
    assert_int_equal(cidr_list_parse("10.0.0.0/8", &l, err, sizeof err), 0);
    assert_false(cidr_list_match(&l, (struct sockaddr *)&unix_sa));
    cidr_list_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_list_parse),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_empty_list_allows_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
