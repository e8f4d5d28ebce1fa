#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "imap_reply.h"

static int parse(const char *line, struct imap_reply *r)
{
    return imap_reply_parse(line, strlen(line), r);
}

static void assert_span(const char *p, size_t len, const char *expected)
{
    assert_non_null(p);
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(p, expected, len);
}

static void test_greeting_with_capabilities(void **state)
{
    (void)state;
    struct imap_reply r;
    assert_int_equal(parse("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] Dovecot ready.", &r),
                     0);
    assert_int_equal(r.kind, IMAP_REPLY_UNTAGGED);
    assert_int_equal(r.status, IMAP_STATUS_OK);
    assert_string_equal(r.code, "CAPABILITY");
    assert_span(r.code_args, r.code_args_len, "IMAP4rev1 SASL-IR AUTH=XOAUTH2");
    assert_span(r.caps, r.caps_len, "IMAP4rev1 SASL-IR AUTH=XOAUTH2");
    assert_span(r.text, r.text_len, "Dovecot ready.");
    assert_true(imap_caps_has(r.caps, r.caps_len, "AUTH=XOAUTH2"));
    assert_true(imap_caps_has(r.caps, r.caps_len, "sasl-ir"));
    assert_true(imap_caps_has(r.caps, r.caps_len, "IMAP4REV1"));
    assert_false(imap_caps_has(r.caps, r.caps_len, "AUTH=PLAIN"));
}

static void test_untagged_capability(void **state)
{
    (void)state;
    struct imap_reply r;
    assert_int_equal(parse("* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR", &r), 0);
    assert_int_equal(r.kind, IMAP_REPLY_UNTAGGED);
    assert_int_equal(r.status, IMAP_STATUS_NONE);
    assert_string_equal(r.code, "");
    assert_span(r.caps, r.caps_len, "IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR");
    assert_span(r.text, r.text_len, "CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR");

    assert_int_equal(parse("* capability", &r), 0);
    assert_span(r.caps, r.caps_len, "");

    assert_int_equal(parse("* 3 EXISTS", &r), 0);
    assert_int_equal(r.status, IMAP_STATUS_NONE);
    assert_null(r.caps);
    assert_span(r.text, r.text_len, "3 EXISTS");
}

static void test_tagged_replies(void **state)
{
    (void)state;
    struct imap_reply r;
    assert_int_equal(parse("A1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in", &r), 0);
    assert_int_equal(r.kind, IMAP_REPLY_TAGGED);
    assert_string_equal(r.tag, "A1");
    assert_int_equal(r.status, IMAP_STATUS_OK);
    assert_string_equal(r.code, "CAPABILITY");
    assert_span(r.caps, r.caps_len, "IMAP4rev1 IDLE MOVE");
    assert_span(r.text, r.text_len, "Logged in");

    assert_int_equal(parse("A1 NO [AUTHENTICATIONFAILED] AUTHENTICATE failed.", &r), 0);
    assert_int_equal(r.status, IMAP_STATUS_NO);
    assert_string_equal(r.code, "AUTHENTICATIONFAILED");
    assert_span(r.code_args, r.code_args_len, "");
    assert_null(r.caps);
    assert_span(r.text, r.text_len, "AUTHENTICATE failed.");

    /* Exchange Online: no response code */
    assert_int_equal(parse("A1 NO AUTHENTICATE failed.", &r), 0);
    assert_int_equal(r.status, IMAP_STATUS_NO);
    assert_string_equal(r.code, "");
    assert_span(r.text, r.text_len, "AUTHENTICATE failed.");

    assert_int_equal(parse("a2 bad [unavailable] later", &r), 0);
    assert_int_equal(r.status, IMAP_STATUS_BAD);
    assert_string_equal(r.tag, "a2");
    assert_string_equal(r.code, "UNAVAILABLE");

    assert_int_equal(parse("A3 Ok", &r), 0);
    assert_int_equal(r.status, IMAP_STATUS_OK);
    assert_span(r.text, r.text_len, "");
}

static void test_continuations(void **state)
{
    (void)state;
    struct imap_reply r;
    assert_int_equal(parse("+ eyJzdGF0dXMiOiI0MDEifQ==", &r), 0);
    assert_int_equal(r.kind, IMAP_REPLY_CONTINUATION);
    assert_int_equal(r.status, IMAP_STATUS_NONE);
    assert_span(r.text, r.text_len, "eyJzdGF0dXMiOiI0MDEifQ==");
    assert_int_equal(parse("+", &r), 0);
    assert_int_equal(r.kind, IMAP_REPLY_CONTINUATION);
    assert_span(r.text, r.text_len, "");
    assert_int_equal(parse("+ ", &r), 0);
    assert_span(r.text, r.text_len, "");
    assert_int_equal(parse("+ Ready for literal data", &r), 0);
    assert_span(r.text, r.text_len, "Ready for literal data");
    assert_int_equal(parse("+x", &r), -1);
}

