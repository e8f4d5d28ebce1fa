/* An MTA-STS policy file as a sender reads it (RFC 8461 3.2) and the match of an MX host
 * against its patterns (RFC 8461 4.1). Pure functions over untrusted bytes (the body a web
 * server returned), fuzzed by fuzz/dns_txt.c. */
#ifndef MG_STS_POLICY_H
#define MG_STS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct sts_policy {
    enum mg_mta_sts_mode mode;
    struct mg_strlist mx; /* patterns, lower case */
    uint32_t max_age;
};

/* Parses text (len bytes, any content) strictly: "version: STSv1", "mode", "max_age" exactly
 * once, "mx" at least once unless mode is none, lines ending in LF or CRLF, extension fields of
 * RFC 8461's syntax. 0, or -1 with why (naming the line) in why. Free out with
 * sts_policy_free, also after an error. */
int sts_policy_parse(const char *text, size_t len, struct sts_policy *out, char *why,
                     size_t why_size);
void sts_policy_free(struct sts_policy *p);

/* Whether an MX host name matches a pattern: equal without regard to case or a trailing dot,
 * and "*.example.com" covers exactly one more label ("mx1.example.com", not "example.com" nor
 * "a.mx1.example.com"). */
int sts_mx_matches(const char *pattern, const char *host);

#endif
