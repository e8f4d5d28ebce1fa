/* Typed messages between workers and the broker over a UNIX socketpair.
 *
 * Frame: u32 length (big endian, of what follows) | u8 type | body. Body fields are encoded in
 * a fixed order per type: u32 as 4 bytes big endian, strings as u16 length + bytes (no NUL on
 * the wire). Decoding is strict: a frame longer than IPC_MAX_FRAME, a string longer than its
 * field, trailing bytes or an unknown type are protocol errors and the peer is dropped. */
#ifndef MG_IPC_H
#define MG_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct evbuffer;

#define IPC_MAX_FRAME 16384
#define IPC_NAME_MAX 64  /* listener and provider names */
#define IPC_ADDR_MAX 64  /* "1.2.3.4:5678", "[v6]:port" */
#define IPC_USER_MAX 256 /* local user names as typed by the client */
#define IPC_PASSWORD_MAX 1024
#define IPC_MAILBOX_MAX 320 /* RFC 5321 path limit is 256; some slack */
#define IPC_TOKEN_MAX 8192  /* Entra access tokens are 1.4-2.5 KB; Google's are shorter */
#define IPC_REASON_MAX 256
#define IPC_CAUSE_MAX 32
#define IPC_CLIENT_ID_MAX 128 /* IMAP ID "name/version", SMTP EHLO name */
#define IPC_SESSION_MAX 16

enum ipc_type {
    IPC_WORKER_READY = 1,  /* worker -> broker: listeners bound. Body: u32 worker index. */
    IPC_AUTH_REQUEST = 2,  /* worker -> broker */
    IPC_AUTH_RESPONSE = 3, /* broker -> worker */
    /* worker -> broker: the session of request `id` has gone; its verification, if still
     * queued, is dropped and no response comes. Body: u32 request id. */
    IPC_AUTH_CANCEL = 4,
    /* worker -> broker: the upstream refused the token of an accepted login. Answered with an
     * IPC_AUTH_RESPONSE (same id): AUTH_OK with a fresh token to log in with once more,
     * AUTH_TEMPFAIL (the token was stale and is dropped: the next login gets a new one) or
     * AUTH_FAIL (a fresh token was refused: a permission problem, not staleness). */
    IPC_TOKEN_REFUSED = 5,
    /* worker -> broker: one login audit record (struct ipc_audit); never answered. */
    IPC_AUDIT = 6,
    /* worker -> broker: a piece of a TLS report's normalised JSON (struct ipc_tlsrpt_part);
     * the pieces of one report follow each other, the last one has last = 1. */
    IPC_TLSRPT_PART = 8, /* 7: IPC_TICKET_KEYS on main (branch speed) */
    /* broker -> worker: the report of request id is stored, a duplicate or refused. */
    IPC_TLSRPT_RESULT = 9
};

enum auth_status {
    AUTH_OK = 0,       /* credentials good, token attached */
    AUTH_FAIL = 1,     /* unknown user or wrong password: same answer for both */
    AUTH_TEMPFAIL = 2, /* IdP down, throttled, timed out, misconfigured: try later */
    AUTH_DISABLED = 3  /* user exists but may not use this protocol (later issues) */
};

struct ipc_auth_request {
    uint32_t id; /* chosen by the worker, echoed in the response */
    enum mg_proto protocol;
    char listener[IPC_NAME_MAX];
    char client_addr[IPC_ADDR_MAX];
    char user[IPC_USER_MAX];
    char password[IPC_PASSWORD_MAX]; /* wiped by ipc_msg_wipe */
    uint32_t password_len;
};

struct ipc_auth_response {
    uint32_t id;
    enum auth_status status;
    char mailbox[IPC_MAILBOX_MAX]; /* the SASL user= for the upstream login */
    char provider[IPC_NAME_MAX];   /* the worker finds the upstream server in its own config */
    char token[IPC_TOKEN_MAX];     /* access token; wiped by ipc_msg_wipe */
    uint32_t token_len;
    char reason[IPC_REASON_MAX]; /* for the log line; never secret */
    /* How long the worker holds a failure before answering; 0: its own configured delay. The
     * broker makes it grow with repeated failures (throttle.c). At most IPC_DELAY_MAX_MS. */
    uint32_t delay_ms;
    uint64_t token_id; /* AUTH_OK: names the token in an IPC_TOKEN_REFUSED (never the token) */
    /* The outcome as one of the fixed words of the login audit (README, "Login outcomes"):
     * "ok", "wrong password", "unknown user", "protocol disabled", "mailbox not granted", ...
     * Unlike reason, the same for every failure of a kind; a client never sees it. */
    char cause[IPC_CAUSE_MAX];
};

