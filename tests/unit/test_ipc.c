/* Tests for the IPC framing (ipc.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <event2/buffer.h>

#include "ipc.h"
#include "util.h"

static struct ipc_auth_request sample_request(void)
{
    struct ipc_auth_request req;
    memset(&req, 0, sizeof req);
    req.id = 0xdeadbeef;
    req.protocol = MG_PROTO_SMTP;
    strcpy(req.listener, "imaps");
    strcpy(req.client_addr, "[2001:db8::1]:54321");
    strcpy(req.user, "alice");
    /* Passwords are binary-safe: an embedded NUL must survive. */
    memcpy(req.password, "pa\0ss w\xc3\xb6rd", 12);
    req.password_len = 12;
    return req;
}

static struct ipc_auth_response sample_response(void)
{
    struct ipc_auth_response res;
    memset(&res, 0, sizeof res);
    res.id = 7;
    res.status = AUTH_DISABLED;
    strcpy(res.mailbox, "alice@contoso.com");
    strcpy(res.provider, "contoso");
    memset(res.token, 'T', IPC_TOKEN_MAX - 1);
    res.token_len = IPC_TOKEN_MAX - 1;
    strcpy(res.reason, "why not");
    strcpy(res.cause, "mailbox not granted");
    res.delay_ms = 4321;
    res.token_id = 0x0000000700000003ull;
    return res;
}

static struct ipc_token_refused sample_refused(void)
{
    struct ipc_token_refused ref;
    memset(&ref, 0, sizeof ref);
    ref.id = 0x01020304;
    ref.protocol = MG_PROTO_POP3;
    strcpy(ref.user, "alice");
    ref.token_id = 0xfedcba9876543210ull;
    ref.want_token = 1;
    return ref;
}

/* Decodes exactly one frame from buf and checks that it consumed everything. */
static void decode_one(struct evbuffer *buf, struct ipc_msg *msg)
{
    assert_int_equal(ipc_decode(buf, msg), 1);
    assert_int_equal(evbuffer_get_length(buf), 0);
}

/* The messages whose body is one u32: worker ready (index), cancel (request id). */
static void check_u32_message(int (*encode)(struct evbuffer *, uint32_t), enum ipc_type type,
                              uint32_t value)
{
    struct evbuffer *buf = evbuffer_new();
    struct ipc_msg msg;
    assert_int_equal(encode(buf, value), 0);
    assert_int_equal(evbuffer_get_length(buf), 4 + 1 + 4);
    decode_one(buf, &msg);
    assert_int_equal(msg.type, type);
    assert_int_equal(type == IPC_WORKER_READY ? msg.u.worker_index : msg.u.cancel_id, value);
    evbuffer_free(buf);
}

static void test_roundtrip_ready(void **state)
{
    (void)state;
    check_u32_message(ipc_encode_ready, IPC_WORKER_READY, 0x01020304);
}

static void test_roundtrip_cancel(void **state)
{
    (void)state;
    check_u32_message(ipc_encode_auth_cancel, IPC_AUTH_CANCEL, 0xa1b2c3d4);
}

static void test_roundtrip_request(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_auth_request req = sample_request();
    struct ipc_msg msg;
    assert_int_equal(ipc_encode_auth_request(buf, &req), 0);
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_AUTH_REQUEST);
    assert_int_equal(msg.u.req.id, req.id);
    assert_int_equal(msg.u.req.protocol, MG_PROTO_SMTP);
    assert_string_equal(msg.u.req.listener, req.listener);
    assert_string_equal(msg.u.req.client_addr, req.client_addr);
    assert_string_equal(msg.u.req.user, req.user);
    assert_int_equal(msg.u.req.password_len, 12);
    assert_memory_equal(msg.u.req.password, req.password, 12);
    assert_int_equal(msg.u.req.password[12], '\0');
    ipc_msg_wipe(&msg);
    assert_int_equal(msg.u.req.password[0], 0);
    evbuffer_free(buf);
}

