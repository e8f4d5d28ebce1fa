#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parser.h"

/* ---- a driver that acts like the real caller and writes a transcript ---- */

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

struct transcript {
    char *text;
    size_t len, cap;
};

static void emit(struct transcript *t, const char *s, size_t len)
{
    if (t->len + len + 1 > t->cap) {
        t->cap = (t->len + len + 1) * 2;
        t->text = realloc(t->text, t->cap);
        assert_non_null(t->text);
    }
    memcpy(t->text + t->len, s, len);
    t->len += len;
    t->text[t->len] = '\0';
}

static void emit_str(struct transcript *t, const char *s)
{
    emit(t, s, strlen(s));
}

/* Non-printable bytes as \xNN so that transcripts stay readable. */
static void emit_bytes(struct transcript *t, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char buf[8];
        if (c >= 0x20 && c < 0x7f)
            snprintf(buf, sizeof buf, "%c", c);
        else
            snprintf(buf, sizeof buf, "\\x%02x", c);
        emit_str(t, buf);
    }
}

static void emit_command(struct transcript *t, const struct imap_command *cmd)
{
    static const char *const prefix[] = {"a:", "q:", "l:", "(", ")"};
    if (t->len)
        emit_str(t, "\n");
    emit_str(t, "C:");
    emit_str(t, cmd->tag);
    emit_str(t, " ");
    emit_str(t, cmd->name);
    for (size_t i = 0; i < cmd->argc; i++) {
        const struct imap_arg *a = &cmd->args[i];
        assert_non_null(a->str);
        assert_int_equal(a->str[a->len], '\0');
        emit_str(t, " ");
        if (a->is_nil) {
            emit_str(t, "nil");
            continue;
        }
        emit_str(t, prefix[a->type]);
        if (a->type != IMAP_ARG_LIST_START && a->type != IMAP_ARG_LIST_END)
            emit_bytes(t, a->str, a->len);
    }
}

static void emit_event(struct transcript *t, const char *a, const char *b, const char *c)
{
    if (t->len)
        emit_str(t, "\n");
    emit_str(t, a);
    emit_str(t, b);
    emit_str(t, c);
}

/* Returns 0 to go on, 1 when the parser gave up. */
static int act(struct imap_parser *p, enum imap_parse_result r, struct transcript *t)
{
    switch (r) {
    case IMAP_PARSE_NEED_MORE:
        return 0;
    case IMAP_PARSE_LITERAL_CONTINUE:
        emit_event(t, "+", "", "");
        return 0;
    case IMAP_PARSE_COMMAND:
        emit_command(t, imap_parser_command(p));
        break;
    case IMAP_PARSE_ERROR:
        if (imap_parser_error_fatal(p)) {
            emit_event(t, "F:", imap_parser_error(p), "");
            return 1;
        }
        emit_event(t, "E:", imap_parser_error_tag(p), ":");
        emit_str(t, imap_parser_error(p));
        break;
    }
    imap_parser_reset(p);
    return 0;
}

/* Feeds one chunk the way the gateway does: act on each result, feed the rest again. */
static int feed_chunk(struct imap_parser *p, const unsigned char *data, size_t len,
                      struct transcript *t)
{
    while (len > 0) {
        size_t used = 0;
        enum imap_parse_result r = imap_parser_feed(p, data, len, &used);
        assert_true(used <= len);
        if (r == IMAP_PARSE_NEED_MORE)
            assert_int_equal(used, len);
        else if (r != IMAP_PARSE_ERROR)
            assert_true(used > 0);
        if (act(p, r, t))
            return 1;
        data += used;
        len -= used;
    }
    return 0;
}

static unsigned lcg_next(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static char *run(const char *input, size_t len, enum split mode, unsigned seed)
{
    struct imap_parser *p = imap_parser_new();
    struct transcript t = {NULL, 0, 0};
    emit(&t, "", 0);
    const unsigned char *data = (const unsigned char *)input;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        if (mode == SPLIT_BYTES)
            n = 1;
        else if (mode == SPLIT_RANDOM)
            n = 1 + lcg_next(&seed) % (n < 24 ? n : 24);
        if (feed_chunk(p, data + off, n, &t))
            break;
        off += n;
    }
    imap_parser_free(&p);
    assert_null(p);
    return t.text;
}

