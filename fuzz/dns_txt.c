/* libFuzzer target: what `mailgate check` reads from the DNS and from a web server
 * (dns_txt.c, sts_policy.c). The first byte picks the parser: the _mta-sts record, the
 * _smtp._tls record or the MTA-STS policy file; a valid result is checked against the
 * grammar's invariants. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_txt.h"
#include "sts_policy.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_sts(const char *in, size_t len)
{
    char id[STS_RECORD_ID_MAX + 1];
    if (sts_record_parse(in, len, id) == NULL) {
        size_t n = strlen(id);
        if (n == 0 || n > STS_RECORD_ID_MAX ||
            strspn(id, "abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789") != n)
            abort();
    } else if (id[0]) {
        abort(); /* a refused record leaves no id behind */
    }
    struct dns_txt rec = {(char *)in, len};
    if (dns_txt_select(&rec, 1, "v=STSv1;") < -1)
        abort();
}

static void fuzz_tlsrpt(const char *in, size_t len)
{
    struct mg_strlist rua = {0};
    if (tlsrpt_record_parse(in, len, &rua) == NULL && rua.n == 0)
        abort();
    for (size_t i = 0; i < rua.n; i++)
        if (strpbrk(rua.v[i], " \t;,!") || tls_rpt_uri_problem(rua.v[i]))
            abort();
    dns_strlist_free(&rua);
}

static void fuzz_policy(const char *in, size_t len)
{
    struct sts_policy p;
    char why[160];
    if (sts_policy_parse(in, len, &p, why, sizeof why) == 0) {
        if (p.max_age > MTA_STS_MAX_AGE_MAX || (p.mode != MG_MTA_STS_NONE && p.mx.n == 0))
            abort();
        for (size_t i = 0; i < p.mx.n; i++) {
            if (mta_sts_mx_problem(p.mx.v[i]))
                abort();
            /* a pattern matches the host it names, a wildcard one more label */
            int wild = strncmp(p.mx.v[i], "*.", 2) == 0;
            char *host = wild ? malloc(strlen(p.mx.v[i]) + 2) : p.mx.v[i];
            if (wild)
                strcat(strcpy(host, "a"), p.mx.v[i] + 1);
            if (!sts_mx_matches(p.mx.v[i], host) || (wild && sts_mx_matches(p.mx.v[i], host + 2)))
                abort();
            if (wild)
                free(host);
        }
    }
    sts_policy_free(&p);
    if (len > 0) {
        char *host = strndup(in, len);
        (void)sts_mx_matches("*.mail.protection.outlook.com", host);
        (void)sts_mx_matches(host, "contoso-com.mail.protection.outlook.com");
        free(host);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const parsers[])(const char *, size_t) = {fuzz_sts, fuzz_tlsrpt, fuzz_policy};
    if (size == 0)
        return 0;
    /* An exact-size copy, so ASan sees any read past the end (TXT data is not NUL-ended). */
    char *input = malloc(size - 1 ? size - 1 : 1);
    memcpy(input, data + 1, size - 1);
    parsers[data[0] % MG_ARRAY_LEN(parsers)](input, size - 1);
    free(input);
    return 0;
}
