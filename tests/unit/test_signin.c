/* The sign-in page's pure parts: its IPC frames (ipc.c), PKCE and the authorize URL
 * (auth_code.c), the token request body (token_parse.c), the broker's records
 * (signin_state.c) and the Cookie header (cookie.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "auth_code.h"
#include "config.h"
#include "cookie.h"
#include "ipc.h"
#include "signin_state.h"
#include "token.h"
#include "util.h"

/* ---- IPC ---- */

static void decode_one(struct evbuffer *buf, struct ipc_msg *msg)
{
    assert_int_equal(ipc_decode(buf, msg), 1);
    assert_int_equal(evbuffer_get_length(buf), 0);
}

static void test_ipc_finish_roundtrip_full_fields(void **state)
{
    (void)state;
    struct ipc_signin_finish m = {.id = 42};
    memset(m.code, 'c', sizeof m.code - 1);
    memset(m.error_description, 'd', sizeof m.error_description - 1);
    memset(m.state, 's', AUTH_CODE_NONCE_LEN);
    memset(m.browser, 'b', AUTH_CODE_NONCE_LEN);
    strcpy(m.error, "access_denied");
    strcpy(m.client_addr, "[2001:db8::1]:443");
    struct evbuffer *buf = evbuffer_new();
    assert_int_equal(ipc_encode_signin_finish(buf, &m), 0);
    assert_true(evbuffer_get_length(buf) <= 4 + IPC_MAX_FRAME);
    struct ipc_msg msg;
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_SIGNIN_FINISH);
    assert_int_equal(msg.u.signin_finish.id, 42);
    assert_string_equal(msg.u.signin_finish.code, m.code);
    assert_string_equal(msg.u.signin_finish.error_description, m.error_description);
    assert_string_equal(msg.u.signin_finish.state, m.state);
    assert_string_equal(msg.u.signin_finish.browser, m.browser);
    assert_string_equal(msg.u.signin_finish.error, "access_denied");
    ipc_msg_wipe(&msg);
    assert_int_equal(msg.u.signin_finish.code[0], 0); /* the code is wiped with the message */
    evbuffer_free(buf);
}

static void test_ipc_start_and_answer_roundtrip(void **state)
{
    (void)state;
    struct evbuffer *buf = evbuffer_new();
    struct ipc_signin_start s = {.id = 7};
    strcpy(s.user, "alice");
    strcpy(s.client_addr, "127.0.0.1:5000");
    assert_int_equal(ipc_encode_signin_start(buf, &s), 0);
    struct ipc_msg msg;
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_SIGNIN_START);
    assert_string_equal(msg.u.signin_start.user, "alice");
    assert_string_equal(msg.u.signin_start.client_addr, "127.0.0.1:5000");

    struct ipc_signin_answer a = {.id = 9, .status = SIGNIN_CONNECTED};
    memset(a.location, 'u', sizeof a.location - 1);
    strcpy(a.user, "alice");
    strcpy(a.mailbox, "alice@example.com");
    strcpy(a.password, "Pw");
    strcpy(a.text, "words");
    assert_int_equal(ipc_encode_signin_answer(buf, &a), 0);
    decode_one(buf, &msg);
    assert_int_equal(msg.type, IPC_SIGNIN_ANSWER);
    assert_int_equal(msg.u.signin_answer.status, SIGNIN_CONNECTED);
    assert_string_equal(msg.u.signin_answer.location, a.location);
    assert_string_equal(msg.u.signin_answer.password, "Pw");
    assert_string_equal(msg.u.signin_answer.user, "alice");
    /* a status out of range is neither sent nor accepted */
    a.status = SIGNIN_FAILED + 1;
    assert_int_equal(ipc_encode_signin_answer(buf, &a), -1);
    assert_int_equal(evbuffer_get_length(buf), 0);
    unsigned char body[] = {IPC_SIGNIN_ANSWER, 0, 0, 0, 1, 0, 0, 0, 4};
    assert_int_equal(ipc_decode_body(body, sizeof body, &msg), -1);
    evbuffer_free(buf);
}

/* ---- PKCE, URL, words ---- */

static void test_challenge_rfc7636_example(void **state)
{
    (void)state;
    char out[AUTH_CODE_NONCE_LEN + 1];
    /* RFC 7636 appendix B */
    assert_int_equal(auth_code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out), 0);
    assert_string_equal(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_int_equal(auth_code_challenge("", out), -1);
}

