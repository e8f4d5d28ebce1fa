/* Unit tests of config.c: real files in a temporary directory, a throwaway certificate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "config_fixture.h"
#include "util.h"

/* The smallest useful file: one listener, one provider with a secret file. Lines 1-12. */
static char *minimal_config(const char *extra)
{
    return mg_printf("[tls]\n"
                     "certificate = %s\n"
                     "private_key = %s\n"
                     "\n"
                     "[listen imaps]\n"
                     "protocol = imap\n"
                     "address = 127.0.0.1:10993\n"
                     "\n"
                     "[provider ms]\n"
                     "type = microsoft\n"
                     "tenant = contoso.onmicrosoft.com\n"
                     "client_id = 11111111-2222-3333-4444-555555555555\n"
                     "client_secret_file = %s\n"
                     "%s",
                     cert_path, key_path, secret_path, extra);
}

static void test_defaults(void **state)
{
    (void)state;
    char *text = minimal_config("");
    struct loaded l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_non_null(l.cfg);
    assert_string_equal(l.errors, "");
    const struct gateway_conf *g = &l.cfg->gateway;
    assert_string_equal(g->state_dir, "/var/lib/mailgate");
    assert_int_equal(g->log_level, MG_LOG_INFO);
    assert_int_equal(g->workers, (int)sysconf(_SC_NPROCESSORS_ONLN));
    assert_int_equal(g->login_timeout_ms, 60000);
    assert_int_equal(g->idle_timeout_ms, 30 * 60000);
    assert_int_equal(g->auth_cache_ttl_ms, 10 * 60000);
    assert_int_equal(g->auth_failure_delay_ms, 2000);
    assert_int_equal(g->token_timeout_ms, 15000);

    assert_int_equal(l.cfg->n_listeners, 1);
    const struct listener_conf *lc = config_listener(l.cfg, "imaps");
    assert_non_null(lc);
    assert_int_equal(lc->protocol, MG_PROTO_IMAP);
    assert_int_equal(lc->tls, MG_TLS_IMPLICIT);
    assert_string_equal(lc->banner, "The mailgate IMAP4 service is ready.");
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    assert_string_equal(lc->hostname, host);
    assert_int_equal(lc->login_timeout_ms, 60000);
    assert_int_equal(lc->idle_timeout_ms, 30 * 60000);
    assert_int_equal(lc->line, 5);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&lc->addr;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 10993);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);

    const struct provider_conf *p = config_provider(l.cfg, "ms");
    assert_non_null(p);
    assert_null(config_provider(l.cfg, "other"));
    assert_string_equal(p->client_secret, "s3cret-from-file");
    assert_string_equal(p->token_endpoint, "https://login.microsoftonline.com/"
                                           "contoso.onmicrosoft.com/oauth2/v2.0/token");
    assert_string_equal(p->scope, "https://outlook.office365.com/.default");
    const struct server_addr *imap = provider_server(p, MG_PROTO_IMAP);
    assert_string_equal(imap->host, "outlook.office365.com");
    assert_int_equal(imap->port, 993);
    assert_int_equal(imap->tls, MG_TLS_IMPLICIT);
    assert_string_equal(p->pop3.host, "outlook.office365.com");
    assert_int_equal(p->pop3.port, 995);
    assert_int_equal(p->pop3.tls, MG_TLS_IMPLICIT);
    assert_string_equal(p->smtp.host, "smtp.office365.com");
    assert_int_equal(p->smtp.port, 587);
    assert_int_equal(p->smtp.tls, MG_TLS_STARTTLS);
    assert_null(p->ca_file);
    loaded_free(&l);
    free(text);
}

static void test_secret_key_file(void **state)
{
    (void)state;
    char *text = minimal_config("");
    struct loaded l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_non_null(l.cfg);
    assert_string_equal(l.cfg->gateway.secret_key_file, "/var/lib/mailgate/secret.key");
    loaded_free(&l);
    free(text);
    text = minimal_config("[gateway]\nstate_dir = /srv/mg\n");
    l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_string_equal(l.errors, "");
    assert_non_null(l.cfg);
    assert_string_equal(l.cfg->gateway.secret_key_file, "/srv/mg/secret.key");
    loaded_free(&l);
    free(text);
    text = minimal_config("[gateway]\nstate_dir = /srv/mg\nsecret_key_file = /run/keys/mg.key\n");
    l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_string_equal(l.errors, "");
    assert_non_null(l.cfg);
    assert_string_equal(l.cfg->gateway.secret_key_file, "/run/keys/mg.key");
    loaded_free(&l);
    free(text);
}

