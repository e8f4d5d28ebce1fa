/* TLS session ticket keys for the client side, made by the broker and shared by every worker:
 * see ticket_keys.c. */
#ifndef MG_TICKET_KEYS_H
#define MG_TICKET_KEYS_H

#include <stdint.h>

#include "ipc.h"

struct event_base;
struct ticket_keys;

/* rotated runs after each rotation (to hand the new set to the workers). NULL on failure. */
struct ticket_keys *ticket_keys_new(struct event_base *base, uint32_t lifetime_s,
                                    void (*rotated)(void *arg), void *arg);
/* The set to send: key[0] encrypts, key[1] (after the first rotation) still decrypts. */
const struct ipc_ticket_keys *ticket_keys_current(const struct ticket_keys *t);
void ticket_keys_rotate(struct ticket_keys *t);
void ticket_keys_free(struct ticket_keys **t);

#endif
