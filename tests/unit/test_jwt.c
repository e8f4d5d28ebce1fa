/* Unit tests of jwt.c (client and service account assertions) and the bodies of token_parse.c
 * that carry them. Signatures are verified here with OpenSSL and the certificate's public key,
 * independently of jwt.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "config.h"
#include "jwt.h"
#include "token.h"
#include "cert_fixture.h"
#include "util.h"

#define AUD "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
#define CLIENT_ID "11111111-2222-3333-4444-555555555555"

static EVP_PKEY *key;
static X509 *cert;
static unsigned char *der;
static int der_len;

static int setup(void **state)
{
    (void)state;
    key = EVP_RSA_gen(2048);
    if (!key)
        return -1;
    cert = test_self_signed_cert(key, "mailgate", NULL);
    if (!cert)
        return -1;
    der = NULL;
    der_len = i2d_X509(cert, &der);
    return der_len > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    OPENSSL_free(der);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

/* base64url -> bytes, by way of standard base64 (OpenSSL's decoder, not jwt.c's encoder). */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
    char *std = mg_malloc(n + 4);
    size_t i;
    for (i = 0; i < n; i++)
        std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    assert_null(memchr(s, '=', n));
    while (i % 4)
        std[i++] = '=';
    unsigned char *out = mg_malloc(i / 4 * 3 + 1);
    int len = EVP_DecodeBlock(out, (const unsigned char *)std, (int)i);
    assert_true(len >= 0);
    size_t pad = (size_t)(i - n);
    *out_len = (size_t)len - pad;
    out[*out_len] = '\0';
    free(std);
    return out;
}

/* The three parts of a compact JWS. */
struct parts {
    json_t *header, *claims;
    unsigned char *sig;
    size_t sig_len;
    char *signing_input;
};

static struct parts split(const char *jwt)
{
    struct parts p = {0};
    const char *dot1 = strchr(jwt, '.');
    assert_non_null(dot1);
    const char *dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));
    size_t len;
    unsigned char *h = b64url_decode(jwt, (size_t)(dot1 - jwt), &len);
    p.header = json_loadb((const char *)h, len, JSON_REJECT_DUPLICATES, NULL);
    free(h);
    unsigned char *c = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &len);
    p.claims = json_loadb((const char *)c, len, JSON_REJECT_DUPLICATES, NULL);
    free(c);
    assert_non_null(p.header);
    assert_non_null(p.claims);
    p.sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &p.sig_len);
    p.signing_input = mg_strndup(jwt, (size_t)(dot2 - jwt));
    return p;
}

static void parts_free(struct parts *p)
{
    json_decref(p->header);
    json_decref(p->claims);
    free(p->sig);
    free(p->signing_input);
}

/* 1 when the signature verifies with the certificate's public key. pss_salt < 0: PKCS#1 v1.5. */
static int verify(const struct parts *p, int pss_salt)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(cert)),
                     1);
    if (pss_salt >= 0) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt), 1);
    }
    int rc = EVP_DigestVerify(ctx, p->sig, p->sig_len, (const unsigned char *)p->signing_input,
                              strlen(p->signing_input));
    EVP_MD_CTX_free(ctx);
    return rc == 1;
}

static const char *str(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static json_int_t num(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static char *expected_thumbprint(const EVP_MD *md)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n;
    assert_int_equal(EVP_Digest(der, (size_t)der_len, digest, &n, md, NULL), 1);
    unsigned char b64[128];
    int len = EVP_EncodeBlock(b64, digest, (int)n);
    char *out = mg_strndup((const char *)b64, (size_t)len);
    for (char *q = out; *q; q++)
        *q = *q == '+' ? '-' : *q == '/' ? '_' : *q;
    char *eq = strchr(out, '=');
    if (eq)
        *eq = '\0';
    return out;
}

static void test_base64url(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } vectors[] = {{"", ""},
                   {"f", "Zg"},
                   {"fo", "Zm8"},
                   {"foo", "Zm9v"},
                   {"foob", "Zm9vYg"},
                   {"fooba", "Zm9vYmE"},
                   {"foobar", "Zm9vYmFy"},
                   {"\xfb\xff", "-_8"},
                   {"\xff\xfe\xfd", "__79"}};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char *s = jwt_base64url(vectors[i].in, strlen(vectors[i].in));
        assert_string_equal(s, vectors[i].out);
        free(s);
    }
}

