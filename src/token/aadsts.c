/* AADSTS error code -> fix (see aadsts.h). The texts follow Microsoft's error reference
 * (learn.microsoft.com/entra/identity-platform/reference-error-codes) and name the setting of
 * mailgate.conf or the place in the Entra admin center that has to change. */
#include "aadsts.h"

#include <string.h>

#include "util.h"

#define NO_MFA                                                                                     \
    "the password flow cannot do MFA; use the delegated flow or exclude the account with a "       \
    "Conditional Access policy."
#define REAUTHORIZE                                                                                \
    "re-authorize the user (mailgate user authorize NAME); until then its logins fail."

static const struct {
    long code;
    const char *hint;
} hints[] = {
    /* the app and its credentials */
    {7000215, "The client secret is wrong: copy the secret's Value (not its Secret ID) from "
              "Certificates & secrets, or create a new one, and update client_secret_file."},
    {7000222, "The client secret has expired: create a new one under Certificates & secrets and "
              "update client_secret_file."},
    {700016, "The application (client) ID was not found in the tenant: check client_id and "
             "tenant, and that the app is registered in (or consented to by) that tenant."},
    {700027, "The certificate is not registered for the app: upload it under Certificates & "
             "secrets and check that client_certificate matches client_private_key."},
    {700024, "The client assertion has expired or is not yet valid: check the gateway's clock "
             "(NTP)."},
    {7000112, "The application is disabled: enable it in Enterprise applications "
              "(Properties, Enabled for users to sign in)."},
    {7000218, "The app needs credentials for this flow: configure client credentials, or allow "
              "public client flows in the app registration (Authentication)."},
    /* tenant, resource, scope */
    {90002, "The tenant was not found: set tenant to the directory (tenant) ID or a verified "
            "domain, and check that token_endpoint is the right cloud."},
    {900023, "The tenant is not a valid identifier: set tenant to the directory (tenant) ID or "
             "a verified domain name."},
    {70011, "The scope is invalid: app-only access needs scope = "
            "https://outlook.office365.com/.default."},
    {500011, "The resource (Office 365 Exchange Online) was not found in the tenant: check the "
             "scope URL and that the tenant has Exchange Online."},
    {65004, "The user declined to consent to the app's permissions: sign in again and accept, "
            "or have an administrator grant consent for the organisation."},
    {50011, "The redirect URI is not registered for the app: add PUBLIC_URL/oauth/callback as a "
            "Web platform redirect URI under Authentication."},
    {501481, "The code verifier did not match the code challenge: start the sign-in again."},
    {54005, "The authorization code was already redeemed: start the sign-in again."},
    {65001, "Consent is missing: grant admin consent for the app's API permissions (API "
            "permissions, Grant admin consent)."},
    /* refresh tokens: delegated access */
    {50173, "The refresh token was revoked (password changed or sessions revoked): " REAUTHORIZE},
    {70000, "The refresh token or grant is invalid or expired: " REAUTHORIZE},
    {700082, "The refresh token expired after a long time unused: " REAUTHORIZE},
    {70008, "The authorization code or refresh token has expired or was revoked: " REAUTHORIZE},
    {70043,
     "The refresh token expired under a Conditional Access sign-in frequency policy: " REAUTHORIZE},
    /* the user account: password and device-code flows */
    {50076, "Multi-factor authentication is required for the account: " NO_MFA},
    {50079, "The account must register for multi-factor authentication: " NO_MFA},
    {50057, "The user account is disabled in Entra ID: enable it or use another account."},
    {50055, "The user's password has expired: the user must change it first."},
    {50053, "The account is locked after too many failed sign-ins (or the sign-in came from a "
            "blocked IP address): wait, or unlock it in Entra ID."},
    {50126, "Wrong user name or password in Entra ID for the password flow."},
    {50034, "The user account does not exist in the tenant: check the mailbox address."},
    {53003, "Conditional Access blocked the sign-in: exclude the app or the service principal "
            "from the policy, or meet its conditions (e.g. trusted location)."},
};

long aadsts_find(const char *text, size_t len)
{
    static const char prefix[] = "AADSTS";
    const size_t plen = sizeof prefix - 1;
    if (!text)
        return 0;
    size_t n = strnlen(text, len);
    for (size_t i = 0; i + plen < n; i++) {
        if (memcmp(text + i, prefix, plen) != 0)
            continue;
        size_t d = 0;
        long code = 0;
        while (i + plen + d < n && text[i + plen + d] >= '0' && text[i + plen + d] <= '9') {
            if (d == 9)
                return 0; /* too long for a code */
            code = code * 10 + (text[i + plen + d] - '0');
            d++;
        }
        if (d > 0)
            return code;
    }
    return 0;
}

const char *aadsts_hint(long code)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(hints); i++)
        if (hints[i].code == code)
            return hints[i].hint;
    return NULL;
}

const char *aadsts_hint_for_text(const char *text)
{
    long code = aadsts_find(text, (size_t)-1);
    return code ? aadsts_hint(code) : NULL;
}
