/* Unit tests of what the web side answers with: the MTA-STS policy and its id (mta_sts.c),
 * addresses and XML escaping in the autoconfig documents (autoconfig.c), and the Autodiscover
 * request parser (autodiscover_request.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig.h"
#include "autodiscover_request.h"
#include "config.h"
#include "mta_sts.h"
#include "util.h"

static char *mx_example[] = {"mail.example.com", "*.mail.protection.outlook.com"};

static struct domain_conf example(void)
{
    struct domain_conf d = {0};
    d.name = "example.com";
    d.display_name = "Example <&> \"Co\"";
    d.mta_sts_mode = MG_MTA_STS_ENFORCE;
    d.mta_sts_mx = (struct mg_strlist){mx_example, 2};
    d.mta_sts_max_age = 604800;
    d.imap = (struct domain_server){"imap.example.com", 993, MG_TLS_IMPLICIT, 0};
    d.smtp = (struct domain_server){"smtp.example.com", 587, MG_TLS_STARTTLS, 1};
    return d;
}

static void test_policy_text(void **state)
{
    (void)state;
    struct domain_conf d = example();
    char *policy = mta_sts_policy(&d);
    assert_string_equal(policy, "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
                                "mx: *.mail.protection.outlook.com\r\nmax_age: 604800\r\n");
    free(policy);
    d.mta_sts_mode = MG_MTA_STS_NONE;
    d.mta_sts_mx.n = 0;
    policy = mta_sts_policy(&d);
    assert_string_equal(policy, "version: STSv1\r\nmode: none\r\nmax_age: 604800\r\n");
    free(policy);
    d.mta_sts_mode = MG_MTA_STS_OFF;
    assert_null(mta_sts_policy(&d));
}

static void id_of(const struct domain_conf *d, char out[MTA_STS_ID_LEN + 1])
{
    char *policy = mta_sts_policy(d);
    assert_int_equal(mta_sts_policy_id(policy, out), 0);
    free(policy);
}

static void test_id_changes_exactly_with_the_policy(void **state)
{
    (void)state;
    struct domain_conf d = example();
    char a[MTA_STS_ID_LEN + 1], b[MTA_STS_ID_LEN + 1];
    id_of(&d, a);
    assert_int_equal(strlen(a), MTA_STS_ID_LEN);
    assert_true(strspn(a, "0123456789abcdef") == MTA_STS_ID_LEN); /* RFC 8461: 1-32 alnum */
    id_of(&d, b);
    assert_string_equal(a, b);       /* the same policy: the same id */
    d.display_name = "another name"; /* not part of the policy */
    d.imap.port = 143;
    id_of(&d, b);
    assert_string_equal(a, b);
    d.mta_sts_max_age = 604801;
    id_of(&d, b);
    assert_string_not_equal(a, b);
    d = example();
    d.mta_sts_mode = MG_MTA_STS_TESTING;
    id_of(&d, b);
    assert_string_not_equal(a, b);
    d = example();
    d.mta_sts_mx.n = 1;
    id_of(&d, b);
    assert_string_not_equal(a, b);
    assert_int_equal(mta_sts_policy_id(NULL, b), -1);
}

