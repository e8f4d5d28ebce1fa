/* Incremental IMAP command parser: a byte-at-a-time state machine (in the spirit of nginx's
 * ngx_mail_parse.c), so input may arrive in any split and nothing is buffered beyond one
 * bounded command. After an error a small scanner skips the rest of the bad command; it knows
 * just enough grammar to recognise a literal announced at the end of a line, so that the data
 * of a non-synchronising literal is swallowed rather than executed as a command. */
#include <stdlib.h>
#include <string.h>

#include "imap_parser.h"
#include "util.h"

/* Room for one command: its line bytes, two full literals (LOGIN user and password) and a NUL
 * after the tag, the name and every argument. The store starts at STORE_START bytes and doubles
 * up to STORE_SIZE as a command needs it. */
#define STORE_SIZE (IMAP_MAX_LINE + 2 * IMAP_MAX_LITERAL + IMAP_MAX_ARGS + 2)
#define STORE_START 1024
/* Literal lengths saturate here: anything larger is refused anyway, and nothing can overflow. */
#define LITERAL_LEN_CAP ((uint64_t)1 << 40)
#define MAX_LIST_DEPTH 8

enum parse_state {
    ST_TAG,
    ST_NAME,
    ST_ARG_START, /* after SP: an argument must follow */
    ST_LIST_OPEN, /* after "(": an argument or ")" */
    ST_ATOM,
    ST_QUOTED,
    ST_QUOTED_ESCAPE,
    ST_LITERAL_SPEC,
    ST_LITERAL_DATA,
    ST_ARG_END, /* after an argument: SP, ")" or the line end */
    ST_CR,      /* CR seen where the line may end: LF must follow */
    ST_DONE
};

enum parser_mode {
    MODE_PARSE,
    MODE_DISCARD_LINE,    /* skipping a bad command up to its line end */
    MODE_DISCARD_LITERAL, /* skipping the data of a {n+} announced in a bad command */
    MODE_FATAL            /* gave up: the caller disconnects */
};

/* "{" 1*DIGIT ["+"] "}" [CR] LF, tracked byte by byte in both parse and discard mode. */
enum literal_spec_state { LIT_NONE, LIT_OPEN, LIT_DIGITS, LIT_PLUS, LIT_CLOSED, LIT_CR };
enum literal_step { LIT_STEP_MORE, LIT_STEP_DONE, LIT_STEP_BAD };

struct literal_spec {
    enum literal_spec_state state;
    uint64_t len;
    int non_sync;
};

struct imap_parser {
    enum parser_mode mode;
    enum parse_state state;
    enum imap_parse_result pending; /* COMMAND or ERROR not yet reset; else NEED_MORE */
    struct literal_spec lit;        /* the literal being announced (parse mode) */
    struct literal_spec tail; /* a literal announcement at the end of the line so far, whatever
                                 the grammar makes of it: what the discard scanner goes by */
    uint64_t literal_left;    /* data bytes still to store (parse) or to skip (discard) */
    size_t line_bytes;        /* bytes of the command except literal data */
    size_t discarded;         /* bytes skipped for the current bad command */
    unsigned depth;           /* open parentheses */
    int have_tag;
    size_t token_start; /* store offset of the string being read */
    size_t used;
    struct imap_command cmd;
    const char *error;
    int fatal;
    char error_tag[IMAP_MAX_TAG + 1];
    char *store; /* cap bytes, cap <= STORE_SIZE; the strings of cmd point into it */
    size_t cap;
};

static const char NO_TAG[] = "*";

/* ---- character classes (RFC 3501 section 9) ---- */

static int is_atom_char(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return 0;
    return strchr("(){%*\"\\]", c) == NULL;
}

static int is_astring_char(unsigned char c)
{
    return is_atom_char(c) || c == ']';
}

static int is_tag_char(unsigned char c)
{
    return is_astring_char(c) && c != '+';
}

static int is_line_end(unsigned char c)
{
    return c == '\r' || c == '\n';
}

/* ---- literal announcements ---- */

