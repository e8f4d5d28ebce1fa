/* The broker's end of the IPC connection with each worker: one bufferevent per worker, frames
 * decoded and handed to the login pipeline (broker.c), answers written back through memory that
 * is wiped once sent (they carry access tokens), and the flow control that bounds what a worker
 * can make the broker hold.
 *
 * Bounds: a worker's input is read at most 64 KiB ahead, and reading from it pauses while it
 * has WORKER_PENDING_MAX unanswered requests or WORKER_OUTPUT_HIGH bytes of answers it has not
 * read. */
#include "broker.h"
#include "broker_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "audit_sink.h"
#include "broker_metrics.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "protolog_writer.h"
#include "signin.h"
#include "ticket_keys.h"
#include "util.h"

#define WORKER_PENDING_MAX 1024
#define WORKER_OUTPUT_HIGH (4u << 20)
#define WORKER_INPUT_MAX (64u << 10)

static void wipe_and_free(const void *data, size_t len, void *extra)
{
    (void)extra;
    mg_wipe((void *)data, len);
    free((void *)data);
}

/* Empties b, wiping its chains on the way: an encoded response holds an access token. */
static void wipe_evbuffer(struct evbuffer *b)
{
    while (evbuffer_get_length(b) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(b, -1, NULL, &v, 1) < 1)
            break;
        mg_wipe(v.iov_base, v.iov_len);
        evbuffer_drain(b, v.iov_len);
    }
}

/* Moves the bytes of src to dst through memory that is wiped once written out. */
static void move_wiped(struct evbuffer *dst, struct evbuffer *src)
{
    size_t len = evbuffer_get_length(src);
    char *copy = mg_malloc(len);
    evbuffer_copyout(src, copy, len);
    wipe_evbuffer(src);
    if (evbuffer_add_reference(dst, copy, len, wipe_and_free, NULL) != 0)
        wipe_and_free(copy, len, NULL);
}

void worker_link_send(struct worker_conn *conn, struct ipc_auth_response *res)
{
    struct evbuffer *frame = evbuffer_new();
    if (!frame) {
        log_error("worker %d: out of memory encoding a response", conn->index);
        return;
    }
    if (ipc_encode_auth_response(frame, res) != 0) {
        /* A field did not fit (e.g. an absurdly long token): answer "try later" instead. */
        log_error("worker %d: response %u does not fit an IPC frame", conn->index,
                  (unsigned)res->id);
        wipe_evbuffer(frame);
        struct ipc_auth_response fallback = {.id = res->id, .status = AUTH_TEMPFAIL};
        mg_strlcpy(fallback.reason, "internal error: response too large", sizeof fallback.reason);
        mg_strlcpy(fallback.cause, "internal error", sizeof fallback.cause);
        if (ipc_encode_auth_response(frame, &fallback) != 0) {
            evbuffer_free(frame);
            return;
        }
    }
    move_wiped(bufferevent_get_output(conn->bev), frame);
    evbuffer_free(frame);
}

/* ---- connections ---- */

void worker_link_send_signin_answer(void *arg, const struct ipc_signin_answer *a)
{
    struct worker_conn *conn = arg;
    struct evbuffer *frame = evbuffer_new();
    if (frame && ipc_encode_signin_answer(frame, a) == 0)
        move_wiped(bufferevent_get_output(conn->bev), frame);
    else
        log_error("worker %d: cannot encode a sign-in answer", conn->index);
    if (frame) {
        wipe_evbuffer(frame);
        evbuffer_free(frame);
    }
}

void worker_link_drop(struct worker_conn *conn)
{
    struct broker *b = conn->b;
    broker_metrics_retire(b->metrics, conn->index); /* its counters stay in the totals */
    for (struct worker_conn **link = &b->workers; *link; link = &(*link)->next) {
        if (*link == conn) {
            *link = conn->next;
            break;
        }
    }
    broker_cancel_jobs_of(b, conn);
    signin_conn_gone(b->signin, conn);
    tlsrpt_inbox_clear(&conn->tlsrpt);
    bufferevent_free(conn->bev);
    free(conn);
}

