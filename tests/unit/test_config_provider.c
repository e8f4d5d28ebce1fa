/* Unit tests of config_provider.c: each provider type's rules and defaults, per flow, and the
 * Google service account key file. Files without listeners, so no [tls] is needed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"
#include "config_fixture.h"
#include "util.h"

#define MS_USER_SCOPE                                                                              \
    "https://outlook.office365.com/IMAP.AccessAsUser.All "                                         \
    "https://outlook.office365.com/POP.AccessAsUser.All "                                          \
    "https://outlook.office365.com/SMTP.Send offline_access"

/* "[provider p]" on line 1, then the lines given. */
static struct loaded load_provider(const char *lines, enum config_secrets secrets)
{
    char *text = mg_printf("[provider p]\n%s", lines);
    struct loaded l = load_text(text, secrets);
    free(text);
    return l;
}

static const struct provider_conf *provider_ok(const struct loaded *l)
{
    if (!l->cfg)
        fail_msg("config refused:\n%s", l->errors);
    assert_string_equal(l->errors, "");
    return config_provider(l->cfg, "p");
}

/* The file must be refused in both modes with this error among others. */
static void expect_error(const char *lines, int line, const char *error)
{
    static const enum config_secrets modes[] = {CONFIG_LOAD_SECRETS, CONFIG_SKIP_SECRETS};
    for (size_t i = 0; i < MG_ARRAY_LEN(modes); i++) {
        struct loaded l = load_provider(lines, modes[i]);
        assert_null(l.cfg);
        assert_error(&l, line, error);
        loaded_free(&l);
    }
}

/* ---- microsoft ---- */

static void test_microsoft_defaults(void **state)
{
    (void)state;
    struct loaded l = load_provider("type = microsoft\ntenant = t1\nclient_id = c\n"
                                    "client_secret = s\n",
                                    CONFIG_LOAD_SECRETS);
    const struct provider_conf *p = provider_ok(&l);
    assert_int_equal(p->type, MG_PROVIDER_MICROSOFT);
    assert_int_equal(p->flow, MG_FLOW_CLIENT_CREDENTIALS);
    assert_int_equal(p->sasl, MG_SASL_XOAUTH2);
    assert_string_equal(p->token_endpoint,
                        "https://login.microsoftonline.com/t1/oauth2/v2.0/token");
    assert_string_equal(p->device_authorization_endpoint,
                        "https://login.microsoftonline.com/t1/oauth2/v2.0/devicecode");
    assert_string_equal(p->authorization_endpoint,
                        "https://login.microsoftonline.com/t1/oauth2/v2.0/authorize");
    assert_string_equal(p->scope, "https://outlook.office365.com/.default");
    assert_string_equal(provider_server(p, MG_PROTO_SMTP)->host, "smtp.office365.com");
    assert_null(p->service_account_file);
    assert_null(p->sa_key);
    loaded_free(&l);
}

static void test_microsoft_user_flows(void **state)
{
    (void)state;
    /* delegated: a public client needs no credentials */
    struct loaded l = load_provider("type = microsoft\ntenant = t1\nclient_id = c\n"
                                    "flow = delegated\nsasl = oauthbearer\n"
                                    "device_authorization_endpoint = https://idp/{tenant}/dc\n"
                                    "authorization_endpoint = https://idp/{tenant}/authorize\n",
                                    CONFIG_LOAD_SECRETS);
    const struct provider_conf *p = provider_ok(&l);
    assert_string_equal(p->authorization_endpoint, "https://idp/t1/authorize");
    assert_int_equal(p->flow, MG_FLOW_DELEGATED);
    assert_int_equal(p->sasl, MG_SASL_OAUTHBEARER);
    assert_string_equal(p->scope, MS_USER_SCOPE);
    assert_string_equal(p->device_authorization_endpoint, "https://idp/t1/dc");
    assert_null(p->client_secret);
    loaded_free(&l);
    /* password, with a confidential client */
    char *text = mg_printf("type = microsoft\ntenant = t1\nclient_id = c\nflow = password\n"
                           "client_secret_file = %s\n",
                           secret_path);
    l = load_provider(text, CONFIG_LOAD_SECRETS);
    p = provider_ok(&l);
    assert_int_equal(p->flow, MG_FLOW_PASSWORD);
    assert_string_equal(p->scope, MS_USER_SCOPE);
    assert_string_equal(p->client_secret, "s3cret-from-file");
    loaded_free(&l);
    free(text);
    /* scope given: kept */
    l = load_provider("type = microsoft\ntenant = t1\nclient_id = c\nflow = password\n"
                      "scope = https://x/.default\n",
                      CONFIG_SKIP_SECRETS);
    assert_string_equal(provider_ok(&l)->scope, "https://x/.default");
    loaded_free(&l);
}

