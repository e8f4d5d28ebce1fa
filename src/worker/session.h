/* The session core shared by every protocol: one struct session per client connection.
 *
 * The core owns the connections (client and upstream), TLS and STARTTLS, timers (login timeout,
 * failure delay, idle timeout via the relay), the broker request, the switch to the relay, the
 * login log line and closing. A protocol plugs in through struct proto_ops and only speaks its
 * grammar (imap_*.c, pop3_*.c, smtp_*.c). The parts of a login every protocol has live in the
 * core too: sasl_front.c (the client's SASL PLAIN and LOGIN) and login_dialog.c (the upstream
 * XOAUTH2 dialog: bounded server lines, the response, the error challenge). session_io.c holds
 * the client I/O: replies within the login phase's budget (session_io.h) and line reading.
 *
 * Lifetime rule: nothing is freed while a callback may still be running. session_close() only
 * marks the session closing, quiets it and schedules the free on the loop; so after any call
 * that can close the session, callers check s->closing and return at once. */
#ifndef MG_SESSION_H
#define MG_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "config.h"
#include "ipc.h"
#include "upstream.h"

struct bufferevent;
struct event;
struct event_base;
struct evbuffer;
struct evconnlistener;
struct evdns_base;
struct dns_cache;
struct relay;
struct conn_count;
struct protolog;
struct protolog_out;
struct session;
struct tls_client_cache;

enum session_state {
    SESSION_HANDSHAKE,   /* TLS handshake (implicit, or after STARTTLS) */
    SESSION_PRELOGIN,    /* the protocol reads commands */
    SESSION_OUTPUT_WAIT, /* the client does not read our replies: commands wait (session_io.h) */
    SESSION_STARTTLS,    /* flushing the protocol's "go ahead" before the handshake */
    SESSION_AUTH_WAIT,   /* broker request in flight; client input stays unread */
    SESSION_AUTH_DELAY,  /* a failure is held back (failure delay) */
    SESSION_UPSTREAM,    /* connecting / logging in upstream */
    SESSION_RELAY,       /* logged in: bytes are pumped both ways */
    SESSION_CLOSING
};

/* Why a login attempt failed; the protocol turns it into its reply. */
enum login_failure {
    LOGIN_FAIL_CREDENTIALS,          /* unknown user or wrong password (after the delay) */
    LOGIN_FAIL_DISABLED,             /* the user may not use this protocol */
    LOGIN_FAIL_TEMPORARY,            /* the broker could not get a token: try later */
    LOGIN_FAIL_UPSTREAM_AUTH,        /* the server refused our token */
    LOGIN_FAIL_UPSTREAM_UNAVAILABLE, /* connect, TLS, protocol error, timeout, server busy */
    LOGIN_FAIL_INTERNAL              /* broker unreachable, unknown provider, ... */
};

enum session_goodbye {
    GOODBYE_LOGIN_TIMEOUT,
    GOODBYE_TOO_MANY_ERRORS,
    GOODBYE_SHUTDOWN,
    GOODBYE_TOO_MANY_CONNECTIONS, /* instead of the greeting: max_connections_per_ip */
    GOODBYE_ADDRESS_NOT_ALLOWED   /* instead of the greeting: outside the listener's allow */
};

struct proto_ops {
    enum mg_proto protocol;
    /* Login-phase state (s->proto): state_size bytes, zeroed, created with the session; then
     * init_state (may be NULL) sets it up. At the switch to relay, or when the session ends,
     * release_state (may be NULL) lets go of what it holds and the core wipes and frees it. */
    size_t state_size;
    void (*init_state)(struct session *s, void *state);
    void (*release_state)(void *state);
    void (*greeting)(struct session *s);
    /* Bytes wait in session_input(); called in SESSION_PRELOGIN only. Consume what can be
     * handled; leave the rest as soon as the state is no longer SESSION_PRELOGIN (a login
     * started, the client does not read our replies, the session closes). */
    void (*on_client_input)(struct session *s);
    void (*on_tls_ready)(struct session *s); /* STARTTLS handshake done */
    /* The current login attempt failed; reply, then the core resumes reading commands. */
    void (*on_login_failed)(struct session *s, enum login_failure why);
    /* Upstream connected (TLS done when implicit): start the login dialog. Also called after
     * upstream_start_tls() finished. */
    void (*upstream_ready)(struct session *s);
    void (*on_upstream_input)(struct session *s);
    /* Write the protocol's last words (the core closes right after). */
    void (*goodbye)(struct session *s, enum session_goodbye why);
};

