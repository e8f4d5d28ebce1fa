#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pop3_parser.h"

static enum pop3_parse_status cmd(const char *line, struct pop3_command *c)
{
    return pop3_command_parse(line, strlen(line), c);
}

static void assert_arg(const struct pop3_command *c, size_t i, const char *expected)
{
    assert_true(i < c->argc);
    assert_int_equal(c->args[i].len, strlen(expected));
    assert_memory_equal(c->args[i].str, expected, c->args[i].len);
}

static void test_simple_commands(void **state)
{
    (void)state;
    struct pop3_command c;
    assert_int_equal(cmd("CAPA", &c), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "CAPA");
    assert_int_equal(c.argc, 0);

    assert_int_equal(cmd("quit", &c), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "QUIT");

    assert_int_equal(cmd("uSeR alice", &c), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "USER");
    assert_int_equal(c.argc, 1);
    assert_arg(&c, 0, "alice");

    assert_int_equal(cmd("TOP 1 10", &c), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "TOP");
    assert_int_equal(c.argc, 2);
    assert_arg(&c, 0, "1");
    assert_arg(&c, 1, "10");

    /* Lenient about extra and trailing spaces. */
    assert_int_equal(cmd("CAPA ", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 0);
    assert_int_equal(cmd("USER  bob  ", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 1);
    assert_arg(&c, 0, "bob");

    /* UTF-8 user names are fine. */
    assert_int_equal(cmd("USER j\xc3\xb6rg", &c), POP3_PARSE_OK);
    assert_arg(&c, 0, "j\xc3\xb6rg");
}

static void test_pass_takes_rest_of_line(void **state)
{
    (void)state;
    struct pop3_command c;
    assert_int_equal(cmd("PASS secret", &c), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "PASS");
    assert_int_equal(c.argc, 1);
    assert_arg(&c, 0, "secret");

    assert_int_equal(cmd("pass  two words and more ", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 1);
    assert_arg(&c, 0, " two words and more ");

    assert_int_equal(cmd("PASS tab\there", &c), POP3_PARSE_OK);
    assert_arg(&c, 0, "tab\there");

    assert_int_equal(cmd("PASS", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 0);
    assert_int_equal(cmd("PASS ", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 1);
    assert_arg(&c, 0, "");

    /* Longer than 40 characters is fine for a password. */
    char line[200] = "PASS ";
    memset(line + 5, 'p', 150);
    line[155] = '\0';
    assert_int_equal(cmd(line, &c), POP3_PARSE_OK);
    assert_int_equal(c.args[0].len, 150);

    assert_int_equal(pop3_command_parse("PASS a\0b", 8, &c), POP3_PARSE_BAD_CHAR);
    assert_int_equal(cmd("PASS a\rb", &c), POP3_PARSE_BAD_CHAR);
    assert_int_equal(cmd("PASS a\x01", &c), POP3_PARSE_BAD_CHAR);
}

static void test_auth(void **state)
{
    (void)state;
    struct pop3_command c;
    assert_int_equal(cmd("AUTH", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 0);
    assert_int_equal(cmd("AUTH PLAIN", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 1);
    assert_arg(&c, 0, "PLAIN");
    assert_int_equal(cmd("auth plain AGFsaWNlAHNlY3JldA==", &c), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "AUTH");
    assert_int_equal(c.argc, 2);
    assert_arg(&c, 1, "AGFsaWNlAHNlY3JldA==");
    assert_int_equal(cmd("AUTH PLAIN =", &c), POP3_PARSE_OK);
    assert_arg(&c, 1, "=");
    assert_int_equal(cmd("AUTH PLAIN a b", &c), POP3_PARSE_TOO_MANY_ARGS);

    /* The initial response may be long; the mechanism may not. */
    static char line[POP3_MAX_LINE + 64];
    size_t n = 6000;
    strcpy(line, "AUTH PLAIN ");
    memset(line + 11, 'A', n);
    line[11 + n] = '\0';
    assert_int_equal(cmd(line, &c), POP3_PARSE_OK);
    assert_int_equal(c.args[1].len, n);
    strcpy(line, "AUTH ");
    memset(line + 5, 'M', 41);
    line[46] = '\0';
    assert_int_equal(cmd(line, &c), POP3_PARSE_ARG_TOO_LONG);
}

static void test_limits(void **state)
{
    (void)state;
    struct pop3_command c;
    char line[POP3_MAX_LINE + 10];

    /* 40 characters per argument (RFC 2449). */
    strcpy(line, "USER ");
    memset(line + 5, 'u', 40);
    line[45] = '\0';
    assert_int_equal(cmd(line, &c), POP3_PARSE_OK);
    line[45] = 'u';
    line[46] = '\0';
    assert_int_equal(cmd(line, &c), POP3_PARSE_ARG_TOO_LONG);

    assert_int_equal(cmd("LIST 1 2 3 4", &c), POP3_PARSE_OK);
    assert_int_equal(c.argc, 4);
    assert_int_equal(cmd("LIST 1 2 3 4 5", &c), POP3_PARSE_TOO_MANY_ARGS);

    /* The whole line. */
    memset(line, 'A', sizeof line);
    memcpy(line, "PASS ", 5);
    assert_int_equal(pop3_command_parse(line, POP3_MAX_LINE, &c), POP3_PARSE_OK);
    assert_int_equal(pop3_command_parse(line, POP3_MAX_LINE + 1, &c), POP3_PARSE_LINE_TOO_LONG);
}

static void test_garbage(void **state)
{
    (void)state;
    struct pop3_command c;
    assert_int_equal(cmd("", &c), POP3_PARSE_EMPTY);
    assert_int_equal(cmd("   ", &c), POP3_PARSE_EMPTY);
    assert_int_equal(cmd(" CAPA", &c), POP3_PARSE_BAD_KEYWORD);
    assert_int_equal(cmd("AB", &c), POP3_PARSE_BAD_KEYWORD);
    assert_int_equal(cmd("ABCDE", &c), POP3_PARSE_BAD_KEYWORD);
    assert_int_equal(cmd("CAP1", &c), POP3_PARSE_BAD_KEYWORD);
    assert_int_equal(cmd("GET / HTTP/1.1", &c), POP3_PARSE_OK); /* a keyword; dispatch rejects */
    assert_string_equal(c.keyword, "GET");
    assert_int_equal(cmd("\xc3\xa4\xc3\xa4", &c), POP3_PARSE_BAD_KEYWORD);
    assert_int_equal(cmd("USER a\tb", &c), POP3_PARSE_BAD_CHAR);
    assert_int_equal(cmd("USER a\x7f", &c), POP3_PARSE_BAD_CHAR);
    assert_int_equal(cmd("USER a\nb", &c), POP3_PARSE_BAD_CHAR);
    assert_int_equal(pop3_command_parse("USER a\0b", 8, &c), POP3_PARSE_BAD_CHAR);
    assert_int_equal(pop3_command_parse("CA\0A", 4, &c), POP3_PARSE_BAD_CHAR);
    for (int st = POP3_PARSE_OK; st <= POP3_PARSE_LINE_TOO_LONG; st++)
        assert_non_null(pop3_parse_status_text((enum pop3_parse_status)st));
}

/* ---- replies ---- */

static int reply(const char *line, struct pop3_reply *r)
{
    return pop3_reply_parse(line, strlen(line), r);
}

static void assert_text(const struct pop3_reply *r, const char *expected)
{
    assert_int_equal(r->text_len, strlen(expected));
    assert_memory_equal(r->text, expected, r->text_len);
}

static void test_reply_status(void **state)
{
    (void)state;
    struct pop3_reply r;
    assert_int_equal(reply("+OK Dovecot ready.", &r), 0);
    assert_int_equal(r.kind, POP3_REPLY_OK);
    assert_string_equal(r.code, "");
    assert_text(&r, "Dovecot ready.");

    assert_int_equal(reply("+OK", &r), 0);
    assert_int_equal(r.kind, POP3_REPLY_OK);
    assert_text(&r, "");

    assert_int_equal(reply("+ok fine", &r), 0);
    assert_int_equal(r.kind, POP3_REPLY_OK);

    assert_int_equal(reply("-ERR Authentication failure: unknown user name or bad password.", &r),
                     0);
    assert_int_equal(r.kind, POP3_REPLY_ERR);
    assert_text(&r, "Authentication failure: unknown user name or bad password.");

    assert_int_equal(reply("-ERR", &r), 0);
    assert_int_equal(r.kind, POP3_REPLY_ERR);
    assert_text(&r, "");
}

static void test_reply_continuation(void **state)
{
    (void)state;
    struct pop3_reply r;
    assert_int_equal(reply("+ ", &r), 0);
    assert_int_equal(r.kind, POP3_REPLY_CONTINUATION);
    assert_text(&r, "");
    assert_int_equal(reply("+", &r), 0);
    assert_int_equal(r.kind, POP3_REPLY_CONTINUATION);
    assert_text(&r, "");
    assert_int_equal(reply("+ eyJzdGF0dXMiOiI0MDEifQ==", &r), 0);
    assert_int_equal(r.kind, POP3_REPLY_CONTINUATION);
    assert_text(&r, "eyJzdGF0dXMiOiI0MDEifQ==");
}

static void test_reply_codes(void **state)
{
    (void)state;
    struct pop3_reply r;
    assert_int_equal(reply("-ERR [SYS/TEMP] Try later", &r), 0);
    assert_string_equal(r.code, "SYS/TEMP");
    assert_text(&r, "Try later");
    assert_true(pop3_reply_code_is(&r, "SYS/TEMP"));
    assert_true(pop3_reply_code_is(&r, "SYS"));
    assert_false(pop3_reply_code_is(&r, "SY"));
    assert_false(pop3_reply_code_is(&r, "AUTH"));

    assert_int_equal(reply("-ERR [auth] Authentication failed.", &r), 0);
    assert_string_equal(r.code, "AUTH");
    assert_true(pop3_reply_code_is(&r, "AUTH"));

    assert_int_equal(reply("-ERR [IN-USE]", &r), 0);
    assert_string_equal(r.code, "IN-USE");
    assert_text(&r, "");

    /* Not codes: stays text. */
    const char *not_codes[] = {"-ERR [SYS/TEMP Try", "-ERR []",      "-ERR [SYS/] x",
                               "-ERR [/X] x",        "-ERR [A B] x", "-ERR x [AUTH]"};
    for (size_t i = 0; i < sizeof not_codes / sizeof not_codes[0]; i++) {
        assert_int_equal(reply(not_codes[i], &r), 0);
        assert_string_equal(r.code, "");
        assert_text(&r, not_codes[i] + 5);
    }

    char line[200] = "-ERR [";
    memset(line + 6, 'C', 63);
    strcpy(line + 69, "] t");
    assert_int_equal(reply(line, &r), 0);
    assert_int_equal(strlen(r.code), 63);
    assert_text(&r, "t");
    memset(line + 6, 'C', 64);
    strcpy(line + 70, "] t");
    assert_int_equal(reply(line, &r), 0);
    assert_string_equal(r.code, "");
}

static void test_reply_garbage(void **state)
{
    (void)state;
    struct pop3_reply r;
    assert_int_equal(reply("", &r), -1);
    assert_int_equal(reply("* OK IMAP", &r), -1);
    assert_int_equal(reply("+OKAY", &r), -1);
    assert_int_equal(reply("-ERROR x", &r), -1);
    assert_int_equal(reply("+x", &r), -1);
    assert_int_equal(reply("220 smtp", &r), -1);
    assert_int_equal(pop3_reply_parse("+OK a\0b", 7, &r), -1);
    assert_int_equal(reply("+OK a\rb", &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_commands),
        cmocka_unit_test(test_pass_takes_rest_of_line),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_reply_status),
        cmocka_unit_test(test_reply_continuation),
        cmocka_unit_test(test_reply_codes),
        cmocka_unit_test(test_reply_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