static void test_microsoft_errors(void **state)
{
    (void)state;
    expect_error("type = microsoft\nclient_id = c\nclient_secret = s\n", 1,
                 "[provider p] needs 'tenant'");
    expect_error("type = microsoft\ntenant = t\nclient_secret = s\n", 1,
                 "[provider p] needs 'client_id'");
    expect_error("type = microsoft\ntenant = t\nclient_id = c\n", 1,
                 "needs exactly one of 'client_secret', 'client_secret_file' and");
    expect_error("type = microsoft\ntenant = t\nclient_id = c\nflow = delegated\n"
                 "client_secret = s\nclient_private_key = x\n",
                 1, "takes at most one of 'client_secret'");
    expect_error("type = microsoft\ntenant = t\nclient_id = c\nflow = service_account\n", 5,
                 "flow = service_account is not available with type = microsoft (use "
                 "client_credentials, delegated or password)");
    char *text = mg_printf("type = microsoft\ntenant = t\nclient_id = c\nclient_secret = s\n"
                           "service_account_file = %s\n",
                           secret_path);
    expect_error(text, 6, "service_account_file is for type = google");
    free(text);
    expect_error("type = microsoft\nflow = sometimes\n", 3,
                 "flow: unknown value 'sometimes' (use client_credentials, delegated, password "
                 "or service_account)");
    expect_error("type = microsoft\nsasl = plain\n", 3,
                 "sasl: unknown value 'plain' (use xoauth2 or oauthbearer)");
    expect_error("type = microsoft\ndevice_authorization_endpoint = http://x/\n", 3,
                 "device_authorization_endpoint: must be an https:// URL");
    expect_error("type = microsoft\nauthorization_endpoint = http://x/\n", 3,
                 "authorization_endpoint: must be an https:// URL");
    expect_error("tenant = t\n", 1, "[provider p] needs 'type'");
}

/* ---- google ---- */

static char *sa_path;

/* Writes Google's JSON key file: members NULL are left out. */
static void write_sa_file(const char *type, const char *email, const char *key_id, const char *pem,
                          const char *token_uri, mode_t mode)
{
    json_t *o = json_object();
    if (type)
        json_object_set_new(o, "type", json_string(type));
    if (email)
        json_object_set_new(o, "client_email", json_string(email));
    if (key_id)
        json_object_set_new(o, "private_key_id", json_string(key_id));
    if (pem)
        json_object_set_new(o, "private_key", json_string(pem));
    if (token_uri)
        json_object_set_new(o, "token_uri", json_string(token_uri));
    json_object_set_new(o, "project_id", json_string("demo"));
    assert_int_equal(json_dump_file(o, sa_path, JSON_INDENT(2)), 0);
    json_decref(o);
    assert_int_equal(chmod(sa_path, mode), 0);
}

static char *key_pem(int bits)
{
    EVP_PKEY *key = EVP_RSA_gen((unsigned)bits);
    assert_non_null(key);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    char *pem = mg_strndup(data, (size_t)len);
    BIO_free(bio);
    EVP_PKEY_free(key);
    return pem;
}

static char *good_pem;

static int setup_google(void **state)
{
    if (setup_files(state) != 0)
        return -1;
    sa_path = mg_printf("%s/sa.json", tmpdir);
    good_pem = key_pem(2048);
    return 0;
}

static int teardown_google(void **state)
{
    free(sa_path);
    free(good_pem);
    return teardown_files(state);
}

static char *sa_lines(const char *extra)
{
    return mg_printf("type = google\nservice_account_file = %s\n%s", sa_path, extra);
}

