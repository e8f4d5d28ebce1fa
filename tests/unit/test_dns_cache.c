/* Tests for the per-worker resolver cache (worker/dns_cache.c) against a fake nameserver run
 * in the test's own event loop: one resolution shared by concurrent waiters, TTL 0 clamped up,
 * NXDOMAIN cached briefly, the hosts file answered without a query, a cancelled wait never
 * called back while its resolution still fills the cache. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "dns_cache.h"

#define KNOWN "imap.example.test"
#define HELD "held.example.test" /* answered only when the test says so */

struct fake_ns {
    evutil_socket_t fd;
    struct event *ev;
    int queries_a, queries_aaaa;
    int holding;             /* a query for HELD came and waits */
    unsigned char held[512]; /* the last query for HELD, unanswered */
    size_t held_len;
    struct sockaddr_storage held_from;
    socklen_t held_from_len;
};

struct fixture {
    struct event_base *base;
    struct evdns_base *dns;
    struct dns_cache *cache;
    struct fake_ns ns;
    char hosts[64];
};

/* The question's name as dotted text; returns the offset after QTYPE/QCLASS, 0 if malformed. */
static size_t question(const unsigned char *q, size_t len, char *name, size_t size, int *qtype)
{
    size_t off = 12, out = 0;
    while (off < len && q[off]) {
        size_t l = q[off++];
        if (off + l > len || out + l + 1 >= size)
            return 0;
        if (out)
            name[out++] = '.';
        memcpy(name + out, q + off, l);
        out += l;
        off += l;
    }
    name[out] = '\0';
    if (off + 5 > len)
        return 0;
    *qtype = q[off + 1] << 8 | q[off + 2];
    return off + 5;
}

/* KNOWN has A 192.0.2.7 with TTL 0 and no AAAA; every other name is NXDOMAIN. */
static void answer(struct fake_ns *ns, const unsigned char *q, size_t len,
                   const struct sockaddr *from, socklen_t from_len)
{
    char name[256];
    int qtype = 0;
    size_t end = question(q, len, name, sizeof name, &qtype);
    if (!end)
        return;
    unsigned char r[512];
    memcpy(r, q, end);
    int known = strcasecmp(name, KNOWN) == 0 || strcasecmp(name, HELD) == 0;
    r[2] = 0x81;
    r[3] = known ? 0x80 : 0x83;
    memset(r + 6, 0, 6);
    size_t n = end;
    if (known && qtype == 1) {
        static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 7};
        memcpy(r + n, rr, sizeof rr);
        n += sizeof rr;
        r[7] = 1;
    }
    assert_int_equal(sendto(ns->fd, r, n, 0, from, from_len), (ssize_t)n);
}

static void on_query(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct fake_ns *ns = arg;
    unsigned char q[512];
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t len = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &from_len);
    char name[256];
    int qtype = 0;
    if (len <= 0 || !question(q, (size_t)len, name, sizeof name, &qtype))
        return;
    ns->queries_a += qtype == 1;
    ns->queries_aaaa += qtype == 28;
    if (strcasecmp(name, HELD) == 0 && qtype == 1) {
        memcpy(ns->held, q, (size_t)len);
        ns->held_len = (size_t)len;
        memcpy(&ns->held_from, &from, from_len);
        ns->held_from_len = from_len;
        ns->holding = 1;
        return;
    }
    answer(ns, q, (size_t)len, (struct sockaddr *)&from, from_len);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    f->ns.fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(f->ns.fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(f->ns.fd, (struct sockaddr *)&sin, &sl), 0);
    evutil_make_socket_nonblocking(f->ns.fd);
    f->ns.ev = event_new(f->base, f->ns.fd, EV_READ | EV_PERSIST, on_query, &f->ns);
    event_add(f->ns.ev, NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(sin.sin_port));
    f->dns = evdns_base_new(f->base, 0);
    assert_int_equal(evdns_base_nameserver_ip_add(f->dns, addr), 0);
    snprintf(f->hosts, sizeof f->hosts, "/tmp/test_dns_cache_hosts.XXXXXX");
    int fd = mkstemp(f->hosts);
    assert_true(fd >= 0);
    static const char text[] = "192.0.2.9 hosts-only.test\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    f->cache = dns_cache_new(f->base, f->dns, f->hosts);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dns_cache_free(&f->cache);
    evdns_base_free(f->dns, 1); /* fails what is in flight: orphaned queries free themselves */
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    event_free(f->ns.ev);
    close(f->ns.fd);
    unlink(f->hosts);
    event_base_free(f->base);
    free(f);
    return 0;
}