/* The transcript must be the same for every way of splitting the input. */
static void check_len(const char *input, size_t len, const char *expected)
{
    char *whole = run(input, len, SPLIT_WHOLE, 0);
    assert_string_equal(whole, expected);
    free(whole);
    char *bytes = run(input, len, SPLIT_BYTES, 0);
    assert_string_equal(bytes, expected);
    free(bytes);
    for (unsigned seed = 1; seed <= 8; seed++) {
        char *random = run(input, len, SPLIT_RANDOM, seed);
        assert_string_equal(random, expected);
        free(random);
    }
}

#define CHECK(in, out) check_len(in, sizeof(in) - 1, out)

/* ---- commands that parse ---- */

static void test_login_atom_and_quoted(void **state)
{
    (void)state;
    CHECK("a1 LOGIN alice secret\r\n", "C:a1 LOGIN a:alice a:secret");
    CHECK("a2 login \"al ice\" \"p\\\"w\\\\d\"\r\n", "C:a2 LOGIN q:al ice q:p\"w\\d");
    CHECK("a3 LOGIN \"\" \"\"\r\n", "C:a3 LOGIN q: q:");
    CHECK("x.1 LOGIN a]b c\r\n", "C:x.1 LOGIN a:a]b a:c");
}

static void test_login_literals(void **state)
{
    (void)state;
    CHECK("a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n", "+\n+\nC:a1 LOGIN l:alice l:secret");
    CHECK("a2 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n", "C:a2 LOGIN l:alice l:secret");
    CHECK("a3 LOGIN alice {0}\r\n\r\n", "+\nC:a3 LOGIN a:alice l:");
    CHECK("a4 LOGIN {5+}\nalice {007}\nse\r\ncr\n\r\n",
          "+\nC:a4 LOGIN l:alice l:se\\x0d\\x0acr\\x0a");
    /* literal data is raw bytes: NUL, CR, quotes and braces included */
    CHECK("a5 LOGIN u {7+}\r\na\0b\"{}\r\r\n", "C:a5 LOGIN a:u l:a\\x00b\"{}\\x0d");
}

static void test_password_specials(void **state)
{
    (void)state;
    CHECK("a1 LOGIN alice \"p\\\"{5}\\\\()%* x\"\r\n", "C:a1 LOGIN a:alice q:p\"{5}\\()%* x");
    CHECK("a2 LOGIN alice {12+}\r\np\"{5}\\()%* x\r\n", "C:a2 LOGIN a:alice l:p\"{5}\\()%* x");
    CHECK("a3 LOGIN j\xc3\xbcrgen \"p\xc3\xa4\xe2\x82\xacss\"\r\n",
          "E:a3:Invalid character in atom.");
    CHECK("a4 LOGIN \"j\xc3\xbcrgen\" \"p\xc3\xa4\xe2\x82\xacss\"\r\n",
          "C:a4 LOGIN q:j\\xc3\\xbcrgen q:p\\xc3\\xa4\\xe2\\x82\\xacss");
}

static void test_authenticate_and_id(void **state)
{
    (void)state;
    CHECK("a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
          "C:a1 AUTHENTICATE a:PLAIN a:AGFsaWNlAHNlY3JldA==");
    CHECK("a2 authenticate plain\r\n", "C:a2 AUTHENTICATE a:plain");
    CHECK("a3 ID (\"name\" \"Thunderbird\" \"version\" NIL)\r\n",
          "C:a3 ID ( q:name q:Thunderbird q:version nil )");
    CHECK("a4 ID NIL\r\n", "C:a4 ID nil");
    CHECK("a5 ID \"NIL\" nil\r\n", "C:a5 ID q:NIL nil");
    CHECK("a6 X () ((a) b) ((((((((x))))))))\r\n",
          "C:a6 X ( ) ( ( a:a ) a:b ) ( ( ( ( ( ( ( ( a:x ) ) ) ) ) ) ) )");
    CHECK("a7 X (((((((((x)))))))))\r\n", "E:a7:Lists nested too deeply.");
}

