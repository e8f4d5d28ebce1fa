/* Why the broker makes the ticket keys: a worker's SSL_CTX would otherwise make its own, and a
 * client that reached another worker (or the same one after a restart) could not resume. The
 * keys live only in memory, random at each start, so no ticket outlives the process that
 * issued it by more than its lifetime; they rotate every lifetime, the previous key decrypting
 * for one more period (a ticket issued just before a rotation stays good for its lifetime), and
 * OpenSSL refuses a session older than the lifetime whichever key decrypts it. A worker holds
 * them (they are short-lived, unlike the store's secrets); a stolen set opens at most the
 * sessions of two periods. */
#include "ticket_keys.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util.h"

struct ticket_keys {
    struct ipc_ticket_keys set;
    struct event *timer;
    void (*rotated)(void *arg);
    void *arg;
};

static void new_key(struct ipc_ticket_key *k)
{
    mg_random_bytes(k, sizeof *k);
}

void ticket_keys_rotate(struct ticket_keys *t)
{
    t->set.key[1] = t->set.key[0];
    new_key(&t->set.key[0]);
    t->set.count = 2;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct ticket_keys *t = arg;
    ticket_keys_rotate(t);
    if (t->rotated)
        t->rotated(t->arg);
}

struct ticket_keys *ticket_keys_new(struct event_base *base, uint32_t lifetime_s,
                                    void (*rotated)(void *arg), void *arg)
{
    if (lifetime_s < 1 || lifetime_s > IPC_TICKET_LIFETIME_MAX)
        return NULL;
    struct ticket_keys *t = mg_calloc(1, sizeof *t);
    t->set.count = 1;
    t->set.lifetime_s = lifetime_s;
    new_key(&t->set.key[0]);
    t->rotated = rotated;
    t->arg = arg;
    t->timer = event_new(base, -1, EV_PERSIST, on_timer, t);
    struct timeval every = {(time_t)lifetime_s, 0};
    if (!t->timer || event_add(t->timer, &every) != 0) {
        ticket_keys_free(&t);
        return NULL;
    }
    return t;
}

const struct ipc_ticket_keys *ticket_keys_current(const struct ticket_keys *t)
{
    return &t->set;
}

void ticket_keys_free(struct ticket_keys **tp)
{
    struct ticket_keys *t = *tp;
    if (!t)
        return;
    if (t->timer)
        event_free(t->timer);
    mg_wipe(t, sizeof *t);
    free(t);
    *tp = NULL;
}