static enum literal_step literal_spec_step(struct literal_spec *ls, unsigned char c)
{
    switch (ls->state) {
    case LIT_NONE:
        if (c != '{')
            return LIT_STEP_BAD;
        *ls = (struct literal_spec){LIT_OPEN, 0, 0};
        return LIT_STEP_MORE;
    case LIT_OPEN:
    case LIT_DIGITS:
        if (c >= '0' && c <= '9') {
            ls->len = ls->len * 10 + (uint64_t)(c - '0');
            if (ls->len > LITERAL_LEN_CAP)
                ls->len = LITERAL_LEN_CAP;
            ls->state = LIT_DIGITS;
            return LIT_STEP_MORE;
        }
        if (ls->state == LIT_DIGITS && (c == '+' || c == '}')) {
            ls->non_sync = c == '+';
            ls->state = c == '+' ? LIT_PLUS : LIT_CLOSED;
            return LIT_STEP_MORE;
        }
        return LIT_STEP_BAD;
    case LIT_PLUS:
        if (c != '}')
            return LIT_STEP_BAD;
        ls->state = LIT_CLOSED;
        return LIT_STEP_MORE;
    case LIT_CLOSED:
        if (c == '\n')
            return LIT_STEP_DONE;
        if (c != '\r')
            return LIT_STEP_BAD;
        ls->state = LIT_CR;
        return LIT_STEP_MORE;
    case LIT_CR:
        return c == '\n' ? LIT_STEP_DONE : LIT_STEP_BAD;
    }
    return LIT_STEP_BAD;
}

/* Follows the line for something that looks like a literal announcement, restarting at every
 * "{". Returns LIT_STEP_DONE when the line ends with one. */
static enum literal_step tail_step(struct literal_spec *ls, unsigned char c)
{
    enum literal_step r = literal_spec_step(ls, c);
    if (r == LIT_STEP_BAD) {
        ls->state = LIT_NONE;
        if (c == '{')
            literal_spec_step(ls, c);
    }
    return r;
}

/* ---- discarding a bad command ---- */

static enum imap_parse_result become_fatal(struct imap_parser *p, const char *why)
{
    p->mode = MODE_FATAL;
    p->fatal = 1;
    p->error = why;
    mg_strlcpy(p->error_tag, NO_TAG, sizeof p->error_tag);
    return IMAP_PARSE_ERROR;
}

static void end_discard(struct imap_parser *p)
{
    p->mode = MODE_PARSE;
    p->discarded = 0;
    p->literal_left = 0;
    p->tail.state = LIT_NONE;
}

/* The line of a bad command ended with a literal announcement. */
static enum imap_parse_result discard_literal_announced(struct imap_parser *p)
{
    struct literal_spec ls = p->tail;
    p->tail.state = LIT_NONE;
    if (!ls.non_sync) {
        end_discard(p); /* the client waits for "+", which never comes: the command is over */
        return IMAP_PARSE_NEED_MORE;
    }
    if (ls.len > IMAP_MAX_DISCARD - p->discarded)
        return become_fatal(p, "Literal too large to skip.");
    if (ls.len > 0) {
        p->mode = MODE_DISCARD_LITERAL;
        p->literal_left = ls.len;
    }
    return IMAP_PARSE_NEED_MORE; /* after the data the command line goes on */
}

static enum imap_parse_result discard_byte(struct imap_parser *p, unsigned char c)
{
    if (++p->discarded > IMAP_MAX_DISCARD)
        return become_fatal(p, "Too much invalid input.");
    if (tail_step(&p->tail, c) == LIT_STEP_DONE)
        return discard_literal_announced(p);
    if (c == '\n')
        end_discard(p);
    return IMAP_PARSE_NEED_MORE;
}

static size_t discard_literal_data(struct imap_parser *p, size_t len)
{
    size_t n = p->literal_left < len ? (size_t)p->literal_left : len;
    p->literal_left -= n;
    p->discarded += n; /* bounded when the literal was announced */
    if (p->literal_left == 0)
        p->mode = MODE_DISCARD_LINE;
    return n;
}

/* Reports a bad command and starts skipping it, beginning with the offending byte (which may
 * end the line or complete a literal announcement: the tail tracker has not seen it yet). */