static void test_google_service_account(void **state)
{
    (void)state;
    write_sa_file("service_account", "gw@demo.iam.gserviceaccount.com", "k1d", good_pem, NULL,
                  0600);
    char *text = sa_lines("");
    struct loaded l = load_provider(text, CONFIG_LOAD_SECRETS);
    const struct provider_conf *p = provider_ok(&l);
    assert_int_equal(p->type, MG_PROVIDER_GOOGLE);
    assert_int_equal(p->flow, MG_FLOW_SERVICE_ACCOUNT); /* from service_account_file */
    assert_null(p->client_id);
    assert_string_equal(p->sa_client_email, "gw@demo.iam.gserviceaccount.com");
    assert_string_equal(p->sa_key_id, "k1d");
    assert_non_null(p->sa_key);
    assert_true(EVP_PKEY_is_a(p->sa_key, "RSA"));
    assert_string_equal(p->token_endpoint, "https://oauth2.googleapis.com/token");
    assert_string_equal(p->device_authorization_endpoint,
                        "https://oauth2.googleapis.com/device/code");
    assert_string_equal(p->authorization_endpoint, "https://accounts.google.com/o/oauth2/v2/auth");
    assert_string_equal(p->scope, "https://mail.google.com/");
    const struct server_addr *imap = provider_server(p, MG_PROTO_IMAP),
                             *pop3 = provider_server(p, MG_PROTO_POP3),
                             *smtp = provider_server(p, MG_PROTO_SMTP);
    assert_string_equal(imap->host, "imap.gmail.com");
    assert_int_equal(imap->port, 993);
    assert_int_equal(imap->tls, MG_TLS_IMPLICIT);
    assert_string_equal(pop3->host, "pop.gmail.com");
    assert_int_equal(pop3->port, 995);
    assert_int_equal(pop3->tls, MG_TLS_IMPLICIT);
    assert_string_equal(smtp->host, "smtp.gmail.com");
    assert_int_equal(smtp->port, 465);
    assert_int_equal(smtp->tls, MG_TLS_IMPLICIT);
    loaded_free(&l);
    /* a worker: e-mail and key id, never the key */
    l = load_provider(text, CONFIG_SKIP_SECRETS);
    p = provider_ok(&l);
    assert_string_equal(p->sa_client_email, "gw@demo.iam.gserviceaccount.com");
    assert_string_equal(p->sa_key_id, "k1d");
    assert_null(p->sa_key);
    loaded_free(&l);
    free(text);
    /* token_uri from the file, unless token_endpoint is set */
    write_sa_file("service_account", "a@b", "k", good_pem, "https://idp.test/token", 0400);
    text = sa_lines("flow = service_account\n");
    l = load_provider(text, CONFIG_SKIP_SECRETS);
    assert_string_equal(provider_ok(&l)->token_endpoint, "https://idp.test/token");
    loaded_free(&l);
    free(text);
    text = sa_lines("token_endpoint = https://mine/token\n");
    l = load_provider(text, CONFIG_SKIP_SECRETS);
    assert_string_equal(provider_ok(&l)->token_endpoint, "https://mine/token");
    loaded_free(&l);
    free(text);
}

static void test_google_delegated(void **state)
{
    (void)state;
    struct loaded l = load_provider("type = google\nflow = delegated\nclient_id = c.apps\n"
                                    "client_secret = s\nimap_server = imap.test:993\n",
                                    CONFIG_LOAD_SECRETS);
    const struct provider_conf *p = provider_ok(&l);
    assert_int_equal(p->flow, MG_FLOW_DELEGATED);
    assert_string_equal(p->client_secret, "s");
    assert_string_equal(p->scope, "https://mail.google.com/");
    assert_string_equal(p->imap.host, "imap.test");
    assert_string_equal(p->pop3.host, "pop.gmail.com");
    loaded_free(&l);
    expect_error("type = google\nflow = delegated\nclient_secret = s\n", 1,
                 "[provider p] needs 'client_id'");
    expect_error("type = google\nflow = delegated\nclient_id = c\n", 1,
                 "needs 'client_secret' or 'client_secret_file' (of the Google OAuth client)");
    char *text = mg_printf("type = google\nflow = delegated\nclient_id = c\nclient_secret = s\n"
                           "client_certificate = %s\nclient_private_key = %s\n",
                           cert_path, key_path);
    expect_error(text, 6, "client_certificate is not supported with type = google");
    free(text);
}

