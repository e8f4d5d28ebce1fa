/* Tests for the login audit record: the IPC round trip, the broker's judgement of records from
 * a worker (audit_rec.c) and the worker's cleaning of client text, and the SIEM JSON line
 * (audit_json.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "audit_json.h"
#include "audit_rec.h"
#include "ipc.h"

static struct ipc_audit sample(void)
{
    struct ipc_audit a;
    memset(&a, 0, sizeof a);
    a.event = AUDIT_LOGIN;
    a.protocol = MG_PROTO_POP3;
    a.ok = 0;
    strcpy(a.session, "0a1b2c3d");
    strcpy(a.listener, "pop3s");
    strcpy(a.client_addr, "[2001:db8::7]:50123");
    strcpy(a.client_id, "Thunderbird/115.3");
    strcpy(a.user, "alice\\shared");
    strcpy(a.mailbox, "shared@contoso.com");
    strcpy(a.cause, "mailbox not granted");
    a.duration_ms = 12;
    return a;
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct ipc_audit a = sample();
    a.bytes_in = UINT64_MAX;
    strcpy(a.detail, "AADSTS7000215");
    struct evbuffer *buf = evbuffer_new();
    assert_int_equal(ipc_encode_audit(buf, &a), 0);
    struct ipc_msg msg;
    assert_int_equal(ipc_decode(buf, &msg), 1);
    assert_int_equal(msg.type, IPC_AUDIT);
    assert_memory_equal(&msg.u.audit, &a, sizeof a);
    evbuffer_free(buf);
}

static void test_encode_refuses_out_of_range(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_audit a = sample();
    a.event = 2;
    assert_int_equal(ipc_encode_audit(buf, &a), -1);
    a = sample();
    a.ok = 2;
    assert_int_equal(ipc_encode_audit(buf, &a), -1);
    assert_int_equal(evbuffer_get_length(buf), 0);
    evbuffer_free(buf);
}

static void test_valid_records(void **state)
{
    (void)state;
    struct ipc_audit a = sample();
    assert_int_equal(audit_rec_valid(&a), 0);
    struct audit_fields f;
    assert_int_equal(audit_rec_fields(&a, &f), 0);
    assert_string_equal(f.host, "2001:db8::7");
    assert_int_equal(f.port, 50123);
    assert_string_equal(f.result, "fail");
    assert_string_equal(f.protocol, "pop3");
    a.event = AUDIT_END, a.ok = 1;
    strcpy(a.cause, "ok");
    strcpy(a.client_addr, "192.0.2.1:993");
    strcpy(a.user, "jürgen"); /* UTF-8 is fine */
    assert_int_equal(audit_rec_valid(&a), 0);
    assert_int_equal(audit_rec_fields(&a, &f), 0);
    assert_string_equal(f.event, "end");
    assert_string_equal(f.host, "192.0.2.1");
}

/* Every word of README "Login outcomes" is storable, and nothing else. */
static void test_cause_words(void **state)
{
    (void)state;
    static const char *const words[] = {"aborted",
                                        "address not allowed",
                                        "busy",
                                        "idp error",
                                        "internal error",
                                        "invalid name",
                                        "locked out",
                                        "mailbox not granted",
                                        "ok",
                                        "protocol disabled",
                                        "refused",
                                        "unknown user",
                                        "upstream refused",
                                        "upstream unavailable",
                                        "user disabled",
                                        "wrong password"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        assert_true(audit_cause_known(words[i]));
    assert_false(audit_cause_known("OK"));
    assert_false(audit_cause_known("wrong password "));
    assert_false(audit_cause_known(""));
}

/* Each of these is refused: a worker must not be able to write anything else. */
static void test_invalid_records(void **state)
{
    (void)state;
    static const char *const bad_addrs[] = {
        "",       "1.2.3.4", "1.2.3.4:", "1.2.3.4:0",   "1.2.3.4:65536",
        "::1:25", "[::1:25", "[]:25",    "1.2.3.4:25x", ":25"};
    for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        struct ipc_audit a = sample();
        strcpy(a.client_addr, bad_addrs[i]);
        assert_int_equal(audit_rec_valid(&a), -1);
    }
    struct ipc_audit a = sample();
    strcpy(a.cause, "password was hunter2"); /* free text never reaches the store */
    assert_int_equal(audit_rec_valid(&a), -1);
    a = sample();
    a.ok = 1; /* ok with a failure's word */
    assert_int_equal(audit_rec_valid(&a), -1);
    a = sample();
    a.event = AUDIT_END; /* an end without a login */
    assert_int_equal(audit_rec_valid(&a), -1);
    a = sample();
    strcpy(a.client_id, "evil\n{\"result\":\"ok\"}");
    assert_int_equal(audit_rec_valid(&a), -1);
    a = sample();
    strcpy(a.user, "bad\xc3(utf8");
    assert_int_equal(audit_rec_valid(&a), -1);
    a = sample();
    strcpy(a.mailbox, "\xed\xa0\x80"); /* a surrogate */
    assert_int_equal(audit_rec_valid(&a), -1);
    a = sample();
    strcpy(a.session, "0A1B;drop");
    assert_int_equal(audit_rec_valid(&a), -1);
    a = sample();
    a.session[0] = '\0';
    assert_int_equal(audit_rec_valid(&a), -1);
}

