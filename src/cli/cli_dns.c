/* `mailgate dns DOMAIN`: the DNS records a [domain] needs, in zone-file syntax, from the same
 * configuration the gateway serves: host names and SRV records for the mail services, the web
 * names for autoconfig and MTA-STS, and the _mta-sts and _smtp._tls TXT records. What cannot be
 * a record (this gateway's own address, a reminder) is a ';' comment, so the output can be
 * pasted into a zone file as it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "dns_records.h"
#include "mta_sts.h"
#include "util.h"

const char *dns_gateway_name(const struct domain_conf *d)
{
    return d->imap.host ? d->imap.host : d->smtp.host ? d->smtp.host : d->pop3.host;
}

static int has_http_listener(const struct config *cfg, int tls_only)
{
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].protocol == MG_PROTO_HTTP &&
            (!tls_only || cfg->listeners[i].tls == MG_TLS_IMPLICIT))
            return 1;
    return 0;
}

static void print_hosts(const struct domain_conf *d, const char *gw)
{
    printf("\n; Mail host names. %s must resolve to this gateway (A/AAAA records), and the\n"
           "; gateway's certificate must cover every name below: a CNAME to\n"
           "; outlook.office365.com fails Thunderbird's certificate check.\n"
           "; %s. %d IN A    <this gateway's IPv4 address>\n"
           "; %s. %d IN AAAA <this gateway's IPv6 address>\n",
           gw, gw, DNS_TTL, gw, DNS_TTL);
    const char *done[3] = {gw, NULL, NULL};
    for (enum mg_proto p = MG_PROTO_IMAP; p <= MG_PROTO_SMTP; p++) {
        const struct domain_server *srv = domain_server(d, p);
        if (!srv || strcmp(srv->host, done[0]) == 0 || (done[1] && strcmp(srv->host, done[1]) == 0))
            continue;
        printf("%s. %d IN CNAME %s.\n", srv->host, DNS_TTL, gw);
        done[done[1] ? 2 : 1] = srv->host;
    }
}

static const char *srv_service(enum mg_proto p, enum mg_tls_mode tls)
{
    static const char *const implicit[] = {"_imaps", "_pop3s", "_submissions"};
    static const char *const starttls[] = {"_imap", "_pop3", "_submission"};
    return tls == MG_TLS_IMPLICIT ? implicit[p] : starttls[p];
}

static void add_srv(struct dns_srv_expect **v, size_t *n, struct dns_srv_expect e)
{
    *v = mg_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = e;
}

/* RFC 6186 and RFC 8314: implicit TLS first (priority 0), the STARTTLS listeners after it. */
struct dns_srv_expect *dns_expected_srv(const struct config *cfg, const struct domain_conf *d,
                                        size_t *n)
{
    struct dns_srv_expect *v = NULL;
    *n = 0;
    for (enum mg_proto p = MG_PROTO_IMAP; p <= MG_PROTO_SMTP; p++) {
        const struct domain_server *srv = domain_server(d, p);
        if (!srv)
            continue;
        add_srv(&v, n, (struct dns_srv_expect){srv_service(p, srv->tls), 0, srv->port, srv->host});
        for (size_t i = 0; !srv->port_set && i < cfg->n_listeners; i++) {
            const struct listener_conf *l = &cfg->listeners[i];
            if (l->protocol == p && l->tls != srv->tls)
                add_srv(&v, n,
                        (struct dns_srv_expect){srv_service(p, l->tls), 10, listener_port(l),
                                                srv->host});
        }
    }
    return v;
}

char *dns_srv_record(const struct domain_conf *d, const struct dns_srv_expect *e)
{
    return mg_printf("%s._tcp.%s. %d IN SRV %u 1 %u %s.", e->service, d->name, DNS_TTL, e->priority,
                     (unsigned)e->port, e->host);
}

static void print_srv(const struct config *cfg, const struct domain_conf *d)
{
    printf("\n; Service records (RFC 6186, RFC 8314: implicit TLS preferred)\n");
    size_t n;
    struct dns_srv_expect *v = dns_expected_srv(cfg, d, &n);
    for (size_t i = 0; i < n; i++) {
        char *line = dns_srv_record(d, &v[i]);
        printf("%s\n", line);
        free(line);
    }
    free(v);
}

