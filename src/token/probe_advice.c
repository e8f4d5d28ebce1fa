/* Fix sentences for refused upstream logins (see probe_advice.h). */
#include "probe_advice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_claims.h"

/* Exchange Online's answer when SMTP AUTH is switched off for the mailbox or the tenant. */
#define SMTP_AUTH_DISABLED "5.7.139"

/* As the protocol is called in Exchange's and Google's settings. */
static const char *service_name(enum mg_proto proto)
{
    return proto == MG_PROTO_IMAP ? "IMAP" : proto == MG_PROTO_POP3 ? "POP" : "SMTP AUTH";
}

static void app_only_advice(const struct probe_facts *f, char *buf, size_t size)
{
    const char *role = jwt_required_permission(f->proto, 0);
    if (!jwt_claims_has_permission(f->claims, role)) {
        snprintf(buf, size,
                 "Add the application permission %s (Office 365 Exchange Online) and grant admin "
                 "consent.",
                 role);
        return;
    }
    const json_t *appid = json_object_get(f->claims, "appid");
    if (!json_is_string(appid))
        appid = json_object_get(f->claims, "azp"); /* v2.0 access tokens */
    const char *app = json_is_string(appid) ? json_string_value(appid) : "<application id>";
    char send_as[256] = "";
    if (f->proto == MG_PROTO_SMTP)
        snprintf(send_as, sizeof send_as,
                 " and Add-RecipientPermission -Identity %s -Trustee <object id> -AccessRights "
                 "SendAs",
                 f->mailbox);
    snprintf(buf, size,
             "Give the app's service principal access to %s: New-ServicePrincipal -AppId %s "
             "-ObjectId <object id of the enterprise application>, then Add-MailboxPermission "
             "-Identity %s -User <object id> -AccessRights FullAccess%s, and check that %s is "
             "enabled for the mailbox with Set-CASMailbox.",
             f->mailbox, app, f->mailbox, send_as, service_name(f->proto));
}

static void delegated_advice(const struct probe_facts *f, char *buf, size_t size)
{
    const char *scope = jwt_required_permission(f->proto, 1);
    if (!jwt_claims_has_permission(f->claims, scope)) {
        char how[160] = "";
        if (f->user)
            snprintf(how, sizeof how, " (mailgate user authorize %s --device-code)", f->user);
        snprintf(buf, size,
                 "Add the delegated permission %s (Office 365 Exchange Online) to the app and "
                 "authorize the user again%s.",
                 scope, how);
        return;
    }
    snprintf(buf, size,
             "The user cannot open %s with its own rights: check the mailbox name and that %s is "
             "enabled for the mailbox (Set-CASMailbox).",
             f->mailbox, service_name(f->proto));
}

void probe_advice(const struct probe_facts *f, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    if (f->outcome != PROBE_REFUSED)
        return;
    if (f->proto == MG_PROTO_SMTP && f->reply && strstr(f->reply, SMTP_AUTH_DISABLED)) {
        snprintf(buf, size,
                 "SMTP AUTH is disabled for the mailbox or the tenant: Set-CASMailbox -Identity %s "
                 "-SmtpClientAuthenticationDisabled $false.",
                 f->mailbox);
        return;
    }
    if (!f->claims) {
        const char *delegation = "Check the domain-wide delegation of the client for the scope "
                                 "https://mail.google.com/";
        if (f->proto == MG_PROTO_SMTP)
            snprintf(buf, size, "%s and that %s exists.", delegation, f->mailbox);
        else
            snprintf(buf, size, "%s and that %s is enabled for %s.", delegation,
                     service_name(f->proto), f->mailbox);
        return;
    }
    const char *kind = NULL;
    char *perms = jwt_claims_permissions(f->claims, &kind);
    free(perms);
    if (kind && strcmp(kind, "roles") == 0)
        app_only_advice(f, buf, size);
    else if (kind && strcmp(kind, "scp") == 0)
        delegated_advice(f, buf, size);
    else
        snprintf(buf, size,
                 "The token carries neither roles nor scopes: check the app's permissions at the "
                 "provider and its rights on %s.",
                 f->mailbox);
}
