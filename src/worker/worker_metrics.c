/* A worker's counters, its snapshot timer and its questions to the broker (worker_metrics.h). */
#include "worker_metrics.h"

#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "session.h"
#include "util.h"

/* Like the audit records: a broker that does not read gets no more of them. */
#define SNAPSHOT_OUTPUT_MAX (1024 * 1024)

struct metrics_query {
    uint32_t id;
    worker_metrics_cb cb;
    void *arg;
    struct event *timer;
    struct metrics_query *next;
};

static struct {
    struct worker_ctx *w;
    struct metrics_counters c;
    struct event *timer;
    struct metrics_query *queries;
    uint32_t next_id;
} wm;

static struct bufferevent *broker_link(void)
{
    return wm.w ? wm.w->ipc : NULL;
}

static void send_snapshot(void)
{
    struct bufferevent *ipc = broker_link();
    if (!ipc || evbuffer_get_length(bufferevent_get_output(ipc)) > SNAPSHOT_OUTPUT_MAX)
        return;
    struct metrics_snapshot snap = {
        .worker_index = (uint32_t)wm.w->index, .draining = wm.w->stopping ? 1 : 0, .c = wm.c};
    for (struct session *s = wm.w->sessions; s; s = s->next)
        if ((unsigned)s->ops->protocol < METRICS_PROTOCOLS)
            snap.sessions_open[s->ops->protocol]++;
    if (ipc_encode_metrics_snapshot(bufferevent_get_output(ipc), &snap) != 0)
        log_debug("worker %d: cannot encode the metrics snapshot", wm.w->index);
}

static void on_snapshot_timer(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what), MG_UNUSED(arg);
    send_snapshot();
}

void worker_metrics_start(struct worker_ctx *w)
{
    wm.w = w;
    wm.timer = event_new(w->base, -1, EV_PERSIST, on_snapshot_timer, NULL);
    struct timeval tv = {WORKER_METRICS_INTERVAL_MS / 1000,
                         (WORKER_METRICS_INTERVAL_MS % 1000) * 1000};
    event_add(wm.timer, &tv);
    send_snapshot();
}

static void query_free(struct metrics_query *q)
{
    event_free(q->timer);
    free(q);
}

static struct metrics_query *take_query(uint32_t id)
{
    for (struct metrics_query **p = &wm.queries; *p; p = &(*p)->next) {
        struct metrics_query *q = *p;
        if (q->id == id) {
            *p = q->next;
            return q;
        }
    }
    return NULL;
}

static void answer(struct metrics_query *q, const struct metrics_report *report)
{
    worker_metrics_cb cb = q->cb;
    void *arg = q->arg;
    query_free(q);
    cb(report, arg);
}

void worker_metrics_stop(void)
{
    while (wm.queries) {
        struct metrics_query *q = wm.queries;
        wm.queries = q->next;
        answer(q, NULL);
    }
    if (wm.timer)
        event_free(wm.timer);
    wm.timer = NULL;
    wm.w = NULL;
}

static void on_query_timeout(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct metrics_query *q = take_query(((struct metrics_query *)arg)->id);
    if (q)
        answer(q, NULL);
}

struct metrics_query *worker_metrics_query(uint64_t timeout_ms, worker_metrics_cb cb, void *arg)
{
    struct bufferevent *ipc = broker_link();
    uint32_t id = ++wm.next_id;
    if (!ipc || ipc_encode_metrics_query(bufferevent_get_output(ipc), id) != 0)
        return NULL;
    struct metrics_query *q = mg_calloc(1, sizeof *q);
    q->id = id;
    q->cb = cb;
    q->arg = arg;
    q->timer = evtimer_new(wm.w->base, on_query_timeout, q);
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    evtimer_add(q->timer, &tv);
    q->next = wm.queries;
    wm.queries = q;
    return q;
}

void worker_metrics_cancel(struct metrics_query *q)
{
    if (q && take_query(q->id) == q)
        query_free(q);
}

void worker_metrics_on_report(const struct metrics_report *report)
{
    struct metrics_query *q = take_query(report->id);
    if (q)
        answer(q, report);
    else
        log_debug("metrics report %u came after its question was answered", (unsigned)report->id);
}

void worker_metrics_login(enum mg_proto p, const char *result)
{
    if ((unsigned)p < METRICS_PROTOCOLS)
        wm.c.logins[p][metrics_login_result_of(result)]++;
}

void worker_metrics_relayed(int to_upstream, size_t n)
{
    if (to_upstream)
        wm.c.bytes_to_upstream += n;
    else
        wm.c.bytes_to_client += n;
}

void worker_metrics_upstream_connected(uint64_t ms)
{
    metrics_observe(&wm.c.upstream_connect, ms);
}

void worker_metrics_upstream_logged_in(uint64_t ms)
{
    metrics_observe(&wm.c.upstream_login, ms);
}

void worker_metrics_http_refused(void)
{
    wm.c.http_refused++;
}

void worker_metrics_dns_lookup(int hit)
{
    if (hit)
        wm.c.dns_cache_hits++;
    else
        wm.c.dns_cache_misses++;
}
