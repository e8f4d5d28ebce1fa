/* A worker: one single-threaded process per core. Binds every [listen] with SO_REUSEPORT, runs
 * TLS, the protocol state machines and the relay; asks the broker over ipc_fd for logins. */
#ifndef MG_WORKER_H
#define MG_WORKER_H

/* Runs until SIGTERM/SIGINT (graceful: stop accepting, close sessions) or until the broker's end
 * of ipc_fd closes. Loads the configuration itself with CONFIG_SKIP_SECRETS. Sends
 * IPC_WORKER_READY once every listener is bound. Returns the process exit code (0, or 1 when a
 * listener could not be bound or the config could not be loaded). */
int worker_main(const char *config_path, int ipc_fd, int index);

#endif