static void test_address_domain(void **state)
{
    (void)state;
    assert_string_equal(autoconfig_address_domain("alice@example.com"), "example.com");
    assert_string_equal(autoconfig_address_domain("a.b+tag@Sub.Example.com"), "Sub.Example.com");
    const char *bad[] = {"",
                         "alice",
                         "@example.com",
                         "alice@",
                         "a@b@example.com",
                         "alice@localhost",
                         ".alice@example.com",
                         "alice.@example.com",
                         "al..ice@example.com",
                         "al ice@example.com",
                         "<a>@example.com",
                         "alice@exa_mple.com",
                         "alice@example.com\r\nX: y"};
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++)
        if (autoconfig_address_domain(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
    char local[80];
    memset(local, 'a', 65);
    strcpy(local + 65, "@example.com");
    assert_null(autoconfig_address_domain(local)); /* 65-byte local part */
    assert_null(autoconfig_address_domain(NULL));
}

static void test_documents_escape_and_name_servers(void **state)
{
    (void)state;
    struct domain_conf d = example();
    char *tb = autoconfig_thunderbird(&d);
    assert_non_null(strstr(tb, "<displayName>Example &lt;&amp;&gt; &quot;Co&quot;</displayName>"));
    assert_non_null(strstr(tb, "<incomingServer type=\"imap\">"));
    assert_null(strstr(tb, "type=\"pop3\"")); /* no pop3_host */
    assert_non_null(strstr(tb, "<port>587</port>\n      <socketType>STARTTLS</socketType>"));
    free(tb);
    char *ad = autoconfig_autodiscover(&d, "o'brien@example.com");
    assert_non_null(strstr(ad, "<LoginName>o&apos;brien@example.com</LoginName>"));
    assert_non_null(strstr(ad, "<Encryption>TLS</Encryption>"));
    assert_null(strstr(ad, "<SPA>on"));
    free(ad);
    char *mc = autoconfig_mobileconfig(&d, "alice@example.com");
    assert_non_null(strstr(mc, "<string>com.apple.mail.managed</string>"));
    free(mc);
    d.smtp.host = NULL; /* a profile needs an outgoing server */
    assert_null(autoconfig_mobileconfig(&d, "alice@example.com"));
}

static enum autodiscover_parse parse(const char *body, struct autodiscover_request *r)
{
    return autodiscover_request_parse(body, strlen(body), r);
}

static void test_autodiscover_request(void **state)
{
    (void)state;
    struct autodiscover_request r;
    const char *ok = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/"
                     "exchange/autodiscover/outlook/requestschema/2006\"><Request>\n"
                     "  <EMailAddress> alice@example.com </EMailAddress>\n"
                     "  <AcceptableResponseSchema>" AUTODISCOVER_OUTLOOK_SCHEMA
                     "</AcceptableResponseSchema></Request></Autodiscover>";
    assert_int_equal(parse(ok, &r), AUTODISCOVER_OK);
    assert_string_equal(r.email, "alice@example.com");
    assert_int_equal(parse("<Autodiscover><Request><EMailAddress>a@b.c</EMailAddress>"
                           "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/"
                           "autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema>"
                           "</Request></Autodiscover>",
                           &r),
                     AUTODISCOVER_OTHER_SCHEMA);
    assert_int_equal(parse("<Autodiscover><Request/></Autodiscover>", &r),
                     AUTODISCOVER_NOT_REQUEST);
    assert_int_equal(
        parse("<Other><Request><EMailAddress>a@b.c</EMailAddress></Request></Other>", &r),
        AUTODISCOVER_NOT_REQUEST);
    assert_int_equal(parse("<Autodiscover><Request>", &r), AUTODISCOVER_BAD_XML);
    assert_int_equal(parse("", &r), AUTODISCOVER_BAD_XML);
    /* entities need a DOCTYPE, which is refused: no billion laughs, no external entity */
    assert_int_equal(parse("<!DOCTYPE a [<!ENTITY x \"y\">]><Autodiscover/>", &r),
                     AUTODISCOVER_BAD_XML);
    char deep[400] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "<a>");
    assert_int_equal(parse(deep, &r), AUTODISCOVER_BAD_XML);
    char *long_email = mg_calloc(1, 1000);
    strcpy(long_email, "<Autodiscover><Request><EMailAddress>");
    memset(long_email + strlen(long_email), 'a', 400);
    strcat(long_email, "</EMailAddress></Request></Autodiscover>");
    assert_int_equal(parse(long_email, &r), AUTODISCOVER_BAD_XML);
    free(long_email);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_text),
        cmocka_unit_test(test_id_changes_exactly_with_the_policy),
        cmocka_unit_test(test_address_domain),
        cmocka_unit_test(test_documents_escape_and_name_servers),
        cmocka_unit_test(test_autodiscover_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
