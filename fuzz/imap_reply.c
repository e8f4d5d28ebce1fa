/* Upstream response lines: whatever a server sends, the parser's pointers stay inside the line. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void check_span(const char *line, size_t len, const char *p, size_t n)
{
    if (!p || p < line || p + n > line + len)
        abort();
    for (size_t i = 0; i < n; i++)
        sink += (unsigned char)p[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so that ASan catches any read past the line. */
    char *line = malloc(size ? size : 1);
    memcpy(line, data, size);
    struct imap_reply r;
    if (imap_reply_parse(line, size, &r) == 0) {
        check_span(line, size, r.text, r.text_len);
        check_span(line, size, r.code_args, r.code_args_len);
        if (r.caps) {
            check_span(line, size, r.caps, r.caps_len);
            sink += (size_t)imap_caps_has(r.caps, r.caps_len, "AUTH=XOAUTH2");
        }
        if (strlen(r.tag) >= sizeof r.tag || strlen(r.code) >= sizeof r.code)
            abort();
    }
    sink += (size_t)imap_caps_has(line, size, "SASL-IR");
    free(line);
    return 0;
}
