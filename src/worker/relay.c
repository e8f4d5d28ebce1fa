/* Relay: moves bytes between a logged-in client and its upstream with its own non-blocking
 * driver on the raw sockets. The bufferevents of the login phase stay alive (they own the
 * sockets and SSL objects) but are disabled.
 *
 * Why not bufferevent_openssl for this phase: it writes every TLS record with a system call of
 * its own and asks only SSL_pending() (decrypted bytes) whether to read on, so read-ahead could
 * stall it. Here OpenSSL reads ahead straight from the socket (up to RELAY_READ_CHUNK per
 * read(2)); what one turn decrypts goes out as few records as possible, encrypted into the
 * other side's output buffer by a BIO that only appends, and that buffer leaves with one
 * writev(2). Per MiB that is a few reads, a few writes and no epoll_ctl while data flows.
 *
 * Backpressure: when a side's pending output reaches RELAY_HIGH, the other side stops reading
 * until it drains below RELAY_LOW. A turn reads at most RELAY_TURN bytes, then yields to the
 * loop, so one busy session cannot starve the others. */
#include "relay.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "util.h"
#include "worker_metrics.h"

#define RELAY_TURN (256 * 1024)

struct relay_side {
    struct relay *relay;
    struct bufferevent *bev; /* owner of fd and ssl; disabled while relaying */
    evutil_socket_t fd;
    SSL *ssl;             /* NULL on a plain connection */
    BIO *socket_bio;      /* ssl's own write BIO, given back by relay_free() */
    struct evbuffer *out; /* bytes for this side's socket (TLS records when ssl) */
    struct event *rd, *wr;
    struct relay_side *peer;
    uint64_t bytes_in; /* plaintext read from this side */
    int paused;        /* reading stopped because the peer's output is full */
    int wr_armed;
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
    relay_tap_fn tap; /* called with arg, like done */
};

/* The workers are single-threaded: one buffer serves every relay's reads. */
static unsigned char scratch[RELAY_READ_CHUNK];

/* ---- the output BIO: TLS records appended to a side's output buffer ---- */

static int out_bio_write(BIO *bio, const char *data, int len)
{
    BIO_clear_retry_flags(bio);
    if (len <= 0)
        return 0;
    return evbuffer_add(BIO_get_data(bio), data, (size_t)len) == 0 ? len : -1;
}

static long out_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    MG_UNUSED(num), MG_UNUSED(ptr);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* the relay writes the buffer out itself */
    case BIO_CTRL_WPENDING:
        return (long)evbuffer_get_length(BIO_get_data(bio));
    case BIO_C_GET_FD:
        return -1; /* never let anyone take this for a socket (fd 0 would be closed) */
    default:
        return 0;
    }
}

static BIO *out_bio_new(struct evbuffer *out)
{
    static BIO_METHOD *method;
    if (!method) {
        method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "relay output");
        if (!method || !BIO_meth_set_write(method, out_bio_write) ||
            !BIO_meth_set_ctrl(method, out_bio_ctrl))
            return NULL;
    }
    BIO *bio = BIO_new(method);
    if (bio) {
        BIO_set_data(bio, out);
        BIO_set_init(bio, 1);
    }
    return bio;
}

/* ---- ending ---- */

static void finish(struct relay *r)
{
    if (r->done_called)
        return;
    r->done_called = 1;
    evtimer_del(r->tick);
    struct relay_side *sides[] = {&r->client, &r->upstream};
    for (int i = 0; i < 2; i++) {
        if (sides[i]->rd)
            event_del(sides[i]->rd);
        if (sides[i]->wr)
            event_del(sides[i]->wr);
    }
    r->done(r->arg, r->why);
}

static void flush_deadline(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    finish(arg);
}

/* One side ended: give the other side's pending output a bounded time, then finish. */
static void begin_close(struct relay_side *ended, const char *why)
{
    struct relay *r = ended->relay;
    if (r->closing) {
        if (ended == r->flushing)
            finish(r); /* the side being flushed failed too */
        return;
    }
    r->closing = 1;
    r->why = why;
    event_del(r->client.rd);
    event_del(r->upstream.rd);
    struct relay_side *other = ended->peer;
    if (evbuffer_get_length(other->out) == 0) {
        finish(r);
        return;
    }
    r->flushing = other;
    event_free(r->tick);
    r->tick = evtimer_new(event_get_base(other->wr), flush_deadline, r);
    struct timeval tv = {RELAY_FLUSH_MS / 1000, (RELAY_FLUSH_MS % 1000) * 1000};
    evtimer_add(r->tick, &tv);
}

