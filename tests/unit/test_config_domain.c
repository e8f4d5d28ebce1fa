/* Unit tests of [domain] sections (config_domain.c): servers and their defaults from the
 * listeners, the MTA-STS rules of RFC 8461 (mode, mx patterns, max_age), TLS-RPT URIs, the
 * one-label-wildcard warning, and http listeners' tls words; each error at its line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_fixture.h"
#include "util.h"

/* Lines 1-19: one provider, [tls], imap (10143, starttls), imaps (10993, implicit),
 * submission (10587, starttls); `domain` from line 20. */
static struct loaded load_domain(const char *domain, enum config_secrets secrets)
{
    return load_textf(secrets,
                      "[provider ms]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                      "client_secret_file = %s\n"
                      "[tls]\ncertificate = %s\nprivate_key = %s\n"
                      "[listen imap]\nprotocol = imap\naddress = 127.0.0.1:10143\n"
                      "tls = starttls\n"
                      "[listen imaps]\nprotocol = imap\naddress = 127.0.0.1:10993\n"
                      "[listen submission]\nprotocol = smtp\naddress = 127.0.0.1:10587\n"
                      "tls = starttls\n"
                      "%s",
                      secret_path, cert_path, key_path, domain);
}

static const struct domain_conf *only_domain(const struct loaded *l)
{
    assert_non_null(l->cfg);
    assert_int_equal(l->cfg->n_domains, 1);
    return &l->cfg->domains[0];
}

static void test_servers_from_listeners(void **state)
{
    (void)state;
    struct loaded l = load_domain("[domain Example.COM]\n"
                                  "imap_host = IMAP.example.com\n"
                                  "pop3_host = pop.example.com:995\n"
                                  "smtp_host = smtp.example.com\n",
                                  CONFIG_SKIP_SECRETS);
    if (!l.cfg)
        fail_msg("%s", l.errors);
    const struct domain_conf *d = only_domain(&l);
    assert_string_equal(d->name, "example.com");
    assert_string_equal(d->display_name, "example.com");
    /* implicit TLS preferred over the STARTTLS listener written first */
    assert_string_equal(d->imap.host, "imap.example.com");
    assert_int_equal(d->imap.port, 10993);
    assert_int_equal(d->imap.tls, MG_TLS_IMPLICIT);
    assert_false(d->imap.port_set);
    /* no pop3 listener: the port as written, TLS by its well-known use */
    assert_int_equal(d->pop3.port, 995);
    assert_int_equal(d->pop3.tls, MG_TLS_IMPLICIT);
    assert_int_equal(d->smtp.port, 10587);
    assert_int_equal(d->smtp.tls, MG_TLS_STARTTLS);
    assert_int_equal(d->mta_sts_mode, MG_MTA_STS_OFF);
    assert_int_equal(d->mta_sts_max_age, MTA_STS_MAX_AGE_DEFAULT);
    assert_false(d->autodiscover);
    assert_ptr_equal(config_domain(l.cfg, "EXAMPLE.com"), d);
    assert_null(config_domain(l.cfg, "example.org"));
    loaded_free(&l);
}

static void test_policy_values(void **state)
{
    (void)state;
    struct loaded l = load_domain("[domain example.com]\n"
                                  "mta_sts_mode = testing\n"
                                  "mta_sts_mx = Mail.example.com , *.mail.protection.outlook.com\n"
                                  "mta_sts_max_age = 31557600\n"
                                  "tls_rpt = mailto:rua@example.com,https://r.example.com/x\n"
                                  "autodiscover = on\n",
                                  CONFIG_SKIP_SECRETS);
    const struct domain_conf *d = only_domain(&l);
    assert_int_equal(d->mta_sts_mode, MG_MTA_STS_TESTING);
    assert_int_equal(d->mta_sts_mx.n, 2);
    assert_string_equal(d->mta_sts_mx.v[0], "mail.example.com");
    assert_string_equal(d->mta_sts_mx.v[1], "*.mail.protection.outlook.com");
    assert_int_equal(d->mta_sts_max_age, 31557600);
    assert_int_equal(d->tls_rpt.n, 2);
    assert_string_equal(d->tls_rpt.v[1], "https://r.example.com/x");
    assert_true(d->autodiscover);
    loaded_free(&l);
}

