/* Unit tests of device_code.c: RFC 8628 request bodies and device authorization answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "device_code.h"
#include "util.h"

static const char entra_answer[] =
    "{\"user_code\":\"F4YK8RQ3X\",\"device_code\":\"DAQABAAEAAAD-device+code/x=\","
    "\"verification_uri\":\"https://microsoft.com/devicelogin\",\"expires_in\":900,"
    "\"interval\":5,\"message\":\"To sign in, use a web browser to open the page "
    "https://microsoft.com/devicelogin and enter the code F4YK8RQ3X to authenticate.\"}";

static int parse(const char *body, struct device_authorization *d)
{
    return device_code_parse(200, body, strlen(body), d);
}

static void test_request_bodies(void **state)
{
    (void)state;
    struct provider_conf p = {.client_id = "abc-123",
                              .scope = "https://outlook.office365.com/IMAP.AccessAsUser.All "
                                       "offline_access"};
    char *body = device_code_request_body(&p);
    assert_string_equal(body, "client_id=abc-123&scope=https%3A%2F%2Foutlook.office365.com%2F"
                              "IMAP.AccessAsUser.All%20offline_access");
    free(body);
    body = device_code_poll_body(&p, "DAQ+/=x");
    assert_string_equal(body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
                              "&client_id=abc-123&device_code=DAQ%2B%2F%3Dx");
    free(body);
    /* A confidential client (Google) sends its secret too. */
    p.client_secret = "s&cret";
    body = device_code_request_body(&p);
    assert_non_null(strstr(body, "&client_secret=s%26cret"));
    free(body);
    body = device_code_poll_body(&p, "d");
    assert_non_null(strstr(body, "&device_code=d&client_secret=s%26cret"));
    free(body);
}

static void test_entra_answer(void **state)
{
    (void)state;
    struct device_authorization d;
    assert_int_equal(parse(entra_answer, &d), 0);
    assert_string_equal(d.device_code, "DAQABAAEAAAD-device+code/x=");
    assert_string_equal(d.user_code, "F4YK8RQ3X");
    assert_string_equal(d.verification_uri, "https://microsoft.com/devicelogin");
    assert_string_equal(d.verification_uri_complete, "");
    assert_non_null(strstr(d.message, "enter the code F4YK8RQ3X"));
    assert_int_equal(d.expires_in, 900);
    assert_int_equal(d.interval, 5);
    device_authorization_clear(&d);
    assert_int_equal(d.device_code[0], 0);
}

static void test_google_answer_and_defaults(void **state)
{
    (void)state;
    struct device_authorization d;
    assert_int_equal(parse("{\"device_code\":\"AH-1\",\"user_code\":\"GQVQ-JKEC\","
                           "\"verification_url\":\"https://www.google.com/device\","
                           "\"expires_in\":\"1800\"}",
                           &d),
                     0);
    assert_string_equal(d.verification_uri, "https://www.google.com/device");
    assert_string_equal(d.message, "");
    assert_int_equal(d.expires_in, 1800);
    assert_int_equal(d.interval, DEVICE_INTERVAL_DEFAULT);
    /* Interval clamped, lifetime clamped, a complete URI kept. */
    assert_int_equal(parse("{\"device_code\":\"a\",\"user_code\":\"b\",\"verification_uri\":"
                           "\"https://x/\",\"verification_uri_complete\":\"https://x/?c=b\","
                           "\"expires_in\":99999999,\"interval\":3600}",
                           &d),
                     0);
    assert_int_equal(d.interval, DEVICE_INTERVAL_MAX);
    assert_int_equal(d.expires_in, DEVICE_EXPIRES_MAX);
    assert_string_equal(d.verification_uri_complete, "https://x/?c=b");
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"user_code\":\"b\",\"verification_uri\":\"https://x/\",\"expires_in\":9}",
        "{\"device_code\":\"a\",\"verification_uri\":\"https://x/\",\"expires_in\":9}",
        "{\"device_code\":\"a\",\"user_code\":\"b\",\"expires_in\":9}",
        "{\"device_code\":\"a\",\"user_code\":\"b\",\"verification_uri\":\"https://x/\"}",
        "{\"device_code\":\"a b\",\"user_code\":\"b\",\"verification_uri\":\"https://x/\","
        "\"expires_in\":9}",
        "{\"device_code\":\"a\",\"user_code\":\"b\\u001b[2J\",\"verification_uri\":\"https://x/\","
        "\"expires_in\":9}",
        "{\"device_code\":\"a\",\"user_code\":\"b\",\"verification_uri\":\"javascript:x\","
        "\"expires_in\":9}",
        "{\"device_code\":\"a\",\"user_code\":\"b\",\"verification_uri\":\"https://x/\","
        "\"expires_in\":0}",
        "{\"device_code\":\"a\",\"user_code\":\"b\",\"verification_uri\":\"https://x/\","
        "\"expires_in\":9,\"interval\":-1}",
        "{\"device_code\":\"a\\u0000b\",\"user_code\":\"b\",\"verification_uri\":\"https://x/\","
        "\"expires_in\":9}",
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        struct device_authorization d;
        assert_int_equal(parse(bad[i], &d), -1);
        assert_int_equal(d.status, TOKEN_TEMPFAIL);
        assert_non_null(strstr(d.reason, "malformed"));
        assert_int_equal(d.device_code[0], 0);
    }
    /* An over-long device code is refused, not truncated. */
    char code[2001];
    memset(code, 'A', 2000);
    code[2000] = '\0';
    char *huge = mg_printf("{\"device_code\":\"%s\",\"user_code\":\"b\",\"verification_uri\":"
                           "\"https://x/\",\"expires_in\":9}",
                           code);
    struct device_authorization d;
    assert_int_equal(parse(huge, &d), -1);
    free(huge);
    /* A message with control characters is left out, not shown. */
    assert_int_equal(parse("{\"device_code\":\"a\",\"user_code\":\"b\",\"verification_uri\":"
                           "\"https://x/\",\"expires_in\":9,\"message\":\"hi\\u001b]0;x\"}",
                           &d),
                     0);
    assert_string_equal(d.message, "");
}

static void test_errors(void **state)
{
    (void)state;
    struct device_authorization d;
    const char *body = "{\"error\":\"unauthorized_client\",\"error_description\":\"AADSTS700016: "
                       "Application with identifier 'x' was not found\",\"error_codes\":[700016]}";
    assert_int_equal(device_code_parse(400, body, strlen(body), &d), -1);
    assert_int_equal(d.status, TOKEN_PERMFAIL);
    assert_string_equal(d.error, "unauthorized_client");
    assert_non_null(strstr(d.reason, "AADSTS700016"));
    body = "{\"error\":\"invalid_scope\"}";
    assert_int_equal(device_code_parse(400, body, strlen(body), &d), -1);
    assert_string_equal(d.error, "invalid_scope");
    assert_int_equal(device_code_parse(503, "oops", 4, &d), -1);
    assert_int_equal(d.status, TOKEN_TEMPFAIL);
    assert_non_null(strstr(d.reason, "503"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_bodies),
        cmocka_unit_test(test_entra_answer),
        cmocka_unit_test(test_google_answer_and_defaults),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
