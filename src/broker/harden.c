/* The broker's own hardening and the workers' chroot (harden.h). Root is given up right after
 * (privdrop.h); the workers chroot from a user namespace of their own (worker/sandbox.c). */
#include "harden.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privs.h"
#include "util.h"

static int no_dumps(char *err, size_t errlen)
{
    if (mg_forbid_core_dumps() != 0) {
        snprintf(err, errlen, "cannot forbid core dumps: %s", strerror(errno));
        return -1;
    }
    log_debug("broker: dumpable=%d, core files off", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    return 0;
}

static int user_exists(const char *user, char *err, size_t errlen)
{
    if (getpwnam(user))
        return 0;
    /* --no-create-home: the state directory is the broker's (root, 0700), never the user's. */
    snprintf(err, errlen,
             "mailgate runs as user \"%s\" ([gateway] user), which does not exist; create it "
             "with: adduser --system --group --home /var/lib/mailgate --no-create-home %s",
             user, user);
    return -1;
}

static int is_empty_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

/* A directory the workers can neither write nor find anything in: their root after chroot.
 * Changed only when wrong, so the systemd unit needs neither CAP_CHOWN nor CAP_FOWNER. */
static int prepare_empty_dir(const char *state_dir, char *err, size_t errlen)
{
    char *path = mg_printf("%s/%s", state_dir, MG_EMPTY_ROOT_DIR);
    int rc = -1;
    struct stat st;
    if (mkdir(path, 0555) != 0 && errno != EEXIST)
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    else if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        snprintf(err, errlen, "%s is not a directory", path);
    else if (geteuid() == 0 && (st.st_uid || st.st_gid) && chown(path, 0, 0) != 0)
        snprintf(err, errlen, "cannot make %s root-owned: %s", path, strerror(errno));
    else if (st.st_uid != 0 && st.st_uid != geteuid())
        snprintf(err, errlen, "%s belongs to another user (uid %ld)", path, (long)st.st_uid);
    else if ((st.st_mode & 07777) != 0555 && chmod(path, 0555) != 0)
        snprintf(err, errlen, "cannot make %s mode 0555: %s", path, strerror(errno));
    else if (!is_empty_dir(path))
        snprintf(err, errlen, "%s must be empty (the workers' root directory)", path);
    else
        rc = 0;
    free(path);
    return rc;
}

int broker_harden(const struct config *cfg, char *err, size_t errlen)
{
    if (no_dumps(err, errlen) != 0)
        return -1;
    if (geteuid() == 0 && user_exists(cfg->gateway.user, err, errlen) != 0)
        return -1; /* started by another user: that one serves, [gateway] user is not needed */
    /* The state directory exists already (pidfile_acquire creates it, 0700). */
    return prepare_empty_dir(cfg->gateway.state_dir, err, errlen);
}