struct ipc_token_refused {
    uint32_t id; /* a new request id, echoed in the response */
    enum mg_proto protocol;
    char user[IPC_USER_MAX]; /* as in the login's request */
    uint64_t token_id;       /* from the login's response */
    uint32_t want_token;     /* 1: answer with a fresh token to retry with; 0: no retry left */
};

#define IPC_DELAY_MAX_MS 60000

enum audit_event { AUDIT_LOGIN = 0, AUDIT_END = 1 };

/* The facts of a login attempt (AUDIT_LOGIN: at its outcome) or of a logged-in session's end
 * (AUDIT_END). The broker judges it as untrusted input (audit_rec_valid) before storing it. */
struct ipc_audit {
    uint32_t event; /* enum audit_event */
    enum mg_proto protocol;
    uint32_t ok; /* 1: the login succeeded (cause "ok"); 0: it failed */
    char session[IPC_SESSION_MAX];
    char listener[IPC_NAME_MAX];
    char client_addr[IPC_ADDR_MAX];
    char client_id[IPC_CLIENT_ID_MAX];
    char user[IPC_USER_MAX]; /* as typed by the client; "" when unknown */
    char mailbox[IPC_MAILBOX_MAX];
    char cause[IPC_CAUSE_MAX]; /* the fixed word (README, "Login outcomes") */
    uint64_t duration_ms;
    uint64_t bytes_in, bytes_out; /* client -> upstream, upstream -> client (AUDIT_END) */
};

/* A TLS report (common/tlsrpt.h) travels as its normalised JSON, at most
 * TLSRPT_MAX_NORMALISED bytes, in pieces that fit a frame. */
#define IPC_TLSRPT_PART_MAX 16000

struct ipc_tlsrpt_part {
    uint32_t id;   /* chosen by the worker, echoed in the result */
    uint32_t last; /* 1: the report is complete */
    char data[IPC_TLSRPT_PART_MAX + 1];
    uint32_t data_len;
};

enum tlsrpt_result {
    TLSRPT_STORED = 0,
    TLSRPT_DUPLICATE = 1, /* its report-id is stored already */
    TLSRPT_REFUSED = 2,   /* the broker's parse refused it (reason) */
    TLSRPT_FAILED = 3     /* the store failed: try later */
};

struct ipc_tlsrpt_result {
    uint32_t id;
    enum tlsrpt_result result;
    char reason[IPC_REASON_MAX];
};

struct ipc_msg {
    enum ipc_type type;
    union {
        uint32_t worker_index;
        uint32_t cancel_id; /* IPC_AUTH_CANCEL */
        struct ipc_auth_request req;
        struct ipc_auth_response res;
        struct ipc_token_refused refused;
        struct ipc_audit audit;
        struct ipc_tlsrpt_part tlsrpt_part;
        struct ipc_tlsrpt_result tlsrpt_result;
    } u;
};

/* Encoders append one frame to out. Return 0, or -1 when a field does not fit. */
int ipc_encode_ready(struct evbuffer *out, uint32_t worker_index);
int ipc_encode_auth_request(struct evbuffer *out, const struct ipc_auth_request *req);
int ipc_encode_auth_response(struct evbuffer *out, const struct ipc_auth_response *res);
int ipc_encode_auth_cancel(struct evbuffer *out, uint32_t request_id);
int ipc_encode_token_refused(struct evbuffer *out, const struct ipc_token_refused *ref);
int ipc_encode_audit(struct evbuffer *out, const struct ipc_audit *a);
int ipc_encode_tlsrpt_part(struct evbuffer *out, const struct ipc_tlsrpt_part *p);
int ipc_encode_tlsrpt_result(struct evbuffer *out, const struct ipc_tlsrpt_result *r);
/* A whole report of len bytes as consecutive IPC_TLSRPT_PART frames (the last with last = 1). */
int ipc_encode_tlsrpt(struct evbuffer *out, uint32_t id, const char *data, size_t len);

/* Decodes one frame from the front of in. Returns 1 (msg filled, frame removed), 0 (need more
 * bytes; in untouched) or -1 (protocol error). Strings in msg are NUL-terminated. The bytes of
 * the frame are copied out and wiped from the temporary copy. */
int ipc_decode(struct evbuffer *in, struct ipc_msg *msg);

/* Pure variant for tests and fuzzing: decodes a frame body (after the length prefix). */
int ipc_decode_body(const unsigned char *body, size_t len, struct ipc_msg *msg);

/* Wipes the whole message (passwords, tokens). */
void ipc_msg_wipe(struct ipc_msg *msg);

#endif
