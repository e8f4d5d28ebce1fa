/* Pure SMTP grammar: command lines, AUTH/BDAT arguments, replies, EHLO extensions. */
#include "smtp_parser.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

#define VERB_MAX 10
#define MECH_MAX 20
#define NUMBER_MAX_DIGITS 19 /* fits uint64_t without overflow checks beyond this */

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Case-insensitive comparison of s[0..len) with the upper-case word w. */
static int word_is(const char *s, size_t len, const char *w)
{
    size_t n = strlen(w);
    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (upper(s[i]) != w[i])
            return 0;
    }
    return 1;
}

/* Digits only, at most NUMBER_MAX_DIGITS. Returns 0 or -1. */
static int parse_number(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > NUMBER_MAX_DIGITS)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static size_t skip_spaces(const char *s, size_t len, size_t i)
{
    while (i < len && s[i] == ' ')
        i++;
    return i;
}

static size_t word_end(const char *s, size_t len, size_t i)
{
    while (i < len && s[i] != ' ')
        i++;
    return i;
}

/* ---- commands ---- */

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    {"EHLO", SMTP_EHLO}, {"HELO", SMTP_HELO}, {"STARTTLS", SMTP_STARTTLS}, {"AUTH", SMTP_AUTH},
    {"MAIL", SMTP_MAIL}, {"RCPT", SMTP_RCPT}, {"DATA", SMTP_DATA},         {"BDAT", SMTP_BDAT},
    {"RSET", SMTP_RSET}, {"NOOP", SMTP_NOOP}, {"QUIT", SMTP_QUIT},         {"HELP", SMTP_HELP},
    {"VRFY", SMTP_VRFY}, {"EXPN", SMTP_EXPN}, {"ETRN", SMTP_ETRN},
};

int smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd)
{
    cmd->verb = SMTP_UNKNOWN;
    cmd->arg = "";
    cmd->arg_len = 0;
    if (len == 0 || len > SMTP_LINE_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
    }
    size_t v = 0;
    while (v < len && is_alpha(line[v]))
        v++;
    if (v == 0 || v > VERB_MAX || (v < len && line[v] != ' '))
        return -1;
    for (size_t i = 0; i < MG_ARRAY_LEN(verbs); i++) {
        if (word_is(line, v, verbs[i].name)) {
            cmd->verb = verbs[i].verb;
            break;
        }
    }
    size_t a = skip_spaces(line, len, v), end = len;
    while (end > a && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    cmd->arg = line + a;
    cmd->arg_len = end - a;
    return 0;
}

static int is_mech_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_';
}

int smtp_auth_split(const char *arg, size_t len, const char **mech, size_t *mech_len,
                    const char **ir, size_t *ir_len)
{
    size_t m = word_end(arg, len, 0);
    if (m == 0 || m > MECH_MAX)
        return -1;
    for (size_t i = 0; i < m; i++) {
        if (!is_mech_char(arg[i]))
            return -1;
    }
    *mech = arg;
    *mech_len = m;
    size_t r = skip_spaces(arg, len, m), e = word_end(arg, len, r);
    if (skip_spaces(arg, len, e) != len)
        return -1; /* a third word */
    *ir = arg + r;
    *ir_len = e - r;
    if (*ir_len == 0)
        *ir = "";
    return 0;
}

int smtp_bdat_parse(const char *arg, size_t len, uint64_t *size, int *last)
{
    size_t e = word_end(arg, len, 0);
    if (parse_number(arg, e, size) != 0)
        return -1;
    size_t w = skip_spaces(arg, len, e), we = word_end(arg, len, w);
    *last = 0;
    if (w == len)
        return 0;
    if (!word_is(arg + w, we - w, "LAST") || skip_spaces(arg, len, we) != len)
        return -1;
    *last = 1;
    return 0;
}

/* ---- replies ---- */

int smtp_reply_line_parse(const char *line, size_t len, struct smtp_reply_line *out)
{
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        !is_digit(line[2]))
        return -1;
    if (memchr(line, '\0', len))
        return -1;
    out->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (len == 3) {
        out->last = 1;
        out->text = line + 3;
        out->text_len = 0;
        return 0;
    }
    if (line[3] != ' ' && line[3] != '-')
        return -1;
    out->last = line[3] == ' ';
    out->text = line + 4;
    out->text_len = len - 4;
    return 0;
}

size_t smtp_enhanced_code(const char *text, size_t len)
{
    if (len < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
        return 0;
    size_t i = 2, start = i;
    while (i < len && is_digit(text[i]) && i - start < 4)
        i++;
    if (i == start || i - start > 3 || i >= len || text[i] != '.')
        return 0;
    start = ++i;
    while (i < len && is_digit(text[i]) && i - start < 4)
        i++;
    if (i == start || i - start > 3 || (i < len && text[i] != ' '))
        return 0;
    return i;
}

void smtp_reply_init(struct smtp_reply *r)
{
    memset(r, 0, sizeof *r);
}

static void append_text(struct smtp_reply *r, const char *s, size_t len)
{
    size_t room = SMTP_REPLY_TEXT_MAX - r->text_len;
    if (r->lines > 1 && room > 0) {
        r->text[r->text_len++] = '\n';
        room--;
    }
    if (len > room) {
        len = room;
        r->truncated = 1;
    }
    memcpy(r->text + r->text_len, s, len);
    r->text_len += len;
    r->text[r->text_len] = '\0';
}

enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
    struct smtp_reply_line l;
    if (r->complete || smtp_reply_line_parse(line, len, &l) != 0)
        return SMTP_REPLY_ERROR;
    if (r->lines == 0)
        r->code = l.code;
    else if (l.code != r->code)
        return SMTP_REPLY_ERROR;
    if (++r->lines > SMTP_REPLY_LINES_MAX)
        return SMTP_REPLY_ERROR;
    append_text(r, l.text, l.text_len);
    size_t e = smtp_enhanced_code(l.text, l.text_len);
    if (e > 0 && e < sizeof r->enhanced) {
        memcpy(r->enhanced, l.text, e);
        r->enhanced[e] = '\0';
    } else {
        r->enhanced[0] = '\0';
    }
    if (!l.last)
        return SMTP_REPLY_MORE;
    r->complete = 1;
    return SMTP_REPLY_DONE;
}

