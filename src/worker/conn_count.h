/* Connections per client address in one worker (max_connections_per_ip). Pure: a small hash
 * table of counts, entries freed when their count drops to zero. */
#ifndef MG_CONN_COUNT_H
#define MG_CONN_COUNT_H

#include <stddef.h>

struct conn_count;

struct conn_count *conn_count_new(void);
void conn_count_free(struct conn_count **cc);
/* client_addr as the sessions keep it ("1.2.3.4:5678"); the port is ignored. Returns the
 * address's count including this connection. */
size_t conn_count_add(struct conn_count *cc, const char *client_addr);
void conn_count_remove(struct conn_count *cc, const char *client_addr);

#endif
