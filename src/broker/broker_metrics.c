/* Workers' snapshots, totals of gone workers, token requests and health (broker_metrics.h). */
#include "broker_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "lockout.h"
#include "token.h"
#include "util.h"
#include "verify_pool.h"

struct worker_slot {
    int index;
    uint64_t last_ms;
    struct metrics_snapshot snap;
    struct worker_slot *next;
};

struct broker_metrics {
    struct worker_slot *slots;    /* one per worker that has reported */
    struct metrics_counters gone; /* last snapshots of workers that went away */
    uint32_t n_providers;
    struct metrics_provider providers[METRICS_PROVIDERS_MAX];
};

struct broker_metrics *broker_metrics_new(void)
{
    return mg_calloc(1, sizeof(struct broker_metrics));
}

void broker_metrics_free(struct broker_metrics **mp)
{
    struct broker_metrics *m = *mp;
    if (!m)
        return;
    while (m->slots) {
        struct worker_slot *s = m->slots;
        m->slots = s->next;
        free(s);
    }
    free(m);
    *mp = NULL;
}

static struct worker_slot **slot_link(struct broker_metrics *m, int index)
{
    struct worker_slot **p = &m->slots;
    while (*p && (*p)->index != index)
        p = &(*p)->next;
    return p;
}

void broker_metrics_snapshot(struct broker_metrics *m, int index, const struct metrics_snapshot *s,
                             uint64_t now_ms)
{
    struct worker_slot **p = slot_link(m, index);
    if (!*p) {
        *p = mg_calloc(1, sizeof **p);
        (*p)->index = index;
    }
    (*p)->snap = *s;
    (*p)->snap.worker_index = (uint32_t)index; /* the link's index, whatever the worker says */
    (*p)->last_ms = now_ms;
}

void broker_metrics_retire(struct broker_metrics *m, int index)
{
    struct worker_slot **p = slot_link(m, index);
    struct worker_slot *s = *p;
    if (!s)
        return;
    metrics_counters_add(&m->gone, &s->snap.c);
    *p = s->next;
    free(s);
}

void broker_metrics_token_request(struct broker_metrics *m, const char *provider, unsigned result)
{
    if (result >= METRICS_TOKEN_RESULTS)
        return;
    for (uint32_t i = 0; i < m->n_providers; i++) {
        if (strcmp(m->providers[i].name, provider) == 0) {
            m->providers[i].requests[result]++;
            return;
        }
    }
    if (m->n_providers == METRICS_PROVIDERS_MAX)
        return;
    struct metrics_provider *p = &m->providers[m->n_providers++];
    mg_strlcpy(p->name, provider, sizeof p->name);
    p->requests[result] = 1;
}

/* Health: every worker slot that is not draining is alive and reported lately. */
static void judge_health(const struct broker_metrics *m, int expected, uint64_t now_ms,
                         struct metrics_report *out)
{
    int fresh = 0;
    for (const struct worker_slot *s = m->slots; s; s = s->next) {
        if (s->snap.draining)
            continue;
        uint64_t age = now_ms - s->last_ms;
        if (age > BROKER_METRICS_STALE_MS) {
            snprintf(out->health, sizeof out->health, "worker %d has not reported for %llu ms",
                     s->index, (unsigned long long)age);
            return;
        }
        fresh++;
    }
    if (fresh < expected) {
        snprintf(out->health, sizeof out->health, "%d of %d workers running", fresh, expected);
        return;
    }
    out->healthy = 1;
    mg_strlcpy(out->health, "ok", sizeof out->health);
}

void broker_metrics_report(const struct broker_metrics *m, int expected, uint64_t now_ms,
                           struct metrics_report *out)
{
    out->totals = m->gone;
    for (const struct worker_slot *s = m->slots; s; s = s->next) {
        metrics_counters_add(&out->totals, &s->snap.c);
        if (out->n_workers == METRICS_WORKERS_MAX)
            continue;
        struct metrics_worker_gauge *g = &out->workers[out->n_workers++];
        g->index = (uint32_t)s->index;
        memcpy(g->sessions_open, s->snap.sessions_open, sizeof g->sessions_open);
    }
    out->n_providers = m->n_providers;
    memcpy(out->providers, m->providers, sizeof out->providers);
    judge_health(m, expected, now_ms, out);
}

int broker_metrics_answer(const struct broker_metrics *m, const struct broker_counted *by,
                          int expected, uint32_t id, struct evbuffer *out)
{
    struct metrics_report *r = mg_calloc(1, sizeof *r); /* 5 KiB: not on the stack */
    broker_metrics_report(m, expected, mg_now_ms(), r);
    r->id = id;
    r->token_cache_hits = token_client_cache_hits(by->tokens);
    struct verify_stats vs;
    verify_pool_stats(by->pool, &vs);
    r->argon2_queue = vs.queued;
    r->lockouts = lockouts_started(by->guard);
    int rc = ipc_encode_metrics_report(out, r);
    free(r);
    return rc;
}
