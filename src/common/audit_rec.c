/* Login audit records: cleaning on the worker side, judging on the broker side (audit_rec.h).
 * The broker's judgement is what keeps a compromised worker from writing control characters
 * into the SIEM file or invalid UTF-8 that the JSON encoder would refuse. */
#include "audit_rec.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const cause_words[] = {
    "ok",
    "wrong password",
    "unknown user",
    "protocol disabled",
    "mailbox not granted",
    "locked out",
    "address not allowed",
    "idp error",
    "upstream refused",
    "upstream unavailable",
    /* The login pipeline's words beyond the list (README, "Login outcomes"): the user switched
     * off, a name of no valid form, too many logins at once, refused before asking the broker
     * (e.g. a password before TLS), the client left first, a store or configuration problem. */
    "user disabled",
    "invalid name",
    "busy",
    "refused",
    "aborted",
    "internal error",
};

int audit_cause_known(const char *word)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(cause_words); i++)
        if (strcmp(word, cause_words[i]) == 0)
            return 1;
    return 0;
}

/* Length of the UTF-8 sequence at p (1-4), or 0 when it is not a valid, shortest one. */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0; /* a continuation byte, an overlong 2-byte lead, or beyond U+10FFFF */
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong 3/4-byte forms, surrogates and code points above U+10FFFF. */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

void audit_text_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = is_control(*p) ? 0 : utf8_len(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

#define AADSTS_DIGITS_MAX 9

/* "AADSTS" and 1..9 digits at p: the code's length, else 0. */
static size_t aadsts_code_at(const char *p)
{
    if (strncmp(p, "AADSTS", 6) != 0)
        return 0;
    size_t digits = strspn(p + 6, "0123456789");
    return digits >= 1 && digits <= AADSTS_DIGITS_MAX ? 6 + digits : 0;
}

void audit_detail_of(const char *cause, const char *reason, char *out, size_t size)
{
    out[0] = '\0';
    if (!reason || strcmp(cause, "idp error") != 0)
        return;
    for (const char *p = strstr(reason, "AADSTS"); p; p = strstr(p + 1, "AADSTS")) {
        size_t n = aadsts_code_at(p);
        if (n && n < size) {
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
    }
}

/* "" or exactly one AADSTS code, and only on an "idp error". */
static int detail_ok(const struct ipc_audit *a)
{
    if (!a->detail[0])
        return 1;
    size_t n = aadsts_code_at(a->detail);
    return n && a->detail[n] == '\0' && strcmp(a->cause, "idp error") == 0;
}

static int text_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = is_control(*p) ? 0 : utf8_len(p);
        if (n == 0)
            return 0;
        p += n;
    }
    return 1;
}

/* "host:port" or "[v6]:port" into host and port 1..65535. */
static int split_addr(const char *addr, char *host, size_t hostlen, unsigned *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return -1;
    const char *h = addr;
    size_t len = (size_t)(colon - addr);
    if (addr[0] == '[') {
        if (len < 3 || addr[len - 1] != ']')
            return -1;
        h++, len -= 2;
    } else if (memchr(addr, ':', len)) {
        return -1; /* a bare v6 address is ambiguous */
    }
    size_t digits = strspn(colon + 1, "0123456789");
    if (digits == 0 || digits > 5 || colon[1 + digits] != '\0' || len >= hostlen)
        return -1;
    unsigned long p = strtoul(colon + 1, NULL, 10);
    if (p == 0 || p > 65535)
        return -1;
    memcpy(host, h, len);
    host[len] = '\0';
    *port = (unsigned)p;
    return 0;
}

static int texts_ok(const struct ipc_audit *a)
{
    const char *texts[] = {a->listener, a->client_id, a->user, a->mailbox};
    for (size_t i = 0; i < MG_ARRAY_LEN(texts); i++)
        if (!text_ok(texts[i]))
            return 0;
    size_t n = strlen(a->session);
    return n > 0 && strspn(a->session, "0123456789abcdef") == n;
}

int audit_rec_valid(const struct ipc_audit *a)
{
    if (a->event > AUDIT_END || (unsigned)a->protocol > MG_PROTO_SMTP || a->ok > 1)
        return -1;
    if (!audit_cause_known(a->cause) || a->ok != (strcmp(a->cause, "ok") == 0))
        return -1;
    if (a->event == AUDIT_END && !a->ok)
        return -1; /* only a session that logged in has an end to audit */
    if (!texts_ok(a) || !detail_ok(a))
        return -1;
    char host[IPC_ADDR_MAX];
    unsigned port;
    return split_addr(a->client_addr, host, sizeof host, &port);
}

int audit_rec_fields(const struct ipc_audit *a, struct audit_fields *f)
{
    f->event = a->event == AUDIT_END ? "end" : "login";
    f->protocol = mg_proto_name(a->protocol);
    f->result = a->ok ? "ok" : "fail";
    return split_addr(a->client_addr, f->host, sizeof f->host, &f->port);
}
