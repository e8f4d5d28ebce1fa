/* The protocol log's line scanner: see protolog_scan.h for what is logged and what is not. */
#include "protolog_scan.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

#define LITERAL_MAX ((int64_t)1 << 40) /* a larger {N} is no literal anyone sends */

static const char redacted_mark[] = PLOG_REDACTED;
static const char truncated_mark[] = " <truncated>";

void plog_scan_init(struct plog_scan *sc, enum mg_proto proto, plog_emit_fn emit, void *arg)
{
    memset(sc, 0, sizeof *sc);
    sc->proto = proto;
    sc->emit = emit;
    sc->arg = arg;
}

void plog_scan_relay(struct plog_scan *sc)
{
    sc->relay = 1;
    sc->sasl[0] = sc->sasl[1] = 0;
}

/* ---- pure helpers ---- */

int64_t plog_literal_at_end(const char *text, size_t len)
{
    if (len < 3 || text[len - 1] != '}')
        return -1;
    size_t i = len - 1;
    if (text[i - 1] == '+' || text[i - 1] == '-') /* LITERAL+ and LITERAL- */
        i--;
    size_t digits_end = i;
    while (i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9')
        i--;
    if (i == digits_end || i == 0 || text[i - 1] != '{' || digits_end - i > 12)
        return -1;
    int64_t n = 0;
    for (size_t k = i; k < digits_end; k++)
        n = n * 10 + (text[k] - '0');
    return n > LITERAL_MAX ? LITERAL_MAX : n;
}

size_t plog_escape(const char *text, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        int plain = c >= 0x20 && c != 0x7f;
        if (n + (plain ? 1 : 4) >= outlen)
            break;
        if (plain) {
            out[n++] = (char)c;
            continue;
        }
        out[n++] = '\\';
        out[n++] = 'x';
        out[n++] = hex[c >> 4];
        out[n++] = hex[c & 15];
    }
    return n;
}

static size_t skip_spaces(const char *t, size_t n, size_t i)
{
    while (i < n && t[i] == ' ')
        i++;
    return i;
}

static size_t word_end(const char *t, size_t n, size_t i)
{
    while (i < n && t[i] != ' ')
        i++;
    return i;
}

/* The end of the IMAP astring at i (atom, quoted string or literal announcement), or 0 when it
 * does not end within the bytes kept. */
static size_t imap_astring_end(const char *t, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    if (t[i] == '"') {
        for (size_t j = i + 1; j < n; j++) {
            if (t[j] == '\\')
                j++;
            else if (t[j] == '"')
                return j + 1;
        }
        return 0;
    }
    if (t[i] == '{') {
        const char *close = memchr(t + i, '}', n - i);
        return close ? (size_t)(close - t) + 1 : 0;
    }
    return word_end(t, n, i);
}

static int word_is(const char *t, size_t from, size_t to, const char *word)
{
    size_t len = strlen(word);
    return to - from == len && mg_ascii_ncasecmp(t + from, word, len) == 0;
}

/* ---- emitting ---- */

/* The bytes of the line this handler looks at. */
struct line {
    const char *text;
    size_t len;    /* bytes kept, without the line end */
    int truncated; /* the line went on beyond what was kept */
};

static enum plog_dir shown_dir(const struct plog_scan *sc, enum plog_dir dir)
{
    return sc->relay && dir == PLOG_UPSTREAM_IN ? PLOG_CLIENT_OUT : dir;
}

static size_t add_text(char *out, size_t n, size_t size, const char *text)
{
    size_t len = strlen(text);
    if (n + len > size)
        return n;
    memcpy(out + n, text, len);
    return n + len;
}

/* Hands on the first `keep` bytes of the line; `redact`: what follows is a secret. */
static void emit_kept(struct plog_scan *sc, enum plog_dir dir, const struct line *l, size_t keep,
                      int redact)
{
    char out[PLOG_TEXT_MAX];
    size_t room = sizeof out - sizeof redacted_mark - sizeof truncated_mark - 2;
    size_t n = plog_escape(l->text, keep, out, room);
    if (redact) {
        if (n > 0 && out[n - 1] != ' ')
            out[n++] = ' ';
        n = add_text(out, n, sizeof out, redacted_mark);
    } else if (l->truncated || keep < l->len) {
        n = add_text(out, n, sizeof out, truncated_mark);
    }
    sc->emit(sc->arg, shown_dir(sc, dir), out, n);
}

static void emit_all(struct plog_scan *sc, enum plog_dir dir, const struct line *l)
{
    emit_kept(sc, dir, l, l->len, 0);
}

