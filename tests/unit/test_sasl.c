#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sasl.h"

/* ---- base64 ---- */

static void test_b64_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const vectors[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char enc[32];
        unsigned char dec[32];
        size_t plain = strlen(vectors[i][0]), coded = strlen(vectors[i][1]);
        assert_int_equal(b64_encode(vectors[i][0], plain, enc, sizeof enc), (long)coded);
        assert_string_equal(enc, vectors[i][1]);
        assert_int_equal(b64_decode(vectors[i][1], coded, dec, sizeof dec), (long)plain);
        assert_memory_equal(dec, vectors[i][0], plain);
    }
}

static void test_b64_all_bytes_round_trip(void **state)
{
    (void)state;
    unsigned char in[256], dec[256];
    char enc[400];
    for (int i = 0; i < 256; i++)
        in[i] = (unsigned char)(255 - i);
    long n = b64_encode(in, sizeof in, enc, sizeof enc);
    assert_int_equal(n, 344);
    assert_int_equal(b64_decode(enc, (size_t)n, dec, sizeof dec), 256);
    assert_memory_equal(in, dec, sizeof in);
    assert_non_null(strchr(enc, '+'));
    assert_non_null(strchr(enc, '/'));
}

static void test_b64_sizes(void **state)
{
    (void)state;
    char enc[9];
    unsigned char dec[3];
    assert_int_equal(b64_encode("foobar", 6, enc, 8), -1); /* no room for the NUL */
    assert_int_equal(b64_encode("foobar", 6, enc, 9), 8);
    assert_int_equal(b64_decode("Zm9vYmFy", 8, dec, 3), -1);
    assert_int_equal(b64_decode("Zm9v", 4, dec, 3), 3);
    assert_int_equal(b64_decode("Zm8=", 4, dec, 1), -1);
}

static void test_b64_strictness(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg",         /* no padding */
        "Zg=",        /* short padding */
        "Zg===",      /* length not a multiple of 4 */
        "Z===",       /* three pads */
        "=Zg=",       /* pad first */
        "Zg==Zg==",   /* padding in the middle */
        "Zm9v\r\n",   /* line break */
        "Zm 9v",      /* space */
        " Zm9v",      /* leading space */
        "Zm9v ",      /* trailing space */
        "Zm-_",       /* base64url alphabet */
        "Zh==",       /* non-zero bits under the padding */
        "Zm9=",       /* same, one pad */
        "Zm\xc3\xa9", /* 8-bit */
    };
    unsigned char dec[16] = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(b64_decode(bad[i], strlen(bad[i]), dec, sizeof dec), -1);
    assert_int_equal(b64_decode("Zm9v\0\0\0\0", 8, dec, sizeof dec), -1);
}

static void test_b64_failure_wipes_output(void **state)
{
    (void)state;
    unsigned char dec[16];
    memset(dec, 'x', sizeof dec);
    assert_int_equal(b64_decode("c2VjcmV0!!!!", 12, dec, sizeof dec), -1);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(dec[i], 0);
}

/* ---- PLAIN ---- */

static void test_plain_without_authzid(void **state)
{
    (void)state;
    struct sasl_plain p;
    static const unsigned char msg[] = "\0alice\0secret";
    assert_int_equal(sasl_plain_decode(msg, sizeof msg - 1, &p), 0);
    assert_string_equal(p.authzid, "");
    assert_string_equal(p.authcid, "alice");
    assert_string_equal(p.passwd, "secret");
    assert_int_equal(p.passwd_len, 6);
    sasl_plain_wipe(&p);
    assert_string_equal(p.passwd, "");
}

static void test_plain_with_authzid_b64(void **state)
{
    (void)state;
    struct sasl_plain p;
    char b64[64];
    static const char msg[] = "admin\0alice\0p\xc3\xa4ss word";
    long n = b64_encode(msg, sizeof msg - 1, b64, sizeof b64);
    assert_true(n > 0);
    assert_int_equal(sasl_plain_decode_b64(b64, (size_t)n, &p), 0);
    assert_string_equal(p.authzid, "admin");
    assert_string_equal(p.authcid, "alice");
    assert_string_equal(p.passwd, "p\xc3\xa4ss word");
    assert_int_equal(p.passwd_len, 10);
    sasl_plain_wipe(&p);

    /* RFC 4616's own example: "\0tim\0tanstaaftanstaaf" */
    assert_int_equal(sasl_plain_decode_b64("AHRpbQB0YW5zdGFhZnRhbnN0YWFm", 28, &p), 0);
    assert_string_equal(p.authcid, "tim");
    assert_string_equal(p.passwd, "tanstaaftanstaaf");
    sasl_plain_wipe(&p);
}

