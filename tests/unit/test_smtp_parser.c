/* SMTP grammar: commands, AUTH/BDAT arguments, replies (multi-line, split, inconsistent),
 * enhanced status codes, EHLO extension filtering, intersection and formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_parser.h"

static int parse(const char *line, struct smtp_command *cmd)
{
    return smtp_command_parse(line, strlen(line), cmd);
}

static void test_commands(void **state)
{
    (void)state;
    struct smtp_command c;
    assert_int_equal(parse("EHLO client.example", &c), 0);
    assert_int_equal(c.verb, SMTP_EHLO);
    assert_int_equal(c.arg_len, strlen("client.example"));
    assert_memory_equal(c.arg, "client.example", c.arg_len);

    assert_int_equal(parse("ehlo   x  ", &c), 0);
    assert_int_equal(c.verb, SMTP_EHLO);
    assert_int_equal(c.arg_len, 1);

    assert_int_equal(parse("StartTLS", &c), 0);
    assert_int_equal(c.verb, SMTP_STARTTLS);
    assert_int_equal(c.arg_len, 0);
    assert_string_equal(c.arg, "");

    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=10", &c), 0);
    assert_int_equal(c.verb, SMTP_MAIL);
    assert_int_equal(c.arg_len, strlen("FROM:<a@b> SIZE=10"));

    assert_int_equal(parse("RCPT TO:<jörg@example.de>", &c), 0); /* SMTPUTF8 */
    assert_int_equal(c.verb, SMTP_RCPT);

    const struct {
        const char *line;
        enum smtp_verb verb;
    } verbs[] = {
        {"HELO x", SMTP_HELO},      {"AUTH PLAIN", SMTP_AUTH}, {"DATA", SMTP_DATA},
        {"BDAT 1 LAST", SMTP_BDAT}, {"RSET", SMTP_RSET},       {"NOOP", SMTP_NOOP},
        {"QUIT", SMTP_QUIT},        {"HELP", SMTP_HELP},       {"VRFY x", SMTP_VRFY},
        {"EXPN x", SMTP_EXPN},      {"ETRN x", SMTP_ETRN},     {"XYZZY", SMTP_UNKNOWN},
        {"MAILX", SMTP_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        assert_int_equal(parse(verbs[i].line, &c), 0);
        assert_int_equal(c.verb, verbs[i].verb);
    }
}

static void test_bad_commands(void **state)
{
    (void)state;
    struct smtp_command c;
    assert_int_equal(smtp_command_parse("", 0, &c), -1);
    assert_int_equal(parse(" EHLO x", &c), -1);
    assert_int_equal(parse("MAIL:FROM", &c), -1);
    assert_int_equal(parse("123", &c), -1);
    assert_int_equal(parse("EHLO\x01x", &c), -1);
    assert_int_equal(parse("ABCDEFGHIJK", &c), -1); /* verb too long */
    assert_int_equal(smtp_command_parse("EHLO a\0b", 8, &c), -1);
    assert_int_equal(smtp_command_parse("EHLO a\rb", 8, &c), -1);
    char *big = malloc(SMTP_LINE_MAX + 2);
    memset(big, 'A', SMTP_LINE_MAX + 1);
    memcpy(big, "AUTH ", 5);
    assert_int_equal(smtp_command_parse(big, SMTP_LINE_MAX + 1, &c), -1);
    assert_int_equal(smtp_command_parse(big, SMTP_LINE_MAX, &c), 0);
    free(big);
}