static void test_alg_names(void **state)
{
    (void)state;
    enum jwt_alg a = JWT_PS256;
    assert_int_equal(jwt_alg_parse("RS256", &a), 0);
    assert_int_equal(a, JWT_RS256);
    assert_int_equal(jwt_alg_parse("PS256", &a), 0);
    assert_int_equal(a, JWT_PS256);
    assert_int_equal(jwt_alg_parse("rs256", &a), -1);
    assert_int_equal(jwt_alg_parse("HS256", &a), -1);
    assert_int_equal(jwt_alg_parse("none", &a), -1);
    assert_string_equal(jwt_alg_name(JWT_RS256), "RS256");
    assert_string_equal(jwt_alg_name(JWT_PS256), "PS256");
}

static void test_thumbprints(void **state)
{
    (void)state;
    char x5t[JWT_X5T_SIZE], s256[JWT_X5T_S256_SIZE];
    assert_int_equal(jwt_cert_thumbprints(der, (size_t)der_len, x5t, s256), 0);
    assert_int_equal(strlen(x5t), 27);
    assert_int_equal(strlen(s256), 43);
    char *want1 = expected_thumbprint(EVP_sha1()), *want256 = expected_thumbprint(EVP_sha256());
    assert_string_equal(x5t, want1);
    assert_string_equal(s256, want256);
    free(want1);
    free(want256);
    assert_int_equal(jwt_cert_thumbprints(der, 0, x5t, s256), -1);
}

static char *make(enum jwt_alg alg, const char *jti, int64_t now, int64_t lifetime)
{
    char x5t[JWT_X5T_SIZE], s256[JWT_X5T_S256_SIZE], error[256];
    assert_int_equal(jwt_cert_thumbprints(der, (size_t)der_len, x5t, s256), 0);
    struct jwt_assertion a = {.alg = alg,
                              .key = key,
                              .x5t = x5t,
                              .x5t_s256 = s256,
                              .client_id = CLIENT_ID,
                              .audience = AUD,
                              .now = now,
                              .lifetime = lifetime,
                              .jti = jti};
    char *jwt = jwt_client_assertion(&a, error, sizeof error);
    if (!jwt)
        fail_msg("jwt_client_assertion: %s", error);
    return jwt;
}

static void check_claims(const struct parts *p, int64_t now, int64_t lifetime)
{
    assert_string_equal(str(p->header, "typ"), "JWT");
    char *want1 = expected_thumbprint(EVP_sha1()), *want256 = expected_thumbprint(EVP_sha256());
    assert_string_equal(str(p->header, "x5t"), want1);
    assert_string_equal(str(p->header, "x5t#S256"), want256);
    free(want1);
    free(want256);
    assert_string_equal(str(p->claims, "aud"), AUD);
    assert_string_equal(str(p->claims, "iss"), CLIENT_ID);
    assert_string_equal(str(p->claims, "sub"), CLIENT_ID);
    assert_int_equal(num(p->claims, "nbf"), now);
    assert_int_equal(num(p->claims, "iat"), now);
    assert_int_equal(num(p->claims, "exp"), now + lifetime);
    assert_int_equal(strlen(str(p->claims, "jti")), 36);
}

