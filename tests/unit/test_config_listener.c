/* Tests for a listener's login_type, tls = none and allow = (with their [gateway] defaults),
 * loading for admin commands without the gateway's certificate, and client_secret_file's
 * mode. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "config_fixture.h"
#include "util.h"

/* [gateway] and its lines, [listen a] with 2 more; the listener's lines start at line 6 when
 * gateway is one line (or empty), then [tls] and a provider. */
static char *listener_config(const char *gateway, const char *listener)
{
    return mg_printf("[gateway]\n%s\n"
                     "[listen a]\n"
                     "protocol = pop3\n"
                     "address = 127.0.0.1:10110\n"
                     "%s\n"
                     "[tls]\ncertificate = %s\nprivate_key = %s\n"
                     "[provider ms]\ntype = microsoft\ntenant = contoso.onmicrosoft.com\n"
                     "client_id = 1111\nclient_secret_file = %s\n",
                     gateway, listener, cert_path, key_path, secret_path);
}

static struct loaded load(const char *gateway, const char *listener)
{
    char *text = listener_config(gateway, listener);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    free(text);
    return l;
}

static void test_defaults(void **state)
{
    (void)state;
    struct loaded l = load("", "");
    assert_non_null(l.cfg);
    const struct listener_conf *a = &l.cfg->listeners[0];
    assert_int_equal(a->login_type, MG_LOGIN_SECURE);
    assert_int_equal(a->allow.n, 0);
    assert_int_equal(a->tls, MG_TLS_IMPLICIT);
    loaded_free(&l);
}

static void test_inherited_and_overridden(void **state)
{
    (void)state;
    struct loaded l = load("login_type = plaintext\nallow = 10.0.0.0/8, 2001:db8::/32", "");
    assert_non_null(l.cfg);
    const struct listener_conf *a = &l.cfg->listeners[0];
    assert_int_equal(a->login_type, MG_LOGIN_PLAINTEXT);
    assert_int_equal(a->allow.n, 2);
    assert_int_equal(a->allow.v[1].family, AF_INET6);
    loaded_free(&l);

    l = load("login_type = plaintext\nallow = 10.0.0.0/8",
             "login_type = secure\nallow = 127.0.0.0/8\nlogin_timeout = 5s\nbanner = hi");
    assert_non_null(l.cfg);
    a = &l.cfg->listeners[0];
    assert_int_equal(a->login_type, MG_LOGIN_SECURE);
    assert_int_equal(a->allow.n, 1);
    assert_int_equal(a->allow.v[0].addr[0], 127);
    assert_int_equal(a->login_timeout_ms, 5000);
    assert_string_equal(a->banner, "hi");
    loaded_free(&l);
}

static void test_tls_none(void **state)
{
    (void)state;
    struct loaded l = load("", "tls = none\nlogin_type = plaintext");
    assert_non_null(l.cfg);
    assert_int_equal(l.cfg->listeners[0].tls, MG_TLS_NONE);
    loaded_free(&l);
    l = load("login_type = plaintext", "tls = none");
    assert_non_null(l.cfg);
    loaded_free(&l);

    l = load("", "tls = none");
    assert_null(l.cfg);
    assert_error(&l, 6, "tls = none needs login_type = plaintext");
    loaded_free(&l);
    l = load("login_type = plaintext", "tls = none\nlogin_type = secure");
    assert_null(l.cfg);
    assert_error(&l, 6, "tls = none needs login_type = plaintext");
    loaded_free(&l);

    l = load("", "login_type = cleartext");
    assert_error(&l, 6, "login_type: unknown value 'cleartext' (use secure or plaintext)");
    loaded_free(&l);
    /* none is a listener's word: every upstream is reached over TLS. */
    char *text = listener_config("", "");
    char *more = mg_printf("%simap_tls = none\n", text);
    l = load_text(more, CONFIG_SKIP_SECRETS);
    assert_error(&l, 15, "imap_tls: expected implicit or starttls, not 'none'");
    loaded_free(&l);
    free(more);
    free(text);
}

/* Only tls = none listeners: no [tls] section is needed. */
static void test_no_certificate_without_tls(void **state)
{
    (void)state;
    char *text = mg_printf("[listen a]\nprotocol = imap\naddress = 127.0.0.1:10143\n"
                           "tls = none\nlogin_type = plaintext\n"
                           "[provider ms]\ntype = microsoft\ntenant = t\n"
                           "client_id = 1111\nclient_secret_file = %s\n",
                           secret_path);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_non_null(l.cfg);
    loaded_free(&l);
    free(text);
}

static void test_bad_allow(void **state)
{
    (void)state;
    struct loaded l = load("allow = 10.0.0.0/33", "allow = 10.0.0.0/8, example.com");
    assert_null(l.cfg);
    assert_error(&l, 2, "allow: '10.0.0.0/33': the prefix length must be 0 to 32");
    assert_error(&l, 6, "allow: 'example.com': not a numeric IPv4 or IPv6 address");
    loaded_free(&l);
    l = load("", "allow = 10.1.0.0/8");
    assert_error(&l, 6, "address bits are set after the prefix length");
    loaded_free(&l);
    l = load("", "allow = ,");
    assert_error(&l, 6, "no address range given");
    loaded_free(&l);
}

