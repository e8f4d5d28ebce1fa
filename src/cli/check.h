/* `mailgate check DOMAIN` (cli_check.c: options, lookups, the DNS items; check_sts.c: the
 * MTA-STS and TLS-RPT items). Each item prints "PASS|WARN|FAIL  item  detail", the detail of a
 * WARN or FAIL carrying the fix (the record to publish as `mailgate dns` prints it). */
#ifndef MG_CHECK_H
#define MG_CHECK_H

#include <stdint.h>

#include "config.h"
#include "dns_lookup.h"
#include "dns_records.h"

enum check_verdict { CHECK_PASS, CHECK_WARN, CHECK_FAIL };

struct check {
    const struct config *cfg;
    const struct domain_conf *d;
    const char *gw; /* the gateway's public name (dns_gateway_name) */
    const char *ca_file;
    uint16_t https_port;
    unsigned counts[3];
    /* the answers, all asked at once */
    struct dns_answer gw_addr, host_addr[3], autoconfig, autodiscover, mta_sts_addr, sts_txt,
        tlsrpt_txt, mx;
    struct dns_srv_expect *srv;
    struct dns_answer *srv_answers;
    size_t n_srv;
};

void check_report(struct check *c, enum check_verdict v, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A FAIL for a lookup that found nothing: with the record to publish when the name or record
 * is missing, without it when the resolver failed (the record may well be there). */
void check_dns_failure(struct check *c, const char *item, const struct dns_answer *a,
                       const char *fix);
/* The items of a name that must lead to the gateway: PASS when it has addresses and each is one
 * of the gateway name's; fix is the record to publish otherwise. */
void check_same_addresses(struct check *c, const char *item, const struct dns_answer *a,
                          const char *fix);
/* "NAME. TTL IN CNAME TARGET." as `mailgate dns` prints it (free()). */
char *check_cname_record(const char *name, const char *target);
/* The strings of l joined by sep (free()). */
char *check_join(const struct mg_strlist *l, const char *sep);

/* check_sts.c: _mta-sts, the policy over HTTPS, its certificate, id and mx patterns against the
 * MX records, and _smtp._tls. */
void check_mta_sts(struct check *c);
void check_tls_rpt(struct check *c);

#endif