static void test_errors_at_their_line(void **state)
{
    (void)state;
    struct loaded l = load_domain("[domain example.com]\n"                /* 20 */
                                  "mta_sts_mode = reject\n"               /* 21 */
                                  "mta_sts_mx = *.*.example.com, a..b\n"  /* 22 */
                                  "mta_sts_max_age = 31557601\n"          /* 23 */
                                  "tls_rpt = mailto:x@y.example;z\n"      /* 24 */
                                  "imap_host = imap.example.com:99999\n"  /* 25 */
                                  "pop3_host = pop.example.com\n"         /* 26 */
                                  "autodiscover = true\n"                 /* 27 */
                                  "certificate = /nonexistent/cert.pem\n" /* 28 */
                                  "[domain localhost]\n"                  /* 29 */
                                  "[domain EXAMPLE.com]\n",               /* 30 */
                                  CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 21, "mta_sts_mode: expected enforce, testing or none, not 'reject'");
    assert_error(&l, 22, "'*.*.example.com': a wildcard may only be the whole first label");
    assert_error(&l, 22, "'a..b': not a host name");
    assert_error(&l, 23, "mta_sts_max_age: expected seconds from 0 to 31557600");
    assert_error(&l, 24, "tls_rpt: 'mailto:x@y.example;z'");
    assert_error(&l, 25, "imap_host: expected host or host:port");
    assert_error(&l, 26,
                 "pop3_host: give the port (host:port): there is no [listen] with "
                 "protocol = pop3");
    assert_error(&l, 27, "autodiscover: expected on or off");
    assert_error(&l, 28, "cannot read /nonexistent/cert.pem");
    assert_error(&l, 29, "'localhost' is not a domain name");
    assert_error(&l, 30, "duplicate section [domain example.com] (first at line 20)");
    assert_sorted_by_line(&l);
    loaded_free(&l);
}

/* An https URI's host is where the gateway takes POSTed reports: it must be a host name. */
static void test_tls_rpt_https_host(void **state)
{
    (void)state;
    struct loaded l = load_domain("[domain example.com]\n"                         /* 20 */
                                  "tls_rpt = https://:443/tlsrpt\n"                /* 21 */
                                  "[domain example.org]\n"                         /* 22 */
                                  "tls_rpt = https://report..example.org/tlsrpt\n" /* 23 */
                                  "[domain example.net]\n"                         /* 24 */
                                  "tls_rpt = https://Report.Example.net:8443\n",   /* 25 */
                                  CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 21, "an https:// URI needs a host name");
    assert_error(&l, 23, "the host of the https:// URI is not a host name");
    assert_null(strstr(l.errors, ":25:")); /* upper case and a port are fine */
    loaded_free(&l);
}

static void test_mx_pattern_rules(void **state)
{
    (void)state;
    assert_null(mta_sts_mx_problem("mail.example.com"));
    assert_null(mta_sts_mx_problem("*.mail.protection.outlook.com"));
    assert_null(mta_sts_mx_problem("xn--bcher-kva.example"));
    assert_non_null(mta_sts_mx_problem("*"));
    assert_non_null(mta_sts_mx_problem("*.com")); /* one label below the wildcard */
    assert_non_null(mta_sts_mx_problem("mail*.example.com"));
    assert_non_null(mta_sts_mx_problem("mail.example.com."));
    assert_non_null(mta_sts_mx_problem("-mail.example.com"));
    assert_non_null(mta_sts_mx_problem("b\xc3\xbc"
                                       "cher.example"));
    char label[70];
    memset(label, 'a', 64);
    strcpy(label + 64, ".com");
    assert_non_null(mta_sts_mx_problem(label)); /* 64-byte label */
    memset(label, 'a', 63);
    strcpy(label + 63, ".com");
    assert_null(mta_sts_mx_problem(label)); /* 63 bytes: the longest label */
}