static void test_all_values(void **state)
{
    (void)state;
    char *text = mg_printf("; a full file\n"
                           "# with both comment styles\n"
                           "[gateway]\n"
                           "state_dir = /srv/mg ; inline comment\n"
                           "log_level = debug\n"
                           "workers = 4\n"
                           "login_timeout = 90\n"
                           "idle_timeout = 2h\n"
                           "auth_cache_ttl = 0\n"
                           "auth_failure_delay = 500ms\n"
                           "token_timeout = 1m\n"
                           "[tls]\n"
                           "certificate = %s\n"
                           "private_key = %s\n"
                           "[listen v6]\n"
                           "protocol = imap\n"
                           "address = [::1]:1143\n"
                           "tls = starttls\n"
                           "banner = Hello # not a comment\n"
                           "hostname = mail.example.org\n"
                           "login_timeout = 5s\n"
                           "[listen any]\n"
                           "   protocol = imap\n"
                           "address = *:1993\n"
                           "idle_timeout = 1d\n"
                           "[provider test]\n"
                           "type = microsoft\n"
                           "tenant = t-1\n"
                           "client_id = abc\n"
                           "client_secret = inline-secret\n"
                           "token_endpoint = https://127.0.0.1:8443/{tenant}/token?t={tenant}\n"
                           "scope = https://example/.default\n"
                           "imap_server = 127.0.0.1:1993\n"
                           "pop3_server = pop.example:110\n"
                           "smtp_server = [::1]:465\n"
                           "pop3_tls = implicit\n"
                           "ca_file = %s\n"
                           "[provider second]\n"
                           "type = microsoft\n"
                           "tenant = t2\n"
                           "client_id = abc\n"
                           "client_secret_file = %s\n"
                           "smtp_server = smtp.example:2525\n",
                           cert_path, key_path, cert_path, secret_path);
    struct loaded l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_string_equal(l.errors, "");
    assert_non_null(l.cfg);
    const struct gateway_conf *g = &l.cfg->gateway;
    assert_string_equal(g->state_dir, "/srv/mg");
    assert_int_equal(g->log_level, MG_LOG_DEBUG);
    assert_int_equal(g->workers, 4);
    assert_int_equal(g->login_timeout_ms, 90000);
    assert_int_equal(g->idle_timeout_ms, 7200000);
    assert_int_equal(g->auth_cache_ttl_ms, 0);
    assert_int_equal(g->auth_failure_delay_ms, 500);
    assert_int_equal(g->token_timeout_ms, 60000);

    const struct listener_conf *v6 = config_listener(l.cfg, "v6");
    assert_non_null(v6);
    assert_string_equal(v6->address, "[::1]:1143");
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&v6->addr;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(v6->addrlen, sizeof *sin6);
    assert_int_equal(ntohs(sin6->sin6_port), 1143);
    assert_memory_equal(&sin6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback);
    assert_int_equal(v6->tls, MG_TLS_STARTTLS);
    assert_string_equal(v6->banner, "Hello # not a comment");
    assert_string_equal(v6->hostname, "mail.example.org");
    assert_int_equal(v6->login_timeout_ms, 5000);
    assert_int_equal(v6->idle_timeout_ms, 7200000); /* inherited */
    assert_int_equal(v6->line, 15);

    const struct listener_conf *any = config_listener(l.cfg, "any");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&any->addr;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(any->login_timeout_ms, 90000); /* inherited */
    assert_int_equal(any->idle_timeout_ms, 86400000);

    const struct provider_conf *p = config_provider(l.cfg, "test");
    assert_string_equal(p->client_secret, "inline-secret");
    assert_string_equal(p->token_endpoint, "https://127.0.0.1:8443/t-1/token?t=t-1");
    assert_string_equal(p->scope, "https://example/.default");
    assert_string_equal(p->imap.host, "127.0.0.1");
    assert_int_equal(p->imap.port, 1993);
    assert_int_equal(p->imap.tls, MG_TLS_IMPLICIT); /* not 143 */
    assert_int_equal(p->pop3.port, 110);
    assert_int_equal(p->pop3.tls, MG_TLS_IMPLICIT); /* explicit pop3_tls wins over port 110 */
    assert_string_equal(p->smtp.host, "::1");
    assert_int_equal(p->smtp.tls, MG_TLS_IMPLICIT); /* 465 */
    assert_string_equal(p->ca_file, cert_path);
    const struct provider_conf *second = config_provider(l.cfg, "second");
    assert_int_equal(second->smtp.port, 2525);
    assert_int_equal(second->smtp.tls, MG_TLS_STARTTLS);
    assert_string_equal(second->client_secret, "s3cret-from-file");
    loaded_free(&l);
    free(text);
}

