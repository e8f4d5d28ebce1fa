/* `mailgate serve`: the broker process, which starts one worker process per core
 * (fork + exec of this binary as "mailgate __worker", so no secret is ever inherited through
 * memory), restarts workers that die, and stops everything on SIGTERM/SIGINT. */
#ifndef MG_SERVE_H
#define MG_SERVE_H

/* Returns the process exit code. Refuses to start (exit 1, message on stderr) on a bad config,
 * another gateway running on the same state_dir (its PID and pid file in the message), an
 * unusable store, or a worker that cannot bind its listeners. */
int serve_main(const char *config_path);

#endif