static void test_mode_needs_mx_and_keys_need_mode(void **state)
{
    (void)state;
    struct loaded l = load_domain("[domain example.com]\n" /* 20 */
                                  "mta_sts_mode = enforce\n"
                                  "[domain example.org]\n"
                                  "mta_sts_max_age = 60\n", /* 23 */
                                  CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 21, "mta_sts_mode = enforce needs mta_sts_mx");
    assert_error(&l, 23, "mta_sts_max_age without mta_sts_mode");
    loaded_free(&l);
    l = load_domain("[domain example.com]\nmta_sts_mode = none\n", CONFIG_SKIP_SECRETS);
    assert_int_equal(only_domain(&l)->mta_sts_mode, MG_MTA_STS_NONE);
    loaded_free(&l);
}

static void test_domain_certificate(void **state)
{
    (void)state;
    char *text = mg_printf("[domain example.com]\ncertificate = %s\n", cert_path);
    struct loaded l = load_domain(text, CONFIG_SKIP_SECRETS);
    free(text);
    assert_null(l.cfg);
    assert_error(&l, 20, "needs both 'certificate' and 'private_key'");
    loaded_free(&l);
    text = mg_printf("[domain example.com]\ncertificate = %s\nprivate_key = %s\n", cert_path,
                     other_key_path);
    l = load_domain(text, CONFIG_SKIP_SECRETS);
    free(text);
    assert_null(l.cfg); /* the key does not match the certificate */
    assert_non_null(strstr(l.errors, "conf"));
    loaded_free(&l);
    text = mg_printf("[domain example.com]\ncertificate = %s\nprivate_key = %s\n", cert_path,
                     key_path);
    l = load_domain(text, CONFIG_SKIP_SECRETS);
    free(text);
    assert_string_equal(only_domain(&l)->private_key, key_path);
    loaded_free(&l);
}

static void test_one_label_wildcard_is_a_warning(void **state)
{
    (void)state;
    const char *domain = "[domain example.com]\nmta_sts_mode = enforce\n"
                         "mta_sts_mx = *.mx.microsoft\n"; /* 22 */
    struct loaded l = load_domain(domain, CONFIG_LOAD_SECRETS);
    assert_non_null(l.cfg);
    assert_error(&l, 22, "warning: mta_sts_mx: '*.mx.microsoft' never matches");
    loaded_free(&l);
    /* the workers parse the broker's copy: no warning from each of them */
    l = load_domain(domain, CONFIG_SKIP_SECRETS);
    assert_non_null(l.cfg);
    assert_string_equal(l.errors, "");
    loaded_free(&l);
}

static void test_http_listener_tls_words(void **state)
{
    (void)state;
    struct loaded l = load_domain("[listen web2]\nprotocol = http\n" /* 20 */
                                  "address = 127.0.0.1:10443\ntls = starttls\n"
                                  "[listen imap2]\nprotocol = imap\n" /* 24 */
                                  "address = 127.0.0.1:10144\ntls = none\n",
                                  CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 23, "tls = starttls is not for protocol = http (use implicit or none)");
    assert_error(&l, 27, "tls = none needs login_type = plaintext"); /* a mail listener's */
    loaded_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_servers_from_listeners),
        cmocka_unit_test(test_policy_values),
        cmocka_unit_test(test_errors_at_their_line),
        cmocka_unit_test(test_tls_rpt_https_host),
        cmocka_unit_test(test_mx_pattern_rules),
        cmocka_unit_test(test_mode_needs_mx_and_keys_need_mode),
        cmocka_unit_test(test_domain_certificate),
        cmocka_unit_test(test_one_label_wildcard_is_a_warning),
        cmocka_unit_test(test_http_listener_tls_words),
    };
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
