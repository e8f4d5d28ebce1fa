/* Incremental, resumable parser for IMAP client commands before login (RFC 3501/9051).
 * No I/O: the caller feeds bytes as they arrive (any split, even one byte at a time) and acts on
 * the results. After login the gateway relays bytes and no longer parses.
 *
 * Grammar handled: tag SP command [SP args] CRLF; tag = 1*<ASTRING-CHAR except "+">; arguments
 * are atoms (and NIL), quoted strings ("\"" and "\\" escapes only; no CR/LF/NUL; 8-bit allowed
 * for UTF-8), literals {n} and {n+} (RFC 7888 LITERAL+, CRLF right after "}"), and parenthesised
 * lists (depth <= 8, reported as LIST_START / LIST_END markers). */
#ifndef MG_IMAP_PARSER_H
#define MG_IMAP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of one command line with its CRLF, excluding literal data: 64 KiB of command, room for
 * an ID with RFC 2971's maxima (30 fields, values of 1024 octets). The parser's store grows
 * with the command and shrinks back after it, so an idle session stays small. */
#define IMAP_MAX_LINE (64 * 1024 + 2)
#define IMAP_MAX_LITERAL 8192 /* one literal before login */
#define IMAP_MAX_ARGS 64
#define IMAP_MAX_TAG 64
#define IMAP_MAX_DISCARD 65536 /* bytes of a bad command swallowed before giving up (BYE) */

enum imap_arg_type {
    IMAP_ARG_ATOM, /* includes NIL as an atom-looking word; see is_nil */
    IMAP_ARG_QUOTED,
    IMAP_ARG_LITERAL,
    IMAP_ARG_LIST_START,
    IMAP_ARG_LIST_END
};

struct imap_arg {
    enum imap_arg_type type;
    const char *str; /* NUL-terminated copy inside the parser; unescaped; literals may hold NUL */
    size_t len;
    int is_nil; /* an unquoted NIL */
};

struct imap_command {
    const char *tag;
    const char *name; /* upper-cased ASCII */
    size_t argc;
    struct imap_arg args[IMAP_MAX_ARGS];
};

enum imap_parse_result {
    IMAP_PARSE_NEED_MORE,        /* all input consumed, no complete command yet */
    IMAP_PARSE_COMMAND,          /* a complete command; see imap_parser_command() */
    IMAP_PARSE_LITERAL_CONTINUE, /* synchronising literal announced: the caller sends
                                    "+ Ready for literal data\r\n" and keeps feeding */
    IMAP_PARSE_ERROR             /* bad command: send "<tag> BAD <message>"; see below */
};

struct imap_parser;

struct imap_parser *imap_parser_new(void);
void imap_parser_free(struct imap_parser **p); /* wipes */
/* Forgets the current command (after handling COMMAND or ERROR); wipes its bytes. */
void imap_parser_reset(struct imap_parser *p);

/* Feeds bytes. *consumed tells how many were used; the caller feeds the rest again after acting
 * on the result. COMMAND and LITERAL_CONTINUE stop consumption right after the relevant byte so
 * that pipelined bytes stay with the caller. After ERROR the parser discards the rest of the bad
 * command by itself (up to its CRLF, including the data of a non-synchronising literal announced
 * at the end of a line, and never waiting for the data of a synchronising one), so the caller
 * just keeps feeding; a discarded command is never returned as a command. */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const unsigned char *data,
                                        size_t len, size_t *consumed);

const struct imap_command *imap_parser_command(const struct imap_parser *p);
/* After ERROR: the tag to answer with ("*" when none could be read) and a short message. */
const char *imap_parser_error_tag(const struct imap_parser *p);
const char *imap_parser_error(const struct imap_parser *p);
/* After ERROR: non-zero when the client must be disconnected with "* BYE" (it keeps sending
 * beyond IMAP_MAX_DISCARD, or announced a literal larger than can be discarded). */
int imap_parser_error_fatal(const struct imap_parser *p);

/* Astring/quoting helper for building lines: writes s as an IMAP quoted string if it has only
 * safe characters, else returns -1 (callers then use a literal). Used by tests and upstream code.
 */
int imap_quote(const char *s, char *out, size_t outlen);

#endif