#define WORKER_PENDING_BUCKETS 256
#define SESSION_REASON_MAX (2 * IPC_REASON_MAX + 64)

/* Per-process state of a worker, shared by its sessions. */
struct worker_ctx {
    struct event_base *base;
    struct evdns_base *dns;
    struct dns_cache *resolver; /* upstream host names (dns_cache.h); NULL without dns */
    const struct config *cfg;
    SSL_CTX *server_tls;
    struct tls_client_cache *client_tls;
    struct bufferevent *ipc; /* NULL once the broker is gone */
    int index;
    struct session *sessions; /* every live session */
    size_t n_sessions;
    int stopping; /* shutting down: the loop ends when the last session is freed */
    uint32_t next_request_id;
    struct session *pending[WORKER_PENDING_BUCKETS]; /* sessions waiting for the broker */
    struct conn_count *per_address;                  /* connections per client address (worker.c) */
    struct protolog_out *protolog;                   /* the protocol log's batch (protolog.c) */
};

struct listener {
    struct worker_ctx *w;
    const struct listener_conf *conf;
    const struct proto_ops *ops;
    struct evconnlistener *evl;
    struct event *resume_timer; /* accept paused after EMFILE/ENFILE */
    struct http_server *http;   /* protocol = http: evhttp accepts instead (src/http) */
};

/* Fields are read by protocol modules; only session.c (and worker.c for the pending map)
 * writes them. */
struct session {
    struct worker_ctx *w;
    struct listener *listener;
    const struct proto_ops *ops;
    void *proto; /* the protocol's login-phase state; NULL after the switch to relay */
    char id[9];
    char client_addr[IPC_ADDR_MAX];
    char client_id[IPC_CLIENT_ID_MAX]; /* for the audit: session_set_client_id() */
    enum session_state state;
    int client_tls; /* TLS is established on the client connection */
    int closing;
    int over_limit;  /* too many connections from its address: refused instead of greeted */
    int not_allowed; /* its address is outside the listener's allow =: the same */
    struct bufferevent *client;
    uint64_t started_ms;
    unsigned bad_commands;
    /* The rest of an overlong client line is being dropped (see session_read_line()). */
    int skipping_line;
    size_t skip_limit, skipped;

    /* The current login attempt. */
    int login_active;
    uint64_t login_started_ms;
    uint32_t broker_delay_ms; /* the throttle's failure delay for this attempt; 0: the base */
    char user[IPC_USER_MAX];
    char mailbox[IPC_MAILBOX_MAX];
    char provider[IPC_NAME_MAX];
    /* The broker's hint on an accepted login, or a held failure's reason: the upstream's words
     * and the hint, and after a refused token the broker's verdict too. */
    char reason[SESSION_REASON_MAX];
    enum login_failure held_failure; /* delivered when the delay timer fires */
    char *token;                     /* secret: wiped as soon as it was used */
    size_t token_len;
    /* Set when the upstream login starts: the provider's mechanism and the server (its host and
     * port go into OAUTHBEARER). */
    enum mg_sasl sasl;
    const struct server_addr *server;
    uint32_t request_id;
    int request_pending;
    /* The upstream refused the token: the broker's verdict is awaited (token_refused), and a
     * login retries with a fresh token at most once (token_retried). */
    uint64_t token_id;
    int token_refused, token_retried;
    struct session *pending_next;

    struct upstream *upstream;        /* login phase */
    struct bufferevent *upstream_bev; /* relay phase */
    struct relay *relay;
    struct protolog *plog; /* NULL: the listener has no protocol log */
    struct event *login_timer, *delay_timer, *flush_timer, *free_event;
    struct session *prev, *next;
};

/* ---- used by worker.c ---- */
struct session *session_new(struct listener *l, int fd, const struct sockaddr *sa, int salen);
/* Immediate free, for worker shutdown (no callback of this session may be running). */
void session_free(struct session *s);
void session_on_auth_response(struct session *s, struct ipc_auth_response *res);
/* Worker shutdown: a session still in the login phase gets the protocol's goodbye
 * (GOODBYE_SHUTDOWN), flushed while the worker winds down; a relaying session is closed at
 * once. */
void session_shutdown(struct session *s);
/* Implemented in worker.c: queue the request to the broker (sets req->id and s->request_id)
 * and forget it. */
