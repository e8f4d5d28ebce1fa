/* Feeds the input to the client command parser in chunks whose sizes come from the input
 * itself, acting on every result like the gateway does. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

/* Reads every byte of the command so that ASan checks the bounds of what it points to. */
static void touch_command(const struct imap_command *cmd)
{
    if (cmd->argc > IMAP_MAX_ARGS)
        abort();
    size_t sum = strlen(cmd->tag) + strlen(cmd->name);
    for (size_t i = 0; i < cmd->argc; i++) {
        const struct imap_arg *a = &cmd->args[i];
        for (size_t j = 0; j <= a->len; j++)
            sum += (unsigned char)a->str[j];
        if (a->str[a->len] != '\0')
            abort();
    }
    sink += sum;
}

/* Returns 1 when the parser gave up. */
static int act(struct imap_parser *p, enum imap_parse_result r)
{
    switch (r) {
    case IMAP_PARSE_NEED_MORE:
    case IMAP_PARSE_LITERAL_CONTINUE:
        return 0;
    case IMAP_PARSE_COMMAND:
        touch_command(imap_parser_command(p));
        break;
    case IMAP_PARSE_ERROR:
        sink += strlen(imap_parser_error(p)) + strlen(imap_parser_error_tag(p));
        if (imap_parser_error_fatal(p))
            return 1;
        break;
    }
    imap_parser_reset(p);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the chunk sizes: 1..16, or everything at once when 0. */
    unsigned chunk = data[0] & 0x0f, step = (data[0] >> 4) + 1;
    data++;
    size--;
    struct imap_parser *p = imap_parser_new();
    size_t off = 0;
    while (off < size) {
        size_t n = chunk ? chunk : size - off;
        if (n > size - off)
            n = size - off;
        chunk = chunk ? (chunk + step) % 17 + 1 : 0;
        const uint8_t *c = data + off;
        size_t left = n;
        int dead = 0;
        while (left > 0 && !dead) {
            size_t used = 0;
            enum imap_parse_result r = imap_parser_feed(p, c, left, &used);
            if (used > left || (r == IMAP_PARSE_NEED_MORE && used != left))
                abort();
            if (used == 0 && r != IMAP_PARSE_ERROR && r != IMAP_PARSE_LITERAL_CONTINUE)
                abort(); /* no progress: the caller would spin */
            dead = act(p, r);
            c += used;
            left -= used;
        }
        if (dead)
            break;
        off += n;
    }
    char quoted[64];
    char s[32] = {0};
    memcpy(s, data, size < sizeof s - 1 ? size : sizeof s - 1);
    if (imap_quote(s, quoted, sizeof quoted) > (int)sizeof quoted)
        abort();
    imap_parser_free(&p);
    return 0;
}