static struct worker_conn *find_worker(struct broker *b, int index)
{
    for (struct worker_conn *c = b->workers; c; c = c->next)
        if (c->index == index)
            return c;
    return NULL;
}

static int may_read(struct worker_conn *conn)
{
    return conn->pending < WORKER_PENDING_MAX &&
           evbuffer_get_length(bufferevent_get_output(conn->bev)) < WORKER_OUTPUT_HIGH;
}

void worker_link_update_reading(struct worker_conn *conn)
{
    int enabled = (bufferevent_get_enabled(conn->bev) & EV_READ) != 0;
    if (may_read(conn) && !enabled) {
        bufferevent_enable(conn->bev, EV_READ);
        /* Frames already buffered would otherwise wait for the next byte from the worker. The
         * callback is deferred so that this never recurses into the read path. */
        if (evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0)
            bufferevent_trigger(conn->bev, EV_READ,
                                BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    } else if (!may_read(conn) && enabled) {
        bufferevent_disable(conn->bev, EV_READ);
    }
}

static void send_ticket_keys(struct worker_conn *conn)
{
    if (conn->b->tickets && ipc_encode_ticket_keys(bufferevent_get_output(conn->bev),
                                                   ticket_keys_current(conn->b->tickets)) != 0)
        log_error("worker %d: cannot send the session ticket keys", conn->index);
}

static void broadcast_ticket_keys(void *arg)
{
    struct broker *b = arg;
    for (struct worker_conn *c = b->workers; c; c = c->next)
        if (c->ready_reported)
            send_ticket_keys(c);
}

void worker_link_configure_tickets(struct broker *b)
{
    uint32_t lifetime_s = (uint32_t)((b->cfg->tls.session_ticket_lifetime_ms + 999) / 1000);
    if (b->tickets && ticket_keys_current(b->tickets)->lifetime_s == lifetime_s)
        return;
    ticket_keys_free(&b->tickets);
    if (lifetime_s && b->cfg->tls.certificate) {
        b->tickets = ticket_keys_new(b->base, lifetime_s, broadcast_ticket_keys, b);
        if (!b->tickets)
            log_error("broker: cannot make session ticket keys; clients will not resume");
    }
    broadcast_ticket_keys(b);
}

static void handle_ready(struct worker_conn *conn, uint32_t reported_index)
{
    if ((int)reported_index != conn->index)
        log_warn("worker %d reported itself ready as worker %u", conn->index,
                 (unsigned)reported_index);
    if (conn->ready_reported)
        return;
    conn->ready_reported = 1;
    send_ticket_keys(conn);
    if (conn->on_ready)
        conn->on_ready(conn->index, conn->on_ready_arg);
}

/* A piece of a TLS report; the last one is stored and answered (store writes are quick and
 * rare: one transaction per report). */
static void handle_tlsrpt_part(struct worker_conn *conn, const struct ipc_tlsrpt_part *p)
{
    struct ipc_tlsrpt_result res;
    if (tlsrpt_inbox_add(&conn->tlsrpt, conn->b->st, p, &res) &&
        ipc_encode_tlsrpt_result(bufferevent_get_output(conn->bev), &res) != 0)
        log_error("worker %d: cannot encode a TLS report result", conn->index);
}

static void answer_metrics(struct worker_conn *conn, uint32_t id)
{
    struct broker *b = conn->b;
    struct broker_counted by = {b->tokens, b->pool, b->guard};
    if (broker_metrics_answer(b->metrics, &by, b->cfg->gateway.workers, id,
                              bufferevent_get_output(conn->bev)) != 0)
        log_warn("worker %d: cannot encode the metrics report", conn->index);
}

static void on_worker_read(struct bufferevent *bev, void *arg)
{
    struct worker_conn *conn = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct ipc_msg msg;
    while (may_read(conn)) {
        int rc = ipc_decode(in, &msg);
        if (rc == 0)
            break;
        /* Only what a worker may send; the broker's own types from a worker are an error. */
        if (rc < 0 || msg.type == IPC_AUTH_RESPONSE || msg.type == IPC_SIGNIN_ANSWER ||
            msg.type == IPC_TICKET_KEYS || msg.type == IPC_METRICS_REPORT ||
            msg.type == IPC_TLSRPT_RESULT) {
            log_error("worker %d sent a malformed IPC frame; dropping its connection", conn->index);
            ipc_msg_wipe(&msg);
            worker_link_drop(conn);
            return;
        }
        if (msg.type == IPC_AUTH_REQUEST)
            broker_auth_request(conn, &msg.u.req);
        else if (msg.type == IPC_AUTH_CANCEL)
            broker_auth_cancel(conn, msg.u.cancel_id);
        else if (msg.type == IPC_TOKEN_REFUSED)
            broker_token_refused(conn, &msg.u.refused);
        else if (msg.type == IPC_AUDIT)
            audit_sink_push(conn->b->audit, &msg.u.audit);
        else if (msg.type == IPC_METRICS_SNAPSHOT)
            broker_metrics_snapshot(conn->b->metrics, conn->index, &msg.u.snapshot, mg_now_ms());
        else if (msg.type == IPC_METRICS_QUERY)
            answer_metrics(conn, msg.u.query_id);
        else if (msg.type == IPC_TLSRPT_PART)
            handle_tlsrpt_part(conn, &msg.u.tlsrpt_part);
        else if (msg.type == IPC_PROTOLOG)
            protolog_writer_append(conn->b->protolog, msg.u.protolog.text, msg.u.protolog.len);
        else if (msg.type == IPC_SIGNIN_START)
            signin_start(conn->b->signin, conn, &msg.u.signin_start);
        else if (msg.type == IPC_SIGNIN_FINISH)
            signin_finish(conn->b->signin, conn, &msg.u.signin_finish);
        else
            handle_ready(conn, msg.u.worker_index);
        ipc_msg_wipe(&msg);
    }
    worker_link_update_reading(conn);
}

static void on_worker_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    worker_link_update_reading(arg);
}

