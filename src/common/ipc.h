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

#include "metrics.h"
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
#define IPC_DETAIL_MAX 24     /* "AADSTS" and a code */
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
    /* The sign-in page (src/http/signin_web.c, src/broker/signin.c). worker -> broker:
     * GET /oauth/start (struct ipc_signin_start) and GET /oauth/callback (struct
     * ipc_signin_finish); each answered with one IPC_SIGNIN_ANSWER (same id). */
    IPC_SIGNIN_START = 7,
    IPC_SIGNIN_FINISH = 8,
    IPC_SIGNIN_ANSWER = 9,
    /* broker -> worker: the TLS session ticket keys for clients (struct ipc_ticket_keys), when
     * the worker is ready and at each rotation. */
    IPC_TICKET_KEYS = 10,
    /* worker -> broker: protocol log lines (struct ipc_protolog), already redacted and
     * formatted by the worker (worker/protolog.c); the broker appends them. Never answered. */
    IPC_PROTOLOG = 11,
    /* Operations counters (metrics.h), numbered apart from the login messages. */
    IPC_METRICS_SNAPSHOT = 20, /* worker -> broker, every second; never answered */
    IPC_METRICS_QUERY = 21,    /* worker -> broker: u32 id; answered with IPC_METRICS_REPORT */
    IPC_METRICS_REPORT = 22,   /* broker -> worker: the whole gateway's numbers and health */
    /* worker -> broker: a piece of a TLS report's normalised JSON (struct ipc_tlsrpt_part);
     * the pieces of one report follow each other, the last one has last = 1. */
    IPC_TLSRPT_PART = 12,
    /* broker -> worker: the report of request id is stored, a duplicate or refused. */
    IPC_TLSRPT_RESULT = 13
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
    char cause[IPC_CAUSE_MAX];   /* the fixed word (README, "Login outcomes") */
    char detail[IPC_DETAIL_MAX]; /* "idp error": the IdP's AADSTS code when it gave one; else "" */
    uint64_t duration_ms;
    uint64_t bytes_in, bytes_out; /* client -> upstream, upstream -> client (AUDIT_END) */
};

#define IPC_SIGNIN_NONCE_MAX 64    /* state and the browser cookie: 43 base64url characters */
#define IPC_SIGNIN_CODE_MAX 4096   /* an authorization code (Entra's are 1-2 KB) */
#define IPC_SIGNIN_TEXT_MAX 1024   /* the provider's error_description; the page's words */
#define IPC_SIGNIN_URL_MAX 4096    /* the provider's authorize URL with its parameters */
#define IPC_SIGNIN_PASSWORD_MAX 64 /* a generated gateway password (password_generate) */

struct ipc_signin_start {
    uint32_t id;
    char client_addr[IPC_ADDR_MAX];
    char user[IPC_USER_MAX]; /* ?user= as typed */
};

/* The callback's query as the provider sent it (untrusted: the broker judges it) and the
 * browser's cookie. code is a credential until redeemed: wiped by ipc_msg_wipe. */
struct ipc_signin_finish {
    uint32_t id;
    char client_addr[IPC_ADDR_MAX];
    char state[IPC_SIGNIN_NONCE_MAX];
    char browser[IPC_SIGNIN_NONCE_MAX]; /* the cookie set at /oauth/start; "" when none */
    char code[IPC_SIGNIN_CODE_MAX];
    char error[IPC_NAME_MAX];
    char error_description[IPC_SIGNIN_TEXT_MAX];
};

enum signin_status {
    SIGNIN_REDIRECT = 0,  /* start: go to location, set the browser cookie */
    SIGNIN_CONNECTED = 1, /* callback: the mailbox is connected (password: shown once) */
    SIGNIN_REFUSED = 2,   /* text says why, in words (HTTP 400/403) */
    SIGNIN_FAILED = 3     /* a temporary failure on our side or the provider's (HTTP 502/503) */
};

struct ipc_signin_answer {
    uint32_t id;
    uint32_t status; /* enum signin_status */
    char location[IPC_SIGNIN_URL_MAX];
    char browser[IPC_SIGNIN_NONCE_MAX];
    char user[IPC_USER_MAX]; /* connected: the user name to log in with */
    char mailbox[IPC_MAILBOX_MAX];
    char password[IPC_SIGNIN_PASSWORD_MAX]; /* "" unless a password was made just now */
    char text[IPC_SIGNIN_TEXT_MAX];
};
/* Session ticket keys shared by every worker, so that a client resumes whichever worker it
 * reaches. Made and rotated by the broker (ticket_keys.c); key[0] encrypts new tickets, the
 * others only decrypt. Secret: wiped by ipc_msg_wipe. */
#define IPC_TICKET_KEYS_MAX 2
#define IPC_TICKET_NAME_LEN 16
#define IPC_TICKET_AES_LEN 32
#define IPC_TICKET_HMAC_LEN 32
struct ipc_ticket_key {
    unsigned char name[IPC_TICKET_NAME_LEN];
    unsigned char aes[IPC_TICKET_AES_LEN];
    unsigned char hmac[IPC_TICKET_HMAC_LEN];
};
struct ipc_ticket_keys {
    uint32_t count;      /* 1..IPC_TICKET_KEYS_MAX */
    uint32_t lifetime_s; /* how long a ticket is valid; 1..IPC_TICKET_LIFETIME_MAX */
    struct ipc_ticket_key key[IPC_TICKET_KEYS_MAX];
};
#define IPC_TICKET_LIFETIME_MAX (7 * 24 * 3600) /* RFC 8446 4.6.1 */

/* Whole lines of printable text, each ending in '\n' (no other byte below 0x20, no DEL): the
 * decoder refuses anything else, so a line can never be forged across a line end. */
#define IPC_PROTOLOG_MAX (IPC_MAX_FRAME - 64)
struct ipc_protolog {
    char text[IPC_PROTOLOG_MAX];
    uint32_t len;
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
        struct ipc_signin_start signin_start;
        struct ipc_signin_finish signin_finish;
        struct ipc_signin_answer signin_answer;
        struct ipc_ticket_keys tickets;
        struct ipc_protolog protolog;
        struct metrics_snapshot snapshot; /* IPC_METRICS_SNAPSHOT */
        uint32_t query_id;                /* IPC_METRICS_QUERY */
        struct metrics_report report;     /* IPC_METRICS_REPORT */
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
int ipc_encode_signin_start(struct evbuffer *out, const struct ipc_signin_start *m);
int ipc_encode_signin_finish(struct evbuffer *out, const struct ipc_signin_finish *m);
int ipc_encode_signin_answer(struct evbuffer *out, const struct ipc_signin_answer *m);
int ipc_encode_ticket_keys(struct evbuffer *out, const struct ipc_ticket_keys *k);
int ipc_encode_protolog(struct evbuffer *out, const char *text, size_t len);
int ipc_encode_metrics_snapshot(struct evbuffer *out, const struct metrics_snapshot *m);
int ipc_encode_metrics_query(struct evbuffer *out, uint32_t id);
int ipc_encode_metrics_report(struct evbuffer *out, const struct metrics_report *m);
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
