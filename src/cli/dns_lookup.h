/* The DNS lookups of `mailgate check`, with c-ares: every question of a check is asked at once
 * on one channel and answered within one deadline, so a resolver that does not answer costs
 * the deadline once, not once per record. */
#ifndef MG_DNS_LOOKUP_H
#define MG_DNS_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dns_txt.h"

enum dns_kind { DNS_TXT, DNS_MX, DNS_SRV, DNS_ADDR };

struct dns_srv {
    uint16_t priority, weight, port;
    char *target; /* without the trailing dot */
};

/* One question and its answer; the caller owns it (dns_answer_free). */
struct dns_answer {
    enum dns_kind kind;
    char *name;
    int status; /* ARES_SUCCESS or c-ares' error; ARES_ETIMEOUT when the deadline passed */
    struct dns_txt *txt;
    size_t n_txt;
    struct dns_srv *srv;
    size_t n_srv;
    struct mg_strlist hosts; /* MX exchanges, without the trailing dot */
    struct mg_strlist addrs; /* A and AAAA (CNAMEs followed), numeric */
};

struct dns_batch;

/* A channel to resolver ("IP", "IP:PORT", "[IPv6]:PORT"), or the system's (/etc/resolv.conf)
 * when NULL. NULL with why in err. Names are asked as they are: no search domains, no
 * /etc/hosts (senders see the DNS, not this machine's files). */
struct dns_batch *dns_batch_new(const char *resolver, char *err, size_t err_size);
/* Asks name's records of kind; the answer lands in *out (which must stay put until run). */
void dns_batch_ask(struct dns_batch *b, enum dns_kind kind, const char *name,
                   struct dns_answer *out);
/* Waits for every answer until deadline_ms (mg_now_ms() clock); questions still open then are
 * cancelled and answered ARES_ETIMEOUT. */
void dns_batch_run(struct dns_batch *b, uint64_t deadline_ms);
void dns_batch_free(struct dns_batch **b);

void dns_answer_free(struct dns_answer *a);
/* The name does not exist, or has no record of that kind: a missing record, not a failure of
 * the resolver. */
int dns_answer_missing(const struct dns_answer *a);
/* The status in words ("no such name (NXDOMAIN)", "no answer within the time limit", ...). */
const char *dns_answer_error(const struct dns_answer *a);

#endif
