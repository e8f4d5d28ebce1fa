/* allow = lists: parsing (strict, see cidr.h) and matching client addresses. */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CIDR_TEXT_MAX 64 /* longer than any IPv6 address with a prefix */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* "0" or digits without a leading zero, at most max. */
static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
    size_t len = strlen(s);
    if (len == 0 || len > 3 || strspn(s, "0123456789") != len || (len > 1 && s[0] == '0'))
        return -1;
    unsigned v = (unsigned)strtoul(s, NULL, 10);
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* ::ffff:a.b.c.d/96+n is a.b.c.d/n: the rule then matches the IPv4 clients it names. */
static void unmap_v4(struct cidr *c)
{
    if (c->family != AF_INET6 || c->prefix < 96 ||
        memcmp(c->addr, v4_mapped_prefix, sizeof v4_mapped_prefix) != 0)
        return;
    memmove(c->addr, c->addr + 12, 4);
    memset(c->addr + 4, 0, 12);
    c->family = AF_INET;
    c->prefix -= 96;
}

static bool host_bits_clear(const struct cidr *c)
{
    unsigned width = c->family == AF_INET ? 32 : 128;
    for (unsigned bit = c->prefix; bit < width; bit++) {
        if (c->addr[bit / 8] & (0x80u >> (bit % 8)))
            return false;
    }
    return true;
}

int cidr_parse(const char *s, struct cidr *out, const char **why)
{
    char text[CIDR_TEXT_MAX];
    if (strlen(s) >= sizeof text) {
        *why = "too long for an address range";
        return -1;
    }
    mg_strlcpy(text, s, sizeof text);
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = AF_INET;
    } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = AF_INET6;
    } else {
        *why = "not a numeric IPv4 or IPv6 address";
        return -1;
    }
    unsigned width = out->family == AF_INET ? 32 : 128;
    out->prefix = width;
    if (slash && parse_prefix(slash + 1, width, &out->prefix) != 0) {
        *why = out->family == AF_INET ? "the prefix length must be 0 to 32"
                                      : "the prefix length must be 0 to 128";
        return -1;
    }
    if (!host_bits_clear(out)) {
        *why = "address bits are set after the prefix length";
        return -1;
    }
    unmap_v4(out);
    return 0;
}

int cidr_list_parse(const char *s, struct cidr_list *out, char *err, size_t errlen)
{
    static const char seps[] = ", \t";
    memset(out, 0, sizeof *out);
    for (s += strspn(s, seps); *s; s += strspn(s, seps)) {
        size_t len = strcspn(s, seps);
        char *item = mg_strndup(s, len);
        struct cidr c;
        const char *why = NULL;
        int rc = cidr_parse(item, &c, &why);
        if (rc != 0)
            snprintf(err, errlen, "'%s': %s", item, why);
        free(item);
        if (rc != 0) {
            cidr_list_free(out);
            return -1;
        }
        out->v = mg_realloc(out->v, (out->n + 1) * sizeof *out->v);
        out->v[out->n++] = c;
        s += len;
    }
    if (out->n == 0) {
        snprintf(err, errlen, "no address range given");
        return -1;
    }
    return 0;
}

void cidr_list_copy(struct cidr_list *dst, const struct cidr_list *src)
{
    dst->n = src->n;
    dst->v = NULL;
    if (src->n) {
        dst->v = mg_malloc(src->n * sizeof *src->v);
        memcpy(dst->v, src->v, src->n * sizeof *src->v);
    }
}

void cidr_list_free(struct cidr_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static bool in_range(const struct cidr *c, const uint8_t *addr)
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
    if (l->n == 0)
        return true;
    uint8_t addr[16];
    int family = sa->sa_family;
    if (family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        if (memcmp(addr, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
            memmove(addr, addr + 12, 4);
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].family == family && in_range(&l->v[i], addr))
            return true;
    }
    return false;
}
