/* The state directory's pid file and its lock: see pidfile.h. */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define PIDFILE_NAME "mailgate.pid"
/* A stopping gateway removes its file between our open() and flock(): then we locked a file
 * that is no longer in the directory and open again. More rounds would mean a directory that
 * changes under us on purpose. */
#define LOCK_ATTEMPTS 5

struct pidfile {
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
};

/* The PID a running gateway wrote, for the message; 0 while it has not written it yet. */
static long pid_in_file(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

static void describe_holder(int fd, const char *path, char *err, size_t errlen)
{
    long pid = pid_in_file(fd);
    if (pid > 0)
        snprintf(err, errlen,
                 "mailgate is already running with this state_dir (pid %ld, lock on %s)", pid,
                 path);
    else
        snprintf(err, errlen, "mailgate is already starting with this state_dir (lock on %s)",
                 path);
}

/* The descriptor still names the file at path (it was not removed or replaced meanwhile). */
static int is_current_file(int fd, const char *path, struct stat *st)
{
    struct stat now;
    return fstat(fd, st) == 0 && stat(path, &now) == 0 && now.st_dev == st->st_dev &&
           now.st_ino == st->st_ino;
}

/* 1: locked and current, 0: stale (try again), -1: err set. */
static int try_lock(const char *path, int *fd_out, struct stat *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            describe_holder(fd, path, err, errlen);
        else
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!is_current_file(fd, path, st)) {
        close(fd);
        return 0;
    }
    *fd_out = fd;
    return 1;
}

static int write_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    return ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n ? 0 : -1;
}

struct pidfile *pidfile_acquire(const char *state_dir, char *err, size_t errlen)
{
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", state_dir, strerror(errno));
        return NULL;
    }
    char *path = mg_printf("%s/%s", state_dir, PIDFILE_NAME);
    int fd = -1, got = 0;
    struct stat st;
    for (int i = 0; i < LOCK_ATTEMPTS && got == 0; i++)
        got = try_lock(path, &fd, &st, err, errlen);
    if (got == 0)
        snprintf(err, errlen, "%s keeps being replaced; not starting", path);
    if (got == 1 && write_pid(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        close(fd);
        got = -1;
    }
    if (got != 1) {
        free(path);
        return NULL;
    }
    struct pidfile *pf = mg_calloc(1, sizeof *pf);
    *pf = (struct pidfile){.path = path, .fd = fd, .dev = st.st_dev, .ino = st.st_ino};
    return pf;
}

void pidfile_release(struct pidfile **pf)
{
    if (!*pf)
        return;
    struct stat now;
    /* Unlink before unlocking, so no one locks the name we are about to remove. */
    if (stat((*pf)->path, &now) == 0 && now.st_dev == (*pf)->dev && now.st_ino == (*pf)->ino)
        unlink((*pf)->path);
    close((*pf)->fd);
    free((*pf)->path);
    free(*pf);
    *pf = NULL;
}
