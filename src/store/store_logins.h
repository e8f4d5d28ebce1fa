/* The login audit in the store (issue 11): one row per login attempt and per end of a
 * logged-in session, written by the broker in batches, read by `mailgate report`. */
#ifndef MG_STORE_LOGINS_H
#define MG_STORE_LOGINS_H

#include <stdint.h>

#include "store.h"

struct login_event {
    int64_t id;        /* set by the store */
    int64_t at;        /* unix seconds */
    const char *event; /* "login", "end" */
    const char *session;
    const char *protocol; /* "imap", "pop3", "smtp" */
    const char *listener;
    const char *client_addr; /* without the port */
    int64_t client_port;
    const char *client_id; /* IMAP ID name/version, SMTP EHLO name; "" when none */
    const char *login;     /* the name as typed */
    const char *user;      /* the user it stands for (canonical), or as typed */
    const char *mailbox;
    const char *result; /* "ok", "fail" */
    const char *reason; /* a fixed word (audit_rec.c) */
    const char *detail; /* "idp error": the AADSTS code, else "" */
    int64_t duration_ms, bytes_in, bytes_out;
};

/* NULL or 0 fields match everything. */
struct login_filter {
    int64_t since; /* at >= since */
    const char *protocol, *user, *result, *event;
};

/* Per user and protocol within a period (`report usage`). */
struct login_usage {
    const char *user, *protocol;
    int64_t logins;     /* successful ones */
    int64_t failures;   /* failed attempts */
    int64_t last_login; /* unix seconds of the last successful one; 0: none */
    int64_t bytes_in, bytes_out;
    const char *last_client; /* "addr client_id" of the last successful login; "" when none */
};

/* Stores n events in one transaction: the caller batches to keep a login flood cheap. */
enum store_status store_login_events_add(struct store *st, const struct login_event *ev, size_t n);
/* Deletes the events older than before (unix seconds); *deleted = how many. */
enum store_status store_login_events_prune(struct store *st, int64_t before, int64_t *deleted);
/* Newest first. The event is valid during the callback only; stops when cb returns non-zero. */
enum store_status store_login_events_list(struct store *st, const struct login_filter *f,
                                          int (*cb)(const struct login_event *e, void *arg),
                                          void *arg);
/* One row per (user, protocol) with events since `since`, ordered by user and protocol. */
enum store_status store_login_usage(struct store *st, int64_t since,
                                    int (*cb)(const struct login_usage *u, void *arg), void *arg);

#endif
