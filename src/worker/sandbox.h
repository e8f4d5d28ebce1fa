/* The worker's sandbox: entered once, when the worker has finished its setup (listeners open,
 * TLS contexts and CA files loaded, DNS configured, the broker link connected), right before
 * its event loop. After it the worker touches no file: see sandbox.c for what it may do. */
#pragma once

struct config;

/* A worker never runs as root (the broker dropped it first). In a user namespace of its own:
 * chroot into STATE_DIR/empty (common/privs.h's MG_EMPTY_ROOT_DIR) and no capability left,
 * bounding set included. Always: no new privileges, not dumpable, no core files,
 * and a seccomp filter that kills the process on any system call a serving worker does not
 * make. Returns 0, or -1 after logging why (the worker must then exit). */
int worker_sandbox_enter(const struct config *cfg);
