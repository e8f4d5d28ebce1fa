/* Pure POP3 line parsers: client commands before login and upstream replies during login. */
#include "pop3_parser.h"

#include <string.h>

static int is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* Control characters end nothing here: the caller already removed the line terminator. */
static int is_ctl(unsigned char c, int allow_tab)
{
    if (c == '\t')
        return !allow_tab;
    return c < 0x20 || c == 0x7f;
}

static int has_ctl(const char *p, size_t len, int allow_tab)
{
    for (size_t i = 0; i < len; i++)
        if (is_ctl((unsigned char)p[i], allow_tab))
            return 1;
    return 0;
}

const char *pop3_parse_status_text(enum pop3_parse_status st)
{
    switch (st) {
    case POP3_PARSE_OK:
        return "OK.";
    case POP3_PARSE_EMPTY:
        return "Empty command.";
    case POP3_PARSE_BAD_KEYWORD:
        return "Unknown command.";
    case POP3_PARSE_BAD_CHAR:
        return "Invalid characters in command.";
    case POP3_PARSE_ARG_TOO_LONG:
        return "Argument too long.";
    case POP3_PARSE_TOO_MANY_ARGS:
        return "Too many arguments.";
    case POP3_PARSE_LINE_TOO_LONG:
        return "Line too long.";
    }
    return "Invalid command.";
}

/* The password is everything after the single space that follows PASS (may be empty). */
static enum pop3_parse_status parse_pass(const char *rest, size_t len, struct pop3_command *out)
{
    if (has_ctl(rest, len, 1))
        return POP3_PARSE_BAD_CHAR;
    out->args[0].str = rest;
    out->args[0].len = len;
    out->argc = 1;
    return POP3_PARSE_OK;
}

static enum pop3_parse_status split_args(const char *p, size_t len, int is_auth,
                                         struct pop3_command *out)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && p[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && p[i] != ' ')
            i++;
        size_t n = i - start;
        size_t limit = (is_auth && out->argc == 1) ? POP3_MAX_LINE : POP3_MAX_ARG;
        if (out->argc == (is_auth ? 2u : (size_t)POP3_MAX_ARGS))
            return POP3_PARSE_TOO_MANY_ARGS;
        if (n > limit)
            return POP3_PARSE_ARG_TOO_LONG;
        out->args[out->argc].str = p + start;
        out->args[out->argc].len = n;
        out->argc++;
    }
    return POP3_PARSE_OK;
}

enum pop3_parse_status pop3_command_parse(const char *line, size_t len, struct pop3_command *out)
{
    memset(out, 0, sizeof *out);
    if (len > POP3_MAX_LINE)
        return POP3_PARSE_LINE_TOO_LONG;
    if (memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len))
        return POP3_PARSE_BAD_CHAR;
    size_t k = 0;
    while (k < len && line[k] != ' ')
        k++;
    if (k == 0) {
        size_t i = 0;
        while (i < len && line[i] == ' ')
            i++;
        return i == len ? POP3_PARSE_EMPTY : POP3_PARSE_BAD_KEYWORD;
    }
    if (k < 3 || k > POP3_MAX_KEYWORD)
        return POP3_PARSE_BAD_KEYWORD;
    for (size_t i = 0; i < k; i++) {
        if (!is_alpha((unsigned char)line[i]))
            return POP3_PARSE_BAD_KEYWORD;
        out->keyword[i] = upper(line[i]);
    }
    out->keyword[k] = '\0';
    if (strcmp(out->keyword, "PASS") == 0)
        return k < len ? parse_pass(line + k + 1, len - k - 1, out) : POP3_PARSE_OK;
    if (has_ctl(line + k, len - k, 0))
        return POP3_PARSE_BAD_CHAR;
    return split_args(line + k, len - k, strcmp(out->keyword, "AUTH") == 0, out);
}

/* ---- server replies ---- */

static int is_code_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '/' && c != ']' && c != '[';
}

/* "[LEVEL/LEVEL] rest": fills the code and returns the bytes used, or 0 when it is no code. */
static size_t parse_code(const char *p, size_t len, struct pop3_reply *out)
{
    if (len < 3 || p[0] != '[')
        return 0;
    size_t i = 1, level = 0;
    while (i < len && p[i] != ']') {
        unsigned char c = (unsigned char)p[i];
        if (c == '/') {
            if (level == 0)
                return 0;
            level = 0;
        } else if (is_code_char(c)) {
            level++;
        } else {
            return 0;
        }
        if (i - 1 >= POP3_MAX_CODE - 1)
            return 0;
        i++;
    }
    if (i == len || level == 0)
        return 0;
    for (size_t j = 1; j < i; j++)
        out->code[j - 1] = upper(p[j]);
    out->code[i - 1] = '\0';
    i++; /* ']' */
    if (i < len && p[i] == ' ')
        i++;
    return i;
}

static int status_is(const char *line, size_t len, const char *status)
{
    size_t n = strlen(status);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (upper(line[i]) != status[i])
            return 0;
    return len == n || line[n] == ' ';
}

int pop3_reply_parse(const char *line, size_t len, struct pop3_reply *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0 || memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len))
        return -1;
    size_t skip;
    if (status_is(line, len, "+OK")) {
        out->kind = POP3_REPLY_OK;
        skip = 3;
    } else if (status_is(line, len, "-ERR")) {
        out->kind = POP3_REPLY_ERR;
        skip = 4;
    } else if (line[0] == '+' && (len == 1 || line[1] == ' ')) {
        out->kind = POP3_REPLY_CONTINUATION;
        out->text = line + (len > 1 ? 2 : 1);
        out->text_len = len > 1 ? len - 2 : 0;
        return 0;
    } else {
        return -1;
    }
    if (skip < len)
        skip++; /* the space */
    const char *rest = line + skip;
    size_t rest_len = len - skip;
    size_t used = parse_code(rest, rest_len, out);
    out->text = rest + used;
    out->text_len = rest_len - used;
    return 0;
}

int pop3_reply_code_is(const struct pop3_reply *r, const char *code)
{
    size_t n = strlen(code);
    return strncmp(r->code, code, n) == 0 && (r->code[n] == '\0' || r->code[n] == '/');
}
