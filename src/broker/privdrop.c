/* The broker gives up root (privdrop.h). After this, code execution in the broker gets the
 * gateway's own secrets (which it holds by design) and nothing else of the machine: no root,
 * no capability, no other user's files, no ptrace of anything. */
#include "privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privs.h"
#include "util.h"

static char current_user[64] = "root";

const char *broker_user_name(void)
{
    return current_user;
}

/* Ambient and permitted capabilities (systemd's AmbientCapabilities=) end here; the workers,
 * started with execve, inherit none. */
static int drop_capabilities(char *err, size_t errlen)
{
    if (mg_drop_capabilities(0) != 0) {
        snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The store must stay writable after the drop: SQLite creates its -wal/-shm files (and a
 * -journal) next to the database, so the directory is the user's too. Files in it that root
 * created (a CLI run as root) are handed over; nothing is followed through a symlink. */
static int give_state_dir(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    int rc = fchown(dfd, uid, gid);
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, MG_EMPTY_ROOT_DIR) == 0) /* the workers' root stays root's */
            continue;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            (st.st_uid != uid || st.st_gid != gid))
            rc = fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW);
    }
    if (rc != 0)
        snprintf(err, errlen, "cannot give %s to uid %ld: %s", dir, (long)uid, strerror(errno));
    closedir(d);
    return rc;
}

static int become(const struct passwd *pw, char *err, size_t errlen)
{
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "cannot become user \"%s\": %s", pw->pw_name, strerror(errno));
        return -1;
    }
    /* Proof, not trust: root must be gone for good, saved ids and capabilities included. */
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || getuid() != pw->pw_uid ||
        geteuid() != pw->pw_uid || getgid() != pw->pw_gid || getegid() != pw->pw_gid ||
        !mg_has_no_capabilities()) {
        snprintf(err, errlen, "root could be regained after becoming \"%s\"", pw->pw_name);
        return -1;
    }
    return 0;
}

int broker_drop_root(const struct config *cfg, char *err, size_t errlen)
{
    if (geteuid() != 0) {
        struct passwd *self = getpwuid(geteuid());
        snprintf(current_user, sizeof current_user, "%s", self ? self->pw_name : "?");
        return drop_capabilities(err, errlen);
    }
    struct passwd *pw = getpwnam(cfg->gateway.user);
    if (!pw) {
        snprintf(err, errlen, "no user \"%s\" ([gateway] user)", cfg->gateway.user);
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "[gateway] user \"%s\" is root: name an unprivileged user",
                 cfg->gateway.user);
        return -1;
    }
    if (give_state_dir(cfg->gateway.state_dir, pw->pw_uid, pw->pw_gid, err, errlen) != 0 ||
        become(pw, err, errlen) != 0)
        return -1;
    /* A change of credentials makes a process dumpable again. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        snprintf(err, errlen, "cannot stay not dumpable: %s", strerror(errno));
        return -1;
    }
    snprintf(current_user, sizeof current_user, "%s", cfg->gateway.user);
    log_info("broker: running as user %s (uid %ld), no capabilities", cfg->gateway.user,
             (long)getuid());
    return 0;
}

void broker_allow_leak_check(void)
{
#if defined(__SANITIZE_ADDRESS__)
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
}
