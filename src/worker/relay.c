/* Relay: one pump function for both directions, backpressure through read enabling, and a
 * periodic idle check that costs one clock read per read callback instead of a timer re-arm. */
#include "relay.h"

#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "util.h"
#include "worker_metrics.h"

struct relay_side {
    struct relay *relay;
    struct bufferevent *bev;
    SSL *ssl; /* NULL on a plain connection */
    struct relay_side *peer;
    uint64_t bytes_in; /* read from this side */
    int paused;        /* reading stopped because the peer's output is full */
};

struct relay {
    struct relay_side client, upstream;
    struct event *tick; /* idle check, then the flush deadline when closing */
    uint64_t idle_timeout_ms;
    uint64_t last_activity_ms;
    int closing;
    struct relay_side *flushing; /* while closing: the side whose output is being flushed */
    int done_called;
    const char *why;
    relay_done_fn done;
    void *arg;
};

static void finish(struct relay *r)
{
    if (r->done_called)
        return;
    r->done_called = 1;
    evtimer_del(r->tick);
    bufferevent_disable(r->client.bev, EV_READ | EV_WRITE);
    bufferevent_disable(r->upstream.bev, EV_READ | EV_WRITE);
    r->done(r->arg, r->why);
}

/* Moves everything readable on src to the peer's output (chain moves, no copies). */
static void pump(struct relay_side *src)
{
    struct relay *r = src->relay;
    struct evbuffer *in = bufferevent_get_input(src->bev);
    struct evbuffer *out = bufferevent_get_output(src->peer->bev);
    size_t n = evbuffer_get_length(in);
    if (n == 0)
        return;
    src->bytes_in += n;
    worker_metrics_relayed(src == &r->client, n);
    evbuffer_add_buffer(out, in);
    r->last_activity_ms = mg_now_ms();
    if (evbuffer_get_length(out) >= RELAY_HIGH && !src->paused) {
        src->paused = 1;
        bufferevent_disable(src->bev, EV_READ);
    }
}

/* With read-ahead, OpenSSL holds raw bytes of the next records that it has not decrypted yet.
 * libevent 2.1's bufferevent_openssl asks only SSL_pending() (decrypted bytes) whether to read
 * on, so without this those records would wait for the socket to become readable again, which
 * may never happen (the peer waits for our answer). Run its read handler once more instead. */
static void read_on_if_buffered(struct relay_side *side)
{
    if (side->ssl && !side->paused && !side->relay->closing && SSL_has_pending(side->ssl))
        event_active(&side->bev->ev_read, EV_READ, 1);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    MG_UNUSED(bev);
    struct relay_side *side = arg;
    if (side->relay->closing)
        return;
    pump(side);
    read_on_if_buffered(side);
}

