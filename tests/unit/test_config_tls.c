/* Unit tests of the [tls] keys (config.c, config_values.c, tls_policy.c): versions, cipher
 * suites, the RSA + ECDSA certificate pair, each error at its line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "config.h"
#include "config_fixture.h"
#include "tls_policy.h"
#include "util.h"

/* [tls] with certificate = cert, private_key = key and `extra` keys from line 4; then one
 * listener and one provider. */
static struct loaded load_tls(const char *cert, const char *key, const char *extra)
{
    char *text = mg_printf("[tls]\n"
                           "certificate = %s\n"
                           "private_key = %s\n"
                           "%s"
                           "[listen imaps]\n"
                           "protocol = imap\n"
                           "address = 127.0.0.1:10993\n"
                           "[provider ms]\n"
                           "type = microsoft\n"
                           "tenant = contoso.onmicrosoft.com\n"
                           "client_id = c\n"
                           "client_secret_file = %s\n",
                           cert, key, extra, secret_path);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    free(text);
    return l;
}

/* The ECDSA pair as lines 4 and 5. */
static char *ecdsa_lines(const char *cert, const char *key)
{
    return mg_printf("ecdsa_certificate = %s\necdsa_private_key = %s\n", cert, key);
}

static void test_defaults(void **state)
{
    (void)state;
    struct loaded l = load_tls(cert_path, key_path, "");
    assert_non_null(l.cfg);
    assert_null(l.cfg->tls.ciphers); /* TLS_DEFAULT_CIPHERS */
    assert_null(l.cfg->tls.ecdsa_certificate);
    assert_int_equal(l.cfg->tls.min_version, MG_TLS_VERSION_1_2);
    assert_true(l.cfg->tls.session_ticket_lifetime_ms == 3600 * 1000);
    loaded_free(&l);
}

static void test_session_tickets(void **state)
{
    (void)state;
    struct loaded l = load_tls(cert_path, key_path, "session_tickets = 0\n");
    assert_non_null(l.cfg);
    assert_true(l.cfg->tls.session_ticket_lifetime_ms == 0);
    loaded_free(&l);
    l = load_tls(cert_path, key_path, "session_tickets = 7d\n");
    assert_non_null(l.cfg);
    assert_true(l.cfg->tls.session_ticket_lifetime_ms == 7ull * 24 * 3600 * 1000);
    loaded_free(&l);
    l = load_tls(cert_path, key_path, "session_tickets = 8d\n");
    assert_null(l.cfg);
    assert_error(&l, 4, "session_tickets: at most 7d (RFC 8446 4.6.1), or 0 for none");
    loaded_free(&l);
}

static void test_min_version_and_ciphers(void **state)
{
    (void)state;
    struct loaded l = load_tls(cert_path, key_path,
                               "min_version = TLSv1.3\nciphers = ECDHE-RSA-AES256-GCM-SHA384\n");
    assert_non_null(l.cfg);
    assert_int_equal(l.cfg->tls.min_version, MG_TLS_VERSION_1_3);
    assert_string_equal(l.cfg->tls.ciphers, "ECDHE-RSA-AES256-GCM-SHA384");
    loaded_free(&l);
}

static void test_bad_values_at_their_line(void **state)
{
    (void)state;
    struct loaded l =
        load_tls(cert_path, key_path, "min_version = TLSv1.1\nciphers = NO-SUCH-SUITE:ALSO-NOT\n");
    assert_null(l.cfg);
    assert_error(&l, 4, "min_version: unknown value 'TLSv1.1' (use TLSv1.2 or TLSv1.3)");
    assert_error(&l, 5, "ciphers: 'NO-SUCH-SUITE:ALSO-NOT' selects no TLS 1.2 cipher suite");
    assert_int_equal(count_lines(l.errors), 2);
    loaded_free(&l);

    /* TLS 1.3 suite names are not TLS 1.2 cipher list entries. */
    l = load_tls(cert_path, key_path, "ciphers = TLS_AES_128_GCM_SHA256\n");
    assert_null(l.cfg);
    assert_error(&l, 4, "selects no TLS 1.2 cipher suite");
    loaded_free(&l);
}

static void test_rsa_and_ecdsa(void **state)
{
    (void)state;
    char *extra = ecdsa_lines(ec_cert_path, ec_key_path);
    struct loaded l = load_tls(cert_path, key_path, extra);
    assert_non_null(l.cfg);
    assert_string_equal(l.cfg->tls.ecdsa_certificate, ec_cert_path);
    assert_string_equal(l.cfg->tls.ecdsa_private_key, ec_key_path);
    loaded_free(&l);
    free(extra);

    /* ECDSA alone is a valid setup. */
    l = load_tls(ec_cert_path, ec_key_path, "");
    assert_non_null(l.cfg);
    loaded_free(&l);
}

/* The file with [tls] certificate/private_key and ecdsa_certificate/ecdsa_private_key fails
 * with `text` at `line`. */
static void assert_pairs_refused(const char *cert, const char *key, const char *ecdsa_cert,
                                 const char *ecdsa_key, int line, const char *text)
{
    char *extra = ecdsa_lines(ecdsa_cert, ecdsa_key);
    struct loaded l = load_tls(cert, key, extra);
    assert_null(l.cfg);
    assert_error(&l, line, text);
    loaded_free(&l);
    free(extra);
}

static void test_ecdsa_pair_errors(void **state)
{
    (void)state;
    /* An RSA certificate where the ECDSA one belongs. */
    assert_pairs_refused(cert_path, key_path, cert_path, key_path, 4,
                         "is not an ECDSA certificate");
    /* Two ECDSA certificates: the second would replace the first. */
    assert_pairs_refused(ec_cert_path, ec_key_path, ec_cert_path, ec_key_path, 2,
                         "certificate must be the RSA one");
    /* The ECDSA key does not belong to the ECDSA certificate. */
    assert_pairs_refused(cert_path, key_path, ec_cert_path, other_key_path, 5,
                         "does not match the certificate");

    /* One of the two alone. */
    char *extra = mg_printf("ecdsa_certificate = %s\n", ec_cert_path);
    struct loaded l = load_tls(cert_path, key_path, extra);
    assert_null(l.cfg);
    assert_error(&l, 1, "[tls] needs both 'ecdsa_certificate' and 'ecdsa_private_key'");
    loaded_free(&l);
    free(extra);
}

/* The policy itself: with the defaults no suite without forward secrecy or with CBC is left. */
static void test_default_suites(void **state)
{
    (void)state;
    struct tls_conf conf = {.certificate = cert_path, .private_key = key_path};
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    struct tls_policy_failure why;
    assert_int_equal(tls_policy_apply(ctx, &conf, &why), 0);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
    STACK_OF(SSL_CIPHER) *suites = SSL_CTX_get_ciphers(ctx);
    int tls12 = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(suites); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(suites, i);
        if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any)
            continue; /* a TLS 1.3 suite: key exchange negotiated apart (always (EC)DHE) */
        tls12++;
        assert_int_equal(SSL_CIPHER_get_kx_nid(c), NID_kx_ecdhe);
        assert_true(SSL_CIPHER_is_aead(c));
    }
    assert_int_equal(tls12, 6);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_session_tickets),
        cmocka_unit_test(test_min_version_and_ciphers),
        cmocka_unit_test(test_bad_values_at_their_line),
        cmocka_unit_test(test_rsa_and_ecdsa),
        cmocka_unit_test(test_ecdsa_pair_errors),
        cmocka_unit_test(test_default_suites),
    };
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
