/* A [provider] section once the whole file is read: what each type and flow needs or refuses,
 * each type's defaults (endpoints, scope, servers) and the credentials the keys name (client
 * secret file, certificate, Google service account key file). Errors name the line of the key
 * concerned, or the section's line for a key that is missing. */
#include "config_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "util.h"

#define CLIENT_SECRET_MAX 4096
#define SERVICE_ACCOUNT_FILE_MAX (64 * 1024)

/* How an upstream server is reached when the file does not say: the type's default (none for
 * generic), and its TLS mode guessed from the port (one well-known port has the other mode). */
struct server_default {
    const char *host;
    uint16_t port;
    enum mg_tls_mode usual_tls;
    uint16_t exception_port; /* e.g. 143 for IMAP: STARTTLS */
};

struct type_defaults {
    const char *token_endpoint; /* NULL: required in the file */
    const char *device_endpoint;
    const char *authorization_endpoint;
    struct server_default imap, pop3, smtp;
};

static const struct type_defaults type_defaults[] = {
    [MG_PROVIDER_MICROSOFT] =
        {
            "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
            "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
            "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
            {"outlook.office365.com", 993, MG_TLS_IMPLICIT, 143},
            {"outlook.office365.com", 995, MG_TLS_IMPLICIT, 110},
            {"smtp.office365.com", 587, MG_TLS_STARTTLS, 465},
        },
    [MG_PROVIDER_GOOGLE] =
        {
            "https://oauth2.googleapis.com/token",
            "https://oauth2.googleapis.com/device/code",
            "https://accounts.google.com/o/oauth2/v2/auth",
            {"imap.gmail.com", 993, MG_TLS_IMPLICIT, 143},
            {"pop.gmail.com", 995, MG_TLS_IMPLICIT, 110},
            {"smtp.gmail.com", 465, MG_TLS_STARTTLS, 465},
        },
    [MG_PROVIDER_GENERIC] =
        {
            NULL,
            NULL,
            NULL,
            {NULL, 993, MG_TLS_IMPLICIT, 143},
            {NULL, 995, MG_TLS_IMPLICIT, 110},
            {NULL, 587, MG_TLS_STARTTLS, 465},
        },
};

#define MS_APP_SCOPE "https://outlook.office365.com/.default"
#define MS_USER_SCOPE                                                                              \
    "https://outlook.office365.com/IMAP.AccessAsUser.All "                                         \
    "https://outlook.office365.com/POP.AccessAsUser.All "                                          \
    "https://outlook.office365.com/SMTP.Send offline_access"
#define GOOGLE_SCOPE "https://mail.google.com/"

/* A section being finished: the parser, the section as read and the provider it fills. */
struct finishing {
    struct parser *p;
    const struct section *s;
    struct provider_conf *pr;
};

static int line_of(const struct finishing *f, const char *key)
{
    return conf_key_line(f->s, key);
}

/* The key is set and its value was accepted. */
static bool valid_key(const struct finishing *f, const char *key)
{
    int line = line_of(f, key);
    return line && !conf_error_at(f->p, line);
}

static void needs(const struct finishing *f, const char *key, const char *why)
{
    conf_error(f->p, conf_section_line(f->s), "[%s] needs '%s'%s", conf_section_title(f->s), key,
               why);
}

/* ---- credentials ---- */

static void load_client_secret(const struct finishing *f)
{
    struct provider_conf *pr = f->pr;
    size_t len = 0;
    int line = line_of(f, "client_secret_file");
    char *secret = mg_read_file(pr->client_secret_file, CLIENT_SECRET_MAX, 1, &len);
    if (!secret)
        conf_error(f->p, line, "cannot read %s: %s", pr->client_secret_file, strerror(errno));
    else if (len == 0 || strlen(secret) != len || conf_has_control_char(secret))
        conf_error(f->p, line, "%s must hold the secret on one line (and nothing else)",
                   pr->client_secret_file);
    else {
        pr->client_secret = secret;
        mg_protect_secret(secret, len);
    }
    if (secret && pr->client_secret != secret)
        mg_free_secret(&secret);
}

/* client_certificate + client_private_key (+ client_assertion_alg): all or nothing. */
static void finish_certificate(const struct finishing *f)
{
    int cert = line_of(f, "client_certificate"), pkey = line_of(f, "client_private_key");
    int alg = line_of(f, "client_assertion_alg");
    if (!cert && !pkey) {
        if (alg)
            conf_error(f->p, alg, "client_assertion_alg needs 'client_certificate'");
        return;
    }
    if (!cert || !pkey) {
        conf_error(f->p, cert ? cert : pkey,
                   "[%s] needs both 'client_certificate' and 'client_private_key'",
                   conf_section_title(f->s));
        return;
    }
    struct provider_conf *pr = f->pr;
    if (pr->client_certificate && pr->client_private_key)
        config_load_client_certificate(f->p, pr, cert, pkey,
                                       conf_secrets(f->p) == CONFIG_LOAD_SECRETS);
}