static void test_bye_preauth_and_codes(void **state)
{
    (void)state;
    struct imap_reply r;
    assert_int_equal(parse("* BYE Server shutting down", &r), 0);
    assert_int_equal(r.status, IMAP_STATUS_BYE);
    assert_span(r.text, r.text_len, "Server shutting down");
    assert_int_equal(parse("* bye", &r), 0);
    assert_int_equal(r.status, IMAP_STATUS_BYE);
    assert_int_equal(parse("* PREAUTH [CAPABILITY IMAP4rev1] welcome", &r), 0);
    assert_int_equal(r.status, IMAP_STATUS_PREAUTH);
    assert_span(r.caps, r.caps_len, "IMAP4rev1");
    assert_int_equal(parse("* OK [ALERT] System going down", &r), 0);
    assert_string_equal(r.code, "ALERT");
    assert_span(r.code_args, r.code_args_len, "");
    assert_span(r.text, r.text_len, "System going down");
    assert_int_equal(parse("* NO [alert]", &r), 0);
    assert_string_equal(r.code, "ALERT");
    assert_span(r.text, r.text_len, "");
    assert_int_equal(parse("* OK [UIDVALIDITY 3857529045] UIDs valid", &r), 0);
    assert_string_equal(r.code, "UIDVALIDITY");
    assert_span(r.code_args, r.code_args_len, "3857529045");
    assert_null(r.caps);
}

static void test_unterminated_code_is_text(void **state)
{
    (void)state;
    struct imap_reply r;
    /* no "]": not a response code, the whole rest is human text */
    assert_int_equal(parse("* OK [CAPABILITY IMAP4rev1 ready", &r), 0);
    assert_string_equal(r.code, "");
    assert_null(r.caps);
    assert_span(r.text, r.text_len, "[CAPABILITY IMAP4rev1 ready");
    assert_int_equal(parse("A1 NO [", &r), 0);
    assert_span(r.text, r.text_len, "[");
}

static void test_garbage(void **state)
{
    (void)state;
    struct imap_reply r;
    static const char *const bad[] = {
        "",
        "*",
        "* ",
        "*OK",
        "A1",
        "A1 ",
        "A1 MAYBE done",
        "A1 OKAY done",
        "A1 PREAUTH hi",
        "A1 BYE bye",
        "A+1 OK x",
        "A\"1 OK x",
        " A1 OK x",
        "A1 OKx",
        "A1 OK [] x",
        "A1 OK [BAD(CODE] x",
        "A1 OK [CODE\x01] x",
        "* OK [0123456789012345678901234567890123456789012345678901234567890123] x",
        "\xff\xfe OK",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(bad[i], &r), -1);
        assert_non_null(r.text); /* safe to print even after a failure */
    }
    assert_int_equal(imap_reply_parse("A1 OK\0x", 7, &r), -1);
    assert_int_equal(imap_reply_parse("A1 OK\rx", 7, &r), -1);
    assert_int_equal(imap_reply_parse("A1 OK\nx", 7, &r), -1);

    char tag[IMAP_REPLY_MAX_TAG + 8];
    memset(tag, 'T', IMAP_REPLY_MAX_TAG - 1);
    strcpy(tag + IMAP_REPLY_MAX_TAG - 1, " OK");
    assert_int_equal(parse(tag, &r), 0);
    memset(tag, 'T', IMAP_REPLY_MAX_TAG);
    strcpy(tag + IMAP_REPLY_MAX_TAG, " OK");
    assert_int_equal(parse(tag, &r), -1);
}

static void test_caps_has_whole_tokens(void **state)
{
    (void)state;
    const char *caps = "IMAP4rev1  AUTH=XOAUTH2X SASL-IR AUTH=PLAIN";
    size_t len = strlen(caps);
    assert_false(imap_caps_has(caps, len, "AUTH=XOAUTH2"));
    assert_true(imap_caps_has(caps, len, "AUTH=XOAUTH2X"));
    assert_false(imap_caps_has(caps, len, "AUTH"));
    assert_false(imap_caps_has(caps, len, "IMAP4"));
    assert_true(imap_caps_has(caps, len, "auth=plain"));
    assert_false(imap_caps_has(caps, len, ""));
    assert_false(imap_caps_has(NULL, 0, "SASL-IR"));
    /* only caps_len bytes count */
    assert_false(imap_caps_has(caps, 9, "AUTH=PLAIN"));
    assert_true(imap_caps_has(caps, 9, "IMAP4REV1"));
    assert_false(imap_caps_has(caps, 8, "IMAP4rev1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_with_capabilities),
        cmocka_unit_test(test_untagged_capability),
        cmocka_unit_test(test_tagged_replies),
        cmocka_unit_test(test_continuations),
        cmocka_unit_test(test_bye_preauth_and_codes),
        cmocka_unit_test(test_unterminated_code_is_text),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_caps_has_whole_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
