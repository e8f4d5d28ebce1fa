/* The protocol log's line scanner (pure: no libevent, no session; unit tested and fuzzed).
 *
 * It is fed the bytes of a session's four directions as they pass and hands back whole lines,
 * already redacted, for the protocol log (protolog.c). It knows just enough of each protocol's
 * grammar to tell commands and status lines from secrets and message content:
 * - secrets: IMAP LOGIN's password and AUTHENTICATE's initial response, POP3 PASS, APOP's
 *   digest and AUTH's initial response, SMTP AUTH's initial response, and every line a side
 *   sends while its SASL exchange runs (until the peer's next line that is not a continuation:
 *   "+" in IMAP and POP3, "334" in SMTP). The gateway's own upstream login goes through the
 *   same rules, so its XOAUTH2/OAUTHBEARER response (the token) never shows.
 * - content (after the login, in the relay): IMAP literals are passed over unseen (their {N}
 *   stays in the line), only tagged commands and tagged responses are logged, not untagged data
 *   (FETCH, SEARCH, ENVELOPE); POP3 multi-line answers (RETR, TOP, LIST, UIDL, CAPA) are passed
 *   over; SMTP DATA content and BDAT chunks are passed over. An IMAP COMPRESS ends the log of
 *   the session (the rest is not text).
 * Lines are cut at PLOG_LINE_MAX bytes (" <truncated>" marks it); control bytes are shown as
 * \xNN. Memory is fixed per session: one line buffer per direction. */
#ifndef MG_PROTOLOG_SCAN_H
#define MG_PROTOLOG_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define PLOG_LINE_MAX 512 /* bytes of one line kept */
#define PLOG_TAIL 24      /* the last bytes of a line: where an IMAP literal's {N} is */
#define PLOG_POP3_PENDING 64
/* The longest line handed to emit: every kept byte escaped, plus markers. */
#define PLOG_TEXT_MAX (4 * PLOG_LINE_MAX + 64)
#define PLOG_REDACTED "<redacted>"

enum plog_dir {
    PLOG_CLIENT_IN,    /* "C:" client -> gateway */
    PLOG_CLIENT_OUT,   /* "S:" gateway -> client (in the relay: what the upstream answers) */
    PLOG_UPSTREAM_OUT, /* "U>" gateway -> upstream (login phase) */
    PLOG_UPSTREAM_IN,  /* "U<" upstream -> gateway (login phase; in the relay shown as "S:") */
    PLOG_DIRS
};

/* text is not NUL-terminated; it holds no byte below 0x20 and no DEL. */
typedef void (*plog_emit_fn)(void *arg, enum plog_dir dir, const char *text, size_t len);

struct plog_stream {
    char line[PLOG_LINE_MAX]; /* the head of the current line */
    size_t len;               /* bytes kept in line */
    uint64_t seen;            /* bytes of the current line so far */
    char tail[PLOG_TAIL];     /* its last bytes */
    size_t tail_len;
    uint64_t skip;        /* literal or BDAT bytes still to pass over unseen */
    uint64_t content;     /* content lines passed over since content mode began */
    int content_mode;     /* passing over lines up to a "." line */
    int continued;        /* the line continues a command or response after a literal */
    int continued_secret; /* ... and is IMAP LOGIN's password (or a literal after it) */
    int continued_hidden; /* ... and belongs to an untagged response (relay: not logged) */
};

struct plog_scan {
    enum mg_proto proto;
    int relay;   /* logged in: the relay's rules */
    int stopped; /* COMPRESS: nothing more is logged */
    /* A side's lines are SASL responses: [0] the client's, [1] the gateway's to the upstream. */
    int sasl[2];
    /* POP3 in the relay: for each command not yet answered, whether its +OK is multi-line. */
    unsigned char pop3_multi[PLOG_POP3_PENDING];
    size_t pop3_head, pop3_n;
    uint64_t pop3_lost; /* commands that did not fit: their answers count as multi-line */
    struct plog_stream st[PLOG_DIRS];
    plog_emit_fn emit;
    void *arg;
};

void plog_scan_init(struct plog_scan *sc, enum mg_proto proto, plog_emit_fn emit, void *arg);
/* The login succeeded: from now on the client's and the upstream's bytes follow the relay's
 * rules. */
void plog_scan_relay(struct plog_scan *sc);
void plog_scan_feed(struct plog_scan *sc, enum plog_dir dir, const void *data, size_t len);

/* Pure helpers, exported for the tests. */
/* The size of an IMAP literal ("{N}", "{N+}", "~{N}") that ends text, or -1. */
int64_t plog_literal_at_end(const char *text, size_t len);
/* Writes text to out (size PLOG_TEXT_MAX) with control bytes and DEL as \xNN; returns the
 * length (cut to fit). */
size_t plog_escape(const char *text, size_t len, char *out, size_t outlen);

#endif
