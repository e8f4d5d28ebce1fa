/* Tests for the resolver cache's table (worker/dns_table.c): TTL clamp, lookup, expiry,
 * least-recently-used eviction, the address bound. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dns_table.h"

#define T0 1000000

static struct dns_addrs one_v4(const char *ip)
{
    struct dns_addrs a = {0};
    struct in_addr in;
    assert_int_equal(inet_pton(AF_INET, ip, &in), 1);
    dns_addrs_add(&a, AF_INET, &in);
    return a;
}

static void assert_v4(const struct dns_addrs *a, size_t i, const char *ip)
{
    char text[INET_ADDRSTRLEN];
    assert_true(i < a->n);
    assert_int_equal(a->a[i].family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &a->a[i].u.v4, text, sizeof text));
    assert_string_equal(text, ip);
}

/* Three entries: small enough to fill in a test. */
static int setup(void **state)
{
    *state = dns_table_new(3);
    return 0;
}

static int teardown(void **state)
{
    struct dns_table *t = *state;
    dns_table_free(&t);
    assert_null(t);
    return 0;
}

static void test_ttl_clamp(void **state)
{
    (void)state;
    assert_int_equal(dns_ttl_clamp_ms(0), DNS_TTL_MIN_S * 1000);
    assert_int_equal(dns_ttl_clamp_ms(-1), DNS_TTL_MIN_S * 1000);
    assert_int_equal(dns_ttl_clamp_ms(4), DNS_TTL_MIN_S * 1000);
    assert_int_equal(dns_ttl_clamp_ms(300), 300000);
    assert_int_equal(dns_ttl_clamp_ms(DNS_TTL_MAX_S), DNS_TTL_MAX_S * 1000);
    assert_int_equal(dns_ttl_clamp_ms(86400), DNS_TTL_MAX_S * 1000);
    assert_int_equal(dns_ttl_clamp_ms(INT64_MAX), DNS_TTL_MAX_S * 1000);
}

static void test_find_until_expiry(void **state)
{
    struct dns_table *t = *state;
    struct dns_addrs a = one_v4("192.0.2.1");
    assert_null(dns_table_find(t, "imap.example.test", T0));
    dns_table_put(t, "imap.example.test", &a, T0 + 5000);
    const struct dns_addrs *hit = dns_table_find(t, "imap.example.test", T0 + 4999);
    assert_non_null(hit);
    assert_v4(hit, 0, "192.0.2.1");
    assert_null(dns_table_find(t, "IMAP.example.test", T0 + 5000)); /* expired: dropped */
    assert_int_equal(dns_table_size(t), 0);
}

static void test_case_insensitive_and_distinct(void **state)
{
    struct dns_table *t = *state;
    struct dns_addrs a = one_v4("192.0.2.1"), b = one_v4("192.0.2.2");
    dns_table_put(t, "Imap.Example.Test", &a, T0 + 5000);
    dns_table_put(t, "pop.example.test", &b, T0 + 5000);
    assert_v4(dns_table_find(t, "imap.example.test", T0), 0, "192.0.2.1");
    assert_v4(dns_table_find(t, "POP.EXAMPLE.TEST", T0), 0, "192.0.2.2");
    assert_null(dns_table_find(t, "imap.example", T0));
}

static void test_put_replaces(void **state)
{
    struct dns_table *t = *state;
    struct dns_addrs a = one_v4("192.0.2.1"), b = one_v4("192.0.2.2");
    dns_table_put(t, "imap.example.test", &a, T0 + 5000);
    dns_table_put(t, "imap.example.test", &b, T0 + 9000);
    assert_int_equal(dns_table_size(t), 1);
    assert_v4(dns_table_find(t, "imap.example.test", T0 + 6000), 0, "192.0.2.2");
}

static void test_negative_entry(void **state)
{
    struct dns_table *t = *state;
    struct dns_addrs none = {.error = -2};
    dns_table_put(t, "nosuch.example.test", &none, T0 + 10000);
    const struct dns_addrs *hit = dns_table_find(t, "nosuch.example.test", T0 + 1);
    assert_non_null(hit);
    assert_int_equal(hit->error, -2);
    assert_int_equal(hit->n, 0);
}

static void test_full_table_evicts_least_recently_used(void **state)
{
    struct dns_table *t = *state;
    struct dns_addrs a = one_v4("192.0.2.1");
    dns_table_put(t, "a.test", &a, T0 + 60000);
    dns_table_put(t, "b.test", &a, T0 + 60000);
    dns_table_put(t, "c.test", &a, T0 + 60000);
    /* a was stored first but used since: b is now the least recently used */
    assert_non_null(dns_table_find(t, "a.test", T0));
    dns_table_put(t, "d.test", &a, T0 + 60000);
    assert_int_equal(dns_table_size(t), 3);
    assert_null(dns_table_find(t, "b.test", T0));
    assert_non_null(dns_table_find(t, "a.test", T0));
    assert_non_null(dns_table_find(t, "c.test", T0));
    assert_non_null(dns_table_find(t, "d.test", T0));
}

static void test_many_names_stay_bounded(void **state)
{
    (void)state;
    struct dns_table *t = dns_table_new(16);
    struct dns_addrs a = one_v4("192.0.2.1");
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "host%d.test", i);
        dns_table_put(t, name, &a, T0 + 60000);
        assert_true(dns_table_size(t) <= 16);
    }
    assert_non_null(dns_table_find(t, "host999.test", T0));
    assert_null(dns_table_find(t, "host0.test", T0));
    dns_table_free(&t);
}

static void test_addresses_bounded_in_order(void **state)
{
    (void)state;
    struct dns_addrs a = {0};
    struct in6_addr v6;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &v6), 1);
    dns_addrs_add(&a, AF_INET6, &v6);
    for (int i = 0; i < DNS_ADDRS_MAX + 5; i++) {
        struct in_addr in = {htonl(0xC0000200u + (uint32_t)i)};
        dns_addrs_add(&a, AF_INET, &in);
    }
    assert_int_equal(a.n, DNS_ADDRS_MAX);
    assert_int_equal(a.a[0].family, AF_INET6);
    assert_memory_equal(&a.a[0].u.v6, &v6, sizeof v6);
    assert_v4(&a, 1, "192.0.2.0");
    assert_v4(&a, DNS_ADDRS_MAX - 1, "192.0.2.6");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static void test_literal_addresses(void **state)
{
    (void)state;
    struct dns_addrs a;
    assert_true(dns_addrs_parse_literal("192.0.2.7", &a));
    assert_int_equal(a.n, 1);
    assert_v4(&a, 0, "192.0.2.7");
    assert_true(dns_addrs_parse_literal("2001:db8::1", &a));
    assert_int_equal(a.n, 1);
    assert_int_equal(a.a[0].family, AF_INET6);
    const char *names[] = {"imap.example.test", "localhost", "192.0.2.7.example", "", "[::1]"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        assert_false(dns_addrs_parse_literal(names[i], &a));
        assert_int_equal(a.n, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl_clamp),
        T(test_find_until_expiry),
        T(test_case_insensitive_and_distinct),
        T(test_put_replaces),
        T(test_negative_entry),
        T(test_full_table_evicts_least_recently_used),
        cmocka_unit_test(test_many_names_stay_bounded),
        cmocka_unit_test(test_addresses_bounded_in_order),
        cmocka_unit_test(test_literal_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