static void test_rs256(void **state)
{
    (void)state;
    char *jwt = make(JWT_RS256, NULL, 1700000000, 0);
    assert_int_equal(
        strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
        strlen(jwt));
    struct parts p = split(jwt);
    assert_string_equal(str(p.header, "alg"), "RS256");
    check_claims(&p, 1700000000, JWT_ASSERTION_LIFETIME);
    assert_int_equal(p.sig_len, 256);
    assert_true(verify(&p, -1));
    assert_false(verify(&p, 32));
    p.signing_input[5] ^= 1; /* any change to header or claims breaks it */
    assert_false(verify(&p, -1));
    parts_free(&p);
    free(jwt);
}

static void test_ps256(void **state)
{
    (void)state;
    char *jwt = make(JWT_PS256, NULL, 1800000000, 300);
    struct parts p = split(jwt);
    assert_string_equal(str(p.header, "alg"), "PS256");
    check_claims(&p, 1800000000, 300);
    assert_int_equal(p.sig_len, 256);
    assert_true(verify(&p, 32)); /* salt length = SHA-256 output, exactly (RFC 7518 3.5) */
    assert_false(verify(&p, -1));
    parts_free(&p);
    /* PSS is randomised: the same input signs differently, both verify */
    char *again = make(JWT_PS256, "fixed-jti", 1800000000, 300);
    char *twice = make(JWT_PS256, "fixed-jti", 1800000000, 300);
    assert_string_not_equal(again, twice);
    struct parts q = split(twice);
    assert_string_equal(str(q.claims, "jti"), "fixed-jti");
    assert_true(verify(&q, 32));
    parts_free(&q);
    free(again);
    free(twice);
    free(jwt);
}

static void test_jti_unique(void **state)
{
    (void)state;
    char *a = make(JWT_RS256, NULL, 1700000000, 0), *b = make(JWT_RS256, NULL, 1700000000, 0);
    struct parts pa = split(a), pb = split(b);
    assert_string_not_equal(str(pa.claims, "jti"), str(pb.claims, "jti"));
    assert_int_equal(str(pa.claims, "jti")[14], '4'); /* UUID version 4 */
    parts_free(&pa);
    parts_free(&pb);
    free(a);
    free(b);
}

static void test_refuses_non_rsa_key(void **state)
{
    (void)state;
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    char error[256];
    struct jwt_assertion a = {.alg = JWT_RS256,
                              .key = ec,
                              .x5t = "x",
                              .x5t_s256 = "y",
                              .client_id = CLIENT_ID,
                              .audience = AUD,
                              .now = 1};
    assert_null(jwt_client_assertion(&a, error, sizeof error));
    assert_non_null(strstr(error, "not an RSA key"));
    a.key = NULL;
    assert_null(jwt_client_assertion(&a, error, sizeof error));
    a.key = key;
    a.audience = NULL;
    assert_null(jwt_client_assertion(&a, error, sizeof error));
    assert_non_null(strstr(error, "incomplete"));
    EVP_PKEY_free(ec);
}

/* A provider with certificate credentials, as config.c loads it. */
static struct provider_conf cert_provider(void)
{
    struct provider_conf p = {.name = "contoso",
                              .client_id = "app-1",
                              .token_endpoint = AUD,
                              .scope = "https://x/.default",
                              .client_key = key,
                              .client_assertion_alg = JWT_RS256,
                              .client_cert_der = der,
                              .client_cert_der_len = (size_t)der_len};
    return p;
}

/* The body carries a fresh, verifiable assertion for the client, and no secret. */
static void test_assertion_body(void **state)
{
    (void)state;
    struct provider_conf p = cert_provider();
    p.client_secret = "ignored-when-a-key-is-loaded";
    char err[256] = "";
    char *body = token_app_body(&p, err, sizeof err);
    assert_non_null(body);
    static const char prefix[] = "grant_type=client_credentials&client_id=app-1"
                                 "&scope=https%3A%2F%2Fx%2F.default"
                                 "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                                 "client-assertion-type%3Ajwt-bearer"
                                 "&client_assertion=";
    assert_true(strncmp(body, prefix, strlen(prefix)) == 0);
    assert_null(strstr(body, "client_secret"));
    struct parts q = split(body + strlen(prefix));
    assert_true(verify(&q, -1));
    assert_string_equal(str(q.claims, "iss"), "app-1");
    assert_string_equal(str(q.claims, "aud"), AUD);
    parts_free(&q);
    mg_free_secret(&body);
}