static void test_protocol_log(void **state)
{
    (void)state;
    struct loaded l = load("", "");
    assert_non_null(l.cfg);
    assert_int_equal(l.cfg->listeners[0].protocol_log, 0);
    assert_true(l.cfg->gateway.protocol_log_max == 100ull << 20);
    loaded_free(&l);
    l = load("protocol_log = on", "");
    assert_int_equal(l.cfg->listeners[0].protocol_log, 1);
    loaded_free(&l);
    l = load("protocol_log = on\nprotocol_log_max = 512K", "protocol_log = off");
    assert_int_equal(l.cfg->listeners[0].protocol_log, 0);
    assert_true(l.cfg->gateway.protocol_log_max == 512 * 1024);
    loaded_free(&l);
    const char *sizes[][2] = {{"4096", "4096"}, {"2G", "2147483648"}, {"1K", "1024"}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *g = mg_printf("protocol_log_max = %s", sizes[i][0]);
        l = load(g, "");
        free(g);
        assert_non_null(l.cfg);
        assert_true(l.cfg->gateway.protocol_log_max == strtoull(sizes[i][1], NULL, 10));
        loaded_free(&l);
    }
    const char *bad[] = {"100", "10X", "M", "-1K", "2000G", "1KB", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *g = mg_printf("protocol_log_max = %s", bad[i]);
        l = load(g, "protocol_log = maybe");
        free(g);
        assert_null(l.cfg);
        assert_error(&l, 6, "protocol_log:");
        loaded_free(&l);
    }
    l = load("protocol_log_max = 10X", "");
    assert_error(&l, 2,
                 "protocol_log_max: expected a size from 1K to 1024G (e.g. 100M), not '10X'");
    loaded_free(&l);
}

/* GET /metrics and /healthz: loopback by default, any ranges instead, never none. */
static void test_metrics_allow(void **state)
{
    (void)state;
    struct loaded l = load("", "");
    const struct cidr_list *m = &l.cfg->gateway.metrics_allow;
    assert_int_equal(m->n, 2);
    assert_int_equal(m->v[0].addr[0], 127);
    assert_int_equal(m->v[0].prefix, 8);
    assert_int_equal(m->v[1].family, AF_INET6);
    loaded_free(&l);
    l = load("metrics_allow = 192.0.2.7", "");
    assert_int_equal(l.cfg->gateway.metrics_allow.n, 1);
    assert_int_equal(l.cfg->gateway.metrics_allow.v[0].prefix, 32);
    loaded_free(&l);
    l = load("metrics_allow = ,", "");
    assert_error(&l, 2, "metrics_allow: no address range given");
    loaded_free(&l);
}

/* user/token/audit run before the gateway's certificate exists (README Quick start). */
static void test_admin_load_without_certificate(void **state)
{
    (void)state;
    char *text = mg_printf("[tls]\ncertificate = %s/missing.pem\nprivate_key = %s/missing.key\n"
                           "[listen a]\nprotocol = imap\naddress = 127.0.0.1:10993\n"
                           "[provider ms]\ntype = microsoft\ntenant = t\n"
                           "client_id = 1111\nclient_secret_file = %s\n",
                           tmpdir, tmpdir, secret_path);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 2, "missing.pem");
    loaded_free(&l);
    l = load_text_admin(text, CONFIG_LOAD_SECRETS);
    assert_non_null(l.cfg);
    assert_string_equal(l.errors, "");
    assert_non_null(strstr(l.cfg->tls.certificate, "missing.pem"));
    assert_string_equal(l.cfg->providers[0].client_secret, "s3cret-from-file");
    loaded_free(&l);
    free(text);
}

static void test_client_secret_file_mode(void **state)
{
    (void)state;
    char *path = mg_printf("%s/shared-secret", tmpdir);
    write_file(path, "s3cret\n");
    char *text = mg_printf("[provider ms]\ntype = microsoft\ntenant = t\n"
                           "client_id = 1111\nclient_secret_file = %s\n",
                           path);
    static const mode_t refused[] = {0640, 0604, 0660, 0644};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        chmod(path, refused[i]);
        struct loaded l = load_text(text, CONFIG_LOAD_SECRETS);
        assert_null(l.cfg);
        assert_error(&l, 5, "is accessible by group or others");
        assert_error(&l, 5, "run chmod 600 on it");
        loaded_free(&l);
    }
    chmod(path, 0600);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_non_null(l.cfg);
    loaded_free(&l);
    chmod(path, 0400);
    l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_non_null(l.cfg);
    assert_string_equal(l.cfg->providers[0].client_secret, "s3cret");
    loaded_free(&l);
    free(text);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_inherited_and_overridden),
        cmocka_unit_test(test_tls_none),
        cmocka_unit_test(test_no_certificate_without_tls),
        cmocka_unit_test(test_bad_allow),
        cmocka_unit_test(test_protocol_log),
        cmocka_unit_test(test_metrics_allow),
        cmocka_unit_test(test_admin_load_without_certificate),
        cmocka_unit_test(test_client_secret_file_mode),
    };
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
