/* Autoconfig documents (autoconfig.h). Written with stdio into memory: the documents are
 * small, and every value goes through autoconfig_xml_text(). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

#define LOCAL_PART_MAX 64

/* ---- addresses ---- */

static int atext(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

const char *autoconfig_address_domain(const char *address)
{
    const char *at = address ? strchr(address, '@') : NULL;
    if (!at || strchr(at + 1, '@'))
        return NULL;
    size_t local_len = (size_t)(at - address);
    if (local_len == 0 || local_len > LOCAL_PART_MAX || address[0] == '.' || at[-1] == '.')
        return NULL;
    for (const char *c = address; c < at; c++)
        if (!(atext(*c) || (*c == '.' && c[1] != '.')))
            return NULL;
    return mg_valid_host_name(at + 1) ? at + 1 : NULL;
}

/* ---- XML ---- */

void autoconfig_xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* <name>text</name> */
static void element(FILE *f, const char *indent, const char *name, const char *text)
{
    fprintf(f, "%s<%s>", indent, name);
    autoconfig_xml_text(f, text);
    fprintf(f, "</%s>\n", name);
}

static char *finish(FILE *f, char **text)
{
    if (fclose(f) != 0) {
        free(*text);
        return NULL;
    }
    return *text;
}

/* ---- Thunderbird ---- */

static void thunderbird_server(FILE *f, const char *tag, const char *type,
                               const struct domain_server *srv)
{
    fprintf(f, "    <%s type=\"%s\">\n", tag, type);
    element(f, "      ", "hostname", srv->host);
    fprintf(f, "      <port>%u</port>\n", (unsigned)srv->port);
    element(f, "      ", "socketType", srv->tls == MG_TLS_IMPLICIT ? "SSL" : "STARTTLS");
    element(f, "      ", "username", "%EMAILADDRESS%");
    element(f, "      ", "authentication", "password-cleartext");
    fprintf(f, "    </%s>\n", tag);
}

char *autoconfig_thunderbird(const struct domain_conf *d)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n", f);
    fputs("  <emailProvider id=\"", f);
    autoconfig_xml_text(f, d->name);
    fputs("\">\n", f);
    element(f, "    ", "domain", d->name);
    element(f, "    ", "displayName", d->display_name);
    element(f, "    ", "displayShortName", d->display_name);
    if (d->imap.host)
        thunderbird_server(f, "incomingServer", "imap", &d->imap);
    if (d->pop3.host)
        thunderbird_server(f, "incomingServer", "pop3", &d->pop3);
    if (d->smtp.host)
        thunderbird_server(f, "outgoingServer", "smtp", &d->smtp);
    fputs("  </emailProvider>\n</clientConfig>\n", f);
    return finish(f, &text);
}

/* ---- Outlook (POX Autodiscover) ---- */

static void autodiscover_protocol(FILE *f, const char *type, const struct domain_server *srv,
                                  const char *address)
{
    const char *in = "        ";
    fputs("      <Protocol>\n", f);
    element(f, in, "Type", type);
    element(f, in, "Server", srv->host);
    fprintf(f, "%s<Port>%u</Port>\n", in, (unsigned)srv->port);
    element(f, in, "DomainRequired", "off");
    element(f, in, "LoginName", address);
    /* Absent SPA means on (NTLM): Outlook would never send the password mailgate checks. */
    element(f, in, "SPA", "off");
    element(f, in, "SSL", "on");
    element(f, in, "Encryption", srv->tls == MG_TLS_IMPLICIT ? "SSL" : "TLS");
    element(f, in, "AuthRequired", "on");
    fputs("      </Protocol>\n", f);
}

char *autoconfig_autodiscover(const struct domain_conf *d, const char *address)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
          "<Autodiscover "
          "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n"
          "  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/"
          "responseschema/2006a\">\n"
          "    <User>\n",
          f);
    element(f, "      ", "DisplayName", d->display_name);
    fputs("    </User>\n    <Account>\n", f);
    element(f, "      ", "AccountType", "email");
    element(f, "      ", "Action", "settings");
    if (d->imap.host)
        autodiscover_protocol(f, "IMAP", &d->imap, address);
    if (d->pop3.host)
        autodiscover_protocol(f, "POP3", &d->pop3, address);
    if (d->smtp.host)
        autodiscover_protocol(f, "SMTP", &d->smtp, address);
    fputs("    </Account>\n  </Response>\n</Autodiscover>\n", f);
    return finish(f, &text);
}

