/* Connections per client address (see conn_count.h). The bucket hash is seeded at random so
 * that clients cannot aim at one chain; the number of entries is bounded by the connections. */
#include "conn_count.h"

#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "util.h"

#define BUCKETS 1024 /* power of two */

struct count_entry {
    struct count_entry *next;
    size_t count;
    char host[IPC_ADDR_MAX];
};

struct conn_count {
    struct count_entry *buckets[BUCKETS];
    uint64_t seed;
};

struct conn_count *conn_count_new(void)
{
    struct conn_count *cc = mg_calloc(1, sizeof *cc);
    mg_random_bytes(&cc->seed, sizeof cc->seed);
    return cc;
}

void conn_count_free(struct conn_count **ccp)
{
    if (!ccp || !*ccp)
        return;
    for (size_t b = 0; b < BUCKETS; b++) {
        struct count_entry *e = (*ccp)->buckets[b];
        while (e) {
            struct count_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(*ccp);
    *ccp = NULL;
}

static struct count_entry **find_link(struct conn_count *cc, const char *host)
{
    uint64_t h = 0xcbf29ce484222325u ^ cc->seed;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3u;
    }
    struct count_entry **link = &cc->buckets[h & (BUCKETS - 1)];
    while (*link && strcmp((*link)->host, host) != 0)
        link = &(*link)->next;
    return link;
}

size_t conn_count_add(struct conn_count *cc, const char *client_addr)
{
    char host[IPC_ADDR_MAX];
    mg_addr_host(client_addr, host, sizeof host);
    struct count_entry **link = find_link(cc, host);
    if (!*link) {
        *link = mg_calloc(1, sizeof **link);
        mg_strlcpy((*link)->host, host, sizeof(*link)->host);
    }
    return ++(*link)->count;
}

void conn_count_remove(struct conn_count *cc, const char *client_addr)
{
    char host[IPC_ADDR_MAX];
    mg_addr_host(client_addr, host, sizeof host);
    struct count_entry **link = find_link(cc, host);
    struct count_entry *e = *link;
    if (!e)
        return;
    if (--e->count == 0) {
        *link = e->next;
        free(e);
    }
}
