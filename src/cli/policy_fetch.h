/* Fetching https://mta-sts.DOMAIN/.well-known/mta-sts.txt the way a sending MTA does (RFC 8461
 * 3.3): HTTPS with the certificate verified against the host name, no redirect followed, and
 * connected to the addresses the checked resolver gave (not this machine's own resolver or
 * /etc/hosts), so the check sees what the world sees. */
#ifndef MG_POLICY_FETCH_H
#define MG_POLICY_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define POLICY_FETCH_MAX_BODY (64 * 1024) /* a policy is a few lines: bounds a wrong server */

struct policy_fetch {
    int transfer_ok;    /* an HTTP answer was read (any status) */
    int cert_failed;    /* the transfer failed on the certificate (chain, name, dates) */
    char error[320];    /* why the transfer failed */
    long status;        /* HTTP status */
    char *content_type; /* NULL when absent */
    char *body;         /* NUL-terminated; len bytes (at most POLICY_FETCH_MAX_BODY) */
    size_t len;
    int64_t not_after; /* the server certificate's notAfter (unix time), 0 when not seen */
};

/* GET https://host:port/.well-known/mta-sts.txt, connecting only to addrs (numeric), trusting
 * ca_file when not NULL (else the system's store), within timeout_ms. Fills out (free with
 * policy_fetch_free) and returns out->transfer_ok ? 0 : -1. */
int policy_fetch(const char *host, uint16_t port, const struct mg_strlist *addrs,
                 const char *ca_file, long timeout_ms, struct policy_fetch *out);
void policy_fetch_free(struct policy_fetch *f);

#endif