struct waiter {
    int called;
    struct dns_addrs got;
    struct dns_wait *wait;
};

static void on_answer(void *arg, const struct dns_addrs *addrs)
{
    struct waiter *w = arg;
    w->called++;
    w->got = *addrs;
    w->wait = NULL;
}

/* Runs the loop until *flag is set (2 s at most). */
static void run_until(struct fixture *f, const int *flag)
{
    for (int i = 0; i < 200 && !*flag; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
    assert_true(*flag);
}

static void assert_addr(const struct dns_addrs *a, const char *ip)
{
    char text[INET_ADDRSTRLEN];
    assert_int_equal(a->error, 0);
    assert_int_equal(a->n, 1);
    assert_int_equal(a->a[0].family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &a->a[0].u.v4, text, sizeof text));
    assert_string_equal(text, ip);
}

static int resolve(struct fixture *f, const char *name, struct waiter *w)
{
    return dns_cache_resolve(f->cache, name, &w->got, on_answer, w, &w->wait);
}

static void test_concurrent_logins_share_one_query(void **state)
{
    struct fixture *f = *state;
    struct waiter a = {0}, b = {0}, c = {0};
    assert_int_equal(resolve(f, KNOWN, &a), 0);
    assert_int_equal(resolve(f, "IMAP.example.test", &b), 0);
    run_until(f, &a.called);
    run_until(f, &b.called);
    assert_int_equal(a.called, 1);
    assert_int_equal(b.called, 1);
    assert_addr(&a.got, "192.0.2.7");
    assert_addr(&b.got, "192.0.2.7");
    assert_int_equal(f->ns.queries_a, 1);
    assert_int_equal(f->ns.queries_aaaa, 1);
    /* TTL 0 was clamped up: the next login is answered from the cache, no query */
    assert_int_equal(resolve(f, KNOWN, &c), 1);
    assert_null(c.wait);
    assert_addr(&c.got, "192.0.2.7");
    assert_int_equal(f->ns.queries_a, 1);
}

static void test_nxdomain_cached_briefly(void **state)
{
    struct fixture *f = *state;
    struct waiter a = {0}, b = {0};
    assert_int_equal(resolve(f, "nosuch.example.test", &a), 0);
    run_until(f, &a.called);
    assert_int_equal(a.got.error, EVUTIL_EAI_NONAME);
    assert_int_equal(a.got.n, 0);
    assert_int_equal(resolve(f, "nosuch.example.test", &b), 1);
    assert_int_equal(b.got.error, EVUTIL_EAI_NONAME);
    assert_int_equal(f->ns.queries_a, 1);
}

static void test_hosts_file_needs_no_query(void **state)
{
    struct fixture *f = *state;
    struct waiter a = {0};
    assert_int_equal(resolve(f, "hosts-only.test", &a), 1);
    assert_addr(&a.got, "192.0.2.9");
    event_base_loop(f->base, EVLOOP_NONBLOCK); /* the cancelled miss of nothing: no effect */
    assert_int_equal(f->ns.queries_a + f->ns.queries_aaaa, 0);
    assert_int_equal(a.called, 0);
}

static void test_cancelled_wait_is_never_called(void **state)
{
    struct fixture *f = *state;
    struct waiter gone = {0}, stays = {0}, later = {0};
    assert_int_equal(resolve(f, HELD, &gone), 0);
    assert_int_equal(resolve(f, HELD, &stays), 0);
    run_until(f, &f->ns.holding);
    dns_cache_cancel(&gone.wait);
    assert_null(gone.wait);
    dns_cache_cancel(&gone.wait); /* twice is harmless */
    answer(&f->ns, f->ns.held, f->ns.held_len, (struct sockaddr *)&f->ns.held_from,
           f->ns.held_from_len);
    run_until(f, &stays.called);
    assert_int_equal(gone.called, 0);
    assert_addr(&stays.got, "192.0.2.7");
    assert_int_equal(resolve(f, HELD, &later), 1);
    assert_addr(&later.got, "192.0.2.7");
}

static void test_wait_outliving_the_cache(void **state)
{
    struct fixture *f = *state;
    struct waiter w = {0};
    assert_int_equal(resolve(f, HELD, &w), 0);
    dns_cache_free(&f->cache); /* the worker stops with a login resolving */
    dns_cache_cancel(&w.wait); /* its session is freed afterwards */
    assert_int_equal(w.called, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_concurrent_logins_share_one_query), T(test_nxdomain_cached_briefly),
        T(test_hosts_file_needs_no_query),         T(test_cancelled_wait_is_never_called),
        T(test_wait_outliving_the_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