int worker_send_auth_request(struct worker_ctx *w, struct session *s, struct ipc_auth_request *req);
void worker_cancel_auth_request(struct worker_ctx *w, struct session *s);
/* The same for the report of a refused token (sets ref->id); the answer comes to
 * session_on_auth_response. */
int worker_send_token_refused(struct worker_ctx *w, struct session *s,
                              struct ipc_token_refused *ref);
/* Implemented in worker.c: count the session against its address (returns 1 when over
 * max_connections_per_ip) and uncount it when it is freed. */
int worker_count_connection(struct worker_ctx *w, struct session *s);
void worker_uncount_connection(struct worker_ctx *w, struct session *s);

/* ---- client side, for protocols ---- */
struct evbuffer *session_input(struct session *s);
void session_write(struct session *s, const void *data, size_t len);
void session_printf(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes one CRLF- or LF-terminated line out of the client's input (without the terminator,
 * NUL-terminated). Returns 1 (line), 0 (no complete line yet) or -1 (longer than size-1). An
 * overlong line is dropped, the part that has arrived at once and the rest as it comes (the
 * session remembers it): its tail is never read as a line of its own. Every further size bytes
 * of a line that does not end count as one more invalid command (session_bad_command()), so a
 * client streaming one endless line is cut off. Callers check s->closing after 0. */
int session_read_line(struct session *s, char *buf, size_t size, size_t *len);
/* For input read by a parser of the protocol's own (IMAP commands): drops what is left of an
 * overlong line that session_read_line() refused. Returns 1 when nothing is left to drop, 0
 * when more input must come first (or the session closes). */
int session_skip_line(struct session *s);
/* The line reader without session state, for server lines: 1, 0, -1 (an overlong line was
 * dropped up to and with its end) or -2 (what has arrived of an overlong line was dropped; its
 * end has not arrived yet). */
int session_take_line(struct evbuffer *in, char *buf, size_t size, size_t *len);
/* True when a password may be sent now: TLS is on, or the listener has login_type =
 * plaintext. Otherwise the protocol refuses LOGIN/USER/PASS/AUTH and advertises no mechanism. */
int session_password_allowed(const struct session *s);
/* True when STARTTLS may be offered now (starttls listener, TLS not yet on). */
int session_starttls_allowed(const struct session *s);
/* The protocol has written its "go ahead" line: flush it, drop every byte the client already
 * sent, then run the handshake; on_tls_ready follows. */
void session_start_tls(struct session *s);
/* Counts a rejected command; after too many, says goodbye and closes (returns -1). */
int session_bad_command(struct session *s);
/* session_printf() of a rejection, then session_bad_command(). */
void session_reject(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flushes what is queued for the client (bounded time), then closes both connections. */
void session_close(struct session *s);

/* Starts a login: asks the broker. The protocol must not read commands until the outcome
 * (on_login_failed, or upstream_ready ... session_login_done). Returns -1 when the user name
 * or password is too long for the broker request (the attempt is logged as failed; nothing else
 * happens: the protocol replies). The password is not kept. */
int session_login(struct session *s, const char *user, const char *password, size_t password_len);
/* A login attempt refused before asking the broker (before STARTTLS, a malformed user name,
 * ...): logs the attempt's login line like any other. result is "fail" or "refused"; user may
 * be NULL when it is not known. Never give it a password. */
void session_login_refused(struct session *s, const char *user, const char *result,
                           const char *reason);

/* ---- upstream side, for protocols ---- */
/* Encodes the initial response of the provider's mechanism (XOAUTH2 or OAUTHBEARER: mailbox,
 * token, and for OAUTHBEARER the server) into out and wipes the token. Returns the length, or
 * -1. session_sasl_response_size() gives the buffer size needed. */
size_t session_sasl_response_size(const struct session *s);
long session_sasl_response(struct session *s, char *out, size_t outlen);
/* "XOAUTH2" or "OAUTHBEARER", as the protocols spell the mechanism. */
const char *session_sasl_mechanism(const struct session *s);
/* The login dialog failed; detail (remote text allowed) goes to the log only. */
void session_upstream_failed(struct session *s, enum upstream_failure f, const char *detail);
void session_upstream_failedf(struct session *s, enum upstream_failure f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The protocol has told the client it is logged in: log, free the login phase, relay. */
void session_login_done(struct session *s);

#endif
