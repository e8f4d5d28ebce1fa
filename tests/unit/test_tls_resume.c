/* Tests for tls_resume.c: an upstream session is resumed only for the same scope (provider),
 * host and port, a TLS 1.3 ticket is offered once, and expired sessions are not offered. Real
 * handshakes between two OpenSSL endpoints over a BIO pair. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "cert_fixture.h"
#include "tls_resume.h"

struct pair {
    SSL_CTX *server;
    SSL_CTX *client;
};

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof *p);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = key ? test_self_signed_cert(key, "upstream.test", NULL) : NULL;
    assert_non_null(cert);
    p->server = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(p->server, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(p->server, key), 1);
    p->client = SSL_CTX_new(TLS_client_method());
    assert_int_equal(tls_resume_enable(p->client), 0);
    X509_free(cert);
    EVP_PKEY_free(key);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    SSL_CTX_free(p->server);
    SSL_CTX_free(p->client);
    free(p);
    return 0;
}

/* One connection: handshake, then one application byte from the server so that the client
 * reads the TLS 1.3 tickets sent after the handshake. Returns 1 when the client resumed. */
static int connect_ex(struct pair *p, const char *scope, const char *host, unsigned port, int clean)
{
    SSL *c = SSL_new(p->client), *s = SSL_new(p->server);
    BIO *cb, *sb;
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    tls_resume_offer(c, scope, host, port);
    int done_c = 0, done_s = 0;
    for (int i = 0; i < 100 && !(done_c && done_s); i++) {
        done_c = done_c || SSL_do_handshake(c) == 1;
        done_s = done_s || SSL_do_handshake(s) == 1;
    }
    assert_true(done_c && done_s);
    assert_int_equal(SSL_write(s, "x", 1), 1);
    char byte = 0;
    for (int i = 0; i < 10 && SSL_read(c, &byte, 1) != 1; i++)
        ;
    assert_int_equal(byte, 'x');
    int reused = SSL_session_reused(c);
    if (clean)
        SSL_shutdown(c); /* as conn_free() does: OpenSSL drops the session of an unclean end */
    SSL_free(c);
    SSL_free(s);
    return reused;
}

static int connect_once(struct pair *p, const char *scope, const char *host, unsigned port)
{
    return connect_ex(p, scope, host, port, 1);
}

static void test_resumes_same_scope_host_and_port(void **state)
{
    struct pair *p = *state;
    assert_false(connect_once(p, "microsoft", "outlook.office365.com", 993));
    assert_true(connect_once(p, "microsoft", "outlook.office365.com", 993));
    assert_true(connect_once(p, "microsoft", "outlook.office365.com", 993));
}

static void test_never_across_scope_host_or_port(void **state)
{
    struct pair *p = *state;
    assert_false(connect_once(p, "tenant-a", "imap.example.test", 993));
    assert_false(connect_once(p, "tenant-b", "imap.example.test", 993));
    assert_false(connect_once(p, "tenant-a", "imap2.example.test", 993));
    assert_false(connect_once(p, "tenant-a", "imap.example.test", 143));
    assert_true(connect_once(p, "tenant-a", "imap.example.test", 993));
}

static void test_no_scope_no_resumption(void **state)
{
    struct pair *p = *state;
    assert_false(connect_once(p, NULL, "imap.example.test", 993));
    assert_false(connect_once(p, NULL, "imap.example.test", 993));
}

/* A server sends two tickets per handshake; each is offered once, so eight connections in a
 * row without reading new tickets would run dry. Here every connection reads its new tickets,
 * so resumption goes on; the count of stored tickets stays bounded (no growth is visible
 * from outside, but ASan would see a leak if dropped tickets were not freed). */
static void test_many_resumptions_in_a_row(void **state)
{
    struct pair *p = *state;
    assert_false(connect_once(p, "p", "h", 1));
    for (int i = 0; i < 20; i++)
        assert_true(connect_once(p, "p", "h", 1));
}

/* A connection that ends without close_notify: OpenSSL marks its session unusable; that one
 * is never offered (it would fail), and the connections after it go on working. */
static void test_unclean_end_not_resumed(void **state)
{
    struct pair *p = *state;
    assert_false(connect_ex(p, "p", "h", 1, 0));
    connect_once(p, "p", "h", 1); /* the other ticket may still serve; the handshake works */
    assert_true(connect_once(p, "p", "h", 1));
}

static void test_expired_session_not_offered(void **state)
{
    struct pair *p = *state;
    SSL_CTX_set_timeout(p->server, 1); /* the ticket lifetime the client is told */
    assert_false(connect_once(p, "p", "expiring.test", 993));
    sleep(2);
    assert_false(connect_once(p, "p", "expiring.test", 993));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resumes_same_scope_host_and_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_across_scope_host_or_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_scope_no_resumption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_resumptions_in_a_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclean_end_not_resumed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_session_not_offered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
