/* Parser for upstream IMAP response lines (RFC 3501 section 7, RFC 9051). Strict about
 * structure (tags, status words, response codes) and lenient about human text, which servers
 * word as they like. An unterminated "[" is taken as plain text: it carries no code. */
#include <string.h>

#include "imap_reply.h"
#include "util.h"

/* A cursor over the line. */
struct cursor {
    const char *p;
    const char *end;
};

/* ASTRING-CHAR except "+", as for client tags. */
static int is_tag_char(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f || c == '+')
        return 0;
    return strchr("(){%*\"\\", c) == NULL;
}

static int is_atom_char(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return 0;
    return strchr("(){%*\"\\]", c) == NULL;
}

/* Length of the word at the cursor (up to SP or the end). */
static size_t word_len(const struct cursor *c)
{
    const char *sp = memchr(c->p, ' ', (size_t)(c->end - c->p));
    return (size_t)((sp ? sp : c->end) - c->p);
}

static int word_is(const char *w, size_t len, const char *name)
{
    return len == strlen(name) && mg_ascii_ncasecmp(w, name, len) == 0;
}

static enum imap_reply_status status_word(const char *w, size_t len)
{
    static const struct {
        const char *name;
        enum imap_reply_status status;
    } words[] = {{"OK", IMAP_STATUS_OK},
                 {"NO", IMAP_STATUS_NO},
                 {"BAD", IMAP_STATUS_BAD},
                 {"PREAUTH", IMAP_STATUS_PREAUTH},
                 {"BYE", IMAP_STATUS_BYE}};
    for (size_t i = 0; i < MG_ARRAY_LEN(words); i++) {
        if (word_is(w, len, words[i].name))
            return words[i].status;
    }
    return IMAP_STATUS_NONE;
}

static void set_text(struct imap_reply *out, const struct cursor *c)
{
    out->text = c->p;
    out->text_len = (size_t)(c->end - c->p);
}

/* "[" code [SP args] "]" at the cursor, which is left after "]" and one SP. Returns 0 (also
 * when there is no "]": then it is all text), or -1 for a bad or overlong code. */
static int parse_code(struct cursor *c, struct imap_reply *out)
{
    const char *close = memchr(c->p, ']', (size_t)(c->end - c->p));
    if (!close)
        return 0;
    const char *code = c->p + 1, *code_end = code;
    while (code_end < close && is_atom_char((unsigned char)*code_end))
        code_end++;
    size_t code_len = (size_t)(code_end - code);
    if (code_len == 0 || code_len >= sizeof out->code || (code_end < close && *code_end != ' '))
        return -1;
    for (size_t i = 0; i < code_len; i++) {
        char ch = code[i];
        out->code[i] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
    }
    out->code[code_len] = '\0';
    out->code_args = code_end < close ? code_end + 1 : close;
    out->code_args_len = (size_t)(close - out->code_args);
    if (strcmp(out->code, "CAPABILITY") == 0) {
        out->caps = out->code_args;
        out->caps_len = out->code_args_len;
    }
    c->p = close + 1;
    if (c->p < c->end && *c->p == ' ')
        c->p++;
    return 0;
}

/* After a status word: nothing, or SP ["[" code "]" SP] text. */
static int parse_resp_text(struct cursor *c, struct imap_reply *out)
{
    if (c->p < c->end) {
        if (*c->p != ' ')
            return -1;
        c->p++;
        if (c->p < c->end && *c->p == '[' && parse_code(c, out) != 0)
            return -1;
    }
    set_text(out, c);
    return 0;
}

static int parse_untagged(struct cursor *c, struct imap_reply *out)
{
    out->kind = IMAP_REPLY_UNTAGGED;
    if (c->p >= c->end || *c->p != ' ')
        return -1;
    c->p++;
    size_t len = word_len(c);
    if (len == 0)
        return -1;
    out->status = status_word(c->p, len);
    if (out->status != IMAP_STATUS_NONE) {
        c->p += len;
        return parse_resp_text(c, out);
    }
    set_text(out, c); /* untagged data: the whole of it */
    if (word_is(c->p, len, "CAPABILITY")) {
        c->p += len;
        if (c->p < c->end)
            c->p++;
        out->caps = c->p;
        out->caps_len = (size_t)(c->end - c->p);
    }
    return 0;
}

static int parse_tagged(struct cursor *c, struct imap_reply *out)
{
    out->kind = IMAP_REPLY_TAGGED;
    size_t len = word_len(c);
    if (len == 0 || len >= sizeof out->tag)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_tag_char((unsigned char)c->p[i]))
            return -1;
    }
    memcpy(out->tag, c->p, len);
    out->tag[len] = '\0';
    c->p += len;
    if (c->p >= c->end)
        return -1;
    c->p++;
    len = word_len(c);
    out->status = status_word(c->p, len);
    if (out->status != IMAP_STATUS_OK && out->status != IMAP_STATUS_NO &&
        out->status != IMAP_STATUS_BAD)
        return -1;
    c->p += len;
    return parse_resp_text(c, out);
}

int imap_reply_parse(const char *line, size_t len, struct imap_reply *out)
{
    memset(out, 0, sizeof *out);
    out->text = line;
    out->code_args = line;
    if (len == 0 || memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len))
        return -1;
    struct cursor c = {line, line + len};
    int r;
    if (line[0] == '+') {
        out->kind = IMAP_REPLY_CONTINUATION;
        c.p++;
        if (c.p < c.end && *c.p++ != ' ')
            return -1;
        set_text(out, &c);
        return 0;
    }
    if (line[0] == '*') {
        c.p++;
        r = parse_untagged(&c, out);
    } else {
        r = parse_tagged(&c, out);
    }
    if (r != 0) {
        const char *keep = out->text;
        memset(out, 0, sizeof *out);
        out->text = keep; /* never NULL, even after a failure */
        out->code_args = keep;
    }
    return r;
}

int imap_caps_has(const char *caps, size_t caps_len, const char *cap)
{
    size_t cap_len = strlen(cap);
    if (!caps || cap_len == 0)
        return 0;
    struct cursor c = {caps, caps + caps_len};
    while (c.p < c.end) {
        size_t len = word_len(&c);
        if (len == cap_len && mg_ascii_ncasecmp(c.p, cap, len) == 0)
            return 1;
        c.p += len;
        if (c.p < c.end)
            c.p++; /* the SP */
    }
    return 0;
}