static enum imap_parse_result fail(struct imap_parser *p, unsigned char c, const char *why)
{
    p->error = why;
    mg_strlcpy(p->error_tag, p->have_tag ? p->cmd.tag : NO_TAG, sizeof p->error_tag);
    p->mode = MODE_DISCARD_LINE;
    p->discarded = 0;
    p->lit.state = LIT_NONE;
    p->state = ST_DONE;
    discard_byte(p, c);
    return IMAP_PARSE_ERROR;
}

/* ---- command storage ---- */

/* A string of cmd that points into the old store points to the same offset in the new one. */
static const char *rebase(const char *s, const char *old, size_t old_cap, const char *new)
{
    uintptr_t at = (uintptr_t)s, base = (uintptr_t)old;
    return s && at >= base && at < base + old_cap ? new + (at - base) : s;
}

/* Copies the store into a buffer of cap bytes; the old one is wiped (it may hold a password)
 * and the command's strings follow. */
static void store_move(struct imap_parser *p, size_t cap)
{
    char *old = p->store, *new = mg_malloc(cap);
    memcpy(new, old, p->used);
    p->cmd.tag = rebase(p->cmd.tag, old, p->cap, new);
    p->cmd.name = rebase(p->cmd.name, old, p->cap, new);
    for (size_t i = 0; i < p->cmd.argc; i++)
        p->cmd.args[i].str = rebase(p->cmd.args[i].str, old, p->cap, new);
    mg_wipe(old, p->cap);
    free(old);
    p->store = new;
    p->cap = cap;
}

/* Room for n more bytes, or -1 when the command would pass STORE_SIZE. */
static int store_room(struct imap_parser *p, size_t n)
{
    if (n > STORE_SIZE - p->used)
        return -1;
    size_t cap = p->cap;
    while (cap - p->used < n)
        cap = cap * 2 > STORE_SIZE ? STORE_SIZE : cap * 2;
    if (cap != p->cap)
        store_move(p, cap);
    return 0;
}

static int store_byte(struct imap_parser *p, unsigned char c)
{
    if (store_room(p, 1) != 0)
        return -1;
    p->store[p->used++] = (char)c;
    return 0;
}

static enum imap_parse_result store_or_fail(struct imap_parser *p, unsigned char c,
                                            unsigned char stored)
{
    if (store_byte(p, stored) != 0)
        return fail(p, c, "Command too long.");
    return IMAP_PARSE_NEED_MORE;
}

/* Terminates the string being read; returns its start. */
static const char *finish_string(struct imap_parser *p, size_t *len)
{
    if (store_room(p, 1) != 0) /* cannot happen (see literal_fits); never write outside */
        p->used = STORE_SIZE - 1;
    *len = p->used - p->token_start;
    p->store[p->used++] = '\0';
    return p->store + p->token_start;
}

static struct imap_arg *new_arg(struct imap_parser *p, enum imap_arg_type type)
{
    if (p->cmd.argc >= IMAP_MAX_ARGS)
        return NULL;
    struct imap_arg *a = &p->cmd.args[p->cmd.argc++];
    *a = (struct imap_arg){.type = type, .str = "", .len = 0, .is_nil = 0};
    p->token_start = p->used;
    return a;
}

static struct imap_arg *current_arg(struct imap_parser *p)
{
    return &p->cmd.args[p->cmd.argc - 1];
}

static void finish_arg(struct imap_parser *p)
{
    struct imap_arg *a = current_arg(p);
    a->str = finish_string(p, &a->len);
    a->is_nil = a->type == IMAP_ARG_ATOM && a->len == 3 && mg_ascii_casecmp(a->str, "NIL") == 0;
}

/* ---- the grammar ---- */

static enum imap_parse_result end_line_byte(struct imap_parser *p, unsigned char c)
{
    if (c == '\r') {
        p->state = ST_CR;
        return IMAP_PARSE_NEED_MORE;
    }
    if (p->depth > 0)
        return fail(p, c, "Unbalanced parentheses.");
    p->state = ST_DONE;
    return IMAP_PARSE_COMMAND;
}