static void test_protolog(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_msg msg;
    const char text[] = "2026-12-04T08:50:01.123Z 0a1b2c3d imaps C: a1 LOGIN alice <redacted>\n"
                        "2026-12-04T08:50:01.124Z 0a1b2c3d imaps S: a1 OK \xc3\xa9\n";
    assert_int_equal(ipc_encode_protolog(buf, text, sizeof text - 1), 0);
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_PROTOLOG);
    assert_int_equal(msg.u.protolog.len, sizeof text - 1);
    assert_memory_equal(msg.u.protolog.text, text, sizeof text - 1);
    /* whole printable lines only: no line end at the end, control bytes, an empty batch */
    const char *refused[] = {"no line end", "a\rb\n", "a\x7f\n", "a\x01\n", ""};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(ipc_encode_protolog(buf, refused[i], strlen(refused[i])), 0);
        assert_int_equal(ipc_decode(buf, &msg), -1);
        evbuffer_drain(buf, evbuffer_get_length(buf));
    }
    char big[IPC_PROTOLOG_MAX];
    memset(big, 'x', sizeof big);
    assert_int_equal(ipc_encode_protolog(buf, big, sizeof big), -1);
    big[sizeof big - 2] = '\n';
    assert_int_equal(ipc_encode_protolog(buf, big, sizeof big - 1), 0);
    decode_one(buf, &msg);
    assert_int_equal(msg.u.protolog.len, sizeof big - 1);
    evbuffer_free(buf);
}

static void test_roundtrip_response(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_auth_response res = sample_response();
    struct ipc_msg msg;
    assert_int_equal(ipc_encode_auth_response(buf, &res), 0);
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_AUTH_RESPONSE);
    assert_int_equal(msg.u.res.id, 7);
    assert_int_equal(msg.u.res.status, AUTH_DISABLED);
    assert_string_equal(msg.u.res.mailbox, res.mailbox);
    assert_string_equal(msg.u.res.provider, res.provider);
    assert_int_equal(msg.u.res.token_len, IPC_TOKEN_MAX - 1);
    assert_memory_equal(msg.u.res.token, res.token, IPC_TOKEN_MAX - 1);
    assert_string_equal(msg.u.res.reason, res.reason);
    assert_string_equal(msg.u.res.cause, res.cause);
    assert_int_equal(msg.u.res.delay_ms, 4321);
    assert_true(msg.u.res.token_id == res.token_id);
    evbuffer_free(buf);
}

/* The worker names the refused token by its id (all 64 bits), never by the token. */
static void test_roundtrip_token_refused(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_token_refused ref = sample_refused();
    struct ipc_msg msg;
    assert_int_equal(ipc_encode_token_refused(buf, &ref), 0);
    assert_int_equal(evbuffer_get_length(buf), 4 + 1 + 4 + 4 + 2 + 5 + 8 + 4);
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_TOKEN_REFUSED);
    assert_int_equal(msg.u.refused.id, ref.id);
    assert_int_equal(msg.u.refused.protocol, MG_PROTO_POP3);
    assert_string_equal(msg.u.refused.user, "alice");
    assert_true(msg.u.refused.token_id == ref.token_id);
    assert_int_equal(msg.u.refused.want_token, 1);
    evbuffer_free(buf);
}

static void test_token_refused_rejects_bad_fields(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_token_refused ref = sample_refused();
    ref.want_token = 2;
    assert_int_equal(ipc_encode_token_refused(buf, &ref), -1);
    ref = sample_refused();
    ref.protocol = (enum mg_proto)3;
    assert_int_equal(ipc_encode_token_refused(buf, &ref), -1);
    assert_int_equal(evbuffer_get_length(buf), 0);
    struct ipc_msg msg;
    /* id, protocol, user "", token id, want_token 2 */
    static const unsigned char want_two[] = {
        IPC_TOKEN_REFUSED, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2};
    static const unsigned char want_one[] = {
        IPC_TOKEN_REFUSED, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1};
    assert_int_equal(ipc_decode_body(want_two, sizeof want_two, &msg), -1);
    assert_int_equal(ipc_decode_body(want_one, sizeof want_one, &msg), 1);
    assert_true(msg.u.refused.token_id == 1);
    assert_int_equal(ipc_decode_body(want_one, sizeof want_one - 1, &msg), -1);
    evbuffer_free(buf);
}

static void test_roundtrip_ticket_keys(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_ticket_keys k = {.count = 2, .lifetime_s = 3600};
    memset(&k.key[0], 0xa5, sizeof k.key[0]);
    memset(&k.key[1], 0x5a, sizeof k.key[1]);
    struct ipc_msg msg;
    assert_int_equal(ipc_encode_ticket_keys(buf, &k), 0);
    assert_int_equal(evbuffer_get_length(buf), 4 + 1 + 4 + 4 + 2 * sizeof k.key[0]);
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_TICKET_KEYS);
    assert_int_equal(msg.u.tickets.count, 2);
    assert_int_equal(msg.u.tickets.lifetime_s, 3600);
    assert_memory_equal(&msg.u.tickets.key, &k.key, sizeof k.key);
    k.count = 0;
    assert_int_equal(ipc_encode_ticket_keys(buf, &k), -1);
    k.count = IPC_TICKET_KEYS_MAX + 1;
    assert_int_equal(ipc_encode_ticket_keys(buf, &k), -1);
    evbuffer_free(buf);
}

