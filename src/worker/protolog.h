/* The protocol log, worker side (README, "Protocol log"; docs/design.md): a session of a
 * listener with protocol_log = on has its bytes watched as they pass (evbuffer callbacks on its
 * connections' buffers during the login, then the relay's tap: nothing is copied but line heads,
 * and a listener without the log has no callback at all), turned into redacted lines by
 * protolog_scan.c and sent in batches to the broker (IPC_PROTOLOG), which writes the files: a
 * worker cannot open one.
 *
 * Bounds: one line is cut at PLOG_LINE_MAX bytes; a session may put at most
 * PROTOLOG_SESSION_SHARE bytes into each PROTOLOG_FLUSH_MS period, and the worker stops
 * sending while its IPC output to the broker holds PROTOLOG_IPC_HIGH bytes (below the audit
 * records' bound, so the log never crowds them out). What does not fit is dropped and counted;
 * the count is logged as a "#:" line once lines flow again. */
#ifndef MG_PROTOLOG_H
#define MG_PROTOLOG_H

#include <stddef.h>

struct bufferevent;
struct session;
struct worker_ctx;

#define PROTOLOG_FLUSH_MS 100
#define PROTOLOG_SESSION_SHARE (8 * 1024)
#define PROTOLOG_IPC_HIGH (256 * 1024)

/* Sets s->plog when the session's listener has protocol_log = on (else leaves it NULL). */
void protolog_open(struct session *s);
/* Watches s->client (after it was created or replaced for STARTTLS). */
void protolog_tap_client(struct session *s);
/* Watches the upstream connection of the login phase (after connecting or its STARTTLS). */
void protolog_tap_upstream(struct session *s, struct bufferevent *bev);
/* The login succeeded: the relay's rules from now on (client commands, the upstream's status
 * lines, no content). */
void protolog_relay(struct session *s);
/* The relay moved these plaintext bytes (from the client when from_client, else from the
 * upstream). */
void protolog_relayed(struct session *s, int from_client, const void *data, size_t len);
/* The session ends; called once its connections are freed. */
void protolog_close(struct session *s);
/* Worker exit: what is batched goes to the broker link; frees the batch. */
void protolog_worker_free(struct worker_ctx *w);

#endif