static enum imap_parse_result parse_tag(struct imap_parser *p, unsigned char c)
{
    size_t len = p->used - p->token_start;
    if (is_tag_char(c)) {
        if (len >= IMAP_MAX_TAG)
            return fail(p, c, "Tag too long.");
        return store_or_fail(p, c, c);
    }
    if (len == 0)
        return fail(p, c, is_line_end(c) ? "Empty command line." : "Missing or invalid tag.");
    if (c != ' ' && !is_line_end(c))
        return fail(p, c, "Invalid character in tag.");
    p->cmd.tag = finish_string(p, &len);
    p->have_tag = 1;
    if (c != ' ')
        return fail(p, c, "Missing command.");
    p->token_start = p->used;
    p->state = ST_NAME;
    return IMAP_PARSE_NEED_MORE;
}

static enum imap_parse_result parse_name(struct imap_parser *p, unsigned char c)
{
    size_t len = p->used - p->token_start;
    if (is_atom_char(c))
        return store_or_fail(p, c, (unsigned char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c));
    if (len == 0)
        return fail(p, c,
                    c == ' ' || is_line_end(c) ? "Missing command." : "Invalid command name.");
    if (c != ' ' && !is_line_end(c))
        return fail(p, c, "Invalid character in command name.");
    p->cmd.name = finish_string(p, &len);
    if (c != ' ')
        return end_line_byte(p, c);
    p->state = ST_ARG_START;
    return IMAP_PARSE_NEED_MORE;
}

static enum imap_parse_result close_list(struct imap_parser *p, unsigned char c)
{
    if (p->depth == 0)
        return fail(p, c, "Unbalanced parentheses.");
    struct imap_arg *a = new_arg(p, IMAP_ARG_LIST_END);
    if (!a)
        return fail(p, c, "Too many arguments.");
    a->str = ")";
    a->len = 1;
    p->depth--;
    p->state = ST_ARG_END;
    return IMAP_PARSE_NEED_MORE;
}

static enum imap_parse_result open_list(struct imap_parser *p, unsigned char c)
{
    if (p->depth >= MAX_LIST_DEPTH)
        return fail(p, c, "Lists nested too deeply.");
    struct imap_arg *a = new_arg(p, IMAP_ARG_LIST_START);
    if (!a)
        return fail(p, c, "Too many arguments.");
    a->str = "(";
    a->len = 1;
    p->depth++;
    p->state = ST_LIST_OPEN;
    return IMAP_PARSE_NEED_MORE;
}

static enum imap_parse_result parse_arg_start(struct imap_parser *p, unsigned char c)
{
    if (c == '(')
        return open_list(p, c);
    if (c == ')' && p->state == ST_LIST_OPEN)
        return close_list(p, c);
    enum imap_arg_type type = c == '"'   ? IMAP_ARG_QUOTED
                              : c == '{' ? IMAP_ARG_LITERAL
                                         : IMAP_ARG_ATOM;
    if (type == IMAP_ARG_ATOM && !is_astring_char(c))
        return fail(p, c, is_line_end(c) ? "Missing argument." : "Invalid argument.");
    if (!new_arg(p, type))
        return fail(p, c, "Too many arguments.");
    if (type == IMAP_ARG_QUOTED) {
        p->state = ST_QUOTED;
    } else if (type == IMAP_ARG_LITERAL) {
        p->lit.state = LIT_NONE;
        literal_spec_step(&p->lit, c);
        p->state = ST_LITERAL_SPEC;
    } else {
        p->state = ST_ATOM;
        return store_or_fail(p, c, c);
    }
    return IMAP_PARSE_NEED_MORE;
}

/* What may follow a complete argument (or a word ending one). */
static enum imap_parse_result after_arg(struct imap_parser *p, unsigned char c)
{
    if (c == ' ') {
        p->state = ST_ARG_START;
        return IMAP_PARSE_NEED_MORE;
    }
    if (c == ')')
        return close_list(p, c);
    if (is_line_end(c))
        return end_line_byte(p, c);
    return fail(p, c, "Missing space after argument.");
}

