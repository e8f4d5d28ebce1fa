/* base64 must round-trip exactly; PLAIN, the error challenge text and the XOAUTH2 and
 * OAUTHBEARER responses must not misbehave. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_b64_round_trip(const uint8_t *data, size_t size)
{
    static unsigned char dec[8192];
    static char enc[8192 / 3 * 4 + 8];
    long n = b64_decode((const char *)data, size, dec, sizeof dec);
    if (n >= 0) {
        long m = b64_encode(dec, (size_t)n, enc, sizeof enc);
        if (m < 0 || (size_t)m != size || memcmp(enc, data, size) != 0)
            abort(); /* strict decoding accepts only canonical encodings */
    }
    if (size <= 4096) {
        long m = b64_encode(data, size, enc, sizeof enc);
        if (m < 0 || b64_decode(enc, (size_t)m, dec, sizeof dec) != (long)size ||
            memcmp(dec, data, size) != 0)
            abort();
    }
}

static void check_plain(const uint8_t *data, size_t size)
{
    struct sasl_plain p;
    if (sasl_plain_decode(data, size, &p) == 0) {
        if (p.authcid[0] == '\0' || p.passwd_len == 0 || strlen(p.passwd) != p.passwd_len)
            abort();
    }
    sasl_plain_wipe(&p);
    if (sasl_plain_decode_b64((const char *)data, size, &p) == 0 && p.passwd_len == 0)
        abort();
    sasl_plain_wipe(&p);
}

static void check_xoauth2(const uint8_t *data, size_t size)
{
    char out[512];
    sasl_describe_error((const char *)data, size, out, sizeof out);
    for (const char *c = out; *c; c++) {
        if (*c < 0x20 || *c > 0x7e)
            abort(); /* goes to the log: printable only */
    }
    if (size > 0 && size < 200) {
        char user[100] = {0}, enc[1024];
        size_t half = size / 2 < sizeof user - 1 ? size / 2 : sizeof user - 1;
        memcpy(user, data, half);
        long n = sasl_xoauth2_encode(user, (const char *)data + half, size - half, enc, sizeof enc);
        if (n >= 0 && (size_t)n != strlen(enc))
            abort();
    }
}

/* The size bound is never too small, and the authzid never holds a bare ',' (RFC 5801). */
static void check_oauthbearer(const uint8_t *data, size_t size)
{
    if (size == 0 || size >= 200)
        return;
    char mailbox[100] = {0}, enc[2048];
    unsigned char raw[1536];
    size_t half = size / 2 < sizeof mailbox - 1 ? size / 2 : sizeof mailbox - 1;
    memcpy(mailbox, data, half);
    const char *token = (const char *)data + half;
    size_t need = sasl_oauthbearer_size(mailbox, "imap.example", size - half);
    if (need > sizeof enc)
        abort();
    long n = sasl_oauthbearer_encode(mailbox, "imap.example", 993, token, size - half, enc, need);
    if (n < 0) {
        if (sasl_oauthbearer_encode(mailbox, "imap.example", 993, token, size - half, enc,
                                    sizeof enc) >= 0)
            abort(); /* refused only for lack of room: the bound is wrong */
        return;
    }
    long len = b64_decode(enc, (size_t)n, raw, sizeof raw);
    const unsigned char *end = len > 4 ? memchr(raw + 4, ',', (size_t)len - 4) : NULL;
    if (len < 4 || memcmp(raw, "n,a=", 4) != 0 || !end || end[1] != 0x01)
        abort();
}

static void check_login(const uint8_t *data, size_t size)
{
    char out[64];
    long n = sasl_login_decode_b64((const char *)data, size, out, sizeof out);
    if (n >= 0 && (n == 0 || (size_t)n >= sizeof out || strlen(out) != (size_t)n))
        abort(); /* non-empty, fits, NUL-terminated, no NUL inside */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_b64_round_trip(data, size);
    check_plain(data, size);
    check_xoauth2(data, size);
    check_oauthbearer(data, size);
    check_login(data, size);
    return 0;
}
