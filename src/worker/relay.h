/* The protocol-blind pump between a logged-in client and its upstream. Bytes move between the
 * bufferevents without copies; when one side's output holds RELAY_HIGH bytes, reading from the
 * other side stops until it drains below RELAY_LOW ("output full => stop reading"). EOF or an
 * error on either side flushes what is pending towards the other side (bounded in time), then
 * the relay reports the end once. No byte for idle_timeout_ms in either direction ends it too. */
#ifndef MG_RELAY_H
#define MG_RELAY_H

#include <stdint.h>

struct bufferevent;
struct event_base;

#define RELAY_HIGH (256 * 1024)
#define RELAY_LOW (64 * 1024)
#define RELAY_READ_CHUNK (64 * 1024) /* read per turn of a side; below malloc's mmap threshold */
#define RELAY_FLUSH_MS 5000

struct relay_stats {
    uint64_t client_bytes;   /* client -> upstream */
    uint64_t upstream_bytes; /* upstream -> client */
};

/* Runs from the loop, at most once; the relay may be freed from inside it. why is static text. */
typedef void (*relay_done_fn)(void *arg, const char *why);

struct relay;

/* Takes over the callbacks of both bufferevents (not their ownership: the caller frees them
 * after the relay). Bytes already waiting in either input are forwarded at once. */
struct relay *relay_new(struct event_base *base, struct bufferevent *client,
                        struct bufferevent *upstream, uint64_t idle_timeout_ms, relay_done_fn done,
                        void *arg);
void relay_get_stats(const struct relay *r, struct relay_stats *out);
/* Stops the relay (callbacks cleared); the caller frees the bufferevents. */
void relay_free(struct relay **r);

#endif
