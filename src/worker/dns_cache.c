/* Per-worker resolver cache (dns_cache.h). evdns_getaddrinfo(), which libevent's
 * bufferevent_socket_connect_hostname() uses, does not report the TTL, so names are asked with
 * evdns_base_resolve_ipv4() and _ipv6() in parallel, whose callbacks get it.
 *
 * Those two never read the hosts file, and evdns exposes its hosts table only through
 * evdns_getaddrinfo(), which answers a hosts-file name before returning. So the hosts file is
 * loaded into a second evdns base that has no nameserver: asked there first, a hosts-file name
 * is answered at once and any other name costs nothing on the network (its request waits for a
 * nameserver that never comes and is cancelled right away). This keeps the system's order
 * (hosts file, then DNS) without a hosts parser of our own, and the file is read at start,
 * before the sandbox's chroot hides it.
 *
 * evdns calls back later from the loop even after evdns_cancel_request(), so a resolution in
 * flight is never freed before both of its callbacks ran; waiters only detach from it. */
#include "dns_cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "util.h"

/* Once one family answered with addresses, how long the other may still take before the
 * answer goes out without it: evdns_getaddrinfo()'s default ("getaddrinfo-allow-skew"). */
#define DNS_SKEW_MS 3000

struct dns_query;

/* One of a query's two requests; its callback's arg (evdns gives no type on errors). */
struct dns_half {
    struct dns_query *q;
    struct evdns_request *req; /* NULL once its callback ran */
    int family;
    int result; /* DNS_ERR_* */
    uint32_t ttl;
    struct dns_addrs addrs;
};

struct dns_wait {
    struct dns_query *q;
    struct dns_wait *next;
    dns_cache_cb cb;
    void *arg;
};

struct dns_query {
    struct dns_cache *cache; /* NULL once the cache is freed or the answer went out */
    struct dns_query *next;  /* in cache->pending */
    char *name;
    struct dns_half half[2]; /* A, AAAA */
    struct event *skew;
    struct dns_wait *waiters;
};

struct dns_cache {
    struct event_base *base;
    struct evdns_base *dns;
    struct evdns_base *hosts; /* the hosts file only, no nameserver; NULL: none */
    struct dns_table *table;
    struct dns_query *pending;
};

struct dns_cache *dns_cache_new(struct event_base *base, struct evdns_base *dns,
                                const char *hosts_file)
{
    struct dns_cache *c = mg_calloc(1, sizeof *c);
    c->base = base;
    c->dns = dns;
    c->table = dns_table_new(DNS_CACHE_ENTRIES);
    if (hosts_file) {
        c->hosts = evdns_base_new(base, 0);
        if (c->hosts && evdns_base_load_hosts(c->hosts, hosts_file) != 0)
            log_warn("cannot read %s; host names are looked up in DNS only", hosts_file);
    }
    return c;
}

/* ---- the hosts file ---- */

struct hosts_answer {
    int called;
    struct dns_addrs *out;
};

static void on_hosts_answer(int result, struct evutil_addrinfo *res, void *arg)
{
    if (result == EVUTIL_EAI_CANCEL) /* the cancelled miss, later: arg is long gone */
        return;
    struct hosts_answer *h = arg;
    h->called = 1;
    h->out->error = result;
    for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET)
            dns_addrs_add(h->out, AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr);
        else if (ai->ai_family == AF_INET6)
            dns_addrs_add(h->out, AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
    }
    if (res)
        evutil_freeaddrinfo(res);
}

/* 1 with *out filled when name is in the hosts file, else 0. */
static int from_hosts(struct dns_cache *c, const char *name, struct dns_addrs *out)
{
    if (!c->hosts)
        return 0;
    struct evutil_addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    struct hosts_answer h = {.out = out};
    memset(out, 0, sizeof *out);
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(c->hosts, name, NULL, &hints, on_hosts_answer, &h);
    if (req) {
        /* Not in the file. The cancel's callback comes later: it must not see &h. */
        evdns_getaddrinfo_cancel(req);
        return 0;
    }
    return h.called && !h.out->error && out->n > 0;
}

/* ---- answers ---- */

static void query_free(struct dns_query *q)
{
    event_free(q->skew);
    free(q->name);
    free(q);
}

/* Both requests' callbacks ran and the answer went out. */
static int query_finished(const struct dns_query *q)
{
    return !q->cache && !q->half[0].req && !q->half[1].req;
}

static int name_missing(int result)
{
    return result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA || result == DNS_ERR_NONE;
}

/* Both families in one list (IPv4 first, as evdns_getaddrinfo() orders them), the smallest
 * TTL of those that answered, or the error: "no such name" only when neither family failed
 * otherwise (an A answer and a timed-out AAAA is an answer). */
static uint64_t combine(const struct dns_query *q, struct dns_addrs *out)
{
    memset(out, 0, sizeof *out);
    uint32_t ttl = UINT32_MAX;
    for (int i = 0; i < 2; i++) {
        const struct dns_half *h = &q->half[i];
        for (size_t k = 0; k < h->addrs.n; k++)
            dns_addrs_add(out, h->family, &h->addrs.a[k].u);
        if (h->addrs.n && h->ttl < ttl)
            ttl = h->ttl;
    }
    if (out->n)
        return dns_ttl_clamp_ms(ttl);
    if (name_missing(q->half[0].result) && name_missing(q->half[1].result)) {
        out->error = EVUTIL_EAI_NONAME;
        return DNS_NEGATIVE_TTL_MS;
    }
    out->error = EVUTIL_EAI_FAIL;
    return 0; /* not stored */
}