static void test_tls_by_port(void **state)
{
    (void)state;
    char *text = minimal_config("pop3_server = pop.example:110\n");
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_non_null(l.cfg);
    assert_int_equal(l.cfg->providers[0].pop3.tls, MG_TLS_STARTTLS);
    loaded_free(&l);
    free(text);
    text = minimal_config("imap_server = imap.example:143\n");
    l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 9, "STARTTLS to an IMAP upstream is not supported yet");
    loaded_free(&l);
    free(text);
    text = minimal_config("imap_tls = starttls\n");
    l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_error(&l, 14, "STARTTLS to an IMAP upstream is not supported yet");
    loaded_free(&l);
    free(text);
}

static void test_skip_secrets(void **state)
{
    (void)state;
    char *text = mg_printf("[provider a]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                           "client_secret = do-not-keep\n"
                           "[provider b]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                           "client_secret_file = %s\n",
                           secret_path);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_string_equal(l.errors, "");
    assert_non_null(l.cfg);
    assert_int_equal(l.cfg->n_listeners, 0); /* no listener: no [tls] needed */
    assert_null(config_provider(l.cfg, "a")->client_secret);
    assert_null(config_provider(l.cfg, "b")->client_secret);
    assert_string_equal(config_provider(l.cfg, "b")->client_secret_file, secret_path);
    loaded_free(&l);
    free(text);
}

static void test_secret_file_errors(void **state)
{
    (void)state;
    static const enum config_secrets modes[] = {CONFIG_LOAD_SECRETS, CONFIG_SKIP_SECRETS};
    for (size_t i = 0; i < 2; i++) {
        char *text = mg_printf("[provider a]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                               "client_secret_file = %s/missing\n"
                               "[provider b]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                               "client_secret_file = %s\n"
                               "[provider c]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                               "[provider d]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                               "client_secret = x\nclient_secret_file = %s\n",
                               tmpdir, empty_path, secret_path);
        struct loaded l = load_text(text, modes[i]);
        assert_null(l.cfg);
        assert_error(&l, 5, "No such file or directory");
        assert_error(&l, 10, "is empty");
        assert_error(&l, 11,
                     "needs exactly one of 'client_secret', 'client_secret_file' and "
                     "'client_certificate' with 'client_private_key'");
        assert_error(&l, 15, "needs exactly one of");
        loaded_free(&l);
        free(text);
    }
}

/* The minimal configuration with one more [gateway] key (its line is 15). */
static struct loaded load_gateway_key(const char *key, const char *value)
{
    char *extra = mg_printf("[gateway]\n%s = %s\n", key, value);
    char *text = minimal_config(extra);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    free(text);
    free(extra);
    return l;
}

/* [gateway] public_url: kept as written less final slashes; no query, fragment or path-only. */
static void test_public_url(void **state)
{
    (void)state;
    static const struct {
        const char *value, *kept; /* kept NULL: refused */
    } cases[] = {
        {"https://mail.contoso.com", "https://mail.contoso.com"},
        {"https://mail.contoso.com:8443/gw//", "https://mail.contoso.com:8443/gw"},
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
        {"ftp://mail.contoso.com", NULL},
        {"https://", NULL},
        {"https:///path", NULL},
        {"https://mail.contoso.com/?a=1", NULL},
        {"https://mail.contoso.com/#x", NULL},
        {"mail.contoso.com", NULL},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(cases); i++) {
        struct loaded l = load_gateway_key("public_url", cases[i].value);
        if (cases[i].kept) {
            assert_non_null(l.cfg);
            assert_string_equal(l.cfg->gateway.public_url, cases[i].kept);
        } else {
            assert_null(l.cfg);
            assert_error(&l, 15, "public_url: expected http(s)://HOST[:PORT][/PATH]");
        }
        loaded_free(&l);
    }
}