static void test_ticket_keys_reject_bad_fields(void **state)
{
    (void)state;
    struct ipc_msg msg;
    unsigned char body[1 + 8 + 3 * sizeof(struct ipc_ticket_key)] = {IPC_TICKET_KEYS};
    size_t one = 1 + 8 + sizeof(struct ipc_ticket_key);
    body[4] = 1;  /* count 1 */
    body[8] = 60; /* lifetime 60 s */
    assert_int_equal(ipc_decode_body(body, one, &msg), 1);
    assert_int_equal(ipc_decode_body(body, one - 1, &msg), -1); /* key cut short */
    assert_int_equal(ipc_decode_body(body, one + 1, &msg), -1); /* trailing byte */
    body[4] = 3;                                                /* over the maximum */
    assert_int_equal(ipc_decode_body(body, sizeof body, &msg), -1);
    body[4] = 1;
    body[8] = 0; /* lifetime 0 */
    assert_int_equal(ipc_decode_body(body, one, &msg), -1);
    body[5] = 0xff; /* lifetime over 7 days */
    assert_int_equal(ipc_decode_body(body, one, &msg), -1);
}

static void test_encode_rejects_oversize_fields(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_auth_request req = sample_request();
    req.password_len = IPC_PASSWORD_MAX; /* no room for the decoder's NUL */
    assert_int_equal(ipc_encode_auth_request(buf, &req), -1);
    req = sample_request();
    memset(req.user, 'u', sizeof req.user); /* not terminated inside its field */
    assert_int_equal(ipc_encode_auth_request(buf, &req), -1);
    req = sample_request();
    req.protocol = (enum mg_proto)3;
    assert_int_equal(ipc_encode_auth_request(buf, &req), -1);
    struct ipc_auth_response res = sample_response();
    res.token_len = IPC_TOKEN_MAX;
    assert_int_equal(ipc_encode_auth_response(buf, &res), -1);
    res = sample_response();
    res.status = (enum auth_status)4;
    assert_int_equal(ipc_encode_auth_response(buf, &res), -1);
    res = sample_response();
    res.delay_ms = IPC_DELAY_MAX_MS + 1;
    assert_int_equal(ipc_encode_auth_response(buf, &res), -1);
    /* A failed encode leaves nothing half-written behind. */
    assert_int_equal(evbuffer_get_length(buf), 0);
    evbuffer_free(buf);
}

/* Feeding a frame one chunk at a time: decode says "need more" until the last byte arrives,
 * whatever the chunk boundaries. */
/* A full piece of a TLS report (binary-safe, at the maximum) and its result; a piece over
 * the maximum or a bad flag is refused by the encoder. */
static void test_roundtrip_tlsrpt(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    static struct ipc_tlsrpt_part part;
    memset(&part, 0, sizeof part);
    part.id = 99;
    part.last = 1;
    memset(part.data, '{', IPC_TLSRPT_PART_MAX);
    part.data[5] = '\0';
    part.data_len = IPC_TLSRPT_PART_MAX;
    assert_int_equal(ipc_encode_tlsrpt_part(buf, &part), 0);
    struct ipc_msg msg;
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_TLSRPT_PART);
    assert_int_equal(msg.u.tlsrpt_part.id, 99);
    assert_int_equal(msg.u.tlsrpt_part.last, 1);
    assert_int_equal(msg.u.tlsrpt_part.data_len, IPC_TLSRPT_PART_MAX);
    assert_memory_equal(msg.u.tlsrpt_part.data, part.data, IPC_TLSRPT_PART_MAX);
    part.data_len = IPC_TLSRPT_PART_MAX + 1;
    assert_int_equal(ipc_encode_tlsrpt_part(buf, &part), -1);
    part.data_len = 1;
    part.last = 2;
    assert_int_equal(ipc_encode_tlsrpt_part(buf, &part), -1);
    struct ipc_tlsrpt_result res = {.id = 99, .result = TLSRPT_DUPLICATE};
    strcpy(res.reason, "stored already");
    assert_int_equal(ipc_encode_tlsrpt_result(buf, &res), 0);
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_TLSRPT_RESULT);
    assert_int_equal(msg.u.tlsrpt_result.result, TLSRPT_DUPLICATE);
    assert_string_equal(msg.u.tlsrpt_result.reason, "stored already");
    res.result = (enum tlsrpt_result)4;
    assert_int_equal(ipc_encode_tlsrpt_result(buf, &res), -1);
    assert_int_equal(evbuffer_get_length(buf), 0);
    /* a result whose code is out of range is refused by the decoder too */
    const unsigned char bad[] = {IPC_TLSRPT_RESULT, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0};
    assert_int_equal(ipc_decode_body(bad, sizeof bad, &msg), -1);
    evbuffer_free(buf);
}