/* Runs when this side's output drained to its low watermark. */
static void on_write(struct bufferevent *bev, void *arg)
{
    struct relay_side *side = arg;
    struct relay *r = side->relay;
    if (r->closing) {
        if (side == r->flushing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            finish(r);
        return;
    }
    struct relay_side *src = side->peer;
    if (src->paused) {
        src->paused = 0;
        bufferevent_enable(src->bev, EV_READ);
        pump(src); /* it may hold bytes read before the pause */
        read_on_if_buffered(src);
    }
}

static void flush_deadline(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    finish(arg);
}

/* One side ended: give the other side's pending output a bounded time, then finish. */
static void begin_close(struct relay *r, struct relay_side *ended, const char *why)
{
    if (r->closing) {
        if (ended == r->flushing)
            finish(r); /* the side being flushed failed too */
        return;
    }
    r->closing = 1;
    r->why = why;
    bufferevent_disable(r->client.bev, EV_READ);
    bufferevent_disable(r->upstream.bev, EV_READ);
    struct relay_side *other = ended->peer;
    pump(ended); /* bytes that arrived together with the EOF */
    if (evbuffer_get_length(bufferevent_get_output(other->bev)) == 0) {
        finish(r);
        return;
    }
    r->flushing = other;
    bufferevent_setwatermark(other->bev, EV_WRITE, 0, 0);
    event_free(r->tick);
    r->tick = evtimer_new(bufferevent_get_base(other->bev), flush_deadline, r);
    struct timeval tv = {RELAY_FLUSH_MS / 1000, (RELAY_FLUSH_MS % 1000) * 1000};
    evtimer_add(r->tick, &tv);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    MG_UNUSED(bev);
    struct relay_side *side = arg;
    struct relay *r = side->relay;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    int is_client = side == &r->client;
    const char *why;
    if (what & BEV_EVENT_ERROR)
        why = is_client ? "client connection error" : "server connection error";
    else
        why = is_client ? "client closed the connection" : "server closed the connection";
    begin_close(r, side, why);
}

static void idle_check(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct relay *r = arg;
    if (mg_now_ms() - r->last_activity_ms >= r->idle_timeout_ms) {
        r->why = "idle timeout";
        finish(r);
    }
}

static void side_init(struct relay *r, struct relay_side *side, struct bufferevent *bev,
                      struct relay_side *peer)
{
    side->relay = r;
    side->bev = bev;
    side->peer = peer;
    side->ssl = bufferevent_openssl_get_ssl(bev);
    /* Bulk transfer from here on: OpenSSL reads whole records and more per system call (one
     * read per record header and one per body without it), see read_on_if_buffered(). */
    if (side->ssl) {
        SSL_set_read_ahead(side->ssl, 1);
        /* Room for several records per read; SSL_MODE_RELEASE_BUFFERS frees it when idle. */
        SSL_set_default_read_buffer_len(side->ssl, RELAY_READ_CHUNK);
    }
    bufferevent_setcb(bev, on_read, on_write, on_event, side);
    /* The read high watermark is also how much bufferevent_openssl reads per turn (else 4 KiB):
     * bigger chunks become bigger TLS records and fewer writes on the other side. */
    bufferevent_setwatermark(bev, EV_READ, 0, RELAY_READ_CHUNK);
    bufferevent_setwatermark(bev, EV_WRITE, RELAY_LOW, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct relay *relay_new(struct event_base *base, struct bufferevent *client,
                        struct bufferevent *upstream, uint64_t idle_timeout_ms, relay_done_fn done,
                        void *arg)
{
    struct relay *r = mg_calloc(1, sizeof *r);
    r->done = done;
    r->arg = arg;
    r->idle_timeout_ms = idle_timeout_ms ? idle_timeout_ms : 1;
    r->last_activity_ms = mg_now_ms();
    side_init(r, &r->client, client, &r->upstream);
    side_init(r, &r->upstream, upstream, &r->client);
    /* Check often enough that the timeout is exceeded by at most ~1/8 of it, and at most 60 s. */
    uint64_t every = r->idle_timeout_ms / 8;
    every = every < 1000 ? 1000 : every > 60000 ? 60000 : every;
    r->tick = event_new(base, -1, EV_PERSIST, idle_check, r);
    struct timeval tv = {(time_t)(every / 1000), (suseconds_t)(every % 1000) * 1000};
    evtimer_add(r->tick, &tv);
    /* Pipelined client bytes and whatever the server sent after its OK. */
    pump(&r->client);
    pump(&r->upstream);
    read_on_if_buffered(&r->client);
    read_on_if_buffered(&r->upstream);
    return r;
}

void relay_get_stats(const struct relay *r, struct relay_stats *out)
{
    out->client_bytes = r->client.bytes_in;
    out->upstream_bytes = r->upstream.bytes_in;
}

void relay_free(struct relay **rp)
{
    struct relay *r = *rp;
    if (!r)
        return;
    bufferevent_setcb(r->client.bev, NULL, NULL, NULL, NULL);
    bufferevent_setcb(r->upstream.bev, NULL, NULL, NULL, NULL);
    event_free(r->tick);
    free(r);
    *rp = NULL;
}