/* [gateway] resolver: numeric nameservers only (the workers hand them to evdns as written),
 * blanks or commas between them, at most 8. */
static void test_resolver(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        size_t n;          /* nameservers kept; 0: refused */
        const char *first; /* as kept */
        const char *error;
    } cases[] = {
        {"127.0.0.1", 1, "127.0.0.1", NULL},
        {"192.0.2.53:5353, [2001:db8::53]:53  ::1", 3, "192.0.2.53:5353", NULL},
        {"ns1.example.com", 0, NULL, "resolver: 'ns1.example.com' is not IP, IP:PORT"},
        {"127.0.0.1:99999", 0, NULL, "resolver: '127.0.0.1:99999' is not IP"},
        {" , ", 0, NULL, "resolver: expected nameserver addresses"},
        {"1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5 1.1.1.6 1.1.1.7 1.1.1.8 1.1.1.9", 0, NULL,
         "resolver: at most 8 nameservers"},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(cases); i++) {
        struct loaded l = load_gateway_key("resolver", cases[i].value);
        if (cases[i].n) {
            assert_non_null(l.cfg);
            assert_int_equal(l.cfg->gateway.resolver.n, cases[i].n);
            assert_string_equal(l.cfg->gateway.resolver.v[0], cases[i].first);
        } else {
            assert_null(l.cfg);
            assert_error(&l, 15, cases[i].error);
        }
        loaded_free(&l);
    }
}