static void test_split_frames(void **state)
{
    (void)state;
    struct evbuffer *enc = evbuffer_new();
    struct ipc_auth_request req = sample_request();
    assert_int_equal(ipc_encode_auth_request(enc, &req), 0);
    size_t total = evbuffer_get_length(enc);
    unsigned char frame[IPC_MAX_FRAME + 4];
    assert_true(total <= sizeof frame);
    evbuffer_remove(enc, frame, total);
    evbuffer_free(enc);

    static const size_t steps[] = {1, 2, 3, 5, 7, 64, 1000};
    for (size_t s = 0; s < MG_ARRAY_LEN(steps); s++) {
        struct evbuffer *in = evbuffer_new();
        struct ipc_msg msg;
        size_t fed = 0;
        while (fed < total) {
            size_t n = steps[s] < total - fed ? steps[s] : total - fed;
            evbuffer_add(in, frame + fed, n);
            fed += n;
            int rc = ipc_decode(in, &msg);
            if (fed < total) {
                assert_int_equal(rc, 0);
                assert_int_equal(evbuffer_get_length(in), fed); /* untouched */
            } else {
                assert_int_equal(rc, 1);
            }
        }
        assert_string_equal(msg.u.req.user, "alice");
        assert_int_equal(evbuffer_get_length(in), 0);
        evbuffer_free(in);
    }
}

static void test_back_to_back(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_auth_response res = sample_response();
    struct ipc_msg msg;
    assert_int_equal(ipc_encode_ready(buf, 3), 0);
    assert_int_equal(ipc_encode_auth_response(buf, &res), 0);
    assert_int_equal(ipc_decode(buf, &msg), 1);
    assert_int_equal(msg.type, IPC_WORKER_READY);
    assert_int_equal(msg.u.worker_index, 3);
    assert_int_equal(ipc_decode(buf, &msg), 1);
    assert_int_equal(msg.type, IPC_AUTH_RESPONSE);
    assert_string_equal(msg.u.res.provider, "contoso");
    assert_int_equal(ipc_decode(buf, &msg), 0);
    evbuffer_free(buf);
}

static void add_prefix(struct evbuffer *buf, uint32_t len)
{
    unsigned char p[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 8), (unsigned char)len};
    evbuffer_add(buf, p, 4);
}

static void test_oversize_frame(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_msg msg;
    /* Rejected from the prefix alone, before any of the body arrives. */
    add_prefix(buf, IPC_MAX_FRAME + 1);
    assert_int_equal(ipc_decode(buf, &msg), -1);
    evbuffer_free(buf);
    buf = evbuffer_new();
    add_prefix(buf, 0xffffffffu);
    assert_int_equal(ipc_decode(buf, &msg), -1);
    evbuffer_free(buf);
    buf = evbuffer_new();
    add_prefix(buf, 0); /* not even a type byte */
    assert_int_equal(ipc_decode(buf, &msg), -1);
    evbuffer_free(buf);
}

