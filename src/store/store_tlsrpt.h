/* TLS reports (RFC 8460) in the store: one row per report (unique report-id), its policies and
 * their failure details; written by the broker (POST /tlsrpt) and `mailgate tlsrpt import`,
 * summed by `mailgate report tlsrpt`. */
#ifndef MG_STORE_TLSRPT_H
#define MG_STORE_TLSRPT_H

#include <stdint.h>

#include "store.h"
#include "tlsrpt.h"

/* Stores r received at `now` (unix seconds) from `source` ("http", "import") in one
 * transaction. STORE_OK: stored; STORE_EXISTS: a report with its report-id is stored already
 * (nothing changes). */
enum store_status store_tlsrpt_add(struct store *st, const struct tlsrpt_report *r, int64_t now,
                                   const char *source);

/* Per sending organisation and policy (type and domain), of the reports received since. */
struct tlsrpt_policy_sum {
    const char *organization, *policy_type, *policy_domain;
    int64_t reports, successful, failed;
};
/* The failure details of those, summed per result type and receiving MX host name. */
struct tlsrpt_failure_sum {
    const char *organization, *policy_type, *policy_domain, *result_type, *receiving_mx;
    int64_t sessions;
};

/* Ordered by organisation, policy domain and type (failures: then most sessions first). The
 * record is valid during the callback only; stops when cb returns non-zero. */
enum store_status store_tlsrpt_policies(struct store *st, int64_t since,
                                        int (*cb)(const struct tlsrpt_policy_sum *p, void *arg),
                                        void *arg);
enum store_status store_tlsrpt_failures(struct store *st, int64_t since,
                                        int (*cb)(const struct tlsrpt_failure_sum *f, void *arg),
                                        void *arg);

#endif