/* Of client_secret, client_secret_file and the certificate pair: how many kinds are set. */
static int credential_kinds(const struct finishing *f)
{
    return (line_of(f, "client_secret") != 0) + (line_of(f, "client_secret_file") != 0) +
           (line_of(f, "client_certificate") || line_of(f, "client_private_key"));
}

/* The app's own credentials, for every flow but service_account. A confidential client needs
 * one kind; for a user's delegated or password token a public client (none) is fine too. */
static void finish_client_credentials(const struct finishing *f)
{
    const char *title = conf_section_title(f->s);
    int kinds = credential_kinds(f);
    if (!line_of(f, "client_id"))
        needs(f, "client_id", "");
    if (f->pr->type == MG_PROVIDER_GOOGLE && line_of(f, "client_certificate"))
        conf_error(f->p, line_of(f, "client_certificate"),
                   "client_certificate is not supported with type = google");
    if (f->pr->type == MG_PROVIDER_GOOGLE && !line_of(f, "client_secret") &&
        !line_of(f, "client_secret_file"))
        conf_error(f->p, conf_section_line(f->s),
                   "[%s] needs 'client_secret' or 'client_secret_file' (of the Google OAuth "
                   "client)",
                   title);
    if (f->pr->flow == MG_FLOW_CLIENT_CREDENTIALS && kinds != 1)
        conf_error(f->p, conf_section_line(f->s),
                   "[%s] needs exactly one of 'client_secret', 'client_secret_file' and "
                   "'client_certificate' with 'client_private_key'",
                   title);
    else if (kinds > 1)
        conf_error(f->p, conf_section_line(f->s),
                   "[%s] takes at most one of 'client_secret', 'client_secret_file' and "
                   "'client_certificate' with 'client_private_key'",
                   title);
    else if (line_of(f, "client_secret_file") && f->pr->client_secret_file &&
             conf_secrets(f->p) == CONFIG_LOAD_SECRETS)
        load_client_secret(f);
    finish_certificate(f);
}

/* ---- Google service account key file ---- */

/* A non-empty string member without control characters, copied; NULL (reported) otherwise. */
static char *json_text(const struct finishing *f, json_t *root, const char *member)
{
    const char *v = json_string_value(json_object_get(root, member));
    if (!v || !*v || conf_has_control_char(v)) {
        conf_error(f->p, line_of(f, "service_account_file"), "%s: \"%s\" is missing or empty",
                   f->pr->service_account_file, member);
        return NULL;
    }
    return mg_strdup(v);
}

/* The key file of a Google service account is a secret like secret.key. */
static bool private_file(const struct finishing *f, const char *path)
{
    return config_private_file(f->p, line_of(f, "service_account_file"), path);
}

/* token_uri: where Google wants the signed assertion; token_endpoint in the file wins. */
static void take_token_uri(const struct finishing *f, json_t *root)
{
    json_t *uri = json_object_get(root, "token_uri");
    if (!uri)
        return;
    const char *v = json_string_value(uri);
    if (!v || strncmp(v, "https://", 8) != 0 || !v[8] || conf_has_control_char(v))
        conf_error(f->p, line_of(f, "service_account_file"),
                   "%s: \"token_uri\" must be an https:// URL", f->pr->service_account_file);
    else if (!f->pr->token_endpoint)
        f->pr->token_endpoint = mg_strdup(v);
}

static void take_private_key(const struct finishing *f, json_t *root)
{
    json_t *key = json_object_get(root, "private_key");
    const char *pem = json_string_value(key);
    int line = line_of(f, "service_account_file");
    if (!pem || !*pem) {
        conf_error(f->p, line, "%s: \"private_key\" is missing or empty",
                   f->pr->service_account_file);
        return;
    }
    if (conf_secrets(f->p) == CONFIG_LOAD_SECRETS) {
        char *what = mg_printf("the private key in %s", f->pr->service_account_file);
        f->pr->sa_key = config_parse_rsa_key(f->p, line, what, pem, json_string_length(key));
        free(what);
    }
    mg_wipe((char *)pem, json_string_length(key)); /* jansson's copy: no other use follows */
}

