/* Clients' TLS session tickets, sealed with the broker's shared keys (ticket_keys.c in the
 * broker): a client resumes on whichever worker it reaches. */
#ifndef MG_TLS_TICKETS_H
#define MG_TLS_TICKETS_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "ipc.h"

/* Server context ctx issues tickets valid for lifetime_ms (0: none at all) once keys came. */
void tls_tickets_enable(SSL_CTX *ctx, uint64_t lifetime_ms);
/* The broker's current set (IPC_TICKET_KEYS); replaces and wipes the previous one. */
void tls_tickets_set_keys(const struct ipc_ticket_keys *keys);
/* Wipes the keys (worker exit). */
void tls_tickets_clear(void);

#endif
