/* The protocol log, worker side: taps on the session's buffers, line formatting, the worker's
 * batch to the broker (protolog.h). */
#include "protolog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "protolog_scan.h"
#include "session.h"
#include "util.h"

/* Room for a line: time, session id, listener name, label, text, line end. */
#define LINE_ROOM (PLOG_TEXT_MAX + IPC_NAME_MAX + 64)

/* The worker's batch: lines of every session, sent when full or PROTOLOG_FLUSH_MS after the
 * first line. */
struct protolog_out {
    struct worker_ctx *w;
    struct event *timer;
    char batch[IPC_PROTOLOG_MAX];
    size_t len;
    uint64_t dropped; /* lines dropped while the broker link was over PROTOLOG_IPC_HIGH */
};

struct tap {
    struct protolog *pl;
    enum plog_dir dir;
    struct evbuffer *buf;
    struct evbuffer_cb_entry *entry;
};

struct protolog {
    struct session *s;
    struct plog_scan scan;
    struct tap taps[PLOG_DIRS];
    uint64_t period;   /* PROTOLOG_FLUSH_MS period of share_used */
    size_t share_used; /* bytes this session logged in it */
    uint64_t dropped;  /* lines over the session's share, not yet reported */
};

static const char *const dir_labels[PLOG_DIRS] = {
    [PLOG_CLIENT_IN] = "C:",
    [PLOG_CLIENT_OUT] = "S:",
    [PLOG_UPSTREAM_OUT] = "U>",
    [PLOG_UPSTREAM_IN] = "U<",
};
#define NOTE_LABEL "#:"

/* ---- the worker's batch ---- */

static size_t count_lines(const char *text, size_t len)
{
    size_t n = 0;
    for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))) != NULL; p++)
        n++;
    return n;
}

static size_t format_line(char *out, size_t size, const char *session, const char *listener,
                          const char *label, const char *text, size_t len)
{
    size_t n = log_format_time(out, size);
    int m =
        snprintf(out + n, size - n, " %s %s %s %.*s\n", session, listener, label, (int)len, text);
    if (m < 0)
        return 0;
    n += (size_t)m;
    if (n >= size) { /* cannot happen with LINE_ROOM; keep the line end all the same */
        n = size - 1;
        out[n - 1] = '\n';
    }
    return n;
}

static void flush_batch(struct protolog_out *o)
{
    struct worker_ctx *w = o->w;
    if (o->len == 0)
        return;
    struct evbuffer *ipc = w->ipc ? bufferevent_get_output(w->ipc) : NULL;
    if (!ipc || evbuffer_get_length(ipc) > PROTOLOG_IPC_HIGH) {
        o->dropped += count_lines(o->batch, o->len);
        o->len = 0;
        return;
    }
    if (o->dropped) {
        char note[LINE_ROOM], text[96];
        int m = snprintf(text, sizeof text, "%llu lines dropped (the broker did not keep up)",
                         (unsigned long long)o->dropped);
        size_t n =
            format_line(note, sizeof note, "-", "-", NOTE_LABEL, text, m > 0 ? (size_t)m : 0);
        if (ipc_encode_protolog(ipc, note, n) == 0)
            o->dropped = 0;
    }
    if (ipc_encode_protolog(ipc, o->batch, o->len) != 0)
        o->dropped += count_lines(o->batch, o->len);
    o->len = 0;
}

static void flush_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    flush_batch(arg);
}

static struct protolog_out *worker_out(struct worker_ctx *w)
{
    if (!w->protolog) {
        w->protolog = mg_calloc(1, sizeof *w->protolog);
        w->protolog->w = w;
        w->protolog->timer = evtimer_new(w->base, flush_timer_cb, w->protolog);
    }
    return w->protolog;
}

static void batch_add(struct protolog_out *o, const char *line, size_t n)
{
    if (o->len + n >= sizeof o->batch) /* the IPC field holds one byte less */
        flush_batch(o);
    memcpy(o->batch + o->len, line, n);
    o->len += n;
    if (!evtimer_pending(o->timer, NULL)) {
        struct timeval tv = {0, PROTOLOG_FLUSH_MS * 1000};
        evtimer_add(o->timer, &tv);
    }
}

void protolog_worker_free(struct worker_ctx *w)
{
    struct protolog_out *o = w->protolog;
    if (!o)
        return;
    flush_batch(o);
    event_free(o->timer);
    free(o);
    w->protolog = NULL;
}

/* ---- one session's lines ---- */

static void add_line(struct protolog *pl, const char *label, const char *text, size_t len)
{
    struct session *s = pl->s;
    char line[LINE_ROOM];
    size_t n = format_line(line, sizeof line, s->id, s->listener->conf->name, label, text, len);
    batch_add(worker_out(s->w), line, n);
    pl->share_used += n;
}

static void report_dropped(struct protolog *pl)
{
    if (!pl->dropped)
        return;
    char text[96];
    int m = snprintf(text, sizeof text, "%llu lines dropped (over the session's share)",
                     (unsigned long long)pl->dropped);
    pl->dropped = 0;
    if (m > 0)
        add_line(pl, NOTE_LABEL, text, (size_t)m);
}

