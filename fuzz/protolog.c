/* libFuzzer target: the protocol log's scanner (src/worker/protolog_scan.c), which reads what
 * clients and servers send. The first byte picks the protocol and the phase; a login line with
 * a canary password is fed first, split where the next bytes say; then each chunk is one header
 * byte (direction in the low 2 bits, length in the upper 6) and its bytes. Checked: every line
 * handed on is within PLOG_TEXT_MAX and holds no control byte or DEL, and the canary never
 * shows (unless the fuzzer's own bytes spell it). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protolog_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANARY "Canary-Secret"

static int canary_in_input;

static void check_line(void *arg, enum plog_dir dir, const char *text, size_t len)
{
    (void)arg;
    if ((unsigned)dir >= PLOG_DIRS || len > PLOG_TEXT_MAX)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            abort();
    if (!canary_in_input && memmem(text, len, CANARY, strlen(CANARY)))
        abort();
}

static const char *const logins[] = {
    [MG_PROTO_IMAP] = "a LOGIN alice " CANARY "\r\n",
    [MG_PROTO_POP3] = "PASS " CANARY "\r\n",
    [MG_PROTO_SMTP] = "AUTH PLAIN " CANARY "\r\n",
};

/* Whether the fuzzer's own bytes spell the canary in one direction's stream: chunk headers
 * interleave with the bytes, so a chunk may end in "Ca" and the next of that direction start
 * with "nary-Secret". */
static int spelled_by_input(const uint8_t *data, size_t size)
{
    static uint8_t stream[PLOG_DIRS][1 << 16];
    size_t used[PLOG_DIRS] = {0};
    for (size_t i = 2; i < size;) {
        unsigned dir = data[i] & 3;
        size_t len = data[i] >> 2;
        i++;
        if (len > size - i)
            len = size - i;
        if (dir < PLOG_DIRS && used[dir] + len <= sizeof stream[dir]) {
            memcpy(stream[dir] + used[dir], data + i, len);
            used[dir] += len;
        }
        i += len;
    }
    for (unsigned d = 0; d < PLOG_DIRS; d++)
        if (memmem(stream[d], used[d], "Canary", 6) ||
            memmem(stream[d], used[d], "nary-Secret", 11))
            return 1;
    return memmem(data, size, "Canary", 6) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    canary_in_input = spelled_by_input(data, size);
    enum mg_proto proto = (enum mg_proto)(data[0] % 3);
    struct plog_scan sc;
    plog_scan_init(&sc, proto, check_line, NULL);
    if (data[0] & 0x80)
        plog_scan_relay(&sc);
    const char *login = logins[proto];
    size_t split = data[1] % strlen(login);
    plog_scan_feed(&sc, PLOG_CLIENT_IN, login, split);
    plog_scan_feed(&sc, PLOG_CLIENT_IN, login + split, strlen(login) - split);
    size_t i = 2;
    while (i < size) {
        enum plog_dir dir = (enum plog_dir)(data[i] & 3);
        size_t len = data[i] >> 2;
        i++;
        if (len > size - i)
            len = size - i;
        plog_scan_feed(&sc, dir, data + i, len);
        i += len;
    }
    return 0;
}
