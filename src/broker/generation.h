/* One configuration generation of a running gateway: the file's bytes as the broker read them,
 * the config parsed from them (with secrets), and the listening sockets bound for its
 * [listen] sections. `serve` starts with one and replaces it on SIGHUP (reload.c); every
 * worker it starts gets the bytes and the sockets of the generation it belongs to, never the
 * file, so a restarted worker serves what the broker validated, whatever the file holds now. */
#ifndef MG_GENERATION_H
#define MG_GENERATION_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

struct generation {
    struct config *cfg; /* loaded with CONFIG_LOAD_SECRETS from the bytes in config_fd */
    int config_fd;      /* sealed memfd with the file's bytes, close-on-exec */
    int *listen_fds;    /* one listening socket per cfg->listeners[i], same order */
    size_t n_listen;
};

/* Reads path once and parses those bytes. On failure writes "PATH:LINE: message" lines to
 * errors and returns NULL. */
struct generation *generation_load(const char *path, FILE *errors);
/* Binds every listener of g. A listener whose address equals one of prev's (NULL at start)
 * reuses that socket (a dup: connections waiting in its backlog are not refused); the others
 * are bound anew. On failure writes "PATH:LINE: ... cannot listen on ADDRESS: why" to errors
 * and returns -1 (g keeps what it bound; generation_free closes it); prev is not touched. */
int generation_listen(struct generation *g, const struct generation *prev, FILE *errors);
void generation_free(struct generation **g);

#endif