static void test_nonces_are_fresh_base64url(void **state)
{
    (void)state;
    char a[AUTH_CODE_NONCE_LEN + 1], b[AUTH_CODE_NONCE_LEN + 1];
    auth_code_nonce(a);
    auth_code_nonce(b);
    assert_int_equal(strlen(a), AUTH_CODE_NONCE_LEN);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     AUTH_CODE_NONCE_LEN);
    assert_string_not_equal(a, b);
}

static void test_authorize_url(void **state)
{
    (void)state;
    struct provider_conf p = {.type = MG_PROVIDER_MICROSOFT,
                              .client_id = "cid",
                              .scope = "https://outlook.office365.com/IMAP.AccessAsUser.All "
                                       "offline_access",
                              .authorization_endpoint = "https://login.example/t/authorize"};
    char *url = auth_code_authorize_url(&p, "https://gw.example/oauth/callback", "ST", "CH",
                                        "a+b@example.com");
    assert_string_equal(url, "https://login.example/t/authorize?client_id=cid&response_type=code"
                             "&redirect_uri=https%3A%2F%2Fgw.example%2Foauth%2Fcallback"
                             "&response_mode=query&scope=https%3A%2F%2Foutlook.office365.com%2F"
                             "IMAP.AccessAsUser.All%20offline_access&state=ST&code_challenge=CH"
                             "&code_challenge_method=S256&login_hint=a%2Bb%40example.com");
    free(url);
    p.type = MG_PROVIDER_GOOGLE;
    p.authorization_endpoint = "https://accounts.example/auth?hd=x";
    url = auth_code_authorize_url(&p, "r", "s", "c", "m");
    assert_non_null(strstr(url, "auth?hd=x&client_id=cid&"));
    assert_non_null(strstr(url, "&access_type=offline&prompt=consent"));
    free(url);
    p.authorization_endpoint = NULL;
    assert_null(auth_code_authorize_url(&p, "r", "s", "c", "m"));
    char *redirect = auth_code_redirect_uri("https://gw.example/mail");
    assert_string_equal(redirect, "https://gw.example/mail/oauth/callback");
    free(redirect);
}

static void test_error_words(void **state)
{
    (void)state;
    char out[IPC_SIGNIN_TEXT_MAX];
    auth_code_error_words("access_denied",
                          "AADSTS65004: User declined to consent to access the app.\r\nTrace", out,
                          sizeof out);
    assert_non_null(strstr(out, "declined"));
    assert_non_null(strstr(out, "(error AADSTS65004)."));
    assert_null(strstr(out, "User declined to consent")); /* the provider's text is not shown */
    assert_null(strstr(out, "access_denied"));
    auth_code_error_words("invalid_grant", "AADSTS501481: The Code_Verifier does not match", out,
                          sizeof out);
    assert_non_null(strstr(out, "refused the sign-in (error AADSTS501481). The code verifier"));
    auth_code_error_words("server_error", "<script>no code</script>", out, sizeof out);
    assert_string_equal(out, "The provider refused the sign-in.");
    auth_code_error_words(NULL, NULL, out, sizeof out);
    assert_string_equal(out, "The provider refused the sign-in.");
}

static void test_token_body(void **state)
{
    (void)state;
    struct provider_conf p = {.client_id = "cid",
                              .scope = "s offline_access",
                              .token_endpoint = "https://login.example/token",
                              .client_secret = "se&cret"};
    char err[128];
    char *body = token_auth_code_body(&p, "co=de", "https://gw/cb", "VER", err, sizeof err);
    assert_string_equal(body, "grant_type=authorization_code&client_id=cid&code=co%3Dde"
                              "&redirect_uri=https%3A%2F%2Fgw%2Fcb&code_verifier=VER"
                              "&scope=s%20offline_access&client_secret=se%26cret");
    mg_free_secret(&body);
    p.token_endpoint = NULL;
    assert_null(token_auth_code_body(&p, "c", "r", "v", err, sizeof err));
}

/* ---- the broker's records ---- */

