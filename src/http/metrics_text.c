/* Prometheus text exposition of the gateway's counters (metrics_text.h). */
#include "metrics_text.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include <event2/buffer.h>

#include "proto.h"

int metrics_text_escape(const char *value, char *out, size_t size)
{
    size_t n = 0;
    for (const char *c = value; *c; c++) {
        const char *rep = *c == '\\' ? "\\\\" : *c == '"' ? "\\\"" : *c == '\n' ? "\\n" : NULL;
        size_t len = rep ? 2 : 1;
        if (n + len >= size) {
            out[n] = '\0';
            return -1;
        }
        memcpy(out + n, rep ? rep : c, len);
        n += len;
    }
    out[n] = '\0';
    return 0;
}

struct render {
    struct evbuffer *out;
    int failed;
};

static void emit(struct render *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct render *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(r->out, fmt, ap) < 0)
        r->failed = 1;
    va_end(ap);
}

static void header(struct render *r, const char *name, const char *type, const char *help)
{
    emit(r, "# HELP mailgate_%s %s\n# TYPE mailgate_%s %s\n", name, help, name, type);
}

static void logins(struct render *r, const struct metrics_counters *c)
{
    header(r, "logins_total", "counter",
           "Login attempts by protocol and result, as the workers saw them.");
    for (unsigned p = 0; p < METRICS_PROTOCOLS; p++)
        for (unsigned res = 0; res < METRICS_LOGIN_RESULTS; res++)
            emit(r, "mailgate_logins_total{protocol=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                 mg_proto_name((enum mg_proto)p), metrics_login_result_name(res),
                 c->logins[p][res]);
}

static void sessions(struct render *r, const struct metrics_report *m)
{
    header(r, "sessions_open", "gauge", "Mail client connections open, by protocol and worker.");
    for (uint32_t i = 0; i < m->n_workers; i++)
        for (unsigned p = 0; p < METRICS_PROTOCOLS; p++)
            emit(r, "mailgate_sessions_open{protocol=\"%s\",worker=\"%u\"} %u\n",
                 mg_proto_name((enum mg_proto)p), (unsigned)m->workers[i].index,
                 (unsigned)m->workers[i].sessions_open[p]);
}

static void relayed(struct render *r, const struct metrics_counters *c)
{
    header(r, "relayed_bytes_total", "counter", "Bytes relayed after login, by direction.");
    emit(r, "mailgate_relayed_bytes_total{direction=\"to_upstream\"} %" PRIu64 "\n",
         c->bytes_to_upstream);
    emit(r, "mailgate_relayed_bytes_total{direction=\"to_client\"} %" PRIu64 "\n",
         c->bytes_to_client);
}

static void seconds(struct render *r, const char *name, const char *label, uint64_t ms)
{
    emit(r, "mailgate_%s%s %" PRIu64 ".%03u\n", name, label, ms / 1000, (unsigned)(ms % 1000));
}

static void histogram(struct render *r, const char *name, const char *help,
                      const struct metrics_histogram *h)
{
    header(r, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        cumulative += h->buckets[i];
        uint32_t ms = metrics_bucket_ms[i];
        emit(r, "mailgate_%s_bucket{le=\"%u.%03u\"} %" PRIu64 "\n", name, ms / 1000, ms % 1000,
             cumulative);
    }
    emit(r, "mailgate_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    seconds(r, name, "_sum", h->sum_ms);
    emit(r, "mailgate_%s_count %" PRIu64 "\n", name, h->count);
}

static void token_requests(struct render *r, const struct metrics_report *m)
{
    header(r, "token_requests_total", "counter",
           "Token requests to the identity providers, by provider and result.");
    for (uint32_t i = 0; i < m->n_providers; i++) {
        char name[2 * METRICS_NAME_MAX];
        metrics_text_escape(m->providers[i].name, name, sizeof name); /* always fits: 2x */
        for (unsigned res = 0; res < METRICS_TOKEN_RESULTS; res++)
            emit(r, "mailgate_token_requests_total{provider=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                 name, metrics_token_result_name(res), m->providers[i].requests[res]);
    }
}

static void broker_values(struct render *r, const struct metrics_report *m)
{
    header(r, "token_cache_hits_total", "counter",
           "Logins served a token from the broker's cache.");
    emit(r, "mailgate_token_cache_hits_total %" PRIu64 "\n", m->token_cache_hits);
    header(r, "argon2_queue_length", "gauge",
           "Password verifications waiting for an Argon2 thread.");
    emit(r, "mailgate_argon2_queue_length %" PRIu64 "\n", m->argon2_queue);
    header(r, "lockouts_total", "counter",
           "Lockouts of a user and address begun since the broker started.");
    emit(r, "mailgate_lockouts_total %" PRIu64 "\n", m->lockouts);
    header(r, "http_refused_total", "counter",
           "HTTP connections refused: over max_connections_per_ip.");
    emit(r, "mailgate_http_refused_total %" PRIu64 "\n", m->totals.http_refused);
    header(r, "dns_cache_lookups_total", "counter",
           "Upstream host name lookups by the workers: hit (cached) or miss (resolved).");
    emit(r, "mailgate_dns_cache_lookups_total{result=\"hit\"} %" PRIu64 "\n",
         m->totals.dns_cache_hits);
    emit(r, "mailgate_dns_cache_lookups_total{result=\"miss\"} %" PRIu64 "\n",
         m->totals.dns_cache_misses);
    header(r, "healthy", "gauge", "1 when every worker is alive and reporting (GET /healthz).");
    emit(r, "mailgate_healthy %u\n", (unsigned)m->healthy);
}

int metrics_text_render(struct evbuffer *out, const struct metrics_report *m)
{
    struct render r = {out, 0};
    sessions(&r, m);
    logins(&r, &m->totals);
    relayed(&r, &m->totals);
    histogram(&r, "upstream_connect_seconds",
              "Time to connect to the upstream server, TLS handshake included.",
              &m->totals.upstream_connect);
    histogram(&r, "upstream_login_seconds",
              "Time from the upstream connect to its acceptance of the token.",
              &m->totals.upstream_login);
    token_requests(&r, m);
    broker_values(&r, m);
    return r.failed ? -1 : 0;
}