static void emit_redacted(struct plog_scan *sc, enum plog_dir dir)
{
    sc->emit(sc->arg, shown_dir(sc, dir), redacted_mark, sizeof redacted_mark - 1);
}

/* Keeps the line up to `keep` and redacts the rest, if there is any. */
static void emit_secret_after(struct plog_scan *sc, enum plog_dir dir, const struct line *l,
                              size_t keep)
{
    int more = l->truncated || skip_spaces(l->text, l->len, keep) < l->len;
    emit_kept(sc, dir, l, keep, more);
}

static void emit_note(struct plog_scan *sc, enum plog_dir dir, const char *note)
{
    sc->emit(sc->arg, shown_dir(sc, dir), note, strlen(note));
}

static int sasl_side(enum plog_dir dir)
{
    return dir == PLOG_CLIENT_IN || dir == PLOG_CLIENT_OUT ? 0 : 1;
}

/* ---- commands (the client's, and the gateway's to the upstream) ---- */

/* AUTH/AUTHENTICATE MECH [initial response]: the mechanism stays, the response goes, and the
 * side's next lines are SASL responses. mech_at: where the mechanism starts. */
static void sasl_command(struct plog_scan *sc, enum plog_dir dir, const struct line *l,
                         size_t mech_at)
{
    size_t mech_end = word_end(l->text, l->len, mech_at);
    if (mech_end > mech_at)
        sc->sasl[sasl_side(dir)] = 1;
    emit_secret_after(sc, dir, l, mech_end);
}

static void imap_command(struct plog_scan *sc, enum plog_dir dir, struct plog_stream *st,
                         const struct line *l)
{
    const char *t = l->text;
    size_t cmd = skip_spaces(t, l->len, word_end(t, l->len, 0));
    size_t cmd_end = word_end(t, l->len, cmd);
    size_t arg = skip_spaces(t, l->len, cmd_end);
    if (word_is(t, cmd, cmd_end, "LOGIN")) {
        size_t user_end = imap_astring_end(t, l->len, arg);
        st->continued_secret = 1; /* after a literal user name comes the password */
        if (user_end == 0)
            emit_kept(sc, dir, l, cmd_end, 1);
        else
            emit_secret_after(sc, dir, l, user_end);
    } else if (word_is(t, cmd, cmd_end, "AUTHENTICATE")) {
        sasl_command(sc, dir, l, arg);
    } else {
        emit_all(sc, dir, l);
        if (sc->relay && word_is(t, cmd, cmd_end, "COMPRESS")) {
            emit_note(sc, dir, "<compression: the log of this session ends>");
            sc->stopped = 1;
        }
    }
}

static void pop3_expect(struct plog_scan *sc, int multi)
{
    if (sc->pop3_n == PLOG_POP3_PENDING) {
        sc->pop3_lost++;
        return;
    }
    sc->pop3_multi[(sc->pop3_head + sc->pop3_n++) % PLOG_POP3_PENDING] = (unsigned char)multi;
}

/* Whether the +OK of the next answer starts a multi-line body. Unknown (too many commands
 * pipelined): yes, so that a body is never taken for status lines. */
static int pop3_next_is_multi(struct plog_scan *sc)
{
    if (sc->pop3_n == 0) {
        if (sc->pop3_lost == 0)
            return 0;
        sc->pop3_lost--;
        return 1;
    }
    int multi = sc->pop3_multi[sc->pop3_head];
    sc->pop3_head = (sc->pop3_head + 1) % PLOG_POP3_PENDING;
    sc->pop3_n--;
    return multi;
}

static int pop3_multi_line_command(const char *t, size_t cmd, size_t cmd_end, int has_arg)
{
    if (word_is(t, cmd, cmd_end, "RETR") || word_is(t, cmd, cmd_end, "TOP") ||
        word_is(t, cmd, cmd_end, "CAPA"))
        return 1;
    return !has_arg && (word_is(t, cmd, cmd_end, "LIST") || word_is(t, cmd, cmd_end, "UIDL") ||
                        word_is(t, cmd, cmd_end, "AUTH"));
}

static void pop3_command(struct plog_scan *sc, enum plog_dir dir, const struct line *l)
{
    const char *t = l->text;
    size_t cmd_end = word_end(t, l->len, 0);
    size_t arg = skip_spaces(t, l->len, cmd_end);
    if (sc->relay)
        pop3_expect(sc, pop3_multi_line_command(t, 0, cmd_end, arg < l->len));
    if (word_is(t, 0, cmd_end, "PASS"))
        emit_secret_after(sc, dir, l, cmd_end);
    else if (word_is(t, 0, cmd_end, "APOP"))
        emit_secret_after(sc, dir, l, word_end(t, l->len, arg));
    else if (word_is(t, 0, cmd_end, "AUTH"))
        sasl_command(sc, dir, l, arg);
    else
        emit_all(sc, dir, l);
}