static void test_states_one_time_and_bound(void **state)
{
    (void)state;
    struct signin_states *ss = signin_states_new(4, 4, 1000);
    const struct signin_record *r =
        signin_states_add(ss, &(struct signin_for){"alice", "entra", "a@x", "1.2.3.4:5"}, 5000);
    assert_non_null(r);
    struct signin_record copy = *r, out;
    assert_string_not_equal(copy.state, copy.browser);
    assert_string_not_equal(copy.state, copy.verifier);
    assert_int_equal(signin_states_take(ss, "nope", copy.browser, 5001, &out), SIGNIN_UNKNOWN);
    assert_int_equal(signin_states_take(ss, "", "", 5001, &out), SIGNIN_UNKNOWN);
    assert_int_equal(signin_states_take(ss, copy.state, copy.browser, 5001, &out), SIGNIN_TAKEN);
    assert_string_equal(out.user, "alice");
    assert_string_equal(out.verifier, copy.verifier);
    /* once only */
    assert_int_equal(signin_states_take(ss, copy.state, copy.browser, 5002, &out), SIGNIN_UNKNOWN);
    /* another browser: refused, and the record is gone too */
    copy = *signin_states_add(ss, &(struct signin_for){"bob", "entra", "b@x", "1.2.3.4:6"}, 6000);
    assert_int_equal(signin_states_take(ss, copy.state, "", 6001, &out), SIGNIN_OTHER_BROWSER);
    assert_int_equal(signin_states_take(ss, copy.state, copy.browser, 6001, &out), SIGNIN_UNKNOWN);
    assert_int_equal(signin_states_count(ss), 0);
    signin_states_free(&ss);
    assert_null(ss);
}

static void test_states_expire_and_are_bounded(void **state)
{
    (void)state;
    struct signin_states *ss = signin_states_new(3, 2, 1000);
    struct signin_for from_a = {"a", "p", "m", "10.0.0.1:1000"};
    struct signin_for from_b = {"b", "p", "m", "[2001:db8::1]:1000"};
    struct signin_record first = *signin_states_add(ss, &from_a, 0), out;
    from_a.client_addr = "10.0.0.1:2000"; /* the same address, another port */
    assert_non_null(signin_states_add(ss, &from_a, 10));
    assert_null(signin_states_add(ss, &from_a, 20)); /* two per address */
    assert_non_null(signin_states_add(ss, &from_b, 20));
    from_b.client_addr = "[2001:db8::2]:1";
    assert_null(signin_states_add(ss, &from_b, 30)); /* full */
    assert_int_equal(signin_states_take(ss, first.state, first.browser, 1000, &out),
                     SIGNIN_EXPIRED);
    /* expired ones make room */
    assert_non_null(signin_states_add(ss, &from_b, 1010));
    assert_non_null(signin_states_add(ss, &from_a, 1011));
    assert_int_equal(signin_states_count(ss), 3);
    char long_user[IPC_USER_MAX + 1];
    memset(long_user, 'u', sizeof long_user - 1);
    long_user[IPC_USER_MAX] = '\0';
    struct signin_for too_long = {long_user, "p", "m", "10.9.9.9:1"};
    assert_null(signin_states_add(ss, &too_long, 5000));
    signin_states_free(&ss);
}

/* ---- Cookie ---- */

static void test_cookie_values(void **state)
{
    (void)state;
    char v[16];
    assert_int_equal(http_cookie_value("a=1; mg=xyz; b=2", "mg", v, sizeof v), 0);
    assert_string_equal(v, "xyz");
    assert_int_equal(http_cookie_value("mg=first;mg=second", "mg", v, sizeof v), 0);
    assert_string_equal(v, "first");
    assert_int_equal(http_cookie_value("xmg=1; mg=\"q\" ", "mg", v, sizeof v), 0);
    assert_string_equal(v, "q");
    assert_int_equal(http_cookie_value("mgx=1; amg=2", "mg", v, sizeof v), -1);
    assert_string_equal(v, "");
    assert_int_equal(http_cookie_value("mg=0123456789abcdefXYZ", "mg", v, sizeof v), -1);
    assert_string_equal(v, "");
    assert_int_equal(http_cookie_value("a=1; mg=", "mg", v, sizeof v), 0); /* an empty value */
    assert_string_equal(v, "");
    assert_int_equal(http_cookie_value("mg; b=1", "mg", v, sizeof v), -1); /* no '=': no value */
    assert_int_equal(http_cookie_value(NULL, "mg", v, sizeof v), -1);
    assert_int_equal(http_cookie_value(";;; ;", "mg", v, sizeof v), -1);
    assert_int_equal(http_cookie_value("mg=\"", "mg", v, sizeof v), 0);
    assert_string_equal(v, "\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipc_finish_roundtrip_full_fields),
        cmocka_unit_test(test_ipc_start_and_answer_roundtrip),
        cmocka_unit_test(test_challenge_rfc7636_example),
        cmocka_unit_test(test_nonces_are_fresh_base64url),
        cmocka_unit_test(test_authorize_url),
        cmocka_unit_test(test_error_words),
        cmocka_unit_test(test_token_body),
        cmocka_unit_test(test_states_one_time_and_bound),
        cmocka_unit_test(test_states_expire_and_are_bounded),
        cmocka_unit_test(test_cookie_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
