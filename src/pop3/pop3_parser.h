/* Pure parsers for POP3 (RFC 1939, RFC 2449, RFC 5034), no I/O:
 *  - a client command line before login: keyword (3-4 letters, upper-cased) and arguments;
 *  - an upstream reply line during our login: +OK / -ERR / "+ " continuation, with the optional
 *    response code (RFC 2449 "[SYS/TEMP]", RFC 3206).
 * Lines are passed without their CRLF. Fuzzed and unit-tested. */
#ifndef MG_POP3_PARSER_H
#define MG_POP3_PARSER_H

#include <stddef.h>

#define POP3_MAX_LINE 8192 /* one client line (AUTH initial response, PASS), without CRLF */
#define POP3_MAX_KEYWORD 4 /* RFC 2449: keywords are 3 or 4 characters */
#define POP3_MAX_ARG 40    /* RFC 2449: an argument is at most 40 characters */
#define POP3_MAX_ARGS 4    /* more than any POP3 command takes */
#define POP3_MAX_CODE 64   /* a response code such as "SYS/TEMP" */

enum pop3_parse_status {
    POP3_PARSE_OK = 0,
    POP3_PARSE_EMPTY,         /* empty or blank line */
    POP3_PARSE_BAD_KEYWORD,   /* not 3-4 ASCII letters */
    POP3_PARSE_BAD_CHAR,      /* NUL, CR, LF or another control character */
    POP3_PARSE_ARG_TOO_LONG,  /* an argument longer than POP3_MAX_ARG */
    POP3_PARSE_TOO_MANY_ARGS, /* more than POP3_MAX_ARGS (AUTH: more than 2) */
    POP3_PARSE_LINE_TOO_LONG  /* longer than POP3_MAX_LINE */
};

struct pop3_arg {
    const char *str; /* points into the parsed line; not NUL-terminated */
    size_t len;
};

struct pop3_command {
    char keyword[POP3_MAX_KEYWORD + 1]; /* upper-cased ASCII */
    size_t argc;
    struct pop3_arg args[POP3_MAX_ARGS];
};

/* Splits one command line. Arguments are separated by spaces (runs of spaces and trailing
 * spaces are tolerated). Exceptions to the 40-character limit: PASS takes everything after
 * "PASS " as one argument (the password may contain spaces, even leading or trailing ones);
 * the second argument of AUTH (the initial response) may be as long as the line. 8-bit bytes are
 * allowed (UTF-8 user names); control characters are not (PASS allows TAB). */
enum pop3_parse_status pop3_command_parse(const char *line, size_t len, struct pop3_command *out);
const char *pop3_parse_status_text(enum pop3_parse_status st);

enum pop3_reply_kind {
    POP3_REPLY_OK,          /* "+OK ..." */
    POP3_REPLY_ERR,         /* "-ERR ..." */
    POP3_REPLY_CONTINUATION /* "+ base64" or a bare "+" (SASL, RFC 5034) */
};

struct pop3_reply {
    enum pop3_reply_kind kind;
    char code[POP3_MAX_CODE]; /* upper-cased response code without brackets ("SYS/TEMP",
                                 "AUTH", "IN-USE"); empty when none */
    const char *text;         /* after the status (and code); points into the line */
    size_t text_len;
};

/* Parses one server line. The status is matched without regard to case. A response code is
 * recognised only right after the status, as RFC 2449 resp-code ("[" level *("/" level) "]").
 * Returns 0, or -1 for anything else (including NUL, CR or LF inside). */
int pop3_reply_parse(const char *line, size_t len, struct pop3_reply *out);

/* 1 when the reply's code is code or starts with code "/" ("SYS" matches "SYS/TEMP"). */
int pop3_reply_code_is(const struct pop3_reply *r, const char *code);

#endif