#define SA_EMAIL "mailgate@project-1.iam.gserviceaccount.com"
#define SA_AUD "https://oauth2.googleapis.com/token"

static void check_sa_claims(const struct parts *q, const char *mailbox, int64_t now)
{
    assert_string_equal(str(q->header, "alg"), "RS256");
    assert_string_equal(str(q->header, "typ"), "JWT");
    assert_string_equal(str(q->header, "kid"), "0123abcd");
    assert_int_equal(json_object_size(q->header), 3);
    assert_string_equal(str(q->claims, "iss"), SA_EMAIL);
    assert_string_equal(str(q->claims, "scope"), "https://mail.google.com/");
    assert_string_equal(str(q->claims, "aud"), SA_AUD);
    assert_string_equal(str(q->claims, "sub"), mailbox);
    assert_int_equal(num(q->claims, "iat"), now);
    assert_int_equal(num(q->claims, "exp"), now + 3600);
    assert_int_equal(json_object_size(q->claims), 6);
    assert_true(verify(q, -1));
    assert_false(verify(q, 32));
}

static void test_service_account(void **state)
{
    (void)state;
    char err[256] = "";
    struct jwt_sa_assertion a = {.key = key,
                                 .key_id = "0123abcd",
                                 .client_email = SA_EMAIL,
                                 .scope = "https://mail.google.com/",
                                 .audience = SA_AUD,
                                 .subject = "alice@example.com",
                                 .now = 1700000000};
    char *jwt = jwt_service_account_assertion(&a, err, sizeof err);
    assert_non_null(jwt);
    struct parts q = split(jwt);
    check_sa_claims(&q, "alice@example.com", 1700000000);
    q.signing_input[3] ^= 1;
    assert_false(verify(&q, -1));
    parts_free(&q);
    mg_free_secret(&jwt);
    a.subject = NULL;
    assert_null(jwt_service_account_assertion(&a, err, sizeof err));
    assert_non_null(strstr(err, "incomplete"));
    a.subject = "bob@example.com";
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    a.key = ec;
    assert_null(jwt_service_account_assertion(&a, err, sizeof err));
    assert_non_null(strstr(err, "not an RSA key"));
    EVP_PKEY_free(ec);
}

static void test_jwt_bearer_body(void **state)
{
    (void)state;
    struct provider_conf p = {.name = "google",
                              .token_endpoint = SA_AUD,
                              .scope = "https://mail.google.com/",
                              .sa_client_email = SA_EMAIL,
                              .sa_key_id = "0123abcd",
                              .sa_key = key};
    char err[256] = "";
    int64_t before = (int64_t)time(NULL);
    char *body = token_jwt_bearer_body(&p, "carol@example.com", err, sizeof err);
    int64_t after = (int64_t)time(NULL);
    assert_non_null(body);
    static const char prefix[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    assert_true(strncmp(body, prefix, strlen(prefix)) == 0);
    struct parts q = split(body + strlen(prefix));
    int64_t iat = num(q.claims, "iat");
    assert_true(iat >= before && iat <= after);
    check_sa_claims(&q, "carol@example.com", iat);
    parts_free(&q);
    mg_free_secret(&body);
    p.sa_key = NULL; /* a worker-side config */
    assert_null(token_jwt_bearer_body(&p, "carol@example.com", err, sizeof err));
    assert_string_equal(err, "no service account key loaded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_thumbprints),
        cmocka_unit_test(test_rs256),
        cmocka_unit_test(test_ps256),
        cmocka_unit_test(test_jti_unique),
        cmocka_unit_test(test_refuses_non_rsa_key),
        cmocka_unit_test(test_assertion_body),
        cmocka_unit_test(test_service_account),
        cmocka_unit_test(test_jwt_bearer_body),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