static void print_autoconfig(const struct config *cfg, const struct domain_conf *d, const char *gw)
{
    printf("\n; Client autoconfiguration (Thunderbird, Apple devices)\n");
    if (!has_http_listener(cfg, 0))
        printf("; warning: no [listen] with protocol = http: nothing answers these names yet\n");
    printf("autoconfig.%s. %d IN CNAME %s.\n", d->name, DNS_TTL, gw);
    if (d->autodiscover) {
        printf("; Outlook asks autodiscover.%s; autodiscover = on: this gateway answers\n",
               d->name);
        printf("autodiscover.%s. %d IN CNAME %s.\n", d->name, DNS_TTL, gw);
    } else {
        printf("; autodiscover = off: Outlook and Microsoft 365 find Exchange Online through\n"
               "; autodiscover.outlook.com, which a domain on Microsoft 365 must keep (set\n"
               "; autodiscover = on in [domain %s] for this gateway to answer Outlook instead)\n",
               d->name);
        printf("autodiscover.%s. %d IN CNAME autodiscover.outlook.com.\n", d->name, DNS_TTL);
    }
}

int dns_config_policy_id(const struct domain_conf *d, char id[MTA_STS_ID_LEN + 1])
{
    char *policy = mta_sts_policy(d);
    int rc = policy ? mta_sts_policy_id(policy, id) : -1;
    free(policy);
    return rc;
}

char *dns_sts_record(const struct domain_conf *d, const char *id)
{
    return mg_printf("_mta-sts.%s. %d IN TXT \"v=STSv1; id=%s\"", d->name, DNS_TTL, id);
}

char *dns_tlsrpt_record(const struct domain_conf *d)
{
    if (d->tls_rpt.n == 0)
        return NULL;
    char *rua = mg_strdup("");
    for (size_t i = 0; i < d->tls_rpt.n; i++) {
        char *more = mg_printf("%s%s%s", rua, i ? "," : "", d->tls_rpt.v[i]);
        free(rua);
        rua = more;
    }
    char *line =
        mg_printf("_smtp._tls.%s. %d IN TXT \"v=TLSRPTv1; rua=%s\"", d->name, DNS_TTL, rua);
    free(rua);
    return line;
}

static int print_mta_sts(const struct config *cfg, const struct domain_conf *d, const char *gw)
{
    printf("\n; MTA-STS (RFC 8461)\n");
    if (d->mta_sts_mode == MG_MTA_STS_OFF) {
        printf("; no policy: set mta_sts_mode (and mta_sts_mx) in [domain %s]\n", d->name);
        return 0;
    }
    char id[MTA_STS_ID_LEN + 1];
    if (dns_config_policy_id(d, id) != 0) {
        fprintf(stderr, "mailgate: cannot compute the policy id\n");
        return -1;
    }
    if (!has_http_listener(cfg, 1))
        printf("; warning: no [listen] with protocol = http and tls = implicit: senders fetch "
               "the policy over HTTPS (port 443)\n");
    printf("; the policy: https://mta-sts.%s/.well-known/mta-sts.txt\n", d->name);
    printf("mta-sts.%s. %d IN CNAME %s.\n", d->name, DNS_TTL, gw);
    printf("; RFC 8461 8.1: the id changes with the policy. Publish a new id only once the new\n"
           "; policy is live (after `systemctl reload mailgate` or a restart): senders that see\n"
           "; the new id fetch the policy at once and cache what they get.\n");
    char *record = dns_sts_record(d, id);
    printf("%s\n", record);
    free(record);
    return 0;
}

static void print_tls_rpt(const struct domain_conf *d)
{
    printf("\n; SMTP TLS reporting (RFC 8460)\n");
    char *record = dns_tlsrpt_record(d);
    if (!record)
        printf("; no tls_rpt in [domain %s]: no reports are asked for\n", d->name);
    else
        printf("%s\n", record);
    free(record);
}

int cli_dns(const char *config_path, int argc, char **argv)
{
    if (argc != 2)
        return cli_usage_error("dns needs one DOMAIN");
    struct config *cfg = cli_load_config(config_path, CONFIG_LOAD_SECRETS);
    if (!cfg)
        return 1;
    const struct domain_conf *d = config_domain(cfg, argv[1]);
    int rc = 1;
    if (!d) {
        fprintf(stderr, "mailgate: no [domain %s] in %s\n", argv[1], config_path);
    } else if (!dns_gateway_name(d)) {
        fprintf(stderr, "mailgate: [domain %s] names no imap_host, pop3_host or smtp_host\n",
                d->name);
    } else {
        const char *gw = dns_gateway_name(d);
        printf("; mailgate dns %s: the records to publish for %s (zone-file syntax)\n", d->name,
               d->name);
        print_hosts(d, gw);
        print_srv(cfg, d);
        print_autoconfig(cfg, d, gw);
        rc = print_mta_sts(cfg, d, gw) == 0 ? 0 : 1;
        print_tls_rpt(d);
    }
    config_free(&cfg);
    return rc;
}