static const char *why_error(const struct relay_side *side)
{
    return side == &side->relay->client ? "client connection error" : "server connection error";
}

static const char *why_eof(const struct relay_side *side)
{
    return side == &side->relay->client ? "client closed the connection"
                                        : "server closed the connection";
}

/* ---- writing ---- */

static void arm_write(struct relay_side *side, int on)
{
    if (on == side->wr_armed)
        return;
    side->wr_armed = on;
    if (on)
        event_add(side->wr, NULL);
    else
        event_del(side->wr);
}

/* Output fell below the low mark: the side feeding it may read again. Its turn runs from the
 * loop, never nested in another (they share the read buffer). */
static void resume_peer(struct relay_side *side)
{
    struct relay_side *src = side->peer;
    if (!src->paused || side->relay->closing || evbuffer_get_length(side->out) >= RELAY_LOW)
        return;
    src->paused = 0;
    event_add(src->rd, NULL);
    event_active(src->rd, EV_READ, 1); /* OpenSSL may hold records it read ahead */
}

/* Writes as much of side->out as the socket takes, in one writev(2) per call. Returns -1 once
 * the relay has ended (the caller must not touch it). */
static int flush_out(struct relay_side *side)
{
    struct relay *r = side->relay;
    size_t before;
    while ((before = evbuffer_get_length(side->out)) > 0) {
        int n = evbuffer_write(side->out, side->fd);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        if (n > 0 && (size_t)n < before)
            break; /* the socket is full: asking again would only return EAGAIN */
        if (n <= 0) {
            evbuffer_drain(side->out, evbuffer_get_length(side->out));
            arm_write(side, 0);
            begin_close(side, why_error(side));
            return r->done_called ? -1 : 0;
        }
    }
    int pending = evbuffer_get_length(side->out) > 0;
    arm_write(side, pending);
    if (!pending && r->closing && side == r->flushing) {
        finish(r);
        return -1;
    }
    resume_peer(side);
    return 0;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    flush_out(arg);
}

/* ---- reading ---- */

/* Plaintext for dst's socket: encrypted into its output when TLS (whole records). */
static int forward(struct relay_side *dst, const void *data, size_t len)
{
    if (!dst->ssl)
        return evbuffer_add(dst->out, data, len);
    /* With SSL_MODE_ENABLE_PARTIAL_WRITE a call may stop after one record. */
    for (size_t done = 0; done < len;) {
        size_t written = 0;
        if (!SSL_write_ex(dst->ssl, (const unsigned char *)data + done, len - done, &written)) {
            ERR_clear_error();
            return -1;
        }
        done += written;
    }
    return 0;
}

/* Bytes from src on their way to its peer: the session's and the worker's counts. */
static void count_moved(struct relay_side *src, size_t len)
{
    src->bytes_in += len;
    worker_metrics_relayed(src == &src->relay->client, len);
}

/* Plaintext read from src goes to its peer. */
static int deliver(struct relay_side *src, const unsigned char *data, size_t len)
{
    struct relay *r = src->relay;
    count_moved(src, len);
    if (r->tap)
        r->tap(r->arg, src == &r->client, data, len);
    r->last_activity_ms = mg_now_ms();
    return forward(src->peer, data, len);
}

/* Delivers the *used bytes a turn holds in scratch (none is fine) and empties it. */
static int deliver_held(struct relay_side *src, size_t *used)
{
    int rc = *used ? deliver(src, scratch, *used) : 0;
    *used = 0;
    return rc;
}

enum read_result { READ_MORE, READ_WAIT, READ_EOF, READ_ERROR };

/* One read into scratch + used; *got is what it added. */
static enum read_result read_some(struct relay_side *side, size_t used, size_t *got)
{
    *got = 0;
    if (!side->ssl) {
        ssize_t n = read(side->fd, scratch + used, sizeof scratch - used);
        if (n > 0)
            *got = (size_t)n;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return READ_WAIT;
        return n > 0 ? READ_MORE : n == 0 ? READ_EOF : READ_ERROR;
    }
    if (SSL_read_ex(side->ssl, scratch + used, sizeof scratch - used, got))
        return READ_MORE;
    int err = SSL_get_error(side->ssl, 0);
    ERR_clear_error();
    switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* cannot happen: the output BIO takes everything */
        return READ_WAIT;
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or a TCP close (SSL_OP_IGNORE_UNEXPECTED_EOF) */
        return READ_EOF;
    default:
        return READ_ERROR;
    }
}