static void test_auth_split(void **state)
{
    (void)state;
    const char *m, *ir;
    size_t ml, il;
    assert_int_equal(smtp_auth_split("PLAIN", 5, &m, &ml, &ir, &il), 0);
    assert_int_equal(ml, 5);
    assert_int_equal(il, 0);
    assert_int_equal(smtp_auth_split("PLAIN AGFsaWNlAHB3", 18, &m, &ml, &ir, &il), 0);
    assert_int_equal(il, 12);
    assert_memory_equal(ir, "AGFsaWNlAHB3", 12);
    assert_int_equal(smtp_auth_split("login =", 7, &m, &ml, &ir, &il), 0);
    assert_int_equal(il, 1);
    assert_int_equal(smtp_auth_split("", 0, &m, &ml, &ir, &il), -1);
    assert_int_equal(smtp_auth_split("PLAIN a b", 9, &m, &ml, &ir, &il), -1);
    assert_int_equal(smtp_auth_split("PL@IN", 5, &m, &ml, &ir, &il), -1);
    assert_int_equal(smtp_auth_split("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26, &m, &ml, &ir, &il), -1);
}

static void test_bdat(void **state)
{
    (void)state;
    uint64_t n;
    int last;
    assert_int_equal(smtp_bdat_parse("100", 3, &n, &last), 0);
    assert_int_equal(n, 100);
    assert_int_equal(last, 0);
    assert_int_equal(smtp_bdat_parse("0 last", 6, &n, &last), 0);
    assert_int_equal(n, 0);
    assert_int_equal(last, 1);
    assert_int_equal(smtp_bdat_parse("", 0, &n, &last), -1);
    assert_int_equal(smtp_bdat_parse("x", 1, &n, &last), -1);
    assert_int_equal(smtp_bdat_parse("1 FIRST", 7, &n, &last), -1);
    assert_int_equal(smtp_bdat_parse("1 LAST x", 8, &n, &last), -1);
    assert_int_equal(smtp_bdat_parse("99999999999999999999", 20, &n, &last), -1);
}

static enum smtp_reply_status feed(struct smtp_reply *r, const char *line)
{
    return smtp_reply_feed(r, line, strlen(line));
}

static void test_reply_lines(void **state)
{
    (void)state;
    struct smtp_reply_line l;
    assert_int_equal(smtp_reply_line_parse("250", 3, &l), 0);
    assert_int_equal(l.code, 250);
    assert_true(l.last);
    assert_int_equal(smtp_reply_line_parse("250-x", 5, &l), 0);
    assert_false(l.last);
    assert_int_equal(smtp_reply_line_parse("334 ", 4, &l), 0);
    assert_int_equal(l.text_len, 0);
    assert_int_equal(smtp_reply_line_parse("25", 2, &l), -1);
    assert_int_equal(smtp_reply_line_parse("2500", 4, &l), -1);
    assert_int_equal(smtp_reply_line_parse("150 x", 5, &l), -1);
    assert_int_equal(smtp_reply_line_parse("260 x", 5, &l), -1);
    assert_int_equal(smtp_reply_line_parse("25x x", 5, &l), -1);
    assert_int_equal(smtp_reply_line_parse("250 a\0b", 7, &l), -1);
}

static void test_multiline_reply(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250-mx.example Hello"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250-SIZE 1000"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250 8BITMIME"), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_int_equal(r.lines, 3);
    assert_string_equal(r.text, "mx.example Hello\nSIZE 1000\n8BITMIME");
    assert_int_equal(feed(&r, "250 again"), SMTP_REPLY_ERROR); /* after the last line */

    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250-a"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "251 b"), SMTP_REPLY_ERROR); /* inconsistent codes */

    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250-a"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "garbage"), SMTP_REPLY_ERROR);

    smtp_reply_init(&r);
    for (int i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
        assert_int_equal(feed(&r, "250-x"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250-x"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250 x"), SMTP_REPLY_ERROR); /* too many lines */
}

static void test_long_reply_text(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    char line[3000];
    memset(line, 'x', sizeof line);
    memcpy(line, "250-", 4);
    assert_int_equal(smtp_reply_feed(&r, line, sizeof line), SMTP_REPLY_MORE);
    line[3] = ' ';
    assert_int_equal(smtp_reply_feed(&r, line, sizeof line), SMTP_REPLY_DONE);
    assert_int_equal(r.text_len, SMTP_REPLY_TEXT_MAX);
    assert_true(r.truncated);
    assert_int_equal(strlen(r.text), SMTP_REPLY_TEXT_MAX);
}

static void test_enhanced(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                              "is disabled for the Tenant."),
                     SMTP_REPLY_DONE);
    assert_string_equal(r.enhanced, "5.7.139");
    assert_int_equal(smtp_enhanced_code("5.7.3 x", 7), 5);
    assert_int_equal(smtp_enhanced_code("2.0.0", 5), 5);
    assert_int_equal(smtp_enhanced_code("3.0.0 x", 7), 0);
    assert_int_equal(smtp_enhanced_code("5.7.1234 x", 10), 0);
    assert_int_equal(smtp_enhanced_code("5.7.x", 5), 0);
    assert_int_equal(smtp_enhanced_code("5..1 x", 6), 0);
    assert_int_equal(smtp_enhanced_code("5.7.1x", 6), 0);
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "334 "), SMTP_REPLY_DONE);
    assert_string_equal(r.enhanced, "");
}