static void test_google_errors(void **state)
{
    (void)state;
    expect_error("type = google\nclient_id = c\nclient_secret = s\n", 1,
                 "[provider p] needs 'service_account_file' (flow = service_account) or "
                 "'flow = delegated'");
    expect_error("type = google\nflow = client_credentials\nclient_id = c\nclient_secret = s\n", 3,
                 "flow = client_credentials is not available with type = google (use "
                 "service_account or delegated)");
    expect_error("type = google\nflow = password\nclient_id = c\n", 3, "is not available");
    expect_error("type = google\nflow = service_account\n", 1,
                 "[provider p] needs 'service_account_file' (flow = service_account)");
    write_sa_file("service_account", "a@b", "k", good_pem, NULL, 0600);
    char *text = sa_lines("tenant = t\nclient_secret = s\n");
    expect_error(text, 4, "tenant is for type = microsoft");
    expect_error(text, 5, "client_secret is not used with flow = service_account");
    free(text);
    text = sa_lines("flow = delegated\nclient_id = c\nclient_secret = s\n");
    expect_error(text, 3, "service_account_file is for flow = service_account");
    free(text);
}

/* One broken key file: the error at service_account_file's line (3), in both modes. */
static void expect_sa_error(const char *error)
{
    char *text = sa_lines("");
    expect_error(text, 3, error);
    free(text);
}

static void test_google_key_file_errors(void **state)
{
    (void)state;
    write_sa_file("service_account", "a@b", "k", good_pem, NULL, 0640);
    expect_sa_error("is accessible by group or others (mode 640); run chmod 600 on it");
    write_sa_file("service_account", "a@b", "k", good_pem, NULL, 0604);
    expect_sa_error("run chmod 600 on it");
    write_sa_file("authorized_user", "a@b", "k", good_pem, NULL, 0600);
    expect_sa_error("\"type\" is not \"service_account\"");
    write_sa_file("service_account", NULL, "k", good_pem, NULL, 0600);
    expect_sa_error("\"client_email\" is missing or empty");
    write_sa_file("service_account", "a@b", "", good_pem, NULL, 0600);
    expect_sa_error("\"private_key_id\" is missing or empty");
    write_sa_file("service_account", "a@b", "k", NULL, NULL, 0600);
    expect_sa_error("\"private_key\" is missing or empty");
    write_sa_file("service_account", "a@b", "k", good_pem, "http://plain/token", 0600);
    expect_sa_error("\"token_uri\" must be an https:// URL");
    write_file(sa_path, "{\"type\": \"service_account\", \"private_key\": \"-----BEGIN");
    chmod(sa_path, 0600);
    expect_sa_error("is not a JSON object (line 1, column");
    /* The key itself is read only with secrets (the broker). */
    char *small = key_pem(1024);
    write_sa_file("service_account", "a@b", "k", small, NULL, 0600);
    free(small);
    char *text = sa_lines("");
    struct loaded l = load_provider(text, CONFIG_LOAD_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 3, "is an RSA key shorter than 2048 bits");
    loaded_free(&l);
    l = load_provider(text, CONFIG_SKIP_SECRETS);
    assert_non_null(l.cfg);
    loaded_free(&l);
    write_sa_file("service_account", "a@b", "k", "not a key", NULL, 0600);
    l = load_provider(text, CONFIG_LOAD_SECRETS);
    assert_error(&l, 3, "cannot load the private key in");
    assert_null(strstr(l.errors, "not a key")); /* the file's content is never shown */
    loaded_free(&l);
    free(text);
}

/* ---- generic ---- */

static const char generic[] = "type = generic\n"                        /* 2 */
                              "token_endpoint = https://idp/{tenant}\n" /* 3 */
                              "scope = mail\n"                          /* 4 */
                              "client_id = c\n"                         /* 5 */
                              "imap_server = imap.test:993\n";          /* 6 */

