/* Remembered password verifications.
 *
 * Layout: a chained hash table keyed by the ASCII-lowercased user name, plus one doubly linked
 * list of all entries ordered by when they were (re)remembered. Every entry lives for the same
 * TTL, so the head of that list is both the oldest and the first to expire: eviction and expiry
 * purging only ever look at the head. Only users whose password was just verified are inserted,
 * so clients cannot fill the table with names of their choosing; the bucket hash is still seeded
 * with random bytes so that the layout is not predictable either. */
#include "authcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "log.h"
#include "util.h"

#define MAC_KEY_LEN 32
#define MAC_LEN 32

struct cache_entry {
    struct cache_entry *bucket_next;
    struct cache_entry *older, *newer;
    char *user; /* lowercased */
    unsigned char mac[MAC_LEN];
    uint64_t expires_ms;
};

struct auth_cache {
    uint64_t ttl_ms;
    size_t max_entries;
    size_t size;
    struct cache_entry **buckets;
    size_t n_buckets; /* power of two */
    struct cache_entry *oldest, *newest;
    uint64_t hash_seed;
    unsigned char key[MAC_KEY_LEN];
    EVP_MAC *hmac;
    /* The verify pool's threads check the cache when a queued job starts (verify_pool.h). */
    pthread_mutex_t lock;
};

static size_t bucket_count_for(size_t max_entries)
{
    size_t n = 16;
    while (n < max_entries && n < ((size_t)1 << 24))
        n <<= 1;
    return n;
}

struct auth_cache *auth_cache_new(uint64_t ttl_ms, size_t max_entries)
{
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!hmac) {
        log_error("auth cache: OpenSSL has no HMAC implementation");
        return NULL;
    }
    struct auth_cache *c = mg_calloc(1, sizeof *c);
    c->ttl_ms = ttl_ms;
    c->max_entries = max_entries;
    c->n_buckets = bucket_count_for(max_entries);
    c->buckets = mg_calloc(c->n_buckets, sizeof *c->buckets);
    c->hmac = hmac;
    mg_random_bytes(c->key, sizeof c->key);
    mg_random_bytes(&c->hash_seed, sizeof c->hash_seed);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static int ascii_lower(int ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch + ('a' - 'A') : ch;
}

/* FNV-1a over the lowercased name, started from the random seed. */
static size_t bucket_of(const struct auth_cache *c, const char *user)
{
    uint64_t h = 0xcbf29ce484222325u ^ c->hash_seed;
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        h ^= (uint64_t)ascii_lower(*p);
        h *= 0x100000001b3u;
    }
    h ^= h >> 29;
    return (size_t)(h & (c->n_buckets - 1));
}

static struct cache_entry **find_link(struct auth_cache *c, const char *user)
{
    struct cache_entry **link = &c->buckets[bucket_of(c, user)];
    while (*link && mg_ascii_casecmp((*link)->user, user) != 0)
        link = &(*link)->bucket_next;
    return link;
}

static void age_list_unlink(struct auth_cache *c, struct cache_entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    e->older = e->newer = NULL;
}

