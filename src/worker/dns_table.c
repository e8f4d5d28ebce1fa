/* The resolver cache's table. A flat array searched linearly: the names are the providers'
 * server names from the configuration (not from clients), a handful per gateway, and a lookup
 * is made once per login, next to a TLS handshake; a hash or a list would be code without a
 * measurable gain. Recency is a counter stamped on each hit, so eviction scans once too. */
#include "dns_table.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include "util.h"

struct dns_entry {
    char *name; /* NULL: free slot */
    uint64_t expires_ms;
    uint64_t used; /* the table's tick at the last hit or store */
    struct dns_addrs addrs;
};

struct dns_table {
    struct dns_entry *e;
    size_t max, n;
    uint64_t tick;
};

void dns_addrs_add(struct dns_addrs *a, int family, const void *addr)
{
    if (a->n >= DNS_ADDRS_MAX)
        return;
    struct dns_addr *d = &a->a[a->n++];
    memset(d, 0, sizeof *d);
    d->family = family;
    if (family == AF_INET)
        memcpy(&d->u.v4, addr, sizeof d->u.v4);
    else
        memcpy(&d->u.v6, addr, sizeof d->u.v6);
}

int dns_addrs_parse_literal(const char *host, struct dns_addrs *out)
{
    struct in6_addr a; /* room for either family */
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, &a) == 1)
        dns_addrs_add(out, AF_INET, &a);
    else if (inet_pton(AF_INET6, host, &a) == 1)
        dns_addrs_add(out, AF_INET6, &a);
    return out->n > 0;
}

uint64_t dns_ttl_clamp_ms(int64_t ttl_s)
{
    if (ttl_s < DNS_TTL_MIN_S)
        ttl_s = DNS_TTL_MIN_S;
    if (ttl_s > DNS_TTL_MAX_S)
        ttl_s = DNS_TTL_MAX_S;
    return (uint64_t)ttl_s * 1000;
}

struct dns_table *dns_table_new(size_t max_entries)
{
    struct dns_table *t = mg_calloc(1, sizeof *t);
    t->max = max_entries ? max_entries : 1;
    t->e = mg_calloc(t->max, sizeof *t->e);
    return t;
}

static void drop(struct dns_table *t, struct dns_entry *e)
{
    free(e->name);
    memset(e, 0, sizeof *e);
    t->n--;
}

void dns_table_free(struct dns_table **tp)
{
    struct dns_table *t = *tp;
    if (!t)
        return;
    for (size_t i = 0; i < t->max; i++)
        free(t->e[i].name);
    free(t->e);
    free(t);
    *tp = NULL;
}

static struct dns_entry *lookup(struct dns_table *t, const char *name)
{
    for (size_t i = 0; i < t->max; i++)
        if (t->e[i].name && strcasecmp(t->e[i].name, name) == 0)
            return &t->e[i];
    return NULL;
}

const struct dns_addrs *dns_table_find(struct dns_table *t, const char *name, uint64_t now_ms)
{
    struct dns_entry *e = lookup(t, name);
    if (!e)
        return NULL;
    if (now_ms >= e->expires_ms) {
        drop(t, e);
        return NULL;
    }
    e->used = ++t->tick;
    return &e->addrs;
}

/* A free slot, or the least recently used entry's, emptied. */
static struct dns_entry *free_slot(struct dns_table *t)
{
    struct dns_entry *oldest = &t->e[0];
    for (size_t i = 0; i < t->max; i++) {
        if (!t->e[i].name)
            return &t->e[i];
        if (t->e[i].used < oldest->used)
            oldest = &t->e[i];
    }
    drop(t, oldest);
    return oldest;
}

void dns_table_put(struct dns_table *t, const char *name, const struct dns_addrs *a,
                   uint64_t expires_ms)
{
    struct dns_entry *e = lookup(t, name);
    if (!e) {
        e = free_slot(t);
        e->name = mg_strdup(name);
        t->n++;
    }
    e->expires_ms = expires_ms;
    e->used = ++t->tick;
    e->addrs = *a;
}

size_t dns_table_size(const struct dns_table *t)
{
    return t->n;
}
