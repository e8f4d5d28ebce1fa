/* [domain NAME] sections: the names clients and MTAs are told (autoconfig, SRV records) and
 * the MTA-STS policy, validated by RFC 8461's rules (mode values, mx pattern syntax, max_age)
 * so that the policy the gateway serves is one senders accept. */
#include "config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HOST_NAME_MAX_LEN 253 /* RFC 1035, without the trailing dot */
#define LABEL_MAX_LEN 63

static const char *const mta_sts_mode_words[] = {
    [MG_MTA_STS_OFF] = "off",
    [MG_MTA_STS_ENFORCE] = "enforce",
    [MG_MTA_STS_TESTING] = "testing",
    [MG_MTA_STS_NONE] = "none",
};

const char *mg_mta_sts_mode_name(enum mg_mta_sts_mode m)
{
    return (unsigned)m < MG_ARRAY_LEN(mta_sts_mode_words) ? mta_sts_mode_words[m] : "?";
}

/* ---- names ---- */

static int valid_label(const char *s, size_t len)
{
    if (len == 0 || len > LABEL_MAX_LEN || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
    }
    return 1;
}

int mg_valid_host_name(const char *name)
{
    size_t len = strlen(name), labels = 0;
    if (len == 0 || len > HOST_NAME_MAX_LEN)
        return 0;
    for (const char *s = name;; labels++) {
        size_t n = strcspn(s, ".");
        if (!valid_label(s, n))
            return 0;
        if (!s[n])
            break;
        s += n + 1;
    }
    return labels >= 1; /* at least two labels: "localhost" is no public name */
}

