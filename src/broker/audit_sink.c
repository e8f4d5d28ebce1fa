/* The broker's end of the login audit (audit_sink.h).
 *
 * Why a queue and a tick instead of writing at once: one SQLite transaction per login would
 * cost an fsync each, and a login flood would then stall the broker's loop (and every other
 * login with it). A tick commits whatever arrived in one transaction; the queue's bound keeps
 * memory fixed, and a full queue drops (counted) rather than blocks a worker. */
#include "audit_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit_json.h"
#include "audit_rec.h"
#include "config.h"
#include "log.h"
#include "login_name.h"
#include "store_logins.h"
#include "util.h"

#define AUDIT_QUEUE_MAX 4096
#define AUDIT_TICK_MS 200
#define AUDIT_PRUNE_MS (3600u * 1000)

struct audit_sink {
    struct event_base *base;
    const struct config *cfg;
    struct store *st;
    struct event *tick, *prune_timer;
    struct ipc_audit *queue;
    size_t n;
    uint64_t dropped, refused; /* since the last tick that reported them */
    int json_fd;               /* -1: no audit_log */
    char *json_path;           /* the file json_fd was opened as (the config's may differ) */
};

/* Opened after the broker dropped root: what it cannot write now it could not write later.
 * Returns the descriptor, or -1 with err filled. */
static int open_json_log(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        snprintf(err, errlen,
                 "audit_log %s: cannot open for appending as the gateway user: %s (Fix: create it "
                 "and chown it to that user)",
                 path, strerror(errno));
    return fd;
}

/* The file of path (NULL: none) replaces the one in use. On failure the one in use stays. */
static int switch_json_log(struct audit_sink *a, const char *path, char *err, size_t errlen)
{
    int fd = path ? open_json_log(path, err, errlen) : -1;
    if (path && fd < 0)
        return -1;
    if (a->json_fd >= 0)
        close(a->json_fd);
    free(a->json_path);
    a->json_fd = fd;
    a->json_path = path ? mg_strdup(path) : NULL;
    return 0;
}

static void prune(struct audit_sink *a)
{
    uint64_t keep_ms = a->cfg->gateway.audit_retention_ms;
    if (keep_ms == 0)
        return;
    int64_t deleted = 0;
    int64_t before = (int64_t)time(NULL) - (int64_t)(keep_ms / 1000);
    if (store_login_events_prune(a->st, before, &deleted) != STORE_OK)
        log_error("audit: %s", store_last_error(a->st));
    else if (deleted > 0)
        log_info("audit: pruned %lld login events older than the retention", (long long)deleted);
}

static void prune_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    prune(arg);
}

/* The store's row for a judged record; canonical holds the user the typed name stands for. */
static void to_event(const struct audit_sink *a, const struct ipc_audit *r, int64_t now,
                     struct audit_fields *f, struct login_name *canonical, struct login_event *e)
{
    audit_rec_fields(r, f);
    int named = login_name_parse(r->user, a->cfg->gateway.default_domain, canonical) == 0;
    *e = (struct login_event){
        .at = now,
        .event = f->event,
        .session = r->session,
        .protocol = f->protocol,
        .listener = r->listener,
        .client_addr = f->host,
        .client_port = f->port,
        .client_id = r->client_id,
        .login = r->user,
        .user = named ? canonical->user : r->user,
        .mailbox = r->mailbox,
        .result = f->result,
        .reason = r->cause,
        .detail = r->detail,
        .duration_ms = (int64_t)(r->duration_ms > INT64_MAX ? INT64_MAX : r->duration_ms),
        .bytes_in = (int64_t)(r->bytes_in > INT64_MAX ? INT64_MAX : r->bytes_in),
        .bytes_out = (int64_t)(r->bytes_out > INT64_MAX ? INT64_MAX : r->bytes_out),
    };
}

static void write_json(struct audit_sink *a, const struct login_event *e)
{
    char *line = a->json_fd >= 0 ? audit_json_line(e) : NULL;
    if (!line)
        return;
    size_t len = strlen(line);
    /* O_APPEND: one write per line, so lines of concurrent writers never interleave. */
    if (write(a->json_fd, line, len) != (ssize_t)len)
        log_error("audit: cannot append to %s: %s", a->json_path, strerror(errno));
    free(line);
}

/* Converts and stores the queue in one transaction, then the JSON lines. */
static void flush(struct audit_sink *a)
{
    static struct audit_fields fields[AUDIT_QUEUE_MAX];
    static struct login_name names[AUDIT_QUEUE_MAX];
    static struct login_event events[AUDIT_QUEUE_MAX];
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < a->n; i++)
        to_event(a, &a->queue[i], now, &fields[i], &names[i], &events[i]);
    if (store_login_events_add(a->st, events, a->n) != STORE_OK)
        log_error("audit: %zu login events lost: %s", a->n, store_last_error(a->st));
    for (size_t i = 0; i < a->n; i++)
        write_json(a, &events[i]);
    a->n = 0;
    if (a->dropped || a->refused)
        log_warn("audit: %llu records dropped (queue full), %llu refused (malformed)",
                 (unsigned long long)a->dropped, (unsigned long long)a->refused);
    a->dropped = a->refused = 0;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    flush(arg);
}

void audit_sink_push(struct audit_sink *a, const struct ipc_audit *rec)
{
    if (audit_rec_valid(rec) != 0) {
        a->refused++;
    } else if (a->n == AUDIT_QUEUE_MAX) {
        a->dropped++;
    } else {
        a->queue[a->n++] = *rec;
    }
    if (!evtimer_pending(a->tick, NULL)) {
        struct timeval tv = {0, AUDIT_TICK_MS * 1000};
        evtimer_add(a->tick, &tv);
    }
}

struct audit_sink *audit_sink_new(struct event_base *base, const struct config *cfg,
                                  struct store *st, char *err, size_t errlen)
{
    struct audit_sink *a = mg_calloc(1, sizeof *a);
    a->base = base;
    a->cfg = cfg;
    a->st = st;
    a->queue = mg_calloc(AUDIT_QUEUE_MAX, sizeof *a->queue);
    a->tick = evtimer_new(base, tick_cb, a);
    a->prune_timer = event_new(base, -1, EV_PERSIST, prune_cb, a);
    a->json_fd = -1;
    if (switch_json_log(a, cfg->gateway.audit_log, err, errlen) != 0 || !a->tick ||
        !a->prune_timer) {
        audit_sink_free(&a);
        return NULL;
    }
    struct timeval tv = {AUDIT_PRUNE_MS / 1000, 0};
    evtimer_add(a->prune_timer, &tv);
    prune(a);
    return a;
}

/* The records queued so far go to the file they arrived under; from then on, the new one's.
 * Reopened even when the path is the same: logrotate moved the file and sent SIGHUP. */
void audit_sink_set_config(struct audit_sink *a, const struct config *cfg)
{
    if (a->n)
        flush(a);
    a->cfg = cfg;
    char err[512];
    if (switch_json_log(a, cfg->gateway.audit_log, err, sizeof err) != 0)
        log_error("reload: %s; %s%s", err, a->json_path ? "still appending to " : "no JSON lines",
                  a->json_path ? a->json_path : "");
}

void audit_sink_free(struct audit_sink **ap)
{
    if (!ap || !*ap)
        return;
    struct audit_sink *a = *ap;
    if (a->n)
        flush(a);
    if (a->tick)
        event_free(a->tick);
    if (a->prune_timer)
        event_free(a->prune_timer);
    if (a->json_fd >= 0)
        close(a->json_fd);
    free(a->json_path);
    free(a->queue);
    free(a);
    *ap = NULL;
}