/* The scanner's output: a redacted line, within the session's share of each period. */
static void emit_cb(void *arg, enum plog_dir dir, const char *text, size_t len)
{
    struct protolog *pl = arg;
    uint64_t period = mg_now_ms() / PROTOLOG_FLUSH_MS;
    if (period != pl->period) {
        pl->period = period;
        pl->share_used = 0;
    }
    if (pl->share_used + len > PROTOLOG_SESSION_SHARE) {
        pl->dropped++;
        return;
    }
    report_dropped(pl);
    add_line(pl, dir_labels[dir], text, len);
}

/* ---- taps ---- */

/* Feeds the scanner `left` bytes of buf from pos on, without copying them. */
static void feed_range(struct tap *t, struct evbuffer *buf, struct evbuffer_ptr pos, size_t left)
{
    while (left > 0) {
        struct evbuffer_iovec v[16];
        int n = evbuffer_peek(buf, (ev_ssize_t)left, &pos, v, 16);
        if (n <= 0)
            return;
        size_t fed = 0;
        for (int i = 0; i < n && i < 16 && fed < left; i++) {
            size_t take = v[i].iov_len < left - fed ? v[i].iov_len : left - fed;
            plog_scan_feed(&t->pl->scan, t->dir, v[i].iov_base, take);
            fed += take;
        }
        left -= fed;
        if (left > 0 && evbuffer_ptr_set(buf, &pos, fed, EVBUFFER_PTR_ADD) != 0)
            return;
    }
}

/* Runs on every change of a watched buffer; only bytes appended at its end are of interest.
 * Callbacks of a bufferevent's buffers run at once (not deferred), so the bytes just added are
 * the last n_added; anything else is counted as lost rather than guessed at. */
static void tap_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct tap *t = arg;
    if (info->n_added == 0)
        return;
    struct evbuffer_ptr pos;
    if (info->n_deleted != 0 || evbuffer_get_length(buf) != info->orig_size + info->n_added ||
        evbuffer_ptr_set(buf, &pos, info->orig_size, EVBUFFER_PTR_SET) != 0) {
        t->pl->dropped++;
        return;
    }
    feed_range(t, buf, pos, info->n_added);
}

/* The buffer the tap watched before is gone with its bufferevent (STARTTLS), or is the same. */
static void tap(struct protolog *pl, enum plog_dir dir, struct evbuffer *buf)
{
    struct tap *t = &pl->taps[dir];
    t->pl = pl;
    t->dir = dir;
    t->buf = buf;
    t->entry = evbuffer_add_cb(buf, tap_cb, t);
}

static void untap(struct protolog *pl, enum plog_dir dir)
{
    struct tap *t = &pl->taps[dir];
    if (t->buf && t->entry)
        evbuffer_remove_cb_entry(t->buf, t->entry);
    t->buf = NULL;
    t->entry = NULL;
}

void protolog_open(struct session *s)
{
    if (!s->listener->conf->protocol_log)
        return;
    struct protolog *pl = mg_calloc(1, sizeof *pl);
    pl->s = s;
    plog_scan_init(&pl->scan, s->ops->protocol, emit_cb, pl);
    s->plog = pl;
    char text[IPC_ADDR_MAX + 32];
    int m = snprintf(text, sizeof text, "connect from %s", s->client_addr);
    add_line(pl, NOTE_LABEL, text, m > 0 ? (size_t)m : 0);
}

void protolog_tap_client(struct session *s)
{
    if (!s->plog || !s->client)
        return;
    tap(s->plog, PLOG_CLIENT_IN, bufferevent_get_input(s->client));
    tap(s->plog, PLOG_CLIENT_OUT, bufferevent_get_output(s->client));
}

void protolog_tap_upstream(struct session *s, struct bufferevent *bev)
{
    if (!s->plog || !bev)
        return;
    tap(s->plog, PLOG_UPSTREAM_IN, bufferevent_get_input(bev));
    tap(s->plog, PLOG_UPSTREAM_OUT, bufferevent_get_output(bev));
}

void protolog_relay(struct session *s)
{
    if (!s->plog)
        return;
    /* The relay does its own I/O and hands over what it moves (protolog_relayed): the
     * bufferevents' buffers go quiet. */
    for (int dir = 0; dir < PLOG_DIRS; dir++)
        untap(s->plog, (enum plog_dir)dir);
    plog_scan_relay(&s->plog->scan);
}

void protolog_relayed(struct session *s, int from_client, const void *data, size_t len)
{
    /* What the client gets is what the upstream sent, and what the upstream gets is what the
     * client sent: one direction each is enough. */
    if (s->plog)
        plog_scan_feed(&s->plog->scan, from_client ? PLOG_CLIENT_IN : PLOG_UPSTREAM_IN, data, len);
}

void protolog_close(struct session *s)
{
    struct protolog *pl = s->plog;
    if (!pl)
        return;
    report_dropped(pl);
    add_line(pl, NOTE_LABEL, "closed", 6);
    mg_wipe(pl, sizeof *pl); /* line heads may hold a secret the scanner had not judged yet */
    free(pl);
    s->plog = NULL;
}
