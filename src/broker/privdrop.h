/* The broker gives up root once it holds what only root may open: the listening sockets (ports
 * below 1024), the store, the key file. From then on it runs as [gateway] user, and so do the
 * workers it starts (worker/sandbox.h adds their chroot and seccomp filter). */
#pragma once

#include <stddef.h>

struct config;

/* As root: hands the state directory (and the files in it, but not the workers' empty root)
 * to [gateway] user, becomes that user with its groups (e.g. ssl-cert for a key in
 * /etc/ssl/private), proves root cannot be regained and stays not dumpable. Started as
 * another user (systemd's User=): drops any capability it was given (CAP_NET_BIND_SERVICE is
 * no longer needed once the listeners are bound). Returns 0, or -1 with a reason in err. */
int broker_drop_root(const struct config *cfg, char *err, size_t errlen);

/* The name the broker runs as now, for messages ("mailgate", "root", ...). */
const char *broker_user_name(void);

/* Sanitizer builds only: LeakSanitizer's check at exit must ptrace the broker's threads, which
 * an unprivileged, not dumpable process cannot do. Called when every secret is gone. */
void broker_allow_leak_check(void);
