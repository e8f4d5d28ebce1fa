/* The SMTP grammar on hostile input: client command lines, AUTH/BDAT arguments, server replies
 * line by line (as the upstream dialog feeds them) and EHLO extension filtering. Invariants:
 * pointers stay inside the input, the formatted EHLO lines are well-formed and never carry AUTH
 * or STARTTLS. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_command(const char *line, size_t len)
{
    struct smtp_command cmd;
    if (smtp_command_parse(line, len, &cmd) != 0)
        return;
    if (cmd.arg_len > 0 && (cmd.arg < line || cmd.arg + cmd.arg_len > line + len))
        abort();
    const char *mech, *ir;
    size_t mech_len, ir_len;
    if (smtp_auth_split(cmd.arg, cmd.arg_len, &mech, &mech_len, &ir, &ir_len) == 0) {
        if (mech_len == 0 || mech + mech_len > cmd.arg + cmd.arg_len)
            abort();
        if (ir_len > 0 && ir + ir_len > cmd.arg + cmd.arg_len)
            abort();
    }
    uint64_t n;
    int last;
    (void)smtp_bdat_parse(cmd.arg, cmd.arg_len, &n, &last);
}

static void check_format(const struct smtp_ehlo_caps *caps)
{
    char out[512];
    long n = smtp_ehlo_format(caps, out, sizeof out);
    if (n < 0 || (size_t)n != strlen(out))
        abort();
    if (strstr(out, "AUTH") || strstr(out, "STARTTLS"))
        abort();
    for (const char *p = out; *p; p = strstr(p, "\r\n") + 2) {
        if (strncmp(p, "250-", 4) != 0 || !strstr(p, "\r\n"))
            abort();
    }
}

static void check_reply(struct smtp_reply *r, const char *line, size_t len)
{
    if (r->complete)
        smtp_reply_init(r);
    enum smtp_reply_status st = smtp_reply_feed(r, line, len);
    if (r->text_len > SMTP_REPLY_TEXT_MAX || strlen(r->text) > r->text_len)
        abort();
    if (st == SMTP_REPLY_ERROR) {
        smtp_reply_init(r);
        return;
    }
    if (r->code < 200 || r->code > 599)
        abort();
    if (st == SMTP_REPLY_DONE) {
        struct smtp_ehlo_caps a, b;
        if (smtp_ehlo_parse(r->text, r->text_len, &a) == 0) {
            check_format(&a);
            b = a;
            smtp_ehlo_intersect(&b, &a);
            if (b.ext != a.ext || b.size != a.size)
                abort(); /* idempotent */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct smtp_reply r;
    smtp_reply_init(&r);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t l = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
        /* a private NUL-terminated copy, as the session's line reader gives */
        char *line = malloc(l + 1);
        memcpy(line, p, l);
        line[l] = '\0';
        check_command(line, l);
        check_reply(&r, line, l);
        (void)smtp_enhanced_code(line, l);
        free(line);
        p += len + (nl != NULL);
    }
    struct smtp_ehlo_caps c;
    if (smtp_ehlo_parse((const char *)data, size, &c) == 0)
        check_format(&c);
    return 0;
}