static enum imap_parse_result parse_atom(struct imap_parser *p, unsigned char c)
{
    if (is_astring_char(c))
        return store_or_fail(p, c, c);
    if (c != ' ' && c != ')' && !is_line_end(c))
        return fail(p, c, "Invalid character in atom.");
    finish_arg(p);
    return after_arg(p, c);
}

static enum imap_parse_result parse_quoted(struct imap_parser *p, unsigned char c)
{
    if (p->state == ST_QUOTED_ESCAPE) {
        if (c != '"' && c != '\\')
            return fail(p, c, "Invalid escape in quoted string.");
        p->state = ST_QUOTED;
        return store_or_fail(p, c, c);
    }
    if (is_line_end(c))
        return fail(p, c, "Unterminated quoted string.");
    if (c == '\\') {
        p->state = ST_QUOTED_ESCAPE;
    } else if (c == '"') {
        finish_arg(p);
        p->state = ST_ARG_END;
    } else {
        return store_or_fail(p, c, c);
    }
    return IMAP_PARSE_NEED_MORE;
}

static enum imap_parse_result start_literal_data(struct imap_parser *p)
{
    int sync = !p->lit.non_sync;
    p->literal_left = p->lit.len;
    p->lit.state = LIT_NONE;
    p->state = ST_LITERAL_DATA;
    if (p->literal_left == 0) {
        finish_arg(p);
        p->state = ST_ARG_END;
    }
    return sync ? IMAP_PARSE_LITERAL_CONTINUE : IMAP_PARSE_NEED_MORE;
}

/* The literal's data and everything the rest of the command may still store (one byte per
 * line byte, one NUL per argument) must fit, so that storing can never run out later. */
static int literal_fits(const struct imap_parser *p, uint64_t len)
{
    size_t rest = (IMAP_MAX_LINE - p->line_bytes) + (IMAP_MAX_ARGS - p->cmd.argc) + 1;
    return len + 1 + rest <= STORE_SIZE - p->used;
}

static enum imap_parse_result parse_literal_spec(struct imap_parser *p, unsigned char c)
{
    /* Checked at "}" so that the error comes before the client sends any data. */
    if (c == '}' && (p->lit.state == LIT_DIGITS || p->lit.state == LIT_PLUS)) {
        if (p->lit.len > IMAP_MAX_LITERAL)
            return fail(p, c, "Literal too large.");
        if (!literal_fits(p, p->lit.len))
            return fail(p, c, "Command too long.");
    }
    enum literal_step r = literal_spec_step(&p->lit, c);
    if (r == LIT_STEP_BAD)
        return fail(p, c, "Invalid literal.");
    if (r == LIT_STEP_DONE)
        return start_literal_data(p);
    return IMAP_PARSE_NEED_MORE;
}

static size_t store_literal_data(struct imap_parser *p, const unsigned char *data, size_t len)
{
    size_t n = p->literal_left < len ? (size_t)p->literal_left : len;
    if (store_room(p, n) == 0) { /* always: room was checked when the literal was announced */
        memcpy(p->store + p->used, data, n);
        p->used += n;
    }
    p->literal_left -= n;
    if (p->literal_left == 0) {
        finish_arg(p);
        p->state = ST_ARG_END;
    }
    return n;
}

static enum imap_parse_result parse_grammar(struct imap_parser *p, unsigned char c)
{
    if (++p->line_bytes > IMAP_MAX_LINE)
        return fail(p, c, "Command line too long.");
    if (c == '\0')
        return fail(p, c, "NUL byte in command.");
    switch (p->state) {
    case ST_TAG:
        return parse_tag(p, c);
    case ST_NAME:
        return parse_name(p, c);
    case ST_ARG_START:
    case ST_LIST_OPEN:
        return parse_arg_start(p, c);
    case ST_ATOM:
        return parse_atom(p, c);
    case ST_QUOTED:
    case ST_QUOTED_ESCAPE:
        return parse_quoted(p, c);
    case ST_LITERAL_SPEC:
        return parse_literal_spec(p, c);
    case ST_ARG_END:
        return after_arg(p, c);
    case ST_CR:
        if (c != '\n')
            return fail(p, c, "CR not followed by LF.");
        return end_line_byte(p, c);
    case ST_LITERAL_DATA: /* handled in bulk by the caller */
    case ST_DONE:
        break;
    }
    return fail(p, c, "Internal parser error.");
}