static const char EXCHANGE_EHLO[] = "SN4PR0501CA0056.outlook.office365.com Hello [1.2.3.4]\n"
                                    "SIZE 157286400\n"
                                    "PIPELINING\n"
                                    "DSN\n"
                                    "ENHANCEDSTATUSCODES\n"
                                    "AUTH LOGIN XOAUTH2\n"
                                    "8BITMIME\n"
                                    "BINARYMIME\n"
                                    "CHUNKING\n"
                                    "SMTPUTF8";

static void test_ehlo_parse(void **state)
{
    (void)state;
    struct smtp_ehlo_caps c;
    assert_int_equal(smtp_ehlo_parse(EXCHANGE_EHLO, strlen(EXCHANGE_EHLO), &c), 0);
    assert_int_equal(c.ext, SMTP_EXT_SIZE | SMTP_EXT_PIPELINING | SMTP_EXT_DSN |
                                SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_8BITMIME |
                                SMTP_EXT_BINARYMIME | SMTP_EXT_CHUNKING | SMTP_EXT_SMTPUTF8);
    assert_int_equal(c.size, 157286400);
    assert_int_equal(c.auth, SMTP_AUTH_XOAUTH2);
    assert_false(c.starttls);

    const char before_tls[] = "mx\nSTARTTLS\nauth=login plain\nXCLIENT ADDR NAME\nX-EXPS GSSAPI\n"
                              "BURL imap\nVRFY\nSIZE abc\nDELIVERBY 60\nsize";
    assert_int_equal(smtp_ehlo_parse(before_tls, strlen(before_tls), &c), 0);
    assert_true(c.starttls);
    assert_int_equal(c.auth, 0);
    /* "SIZE abc" is malformed and dropped, the later bare "size" is fine */
    assert_int_equal(c.ext, SMTP_EXT_DELIVERBY | SMTP_EXT_SIZE);
    assert_int_equal(c.size, 0);
    assert_int_equal(c.deliverby, 60);

    const char old_auth[] = "mx\nAUTH=PLAIN XOAUTH2";
    assert_int_equal(smtp_ehlo_parse(old_auth, strlen(old_auth), &c), 0);
    assert_int_equal(c.auth, SMTP_AUTH_XOAUTH2);
    assert_int_equal(c.ext, 0);
    const char both[] = "mx\nAUTH PLAIN OAUTHBEARER\nAUTH=xoauth2";
    assert_int_equal(smtp_ehlo_parse(both, strlen(both), &c), 0);
    assert_int_equal(c.auth, SMTP_AUTH_XOAUTH2 | SMTP_AUTH_OAUTHBEARER);
    const char bearer[] = "mx\nAUTH OAUTHBEARERX OAUTHBEARER";
    assert_int_equal(smtp_ehlo_parse(bearer, strlen(bearer), &c), 0);
    assert_int_equal(c.auth, SMTP_AUTH_OAUTHBEARER);
    assert_int_equal(smtp_ehlo_parse("", 0, &c), -1);
    assert_int_equal(smtp_ehlo_parse("only.the.name", 13, &c), 0);
    assert_int_equal(c.ext, 0);
}

static void test_ehlo_format(void **state)
{
    (void)state;
    struct smtp_ehlo_caps c;
    smtp_ehlo_parse(EXCHANGE_EHLO, strlen(EXCHANGE_EHLO), &c);
    char out[512];
    long n = smtp_ehlo_format(&c, out, sizeof out);
    assert_true(n > 0);
    assert_string_equal(out, "250-SIZE 157286400\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
                             "250-PIPELINING\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-DSN\r\n"
                             "250-ENHANCEDSTATUSCODES\r\n");
    assert_null(strstr(out, "AUTH"));
    assert_int_equal(smtp_ehlo_format(&c, out, 20), -1);

    memset(&c, 0, sizeof c);
    assert_int_equal(smtp_ehlo_format(&c, out, sizeof out), 0);
    assert_string_equal(out, "");
    c.ext = SMTP_EXT_BINARYMIME | SMTP_EXT_SIZE; /* BINARYMIME without CHUNKING: dropped */
    smtp_ehlo_format(&c, out, sizeof out);
    assert_string_equal(out, "250-SIZE\r\n");
}