static void check_service_account(const struct finishing *f, json_t *root)
{
    struct provider_conf *pr = f->pr;
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type || strcmp(type, "service_account") != 0) {
        conf_error(f->p, line_of(f, "service_account_file"),
                   "%s: \"type\" is not \"service_account\" (expected Google's JSON key of a "
                   "service account)",
                   pr->service_account_file);
        return;
    }
    pr->sa_client_email = json_text(f, root, "client_email");
    pr->sa_key_id = json_text(f, root, "private_key_id");
    take_token_uri(f, root);
    take_private_key(f, root);
}

/* Read in both modes (a worker fails like the broker would); the key is kept with secrets only.
 * The JSON error's text is not shown: it may quote the file, and the file holds the key. */
static void load_service_account(const struct finishing *f)
{
    const char *path = f->pr->service_account_file;
    if (!path || !private_file(f, path))
        return;
    size_t len = 0;
    char *text = mg_read_file(path, SERVICE_ACCOUNT_FILE_MAX, 0, &len);
    if (!text) {
        conf_error(f->p, line_of(f, "service_account_file"), "cannot read %s: %s", path,
                   strerror(errno));
        return;
    }
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    mg_wipe(text, len);
    free(text);
    if (!json_is_object(root))
        conf_error(f->p, line_of(f, "service_account_file"),
                   "%s is not a JSON object (line %d, column %d)", path, err.line, err.column);
    else
        check_service_account(f, root);
    json_decref(root);
}

static void finish_service_account(const struct finishing *f)
{
    static const char *const not_used[] = {"client_secret", "client_secret_file",
                                           "client_certificate", "client_private_key"};
    for (size_t i = 0; i < MG_ARRAY_LEN(not_used); i++) {
        if (line_of(f, not_used[i]))
            conf_error(f->p, line_of(f, not_used[i]),
                       "%s is not used with flow = service_account (the key is in "
                       "service_account_file)",
                       not_used[i]);
    }
    if (!line_of(f, "service_account_file"))
        needs(f, "service_account_file", " (flow = service_account)");
    else
        load_service_account(f);
}

/* ---- type and flow ---- */

/* The flow when the file does not say, and whether the type offers the flow. */
static bool choose_flow(const struct finishing *f)
{
    struct provider_conf *pr = f->pr;
    int flow_line = line_of(f, "flow");
    if (flow_line && conf_error_at(f->p, flow_line))
        return false;
    if (!flow_line && pr->type == MG_PROVIDER_GOOGLE) {
        if (!line_of(f, "service_account_file")) {
            conf_error(f->p, conf_section_line(f->s),
                       "[%s] needs 'service_account_file' (flow = service_account) or "
                       "'flow = delegated'",
                       conf_section_title(f->s));
            return false;
        }
        pr->flow = MG_FLOW_SERVICE_ACCOUNT;
    }
    bool google = pr->type == MG_PROVIDER_GOOGLE;
    bool offered = google ? pr->flow == MG_FLOW_SERVICE_ACCOUNT || pr->flow == MG_FLOW_DELEGATED
                          : pr->flow != MG_FLOW_SERVICE_ACCOUNT;
    if (!offered)
        conf_error(f->p, flow_line, "flow = %s is not available with type = %s (use %s)",
                   mg_flow_name(pr->flow), mg_provider_type_name(pr->type),
                   google ? "service_account or delegated"
                          : "client_credentials, delegated or password");
    return offered;
}

/* Keys that belong to one type only. */
static void check_type_keys(const struct finishing *f)
{
    enum mg_provider_type type = f->pr->type;
    if (type == MG_PROVIDER_MICROSOFT && !line_of(f, "tenant"))
        needs(f, "tenant", "");
    if (type != MG_PROVIDER_MICROSOFT && line_of(f, "tenant"))
        conf_error(f->p, line_of(f, "tenant"), "tenant is for type = microsoft");
    if (type != MG_PROVIDER_GOOGLE && line_of(f, "service_account_file"))
        conf_error(f->p, line_of(f, "service_account_file"),
                   "service_account_file is for type = google");
    if (type == MG_PROVIDER_GOOGLE && f->pr->flow == MG_FLOW_DELEGATED &&
        line_of(f, "service_account_file"))
        conf_error(f->p, line_of(f, "service_account_file"),
                   "service_account_file is for flow = service_account");
    if (type == MG_PROVIDER_GENERIC) {
        if (!line_of(f, "token_endpoint"))
            needs(f, "token_endpoint", " (type = generic)");
        if (!line_of(f, "scope"))
            needs(f, "scope", " (type = generic)");
        if (!line_of(f, "imap_server"))
            needs(f, "imap_server", " (type = generic)");
    }
}

static void default_scope(struct provider_conf *pr)
{
    if (pr->scope)
        return;
    if (pr->type == MG_PROVIDER_MICROSOFT)
        pr->scope =
            mg_strdup(pr->flow == MG_FLOW_CLIENT_CREDENTIALS ? MS_APP_SCOPE : MS_USER_SCOPE);
    else if (pr->type == MG_PROVIDER_GOOGLE)
        pr->scope = mg_strdup(GOOGLE_SCOPE);
}

