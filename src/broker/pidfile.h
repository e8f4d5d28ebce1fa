/* One gateway per state directory: `mailgate serve` holds an exclusive flock(2) on
 * state_dir/mailgate.pid for as long as the broker lives, and writes its PID into it.
 *
 * The lock, not the file, says whether a gateway runs: the kernel drops it when the broker
 * dies in any way (SIGKILL included), so a pid file left behind never blocks a start. The
 * descriptor is close-on-exec, so workers never hold the lock (a stray worker must not keep a
 * dead broker's state directory locked). A clean stop removes the file. Admin commands do not
 * take the lock: they may run beside the gateway. */
#ifndef MG_PIDFILE_H
#define MG_PIDFILE_H

#include <stddef.h>

struct pidfile;

/* Creates state_dir (0700) when missing, locks state_dir/mailgate.pid and writes our PID.
 * NULL when another process holds the lock ("... is already running (pid N, lock on PATH)")
 * or the file cannot be created or locked; err says which. */
struct pidfile *pidfile_acquire(const char *state_dir, char *err, size_t errlen);

/* Removes the file (if it is still ours), releases the lock and frees. NULL is fine. */
void pidfile_release(struct pidfile **pf);

#endif
