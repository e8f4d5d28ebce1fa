/* The TXT records `mailgate check` judges: `_mta-sts` (RFC 8461 3.1) and `_smtp._tls` (RFC 8460
 * 3). Pure functions over untrusted DNS bytes (a record may hold any byte, NUL included), fuzzed
 * by fuzz/dns_txt.c. */
#ifndef MG_DNS_TXT_H
#define MG_DNS_TXT_H

#include <stddef.h>

#include "config.h"

#define STS_RECORD_ID_MAX 32 /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */

/* One TXT record: its character-strings joined, as senders read it. */
struct dns_txt {
    char *data; /* NUL-terminated for convenience; len counts every byte */
    size_t len;
};

/* RFC 8461 3.1 and RFC 8460 3: records that do not start with prefix ("v=STSv1;",
 * "v=TLSRPTv1;") are ignored, and exactly one must be left. Its index, or -1 when none starts
 * so, -2 when several do. */
int dns_txt_select(const struct dns_txt *recs, size_t n, const char *prefix);

/* "v=STSv1; id=...": the id into out. NULL when the record is valid, else why not. */
const char *sts_record_parse(const char *rec, size_t len, char out_id[STS_RECORD_ID_MAX + 1]);

/* "v=TLSRPTv1; rua=URI[,URI...]": the URIs into rua (empty on entry; free with
 * dns_strlist_free, also after an error). NULL when valid, else why not. */
const char *tlsrpt_record_parse(const char *rec, size_t len, struct mg_strlist *rua);

void dns_strlist_free(struct mg_strlist *l);

#endif