/* ---- Apple (.mobileconfig) ---- */

/* A UUID derived from the address and what it names, so that installing the profile again
 * replaces the account instead of adding a second one. */
static void derived_uuid(const char *address, const char *what, char out[37])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char *input = mg_printf("mailgate:%s:%s", what, address);
    if (!EVP_Digest(input, strlen(input), md, &md_len, EVP_sha256(), NULL))
        memset(md, 0, sizeof md);
    free(input);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 layout: name-based */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 15];
    }
    out[o] = '\0';
}

static void plist_string(FILE *f, const char *key, const char *value)
{
    fprintf(f, "      <key>%s</key>\n", key);
    element(f, "      ", "string", value);
}

static void plist_server(FILE *f, const char *side, const struct domain_server *srv,
                         const char *address)
{
    char key[64];
    snprintf(key, sizeof key, "%sMailServerAuthentication", side);
    plist_string(f, key, "EmailAuthPassword");
    snprintf(key, sizeof key, "%sMailServerHostName", side);
    plist_string(f, key, srv->host);
    fprintf(f, "      <key>%sMailServerPortNumber</key>\n      <integer>%u</integer>\n", side,
            (unsigned)srv->port);
    /* true for STARTTLS too: the device then upgrades the connection on that port. */
    fprintf(f, "      <key>%sMailServerUseSSL</key>\n      <true/>\n", side);
    snprintf(key, sizeof key, "%sMailServerUsername", side);
    plist_string(f, key, address);
}

static void mobileconfig_payload(FILE *f, const struct domain_conf *d, const char *address,
                                 const struct domain_server *in)
{
    char uuid[37];
    derived_uuid(address, "account", uuid);
    fputs("    <dict>\n", f);
    plist_string(f, "EmailAccountDescription", d->display_name);
    plist_string(f, "EmailAccountName", address);
    plist_string(f, "EmailAccountType", in == &d->imap ? "EmailTypeIMAP" : "EmailTypePOP");
    plist_string(f, "EmailAddress", address);
    plist_server(f, "Incoming", in, address);
    plist_server(f, "Outgoing", &d->smtp, address);
    fputs("      <key>OutgoingPasswordSameAsIncomingPassword</key>\n      <true/>\n", f);
    plist_string(f, "PayloadDisplayName", d->display_name);
    char *id = mg_printf("org.mailgate.%s.account.%s", d->name, uuid);
    plist_string(f, "PayloadIdentifier", id);
    free(id);
    plist_string(f, "PayloadType", "com.apple.mail.managed");
    plist_string(f, "PayloadUUID", uuid);
    fputs("      <key>PayloadVersion</key>\n      <integer>1</integer>\n    </dict>\n", f);
}

char *autoconfig_mobileconfig(const struct domain_conf *d, const char *address)
{
    const struct domain_server *in = d->imap.host ? &d->imap : d->pop3.host ? &d->pop3 : NULL;
    if (!in || !d->smtp.host)
        return NULL; /* a mail account payload needs both sides */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD "
          "PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
          "<plist version=\"1.0\">\n<dict>\n  <key>PayloadContent</key>\n  <array>\n",
          f);
    mobileconfig_payload(f, d, address, in);
    fputs("  </array>\n", f);
    char uuid[37];
    derived_uuid(address, "profile", uuid);
    char *name = mg_printf("%s (mail)", d->display_name);
    plist_string(f, "PayloadDisplayName", name);
    free(name);
    char *id = mg_printf("org.mailgate.%s.profile.%s", d->name, uuid);
    plist_string(f, "PayloadIdentifier", id);
    free(id);
    plist_string(f, "PayloadType", "Configuration");
    plist_string(f, "PayloadUUID", uuid);
    fputs("      <key>PayloadVersion</key>\n      <integer>1</integer>\n</dict>\n</plist>\n", f);
    return finish(f, &text);
}
