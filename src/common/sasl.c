/* SASL helpers: strict base64 (RFC 4648), PLAIN from clients (RFC 4616), XOAUTH2 and
 * OAUTHBEARER (RFC 7628) towards the upstream. Everything that held a password or a token is
 * wiped before returning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sasl.h"
#include "util.h"

static const char B64_ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Longest PLAIN message that can fit struct sasl_plain: three fields and two NULs. */
#define PLAIN_MAX (2 * (IPC_USER_MAX - 1) + (IPC_PASSWORD_MAX - 1) + 2)
/* Error challenges are small JSON objects; anything longer is cut. */
#define CHALLENGE_MAX 2048

/* ---- base64 ---- */

long b64_encode(const void *in, size_t len, char *out, size_t outlen)
{
    const unsigned char *s = in;
    size_t groups = len / 3 + (len % 3 != 0);
    if (groups > ((size_t)-1 - 1) / 4 || outlen < groups * 4 + 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t left = len - i;
        uint32_t v = (uint32_t)s[i] << 16;
        if (left > 1)
            v |= (uint32_t)s[i + 1] << 8;
        if (left > 2)
            v |= s[i + 2];
        out[o++] = B64_ALPHABET[(v >> 18) & 63];
        out[o++] = B64_ALPHABET[(v >> 12) & 63];
        out[o++] = left > 1 ? B64_ALPHABET[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? B64_ALPHABET[v & 63] : '=';
    }
    out[o] = '\0';
    return (long)o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes one group of four; pads is how many trailing "=" it may end with (0 for all but the
 * last). Returns the number of bytes produced or -1. Non-zero bits under the padding are
 * refused, so that every accepted input is the canonical encoding of its bytes. */
static int b64_decode_group(const char *in, int last, unsigned char out[3])
{
    int pads = 0;
    if (last && in[3] == '=')
        pads = in[2] == '=' ? 2 : 1;
    uint32_t v = 0;
    for (int i = 0; i < 4 - pads; i++) {
        int d = b64_value(in[i]);
        if (d < 0)
            return -1;
        v = v << 6 | (uint32_t)d;
    }
    v <<= 6 * pads;
    if ((pads == 1 && (v & 0xff)) || (pads == 2 && (v & 0xffff)))
        return -1;
    out[0] = (unsigned char)(v >> 16);
    out[1] = (unsigned char)(v >> 8);
    out[2] = (unsigned char)v;
    return 3 - pads;
}

long b64_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned char group[3];
        int n = b64_decode_group(in + i, i + 4 == len, group);
        if (n < 0 || (size_t)n > outlen - o) {
            mg_wipe(out, o); /* may have been half a password */
            mg_wipe(group, sizeof group);
            return -1;
        }
        memcpy(out + o, group, (size_t)n);
        o += (size_t)n;
        mg_wipe(group, sizeof group);
    }
    return (long)o;
}

/* ---- PLAIN ---- */

/* Copies one field into a NUL-terminated buffer of size cap; -1 when it does not fit. */
static int copy_field(char *dst, size_t cap, const unsigned char *src, size_t len)
{
    if (len >= cap)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int sasl_plain_decode(const unsigned char *msg, size_t len, struct sasl_plain *out)
{
    memset(out, 0, sizeof *out);
    const unsigned char *nul1 = memchr(msg, '\0', len);
    if (!nul1)
        return -1;
    const unsigned char *authcid = nul1 + 1;
    size_t rest = len - (size_t)(authcid - msg);
    const unsigned char *nul2 = memchr(authcid, '\0', rest);
    if (!nul2)
        return -1;
    const unsigned char *passwd = nul2 + 1;
    size_t authzid_len = (size_t)(nul1 - msg);
    size_t authcid_len = (size_t)(nul2 - authcid);
    size_t passwd_len = len - (size_t)(passwd - msg);
    if (authcid_len == 0 || passwd_len == 0 || memchr(passwd, '\0', passwd_len) ||
        copy_field(out->authzid, sizeof out->authzid, msg, authzid_len) != 0 ||
        copy_field(out->authcid, sizeof out->authcid, authcid, authcid_len) != 0 ||
        copy_field(out->passwd, sizeof out->passwd, passwd, passwd_len) != 0) {
        sasl_plain_wipe(out);
        return -1;
    }
    out->passwd_len = passwd_len;
    return 0;
}

int sasl_plain_decode_b64(const char *b64, size_t len, struct sasl_plain *out)
{
    unsigned char msg[PLAIN_MAX];
    memset(out, 0, sizeof *out);
    if (len == 1 && b64[0] == '=')
        return -1; /* an empty response: PLAIN needs its three fields */
    long n = b64_decode(b64, len, msg, sizeof msg);
    int r = n < 0 ? -1 : sasl_plain_decode(msg, (size_t)n, out);
    mg_wipe(msg, sizeof msg);
    return r;
}

void sasl_plain_wipe(struct sasl_plain *p)
{
    mg_wipe(p, sizeof *p);
}

/* ---- XOAUTH2 and OAUTHBEARER ---- */

/* Non-empty, and nothing that would end a field or the line. */
static int bearer_safe(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\x01' || s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 0;
    }
    return 1;
}

struct piece {
    const char *s;
    size_t len;
};

#define LITERAL(text)                                                                              \
    {                                                                                              \
        text, sizeof text - 1                                                                      \
    }

