/* The login guard around throttle.c (see lockout.h).
 *
 * How `mailgate user unlock` reaches the running broker: the CLI deletes rows of the store's
 * lockouts table; SQLite's PRAGMA data_version changes for every other connection when that
 * commits. The broker asks for it only when it is about to refuse a locked-out pair (cheap: no
 * I/O beyond the shared WAL index), and when it changed, checks each pair it holds locked
 * against the table and lifts those whose row is gone. */
#include "lockout.h"

#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define THROTTLE_MAX_ENTRIES 200000

struct lockouts {
    struct throttle *t;
    struct store *st;
    uint64_t lockout_ms;
    uint32_t threshold;
    int64_t seen_version;
    uint64_t started; /* lockouts begun, for GET /metrics */
};

static struct throttle_policy policy_of(const struct gateway_conf *g)
{
    uint64_t max_delay = g->max_failure_delay_ms;
    if (max_delay > IPC_DELAY_MAX_MS)
        max_delay = IPC_DELAY_MAX_MS;
    struct throttle_policy policy = {.lockout_threshold = g->lockout_threshold,
                                     .window_ms = g->lockout_window_ms,
                                     .lockout_ms = g->lockout_duration_ms,
                                     .base_delay_ms = g->auth_failure_delay_ms,
                                     .max_delay_ms = max_delay,
                                     .max_in_flight = g->max_logins_per_ip,
                                     .max_entries = THROTTLE_MAX_ENTRIES};
    return policy;
}

struct lockouts *lockouts_new(const struct gateway_conf *g, struct store *st)
{
    struct throttle_policy policy = policy_of(g);
    struct lockouts *l = mg_calloc(1, sizeof *l);
    l->t = throttle_new(&policy);
    l->st = st;
    l->lockout_ms = g->lockout_duration_ms;
    l->threshold = g->lockout_threshold;
    store_data_version(st, &l->seen_version);
    return l;
}

void lockouts_configure(struct lockouts *l, const struct gateway_conf *g)
{
    struct throttle_policy policy = policy_of(g);
    throttle_set_policy(l->t, &policy);
    l->lockout_ms = g->lockout_duration_ms;
    l->threshold = g->lockout_threshold;
}

void lockouts_free(struct lockouts **lp)
{
    if (!lp || !*lp)
        return;
    throttle_free(&(*lp)->t);
    free(*lp);
    *lp = NULL;
}

static void lift_if_unlocked(const char *user, const char *addr, void *arg)
{
    struct lockouts *l = arg;
    if (store_lockout_get(l->st, user, addr) != STORE_NOT_FOUND)
        return;
    throttle_unlock(l->t, user, addr);
    char quoted[IPC_USER_MAX + 8];
    log_info("lockout lifted by the administrator: user=%s address=%s",
             log_quote(quoted, sizeof quoted, user, (size_t)-1), addr);
}

/* Lifts the lockouts an administrator removed from the store since the last look. */
static void follow_unlocks(struct lockouts *l)
{
    int64_t version;
    if (store_data_version(l->st, &version) != STORE_OK || version == l->seen_version)
        return;
    l->seen_version = version;
    throttle_each_lockout(l->t, mg_now_ms(), lift_if_unlocked, l);
}

enum throttle_verdict lockouts_admit(struct lockouts *l, const char *user, const char *client_addr)
{
    enum throttle_verdict v = throttle_admit(l->t, user, client_addr, mg_now_ms());
    if (v != THROTTLE_LOCKED)
        return v;
    follow_unlocks(l);
    return throttle_admit(l->t, user, client_addr, mg_now_ms());
}

void lockouts_release(struct lockouts *l, const char *client_addr)
{
    throttle_release(l->t, client_addr);
}

uint64_t lockouts_started(const struct lockouts *l)
{
    return l->started;
}

static void lockout_started(struct lockouts *l, const char *user, const char *client_addr)
{
    l->started++;
    char addr[IPC_ADDR_MAX], quoted[IPC_USER_MAX + 8], lower[IPC_USER_MAX];
    throttle_address(client_addr, addr, sizeof addr);
    mg_strlcpy(lower, user, sizeof lower);
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + ('a' - 'A'));
    log_warn("lockout: user=%s address=%s locked out for %llu s after %u failed logins",
             log_quote(quoted, sizeof quoted, lower, (size_t)-1), addr,
             (unsigned long long)(l->lockout_ms / 1000), (unsigned)l->threshold);
    int64_t until = (int64_t)time(NULL) + (int64_t)(l->lockout_ms / 1000);
    if (store_lockout_put(l->st, lower, addr, until) != STORE_OK)
        log_error("lockout not recorded in the store: %s", store_last_error(l->st));
    /* Our own write does not change data_version for us; nothing to resync. */
}

uint32_t lockouts_failure(struct lockouts *l, const char *user, const char *client_addr)
{
    struct throttle_outcome o = throttle_failure(l->t, user, client_addr, mg_now_ms());
    if (o.locked_now)
        lockout_started(l, user, client_addr);
    return o.delay_ms;
}

uint32_t lockouts_failure_delay(struct lockouts *l, const char *user, const char *client_addr)
{
    return throttle_failure_delay(l->t, user, client_addr, mg_now_ms());
}