static void test_pipelined_and_line_ends(void **state)
{
    (void)state;
    CHECK("a1 NOOP\r\na2 CAPABILITY\na3 LOGOUT\r\n", "C:a1 NOOP\nC:a2 CAPABILITY\nC:a3 LOGOUT");

    /* COMMAND stops consumption right after the LF; pipelined bytes stay with the caller */
    struct imap_parser *p = imap_parser_new();
    const char *in = "a1 NOOP\r\na2 NOOP\r\n";
    size_t used = 0;
    assert_int_equal(imap_parser_feed(p, (const unsigned char *)in, strlen(in), &used),
                     IMAP_PARSE_COMMAND);
    assert_int_equal(used, 9);
    /* not reset yet: the same result again, nothing consumed */
    assert_int_equal(imap_parser_feed(p, (const unsigned char *)in + 9, 9, &used),
                     IMAP_PARSE_COMMAND);
    assert_int_equal(used, 0);
    imap_parser_reset(p);
    assert_int_equal(imap_parser_command(p)->argc, 0);
    assert_int_equal(imap_parser_feed(p, (const unsigned char *)in + 9, 9, &used),
                     IMAP_PARSE_COMMAND);
    assert_string_equal(imap_parser_command(p)->tag, "a2");
    imap_parser_free(&p);

    /* LITERAL_CONTINUE stops right after the LF of the announcement */
    p = imap_parser_new();
    in = "a1 LOGIN {5}\r\nalice x\r\n";
    assert_int_equal(imap_parser_feed(p, (const unsigned char *)in, strlen(in), &used),
                     IMAP_PARSE_LITERAL_CONTINUE);
    assert_int_equal(used, 14);
    imap_parser_free(&p);
}

/* ---- bad commands ---- */

static void test_bad_lines(void **state)
{
    (void)state;
    CHECK("\r\na1 NOOP\r\n", "E:*:Empty command line.\nC:a1 NOOP");
    CHECK("\na1 NOOP\r\n", "E:*:Empty command line.\nC:a1 NOOP");
    CHECK(" NOOP\r\na1 NOOP\r\n", "E:*:Missing or invalid tag.\nC:a1 NOOP");
    CHECK("a1\r\n", "E:a1:Missing command.");
    CHECK("a1 \r\n", "E:a1:Missing command.");
    CHECK("a+1 NOOP\r\n", "E:*:Invalid character in tag.");
    CHECK("a\"1 NOOP\r\n", "E:*:Invalid character in tag.");
    CHECK("a1 NO(OP\r\n", "E:a1:Invalid character in command name.");
    CHECK("a1 NOOP \r\n", "E:a1:Missing argument.");
    CHECK("a1 X a  b\r\n", "E:a1:Invalid argument.");
    CHECK("a1 X \"a\"\"b\"\r\n", "E:a1:Missing space after argument.");
    CHECK("a1 X (a\r\n", "E:a1:Unbalanced parentheses.");
    CHECK("a1 X a)\r\n", "E:a1:Unbalanced parentheses.");
    CHECK("a1 X ( a)\r\n", "E:a1:Invalid argument.");
    CHECK("a1 NOOP\rX\r\na2 NOOP\r\n", "E:a1:CR not followed by LF.\nC:a2 NOOP");
}

static void test_bad_quoting(void **state)
{
    (void)state;
    CHECK("a1 LOGIN \"abc\r\na2 NOOP\r\n", "E:a1:Unterminated quoted string.\nC:a2 NOOP");
    CHECK("a1 LOGIN \"a\\bc\" x\r\na2 NOOP\r\n",
          "E:a1:Invalid escape in quoted string.\nC:a2 NOOP");
    CHECK("a1 LOGIN u\"ser\" x\r\n", "E:a1:Invalid character in atom.");
    CHECK("a1 LOGIN \"a\0b\" x\r\na2 NOOP\r\n", "E:a1:NUL byte in command.\nC:a2 NOOP");
    CHECK("a1 LOGIN a\0b c\r\n", "E:a1:NUL byte in command.");
    CHECK("a\0 NOOP\r\n", "E:*:NUL byte in command.");
}

