/* The protocol log, broker side: appends the lines the workers send (IPC_PROTOLOG, already
 * redacted and checked by the decoder to be whole printable lines) to
 * state_dir/protocol-log/protocol.log, as the gateway user. When a batch would take the file past
 * [gateway] protocol_log_max, it is rotated first: protocol.log.N-1 -> .N ... protocol.log ->
 * .1, keeping PROTOLOG_KEEP old files, so the log takes at most about (PROTOLOG_KEEP + 1) *
 * protocol_log_max. One write per batch (at most 16 KiB) to a local file: the loop is not held
 * for long. Write errors are logged once per minute, and the batch is lost. */
#ifndef MG_PROTOLOG_WRITER_H
#define MG_PROTOLOG_WRITER_H

#include <stddef.h>

struct config;
struct protolog_writer;

#define PROTOLOG_KEEP 5
#define PROTOLOG_DIR "protocol-log"
#define PROTOLOG_FILE "protocol.log"

/* Opens nothing yet: the directory and file are created at the first batch. */
struct protolog_writer *protolog_writer_new(const struct config *cfg);
/* SIGHUP: a new protocol_log_max applies from the next batch. */
void protolog_writer_set_config(struct protolog_writer *pw, const struct config *cfg);
void protolog_writer_append(struct protolog_writer *pw, const char *text, size_t len);
void protolog_writer_free(struct protolog_writer **pw);

#endif