static void test_plain_malformed(void **state)
{
    (void)state;
    struct sasl_plain p;
    static const struct {
        const char *msg;
        size_t len;
    } bad[] = {
        {"alice", 5},              /* no NUL */
        {"\0alice", 6},            /* one NUL */
        {"\0alice\0", 7},          /* empty password */
        {"\0\0secret", 8},         /* empty authcid */
        {"\0alice\0sec\0ret", 14}, /* extra NUL */
        {"", 0},                   /* nothing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&p, 'x', sizeof p);
        assert_int_equal(sasl_plain_decode((const unsigned char *)bad[i].msg, bad[i].len, &p), -1);
        assert_int_equal(p.passwd[0], '\0');
    }
    assert_int_equal(sasl_plain_decode_b64("=", 1, &p), -1);
    assert_int_equal(sasl_plain_decode_b64("", 0, &p), -1);
    assert_int_equal(sasl_plain_decode_b64("AGFsaWNlAHNlY3JldA", 18, &p), -1); /* bad b64 */
}

static void test_plain_field_limits(void **state)
{
    (void)state;
    struct sasl_plain p;
    static unsigned char msg[IPC_USER_MAX + IPC_PASSWORD_MAX + 8];
    size_t user = IPC_USER_MAX - 1, pass = IPC_PASSWORD_MAX - 1;
    msg[0] = '\0';
    memset(msg + 1, 'u', user);
    msg[1 + user] = '\0';
    memset(msg + 2 + user, 'p', pass);
    assert_int_equal(sasl_plain_decode(msg, 2 + user + pass, &p), 0);
    assert_int_equal(strlen(p.authcid), user);
    assert_int_equal(p.passwd_len, pass);
    sasl_plain_wipe(&p);

    memset(msg + 2 + user, 'p', pass + 1); /* password one too long */
    assert_int_equal(sasl_plain_decode(msg, 2 + user + pass + 1, &p), -1);

    memset(msg + 1, 'u', user + 1); /* user one too long */
    msg[2 + user] = '\0';
    memcpy(msg + 3 + user, "pw", 2);
    assert_int_equal(sasl_plain_decode(msg, 5 + user, &p), -1);

    /* base64 of something longer than any valid message */
    static char b64[4 * (sizeof msg / 3 + 1) + 8];
    memset(msg, 'a', sizeof msg);
    msg[0] = '\0';
    msg[5] = '\0';
    long n = b64_encode(msg, sizeof msg, b64, sizeof b64);
    assert_true(n > 0);
    assert_int_equal(sasl_plain_decode_b64(b64, (size_t)n, &p), -1);
}

/* ---- LOGIN ---- */

static void assert_wiped(const char *out, size_t len)
{
    for (size_t i = 0; i < len; i++)
        assert_int_equal(out[i], '\0');
}

static void test_login_decode(void **state)
{
    (void)state;
    char out[32];
    memset(out, 'x', sizeof out);
    assert_int_equal(sasl_login_decode_b64("YWxpY2U=", 8, out, sizeof out), 5);
    assert_string_equal(out, "alice");
    assert_int_equal(sasl_login_decode_b64("VXNlcm5hbWU6", 12, out, sizeof out), 9);
    assert_string_equal(out, "Username:");
    /* bytes are taken as they are: spaces, non-ASCII */
    assert_int_equal(sasl_login_decode_b64("IHB3IMOk", 8, out, sizeof out), 6);
    assert_memory_equal(out, " pw \xc3\xa4", 7);
    /* only the given length counts */
    assert_int_equal(sasl_login_decode_b64("YWxpY2U=garbage", 8, out, sizeof out), 5);
    assert_string_equal(out, "alice");
}

static void test_login_decode_fit(void **state)
{
    (void)state;
    char out[6];
    /* "alice" needs 6 bytes with its NUL */
    assert_int_equal(sasl_login_decode_b64("YWxpY2U=", 8, out, 6), 5);
    assert_string_equal(out, "alice");
    memset(out, 'x', sizeof out);
    assert_int_equal(sasl_login_decode_b64("YWxpY2U=", 8, out, 5), -1);
    assert_wiped(out, 5);
    assert_int_equal(out[5], 'x'); /* nothing beyond outlen is touched */
    memset(out, 'x', sizeof out);
    assert_int_equal(sasl_login_decode_b64("YWxpY2U=", 8, out, 1), -1);
    assert_int_equal(out[0], '\0');
    assert_int_equal(out[1], 'x');
    assert_int_equal(sasl_login_decode_b64("YWxpY2U=", 8, out, 0), -1);
    assert_int_equal(out[0], '\0');
}

static void test_login_decode_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",             /* empty field */
        "=",            /* the empty-response marker */
        "YWxpY2U",      /* missing padding */
        "YWxp Y2U=",    /* whitespace */
        "YWxpY2U=\r\n", /* line end */
        "YW-pY2U=",     /* URL-safe alphabet */
        "YR==",         /* non-zero bits under the padding */
        "YWxp=2U=",     /* padding in the middle */
        "YQBi",         /* "a\0b": a NUL inside */
        "AA==",         /* only a NUL */
        "*",            /* the cancel answer is the protocol's business */
    };
    char out[32];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 'x', sizeof out);
        assert_int_equal(sasl_login_decode_b64(bad[i], strlen(bad[i]), out, sizeof out), -1);
        assert_wiped(out, sizeof out);
    }
}

