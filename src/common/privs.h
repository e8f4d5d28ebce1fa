/* Giving up privileges, for the broker (broker/harden.c, broker/privdrop.c) and the workers
 * (worker/sandbox.c) alike. */
#pragma once

/* The workers' root: STATE_DIR/empty, prepared by `serve` (mode 0555, empty) and never handed
 * to the gateway user with the rest of state_dir. */
#define MG_EMPTY_ROOT_DIR "empty"

/* Not dumpable (no ptrace by the same user, /proc files root's) and RLIMIT_CORE 0. 0, or -1
 * with errno. */
int mg_forbid_core_dumps(void);

/* Clears the ambient, permitted and effective capabilities, and with bounding_set the
 * bounding set too (that takes CAP_SETPCAP: only a process in a user namespace of its own has
 * it here); then proves with capget that none is left. 0, or -1 with errno (EPERM when one
 * is left). */
int mg_drop_capabilities(int bounding_set);

/* 1 when the process has no permitted and no effective capability. */
int mg_has_no_capabilities(void);