static void unlink_pending(struct dns_cache *c, struct dns_query *q)
{
    for (struct dns_query **p = &c->pending; *p; p = &(*p)->next) {
        if (*p == q) {
            *p = q->next;
            return;
        }
    }
}

/* Stores the answer and gives it to every waiter. A waiter's callback may cancel another
 * waiter (its session closes), so each is unlinked before its callback runs. */
static void answer(struct dns_query *q)
{
    struct dns_addrs addrs;
    uint64_t lifetime = combine(q, &addrs);
    evtimer_del(q->skew);
    if (q->cache) {
        if (lifetime)
            dns_table_put(q->cache->table, q->name, &addrs, mg_now_ms() + lifetime);
        unlink_pending(q->cache, q);
        q->cache = NULL;
    }
    log_debug("dns: %s: %zu address(es)%s%s", q->name, addrs.n, addrs.error ? ", " : "",
              addrs.error ? evutil_gai_strerror(addrs.error) : "");
    struct dns_wait *w;
    while ((w = q->waiters)) {
        q->waiters = w->next;
        dns_cache_cb cb = w->cb;
        void *arg = w->arg;
        free(w);
        cb(arg, &addrs);
    }
}

static void on_skew(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    answer(arg);
}

static void on_reply(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    MG_UNUSED(type);
    struct dns_half *h = arg;
    struct dns_query *q = h->q;
    h->req = NULL;
    h->result = result;
    h->ttl = ttl > 0 ? (uint32_t)ttl : 0;
    size_t size = h->family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);
    for (int i = 0; result == DNS_ERR_NONE && i < count; i++)
        dns_addrs_add(&h->addrs, h->family, (const char *)addresses + (size_t)i * size);
    struct dns_half *other = &q->half[h == &q->half[0]];
    if (q->cache || q->waiters) { /* the answer has not gone out yet */
        if (!other->req)
            answer(q);
        else if (h->addrs.n) {
            struct timeval tv = {DNS_SKEW_MS / 1000, (DNS_SKEW_MS % 1000) * 1000};
            evtimer_add(q->skew, &tv);
        }
    }
    if (query_finished(q) && !q->waiters)
        query_free(q);
}

/* ---- interface ---- */

static struct dns_query *find_pending(struct dns_cache *c, const char *name)
{
    for (struct dns_query *q = c->pending; q; q = q->next)
        if (strcasecmp(q->name, name) == 0)
            return q;
    return NULL;
}

static void start_half(struct dns_cache *c, struct dns_query *q, int i, int family)
{
    struct dns_half *h = &q->half[i];
    h->q = q;
    h->family = family;
    h->result = DNS_ERR_UNKNOWN;
    h->req = family == AF_INET ? evdns_base_resolve_ipv4(c->dns, q->name, 0, on_reply, h)
                               : evdns_base_resolve_ipv6(c->dns, q->name, 0, on_reply, h);
}

/* NULL when evdns cannot even start a request. */
static struct dns_query *start_query(struct dns_cache *c, const char *name)
{
    struct dns_query *q = mg_calloc(1, sizeof *q);
    q->cache = c;
    q->name = mg_strdup(name);
    q->skew = evtimer_new(c->base, on_skew, q);
    start_half(c, q, 0, AF_INET);
    start_half(c, q, 1, AF_INET6);
    if (!q->half[0].req && !q->half[1].req) {
        query_free(q);
        return NULL;
    }
    q->next = c->pending;
    c->pending = q;
    return q;
}

int dns_cache_resolve(struct dns_cache *c, const char *name, struct dns_addrs *out, dns_cache_cb cb,
                      void *arg, struct dns_wait **wait)
{
    *wait = NULL;
    const struct dns_addrs *hit = dns_table_find(c->table, name, mg_now_ms());
    if (hit) {
        *out = *hit;
        return 1;
    }
    if (from_hosts(c, name, out)) {
        dns_table_put(c->table, name, out, mg_now_ms() + DNS_HOSTS_TTL_MS);
        return 1;
    }
    struct dns_query *q = find_pending(c, name);
    if (!q)
        q = start_query(c, name);
    if (!q) {
        memset(out, 0, sizeof *out);
        out->error = EVUTIL_EAI_FAIL;
        return 1;
    }
    struct dns_wait *w = mg_calloc(1, sizeof *w);
    w->q = q;
    w->cb = cb;
    w->arg = arg;
    w->next = q->waiters;
    q->waiters = w;
    *wait = w;
    return 0;
}

void dns_cache_cancel(struct dns_wait **wait)
{
    struct dns_wait *w = *wait;
    if (!w)
        return;
    *wait = NULL;
    for (struct dns_wait **p = &w->q->waiters; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    free(w);
}

void dns_cache_free(struct dns_cache **cp)
{
    struct dns_cache *c = *cp;
    if (!c)
        return;
    for (struct dns_query *q = c->pending; q; q = q->next)
        q->cache = NULL;
    dns_table_free(&c->table);
    if (c->hosts)
        evdns_base_free(c->hosts, 0);
    free(c);
    *cp = NULL;
}