/* BDAT's chunk size, or 0. */
static uint64_t bdat_size(const char *t, size_t len, size_t arg)
{
    uint64_t n = 0;
    for (size_t i = arg; i < len && t[i] >= '0' && t[i] <= '9' && n < ((uint64_t)1 << 40); i++)
        n = n * 10 + (uint64_t)(t[i] - '0');
    return n;
}

static void smtp_command(struct plog_scan *sc, enum plog_dir dir, struct plog_stream *st,
                         const struct line *l)
{
    const char *t = l->text;
    size_t cmd_end = word_end(t, l->len, 0);
    size_t arg = skip_spaces(t, l->len, cmd_end);
    if (word_is(t, 0, cmd_end, "AUTH")) {
        sasl_command(sc, dir, l, arg);
        return;
    }
    emit_all(sc, dir, l);
    if (word_is(t, 0, cmd_end, "BDAT"))
        st->skip = bdat_size(t, l->len, arg);
}

static int is_dot_line(const struct line *l)
{
    return !l->truncated && l->len == 1 && l->text[0] == '.';
}

/* Passes over one content line; at the "." that ends the content, says how much there was. */
static void content_line(struct plog_scan *sc, enum plog_dir dir, struct plog_stream *st,
                         const struct line *l)
{
    if (!is_dot_line(l)) {
        st->content++;
        return;
    }
    char note[96];
    int n = snprintf(note, sizeof note, "<%llu lines of content not logged>",
                     (unsigned long long)st->content);
    st->content_mode = 0;
    st->content = 0;
    if (n > 0)
        emit_note(sc, dir, note);
}

static void command_line(struct plog_scan *sc, enum plog_dir dir, struct plog_stream *st,
                         const struct line *l)
{
    if (st->content_mode) {
        content_line(sc, dir, st, l);
        return;
    }
    if (sc->sasl[sasl_side(dir)]) {
        emit_redacted(sc, dir);
        return;
    }
    if (st->continued) { /* the rest of an IMAP command after a literal */
        if (st->continued_secret)
            emit_redacted(sc, dir);
        else if (l->len > 0 || l->truncated)
            emit_all(sc, dir, l);
        return;
    }
    st->continued_secret = 0;
    if (sc->proto == MG_PROTO_IMAP)
        imap_command(sc, dir, st, l);
    else if (sc->proto == MG_PROTO_POP3)
        pop3_command(sc, dir, l);
    else
        smtp_command(sc, dir, st, l);
}

/* ---- replies (the gateway's to the client, and the upstream's) ---- */

static int starts_with(const struct line *l, const char *prefix)
{
    size_t n = strlen(prefix);
    return l->len >= n && mg_ascii_ncasecmp(l->text, prefix, n) == 0;
}

static int is_smtp_reply(const struct line *l)
{
    const char *t = l->text;
    return l->len >= 3 && t[0] >= '2' && t[0] <= '5' && t[1] >= '0' && t[1] <= '9' && t[2] >= '0' &&
           t[2] <= '9';
}

/* A reply that is not a SASL continuation ends the peer's SASL exchange. In the relay the
 * peer is the client (a command relayed to the upstream, which answers). */
static void end_sasl_unless_continuation(struct plog_scan *sc, enum plog_dir dir,
                                         const struct line *l)
{
    int side = sc->relay ? 0 : sasl_side(dir);
    /* IMAP's "+ text" or "+", POP3's "+ " (not "+OK"), SMTP's "334 " */
    int plus = starts_with(l, "+") && (l->len == 1 || l->text[1] == ' ');
    int continuation = sc->proto == MG_PROTO_SMTP ? starts_with(l, "334") : plus;
    if (!continuation)
        sc->sasl[side] = 0;
}

static void pop3_relay_reply(struct plog_scan *sc, enum plog_dir dir, struct plog_stream *st,
                             const struct line *l)
{
    if (st->content_mode) {
        content_line(sc, dir, st, l);
        return;
    }
    int ok = starts_with(l, "+OK");
    if (!ok && !starts_with(l, "-ERR"))
        return; /* not a status line: never log what it might be */
    emit_all(sc, dir, l);
    if (pop3_next_is_multi(sc) && ok)
        st->content_mode = 1;
}

