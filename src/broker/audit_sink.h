/* The broker's end of the login audit: records from the workers (IPC_AUDIT) are judged, queued
 * and written to the store in one transaction per tick, and to [gateway] audit_log as JSON
 * lines. The queue is bounded: when a flood fills it, records are dropped and counted (the
 * count goes to the log), never waited for. Old rows are pruned at start and every hour. */
#ifndef MG_AUDIT_SINK_H
#define MG_AUDIT_SINK_H

#include "ipc.h"

struct event_base;
struct config;
struct store;
struct audit_sink;

/* Opens cfg's audit_log (append, created 0640 when missing) and prunes once. NULL with err
 * filled when the file cannot be opened. */
struct audit_sink *audit_sink_new(struct event_base *base, const struct config *cfg,
                                  struct store *st, char *err, size_t errlen);
/* SIGHUP: a new retention, default domain and audit_log, which is opened again even when its
 * path is unchanged (logrotate's move and SIGHUP). A file that cannot be opened is logged and
 * the one in use stays. */
void audit_sink_set_config(struct audit_sink *a, const struct config *cfg);
/* A record from a worker: refused (logged) when invalid, dropped when the queue is full. */
void audit_sink_push(struct audit_sink *a, const struct ipc_audit *rec);
/* Writes what is queued, then frees. */
void audit_sink_free(struct audit_sink **a);

#endif
