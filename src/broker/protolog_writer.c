/* The protocol log's files (protolog_writer.h). */
#include "protolog_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define ERROR_LOG_EVERY_MS 60000

struct protolog_writer {
    const struct config *cfg;
    int fd; /* -1: not open */
    uint64_t size;
    uint64_t last_error_ms;
    char path[4096]; /* state_dir/protocol-log/protocol.log */
};

struct protolog_writer *protolog_writer_new(const struct config *cfg)
{
    struct protolog_writer *pw = mg_calloc(1, sizeof *pw);
    pw->cfg = cfg;
    pw->fd = -1;
    return pw;
}

void protolog_writer_set_config(struct protolog_writer *pw, const struct config *cfg)
{
    pw->cfg = cfg;
}

static void report_error(struct protolog_writer *pw, const char *what)
{
    uint64_t now = mg_now_ms();
    if (pw->last_error_ms && now - pw->last_error_ms < ERROR_LOG_EVERY_MS)
        return;
    pw->last_error_ms = now;
    log_error("protocol log: cannot %s %s: %s (lines are lost until it works)", what, pw->path,
              strerror(errno));
}

static int open_file(struct protolog_writer *pw)
{
    int n = snprintf(pw->path, sizeof pw->path, "%s/%s/%s", pw->cfg->gateway.state_dir,
                     PROTOLOG_DIR, PROTOLOG_FILE);
    if (n < 0 || (size_t)n >= sizeof pw->path)
        return -1;
    char *slash = strrchr(pw->path, '/');
    *slash = '\0'; /* the directory first */
    int made = mkdir(pw->path, 0750) == 0 || errno == EEXIST;
    *slash = '/';
    if (!made) {
        report_error(pw, "create the directory of");
        return -1;
    }
    pw->fd = open(pw->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (pw->fd < 0) {
        report_error(pw, "open");
        return -1;
    }
    struct stat st;
    pw->size = fstat(pw->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

/* protocol.log.N-1 -> .N, ..., protocol.log -> .1 (the oldest is replaced), then a new file. */
static void rotate(struct protolog_writer *pw)
{
    close(pw->fd);
    pw->fd = -1;
    char from[sizeof pw->path + 16], to[sizeof pw->path + 16];
    for (int i = PROTOLOG_KEEP - 1; i >= 0; i--) {
        if (i == 0)
            snprintf(from, sizeof from, "%s", pw->path);
        else
            snprintf(from, sizeof from, "%s.%d", pw->path, i);
        snprintf(to, sizeof to, "%s.%d", pw->path, i + 1);
        if (rename(from, to) != 0 && errno != ENOENT)
            report_error(pw, "rotate");
    }
}

void protolog_writer_append(struct protolog_writer *pw, const char *text, size_t len)
{
    if (pw->fd < 0 && open_file(pw) != 0)
        return;
    if (pw->size > 0 && pw->size + len > pw->cfg->gateway.protocol_log_max) {
        rotate(pw);
        if (open_file(pw) != 0)
            return;
    }
    ssize_t n = write(pw->fd, text, len);
    if (n < 0) {
        report_error(pw, "append to");
        return;
    }
    pw->size += (uint64_t)n;
}

void protolog_writer_free(struct protolog_writer **pwp)
{
    struct protolog_writer *pw = *pwp;
    if (!pw)
        return;
    if (pw->fd >= 0)
        close(pw->fd);
    free(pw);
    *pwp = NULL;
}
