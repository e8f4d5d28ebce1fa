/* A worker: one single-threaded process per core. Accepts on the listening sockets the broker
 * bound, runs TLS, the protocol state machines and the relay; asks the broker over ipc_fd for
 * logins. */
#ifndef MG_WORKER_H
#define MG_WORKER_H

#include <stddef.h>

/* What the broker hands a worker (inherited descriptors, numbers on the command line). */
struct worker_start {
    const char *config_path; /* names the file in messages only: the worker never opens it */
    int ipc_fd;
    int index;
    int config_fd;         /* the config file's bytes as the broker parsed them (sealed memfd) */
    const int *listen_fds; /* one listening socket per [listen], in the file's order */
    size_t n_listen;
};

/* Runs until SIGTERM/SIGINT (graceful: stop accepting, close sessions), SIGUSR1 (drain after a
 * reload: stop accepting, exit when the last session ends) or until the broker's end of ipc_fd
 * closes. Parses config_fd's bytes with CONFIG_SKIP_SECRETS. Sends IPC_WORKER_READY once it
 * accepts on every listener. Returns the process exit code (0, or 1 when the configuration or
 * the descriptors are unusable). */
int worker_main(const struct worker_start *start);

#endif
