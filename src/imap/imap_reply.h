/* Pure parser for IMAP server response lines read from an upstream during login (RFC 3501 §7,
 * RFC 9051). Upstream replies are parsed as carefully as client commands: hostile or broken
 * servers must not crash or confuse the gateway. */
#ifndef MG_IMAP_REPLY_H
#define MG_IMAP_REPLY_H

#include <stddef.h>

#define IMAP_REPLY_MAX_TAG 64
#define IMAP_REPLY_MAX_CODE 64

enum imap_reply_kind {
    IMAP_REPLY_UNTAGGED,     /* "* ..." */
    IMAP_REPLY_TAGGED,       /* "tag OK|NO|BAD ..." */
    IMAP_REPLY_CONTINUATION  /* "+ ..." or "+" */
};

enum imap_reply_status {
    IMAP_STATUS_NONE,   /* untagged data such as "* CAPABILITY ..." or "* 3 EXISTS" */
    IMAP_STATUS_OK,
    IMAP_STATUS_NO,
    IMAP_STATUS_BAD,
    IMAP_STATUS_PREAUTH,
    IMAP_STATUS_BYE
};

struct imap_reply {
    enum imap_reply_kind kind;
    char tag[IMAP_REPLY_MAX_TAG];     /* TAGGED only */
    enum imap_reply_status status;
    char code[IMAP_REPLY_MAX_CODE];   /* response code atom, upper-cased ("CAPABILITY",
                                         "AUTHENTICATIONFAILED"); empty when none */
    const char *code_args;            /* inside [...] after the code atom; points into line */
    size_t code_args_len;
    const char *text;                 /* the rest: human text, or base64 of a continuation */
    size_t text_len;
    const char *caps;                 /* capability list from "* CAPABILITY ..." or from a
                                         [CAPABILITY ...] code; NULL when none */
    size_t caps_len;
};

/* Parses one line (without CRLF). Returns 0, or -1 when the line is not a valid response
 * (empty, NUL/CR/LF inside, overlong tag or code, unknown status for a tagged line, ...). */
int imap_reply_parse(const char *line, size_t len, struct imap_reply *out);

/* 1 when the space-separated capability list contains cap (ASCII case-insensitive, whole
 * token: "AUTH=XOAUTH2", "SASL-IR", "IMAP4rev1"). */
int imap_caps_has(const char *caps, size_t caps_len, const char *cap);

#endif
