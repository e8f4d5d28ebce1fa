/* Tests for probe_advice.c: the one-sentence fix `mailgate token test` prints for a refused
 * upstream login, by token kind (roles, scp, opaque), protocol and the server's reply. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "probe_advice.h"

#define MAILBOX "alice@contoso.com"
#define APP_ID "11111111-2222-3333-4444-555555555555"

static json_t *app_claims(const char *roles)
{
    json_t *c = json_pack("{s:s, s:s}", "appid", APP_ID, "aud", "https://outlook.office.com");
    json_t *arr = json_array();
    char copy[256];
    strcpy(copy, roles);
    for (char *save = NULL, *r = strtok_r(copy, " ", &save); r; r = strtok_r(NULL, " ", &save))
        json_array_append_new(arr, json_string(r));
    json_object_set_new(c, "roles", arr);
    return c;
}

static json_t *delegated_claims(const char *scp)
{
    return json_pack("{s:s, s:s}", "scp", scp, "upn", MAILBOX);
}

/* The advice for a refused login of proto with these claims and reply. */
static const char *advise(enum mg_proto proto, const json_t *claims, const char *reply)
{
    static char buf[1024];
    struct probe_facts f = {.proto = proto,
                            .outcome = PROBE_REFUSED,
                            .claims = claims,
                            .mailbox = MAILBOX,
                            .user = "alice",
                            .reply = reply};
    probe_advice(&f, buf, sizeof buf);
    return buf;
}

static void assert_sentence(const char *s)
{
    size_t n = strlen(s);
    assert_true(n > 20);
    assert_true(s[0] >= 'A' && s[0] <= 'Z');
    assert_int_equal(s[n - 1], '.');
}

static void test_app_missing_role(void **state)
{
    (void)state;
    json_t *c = app_claims("POP.AccessAsApp");
    const char *s = advise(MG_PROTO_IMAP, c, "A1 NO AUTHENTICATE failed.");
    assert_sentence(s);
    assert_non_null(strstr(s, "application permission IMAP.AccessAsApp"));
    assert_non_null(strstr(s, "admin consent"));
    s = advise(MG_PROTO_SMTP, c, "535 5.7.3 Authentication unsuccessful");
    assert_non_null(strstr(s, "SMTP.SendAsApp"));
    json_decref(c);
}

static void test_app_role_present_needs_mailbox_rights(void **state)
{
    (void)state;
    json_t *c = app_claims("IMAP.AccessAsApp POP.AccessAsApp SMTP.SendAsApp");
    const char *s = advise(MG_PROTO_POP3, c, "-ERR Authentication failure.");
    assert_sentence(s);
    assert_non_null(strstr(s, "New-ServicePrincipal -AppId " APP_ID));
    assert_non_null(strstr(s, "Add-MailboxPermission -Identity " MAILBOX));
    assert_non_null(strstr(s, "FullAccess"));
    assert_non_null(strstr(s, "POP is enabled"));
    assert_null(strstr(s, "SendAs ")); /* only SMTP needs SendAs */
    assert_null(strstr(s, "admin consent"));
    s = advise(MG_PROTO_SMTP, c, "535 5.7.3 Authentication unsuccessful");
    assert_non_null(strstr(s, "Add-RecipientPermission -Identity " MAILBOX));
    assert_non_null(strstr(s, "-AccessRights SendAs"));
    json_decref(c);
}

static void test_smtp_auth_disabled(void **state)
{
    (void)state;
    json_t *c = app_claims("SMTP.SendAsApp");
    const char *s = advise(MG_PROTO_SMTP, c,
                           "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                           "disabled for the Tenant.");
    assert_sentence(s);
    assert_non_null(
        strstr(s, "Set-CASMailbox -Identity " MAILBOX " -SmtpClientAuthenticationDisabled $false"));
    /* the same code from IMAP means nothing special */
    s = advise(MG_PROTO_IMAP, c, "A1 NO 5.7.139");
    assert_non_null(strstr(s, "IMAP.AccessAsApp"));
    json_decref(c);
}

static void test_delegated(void **state)
{
    (void)state;
    json_t *c = delegated_claims("IMAP.AccessAsUser.All SMTP.Send");
    const char *s = advise(MG_PROTO_POP3, c, "-ERR Authentication failure.");
    assert_sentence(s);
    assert_non_null(strstr(s, "delegated permission POP.AccessAsUser.All"));
    assert_non_null(strstr(s, "mailgate user authorize alice --device-code"));
    s = advise(MG_PROTO_IMAP, c, "A1 NO AUTHENTICATE failed.");
    assert_sentence(s);
    assert_non_null(strstr(s, "cannot open " MAILBOX " with its own rights"));
    assert_non_null(strstr(s, "Set-CASMailbox"));
    json_decref(c);
}

static void test_opaque_token(void **state)
{
    (void)state;
    const char *s = advise(MG_PROTO_IMAP, NULL, "A1 NO [AUTHENTICATIONFAILED] Invalid credentials");
    assert_sentence(s);
    assert_non_null(strstr(s, "domain-wide delegation"));
    assert_non_null(strstr(s, "https://mail.google.com/"));
    assert_non_null(strstr(s, "IMAP is enabled for " MAILBOX));
    s = advise(MG_PROTO_POP3, NULL, "-ERR");
    assert_non_null(strstr(s, "POP is enabled"));
}

static void test_no_permissions_claim(void **state)
{
    (void)state;
    json_t *c = json_pack("{s:s}", "aud", "api://something");
    const char *s = advise(MG_PROTO_IMAP, c, "A1 NO");
    assert_sentence(s);
    assert_non_null(strstr(s, "neither roles nor scopes"));
    json_decref(c);
}

static void test_nothing_to_fix(void **state)
{
    (void)state;
    json_t *c = app_claims("POP.AccessAsApp");
    char buf[64] = "x";
    struct probe_facts f = {.proto = MG_PROTO_IMAP,
                            .outcome = PROBE_WORKS,
                            .claims = c,
                            .mailbox = MAILBOX,
                            .reply = "A1 OK"};
    probe_advice(&f, buf, sizeof buf);
    assert_string_equal(buf, "");
    f.outcome = PROBE_UNAVAILABLE;
    strcpy(buf, "x");
    probe_advice(&f, buf, sizeof buf);
    assert_string_equal(buf, "");
    /* a small buffer still ends in NUL */
    f.outcome = PROBE_REFUSED;
    probe_advice(&f, buf, 16);
    assert_int_equal(strlen(buf), 15);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_missing_role),
        cmocka_unit_test(test_app_role_present_needs_mailbox_rights),
        cmocka_unit_test(test_smtp_auth_disabled),
        cmocka_unit_test(test_delegated),
        cmocka_unit_test(test_opaque_token),
        cmocka_unit_test(test_no_permissions_claim),
        cmocka_unit_test(test_nothing_to_fix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