static void test_bad_literals(void **state)
{
    (void)state;
    CHECK("a1 LOGIN {}\r\n", "E:a1:Invalid literal.");
    CHECK("a1 LOGIN {5a}\r\n", "E:a1:Invalid literal.");
    CHECK("a1 LOGIN {5} \r\n", "E:a1:Invalid literal.");
    CHECK("a1 LOGIN {99999999999999999999999999}\r\na2 NOOP\r\n",
          "E:a1:Literal too large.\nC:a2 NOOP");
    /* literal8 is not supported; the announced data is still skipped */
    CHECK("a1 LOGIN ~{5+}\r\nhello\r\na2 NOOP\r\n", "E:a1:Invalid character in atom.\nC:a2 NOOP");
}

static void test_literal_over_limit(void **state)
{
    (void)state;
    /* synchronising: no "+", no wait for data */
    CHECK("a1 LOGIN {8193}\r\na2 NOOP\r\n", "E:a1:Literal too large.\nC:a2 NOOP");
    CHECK("a1 LOGIN {8192}\r\n", "+");
    /* non-synchronising: the announced data is swallowed, whatever it looks like */
    size_t n = 8193;
    const char *head = "a1 LOGIN {8193+}\r\n", *tail = "\r\na2 NOOP\r\n";
    size_t len = strlen(head) + n + strlen(tail);
    char *in = malloc(len);
    memcpy(in, head, strlen(head));
    for (size_t i = 0; i < n; i++)
        in[strlen(head) + i] = "b1 LOGOUT\r\n"[i % 11];
    memcpy(in + strlen(head) + n, tail, strlen(tail));
    check_len(in, len, "E:a1:Literal too large.\nC:a2 NOOP");
    free(in);
}

static void test_bad_command_with_literal_plus_is_never_executed(void **state)
{
    (void)state;
    /* the data of a {n+} at the end of a bad line looks like a command: it must not run */
    CHECK("a1 LOGIN \"open {9+}\r\na1 LOGOUT\r\nb1 NOOP\r\n",
          "E:a1:Unterminated quoted string.\nC:b1 NOOP");
    CHECK("a1 BAD( {5+}\r\nx\r\n\r\n\r\nb1 NOOP\r\n",
          "E:a1:Invalid character in command name.\nC:b1 NOOP");
    /* the bad command goes on after the literal data, up to its own line end */
    CHECK("a1 X a) {3+}\r\nabc more {2+}\r\nzz\r\nb1 NOOP\r\n",
          "E:a1:Unbalanced parentheses.\nC:b1 NOOP");
    /* an error inside the announcement itself */
    CHECK("a1 LOGIN {9999+}\r\na1 LOGOUT\r\n", "E:a1:Literal too large.");
    /* a synchronising literal's data is never waited for: a client sending it anyway is
     * parsed as usual (it could have sent that command directly) */
    CHECK("a1 BAD( {9}\r\na1 LOGOUT\r\n", "E:a1:Invalid character in command name.\nC:a1 LOGOUT");
}

static char *repeat(const char *head, char fill, size_t n, const char *tail, size_t *len)
{
    *len = strlen(head) + n + strlen(tail);
    char *s = malloc(*len + 1);
    memcpy(s, head, strlen(head));
    memset(s + strlen(head), fill, n);
    memcpy(s + strlen(head) + n, tail, strlen(tail) + 1);
    return s;
}

static void test_line_limit(void **state)
{
    (void)state;
    size_t len;
    /* exactly IMAP_MAX_LINE bytes including the CRLF */
    char *in = repeat("a1 X ", 'x', IMAP_MAX_LINE - 7, "\r\n", &len);
    assert_int_equal(len, IMAP_MAX_LINE);
    char *out = run(in, len, SPLIT_WHOLE, 0);
    assert_int_equal(strncmp(out, "C:a1 X a:xxx", 12), 0);
    free(out);
    free(in);

    in = repeat("a1 X ", 'x', IMAP_MAX_LINE - 6, "\r\na2 NOOP\r\n", &len);
    check_len(in, len, "E:a1:Command line too long.\nC:a2 NOOP");
    free(in);

    /* literal data does not count towards the line */
    in = repeat("a1 LOGIN {8000+}\r\n", 'y', 8000, "\r\n", &len);
    out = run(in, len, SPLIT_WHOLE, 0);
    assert_int_equal(strncmp(out, "C:a1 LOGIN l:yyy", 16), 0);
    free(out);
    free(in);
}