static void test_bad_bodies(void **state)
{
    (void)state;
    struct ipc_msg msg;
    static const unsigned char unknown_type[] = {9, 0, 0, 0, 1};
    static const unsigned char ready_short[] = {IPC_WORKER_READY, 0, 0, 1};
    static const unsigned char ready_trailing[] = {IPC_WORKER_READY, 0, 0, 0, 1, 0};
    /* request: id, protocol 3 (out of range), then strings */
    static const unsigned char bad_protocol[] = {
        IPC_AUTH_REQUEST, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0};
    /* listener length 5 but only 2 bytes follow */
    static const unsigned char short_string[] = {
        IPC_AUTH_REQUEST, 0, 0, 0, 1, 0, 0, 0, 0, 0, 5, 'a', 'b'};
    /* listener length 64 == IPC_NAME_MAX: no room for the NUL */
    unsigned char long_string[1 + 8 + 2 + IPC_NAME_MAX + 6];
    memset(long_string, 'x', sizeof long_string);
    memcpy(long_string, (const unsigned char[]){IPC_AUTH_REQUEST, 0, 0, 0, 1, 0, 0, 0, 0, 0, 64},
           11);
    memset(long_string + 11 + IPC_NAME_MAX, 0, 6);
    /* user with an embedded NUL */
    static const unsigned char nul_in_user[] = {
        IPC_AUTH_REQUEST, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 0, 'b', 0, 0};
    static const unsigned char good_request[] = {
        IPC_AUTH_REQUEST, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'x', 'b', 0, 0};
    /* response with status 4 */
    static const unsigned char bad_status[] = {
        IPC_AUTH_RESPONSE, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    /* response with a delay beyond IPC_DELAY_MAX_MS (0x10000000 ms), then the token id */
    static const unsigned char bad_delay[] = {IPC_AUTH_RESPONSE,
                                              0,
                                              0,
                                              0,
                                              1,
                                              0,
                                              0,
                                              0,
                                              1,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0x10,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0,
                                              0};
    static const unsigned char good_response[] = {IPC_AUTH_RESPONSE,
                                                  0,
                                                  0,
                                                  0,
                                                  1,
                                                  0,
                                                  0,
                                                  0,
                                                  1,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0x13,
                                                  0x88,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0,
                                                  0, /* cause: "" */
                                                  0};
    /* the same without its token id */
    static const unsigned char response_without_id[] = {
        IPC_AUTH_RESPONSE, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x13, 0x88};
    static const unsigned char cancel_short[] = {IPC_AUTH_CANCEL, 0, 0, 1};
    static const unsigned char cancel_trailing[] = {IPC_AUTH_CANCEL, 0, 0, 0, 1, 0};

    assert_int_equal(ipc_decode_body(unknown_type, sizeof unknown_type, &msg), -1);
    assert_int_equal(ipc_decode_body(ready_short, sizeof ready_short, &msg), -1);
    assert_int_equal(ipc_decode_body(ready_trailing, sizeof ready_trailing, &msg), -1);
    assert_int_equal(ipc_decode_body(bad_protocol, sizeof bad_protocol, &msg), -1);
    assert_int_equal(ipc_decode_body(short_string, sizeof short_string, &msg), -1);
    assert_int_equal(ipc_decode_body(long_string, sizeof long_string, &msg), -1);
    assert_int_equal(ipc_decode_body(nul_in_user, sizeof nul_in_user, &msg), -1);
    assert_int_equal(ipc_decode_body(bad_status, sizeof bad_status, &msg), -1);
    assert_int_equal(ipc_decode_body(bad_delay, sizeof bad_delay, &msg), -1);
    assert_int_equal(ipc_decode_body(cancel_short, sizeof cancel_short, &msg), -1);
    assert_int_equal(ipc_decode_body(cancel_trailing, sizeof cancel_trailing, &msg), -1);
    assert_int_equal(ipc_decode_body(response_without_id, sizeof response_without_id, &msg), -1);
    assert_int_equal(ipc_decode_body(good_response, sizeof good_response, &msg), 1);
    assert_int_equal(msg.u.res.delay_ms, 5000);
    assert_int_equal(ipc_decode_body(good_request, sizeof good_request, &msg), 1);
    assert_string_equal(msg.u.req.user, "axb");
    assert_int_equal(ipc_decode_body(good_request, 0, &msg), -1);
}

/* A complete frame whose body is bad is a protocol error through ipc_decode as well. */
static void test_decode_trailing_bytes_in_frame(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_msg msg;
    add_prefix(buf, 6);
    evbuffer_add(buf, (const unsigned char[]){IPC_WORKER_READY, 0, 0, 0, 1, 0xff}, 6);
    assert_int_equal(ipc_decode(buf, &msg), -1);
    evbuffer_free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_ready),
        cmocka_unit_test(test_roundtrip_request),
        cmocka_unit_test(test_roundtrip_response),
        cmocka_unit_test(test_protolog),
        cmocka_unit_test(test_roundtrip_cancel),
        cmocka_unit_test(test_roundtrip_token_refused),
        cmocka_unit_test(test_token_refused_rejects_bad_fields),
        cmocka_unit_test(test_roundtrip_ticket_keys),
        cmocka_unit_test(test_ticket_keys_reject_bad_fields),
        cmocka_unit_test(test_encode_rejects_oversize_fields),
        cmocka_unit_test(test_roundtrip_tlsrpt),
        cmocka_unit_test(test_split_frames),
        cmocka_unit_test(test_back_to_back),
        cmocka_unit_test(test_oversize_frame),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_decode_trailing_bytes_in_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