static void smtp_relay_reply(struct plog_scan *sc, enum plog_dir dir, const struct line *l)
{
    if (!is_smtp_reply(l))
        return;
    emit_all(sc, dir, l);
    /* Only DATA is answered 354, and a client sends the content only after reading it
     * (RFC 2920 3.1, also with PIPELINING), so this line comes before the content does. */
    int last_line = l->len == 3 || l->text[3] != '-';
    if (last_line && starts_with(l, "354"))
        sc->st[PLOG_CLIENT_IN].content_mode = 1;
}

static void reply_line(struct plog_scan *sc, enum plog_dir dir, struct plog_stream *st,
                       const struct line *l)
{
    if (!st->continued)
        end_sasl_unless_continuation(sc, dir, l);
    if (!sc->relay) { /* the login phase: every reply is logged */
        if (l->len > 0 || l->truncated || !st->continued)
            emit_all(sc, dir, l);
        return;
    }
    if (sc->proto == MG_PROTO_IMAP) { /* tagged responses only */
        if (!st->continued)
            st->continued_hidden = starts_with(l, "*") || starts_with(l, "+");
        if (!st->continued_hidden && (l->len > 0 || !st->continued))
            emit_all(sc, dir, l);
    } else if (sc->proto == MG_PROTO_POP3) {
        pop3_relay_reply(sc, dir, st, l);
    } else {
        smtp_relay_reply(sc, dir, l);
    }
}

/* ---- line assembly ---- */

static int is_command_dir(enum plog_dir dir)
{
    return dir == PLOG_CLIENT_IN || dir == PLOG_UPSTREAM_OUT;
}

static void append(struct plog_stream *st, const char *data, size_t n)
{
    /* Content lines are only looked at for the "." that ends them. */
    size_t cap = st->content_mode ? 2 : PLOG_LINE_MAX;
    if (st->len < cap) {
        size_t take = n < cap - st->len ? n : cap - st->len;
        memcpy(st->line + st->len, data, take);
        st->len += take;
    }
    st->seen += n;
    if (n >= PLOG_TAIL) {
        memcpy(st->tail, data + n - PLOG_TAIL, PLOG_TAIL);
        st->tail_len = PLOG_TAIL;
        return;
    }
    size_t keep = st->tail_len + n > PLOG_TAIL ? PLOG_TAIL - n : st->tail_len;
    memmove(st->tail, st->tail + st->tail_len - keep, keep);
    memcpy(st->tail + keep, data, n);
    st->tail_len = keep + n;
}

/* The line is complete: without its CR, judged, handed on; a literal at its end is skipped. */
static void end_line(struct plog_scan *sc, enum plog_dir dir, struct plog_stream *st)
{
    if (st->tail_len > 0 && st->tail[st->tail_len - 1] == '\r') {
        st->tail_len--;
        st->seen--;
        if (st->len > st->seen)
            st->len = (size_t)st->seen;
    }
    struct line l = {.text = st->line, .len = st->len, .truncated = st->seen > st->len};
    int64_t literal = -1;
    if (sc->proto == MG_PROTO_IMAP && !st->content_mode)
        literal = plog_literal_at_end(st->tail, st->tail_len);
    if (is_command_dir(dir))
        command_line(sc, dir, st, &l);
    else
        reply_line(sc, dir, st, &l);
    /* The line may have held a password or a token: it does not stay in memory. */
    mg_wipe(st->line, st->len);
    mg_wipe(st->tail, st->tail_len);
    st->len = st->tail_len = 0;
    st->seen = 0;
    if (literal >= 0 && !sc->sasl[sasl_side(dir)]) {
        st->skip = (uint64_t)literal;
        st->continued = 1;
    } else {
        st->continued = st->continued_secret = st->continued_hidden = 0;
    }
}

void plog_scan_feed(struct plog_scan *sc, enum plog_dir dir, const void *data, size_t len)
{
    if ((unsigned)dir >= PLOG_DIRS)
        return;
    struct plog_stream *st = &sc->st[dir];
    const char *p = data;
    while (len > 0 && !sc->stopped) {
        if (st->skip > 0) {
            size_t n = st->skip < len ? (size_t)st->skip : len;
            st->skip -= n;
            p += n;
            len -= n;
            continue;
        }
        const char *nl = memchr(p, '\n', len);
        if (!nl) {
            append(st, p, len);
            return;
        }
        append(st, p, (size_t)(nl - p));
        len -= (size_t)(nl - p) + 1;
        p = nl + 1;
        end_line(sc, dir, st);
    }
}