static void test_fatal_after_huge_input(void **state)
{
    (void)state;
    size_t len;
    char *in = repeat("a1 X ", 'x', IMAP_MAX_LINE + IMAP_MAX_DISCARD + 10, "", &len);
    check_len(in, len, "E:a1:Command line too long.\nF:Too much invalid input.");
    free(in);
    /* just under the discard limit is fine */
    in = repeat("a1 X( ", 'x', IMAP_MAX_DISCARD - 100, "\r\na2 NOOP\r\n", &len);
    check_len(in, len, "E:a1:Invalid character in command name.\nC:a2 NOOP");
    free(in);
    /* a {n+} that cannot be skipped */
    CHECK("a1 X( {70000+}\r\n",
          "E:a1:Invalid character in command name.\nF:Literal too large to skip.");
    CHECK("a1 LOGIN {65537+}\r\n", "E:a1:Literal too large.\nF:Literal too large to skip.");

    /* a dead parser stays dead, even after a reset */
    struct imap_parser *p = imap_parser_new();
    const char *bad = "a1 X( {99999+}\r\n";
    size_t used;
    assert_int_equal(imap_parser_feed(p, (const unsigned char *)bad, strlen(bad), &used),
                     IMAP_PARSE_ERROR);
    assert_false(imap_parser_error_fatal(p));
    imap_parser_reset(p);
    bad += used;
    assert_int_equal(imap_parser_feed(p, (const unsigned char *)bad, strlen(bad), &used),
                     IMAP_PARSE_ERROR);
    assert_true(imap_parser_error_fatal(p));
    imap_parser_reset(p);
    assert_int_equal(imap_parser_feed(p, (const unsigned char *)"a2 NOOP\r\n", 9, &used),
                     IMAP_PARSE_ERROR);
    assert_int_equal(used, 0);
    assert_true(imap_parser_error_fatal(p));
    assert_string_equal(imap_parser_error_tag(p), "*");
    imap_parser_free(&p);
}

static void test_tag_and_argument_limits(void **state)
{
    (void)state;
    size_t len;
    char *in = repeat("", 't', IMAP_MAX_TAG, " NOOP\r\n", &len);
    char *out = run(in, len, SPLIT_WHOLE, 0);
    assert_int_equal(strncmp(out, "C:ttt", 5), 0);
    free(out);
    free(in);
    in = repeat("", 't', IMAP_MAX_TAG + 1, " NOOP\r\na2 NOOP\r\n", &len);
    check_len(in, len, "E:*:Tag too long.\nC:a2 NOOP");
    free(in);

    char many[IMAP_MAX_ARGS * 2 + 32] = "a1 X";
    for (int i = 0; i < IMAP_MAX_ARGS; i++)
        strcat(many, " a");
    strcat(many, "\r\n");
    out = run(many, strlen(many), SPLIT_WHOLE, 0);
    assert_int_equal(strncmp(out, "C:a1 X a:a", 10), 0);
    free(out);
    strcpy(many + strlen(many) - 2, " a\r\n");
    check_len(many, strlen(many), "E:a1:Too many arguments.");
}

static void test_storage_is_bounded(void **state)
{
    (void)state;
    /* two full literals fit (LOGIN); a third does not, and its data is skipped */
    size_t part = IMAP_MAX_LITERAL, len = 0;
    char *in = malloc(3 * (part + 32) + 32);
    len += (size_t)sprintf(in, "a1 X");
    for (int i = 0; i < 3; i++) {
        len += (size_t)sprintf(in + len, " {%zu+}\r\n", part);
        memset(in + len, 'a' + i, part);
        len += part;
    }
    len += (size_t)sprintf(in + len, "\r\na2 NOOP\r\n");
    check_len(in, len, "E:a1:Command too long.\nC:a2 NOOP");
    free(in);
}

/* RFC 2971's maxima: 30 fields, values of 1024 octets. The store grows while the command is
 * read (one byte at a time here, the most moves): every string must survive the moves. */
