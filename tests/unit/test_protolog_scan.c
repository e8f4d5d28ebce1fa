/* The protocol log's scanner (src/worker/protolog_scan.c): redaction of logins and SASL
 * exchanges, content passed over after the login, line cutting and escaping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "protolog_scan.h"

static const char *const labels[PLOG_DIRS] = {"C:", "S:", "U>", "U<"};

/* Every emitted line as "LABEL text\n", in order. */
struct collected {
    char text[16384];
    size_t len;
};

static void collect(void *arg, enum plog_dir dir, const char *text, size_t len)
{
    struct collected *c = arg;
    for (size_t i = 0; i < len; i++) /* the scanner's promise: no control byte */
        assert_true((unsigned char)text[i] >= 0x20 && text[i] != 0x7f);
    int n = snprintf(c->text + c->len, sizeof c->text - c->len, "%s %.*s\n", labels[dir], (int)len,
                     text);
    assert_true(n > 0 && (size_t)n < sizeof c->text - c->len);
    c->len += (size_t)n;
}

static struct plog_scan sc;
static struct collected out;

static void start(enum mg_proto proto)
{
    memset(&out, 0, sizeof out);
    plog_scan_init(&sc, proto, collect, &out);
}

static void feed(enum plog_dir dir, const char *text)
{
    plog_scan_feed(&sc, dir, text, strlen(text));
}

/* One byte at a time: lines split anywhere must come out the same. */
static void feed_bytewise(enum plog_dir dir, const char *text)
{
    for (size_t i = 0; text[i]; i++)
        plog_scan_feed(&sc, dir, text + i, 1);
}

static void assert_logged(const char *expected)
{
    if (!strstr(out.text, expected))
        fail_msg("expected %s in:\n%s", expected, out.text);
}

static void assert_absent(const char *secret)
{
    if (strstr(out.text, secret))
        fail_msg("%s is in:\n%s", secret, out.text);
}

static void test_imap_login_is_redacted(void **state)
{
    (void)state;
    start(MG_PROTO_IMAP);
    feed(PLOG_CLIENT_IN, "a1 LOGIN alice \"s3cret pw\"\r\n");
    feed(PLOG_CLIENT_IN, "a2 login \"al\\\"ice x\" hunter2\r\n");
    feed_bytewise(PLOG_CLIENT_IN, "a3 LOGIN bob bytewise-secret\r\n");
    assert_logged("C: a1 LOGIN alice <redacted>\n");
    assert_logged("C: a2 login \"al\\\"ice x\" <redacted>\n");
    assert_logged("C: a3 LOGIN bob <redacted>\n");
    assert_absent("s3cret");
    assert_absent("hunter2");
    assert_absent("bytewise-secret");
}

static void test_imap_login_with_literals(void **state)
{
    (void)state;
    start(MG_PROTO_IMAP);
    /* the user as a literal, then the password quoted after it */
    feed(PLOG_CLIENT_IN, "a1 LOGIN {5}\r\n");
    feed(PLOG_CLIENT_OUT, "+ Ready\r\n");
    feed(PLOG_CLIENT_IN, "alice \"quoted-secret\"\r\n");
    /* the password as a literal */
    feed(PLOG_CLIENT_IN, "a2 LOGIN alice {14+}\r\nliteral-secret\r\n");
    feed(PLOG_CLIENT_IN, "a3 NOOP\r\n");
    assert_logged("C: a1 LOGIN {5}\n");
    assert_logged("C: a2 LOGIN alice <redacted>\n");
    assert_logged("C: a3 NOOP\n");
    assert_absent("quoted-secret");
    assert_absent("literal-secret");
}

