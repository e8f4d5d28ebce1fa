/* Login throttling counters (see throttle.h).
 *
 * One chained hash table holds both kinds of entries; a key is a kind byte ('P' pair, 'A'
 * address), then for pairs the lowercased user name, a NUL and the address (IPC user names
 * never contain a NUL, so the key is unambiguous). Failures are counted in a fixed window that
 * starts with the first failure. The bucket hash is seeded at random so that clients cannot
 * aim at one chain. */
#include "throttle.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define BUCKETS 4096 /* power of two */
#define SWEEP_INTERVAL_MS 60000
#define KEY_MAX 512

struct entry {
    struct entry *next;
    uint32_t failures;
    uint64_t window_start_ms;
    uint64_t locked_until_ms;
    uint32_t in_flight;
    size_t key_len;
    char key[]; /* key_len bytes + NUL */
};

struct throttle {
    struct throttle_policy policy;
    struct entry *buckets[BUCKETS];
    size_t size;
    uint64_t seed;
    uint64_t last_sweep_ms;
    int full_logged;
};

struct key {
    char bytes[KEY_MAX];
    size_t len;
};

void throttle_address(const char *client_addr, char *out, size_t size)
{
    mg_addr_host(client_addr, out, size);
}

static void make_key(struct key *k, const char *user, const char *client_addr)
{
    char addr[KEY_MAX / 4];
    throttle_address(client_addr, addr, sizeof addr);
    size_t n = 0;
    k->bytes[n++] = user ? 'P' : 'A';
    if (user) {
        for (const char *p = user; *p && n < KEY_MAX / 2; p++)
            k->bytes[n++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p + ('a' - 'A')) : *p;
        k->bytes[n++] = '\0';
    }
    size_t alen = strlen(addr);
    memcpy(k->bytes + n, addr, alen);
    k->len = n + alen;
}

static size_t bucket_of(const struct throttle *t, const struct key *k)
{
    uint64_t h = 0xcbf29ce484222325u ^ t->seed;
    for (size_t i = 0; i < k->len; i++) {
        h ^= (unsigned char)k->bytes[i];
        h *= 0x100000001b3u;
    }
    return (size_t)(h & (BUCKETS - 1));
}

static struct entry **find_link(struct throttle *t, const struct key *k)
{
    struct entry **link = &t->buckets[bucket_of(t, k)];
    for (; *link; link = &(*link)->next)
        if ((*link)->key_len == k->len && memcmp((*link)->key, k->bytes, k->len) == 0)
            break;
    return link;
}

static int window_over(const struct throttle *t, const struct entry *e, uint64_t now)
{
    return e->failures == 0 || now - e->window_start_ms >= t->policy.window_ms;
}

static int idle(const struct throttle *t, const struct entry *e, uint64_t now)
{
    return e->in_flight == 0 && e->locked_until_ms <= now && window_over(t, e, now);
}

static void sweep(struct throttle *t, uint64_t now)
{
    t->last_sweep_ms = now;
    for (size_t b = 0; b < BUCKETS; b++) {
        struct entry **link = &t->buckets[b];
        while (*link) {
            struct entry *e = *link;
            if (idle(t, e, now)) {
                *link = e->next;
                free(e);
                t->size--;
            } else {
                link = &e->next;
            }
        }
    }
}

/* The entry for k, created when create is set and there is room; NULL otherwise. */
static struct entry *lookup(struct throttle *t, const struct key *k, uint64_t now, int create)
{
    struct entry **link = find_link(t, k);
    if (*link || !create)
        return *link;
    if (t->size >= t->policy.max_entries || now - t->last_sweep_ms >= SWEEP_INTERVAL_MS) {
        sweep(t, now);
        link = find_link(t, k);
    }
    if (t->size >= t->policy.max_entries) {
        if (!t->full_logged)
            log_warn("login throttle: table full (%zu entries); new addresses are not counted",
                     t->size);
        t->full_logged = 1;
        return NULL;
    }
    t->full_logged = 0;
    struct entry *e = mg_calloc(1, sizeof *e + k->len + 1);
    memcpy(e->key, k->bytes, k->len);
    e->key_len = k->len;
    *link = e;
    t->size++;
    return e;
}

void throttle_set_policy(struct throttle *t, const struct throttle_policy *policy)
{
    t->policy = *policy;
    if (t->policy.max_entries == 0)
        t->policy.max_entries = 100000;
}

struct throttle *throttle_new(const struct throttle_policy *policy)
{
    struct throttle *t = mg_calloc(1, sizeof *t);
    t->policy = *policy;
    if (t->policy.max_entries == 0)
        t->policy.max_entries = 100000;
    mg_random_bytes(&t->seed, sizeof t->seed);
    return t;
}

void throttle_free(struct throttle **tp)
{
    if (!tp || !*tp)
        return;
    struct throttle *t = *tp;
    for (size_t b = 0; b < BUCKETS; b++) {
        struct entry *e = t->buckets[b];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t);
    *tp = NULL;
}

static int locked(const struct entry *e, uint64_t now)
{
    return e && e->locked_until_ms > now;
}