const char *mta_sts_mx_problem(const char *pattern)
{
    for (const char *c = pattern; *c; c++)
        if ((unsigned char)*c >= 0x80)
            return "must be ASCII: write an internationalised name as its A-label (xn--...)";
    const char *host = pattern;
    if (strncmp(pattern, "*.", 2) == 0)
        host += 2;
    if (strchr(host, '*'))
        return "a wildcard may only be the whole first label (\"*.\" at the front)";
    if (!mg_valid_host_name(host))
        return "not a host name (labels of letters, digits and '-', at least two)";
    return NULL;
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* ---- values ---- */

/* Splits "a, b ,c" into trimmed items; an empty item is an error. */
static int split_list(const char *value, struct mg_strlist *out)
{
    for (const char *s = value;;) {
        s += strspn(s, " \t");
        size_t n = strcspn(s, ",");
        size_t end = n;
        while (end && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            end--;
        if (end == 0)
            return -1;
        out->v = mg_realloc(out->v, (out->n + 1) * sizeof *out->v);
        out->v[out->n++] = mg_strndup(s, end);
        if (!s[n])
            return 0;
        s += n + 1;
    }
}

void config_free_strlist(struct mg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* The Microsoft 365 names under mx.microsoft have two labels below it (contoso-com.a-v1), so
 * "*.mx.microsoft" is valid syntax that never matches: the most common broken policy. */
static void warn_one_label_wildcard(struct parser *p, int line, const char *pattern)
{
    if (strcmp(pattern, "*.mx.microsoft") == 0)
        conf_warning(p, line,
                     "mta_sts_mx: '%s' never matches: a wildcard covers exactly one label and "
                     "Microsoft 365's MX hosts have two below mx.microsoft (e.g. "
                     "contoso-com.a-v1.mx.microsoft); use '*.mail.protection.outlook.com' for "
                     "MX hosts there, or name the MX host itself",
                     pattern);
}

static void parse_mx_list(struct parser *p, int line, const char *value, struct mg_strlist *out)
{
    config_free_strlist(out);
    if (split_list(value, out) != 0) {
        conf_error(p, line,
                   "mta_sts_mx: empty pattern in the list (patterns are separated by ',')");
        return;
    }
    for (size_t i = 0; i < out->n; i++) {
        const char *why = mta_sts_mx_problem(out->v[i]);
        if (why) {
            conf_error(p, line, "mta_sts_mx: '%s': %s", out->v[i], why);
            continue;
        }
        lower(out->v[i]);
        warn_one_label_wildcard(p, line, out->v[i]);
    }
}

/* RFC 8460 3: rua=mailto: or https: URIs, commas and semicolons %-encoded inside them. */
const char *tls_rpt_uri_problem(const char *uri)
{
    if (strpbrk(uri, " \t;!,"))
        return "contains a space, ';', '!' or ',' (percent-encode them)";
    if (strncmp(uri, "mailto:", 7) == 0) {
        const char *at = strchr(uri + 7, '@');
        if (!at || at == uri + 7 || !mg_valid_host_name(at + 1))
            return "a mailto: URI needs an address, mailto:tlsrpt@example.com";
        return NULL;
    }
    if (strncmp(uri, "https://", 8) == 0) {
        /* the gateway serves POSTs on this host (src/http/tlsrpt_post.c) */
        char host[256];
        size_t n = strcspn(uri + 8, ":/?#");
        if (n == 0 || n >= sizeof host)
            return "an https:// URI needs a host name, https://mta-sts.example.com/tlsrpt";
        memcpy(host, uri + 8, n);
        host[n] = '\0';
        return mg_valid_host_name(host) ? NULL : "the host of the https:// URI is not a host name";
    }
    return "use a mailto: or an https:// URI";
}

static void parse_rua_list(struct parser *p, int line, const char *value, struct mg_strlist *out)
{
    config_free_strlist(out);
    if (split_list(value, out) != 0) {
        conf_error(p, line, "tls_rpt: empty URI in the list (URIs are separated by ',')");
        return;
    }
    for (size_t i = 0; i < out->n; i++) {
        const char *why = tls_rpt_uri_problem(out->v[i]);
        if (why)
            conf_error(p, line, "tls_rpt: '%s': %s", out->v[i], why);
    }
}

static void parse_max_age(struct parser *p, int line, const char *value, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end || errno || n > MTA_STS_MAX_AGE_MAX)
        conf_error(p, line, "mta_sts_max_age: expected seconds from 0 to %u (RFC 8461), not '%s'",
                   MTA_STS_MAX_AGE_MAX, value);
    else
        *out = (uint32_t)n;
}

static void parse_mode(struct parser *p, int line, const char *value, enum mg_mta_sts_mode *out)
{
    for (int m = MG_MTA_STS_ENFORCE; m <= MG_MTA_STS_NONE; m++) {
        if (strcmp(value, mta_sts_mode_words[m]) == 0) {
            *out = (enum mg_mta_sts_mode)m;
            return;
        }
    }
    conf_error(p, line, "mta_sts_mode: expected enforce, testing or none, not '%s'", value);
}

void config_set_domain_value(struct parser *p, int line, const struct key_def *key, void *field,
                             const char *value)
{
    switch (key->kind) {
    case V_ON_OFF:
        if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0)
            *(int *)field = strcmp(value, "on") == 0;
        else
            conf_error(p, line, "%s: expected on or off, not '%s'", key->name, value);
        break;
    case V_MTA_STS_MODE:
        parse_mode(p, line, value, field);
        break;
    case V_MX_LIST:
        parse_mx_list(p, line, value, field);
        break;
    case V_MAX_AGE:
        parse_max_age(p, line, value, field);
        break;
    case V_RUA_LIST:
        parse_rua_list(p, line, value, field);
        break;
    default:
        break;
    }
}

/* ---- once the file is read ---- */

uint16_t listener_port(const struct listener_conf *l)
{
    if (l->addr.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
}

/* implicit TLS on the ports RFC 8314 names, STARTTLS on the others' well-known ports. */
static int well_known_tls(enum mg_proto proto, uint16_t port, enum mg_tls_mode *tls)
{
    static const struct {
        enum mg_proto proto;
        uint16_t port;
        enum mg_tls_mode tls;
    } known[] = {{MG_PROTO_IMAP, 993, MG_TLS_IMPLICIT}, {MG_PROTO_IMAP, 143, MG_TLS_STARTTLS},
                 {MG_PROTO_POP3, 995, MG_TLS_IMPLICIT}, {MG_PROTO_POP3, 110, MG_TLS_STARTTLS},
                 {MG_PROTO_SMTP, 465, MG_TLS_IMPLICIT}, {MG_PROTO_SMTP, 587, MG_TLS_STARTTLS}};
    for (size_t i = 0; i < MG_ARRAY_LEN(known); i++) {
        if (known[i].proto == proto && known[i].port == port) {
            *tls = known[i].tls;
            return 1;
        }
    }
    return 0;
}

/* The listener of proto on port (any port when 0); implicit TLS first (RFC 8314 3.3). */
static const struct listener_conf *pick_listener(const struct config *cfg, enum mg_proto proto,
                                                 uint16_t port)
{
    const struct listener_conf *best = NULL;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct listener_conf *l = &cfg->listeners[i];
        if (l->protocol != proto || (port && listener_port(l) != port))
            continue;
        if (!best || (best->tls != MG_TLS_IMPLICIT && l->tls == MG_TLS_IMPLICIT))
            best = l;
    }
    return best;
}

static void finish_server(struct parser *p, int line, const struct config *cfg, enum mg_proto proto,
                          const char *value, struct domain_server *srv)
{
    char *host = NULL;
    uint16_t port = 0;
    if (strchr(value, ':')) {
        if (config_parse_host_port(value, &host, &port) != 0 || port == 0) {
            conf_error(p, line, "%s_host: expected host or host:port, not '%s'",
                       mg_proto_name(proto), value);
            return;
        }
    } else {
        host = mg_strdup(value);
    }
    if (!mg_valid_host_name(host)) {
        conf_error(p, line,
                   "%s_host: '%s' is not a host name (clients check the certificate "
                   "against it)",
                   mg_proto_name(proto), host);
        free(host);
        return;
    }
    lower(host);
    const struct listener_conf *l = pick_listener(cfg, proto, port);
    if (!port && !l) {
        conf_error(p, line,
                   "%s_host: give the port (host:port): there is no [listen] with "
                   "protocol = %s to take it from",
                   mg_proto_name(proto), mg_proto_name(proto));
        free(host);
        return;
    }
    srv->host = host;
    srv->port_set = port != 0;
    srv->port = port ? port : listener_port(l);
    if (l)
        srv->tls = l->tls;
    else if (!well_known_tls(proto, port, &srv->tls))
        srv->tls = (l = pick_listener(cfg, proto, 0)) ? l->tls : MG_TLS_IMPLICIT;
}

static void check_mta_sts(struct parser *p, const struct section *s, const struct domain_conf *d)
{
    int mode_line = conf_key_line(s, "mta_sts_mode");
    if (!mode_line) {
        static const char *const needs_mode[] = {"mta_sts_mx", "mta_sts_max_age"};
        for (size_t i = 0; i < MG_ARRAY_LEN(needs_mode); i++)
            if (conf_key_line(s, needs_mode[i]))
                conf_error(p, conf_key_line(s, needs_mode[i]),
                           "%s without mta_sts_mode (enforce, testing or none)", needs_mode[i]);
        return;
    }
    if (d->mta_sts_mode != MG_MTA_STS_NONE && d->mta_sts_mode != MG_MTA_STS_OFF &&
        !conf_key_line(s, "mta_sts_mx"))
        conf_error(p, mode_line,
                   "mta_sts_mode = %s needs mta_sts_mx: the MX host patterns senders may "
                   "deliver to (RFC 8461 3.2)",
                   mg_mta_sts_mode_name(d->mta_sts_mode));
}

struct tls_conf domain_tls_conf(const struct config *cfg, const struct domain_conf *d)
{
    struct tls_conf t = cfg->tls;
    t.certificate = d->certificate;
    t.private_key = d->private_key;
    t.ecdsa_certificate = t.ecdsa_private_key = NULL;
    return t;
}

static void finish_certificate(struct parser *p, const struct section *s, const struct config *cfg,
                               const struct domain_conf *d)
{
    int cert_line = conf_key_line(s, "certificate"), key_line = conf_key_line(s, "private_key");
    if (!cert_line != !key_line) {
        conf_error(p, conf_section_line(s), "[%s] needs both 'certificate' and 'private_key'",
                   conf_section_title(s));
        return;
    }
    if (!d->certificate || !d->private_key || conf_error_at(p, cert_line) ||
        conf_error_at(p, key_line))
        return;
    /* The same policy as [tls], with this pair: a mismatch is reported at the domain's key. */
    struct tls_conf t = domain_tls_conf(cfg, d);
    config_check_tls(p, s, &t);
}

void config_finish_domain(struct parser *p, const struct section *s, const struct config *cfg,
                          struct domain_conf *d)
{
    lower(d->name);
    /* [domain Example.com] and [domain example.com] are one domain: section titles alone
     * differ in case. */
    for (const struct domain_conf *o = cfg->domains; o < d; o++)
        if (strcmp(o->name, d->name) == 0)
            conf_error(p, d->line, "duplicate section [domain %s] (first at line %d)", d->name,
                       o->line);
    if (!mg_valid_host_name(d->name))
        conf_error(p, d->line, "[%s]: '%s' is not a domain name (ASCII labels, at least two)",
                   conf_section_title(s), d->name);
    const struct {
        const char *key;
        enum mg_proto proto;
        const char *value;
        struct domain_server *srv;
    } servers[] = {{"imap_host", MG_PROTO_IMAP, d->imap_host, &d->imap},
                   {"pop3_host", MG_PROTO_POP3, d->pop3_host, &d->pop3},
                   {"smtp_host", MG_PROTO_SMTP, d->smtp_host, &d->smtp}};
    for (size_t i = 0; i < MG_ARRAY_LEN(servers); i++)
        if (servers[i].value)
            finish_server(p, conf_key_line(s, servers[i].key), cfg, servers[i].proto,
                          servers[i].value, servers[i].srv);
    if (!d->display_name)
        d->display_name = mg_strdup(d->name);
    check_mta_sts(p, s, d);
    finish_certificate(p, s, cfg, d);
}

void config_free_domain(struct domain_conf *d)
{
    free(d->name);
    free(d->imap_host);
    free(d->pop3_host);
    free(d->smtp_host);
    free(d->imap.host);
    free(d->pop3.host);
    free(d->smtp.host);
    free(d->display_name);
    config_free_strlist(&d->mta_sts_mx);
    config_free_strlist(&d->tls_rpt);
    free(d->certificate);
    free(d->private_key);
}

const struct domain_conf *config_domain(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_domains; i++) {
        if (mg_ascii_casecmp(cfg->domains[i].name, name) == 0)
            return &cfg->domains[i];
    }
    return NULL;
}

const struct domain_server *domain_server(const struct domain_conf *d, enum mg_proto proto)
{
    const struct domain_server *srv = proto == MG_PROTO_IMAP   ? &d->imap
                                      : proto == MG_PROTO_POP3 ? &d->pop3
                                      : proto == MG_PROTO_SMTP ? &d->smtp
                                                               : NULL;
    return srv && srv->host ? srv : NULL;
}