static void test_errors_with_lines(void **state)
{
    (void)state;
    char long_line[5000];
    memset(long_line, 'x', sizeof long_line - 1);
    long_line[sizeof long_line - 1] = '\0';
    char *text = mg_printf("orphan = 1\n"                    /* 1 */
                           "[gateway]\n"                     /* 2 */
                           "workers = 0\n"                   /* 3 */
                           "log_level = loud\n"              /* 4 */
                           "login_timeout = soon\n"          /* 5 */
                           "colour = blue\n"                 /* 6 */
                           "workers = 2\n"                   /* 7 */
                           "this line has no equals sign\n"  /* 8 */
                           "state_dir = /x\n"                /* 9 */
                           "    continued value\n"           /* 10 */
                           "[nonsense]\n"                    /* 11 */
                           "key = ignored\n"                 /* 12 */
                           "[listen pop]\n"                  /* 13 */
                           "protocol = pop4\n"               /* 14 */
                           "address = 127.0.0.1:1110\n"      /* 15 */
                           "[listen a]\n"                    /* 16 */
                           "protocol = imap\n"               /* 17 */
                           "address = 127.0.0.1:1110\n"      /* 18 */
                           "tls = sometimes\n"               /* 19 */
                           "[listen a]\n"                    /* 20 */
                           "[listen b]\n"                    /* 21 */
                           "protocol = imap\n"               /* 22 */
                           "address = ::1:993\n"             /* 23 */
                           "[listen c]\n"                    /* 24 */
                           "address = 127.0.0.1:0\n"         /* 25 */
                           "%s\n"                            /* 26 */
                           "[provider p]\n"                  /* 27 */
                           "type = yahoo\n"                  /* 28 */
                           "tenant = a/b\n"                  /* 29 */
                           "client_secret = x\n"             /* 30 */
                           "token_endpoint = http://x/\n"    /* 31 */
                           "imap_server = nohost\n"          /* 32 */
                           "ca_file = /nonexistent/ca.pem\n" /* 33 */
                           "banner =\n"                      /* 34 */
                           "[gateway extra]\n"               /* 35 */
                           "[listen bad name]\n"             /* 36 */
                           "[tls\n",                         /* 37 */
                           long_line);
    struct loaded l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 1, "'orphan' is outside of any section");
    assert_error(&l, 3, "workers: expected 'auto' or a number from 1 to 256");
    assert_error(&l, 4, "log_level: expected error, warn, info or debug");
    assert_error(&l, 5, "login_timeout: bad duration 'soon'");
    assert_error(&l, 6, "unknown key 'colour' in [gateway]");
    assert_error(&l, 7, "duplicate key 'workers' (first at line 3)");
    assert_error(&l, 8, "expected 'key = value'");
    assert_error(&l, 10, "values cannot continue on a second line");
    assert_error(&l, 11, "unknown section [nonsense]");
    assert_error(&l, 14, "protocol: unknown protocol 'pop4' (use imap, pop3, smtp or http)");
    assert_error(&l, 18, "address 127.0.0.1:1110 is already used by [listen pop] (line 13)");
    assert_error(&l, 19, "tls: expected implicit, starttls or none");
    assert_error(&l, 20, "duplicate section [listen a] (first at line 16)");
    assert_error(&l, 23, "address: expected host:port or [v6]:port");
    assert_error(&l, 24, "[listen c] needs 'protocol'");
    assert_error(&l, 25, "address: expected host:port");
    assert_error(&l, 26, "line longer than");
    assert_error(&l, 28, "type: unknown value 'yahoo' (use microsoft, google or generic)");
    assert_error(&l, 29, "tenant: only letters, digits");
    assert_error(&l, 31, "token_endpoint: must be an https:// URL");
    assert_error(&l, 32, "imap_server: expected host:port");
    assert_error(&l, 33, "cannot read /nonexistent/ca.pem");
    assert_error(&l, 34, "unknown key 'banner' in [provider p]");
    assert_error(&l, 35, "section [gateway] takes no name");
    assert_error(&l, 36, "[listen NAME] needs a NAME");
    assert_error(&l, 37, "section header without ']'");
    assert_error(&l, 0, "missing section [tls]");
    /* Nothing reported twice, nothing unexpected: one line per problem above (a bad type
     * skips the type's rules: no "needs 'client_id'"). */
    assert_int_equal(count_lines(l.errors), 27);
    assert_sorted_by_line(&l);
    loaded_free(&l);
    free(text);
}

static void test_missing_pieces(void **state)
{
    (void)state;
    struct loaded l = load_text("[gateway]\n[listen a]\nprotocol = imap\naddress = *:1\n[tls]\n",
                                CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 0, "no [provider NAME] section");
    assert_error(&l, 5, "[tls] needs 'certificate'");
    assert_error(&l, 5, "[tls] needs 'private_key'");
    loaded_free(&l);

    char *path = mg_printf("%s/does-not-exist.conf", tmpdir);
    char *errors = NULL;
    size_t len;
    FILE *f = open_memstream(&errors, &len);
    assert_null(config_load(path, CONFIG_LOAD_SECRETS, f));
    fclose(f);
    char *expected = mg_printf("%s:0: cannot open: No such file or directory\n", path);
    assert_string_equal(errors, expected);
    free(expected);
    free(errors);
    free(path);
}

static void test_tls_key_mismatch(void **state)
{
    (void)state;
    char *text = mg_printf("[tls]\ncertificate = %s\nprivate_key = %s\n"
                           "[listen a]\nprotocol = imap\naddress = 127.0.0.1:1\n"
                           "[provider p]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                           "client_secret = x\n",
                           cert_path, other_key_path);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 3, "does not match the certificate");
    assert_int_equal(count_lines(l.errors), 1);
    loaded_free(&l);
    free(text);

    /* Not a certificate at all. */
    text = mg_printf("[tls]\ncertificate = %s\nprivate_key = %s\n"
                     "[listen a]\nprotocol = imap\naddress = 127.0.0.1:1\n"
                     "[provider p]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                     "client_secret = x\n",
                     secret_path, key_path);
    l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 2, "cannot load the certificate chain");
    loaded_free(&l);
    free(text);
}