static void test_imap_authenticate_until_the_tagged_answer(void **state)
{
    (void)state;
    start(MG_PROTO_IMAP);
    feed(PLOG_CLIENT_IN, "a1 AUTHENTICATE PLAIN\r\n");
    feed(PLOG_CLIENT_OUT, "+ \r\n");
    feed(PLOG_CLIENT_IN, "AGFsaWNlAHNlY3JldA==\r\n");
    feed(PLOG_CLIENT_OUT, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    feed(PLOG_CLIENT_IN, "a2 AUTHENTICATE PLAIN AGJvYgBpbml0aWFs\r\n");
    feed(PLOG_CLIENT_OUT, "a2 OK done\r\n");
    feed(PLOG_CLIENT_IN, "a3 CAPABILITY\r\n");
    assert_logged("C: a1 AUTHENTICATE PLAIN\nS: + \nC: <redacted>\n");
    assert_logged("C: a2 AUTHENTICATE PLAIN <redacted>\n");
    assert_logged("C: a3 CAPABILITY\n");
    assert_absent("AGFsaWNl");
    assert_absent("AGJvYgBp");
}

static void test_gateway_upstream_login_is_redacted(void **state)
{
    (void)state;
    start(MG_PROTO_IMAP);
    feed(PLOG_UPSTREAM_IN, "* OK ready\r\n");
    feed_bytewise(PLOG_UPSTREAM_OUT,
                  "A1 AUTHENTICATE XOAUTH2 dXNlcj1hAWF1dGg9QmVhcmVyIHRva2Vu\r\n");
    feed(PLOG_UPSTREAM_IN, "+ eyJzdGF0dXMiOiI0MDAifQ==\r\n");
    feed(PLOG_UPSTREAM_OUT, "\r\n");
    feed(PLOG_UPSTREAM_IN, "A1 NO failed\r\n");
    assert_logged("U< * OK ready\nU> A1 AUTHENTICATE XOAUTH2 <redacted>\n");
    assert_logged("U< + eyJzdGF0dXMiOiI0MDAifQ==\nU> <redacted>\nU< A1 NO failed\n");
    assert_absent("dXNlcj1h");
}

static void test_imap_relay_hides_literals_and_untagged_data(void **state)
{
    (void)state;
    start(MG_PROTO_IMAP);
    plog_scan_relay(&sc);
    feed(PLOG_CLIENT_IN, "a1 APPEND INBOX {19+}\r\nsecret body\r\n line2\r\n");
    feed(PLOG_CLIENT_IN, "a2 FETCH 1 BODY[]\r\n");
    feed(PLOG_UPSTREAM_IN, "a1 OK appended\r\n* 1 FETCH (BODY[] {16}\r\nfetched\r\n secret");
    feed_bytewise(PLOG_UPSTREAM_IN, ")\r\n* 1 FETCH (FLAGS (\\Seen))\r\na2 OK done\r\n");
    assert_logged("C: a1 APPEND INBOX {19+}\nC: a2 FETCH 1 BODY[]\n");
    assert_logged("S: a1 OK appended\nS: a2 OK done\n");
    assert_absent("secret");
    assert_absent("fetched");
    assert_absent("FETCH (");
}

static void test_relay_sasl_ends_with_the_upstream_answer(void **state)
{
    (void)state;
    start(MG_PROTO_IMAP);
    plog_scan_relay(&sc);
    feed(PLOG_CLIENT_IN, "a1 AUTHENTICATE PLAIN\r\n");
    feed(PLOG_UPSTREAM_IN, "+ \r\n");
    feed(PLOG_CLIENT_IN, "cmVsYXktc2VjcmV0\r\n");
    feed(PLOG_UPSTREAM_IN, "a1 NO [CLIENTBUG] already authenticated\r\n");
    feed(PLOG_CLIENT_IN, "a2 NOOP\r\n");
    assert_logged("C: a1 AUTHENTICATE PLAIN\nC: <redacted>\nS: a1 NO");
    assert_logged("C: a2 NOOP\n");
    assert_absent("cmVsYXkt");
}

static void test_imap_compress_ends_the_log(void **state)
{
    (void)state;
    start(MG_PROTO_IMAP);
    plog_scan_relay(&sc);
    feed(PLOG_CLIENT_IN, "z COMPRESS DEFLATE\r\nafter compression\r\n");
    assert_logged("C: z COMPRESS DEFLATE\n");
    assert_absent("after compression");
}

static void test_pop3(void **state)
{
    (void)state;
    start(MG_PROTO_POP3);
    feed(PLOG_CLIENT_IN, "USER dave\r\nPASS pop-secret\r\n");
    feed(PLOG_CLIENT_IN, "APOP dave c4c9334bac560ecc979e58001b3e22fb\r\n");
    feed(PLOG_CLIENT_IN, "AUTH PLAIN AGRhdmUAcG9wLXNlY3JldA==\r\n");
    feed(PLOG_CLIENT_OUT, "+OK\r\n");
    feed(PLOG_CLIENT_IN, "AUTH PLAIN\r\n");
    feed(PLOG_CLIENT_OUT, "+ \r\n");
    feed(PLOG_CLIENT_IN, "AGRhdmUAcG9w\r\n");
    assert_logged("C: USER dave\nC: PASS <redacted>\nC: APOP dave <redacted>\n");
    assert_logged("C: AUTH PLAIN <redacted>\n");
    assert_logged("C: AUTH PLAIN\nS: + \nC: <redacted>\n");
    assert_absent("pop-secret");
    assert_absent("c4c9334b");
    assert_absent("AGRhdmU");
}

static void test_pop3_relay_passes_over_multi_line_answers(void **state)
{
    (void)state;
    start(MG_PROTO_POP3);
    plog_scan_relay(&sc);
    /* pipelined: the answers are matched to the commands in order */
    feed(PLOG_CLIENT_IN, "STAT\r\nRETR 1\r\nLIST 1\r\nTOP 1 0\r\nLIST\r\n");
    feed(PLOG_UPSTREAM_IN, "+OK 1 20\r\n+OK 20 octets\r\n+OK fake status line\r\nbody\r\n");
    feed(PLOG_UPSTREAM_IN,
         "..dot\r\n.\r\n+OK 1 20\r\n-ERR no such message\r\n+OK\r\n1 20\r\n.\r\n");
    assert_logged("C: STAT\nC: RETR 1\nC: LIST 1\nC: TOP 1 0\nC: LIST\n");
    assert_logged("S: +OK 1 20\nS: +OK 20 octets\nS: <3 lines of content not logged>\n");
    assert_logged("S: +OK 1 20\nS: -ERR no such message\nS: +OK\nS: <1 lines of content");
    assert_absent("fake status");
    assert_absent("body");
}

static void test_smtp(void **state)
{
    (void)state;
    start(MG_PROTO_SMTP);
    feed(PLOG_CLIENT_IN, "EHLO client\r\nAUTH LOGIN\r\n");
    feed(PLOG_CLIENT_OUT, "334 VXNlcm5hbWU6\r\n");
    feed(PLOG_CLIENT_IN, "YWxpY2U=\r\n");
    feed(PLOG_CLIENT_OUT, "334 UGFzc3dvcmQ6\r\n");
    feed(PLOG_CLIENT_IN, "c210cC1zZWNyZXQ=\r\n");
    feed(PLOG_CLIENT_OUT, "235 2.7.0 ok\r\n");
    feed(PLOG_CLIENT_IN, "AUTH PLAIN AGFsaWNlAHNtdHA=\r\nNOOP\r\n");
    assert_logged("C: EHLO client\nC: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: <redacted>\n");
    assert_logged("S: 334 UGFzc3dvcmQ6\nC: <redacted>\nS: 235 2.7.0 ok\n");
    assert_logged("C: AUTH PLAIN <redacted>\nC: <redacted>\n"); /* NOOP: no answer yet */
    assert_absent("YWxpY2U=");
    assert_absent("c210cC1z");
}

static void test_smtp_relay_passes_over_data_and_bdat(void **state)
{
    (void)state;
    start(MG_PROTO_SMTP);
    plog_scan_relay(&sc);
    feed(PLOG_CLIENT_IN, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    feed(PLOG_UPSTREAM_IN, "250 ok\r\n250 ok\r\n354 go ahead\r\n");
    feed(PLOG_CLIENT_IN, "Subject: secret subject\r\n\r\nQUIT\r\n..\r\n.\r\nRSET\r\n");
    feed(PLOG_CLIENT_IN, "BDAT 12 LAST\r\nchunk secretNOOP\r\n");
    feed(PLOG_UPSTREAM_IN, "250-first\r\n250 queued\r\n");
    assert_logged("C: MAIL FROM:<a@b>\nC: RCPT TO:<c@d>\nC: DATA\n");
    assert_logged("S: 354 go ahead\nC: <4 lines of content not logged>\nC: RSET\n");
    assert_logged("C: BDAT 12 LAST\nC: NOOP\n");
    assert_logged("S: 250-first\nS: 250 queued\n");
    assert_absent("secret");
}

static void test_long_lines_are_cut_and_literals_still_found(void **state)
{
    (void)state;
    start(MG_PROTO_IMAP);
    plog_scan_relay(&sc);
    char line[3000];
    memset(line, 'x', sizeof line);
    memcpy(line, "a1 SEARCH TEXT ", 15);
    snprintf(line + 2000, sizeof line - 2000, " {9}\r\nhidden-it\r\n");
    feed(PLOG_CLIENT_IN, line);
    feed(PLOG_CLIENT_IN, "a2 NOOP\r\n");
    assert_logged(" <truncated>\n");
    assert_logged("C: a2 NOOP\n");
    assert_absent("hidden-it");
    const char *first_end = strchr(out.text, '\n');
    assert_true((size_t)(first_end - out.text) <= 3 + PLOG_LINE_MAX + 20);
}

static void test_control_bytes_are_escaped(void **state)
{
    (void)state;
    start(MG_PROTO_POP3);
    plog_scan_feed(&sc, PLOG_CLIENT_IN, "NOOP \x01\x7f\t\0x\r\n", 12);
    assert_logged("C: NOOP \\x01\\x7f\\x09\\x00x\n");
    char escaped[PLOG_TEXT_MAX];
    assert_int_equal(plog_escape("a\rb", 3, escaped, sizeof escaped), 6);
    assert_memory_equal(escaped, "a\\x0db", 6);
}

static void test_literal_at_end(void **state)
{
    (void)state;
    assert_int_equal(plog_literal_at_end("a {12}", 6), 12);
    assert_int_equal(plog_literal_at_end("{0}", 3), 0);
    assert_int_equal(plog_literal_at_end("x {5+}", 6), 5);
    assert_int_equal(plog_literal_at_end("x ~{7}", 6), 7);
    assert_int_equal(plog_literal_at_end("x {}", 4), -1);
    assert_int_equal(plog_literal_at_end("x {a}", 5), -1);
    assert_int_equal(plog_literal_at_end("x 5}", 4), -1);
    assert_int_equal(plog_literal_at_end("x {99999999999999999}", 21), -1);
    assert_true(plog_literal_at_end("x {999999999999}", 16) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imap_login_is_redacted),
        cmocka_unit_test(test_imap_login_with_literals),
        cmocka_unit_test(test_imap_authenticate_until_the_tagged_answer),
        cmocka_unit_test(test_gateway_upstream_login_is_redacted),
        cmocka_unit_test(test_imap_relay_hides_literals_and_untagged_data),
        cmocka_unit_test(test_relay_sasl_ends_with_the_upstream_answer),
        cmocka_unit_test(test_imap_compress_ends_the_log),
        cmocka_unit_test(test_pop3),
        cmocka_unit_test(test_pop3_relay_passes_over_multi_line_answers),
        cmocka_unit_test(test_smtp),
        cmocka_unit_test(test_smtp_relay_passes_over_data_and_bdat),
        cmocka_unit_test(test_long_lines_are_cut_and_literals_still_found),
        cmocka_unit_test(test_control_bytes_are_escaped),
        cmocka_unit_test(test_literal_at_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
