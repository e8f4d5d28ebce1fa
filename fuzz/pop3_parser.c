/* libFuzzer target: POP3 client command lines and upstream reply lines (pop3_parser.c). The
 * first byte picks the parser; results are checked against the documented invariants. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_command(const char *line, size_t len)
{
    struct pop3_command c;
    enum pop3_parse_status st = pop3_command_parse(line, len, &c);
    if (st != POP3_PARSE_OK)
        return;
    size_t k = strlen(c.keyword);
    if (k < 3 || k > POP3_MAX_KEYWORD || c.argc > POP3_MAX_ARGS)
        abort();
    for (size_t i = 0; i < c.argc; i++) {
        const char *p = c.args[i].str;
        if (p < line || p + c.args[i].len > line + len)
            abort();
        int long_ok = strcmp(c.keyword, "PASS") == 0 || (strcmp(c.keyword, "AUTH") == 0 && i == 1);
        if (!long_ok && c.args[i].len > POP3_MAX_ARG)
            abort();
        if (memchr(p, '\r', c.args[i].len) || memchr(p, '\n', c.args[i].len) ||
            memchr(p, '\0', c.args[i].len))
            abort();
    }
}

static void check_reply(const char *line, size_t len)
{
    struct pop3_reply r;
    if (pop3_reply_parse(line, len, &r) != 0)
        return;
    if (r.text < line || r.text + r.text_len > line + len)
        abort();
    if (strlen(r.code) >= POP3_MAX_CODE)
        abort();
    (void)pop3_reply_code_is(&r, "SYS/TEMP");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* A copy of exactly the line, so ASan sees any read past its end. */
    size_t len = size - 1;
    char *line = malloc(len ? len : 1);
    memcpy(line, data + 1, len);
    if (data[0] & 1)
        check_reply(line, len);
    else
        check_command(line, len);
    free(line);
    return 0;
}
