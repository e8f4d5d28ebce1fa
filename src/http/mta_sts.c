/* The MTA-STS policy text and its id (mta_sts.h). */
#include "mta_sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

char *mta_sts_policy(const struct domain_conf *d)
{
    if (d->mta_sts_mode == MG_MTA_STS_OFF)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    /* RFC 8461 3.2: "version" must come first; the other fields in any order. */
    fprintf(f, "version: STSv1\r\nmode: %s\r\n", mg_mta_sts_mode_name(d->mta_sts_mode));
    for (size_t i = 0; i < d->mta_sts_mx.n; i++)
        fprintf(f, "mx: %s\r\n", d->mta_sts_mx.v[i]);
    fprintf(f, "max_age: %u\r\n", (unsigned)d->mta_sts_max_age);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

int mta_sts_policy_id(const char *policy, char out[MTA_STS_ID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!policy || !EVP_Digest(policy, strlen(policy), md, &md_len, EVP_sha256(), NULL) ||
        md_len * 2 < MTA_STS_ID_LEN)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < MTA_STS_ID_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[MTA_STS_ID_LEN] = '\0';
    return 0;
}