static void test_line_numbers_survive_long_lines(void **state)
{
    (void)state;
    /* 300 characters: too long for inih's default buffer, fine for ours; line 3's error must
     * still be reported at line 3. */
    char value[301];
    memset(value, 'b', 300);
    value[300] = '\0';
    char *text = mg_printf("[listen a]\nbanner = %s\nbogus = 1\n", value);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 3, "unknown key 'bogus'");
    loaded_free(&l);
    free(text);
}

static void test_parse_addresses(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(config_parse_listen_address("*:993", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 993);
    assert_int_equal(config_parse_listen_address("[::]:993", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(config_parse_listen_address("10.1.2.3:65535", &ss, &len), 0);
    assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x0a010203);
    static const char *const bad[] = {
        "",          ":993",          "1.2.3.4",       "1.2.3.4:",
        "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:99x",   "::1:993",
        "[::1]993",  "[::1:993",      "localhost:993", "[1.2.3.4]:993",
        "1.2.3:4:5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_parse_listen_address(bad[i], &ss, &len) == 0)
            fail_msg("accepted '%s'", bad[i]);
    }
    char *host = NULL;
    uint16_t port = 0;
    assert_int_equal(config_parse_host_port("[2001:db8::1]:443", &host, &port), 0);
    assert_string_equal(host, "2001:db8::1");
    assert_int_equal(port, 443);
    free(host);
    assert_int_equal(config_parse_host_port("outlook.office365.com:993", &host, &port), 0);
    assert_string_equal(host, "outlook.office365.com");
    free(host);
    assert_int_equal(config_parse_host_port("a b:1", &host, &port), -1);
}

static void test_listen_host_name_resolved(void **state)
{
    (void)state;
    struct loaded l = load_text("[listen a]\nprotocol = imap\naddress = localhost:1993\n"
                                "[provider p]\ntype = microsoft\ntenant = t\nclient_id = c\n"
                                "client_secret = x\n"
                                "[tls]\n",
                                CONFIG_SKIP_SECRETS);
    /* Only [tls] is incomplete: the name resolved. */
    assert_null(l.cfg);
    assert_int_equal(count_lines(l.errors), 2);
    assert_error(&l, 9, "[tls] needs 'certificate'");
    loaded_free(&l);
}

/* Lines 1-12 of minimal_config() without the client_secret_file line, then `extra` (line 13). */
static char *certificate_config(const char *extra)
{
    return mg_printf("[tls]\n"
                     "certificate = %s\n"
                     "private_key = %s\n"
                     "\n"
                     "[listen imaps]\n"
                     "protocol = imap\n"
                     "address = 127.0.0.1:10993\n"
                     "\n"
                     "[provider ms]\n"
                     "type = microsoft\n"
                     "tenant = contoso.onmicrosoft.com\n"
                     "client_id = 11111111-2222-3333-4444-555555555555\n"
                     "%s",
                     cert_path, key_path, extra);
}

static void test_client_certificate(void **state)
{
    (void)state;
    char *extra =
        mg_printf("client_certificate = %s\nclient_private_key = %s\n", cert_path, key_path);
    char *text = certificate_config(extra);
    struct loaded l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_string_equal(l.errors, "");
    const struct provider_conf *p = config_provider(l.cfg, "ms");
    assert_null(p->client_secret);
    assert_string_equal(p->client_certificate, cert_path);
    assert_string_equal(p->client_private_key, key_path);
    assert_int_equal(p->client_assertion_alg, JWT_RS256);
    assert_non_null(p->client_key);
    assert_true(EVP_PKEY_is_a(p->client_key, "RSA"));
    /* the DER is the certificate's */
    const unsigned char *q = p->client_cert_der;
    X509 *x = d2i_X509(NULL, &q, (long)p->client_cert_der_len);
    assert_non_null(x);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), p->client_key), 1);
    X509_free(x);
    loaded_free(&l);
    /* workers: the certificate, never the key */
    l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_string_equal(l.errors, "");
    p = config_provider(l.cfg, "ms");
    assert_null(p->client_key);
    assert_non_null(p->client_cert_der);
    loaded_free(&l);
    free(text);
    free(extra);
    extra = mg_printf("client_certificate = %s\nclient_private_key = %s\n"
                      "client_assertion_alg = PS256\n",
                      cert_path, key_path);
    text = certificate_config(extra);
    l = load_text(text, CONFIG_LOAD_SECRETS);
    assert_string_equal(l.errors, "");
    assert_int_equal(config_provider(l.cfg, "ms")->client_assertion_alg, JWT_PS256);
    loaded_free(&l);
    free(text);
    free(extra);
}