static void age_list_append(struct auth_cache *c, struct cache_entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

static void entry_destroy(struct cache_entry *e)
{
    mg_free_secret(&e->user);
    mg_wipe(e, sizeof *e);
    free(e);
}

/* Removes the entry behind *link (a bucket slot or a bucket_next field). */
static void remove_at(struct auth_cache *c, struct cache_entry **link)
{
    struct cache_entry *e = *link;
    *link = e->bucket_next;
    age_list_unlink(c, e);
    c->size--;
    entry_destroy(e);
}

static void remove_entry(struct auth_cache *c, struct cache_entry *e)
{
    remove_at(c, find_link(c, e->user));
}

static void purge_expired(struct auth_cache *c, uint64_t now_ms)
{
    while (c->oldest && c->oldest->expires_ms <= now_ms)
        remove_entry(c, c->oldest);
}

/* HMAC-SHA256(key, stored_hash NUL password). Returns 0 or -1. */
static int compute_mac(struct auth_cache *c, const char *stored_hash, const char *pw, size_t len,
                       unsigned char out[MAC_LEN])
{
    static const unsigned char nul = 0;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(c->hmac);
    size_t out_len = 0;
    int ok = ctx && EVP_MAC_init(ctx, c->key, sizeof c->key, params) &&
             EVP_MAC_update(ctx, (const unsigned char *)stored_hash, strlen(stored_hash)) &&
             EVP_MAC_update(ctx, &nul, 1) && EVP_MAC_update(ctx, (const unsigned char *)pw, len) &&
             EVP_MAC_final(ctx, out, &out_len, MAC_LEN) && out_len == MAC_LEN;
    EVP_MAC_CTX_free(ctx);
    if (!ok) {
        log_error("auth cache: HMAC-SHA256 failed");
        mg_wipe(out, MAC_LEN);
        return -1;
    }
    return 0;
}

static int check_locked(struct auth_cache *c, const char *user, const char *stored_hash,
                        const char *pw, size_t len, uint64_t now_ms)
{
    struct cache_entry **link = find_link(c, user);
    if (!*link)
        return 0;
    if ((*link)->expires_ms <= now_ms) {
        remove_at(c, link);
        return 0;
    }
    unsigned char mac[MAC_LEN];
    if (compute_mac(c, stored_hash, pw, len, mac) != 0)
        return 0;
    int hit = mg_ct_equal(mac, (*link)->mac, MAC_LEN);
    mg_wipe(mac, sizeof mac);
    return hit;
}

static struct cache_entry *entry_for(struct auth_cache *c, const char *user)
{
    struct cache_entry **link = find_link(c, user);
    if (*link) {
        age_list_unlink(c, *link);
        return *link;
    }
    if (c->size >= c->max_entries)
        remove_entry(c, c->oldest);
    struct cache_entry *e = mg_calloc(1, sizeof *e);
    e->user = mg_strdup(user);
    for (char *p = e->user; *p; p++)
        *p = (char)ascii_lower((unsigned char)*p);
    /* Re-find: the eviction above may have changed this bucket's chain. */
    link = find_link(c, user);
    *link = e;
    c->size++;
    return e;
}

static void forget_locked(struct auth_cache *c, const char *user)
{
    struct cache_entry **link = find_link(c, user);
    if (*link)
        remove_at(c, link);
}

static void remember_locked(struct auth_cache *c, const char *user, const char *stored_hash,
                            const char *pw, size_t len, uint64_t now_ms)
{
    unsigned char mac[MAC_LEN];
    if (compute_mac(c, stored_hash, pw, len, mac) != 0) {
        forget_locked(c, user);
        return;
    }
    purge_expired(c, now_ms);
    struct cache_entry *e = entry_for(c, user);
    memcpy(e->mac, mac, MAC_LEN);
    mg_wipe(mac, sizeof mac);
    e->expires_ms = c->ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + c->ttl_ms;
    age_list_append(c, e);
}

int auth_cache_check(struct auth_cache *c, const char *user, const char *stored_hash,
                     const char *pw, size_t len, uint64_t now_ms)
{
    if (!c || !user || !stored_hash || !pw)
        return 0;
    pthread_mutex_lock(&c->lock);
    int hit = check_locked(c, user, stored_hash, pw, len, now_ms);
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void auth_cache_remember(struct auth_cache *c, const char *user, const char *stored_hash,
                         const char *pw, size_t len, uint64_t now_ms)
{
    if (!c || !user || !stored_hash || !pw || c->ttl_ms == 0 || c->max_entries == 0)
        return;
    pthread_mutex_lock(&c->lock);
    remember_locked(c, user, stored_hash, pw, len, now_ms);
    pthread_mutex_unlock(&c->lock);
}

void auth_cache_forget(struct auth_cache *c, const char *user)
{
    if (!c || !user)
        return;
    pthread_mutex_lock(&c->lock);
    forget_locked(c, user);
    pthread_mutex_unlock(&c->lock);
}

size_t auth_cache_size(const struct auth_cache *c)
{
    return c ? c->size : 0;
}

void auth_cache_free(struct auth_cache **cp)
{
    if (!cp || !*cp)
        return;
    struct auth_cache *c = *cp;
    while (c->oldest)
        remove_entry(c, c->oldest);
    free(c->buckets);
    EVP_MAC_free(c->hmac);
    pthread_mutex_destroy(&c->lock);
    mg_wipe(c, sizeof *c);
    free(c);
    *cp = NULL;
}