static enum imap_parse_result parse_byte(struct imap_parser *p, unsigned char c)
{
    enum imap_parse_result r = parse_grammar(p, c);
    if (p->mode == MODE_PARSE && tail_step(&p->tail, c) == LIT_STEP_DONE)
        p->tail.state = LIT_NONE; /* a line end the grammar has dealt with */
    return r;
}

/* ---- public API ---- */

struct imap_parser *imap_parser_new(void)
{
    struct imap_parser *p = mg_calloc(1, sizeof *p);
    p->cap = STORE_START;
    p->store = mg_malloc(p->cap);
    imap_parser_reset(p);
    return p;
}

void imap_parser_free(struct imap_parser **p)
{
    if (!*p)
        return;
    mg_wipe((*p)->store, (*p)->cap);
    free((*p)->store);
    mg_wipe(*p, sizeof **p);
    free(*p);
    *p = NULL;
}

void imap_parser_reset(struct imap_parser *p)
{
    mg_wipe(p->store, p->used);
    p->used = 0;
    if (p->cap > STORE_START) /* a big command's room goes back: idle sessions stay small */
        store_move(p, STORE_START);
    p->token_start = 0;
    memset(&p->cmd, 0, sizeof p->cmd);
    p->state = ST_TAG;
    p->pending = IMAP_PARSE_NEED_MORE;
    p->line_bytes = 0;
    p->depth = 0;
    p->have_tag = 0;
    if (p->mode == MODE_PARSE) {
        p->lit.state = LIT_NONE;
        p->tail.state = LIT_NONE;
        p->literal_left = 0;
    }
    /* A dead parser keeps saying why; the discarding of a bad command goes on. */
    if (!p->fatal) {
        p->error = NULL;
        mg_strlcpy(p->error_tag, NO_TAG, sizeof p->error_tag);
    }
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const unsigned char *data,
                                        size_t len, size_t *consumed)
{
    *consumed = 0;
    if (p->fatal)
        return IMAP_PARSE_ERROR;
    if (p->pending != IMAP_PARSE_NEED_MORE)
        return p->pending; /* the caller has not reset yet */
    enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
    size_t i = 0;
    while (i < len && r == IMAP_PARSE_NEED_MORE) {
        if (p->mode == MODE_DISCARD_LITERAL)
            i += discard_literal_data(p, len - i);
        else if (p->mode == MODE_PARSE && p->state == ST_LITERAL_DATA)
            i += store_literal_data(p, data + i, len - i);
        else if (p->mode == MODE_PARSE)
            r = parse_byte(p, data[i++]);
        else
            r = discard_byte(p, data[i++]);
    }
    *consumed = i;
    if (r == IMAP_PARSE_COMMAND || r == IMAP_PARSE_ERROR)
        p->pending = r;
    return r;
}

const struct imap_command *imap_parser_command(const struct imap_parser *p)
{
    return &p->cmd;
}

const char *imap_parser_error_tag(const struct imap_parser *p)
{
    return p->error_tag;
}

const char *imap_parser_error(const struct imap_parser *p)
{
    return p->error ? p->error : "Invalid command.";
}

int imap_parser_error_fatal(const struct imap_parser *p)
{
    return p->fatal;
}

int imap_quote(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen < 3)
        return -1;
    out[o++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x20 || *c > 0x7e)
            return -1; /* CR, LF, other controls, 8-bit: the caller sends a literal */
        size_t need = (*c == '"' || *c == '\\') ? 2 : 1;
        if (o + need + 2 > outlen || o + need + 2 > (size_t)INT32_MAX)
            return -1;
        if (need == 2)
            out[o++] = '\\';
        out[o++] = (char)*c;
    }
    out[o++] = '"';
    out[o] = '\0';
    return (int)o;
}