static size_t b64_size(size_t raw_len)
{
    return 4 * ((raw_len + 2) / 3) + 1;
}

/* base64 of the pieces one after the other; the joined text (it holds the token) is wiped. */
static long encode_pieces(const struct piece *pieces, size_t n, char *out, size_t outlen)
{
    size_t raw_len = 0;
    for (size_t i = 0; i < n; i++)
        raw_len += pieces[i].len;
    char *raw = mg_malloc(raw_len), *w = raw;
    for (size_t i = 0; i < n; i++) {
        memcpy(w, pieces[i].s, pieces[i].len);
        w += pieces[i].len;
    }
    long r = b64_encode(raw, raw_len, out, outlen);
    mg_wipe(raw, raw_len);
    free(raw);
    return r;
}

long sasl_xoauth2_encode(const char *user, const char *token, size_t token_len, char *out,
                         size_t outlen)
{
    size_t user_len = strlen(user);
    if (!bearer_safe(user, user_len) || !bearer_safe(token, token_len))
        return -1;
    const struct piece pieces[] = {
        LITERAL("user="),
        {user, user_len},
        LITERAL("\x01"
                "auth=Bearer "),
        {token, token_len},
        LITERAL("\x01\x01"),
    };
    return encode_pieces(pieces, MG_ARRAY_LEN(pieces), out, outlen);
}

size_t sasl_xoauth2_size(const char *user, size_t token_len)
{
    return b64_size(strlen("user=\x01"
                           "auth=Bearer \x01\x01") +
                    strlen(user) + token_len);
}

/* The gs2 authzid "a=" value: ',' and '=' escaped (RFC 5801 section 4). */
static char *gs2_escape(const char *s)
{
    char *out = mg_malloc(3 * strlen(s) + 1), *w = out;
    for (; *s; s++) {
        if (*s == ',' || *s == '=') {
            memcpy(w, *s == ',' ? "=2C" : "=3D", 3);
            w += 3;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return out;
}

long sasl_oauthbearer_encode(const char *mailbox, const char *host, unsigned port,
                             const char *token, size_t token_len, char *out, size_t outlen)
{
    if (!bearer_safe(mailbox, strlen(mailbox)) || !bearer_safe(host, strlen(host)) ||
        !bearer_safe(token, token_len) || port == 0 || port > 65535)
        return -1;
    char *authzid = gs2_escape(mailbox), port_text[8];
    snprintf(port_text, sizeof port_text, "%u", port);
    const struct piece pieces[] = {
        LITERAL("n,a="),
        {authzid, strlen(authzid)},
        LITERAL(",\x01host="),
        {host, strlen(host)},
        LITERAL("\x01port="),
        {port_text, strlen(port_text)},
        LITERAL("\x01"
                "auth=Bearer "),
        {token, token_len},
        LITERAL("\x01\x01"),
    };
    long r = encode_pieces(pieces, MG_ARRAY_LEN(pieces), out, outlen);
    free(authzid);
    return r;
}

size_t sasl_oauthbearer_size(const char *mailbox, const char *host, size_t token_len)
{
    return b64_size(strlen("n,a=,\x01host=\x01port=65535\x01"
                           "auth=Bearer \x01\x01") +
                    3 * strlen(mailbox) + strlen(host) + token_len);
}

/* Copies text for a log line: printable ASCII kept, everything else becomes '?'. */
static void copy_printable(char *out, size_t outlen, const char *s, size_t len)
{
    size_t n = len < outlen - 1 ? len : outlen - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
    }
    out[n] = '\0';
}

void sasl_describe_error(const char *b64, size_t len, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    if (len == 0) {
        copy_printable(out, outlen, "(empty challenge)", 17);
        return;
    }
    unsigned char buf[CHALLENGE_MAX];
    if (len > CHALLENGE_MAX / 3 * 4)
        len = CHALLENGE_MAX / 3 * 4; /* a cut prefix still decodes; shown as plain text */
    long n = b64_decode(b64, len, buf, sizeof buf);
    if (n < 0) {
        copy_printable(out, outlen, "(undecodable challenge)", 23);
        return;
    }
    /* Servers send JSON; re-dumping it compactly gives one tidy line, with any non-ASCII
     * escaped. Anything else is shown as printable text. */
    json_t *json = json_loadb((const char *)buf, (size_t)n, 0, NULL);
    /* Into our own buffer: the broker and the CLI install their own jansson allocator
     * (token.c), so what json_dumps returns could not simply be free()d. */
    size_t flags = JSON_COMPACT | JSON_ENSURE_ASCII;
    size_t dump_len = json ? json_dumpb(json, NULL, 0, flags) : 0;
    char *dump = dump_len ? mg_malloc(dump_len) : NULL;
    if (dump && json_dumpb(json, dump, dump_len, flags) == dump_len)
        copy_printable(out, outlen, dump, dump_len);
    else
        copy_printable(out, outlen, (const char *)buf, (size_t)n);
    free(dump);
    json_decref(json);
}

/* ---- LOGIN ---- */

long sasl_login_decode_b64(const char *b64, size_t len, char *out, size_t outlen)
{
    if (outlen == 0)
        return -1;
    long n = b64_decode(b64, len, (unsigned char *)out, outlen - 1);
    if (n <= 0 || memchr(out, '\0', (size_t)n)) {
        mg_wipe(out, outlen);
        return -1;
    }
    out[n] = '\0';
    return n;
}
