/* The broker's side of the operation counters (common/metrics.h): the workers' snapshots, the
 * totals of workers that went away (so counters never go down when a worker is restarted or
 * replaced by a reload), token requests per provider, and the health verdict of GET /healthz.
 * Pure bookkeeping: broker.c feeds it and adds what the token client, the verify pool and the
 * lockouts count themselves. */
#ifndef MG_BROKER_METRICS_H
#define MG_BROKER_METRICS_H

#include <stdint.h>

#include "metrics.h"

/* A worker that has not sent a snapshot for this long (it sends one every second) is not
 * alive as far as /healthz is concerned: stopped, stuck in a loop, or its link is full. */
#define BROKER_METRICS_STALE_MS 3000

struct broker_metrics;

struct broker_metrics *broker_metrics_new(void);
void broker_metrics_free(struct broker_metrics **m);
/* The latest snapshot of the worker on IPC link `index` (replaces the one before). */
void broker_metrics_snapshot(struct broker_metrics *m, int index, const struct metrics_snapshot *s,
                             uint64_t now_ms);
/* The worker's link went away: its last snapshot's counters join the totals of gone workers. */
void broker_metrics_retire(struct broker_metrics *m, int index);
/* A token request ended (enum token_status). Providers past METRICS_PROVIDERS_MAX are not
 * counted. */
void broker_metrics_token_request(struct broker_metrics *m, const char *provider, unsigned result);
/* Totals, the live workers' sessions, token requests, and health: healthy when at least
 * `expected` workers that are not draining reported within BROKER_METRICS_STALE_MS and none
 * of them is stale. The caller sets id and the broker's own gauges. */
void broker_metrics_report(const struct broker_metrics *m, int expected, uint64_t now_ms,
                           struct metrics_report *out);

/* Answers IPC_METRICS_QUERY `id` on out: broker_metrics_report() plus the token client's cache
 * hits, the verify pool's queue and the lockouts begun. */
struct evbuffer;
struct lockouts;
struct token_client;
struct verify_pool;
struct broker_counted {
    struct token_client *tokens;
    struct verify_pool *pool;
    struct lockouts *guard;
};
int broker_metrics_answer(const struct broker_metrics *m, const struct broker_counted *by,
                          int expected, uint32_t id, struct evbuffer *out);

#endif