/* Every occurrence of `from` replaced; allocated. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t from_len = strlen(from), to_len = strlen(to), n = 0;
    for (const char *q = strstr(s, from); q; q = strstr(q + from_len, from))
        n++;
    char *out = mg_malloc(strlen(s) + n * to_len + 1), *w = out;
    for (const char *q; (q = strstr(s, from)); s = q + from_len) {
        memcpy(w, s, (size_t)(q - s));
        w += q - s;
        memcpy(w, to, to_len);
        w += to_len;
    }
    strcpy(w, s);
    return out;
}

/* A default URL when unset; "{tenant}" expanded for Microsoft. */
static void finish_url(const struct provider_conf *pr, char **url, const char *fallback)
{
    if (!*url && fallback)
        *url = mg_strdup(fallback);
    if (*url && pr->type == MG_PROVIDER_MICROSOFT) {
        char *expanded = replace_all(*url, "{tenant}", pr->tenant ? pr->tenant : "");
        free(*url);
        *url = expanded;
    }
}

static void finish_server(struct server_addr *srv, int tls_line, const struct server_default *d)
{
    if (!srv->host && d->host) {
        srv->host = mg_strdup(d->host);
        srv->port = d->port;
    }
    if (!tls_line) {
        enum mg_tls_mode other =
            d->usual_tls == MG_TLS_IMPLICIT ? MG_TLS_STARTTLS : MG_TLS_IMPLICIT;
        srv->tls = srv->port == d->exception_port ? other : d->usual_tls;
    }
}

static void finish_servers(const struct finishing *f)
{
    struct provider_conf *pr = f->pr;
    const struct type_defaults *d = &type_defaults[pr->type];
    finish_server(&pr->imap, line_of(f, "imap_tls"), &d->imap);
    finish_server(&pr->pop3, line_of(f, "pop3_tls"), &d->pop3);
    finish_server(&pr->smtp, line_of(f, "smtp_tls"), &d->smtp);
    if (pr->imap.host && pr->imap.tls == MG_TLS_STARTTLS)
        conf_error(f->p, line_of(f, "imap_tls") ? line_of(f, "imap_tls") : conf_section_line(f->s),
                   "STARTTLS to an IMAP upstream is not supported yet");
}

void config_finish_provider(struct parser *p, const struct section *s, struct provider_conf *pr)
{
    struct finishing f = {p, s, pr};
    if (!valid_key(&f, "type"))
        return; /* reported; the type's rules would only add noise */
    bool flow_ok = choose_flow(&f);
    check_type_keys(&f);
    if (flow_ok && pr->flow == MG_FLOW_SERVICE_ACCOUNT)
        finish_service_account(&f);
    else if (flow_ok)
        finish_client_credentials(&f);
    const struct type_defaults *d = &type_defaults[pr->type];
    finish_url(pr, &pr->token_endpoint, d->token_endpoint);
    finish_url(pr, &pr->device_authorization_endpoint, d->device_endpoint);
    finish_url(pr, &pr->authorization_endpoint, d->authorization_endpoint);
    default_scope(pr);
    finish_servers(&f);
}

void config_free_provider(struct provider_conf *pr)
{
    free(pr->name);
    free(pr->tenant);
    free(pr->client_id);
    mg_free_secret(&pr->client_secret);
    free(pr->client_secret_file);
    free(pr->client_certificate);
    free(pr->client_private_key);
    free(pr->client_cert_der);
    EVP_PKEY_free(pr->client_key); /* OpenSSL clears the private key's numbers */
    free(pr->device_authorization_endpoint);
    free(pr->authorization_endpoint);
    free(pr->service_account_file);
    free(pr->sa_client_email);
    free(pr->sa_key_id);
    EVP_PKEY_free(pr->sa_key);
    free(pr->token_endpoint);
    free(pr->scope);
    free(pr->imap.host);
    free(pr->pop3.host);
    free(pr->smtp.host);
    free(pr->ca_file);
}

const struct server_addr *provider_server(const struct provider_conf *p, enum mg_proto proto)
{
    const struct server_addr *srv = NULL;
    switch (proto) {
    case MG_PROTO_IMAP:
        srv = &p->imap;
        break;
    case MG_PROTO_POP3:
        srv = &p->pop3;
        break;
    case MG_PROTO_SMTP:
        srv = &p->smtp;
        break;
    case MG_PROTO_HTTP: /* no upstream */
        break;
    }
    return srv && srv->host ? srv : NULL;
}