static void test_id_at_rfc2971_maxima(void **state)
{
    (void)state;
    char *in = malloc(IMAP_MAX_LINE);
    size_t len = (size_t)sprintf(in, "a1 ID (");
    for (int i = 0; i < 30; i++) {
        len += (size_t)sprintf(in + len, "%s\"field-%02d-%.21s\" \"", i ? " " : "", i,
                               "xxxxxxxxxxxxxxxxxxxxxxxxxx");
        memset(in + len, 'A' + i % 26, 1024);
        len += 1024;
        in[len++] = '"';
    }
    len += (size_t)sprintf(in + len, ")\r\n");
    assert_true(len > 30 * 1024 && len < IMAP_MAX_LINE);
    struct imap_parser *p = imap_parser_new();
    for (int round = 0; round < 2; round++) { /* the shrunk store serves the next commands */
        enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
        size_t used = 0;
        for (size_t i = 0; i < len && r == IMAP_PARSE_NEED_MORE; i++)
            r = imap_parser_feed(p, (const unsigned char *)in + i, 1, &used);
        assert_int_equal(r, IMAP_PARSE_COMMAND);
        const struct imap_command *cmd = imap_parser_command(p);
        assert_string_equal(cmd->tag, "a1");
        assert_string_equal(cmd->name, "ID");
        assert_int_equal(cmd->argc, 62);
        for (int i = 0; i < 30; i++) {
            const struct imap_arg *name = &cmd->args[1 + 2 * i], *value = &cmd->args[2 + 2 * i];
            assert_int_equal(name->len, 30);
            assert_int_equal(strncmp(name->str, "field-", 6), 0);
            assert_int_equal(value->len, 1024);
            for (size_t k = 0; k < 1024; k++)
                assert_int_equal(value->str[k], 'A' + i % 26);
        }
        imap_parser_reset(p);
        assert_int_equal(imap_parser_feed(p, (const unsigned char *)"a2 NOOP\r\n", 9, &used),
                         IMAP_PARSE_COMMAND);
        assert_string_equal(imap_parser_command(p)->name, "NOOP");
        imap_parser_reset(p);
    }
    imap_parser_free(&p);
    free(in);
}

static void test_imap_quote(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(imap_quote("alice", out, sizeof out), 7);
    assert_string_equal(out, "\"alice\"");
    assert_int_equal(imap_quote("a\"b\\c d", out, sizeof out), 11);
    assert_string_equal(out, "\"a\\\"b\\\\c d\"");
    assert_int_equal(imap_quote("", out, sizeof out), 2);
    assert_string_equal(out, "\"\"");
    assert_int_equal(imap_quote("a\r\nb", out, sizeof out), -1);
    assert_int_equal(imap_quote("j\xc3\xbcrgen", out, sizeof out), -1);
    assert_int_equal(imap_quote("tab\there", out, sizeof out), -1);
    assert_int_equal(imap_quote("abcd", out, 6), -1);
    assert_int_equal(imap_quote("abcd", out, 7), 6);

    /* what imap_quote writes parses back to the same string */
    const char *pw = "p\"{5}\\()%* x";
    assert_true(imap_quote(pw, out, sizeof out) > 0);
    char line[128];
    snprintf(line, sizeof line, "a1 LOGIN u %s\r\n", out);
    char *t = run(line, strlen(line), SPLIT_WHOLE, 0);
    assert_string_equal(t, "C:a1 LOGIN a:u q:p\"{5}\\()%* x");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_atom_and_quoted),
        cmocka_unit_test(test_login_literals),
        cmocka_unit_test(test_password_specials),
        cmocka_unit_test(test_authenticate_and_id),
        cmocka_unit_test(test_pipelined_and_line_ends),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_bad_quoting),
        cmocka_unit_test(test_bad_literals),
        cmocka_unit_test(test_literal_over_limit),
        cmocka_unit_test(test_bad_command_with_literal_plus_is_never_executed),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_fatal_after_huge_input),
        cmocka_unit_test(test_tag_and_argument_limits),
        cmocka_unit_test(test_storage_is_bounded),
        cmocka_unit_test(test_id_at_rfc2971_maxima),
        cmocka_unit_test(test_imap_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
