/* The protocol-blind pump between a logged-in client and its upstream, with its own I/O on the
 * two sockets (see relay.c for why). When one side's output holds RELAY_HIGH bytes, reading
 * from the other side stops until it drains below RELAY_LOW ("output full => stop reading").
 * EOF or an
 * error on either side flushes what is pending towards the other side (bounded in time), then
 * the relay reports the end once. No byte for idle_timeout_ms in either direction ends it too. */
#ifndef MG_RELAY_H
#define MG_RELAY_H

#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event_base;

#define RELAY_HIGH (256 * 1024)
#define RELAY_LOW (64 * 1024)
#define RELAY_READ_CHUNK (64 * 1024) /* TLS read-ahead per read(2); below malloc's mmap threshold  \
                                      */
#define RELAY_FLUSH_MS 5000

struct relay_stats {
    uint64_t client_bytes;   /* client -> upstream */
    uint64_t upstream_bytes; /* upstream -> client */
};

/* Runs from the loop, at most once; the relay may be freed from inside it. why is static text. */
typedef void (*relay_done_fn)(void *arg, const char *why);

/* Sees every plaintext byte the relay moves (the protocol log); from_client says which way. */
typedef void (*relay_tap_fn)(void *arg, int from_client, const void *data, size_t len);

struct relay_params {
    uint64_t idle_timeout_ms;
    relay_done_fn done;
    relay_tap_fn tap; /* or NULL */
    void *arg;        /* for done and tap */
};

struct relay;

/* Takes over the I/O of both connections: their bufferevents are disabled, not freed (the
 * caller frees them after relay_free(), which gives the SSL objects their sockets back).
 * Bytes waiting in either bufferevent (input or output) are moved at once. */
struct relay *relay_new(struct event_base *base, struct bufferevent *client,
                        struct bufferevent *upstream, const struct relay_params *params);
void relay_get_stats(const struct relay *r, struct relay_stats *out);
/* Stops the relay and gives each SSL object its socket back; the caller frees the
 * bufferevents afterwards. */
void relay_free(struct relay **r);

#endif
