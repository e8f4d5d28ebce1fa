/* The gateway's operation counters (GET /metrics), as they travel over IPC.
 *
 * Each worker counts what it sees (struct metrics_snapshot: its sessions open, logins,
 * bytes relayed, upstream latencies) and sends the whole snapshot to the broker every second
 * (IPC_METRICS_SNAPSHOT). The broker adds its own counters (token requests, cache hits, the
 * Argon2 queue, lockouts) and answers a worker's IPC_METRICS_QUERY with the whole gateway's
 * numbers (struct metrics_report, IPC_METRICS_REPORT), which that worker renders as the
 * Prometheus text format (src/http/metrics_text.c). Counters only grow: the broker keeps the
 * last snapshot of every worker that went away in its totals. Pure: no I/O. */
#ifndef MG_METRICS_H
#define MG_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_PROTOCOLS 3 /* imap, pop3, smtp: enum mg_proto's mail protocols */
/* A login as the worker logged it (result= of the login line). */
enum metrics_login_result {
    METRICS_LOGIN_OK = 0,
    METRICS_LOGIN_FAIL,     /* credentials, policy, or the upstream refused the token */
    METRICS_LOGIN_TEMPFAIL, /* IdP or upstream unavailable */
    METRICS_LOGIN_ERROR,    /* internal error, aborted */
    METRICS_LOGIN_REFUSED,  /* refused before the broker was asked */
    METRICS_LOGIN_RESULTS
};
#define METRICS_TOKEN_RESULTS 5 /* enum token_status: ok tempfail permfail needs_auth denied */
/* Histogram upper bounds in ms (the last bucket, +Inf, is the count). */
#define METRICS_BUCKETS 11
extern const uint32_t metrics_bucket_ms[METRICS_BUCKETS];
#define METRICS_WORKERS_MAX 64   /* live workers listed in a report (sessions open) */
#define METRICS_PROVIDERS_MAX 32 /* providers with token requests in a report */
#define METRICS_NAME_MAX 64      /* == IPC_NAME_MAX */
#define METRICS_HEALTH_MAX 128

struct metrics_histogram {
    uint64_t buckets[METRICS_BUCKETS]; /* observations <= bound and > the bound before */
    uint64_t count;                    /* all observations, including those above 10 s */
    uint64_t sum_ms;
};

/* What only grows, per worker process (and summed over the workers by the broker). */
struct metrics_counters {
    uint64_t logins[METRICS_PROTOCOLS][METRICS_LOGIN_RESULTS];
    uint64_t bytes_to_upstream, bytes_to_client;
    struct metrics_histogram upstream_connect; /* connect + TLS (+ STARTTLS) until the dialog */
    struct metrics_histogram upstream_login;   /* the SASL dialog until the upstream's OK */
    uint64_t http_refused;                     /* HTTP connections over max_connections_per_ip */
    /* Upstream host names (worker/dns_cache.c): answered from the worker's cache or hosts file
     * (a remembered NXDOMAIN too), or resolved (or joined a resolution in flight). */
    uint64_t dns_cache_hits, dns_cache_misses;
};

/* IPC_METRICS_SNAPSHOT, worker -> broker. */
struct metrics_snapshot {
    uint32_t worker_index;
    uint32_t draining; /* 1: replaced by a reload, finishing its sessions (not a health slot) */
    uint32_t sessions_open[METRICS_PROTOCOLS];
    struct metrics_counters c;
};

struct metrics_worker_gauge {
    uint32_t index;
    uint32_t sessions_open[METRICS_PROTOCOLS];
};

struct metrics_provider {
    char name[METRICS_NAME_MAX];
    uint64_t requests[METRICS_TOKEN_RESULTS];
};

/* IPC_METRICS_REPORT, broker -> worker: the answer to IPC_METRICS_QUERY `id`. */
struct metrics_report {
    uint32_t id;
    uint32_t healthy;                /* 1: every worker slot alive and reporting */
    char health[METRICS_HEALTH_MAX]; /* "ok", or why not */
    struct metrics_counters totals;  /* every worker, live and gone */
    uint32_t n_workers;
    struct metrics_worker_gauge workers[METRICS_WORKERS_MAX];
    uint64_t token_cache_hits;
    uint64_t argon2_queue;
    uint64_t lockouts;
    uint32_t n_providers;
    struct metrics_provider providers[METRICS_PROVIDERS_MAX];
};

void metrics_observe(struct metrics_histogram *h, uint64_t ms);
/* sum += add, field by field. */
void metrics_counters_add(struct metrics_counters *sum, const struct metrics_counters *add);
/* "ok", "fail", ...; NULL when out of range. */
const char *metrics_login_result_name(unsigned r);
/* The result= word of a login line; METRICS_LOGIN_ERROR for an unknown word. */
enum metrics_login_result metrics_login_result_of(const char *word);
/* enum token_status's words: "ok", "tempfail", "permfail", "needs_auth", "denied". */
const char *metrics_token_result_name(unsigned r);

#endif
