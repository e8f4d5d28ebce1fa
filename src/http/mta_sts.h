/* The MTA-STS policy of a domain (RFC 8461 3.2) and the id of its _mta-sts TXT record: the
 * worker serves the one, `mailgate dns` prints the other, both from the same [domain]. */
#ifndef MG_MTA_STS_H
#define MG_MTA_STS_H

#include "config.h"

/* Hex digits of the id: within RFC 8461's 1-32 letters and digits, 80 bits of the hash. */
#define MTA_STS_ID_LEN 20

/* The policy file's text: "version: STSv1" first, then mode, one "mx:" per pattern and max_age,
 * each line ending in CRLF. NULL when the domain has no mta_sts_mode. Free with free(). */
char *mta_sts_policy(const struct domain_conf *d);

/* The id of a policy text: the first bytes of its SHA-256 in hex, so it changes exactly when
 * the served policy changes (and stays when only the file's layout does). 0 or -1. */
int mta_sts_policy_id(const char *policy, char out[MTA_STS_ID_LEN + 1]);

#endif
