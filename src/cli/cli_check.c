/* `mailgate check DOMAIN [--resolver IP[:PORT]] [--ca-file FILE] [--https-port N]`: looks the
 * domain's records up (c-ares, dns_lookup.c), fetches its MTA-STS policy over HTTPS and says per
 * item whether senders and mail clients will find this gateway as [domain DOMAIN] describes it.
 * Exit 1 when any item fails, so it can gate a deployment script. */
#include <ares.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli.h"
#include "util.h"

#define CHECK_DNS_DEADLINE_MS 6000 /* every lookup of one check together */
#define ITEM_WIDTH 22

struct check_args {
    const char *domain, *resolver, *ca_file;
    uint16_t https_port;
};

void check_report(struct check *c, enum check_verdict v, const char *item, const char *fmt, ...)
{
    static const char *const words[] = {"PASS", "WARN", "FAIL"};
    c->counts[v]++;
    printf("%s  %-*s  ", words[v], ITEM_WIDTH, item);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

char *check_join(const struct mg_strlist *l, const char *sep)
{
    char *s = mg_strdup("");
    for (size_t i = 0; i < l->n; i++) {
        char *more = mg_printf("%s%s%s", s, i ? sep : "", l->v[i]);
        free(s);
        s = more;
    }
    return s;
}

static int has_address(const struct dns_answer *a, const char *addr)
{
    for (size_t i = 0; i < a->addrs.n; i++)
        if (strcmp(a->addrs.v[i], addr) == 0)
            return 1;
    return 0;
}

void check_dns_failure(struct check *c, const char *item, const struct dns_answer *a,
                       const char *fix)
{
    if (dns_answer_missing(a))
        check_report(c, CHECK_FAIL, item, "%s: %s; publish: %s", a->name, dns_answer_error(a), fix);
    else
        check_report(c, CHECK_FAIL, item, "%s: %s", a->name, dns_answer_error(a));
}

void check_same_addresses(struct check *c, const char *item, const struct dns_answer *a,
                          const char *fix)
{
    if (a->status != ARES_SUCCESS) {
        check_dns_failure(c, item, a, fix);
        return;
    }
    char *addrs = check_join(&a->addrs, ", ");
    const char *stray = NULL;
    for (size_t i = 0; i < a->addrs.n && !stray; i++)
        if (!has_address(&c->gw_addr, a->addrs.v[i]))
            stray = a->addrs.v[i];
    if (c->gw_addr.addrs.n == 0)
        check_report(c, CHECK_FAIL, item, "%s: %s, and %s has no address to compare with", a->name,
                     addrs, c->gw);
    else if (stray)
        check_report(c, CHECK_FAIL, item, "%s: %s is not an address of %s; publish: %s", a->name,
                     stray, c->gw, fix);
    else
        check_report(c, CHECK_PASS, item, "%s: %s (%s's)", a->name, addrs, c->gw);
    free(addrs);
}

char *check_cname_record(const char *name, const char *target)
{
    return mg_printf("%s. %d IN CNAME %s.", name, DNS_TTL, target);
}

/* The gateway's name needs addresses of its own; the other mail host names must lead there. */
static void check_hosts(struct check *c)
{
    char *addrs = check_join(&c->gw_addr.addrs, ", ");
    if (c->gw_addr.status == ARES_SUCCESS)
        check_report(c, CHECK_PASS, "gateway address", "%s: %s", c->gw, addrs);
    else
        check_report(c, CHECK_FAIL, "gateway address",
                     "%s: %s; publish its A/AAAA records (this gateway's public addresses)", c->gw,
                     dns_answer_error(&c->gw_addr));
    free(addrs);
    for (enum mg_proto p = MG_PROTO_IMAP; p <= MG_PROTO_SMTP; p++) {
        if (!c->host_addr[p].name)
            continue;
        char *item = mg_printf("%s_host", mg_proto_name(p));
        char *fix = check_cname_record(c->host_addr[p].name, c->gw);
        check_same_addresses(c, item, &c->host_addr[p], fix);
        free(fix);
        free(item);
    }
}

static int srv_matches(const struct dns_srv *s, const struct dns_srv_expect *e)
{
    return s->port == e->port && mg_ascii_casecmp(s->target, e->host) == 0;
}

static void check_srv_record(struct check *c, const struct dns_srv_expect *e,
                             const struct dns_answer *a)
{
    char *item = mg_printf("SRV %s._tcp", e->service);
    char *fix = dns_srv_record(c->d, e);
    const struct dns_srv *found = NULL;
    for (size_t i = 0; i < a->n_srv && !found; i++)
        if (srv_matches(&a->srv[i], e))
            found = &a->srv[i];
    if (found)
        check_report(c, CHECK_PASS, item, "%u %u %u %s", found->priority, found->weight,
                     found->port, found->target);
    else if (a->n_srv)
        check_report(c, CHECK_FAIL, item, "points at %s:%u, not %s:%u; publish: %s",
                     a->srv[0].target, a->srv[0].port, e->host, (unsigned)e->port, fix);
    else
        check_dns_failure(c, item, a, fix);
    free(fix);
    free(item);
}

static void check_web_names(struct check *c)
{
    char *fix = check_cname_record(c->autoconfig.name, c->gw);
    check_same_addresses(c, "autoconfig", &c->autoconfig, fix);
    free(fix);
    if (c->d->autodiscover) {
        fix = check_cname_record(c->autodiscover.name, c->gw);
        check_same_addresses(c, "autodiscover", &c->autodiscover, fix);
        free(fix);
        return;
    }
    /* autodiscover = off: Outlook must reach Microsoft, and this gateway would not answer. */
    for (size_t i = 0; i < c->autodiscover.addrs.n; i++) {
        if (has_address(&c->gw_addr, c->autodiscover.addrs.v[i])) {
            check_report(c, CHECK_WARN, "autodiscover",
                         "%s leads to this gateway, which does not answer Outlook (autodiscover "
                         "= off); publish: %s. %d IN CNAME autodiscover.outlook.com.",
                         c->autodiscover.name, c->autodiscover.name, DNS_TTL);
            return;
        }
    }
}

static void ask_all(struct check *c, struct dns_batch *b)
{
    const char *name = c->d->name;
    char *q;
    dns_batch_ask(b, DNS_ADDR, c->gw, &c->gw_addr);
    for (enum mg_proto p = MG_PROTO_IMAP; p <= MG_PROTO_SMTP; p++) {
        const struct domain_server *srv = domain_server(c->d, p);
        int seen = srv && mg_ascii_casecmp(srv->host, c->gw) == 0;
        for (enum mg_proto o = MG_PROTO_IMAP; srv && o < p; o++)
            seen |= domain_server(c->d, o) && strcmp(domain_server(c->d, o)->host, srv->host) == 0;
        if (srv && !seen)
            dns_batch_ask(b, DNS_ADDR, srv->host, &c->host_addr[p]);
    }
    c->srv = dns_expected_srv(c->cfg, c->d, &c->n_srv);
    c->srv_answers = mg_calloc(c->n_srv ? c->n_srv : 1, sizeof *c->srv_answers);
    for (size_t i = 0; i < c->n_srv; i++) {
        q = mg_printf("%s._tcp.%s", c->srv[i].service, name);
        dns_batch_ask(b, DNS_SRV, q, &c->srv_answers[i]);
        free(q);
    }
    const struct {
        const char *prefix;
        enum dns_kind kind;
        struct dns_answer *out;
    } names[] = {
        {"autoconfig.", DNS_ADDR, &c->autoconfig}, {"autodiscover.", DNS_ADDR, &c->autodiscover},
        {"mta-sts.", DNS_ADDR, &c->mta_sts_addr},  {"_mta-sts.", DNS_TXT, &c->sts_txt},
        {"_smtp._tls.", DNS_TXT, &c->tlsrpt_txt},  {"", DNS_MX, &c->mx}};
    for (size_t i = 0; i < MG_ARRAY_LEN(names); i++) {
        q = mg_printf("%s%s", names[i].prefix, name);
        dns_batch_ask(b, names[i].kind, q, names[i].out);
        free(q);
    }
}

static void free_answers(struct check *c)
{
    struct dns_answer *all[] = {
        &c->gw_addr,      &c->host_addr[0], &c->host_addr[1], &c->host_addr[2], &c->autoconfig,
        &c->autodiscover, &c->mta_sts_addr, &c->sts_txt,      &c->tlsrpt_txt,   &c->mx};
    for (size_t i = 0; i < MG_ARRAY_LEN(all); i++)
        dns_answer_free(all[i]);
    for (size_t i = 0; i < c->n_srv; i++)
        dns_answer_free(&c->srv_answers[i]);
    free(c->srv_answers);
    free(c->srv);
}

static int run_check(struct check *c, const char *resolver)
{
    char err[256];
    struct dns_batch *b = dns_batch_new(resolver, err, sizeof err);
    if (!b) {
        fprintf(stderr, "mailgate: %s\n", err);
        return resolver ? 2 : 1;
    }
    printf("mailgate check %s: records from %s, gateway name %s\n", c->d->name,
           resolver ? resolver : "the system's resolver", c->gw);
    ask_all(c, b);
    dns_batch_run(b, mg_now_ms() + CHECK_DNS_DEADLINE_MS);
    dns_batch_free(&b);
    check_hosts(c);
    for (size_t i = 0; i < c->n_srv; i++)
        check_srv_record(c, &c->srv[i], &c->srv_answers[i]);
    check_web_names(c);
    check_mta_sts(c);
    check_tls_rpt(c);
    free_answers(c);
    printf("%s: %u pass, %u warn, %u fail\n", c->d->name, c->counts[CHECK_PASS],
           c->counts[CHECK_WARN], c->counts[CHECK_FAIL]);
    return c->counts[CHECK_FAIL] ? 1 : 0;
}

static int parse_port(const char *v, uint16_t *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end || n < 1 || n > 65535)
        return cli_usage_error("--https-port: a port from 1 to 65535, not '%s'", v);
    *out = (uint16_t)n;
    return 0;
}