static void test_detail_is_only_an_aadsts_code(void **state)
{
    (void)state;
    char d[IPC_DETAIL_MAX];
    audit_detail_of("idp error",
                    "invalid_client: AADSTS7000215: Invalid client secret provided (fix: ...)", d,
                    sizeof d);
    assert_string_equal(d, "AADSTS7000215");
    audit_detail_of("idp error", "see AADSTSx, then AADSTS50126: bad password", d, sizeof d);
    assert_string_equal(d, "AADSTS50126"); /* the first complete code */
    audit_detail_of("idp error", "AADSTS1234567890 too long", d, sizeof d);
    assert_string_equal(d, "");
    audit_detail_of("idp error", "token endpoint backing off for 3 s after: timeout", d, sizeof d);
    assert_string_equal(d, "");
    audit_detail_of("upstream refused", "AADSTS7000215", d, sizeof d);
    assert_string_equal(d, ""); /* only an IdP's refusal has one */
    audit_detail_of("idp error", NULL, d, sizeof d);
    assert_string_equal(d, "");
    /* The broker takes nothing else from a worker. */
    struct ipc_audit a = sample();
    strcpy(a.cause, "idp error");
    strcpy(a.detail, "AADSTS7000215");
    assert_int_equal(audit_rec_valid(&a), 0);
    strcpy(a.detail, "AADSTS7000215 and text");
    assert_int_equal(audit_rec_valid(&a), -1);
    strcpy(a.detail, "hunter2");
    assert_int_equal(audit_rec_valid(&a), -1);
    a = sample(); /* mailbox not granted */
    strcpy(a.detail, "AADSTS50126");
    assert_int_equal(audit_rec_valid(&a), -1);
}

static void test_clean_makes_text_valid(void **state)
{
    (void)state;
    char s[] = "a\x01\x7f\xff\xc3(\xe2\x82\xac ok \xf5\x80\x80\x80 \xc3";
    audit_text_clean(s);
    assert_string_equal(s, "a????"
                           "(\xe2\x82\xac ok ???? ?"); /* split: no trigraph */
    struct ipc_audit a = sample();
    strcpy(a.client_id, s);
    assert_int_equal(audit_rec_valid(&a), 0);
}

static void assert_json_string(json_t *o, const char *key, const char *want)
{
    assert_string_equal(json_string_value(json_object_get(o, key)), want);
}

static void test_json_line(void **state)
{
    (void)state;
    struct login_event e = {.at = 86400 + 61,
                            .event = "login",
                            .session = "0a1b2c3d",
                            .protocol = "imap",
                            .listener = "imaps",
                            .client_addr = "192.0.2.1",
                            .client_port = 50000,
                            .client_id = "say \"hi\"",
                            .login = "alice",
                            .user = "alice",
                            .mailbox = "alice@contoso.com",
                            .result = "fail",
                            .reason = "wrong password",
                            .detail = "",
                            .duration_ms = 5};
    char *line = audit_json_line(&e);
    assert_non_null(line);
    size_t n = strlen(line);
    assert_true(n > 0 && line[n - 1] == '\n' && !memchr(line, '\n', n - 1));
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    assert_non_null(o);
    assert_json_string(o, "time", "1970-01-02T00:01:01Z");
    assert_json_string(o, "client_id", "say \"hi\"");
    assert_json_string(o, "reason", "wrong password");
    assert_json_string(o, "detail", "");
    assert_int_equal(json_integer_value(json_object_get(o, "client_port")), 50000);
    assert_null(json_object_get(o, "password"));
    json_decref(o);
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_encode_refuses_out_of_range),
        cmocka_unit_test(test_valid_records),
        cmocka_unit_test(test_cause_words),
        cmocka_unit_test(test_invalid_records),
        cmocka_unit_test(test_clean_makes_text_valid),
        cmocka_unit_test(test_json_line),
        cmocka_unit_test(test_detail_is_only_an_aadsts_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
