/* The session core's client I/O budget, shared by session.c and session_io.c (protocols use
 * session.h only).
 *
 * What one client can hold in the login phase: its unread input stops being read at
 * CLIENT_INPUT_MAX, and once our unsent replies pass CLIENT_OUTPUT_MAX no further command is
 * taken (state SESSION_OUTPUT_WAIT, reading off) until the client has read them down to
 * CLIENT_OUTPUT_RESUME; then the commands already buffered are handled first. A client that
 * pipelines commands and never reads therefore costs a fixed budget, not memory without end. */
#ifndef MG_SESSION_IO_H
#define MG_SESSION_IO_H

#include "session.h"

#define CLIENT_INPUT_MAX (64 * 1024)
#define CLIENT_OUTPUT_MAX (64 * 1024)
#define CLIENT_OUTPUT_RESUME (16 * 1024)

/* True when the unsent replies are over CLIENT_OUTPUT_MAX. */
int session_output_full(const struct session *s);
/* Stops taking commands (and reading) until the client reads our replies: the write callback
 * resumes once the output is down to CLIENT_OUTPUT_RESUME. */
void session_wait_for_output(struct session *s);

#endif