static int parse_args(int argc, char **argv, struct check_args *a)
{
    a->https_port = 443;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        int rc = 0;
        if ((v = cli_option_value(argc, argv, &i, "--resolver", &missing)))
            a->resolver = v;
        else if ((v = cli_option_value(argc, argv, &i, "--ca-file", &missing)))
            a->ca_file = v;
        else if ((v = cli_option_value(argc, argv, &i, "--https-port", &missing)))
            rc = parse_port(v, &a->https_port);
        else if (missing)
            rc = cli_usage_error("%s needs a value", argv[i]);
        else
            rc = cli_take_name(argv[i], &a->domain);
        if (rc)
            return rc;
    }
    return a->domain ? 0 : cli_usage_error("check needs a DOMAIN");
}

int cli_check(const char *config_path, int argc, char **argv)
{
    struct check_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    struct config *cfg = cli_load_config(config_path, CONFIG_SKIP_SECRETS);
    if (!cfg)
        return 1;
    struct check c = {.cfg = cfg,
                      .d = config_domain(cfg, a.domain),
                      .ca_file = a.ca_file,
                      .https_port = a.https_port};
    rc = 1;
    if (!c.d)
        fprintf(stderr, "mailgate: no [domain %s] in %s\n", a.domain, config_path);
    else if (!(c.gw = dns_gateway_name(c.d)))
        fprintf(stderr, "mailgate: [domain %s] names no imap_host, pop3_host or smtp_host\n",
                c.d->name);
    else
        rc = run_check(&c, a.resolver);
    config_free(&cfg);
    return rc;
}
