/* The worker's sandbox: entered once, when the worker has finished its setup (listeners open,
 * TLS contexts and CA files loaded, DNS configured, the broker link connected), right before
 * its event loop. After it the worker touches no file: see sandbox.c for what it may do. */
#pragma once

struct config;

/* The directory a root-started worker chroots into: STATE_DIR/empty, which `serve` creates
 * root-owned, mode 0555, empty (broker/harden.c). */
#define SANDBOX_EMPTY_DIR "empty"

/* As root: chroot into STATE_DIR/empty and become [gateway] user (no supplementary groups),
 * verified by trying to regain root. Always: no new privileges, not dumpable, no core files,
 * and a seccomp filter that kills the process on any system call a serving worker does not
 * make. Returns 0, or -1 after logging why (the worker must then exit). */
int worker_sandbox_enter(const struct config *cfg);
