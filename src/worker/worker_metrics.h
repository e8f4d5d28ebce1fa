/* A worker's operation counters (common/metrics.h) and its questions to the broker for the
 * whole gateway's numbers (GET /metrics and /healthz, src/http/http_ops.c).
 *
 * One set per process: a worker is single-threaded and the relay and the upstream connection,
 * which count bytes and latencies, have no worker context, so the counters are the module's
 * own. worker_metrics_start() sends a snapshot to the broker at once and then every second
 * (IPC_METRICS_SNAPSHOT): the broker's health check wants to hear from every worker. */
#ifndef MG_WORKER_METRICS_H
#define MG_WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "proto.h"

struct worker_ctx;

#define WORKER_METRICS_INTERVAL_MS 1000

void worker_metrics_start(struct worker_ctx *w);
/* Pending questions are answered with NULL (the broker is gone or the worker stops). */
void worker_metrics_stop(void);

/* ---- counting (any worker code) ---- */
void worker_metrics_login(enum mg_proto p, const char *result); /* the login line's result= */
void worker_metrics_relayed(int to_upstream, size_t n);
void worker_metrics_upstream_connected(uint64_t ms);
void worker_metrics_upstream_logged_in(uint64_t ms);
void worker_metrics_http_refused(void);
void worker_metrics_dns_lookup(int hit); /* an upstream host name: cached (1) or not (0) */

/* ---- asking the broker ---- */
/* report is NULL when the broker did not answer within the timeout (or is gone). */
typedef void (*worker_metrics_cb)(const struct metrics_report *report, void *arg);
struct metrics_query;
/* Asks for the whole gateway's numbers; cb runs later from the loop, exactly once unless
 * cancelled. NULL (cb never runs) when the broker cannot be asked now. */
struct metrics_query *worker_metrics_query(uint64_t timeout_ms, worker_metrics_cb cb, void *arg);
void worker_metrics_cancel(struct metrics_query *q);
/* An IPC_METRICS_REPORT from the broker (worker.c). */
void worker_metrics_on_report(const struct metrics_report *report);

#endif
