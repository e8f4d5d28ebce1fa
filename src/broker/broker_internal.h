/* Shared by broker.c (the login pipeline) and worker_link.c (the IPC connection with each
 * worker): the broker's state and the calls between the two halves. Not for other files. */
#ifndef MG_BROKER_INTERNAL_H
#define MG_BROKER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "password.h"
#include "tlsrpt_inbox.h"

struct bufferevent;
struct auth_job;

struct worker_conn {
    struct broker *b;
    struct worker_conn *next;
    struct bufferevent *bev;
    int index;
    size_t pending; /* requests not answered yet */
    int ready_reported;
    void (*on_ready)(int index, void *arg);
    void *on_ready_arg;
    struct tlsrpt_inbox tlsrpt; /* a TLS report arriving in pieces (POST /tlsrpt) */
};

struct broker {
    struct event_base *base;
    const struct config *cfg;
    struct store *st;
    struct token_client *tokens;
    struct auth_cache *cache;
    struct verify_pool *pool;
    struct lockouts *guard; /* failure counts, lockouts, logins in flight per address */
    /* Verified instead of a real hash for unknown users, so that "no such user" takes as long
     * as "wrong password". Made at start with the current Argon2id parameters. */
    char dummy_hash[PASSWORD_HASH_MAX];
    struct worker_conn *workers;
    struct auth_job *jobs;
    struct audit_sink *audit;    /* login audit records from the workers */
    struct ticket_keys *tickets; /* clients' TLS session tickets; NULL: none */
    struct signin *signin;       /* the sign-in page's records and code exchanges */
    struct protolog_writer *protolog; /* protocol log lines from the workers */
    struct broker_metrics *metrics;   /* operations counters (/metrics, /healthz) */
};

/* broker.c: the frames a worker sends that start, stop or judge a login. */
void broker_auth_request(struct worker_conn *conn, const struct ipc_auth_request *req);
void broker_auth_cancel(struct worker_conn *conn, uint32_t id);
void broker_token_refused(struct worker_conn *conn, const struct ipc_token_refused *ref);
/* Cancels every job of conn (it is going away); nothing calls back for them afterwards. */
void broker_cancel_jobs_of(struct broker *b, struct worker_conn *conn);

/* worker_link.c */
/* Queues res for conn's worker through memory wiped once sent (it may hold a token). */
void worker_link_send(struct worker_conn *conn, struct ipc_auth_response *res);
/* Pauses or resumes reading from conn by its unanswered requests and unread answers. */
void worker_link_update_reading(struct worker_conn *conn);
/* The sign-in page's answers (signin.c; arg: the worker_conn): a start's carries no secret, a
 * callback's may carry a generated password, so it goes through wiped memory too. */
void worker_link_send_signin_answer(void *arg, const struct ipc_signin_answer *a);
/* Closes conn's IPC connection and cancels its jobs. */
void worker_link_drop(struct worker_conn *conn);
/* Makes the clients' session ticket keys for b->cfg (new ones when the lifetime changed) and
 * hands them to every ready worker; a worker gets them again when it reports ready. */
void worker_link_configure_tickets(struct broker *b);

#endif
