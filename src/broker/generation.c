/* Configuration generations: the file read once, bytes kept in a sealed memfd for the
 * workers, listening sockets bound by the broker (the workers never bind). */
#include "generation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define LISTEN_BACKLOG 1024

/* The workers read the memfd; seals make sure no one can change it after the broker parsed
 * it. */
static int make_config_fd(const char *path, const char *data, size_t len, FILE *errors)
{
    int fd = memfd_create("mailgate.conf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        fprintf(errors, "%s:0: cannot create a memfd for the workers: %s\n", path, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(errors, "%s:0: cannot write the workers' copy: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return fd;
}

static int same_address(const struct listener_conf *a, const struct listener_conf *b)
{
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static int reuse_socket(const struct generation *prev, const struct listener_conf *l)
{
    for (size_t i = 0; prev && i < prev->n_listen; i++)
        if (same_address(&prev->cfg->listeners[i], l))
            return fcntl(prev->listen_fds[i], F_DUPFD_CLOEXEC, 3);
    return -1;
}

/* Non-blocking: every worker polls the same socket, the kernel wakes them all and the losers'
 * accept() says EAGAIN. SO_REUSEADDR only skips TIME_WAIT; without SO_REUSEPORT no other
 * process may bind the port while we listen. */
static int bind_listener(const char *path, const struct listener_conf *l, FILE *errors)
{
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        fprintf(errors, "%s:%d: listener %s: cannot listen on %s: %s\n", path, l->line, l->name,
                l->address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int generation_listen(struct generation *g, const struct generation *prev, FILE *errors)
{
    const char *path = g->cfg->path;
    g->listen_fds = mg_calloc(g->cfg->n_listeners ? g->cfg->n_listeners : 1, sizeof(int));
    for (size_t i = 0; i < g->cfg->n_listeners; i++) {
        const struct listener_conf *l = &g->cfg->listeners[i];
        int fd = reuse_socket(prev, l);
        if (fd < 0)
            fd = bind_listener(path, l, errors);
        if (fd < 0)
            return -1;
        g->listen_fds[g->n_listen++] = fd;
    }
    return 0;
}

struct generation *generation_load(const char *path, FILE *errors)
{
    size_t len = 0;
    char *data = mg_read_file(path, CONFIG_MAX_BYTES, 0, &len);
    if (!data) {
        fprintf(errors, "%s:0: cannot read: %s\n", path, strerror(errno));
        return NULL;
    }
    struct generation *g = mg_calloc(1, sizeof *g);
    g->config_fd = -1;
    g->cfg = config_load_bytes(path, data, len, CONFIG_LOAD_SECRETS, errors);
    if (g->cfg)
        g->config_fd = make_config_fd(path, data, len, errors);
    mg_wipe(data, len); /* the file may hold a client_secret */
    free(data);
    if (!g->cfg || g->config_fd < 0)
        generation_free(&g);
    return g;
}

void generation_free(struct generation **gp)
{
    struct generation *g = gp ? *gp : NULL;
    if (!g)
        return;
    for (size_t i = 0; i < g->n_listen; i++)
        close(g->listen_fds[i]);
    free(g->listen_fds);
    if (g->config_fd >= 0)
        close(g->config_fd);
    config_free(&g->cfg);
    free(g);
    *gp = NULL;
}
