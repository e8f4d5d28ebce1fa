/* The records `mailgate dns` tells the admin to publish, as `mailgate check` compares them with
 * what the DNS says (cli_dns.c): one definition, so the check's fix is exactly what `dns`
 * prints. */
#ifndef MG_DNS_RECORDS_H
#define MG_DNS_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "mta_sts.h"

#define DNS_TTL 3600

/* The gateway's public name for this domain: the first of imap_host, smtp_host, pop3_host
 * (NULL when it names none). */
const char *dns_gateway_name(const struct domain_conf *d);

/* One SRV record of RFC 6186/8314: "SERVICE._tcp.DOMAIN. TTL IN SRV PRIORITY 1 PORT HOST." */
struct dns_srv_expect {
    const char *service; /* "_imaps", "_submission", ... */
    unsigned priority;   /* 0 for the service's server, 10 for the other TLS mode's listener */
    uint16_t port;
    const char *host;
};
/* The SRV records of d, implicit TLS first; an array of *n (free()). */
struct dns_srv_expect *dns_expected_srv(const struct config *cfg, const struct domain_conf *d,
                                        size_t *n);

/* The lines to publish, without a newline (free()). */
char *dns_srv_record(const struct domain_conf *d, const struct dns_srv_expect *e);
char *dns_sts_record(const struct domain_conf *d, const char *id);
char *dns_tlsrpt_record(const struct domain_conf *d); /* NULL without tls_rpt */

/* The _mta-sts id of the policy d makes the gateway serve; -1 when d has no policy. */
int dns_config_policy_id(const struct domain_conf *d, char id[MTA_STS_ID_LEN + 1]);

#endif
