/* The broker's end of POST /tlsrpt: a worker sends a TLS report's normalised JSON in pieces
 * (IPC_TLSRPT_PART); the inbox puts them together (at most TLSRPT_MAX_NORMALISED bytes), parses
 * the whole as untrusted input with the same parser the worker used, and stores it. */
#ifndef MG_TLSRPT_INBOX_H
#define MG_TLSRPT_INBOX_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

struct store;

/* One per worker connection: the pieces of one report follow each other on the link. */
struct tlsrpt_inbox {
    uint32_t id;
    int active;    /* pieces of report id are being collected */
    int too_large; /* over TLSRPT_MAX_NORMALISED: the rest is skipped, the result is a refusal */
    char *buf;
    size_t len;
};

/* Takes one piece. Returns 1 when the report is complete and *res holds the answer for the
 * worker (stored, duplicate, refused, failed), 0 while more pieces are due. A piece of another
 * report abandons the unfinished one (its HTTP request times out in the worker). */
int tlsrpt_inbox_add(struct tlsrpt_inbox *in, struct store *st, const struct ipc_tlsrpt_part *p,
                     struct ipc_tlsrpt_result *res);
/* Frees what an unfinished report holds (the worker went away). */
void tlsrpt_inbox_clear(struct tlsrpt_inbox *in);

#endif