static void test_generic(void **state)
{
    (void)state;
    char *text = mg_printf("%sclient_secret = s\n", generic);
    struct loaded l = load_provider(text, CONFIG_LOAD_SECRETS);
    const struct provider_conf *p = provider_ok(&l);
    assert_int_equal(p->type, MG_PROVIDER_GENERIC);
    assert_int_equal(p->flow, MG_FLOW_CLIENT_CREDENTIALS);
    assert_string_equal(p->token_endpoint, "https://idp/{tenant}"); /* not Microsoft's */
    assert_string_equal(p->scope, "mail");
    assert_null(p->device_authorization_endpoint);
    assert_null(p->authorization_endpoint);
    assert_string_equal(provider_server(p, MG_PROTO_IMAP)->host, "imap.test");
    assert_null(provider_server(p, MG_PROTO_POP3)); /* no such service */
    assert_null(provider_server(p, MG_PROTO_SMTP));
    loaded_free(&l);
    free(text);
    text = mg_printf("%sflow = delegated\npop3_server = pop.test:110\nsmtp_server = smtp.test:465\n"
                     "device_authorization_endpoint = https://idp/device\n",
                     generic);
    l = load_provider(text, CONFIG_SKIP_SECRETS);
    p = provider_ok(&l);
    assert_int_equal(p->flow, MG_FLOW_DELEGATED);
    assert_string_equal(p->device_authorization_endpoint, "https://idp/device");
    assert_int_equal(provider_server(p, MG_PROTO_POP3)->tls, MG_TLS_STARTTLS); /* port 110 */
    assert_int_equal(provider_server(p, MG_PROTO_SMTP)->tls, MG_TLS_IMPLICIT); /* port 465 */
    loaded_free(&l);
    free(text);
}

static void test_generic_errors(void **state)
{
    (void)state;
    struct loaded l = load_provider("type = generic\nclient_secret = s\n", CONFIG_SKIP_SECRETS);
    assert_null(l.cfg);
    assert_error(&l, 1, "[provider p] needs 'token_endpoint' (type = generic)");
    assert_error(&l, 1, "[provider p] needs 'scope' (type = generic)");
    assert_error(&l, 1, "[provider p] needs 'imap_server' (type = generic)");
    assert_error(&l, 1, "[provider p] needs 'client_id'");
    assert_int_equal(count_lines(l.errors), 4);
    loaded_free(&l);
    char *text = mg_printf("%sflow = service_account\n", generic);
    expect_error(text, 7, "flow = service_account is not available with type = generic");
    free(text);
    text = mg_printf("%sclient_secret = s\ntenant = t\n", generic);
    expect_error(text, 8, "tenant is for type = microsoft");
    free(text);
    text = mg_printf("%sclient_secret = s\nimap_tls = starttls\n", generic);
    expect_error(text, 8, "STARTTLS to an IMAP upstream is not supported yet");
    free(text);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(mg_flow_name(MG_FLOW_CLIENT_CREDENTIALS), "client_credentials");
    assert_string_equal(mg_flow_name(MG_FLOW_DELEGATED), "delegated");
    assert_string_equal(mg_flow_name(MG_FLOW_PASSWORD), "password");
    assert_string_equal(mg_flow_name(MG_FLOW_SERVICE_ACCOUNT), "service_account");
    assert_string_equal(mg_provider_type_name(MG_PROVIDER_MICROSOFT), "microsoft");
    assert_string_equal(mg_provider_type_name(MG_PROVIDER_GOOGLE), "google");
    assert_string_equal(mg_provider_type_name(MG_PROVIDER_GENERIC), "generic");
    assert_string_equal(mg_sasl_name(MG_SASL_XOAUTH2), "XOAUTH2");
    assert_string_equal(mg_sasl_name(MG_SASL_OAUTHBEARER), "OAUTHBEARER");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_microsoft_defaults),
        cmocka_unit_test(test_microsoft_user_flows),
        cmocka_unit_test(test_microsoft_errors),
        cmocka_unit_test(test_google_service_account),
        cmocka_unit_test(test_google_delegated),
        cmocka_unit_test(test_google_errors),
        cmocka_unit_test(test_google_key_file_errors),
        cmocka_unit_test(test_generic),
        cmocka_unit_test(test_generic_errors),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup_google, teardown_google);
}