/* ---- EHLO extensions ---- */

static const struct {
    const char *keyword;
    unsigned flag;
} extensions[] = {
    {"SIZE", SMTP_EXT_SIZE},
    {"8BITMIME", SMTP_EXT_8BITMIME},
    {"SMTPUTF8", SMTP_EXT_SMTPUTF8},
    {"PIPELINING", SMTP_EXT_PIPELINING},
    {"CHUNKING", SMTP_EXT_CHUNKING},
    {"BINARYMIME", SMTP_EXT_BINARYMIME},
    {"DSN", SMTP_EXT_DSN},
    {"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES},
    {"DELIVERBY", SMTP_EXT_DELIVERBY},
    {"REQUIRETLS", SMTP_EXT_REQUIRETLS},
};

/* The mechanisms after "AUTH" (or "AUTH="): SMTP_AUTH_* of those the gateway can use. */
static unsigned offered_mechanisms(const char *s, size_t len)
{
    unsigned mechs = 0;
    for (size_t i = skip_spaces(s, len, 0); i < len; i = skip_spaces(s, len, i)) {
        size_t e = word_end(s, len, i);
        if (word_is(s + i, e - i, "XOAUTH2"))
            mechs |= SMTP_AUTH_XOAUTH2;
        else if (word_is(s + i, e - i, "OAUTHBEARER"))
            mechs |= SMTP_AUTH_OAUTHBEARER;
        i = e;
    }
    return mechs;
}

/* One extension line "KEYWORD[ params]". */
static void ehlo_line(const char *s, size_t len, struct smtp_ehlo_caps *out)
{
    size_t k = 0;
    while (k < len && s[k] != ' ' && s[k] != '=')
        k++;
    const char *params = s + k + (k < len);
    size_t params_len = len - k - (k < len);
    if (word_is(s, k, "STARTTLS")) {
        out->starttls = 1;
        return;
    }
    if (word_is(s, k, "AUTH")) {
        out->auth |= offered_mechanisms(params, params_len);
        return;
    }
    if (k < len && s[k] == '=')
        return; /* old "KEYWORD=..." forms other than AUTH= */
    for (size_t i = 0; i < MG_ARRAY_LEN(extensions); i++) {
        if (!word_is(s, k, extensions[i].keyword))
            continue;
        uint64_t n = 0;
        size_t pe = word_end(params, params_len, 0);
        if (extensions[i].flag == SMTP_EXT_SIZE || extensions[i].flag == SMTP_EXT_DELIVERBY) {
            if ((params_len > 0 && parse_number(params, pe, &n) != 0) ||
                skip_spaces(params, params_len, pe) != params_len)
                return; /* malformed: do not advertise */
            if (extensions[i].flag == SMTP_EXT_SIZE)
                out->size = n;
            else
                out->deliverby = n;
        }
        out->ext |= extensions[i].flag;
        return;
    }
}

int smtp_ehlo_parse(const char *text, size_t len, struct smtp_ehlo_caps *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return -1;
    const char *nl = memchr(text, '\n', len);
    while (nl) {
        const char *line = nl + 1;
        size_t left = len - (size_t)(line - text);
        nl = memchr(line, '\n', left);
        size_t l = nl ? (size_t)(nl - line) : left;
        ehlo_line(line, l, out);
    }
    return 0;
}

void smtp_ehlo_intersect(struct smtp_ehlo_caps *acc, const struct smtp_ehlo_caps *other)
{
    if ((acc->ext & other->ext & SMTP_EXT_SIZE) &&
        (acc->size == 0 || (other->size != 0 && other->size < acc->size)))
        acc->size = other->size;
    if (other->deliverby > acc->deliverby)
        acc->deliverby = other->deliverby;
    acc->ext &= other->ext;
    if (!(acc->ext & SMTP_EXT_SIZE))
        acc->size = 0;
    if (!(acc->ext & SMTP_EXT_DELIVERBY))
        acc->deliverby = 0;
    acc->starttls = acc->starttls && other->starttls;
    acc->auth &= other->auth;
}

long smtp_ehlo_format(const struct smtp_ehlo_caps *caps, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return -1;
    out[0] = '\0';
    for (size_t i = 0; i < MG_ARRAY_LEN(extensions); i++) {
        unsigned f = extensions[i].flag;
        if (!(caps->ext & f))
            continue;
        if (f == SMTP_EXT_BINARYMIME && !(caps->ext & SMTP_EXT_CHUNKING))
            continue; /* RFC 3030: BINARYMIME needs BDAT */
        char num[32] = "";
        uint64_t n = f == SMTP_EXT_SIZE        ? caps->size
                     : f == SMTP_EXT_DELIVERBY ? caps->deliverby
                                               : 0;
        if (n > 0)
            snprintf(num, sizeof num, " %llu", (unsigned long long)n);
        int w = snprintf(out + o, outlen - o, "250-%s%s\r\n", extensions[i].keyword, num);
        if (w < 0 || (size_t)w >= outlen - o) {
            out[o] = '\0';
            return -1;
        }
        o += (size_t)w;
    }
    return (long)o;
}