static void test_ehlo_intersect(void **state)
{
    (void)state;
    struct smtp_ehlo_caps a = {.ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_PIPELINING,
                               .size = 1000,
                               .auth = SMTP_AUTH_XOAUTH2};
    struct smtp_ehlo_caps b = {.ext = SMTP_EXT_SIZE | SMTP_EXT_PIPELINING | SMTP_EXT_DELIVERBY,
                               .size = 500,
                               .deliverby = 30};
    smtp_ehlo_intersect(&a, &b);
    assert_int_equal(a.ext, SMTP_EXT_SIZE | SMTP_EXT_PIPELINING);
    assert_int_equal(a.size, 500);
    assert_int_equal(a.deliverby, 0);
    assert_int_equal(a.auth, 0);

    struct smtp_ehlo_caps c = {.ext = SMTP_EXT_SIZE, .size = 0};
    struct smtp_ehlo_caps d = {.ext = SMTP_EXT_SIZE, .size = 700};
    smtp_ehlo_intersect(&c, &d);
    assert_int_equal(c.size, 700); /* no limit vs 700: 700 */
    struct smtp_ehlo_caps e = {.ext = SMTP_EXT_SIZE, .size = 0};
    smtp_ehlo_intersect(&d, &e);
    assert_int_equal(d.size, 700);
    struct smtp_ehlo_caps f = {.ext = SMTP_EXT_DELIVERBY, .deliverby = 10};
    struct smtp_ehlo_caps g = {.ext = SMTP_EXT_DELIVERBY, .deliverby = 60};
    smtp_ehlo_intersect(&f, &g);
    assert_int_equal(f.deliverby, 60);
}

/* A multi-line reply arriving in pieces: the caller re-assembles lines, the accumulator keeps
 * its state between feeds. */
static void test_reply_split_feed(void **state)
{
    (void)state;
    const char *wire = "250-mx\r\n250-SIZE 10\r\n250 SMTPUTF8\r\n";
    for (size_t cut = 1; cut < strlen(wire); cut++) {
        struct smtp_reply r;
        smtp_reply_init(&r);
        char buf[64];
        size_t have = 0;
        enum smtp_reply_status st = SMTP_REPLY_MORE;
        for (size_t i = 0; i < strlen(wire); i += cut) {
            size_t n = strlen(wire) - i < cut ? strlen(wire) - i : cut;
            memcpy(buf + have, wire + i, n);
            have += n;
            char *eol;
            while ((eol = memchr(buf, '\n', have)) != NULL) {
                size_t len = (size_t)(eol - buf);
                st = smtp_reply_feed(&r, buf, len > 0 && buf[len - 1] == '\r' ? len - 1 : len);
                assert_int_not_equal(st, SMTP_REPLY_ERROR);
                memmove(buf, eol + 1, have - len - 1);
                have -= len + 1;
            }
        }
        assert_int_equal(st, SMTP_REPLY_DONE);
        struct smtp_ehlo_caps c;
        smtp_ehlo_parse(r.text, r.text_len, &c);
        assert_int_equal(c.ext, SMTP_EXT_SIZE | SMTP_EXT_SMTPUTF8);
        assert_int_equal(c.size, 10);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),        cmocka_unit_test(test_bad_commands),
        cmocka_unit_test(test_auth_split),      cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_reply_lines),     cmocka_unit_test(test_multiline_reply),
        cmocka_unit_test(test_long_reply_text), cmocka_unit_test(test_enhanced),
        cmocka_unit_test(test_ehlo_parse),      cmocka_unit_test(test_ehlo_format),
        cmocka_unit_test(test_ehlo_intersect),  cmocka_unit_test(test_reply_split_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
