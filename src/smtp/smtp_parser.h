/* Pure SMTP grammar for the gateway (no I/O): client command lines (RFC 5321 4.1), AUTH
 * arguments (RFC 4954), server replies including multi-line ones (RFC 5321 4.2) and the EHLO
 * extension list, filtered down to what a client may be told (whitelist). Fuzzed and
 * unit-tested. */
#ifndef MG_SMTP_PARSER_H
#define MG_SMTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 allows 512 octets per command line; AUTH lines carry SASL initial responses, so the
 * gateway accepts up to this many (without CRLF). */
#define SMTP_LINE_MAX 8192
#define SMTP_REPLY_LINES_MAX 64  /* lines of one server reply */
#define SMTP_REPLY_TEXT_MAX 1024 /* reply text kept (joined, for logs and challenges) */

enum smtp_verb {
    SMTP_UNKNOWN = 0,
    SMTP_EHLO,
    SMTP_HELO,
    SMTP_STARTTLS,
    SMTP_AUTH,
    SMTP_MAIL,
    SMTP_RCPT,
    SMTP_DATA,
    SMTP_BDAT,
    SMTP_RSET,
    SMTP_NOOP,
    SMTP_QUIT,
    SMTP_HELP,
    SMTP_VRFY,
    SMTP_EXPN,
    SMTP_ETRN
};

struct smtp_command {
    enum smtp_verb verb;
    const char *arg; /* points into the line, after the separating space(s); "" when none */
    size_t arg_len;  /* trailing spaces removed */
};

/* Parses one command line (without CRLF). Returns 0 and fills cmd (verb SMTP_UNKNOWN for a
 * well-formed but unknown verb), or -1 for a line that is not a command at all (empty, NUL or
 * control bytes, verb not made of letters, no space after the verb). */
int smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd);

/* Splits the AUTH argument "MECH [initial-response]". Returns 0, or -1 when the mechanism is
 * missing or malformed, or more than two words are given. ir_len is 0 and ir "" without an
 * initial response ("=" is returned as is: it means an empty one). */
int smtp_auth_split(const char *arg, size_t len, const char **mech, size_t *mech_len,
                    const char **ir, size_t *ir_len);

/* "BDAT size [LAST]": returns 0 and the chunk size, or -1. */
int smtp_bdat_parse(const char *arg, size_t len, uint64_t *size, int *last);

/* ---- server replies ---- */

/* One reply line "ddd[ -]text". Returns 0 or -1 (not a reply line). */
struct smtp_reply_line {
    int code; /* 200..599 */
    int last; /* "ddd " or "ddd": the reply ends here; "ddd-": more lines follow */
    const char *text;
    size_t text_len;
};
int smtp_reply_line_parse(const char *line, size_t len, struct smtp_reply_line *out);

/* A whole reply, accumulated line by line. */
struct smtp_reply {
    int code;       /* 0 until the first line */
    unsigned lines; /* lines so far */
    int complete;
    char enhanced[16];                  /* "x.y.z" of the last line, or "" */
    char text[SMTP_REPLY_TEXT_MAX + 1]; /* the lines' texts joined with "\n", cut when long */
    size_t text_len;
    int truncated; /* text was cut */
};

enum smtp_reply_status { SMTP_REPLY_MORE, SMTP_REPLY_DONE, SMTP_REPLY_ERROR };

void smtp_reply_init(struct smtp_reply *r);
/* Adds one line (without CRLF). ERROR: not a reply line, a code that differs from the first
 * line's, more than SMTP_REPLY_LINES_MAX lines, or a line after the last one. */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);

/* "x.y.z" with x in 2,4,5, y 0..999, z 0..999 at the start of text (followed by a space or the
 * end). Returns the length of the code, or 0 when there is none. */
size_t smtp_enhanced_code(const char *text, size_t len);

/* ---- EHLO extensions ---- */

/* The extensions the gateway may advertise to a client once it learned that the upstream has
 * them (all relayed unchanged after login). Everything else is dropped: AUTH and STARTTLS (the
 * gateway's own business), XCLIENT/XFORWARD (trust), BURL, vendor X- keywords, unknown ones. */
enum smtp_ext {
    SMTP_EXT_SIZE = 1u << 0,
    SMTP_EXT_8BITMIME = 1u << 1,
    SMTP_EXT_SMTPUTF8 = 1u << 2,
    SMTP_EXT_PIPELINING = 1u << 3,
    SMTP_EXT_CHUNKING = 1u << 4,
    SMTP_EXT_BINARYMIME = 1u << 5,
    SMTP_EXT_DSN = 1u << 6,
    SMTP_EXT_ENHANCEDSTATUSCODES = 1u << 7,
    SMTP_EXT_DELIVERBY = 1u << 8,
    SMTP_EXT_REQUIRETLS = 1u << 9,
};

/* Upstream SASL mechanisms (struct smtp_ehlo_caps.auth). */
enum { SMTP_AUTH_XOAUTH2 = 1u << 0, SMTP_AUTH_OAUTHBEARER = 1u << 1 };

struct smtp_ehlo_caps {
    unsigned ext;       /* SMTP_EXT_* */
    uint64_t size;      /* SIZE n (0: no limit announced) */
    uint64_t deliverby; /* DELIVERBY n (0: none announced) */
    int starttls;       /* the server offers STARTTLS */
    unsigned auth;      /* SMTP_AUTH_*: the mechanisms after AUTH the gateway can use */
};

/* Reads an EHLO reply's text (lines joined by "\n"; the first is the server's name). Returns 0,
 * or -1 when the text is empty. Unknown or malformed keywords are skipped. */
int smtp_ehlo_parse(const char *text, size_t len, struct smtp_ehlo_caps *out);
/* Keeps only what both support: common extensions, the smaller SIZE (zero means no announced
 * limit, so the other's limit is kept) and the larger DELIVERBY minimum. */
void smtp_ehlo_intersect(struct smtp_ehlo_caps *acc, const struct smtp_ehlo_caps *other);
/* Writes the extension lines for a client's EHLO reply, each "250-KEYWORD[ params]\r\n",
 * without AUTH and without the final line. Returns the length written (out NUL-terminated),
 * or -1 when outlen is too small (512 is always enough). */
long smtp_ehlo_format(const struct smtp_ehlo_caps *caps, char *out, size_t outlen);

#endif
