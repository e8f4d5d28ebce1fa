/* Address ranges for a listener's allow = list ("10.0.0.0/8, 2001:db8::/32").
 *
 * The list comes from the config file, so the parser is strict: numeric addresses only
 * (inet_pton), a prefix of decimal digits within the family's width, no bits set after the
 * prefix (10.1.0.0/8 is refused: it is more likely a typo than a wish). An IPv4-mapped IPv6
 * address (::ffff:10.1.2.3) is the IPv4 address it carries, in rules and in clients alike, so a
 * dual-stack listener applies the IPv4 rules to IPv4 clients. */
#ifndef MG_CIDR_H
#define MG_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
    int family;       /* AF_INET or AF_INET6 */
    unsigned prefix;  /* 0-32 or 0-128 */
    uint8_t addr[16]; /* network order; the first 4 bytes for AF_INET */
};

/* An empty list (n == 0) allows every address. */
struct cidr_list {
    struct cidr *v;
    size_t n;
};

/* One range, "ADDRESS" (a single host) or "ADDRESS/PREFIX". Returns 0, or -1 with a reason
 * (static text) in *why. */
int cidr_parse(const char *s, struct cidr *out, const char **why);
/* Ranges separated by commas and/or blanks. On error returns -1, leaves *out empty and writes
 * "'ITEM': reason" to err. */
int cidr_list_parse(const char *s, struct cidr_list *out, char *err, size_t errlen);
void cidr_list_copy(struct cidr_list *dst, const struct cidr_list *src);
void cidr_list_free(struct cidr_list *l);
/* True when the address of sa (AF_INET or AF_INET6) is in a range of the list, or the list is
 * empty. Any other family matches only an empty list. */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

#endif
