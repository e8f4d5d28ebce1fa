/* Gzip decompression for TLS reports (application/tlsrpt+gzip, .json.gz files) with zlib's
 * streaming inflate: the output grows in steps and decompression stops as soon as it would pass
 * the limit, so a bomb of a few KiB costs at most the limit, never its full size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "tlsrpt.h"
#include "util.h"

#define STEP (64 * 1024)
#define GZIP_WINDOW (16 + MAX_WBITS) /* gzip header and trailer, not zlib's or raw deflate */

/* Inflates until the input ends; another gzip member after the first one continues (zlib's
 * counters restart per member, so the output written is cap - avail_out, not total_out). */
static enum tlsrpt_inflate_status run(z_stream *z, size_t max, char **buf, size_t *cap)
{
    for (;;) {
        if (*cap - z->avail_out > max)
            return TLSRPT_INFLATE_TOO_LARGE;
        if (z->avail_out == 0) {
            size_t grow = *cap + STEP > max + 1 ? max + 1 - *cap : STEP;
            *buf = mg_realloc(*buf, *cap + grow + 1);
            z->next_out = (Bytef *)*buf + *cap;
            z->avail_out = (uInt)grow;
            *cap += grow;
        }
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            if (z->avail_in == 0)
                return *cap - z->avail_out > max ? TLSRPT_INFLATE_TOO_LARGE : TLSRPT_INFLATE_OK;
            if (inflateReset(z) != Z_OK)
                return TLSRPT_INFLATE_CORRUPT;
            continue;
        }
        if (rc == Z_BUF_ERROR && z->avail_in == 0)
            return TLSRPT_INFLATE_CORRUPT; /* truncated: the input ended inside a member */
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return TLSRPT_INFLATE_CORRUPT;
    }
}

enum tlsrpt_inflate_status tlsrpt_gunzip(const void *data, size_t len, size_t max, char **out,
                                         size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (len == 0 || len > UINT32_MAX || inflateInit2(&z, GZIP_WINDOW) != Z_OK)
        return TLSRPT_INFLATE_CORRUPT;
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    char *buf = NULL;
    size_t cap = 0;
    enum tlsrpt_inflate_status rc = run(&z, max, &buf, &cap);
    size_t n = cap - z.avail_out;
    inflateEnd(&z);
    if (rc != TLSRPT_INFLATE_OK) {
        free(buf);
        return rc;
    }
    if (!buf)
        buf = mg_malloc(1);
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return TLSRPT_INFLATE_OK;
}

int tlsrpt_is_gzip(const void *data, size_t len)
{
    const unsigned char *b = data;
    return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

enum tlsrpt_status tlsrpt_parse_body(const void *data, size_t len, int gzipped,
                                     struct tlsrpt_report *out, char *why, size_t why_size)
{
    if (!gzipped)
        return tlsrpt_parse(data, len, out, why, why_size);
    memset(out, 0, sizeof *out);
    char *json;
    size_t json_len;
    switch (tlsrpt_gunzip(data, len, TLSRPT_MAX_JSON, &json, &json_len)) {
    case TLSRPT_INFLATE_OK:
        break;
    case TLSRPT_INFLATE_TOO_LARGE:
        snprintf(why, why_size, "the report is larger than %d bytes after decompression",
                 TLSRPT_MAX_JSON);
        return TLSRPT_TOO_LARGE;
    case TLSRPT_INFLATE_CORRUPT:
    default:
        snprintf(why, why_size, "not valid gzip data");
        return TLSRPT_BAD_JSON;
    }
    enum tlsrpt_status rc = tlsrpt_parse(json, json_len, out, why, why_size);
    free(json);
    return rc;
}