/* One provider tail (from line 13) and the error expected for it. */
static void expect_certificate_error(const char *extra, enum config_secrets secrets, int line,
                                     const char *error)
{
    char *text = certificate_config(extra);
    struct loaded l = load_text(text, secrets);
    assert_null(l.cfg);
    assert_error(&l, line, error);
    loaded_free(&l);
    free(text);
}

static void test_client_certificate_errors(void **state)
{
    (void)state;
    char *s;
    /* key and certificate do not match: found only where the key is read */
    s = mg_printf("client_certificate = %s\nclient_private_key = %s\n", cert_path, other_key_path);
    expect_certificate_error(s, CONFIG_LOAD_SECRETS, 14, "does not match the certificate");
    char *text = certificate_config(s);
    struct loaded l = load_text(text, CONFIG_SKIP_SECRETS);
    assert_non_null(l.cfg);
    loaded_free(&l);
    free(text);
    free(s);
    /* a secret and a certificate */
    s = mg_printf("client_secret = x\nclient_certificate = %s\nclient_private_key = %s\n",
                  cert_path, key_path);
    expect_certificate_error(s, CONFIG_LOAD_SECRETS, 9, "needs exactly one of");
    free(s);
    /* half a pair */
    s = mg_printf("client_certificate = %s\n", cert_path);
    expect_certificate_error(s, CONFIG_SKIP_SECRETS, 13, "needs both 'client_certificate' and");
    free(s);
    s = mg_printf("client_private_key = %s\n", key_path);
    expect_certificate_error(s, CONFIG_SKIP_SECRETS, 13, "needs both 'client_certificate' and");
    free(s);
    /* files: missing, not a certificate, not a key, not RSA */
    s = mg_printf("client_certificate = %s/nope.pem\nclient_private_key = %s\n", tmpdir, key_path);
    expect_certificate_error(s, CONFIG_SKIP_SECRETS, 13, "cannot read");
    free(s);
    s = mg_printf("client_certificate = %s\nclient_private_key = %s\n", secret_path, key_path);
    expect_certificate_error(s, CONFIG_SKIP_SECRETS, 13, "cannot load the certificate");
    free(s);
    s = mg_printf("client_certificate = %s\nclient_private_key = %s\n", cert_path, cert_path);
    expect_certificate_error(s, CONFIG_LOAD_SECRETS, 14, "cannot load the private key");
    free(s);
    s = mg_printf("client_certificate = %s\nclient_private_key = %s\n", ec_cert_path, ec_key_path);
    expect_certificate_error(s, CONFIG_SKIP_SECRETS, 13, "is not an RSA key");
    free(s);
    /* the algorithm */
    s = mg_printf("client_certificate = %s\nclient_private_key = %s\n"
                  "client_assertion_alg = HS256\n",
                  cert_path, key_path);
    expect_certificate_error(s, CONFIG_SKIP_SECRETS, 15, "expected RS256 or PS256, not 'HS256'");
    free(s);
    s = mg_printf("client_secret_file = %s\nclient_assertion_alg = PS256\n", secret_path);
    expect_certificate_error(s, CONFIG_SKIP_SECRETS, 14,
                             "client_assertion_alg needs 'client_certificate'");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_secret_key_file),
        cmocka_unit_test(test_all_values),
        cmocka_unit_test(test_tls_by_port),
        cmocka_unit_test(test_skip_secrets),
        cmocka_unit_test(test_secret_file_errors),
        cmocka_unit_test(test_errors_with_lines),
        cmocka_unit_test(test_missing_pieces),
        cmocka_unit_test(test_tls_key_mismatch),
        cmocka_unit_test(test_line_numbers_survive_long_lines),
        cmocka_unit_test(test_parse_addresses),
        cmocka_unit_test(test_listen_host_name_resolved),
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_public_url),
        cmocka_unit_test(test_resolver),
        cmocka_unit_test(test_client_certificate_errors),
    };
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