/* ---- XOAUTH2 ---- */

static void test_xoauth2_golden(void **state)
{
    (void)state;
    static const char raw[] = "user=alice@contoso.com\x01"
                              "auth=Bearer eyJ0eXAi.abc-_\x01\x01";
    char expected[128], out[128];
    long n = b64_encode(raw, sizeof raw - 1, expected, sizeof expected);
    assert_int_equal(
        sasl_xoauth2_encode("alice@contoso.com", "eyJ0eXAi.abc-_", 14, out, sizeof out), n);
    assert_string_equal(out, expected);
    /* the well-known example from Google's XOAUTH2 documentation */
    assert_true(sasl_xoauth2_encode(
                    "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
                    strlen("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"), out, sizeof out) > 0);
    assert_string_equal(out,
                        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRj"
                        "Mk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
    /* only token_len bytes of the token are used */
    assert_int_equal(
        sasl_xoauth2_encode("alice@contoso.com", "eyJ0eXAi.abc-_XYZ", 14, out, sizeof out), n);
    assert_string_equal(out, expected);
}

static void test_xoauth2_refusals(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(sasl_xoauth2_encode("al\x01ice", "tok", 3, out, sizeof out), -1);
    assert_int_equal(sasl_xoauth2_encode("alice\r\n", "tok", 3, out, sizeof out), -1);
    assert_int_equal(sasl_xoauth2_encode("alice\n", "tok", 3, out, sizeof out), -1);
    assert_int_equal(sasl_xoauth2_encode("", "tok", 3, out, sizeof out), -1);
    assert_int_equal(sasl_xoauth2_encode("alice", "to\x01k", 4, out, sizeof out), -1);
    assert_int_equal(sasl_xoauth2_encode("alice", "to\rk", 4, out, sizeof out), -1);
    assert_int_equal(sasl_xoauth2_encode("alice", "to\nk", 4, out, sizeof out), -1);
    assert_int_equal(sasl_xoauth2_encode("alice", "to\0k", 4, out, sizeof out), -1);
    assert_int_equal(sasl_xoauth2_encode("alice", "", 0, out, sizeof out), -1);
    /* "user=a\x01auth=Bearer t\x01\x01" is 22 bytes: 32 characters of base64 */
    assert_int_equal(sasl_xoauth2_encode("a", "t", 1, out, 32), -1);
    assert_int_equal(sasl_xoauth2_encode("a", "t", 1, out, 33), 32);
    assert_int_equal(sasl_xoauth2_size("a", 1), 33);
}

static void test_oauthbearer_golden(void **state)
{
    (void)state;
    char out[256];
    /* RFC 7628 section 4.1, byte for byte */
    const char *token = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";
    long n = sasl_oauthbearer_encode("user@example.com", "server.example.com", 143, token,
                                     strlen(token), out, sizeof out);
    static const char rfc[] =
        "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
        "IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
    assert_int_equal(n, (long)strlen(rfc));
    assert_string_equal(out, rfc);
    assert_true(sasl_oauthbearer_size("user@example.com", "server.example.com", strlen(token)) >
                strlen(rfc));
    /* ',' and '=' in the authzid are escaped (RFC 5801); only token_len bytes are used */
    n = sasl_oauthbearer_encode("a=b,c@x", "h", 993, "tXYZ", 1, out, sizeof out);
    unsigned char raw[128];
    long raw_len = b64_decode(out, (size_t)n, raw, sizeof raw);
    static const char expected[] = "n,a=a=3Db=2Cc@x,\x01host=h\x01port=993\x01"
                                   "auth=Bearer t\x01\x01";
    assert_int_equal(raw_len, (long)sizeof expected - 1);
    assert_memory_equal(raw, expected, sizeof expected - 1);
    /* the size bound holds even when every mailbox byte is escaped */
    size_t need = sasl_oauthbearer_size(",,,,", "h", 1);
    assert_true(sasl_oauthbearer_encode(",,,,", "h", 65535, "t", 1, out, need) > 0);
    assert_int_equal(sasl_oauthbearer_encode(",,,,", "h", 65535, "t", 1, out, need - 4), -1);
}

static void test_oauthbearer_refusals(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(sasl_oauthbearer_encode("al\x01ice", "h", 1, "t", 1, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("alice\r\n", "h", 1, "t", 1, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("", "h", 1, "t", 1, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("a", "h\x01", 1, "t", 1, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("a", "", 1, "t", 1, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("a", "h", 1, "t\x01", 2, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("a", "h", 1, "t\n", 2, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("a", "h", 1, "t\0", 2, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("a", "h", 1, "", 0, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("a", "h", 0, "t", 1, out, sizeof out), -1);
    assert_int_equal(sasl_oauthbearer_encode("a", "h", 65536, "t", 1, out, sizeof out), -1);
    assert_true(sasl_oauthbearer_encode("a", "h", 1, "t", 1, out, sizeof out) > 0);
}

static void test_xoauth2_describe_error(void **state)
{
    (void)state;
    char b64[256], out[256];
    static const char json[] = "{\"status\":\"401\", \"schemes\":\"bearer\",\n"
                               " \"scope\":\"https://outlook.office365.com/.default\"}";
    long n = b64_encode(json, sizeof json - 1, b64, sizeof b64);
    sasl_describe_error(b64, (size_t)n, out, sizeof out);
    assert_string_equal(out, "{\"status\":\"401\",\"schemes\":\"bearer\","
                             "\"scope\":\"https://outlook.office365.com/.default\"}");

    /* non-JSON text: control and 8-bit bytes become '?' */
    n = b64_encode("bad\r\n\x1b[31m\xc3\xa9", 12, b64, sizeof b64);
    sasl_describe_error(b64, (size_t)n, out, sizeof out);
    assert_string_equal(out, "bad???[31m??");

    /* JSON with non-ASCII is escaped by the dump */
    n = b64_encode("{\"e\":\"\xc3\xa9\"}", 10, b64, sizeof b64);
    sasl_describe_error(b64, (size_t)n, out, sizeof out);
    assert_string_equal(out, "{\"e\":\"\\u00E9\"}");

    sasl_describe_error("not base64!", 11, out, sizeof out);
    assert_string_equal(out, "(undecodable challenge)");
    sasl_describe_error("", 0, out, sizeof out);
    assert_string_equal(out, "(empty challenge)");

    /* truncated to the buffer, always terminated */
    n = b64_encode(json, sizeof json - 1, b64, sizeof b64);
    sasl_describe_error(b64, (size_t)n, out, 8);
    assert_string_equal(out, "{\"statu");
    out[0] = 'x';
    sasl_describe_error(b64, (size_t)n, out, 1);
    assert_int_equal(out[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_rfc4648_vectors),
        cmocka_unit_test(test_b64_all_bytes_round_trip),
        cmocka_unit_test(test_b64_sizes),
        cmocka_unit_test(test_b64_strictness),
        cmocka_unit_test(test_b64_failure_wipes_output),
        cmocka_unit_test(test_plain_without_authzid),
        cmocka_unit_test(test_plain_with_authzid_b64),
        cmocka_unit_test(test_plain_malformed),
        cmocka_unit_test(test_plain_field_limits),
        cmocka_unit_test(test_login_decode),
        cmocka_unit_test(test_login_decode_fit),
        cmocka_unit_test(test_login_decode_refusals),
        cmocka_unit_test(test_xoauth2_golden),
        cmocka_unit_test(test_xoauth2_refusals),
        cmocka_unit_test(test_oauthbearer_golden),
        cmocka_unit_test(test_oauthbearer_refusals),
        cmocka_unit_test(test_xoauth2_describe_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