static void on_worker_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct worker_conn *conn = arg;
    if (what & BEV_EVENT_ERROR)
        log_debug("worker %d: IPC connection error", conn->index);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        worker_link_drop(conn);
}

int broker_add_worker(struct broker *b, int fd, int index, void (*on_ready)(int index, void *arg),
                      void *arg)
{
    struct worker_conn *old = find_worker(b, index);
    if (old)
        worker_link_drop(old);
    if (evutil_make_socket_nonblocking(fd) != 0) {
        close(fd);
        return -1;
    }
    struct bufferevent *bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        log_error("worker %d: cannot create the IPC connection", index);
        close(fd);
        return -1;
    }
    struct worker_conn *conn = mg_calloc(1, sizeof *conn);
    conn->b = b;
    conn->bev = bev;
    conn->index = index;
    conn->on_ready = on_ready;
    conn->on_ready_arg = arg;
    conn->next = b->workers;
    b->workers = conn;
    bufferevent_setcb(bev, on_worker_read, on_worker_write, on_worker_event, conn);
    bufferevent_setwatermark(bev, EV_READ, 0, WORKER_INPUT_MAX);
    bufferevent_setwatermark(bev, EV_WRITE, WORKER_OUTPUT_HIGH / 2, 0);
    bufferevent_enable(bev, EV_READ);
    return 0;
}

void broker_remove_worker(struct broker *b, int index)
{
    struct worker_conn *conn = find_worker(b, index);
    if (conn)
        worker_link_drop(conn);
}
