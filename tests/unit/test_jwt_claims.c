/* Tests for jwt_claims.c: base64url, payload decoding, permissions and expiry text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_claims.h"
#include "util.h"

/* base64url without padding, for building test tokens. */
static char *b64url(const char *in)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(in), o = 0;
    char *out = mg_malloc(n * 4 / 3 + 4);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = tab[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
    return out;
}

static char *make_token(const char *payload_json)
{
    char *h = b64url("{\"typ\":\"JWT\",\"alg\":\"RS256\"}"), *p = b64url(payload_json);
    char *t = mg_printf("%s.%s.c2lnbmF0dXJl", h, p);
    free(h);
    free(p);
    return t;
}

static void test_b64url(void **state)
{
    (void)state;
    size_t n;
    unsigned char *d = jwt_b64url_decode("aGVsbG8", 7, &n);
    assert_non_null(d);
    assert_int_equal(n, 5);
    assert_string_equal((char *)d, "hello");
    free(d);
    d = jwt_b64url_decode("aGVsbG8=", 8, &n); /* padding tolerated */
    assert_string_equal((char *)d, "hello");
    free(d);
    d = jwt_b64url_decode("-_-_", 4, &n); /* the URL-safe alphabet */
    assert_int_equal(n, 3);
    assert_memory_equal(d, "\xfb\xff\xbf", 3);
    free(d);
    d = jwt_b64url_decode("", 0, &n);
    assert_int_equal(n, 0);
    free(d);
    assert_null(jwt_b64url_decode("a+b/", 4, &n));  /* standard alphabet is not base64url */
    assert_null(jwt_b64url_decode("abcde", 5, &n)); /* 1 leftover char: impossible length */
    assert_null(jwt_b64url_decode("ab cd", 5, &n));
}

static void test_decode(void **state)
{
    (void)state;
    char *t = make_token("{\"aud\":\"https://outlook.office.com\",\"roles\":[\"IMAP.AccessAsApp\","
                         "\"POP.AccessAsApp\"],\"appid\":\"app-1\",\"tid\":\"t-1\",\"exp\":"
                         "1700000000}");
    json_t *c = jwt_claims_decode(t, strlen(t));
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "https://outlook.office.com");
    int64_t exp = 0;
    assert_int_equal(jwt_claims_time(c, "exp", &exp), 0);
    assert_int_equal(exp, 1700000000);
    assert_int_equal(jwt_claims_time(c, "nbf", &exp), -1);
    assert_int_equal(jwt_claims_time(c, "aud", &exp), -1);
    json_decref(c);
    free(t);

    /* not JWTs */
    static const char *const bad[] = {
        "", "opaque-token", "a.b", "a.b.c.d", "..", "eyJ4IjoxfQ" /* no dots */, "x.!!!.y"};
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++)
        assert_null(jwt_claims_decode(bad[i], strlen(bad[i])));
    t = make_token("[1,2]"); /* a payload that is not an object */
    assert_null(jwt_claims_decode(t, strlen(t)));
    free(t);
    t = make_token("{\"a\":1,\"a\":2}"); /* duplicate keys are refused */
    assert_null(jwt_claims_decode(t, strlen(t)));
    free(t);
    t = make_token("{\"exp\":1}");
    assert_null(jwt_claims_decode(t, strlen(t) - 13)); /* no second dot */
    json_t *ok = jwt_claims_decode(t, strlen(t) - 12); /* empty signature: still read */
    assert_non_null(ok);
    json_decref(ok);
    free(t);
}

static void test_permissions(void **state)
{
    (void)state;
    char *t = make_token("{\"roles\":[\"IMAP.AccessAsApp\",\"POP.AccessAsApp\",7]}");
    json_t *c = jwt_claims_decode(t, strlen(t));
    const char *kind = NULL;
    char *p = jwt_claims_permissions(c, &kind);
    assert_string_equal(kind, "roles");
    assert_string_equal(p, "IMAP.AccessAsApp POP.AccessAsApp");
    free(p);
    assert_true(jwt_claims_has_permission(c, jwt_required_permission(MG_PROTO_IMAP, 0)));
    assert_true(jwt_claims_has_permission(c, jwt_required_permission(MG_PROTO_POP3, 0)));
    assert_false(jwt_claims_has_permission(c, jwt_required_permission(MG_PROTO_SMTP, 0)));
    assert_false(jwt_claims_has_permission(c, "IMAP.AccessAsApp2"));
    assert_false(jwt_claims_has_permission(c, "imap.accessasapp"));
    json_decref(c);
    free(t);

    t = make_token("{\"scp\":\"IMAP.AccessAsUser.All SMTP.Send offline_access\"}");
    c = jwt_claims_decode(t, strlen(t));
    p = jwt_claims_permissions(c, &kind);
    assert_string_equal(kind, "scp");
    assert_string_equal(p, "IMAP.AccessAsUser.All SMTP.Send offline_access");
    free(p);
    assert_true(jwt_claims_has_permission(c, jwt_required_permission(MG_PROTO_IMAP, 1)));
    assert_true(jwt_claims_has_permission(c, jwt_required_permission(MG_PROTO_SMTP, 1)));
    assert_false(jwt_claims_has_permission(c, jwt_required_permission(MG_PROTO_POP3, 1)));
    assert_false(jwt_claims_has_permission(c, "SMTP")); /* whole words only */
    assert_false(jwt_claims_has_permission(c, "Send"));
    assert_false(jwt_claims_has_permission(c, ""));
    json_decref(c);
    free(t);

    t = make_token("{\"roles\":[]}");
    c = jwt_claims_decode(t, strlen(t));
    p = jwt_claims_permissions(c, &kind);
    assert_string_equal(p, "");
    free(p);
    json_decref(c);
    free(t);
    t = make_token("{\"aud\":\"x\"}");
    c = jwt_claims_decode(t, strlen(t));
    assert_null(jwt_claims_permissions(c, &kind));
    assert_null(kind);
    assert_false(jwt_claims_has_permission(c, "IMAP.AccessAsApp"));
    json_decref(c);
    free(t);
}

static void test_expiry(void **state)
{
    (void)state;
    char buf[96];
    jwt_format_expiry(1795580000, 1795580000 - 3599, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-25T04:13:20Z (in 59 min)");
    jwt_format_expiry(1795580000, 1795580000 - 40, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-25T04:13:20Z (in 40 s)");
    jwt_format_expiry(1795580000, 1795580000 - 7500, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-25T04:13:20Z (in 2 h 5 min)");
    jwt_format_expiry(1795580000, 1795580000 + 180, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-25T04:13:20Z (expired 3 min ago)");
    jwt_format_expiry(INT64_MAX, 0, buf, sizeof buf); /* absurd values do not overflow */
    assert_non_null(strstr(buf, "(in "));
    jwt_format_expiry(INT64_MIN, 1795580000, buf, sizeof buf);
    assert_non_null(strstr(buf, "? (expired "));
    char tiny[8];
    jwt_format_expiry(1795580000, 0, tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
