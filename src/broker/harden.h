/* What `serve` does to itself and prepares for the workers' sandbox (worker/sandbox.h). */
#pragma once

#include <stddef.h>

struct config;

/* Not dumpable, no core files (the broker holds the store key, client secrets and tokens).
 * As root: [gateway] user must exist (the broker and the workers become it, privdrop.h; err
 * then says how to create it). STATE_DIR/empty is made the workers' chroot: mode 0555, empty,
 * root's (or, started unprivileged, ours). Returns 0, or -1 with a one-line reason in err. */
int broker_harden(const struct config *cfg, char *err, size_t errlen);