/* Reads up to RELAY_TURN bytes from src (fewer when its peer's output fills up), delivering
 * them in scratch-sized pieces, then writes the peer's output. Comes back through the loop
 * when a full turn left more to read. */
static void read_turn(struct relay_side *src)
{
    struct relay *r = src->relay;
    struct relay_side *dst = src->peer, *failed = NULL;
    size_t turn = 0, used = 0;
    enum read_result res = READ_MORE;
    while (res == READ_MORE && turn < RELAY_TURN) {
        if (evbuffer_get_length(dst->out) + used >= RELAY_HIGH) {
            if (deliver_held(src, &used) != 0) {
                failed = dst, res = READ_ERROR;
                break;
            }
            if (flush_out(dst) != 0)
                return;
            /* Still full: dst's write event is armed and resumes src once it drained. */
            if (evbuffer_get_length(dst->out) >= RELAY_HIGH) {
                src->paused = 1;
                event_del(src->rd);
                break;
            }
        }
        size_t got;
        res = read_some(src, used, &got);
        used += got;
        turn += got;
        if (res == READ_ERROR)
            failed = src;
        /* Whatever ends the turn also delivers: nothing is left in scratch after the loop. */
        if ((used == sizeof scratch || res != READ_MORE || turn >= RELAY_TURN) &&
            deliver_held(src, &used) != 0)
            failed = dst, res = READ_ERROR;
    }
    if (evbuffer_get_length(src->out) > 0 && flush_out(src) != 0)
        return; /* post-handshake messages OpenSSL answered while reading */
    if (flush_out(dst) != 0)
        return;
    if (failed)
        begin_close(failed, why_error(failed));
    else if (res == READ_EOF)
        begin_close(src, why_eof(src));
    else if (res == READ_MORE && !src->paused && !r->closing)
        event_active(src->rd, EV_READ, 1); /* a full turn: the rest after the others */
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct relay_side *side = arg;
    if (!side->relay->closing)
        read_turn(side);
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

/* ---- setup ---- */

static int side_init(struct relay *r, struct relay_side *side, struct bufferevent *bev,
                     struct relay_side *peer)
{
    struct event_base *base = bufferevent_get_base(bev);
    side->relay = r;
    side->bev = bev;
    side->peer = peer;
    side->fd = bufferevent_getfd(bev);
    side->ssl = bufferevent_openssl_get_ssl(bev);
    side->out = evbuffer_new();
    side->rd = event_new(base, side->fd, EV_READ | EV_PERSIST, on_readable, side);
    side->wr = event_new(base, side->fd, EV_WRITE | EV_PERSIST, on_writable, side);
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (!side->out || !side->rd || !side->wr || side->fd < 0)
        return -1;
    if (!side->ssl)
        return 0;
    /* Bulk transfer from here on: whole records and more per read(2). */
    SSL_set_read_ahead(side->ssl, 1);
    SSL_set_default_read_buffer_len(side->ssl, RELAY_READ_CHUNK);
    /* A TCP close without close_notify is an ordinary end of stream for mail protocols. */
    SSL_set_options(side->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    BIO *out_bio = out_bio_new(side->out);
    if (!out_bio)
        return -1;
    side->socket_bio = SSL_get_wbio(side->ssl);
    BIO_up_ref(side->socket_bio); /* SSL_set0_wbio() drops the SSL's reference */
    SSL_set0_wbio(side->ssl, out_bio);
    return 0;
}

/* What the login phase left in the bufferevents: output for this side, input for the peer.
 * Output goes first through this side's SSL object: if bufferevent_openssl had a record half
 * written, SSL_write() must be called again with the same leading bytes, which these are. */
static int take_over_output(struct relay_side *side)
{
    struct evbuffer *pending = bufferevent_get_output(side->bev);
    /* A socket bufferevent keeps the front of its output frozen: only it may drain it. */
    evbuffer_unfreeze(pending, 1);
    int rc = 0;
    while (rc == 0 && evbuffer_get_length(pending) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(pending, -1, NULL, &v, 1) < 1 ||
            forward(side, v.iov_base, v.iov_len) != 0 || evbuffer_drain(pending, v.iov_len) != 0)
            rc = -1;
    }
    evbuffer_freeze(pending, 1);
    return rc;
}

/* Input the login phase read but did not use (pipelined commands, or what the server sent
 * after its OK): the protocol log saw it when it arrived. */
static int take_over_input(struct relay_side *src)
{
    struct evbuffer *pending = bufferevent_get_input(src->bev);
    while (evbuffer_get_length(pending) > 0) { /* draining the input is always allowed */
        int n = evbuffer_remove(pending, scratch, sizeof scratch);
        if (n <= 0)
            return -1;
        count_moved(src, (size_t)n);
        if (forward(src->peer, scratch, (size_t)n) != 0)
            return -1;
    }
    return 0;
}

static int start_side(struct relay_side *side)
{
    if (take_over_output(side) != 0 || take_over_input(side->peer) != 0)
        return -1;
    event_add(side->rd, NULL);
    return 0;
}

/* Errors before the loop runs are reported through it: done() must not run inside relay_new. */
static void fail_soon(struct relay *r, struct relay_side *side)
{
    r->why = why_error(side);
    event_free(r->tick);
    r->tick = evtimer_new(bufferevent_get_base(side->bev), flush_deadline, r);
    struct timeval zero = {0, 0};
    evtimer_add(r->tick, &zero);
}

struct relay *relay_new(struct event_base *base, struct bufferevent *client,
                        struct bufferevent *upstream, const struct relay_params *params)
{
    struct relay *r = mg_calloc(1, sizeof *r);
    r->done = params->done;
    r->arg = params->arg;
    r->tap = params->tap;
    r->idle_timeout_ms = params->idle_timeout_ms ? params->idle_timeout_ms : 1;
    r->last_activity_ms = mg_now_ms();
    /* Check often enough that the timeout is exceeded by at most ~1/8 of it, and at most 60 s. */
    uint64_t every = r->idle_timeout_ms / 8;
    every = every < 1000 ? 1000 : every > 60000 ? 60000 : every;
    r->tick = event_new(base, -1, EV_PERSIST, idle_check, r);
    struct timeval tv = {(time_t)(every / 1000), (suseconds_t)(every % 1000) * 1000};
    evtimer_add(r->tick, &tv);
    if (side_init(r, &r->client, client, &r->upstream) != 0) {
        fail_soon(r, &r->client);
        return r;
    }
    if (side_init(r, &r->upstream, upstream, &r->client) != 0 || start_side(&r->client) != 0) {
        fail_soon(r, &r->upstream);
        return r;
    }
    if (start_side(&r->upstream) != 0) {
        fail_soon(r, &r->client);
        return r;
    }
    /* The login's last reply and pipelined bytes go out now; OpenSSL may also hold records
     * bufferevent_openssl read but did not decrypt: a turn each finds them. */
    event_active(r->client.rd, EV_READ, 1);
    event_active(r->upstream.rd, EV_READ, 1);
    return r;
}

void relay_get_stats(const struct relay *r, struct relay_stats *out)
{
    out->client_bytes = r->client.bytes_in;
    out->upstream_bytes = r->upstream.bytes_in;
}

/* Gives the SSL object its socket back (for close_notify, and because bufferevent_openssl
 * finds the socket to close through it). Records the relay could not send are dropped: a
 * close_notify after them would be noise in the middle of a record, so none is sent. */
static void side_free(struct relay_side *side)
{
    if (side->ssl && side->socket_bio) {
        if (evbuffer_get_length(side->out) > 0)
            SSL_set_quiet_shutdown(side->ssl, 1);
        SSL_set0_wbio(side->ssl, side->socket_bio);
    }
    struct event *events[] = {side->rd, side->wr}; /* NULL when setup stopped early */
    for (size_t i = 0; i < sizeof events / sizeof *events; i++)
        if (events[i])
            event_free(events[i]);
    if (side->out)
        evbuffer_free(side->out);
}

void relay_free(struct relay **rp)
{
    struct relay *r = *rp;
    if (!r)
        return;
    side_free(&r->client);
    side_free(&r->upstream);
    event_free(r->tick);
    free(r);
    *rp = NULL;
}
