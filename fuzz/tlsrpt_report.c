/* libFuzzer target: a TLS report as the web listener gets it (tlsrpt.c, tlsrpt_gzip.c). The
 * first byte picks whether the rest is JSON or gzip; a report that parses must survive its
 * normalised form: within the caps, and parsed again into the same normalised bytes (the
 * broker stores what it parses from the worker's copy). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_report(const char *json, size_t len)
{
    struct tlsrpt_report r;
    char why[256];
    if (tlsrpt_parse(json, len, &r, why, sizeof why) != TLSRPT_OK) {
        if (!why[0])
            abort(); /* every refusal says why */
        tlsrpt_free(&r);
        return;
    }
    if (!r.report_id[0] || r.n_policies > TLSRPT_MAX_POLICIES)
        abort();
    char *norm = tlsrpt_to_json(&r);
    if (strlen(norm) >= TLSRPT_MAX_NORMALISED)
        abort();
    struct tlsrpt_report again;
    if (tlsrpt_parse(norm, strlen(norm), &again, NULL, 0) != TLSRPT_OK)
        abort();
    char *norm2 = tlsrpt_to_json(&again);
    if (strcmp(norm, norm2) != 0)
        abort();
    free(norm2);
    free(norm);
    tlsrpt_free(&again);
    tlsrpt_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        check_report((const char *)data + 1, size - 1);
        return 0;
    }
    char *out;
    size_t n;
    /* a small limit: the fuzzer finds bombs quickly and must see them refused */
    if (tlsrpt_gunzip(data + 1, size - 1, 1 << 16, &out, &n) == TLSRPT_INFLATE_OK) {
        if (n > 1 << 16 || out[n] != '\0')
            abort();
        check_report(out, n);
        free(out);
    }
    return 0;
}