enum throttle_verdict throttle_admit(struct throttle *t, const char *user, const char *addr,
                                     uint64_t now_ms)
{
    struct key pk, ak;
    make_key(&pk, user, addr);
    make_key(&ak, NULL, addr);
    if (locked(lookup(t, &pk, now_ms, 0), now_ms))
        return THROTTLE_LOCKED;
    struct entry *a = lookup(t, &ak, now_ms, t->policy.max_in_flight > 0);
    if (!a)
        return THROTTLE_GO;
    if (t->policy.max_in_flight && a->in_flight >= t->policy.max_in_flight)
        return THROTTLE_BUSY;
    a->in_flight++;
    return THROTTLE_GO;
}

void throttle_release(struct throttle *t, const char *addr)
{
    struct key ak;
    make_key(&ak, NULL, addr);
    struct entry *a = *find_link(t, &ak);
    if (a && a->in_flight > 0)
        a->in_flight--;
}

/* Counts one failure in e's window; returns the count. */
/* The count the next failure of entry e would reach at now (count_failure without counting). */
static uint32_t next_count(const struct throttle *t, const struct entry *e, uint64_t now)
{
    if (!e || window_over(t, e, now))
        return 1;
    return e->failures < UINT32_MAX ? e->failures + 1 : UINT32_MAX;
}

static uint32_t count_failure(const struct throttle *t, struct entry *e, uint64_t now)
{
    uint32_t n = next_count(t, e, now);
    if (e && n == 1)
        e->window_start_ms = now; /* a new window starts with its first failure */
    if (e)
        e->failures = n;
    return n;
}

/* Failure n (n >= 2) waits base * 2^(n-1), at most max_delay; the first one the worker's own
 * base delay (0 in the reply). */
static uint32_t delay_for(const struct throttle *t, uint32_t n)
{
    uint64_t base = t->policy.base_delay_ms ? t->policy.base_delay_ms : 100;
    uint64_t max = t->policy.max_delay_ms;
    if (n <= 1 || max == 0)
        return 0;
    uint64_t d = base;
    for (uint32_t i = 1; i < n && d < max; i++)
        d *= 2;
    return (uint32_t)(d < max ? d : max);
}

struct throttle_outcome throttle_failure(struct throttle *t, const char *user, const char *addr,
                                         uint64_t now_ms)
{
    struct throttle_outcome out = {0, 0};
    struct key pk, ak;
    make_key(&pk, user, addr);
    make_key(&ak, NULL, addr);
    uint32_t by_addr = count_failure(t, lookup(t, &ak, now_ms, 1), now_ms);
    struct entry *p = lookup(t, &pk, now_ms, 1);
    if (locked(p, now_ms)) {
        out.delay_ms = (uint32_t)t->policy.max_delay_ms;
        return out;
    }
    uint32_t by_pair = count_failure(t, p, now_ms);
    out.delay_ms = delay_for(t, by_pair > by_addr ? by_pair : by_addr);
    if (p && t->policy.lockout_threshold && by_pair >= t->policy.lockout_threshold) {
        p->locked_until_ms = now_ms + t->policy.lockout_ms;
        p->failures = 0; /* after the lockout, a fresh count */
        out.locked_now = 1;
    }
    return out;
}

uint32_t throttle_failure_delay(struct throttle *t, const char *user, const char *addr,
                                uint64_t now_ms)
{
    struct key pk, ak;
    make_key(&pk, user, addr);
    make_key(&ak, NULL, addr);
    uint32_t by_addr = next_count(t, lookup(t, &ak, now_ms, 0), now_ms);
    uint32_t by_pair = next_count(t, lookup(t, &pk, now_ms, 0), now_ms);
    return delay_for(t, by_pair > by_addr ? by_pair : by_addr);
}

/* The user part of a pair key (lowercased) equals user lowercased. */
static int pair_of_user(const struct entry *e, const struct key *prefix)
{
    return e->key_len > prefix->len && memcmp(e->key, prefix->bytes, prefix->len) == 0;
}

size_t throttle_unlock(struct throttle *t, const char *user, const char *addr)
{
    struct key k;
    size_t lifted = 0;
    if (addr) {
        make_key(&k, user, addr);
        struct entry *p = *find_link(t, &k);
        if (p && p->locked_until_ms) {
            p->locked_until_ms = 0;
            p->failures = 0;
            lifted++;
        }
        return lifted;
    }
    make_key(&k, user, ""); /* "P" user NUL: the prefix of every pair of user */
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct entry *e = t->buckets[b]; e; e = e->next) {
            if (pair_of_user(e, &k) && e->locked_until_ms) {
                e->locked_until_ms = 0;
                e->failures = 0;
                lifted++;
            }
        }
    }
    return lifted;
}

void throttle_each_lockout(struct throttle *t, uint64_t now_ms,
                           void (*cb)(const char *user, const char *addr, void *arg), void *arg)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct entry *e = t->buckets[b]; e;) {
            struct entry *next = e->next; /* cb may unlock e (never free it) */
            if (e->key[0] == 'P' && locked(e, now_ms)) {
                const char *user = e->key + 1;
                cb(user, user + strlen(user) + 1, arg);
            }
            e = next;
        }
    }
}

size_t throttle_size(const struct throttle *t)
{
    return t->size;
}
