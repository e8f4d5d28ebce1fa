/* [gateway] resolver = IP[:PORT] ...: the nameservers the workers ask for the upstream servers'
 * names instead of /etc/resolv.conf's (worker/dns_cache.c), as nginx's `resolver`. Checked with
 * the parser evdns itself uses on them (evutil_parse_sockaddr_port), so check-config accepts
 * exactly what a worker can add. Numeric only: a name would need a resolver to find the
 * resolver. Kept in its own file so config.c stays the file reader. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "config_internal.h"
#include "util.h"

/* resolv.conf allows 3; a few more for a list that spans sites, still a short retry chain. */
#define RESOLVER_MAX 8
#define RESOLVER_WORD_MAX 64 /* "[IPv6]:PORT" fits with room to spare */

static bool valid_nameserver(const char *word)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    return strlen(word) < RESOLVER_WORD_MAX &&
           evutil_parse_sockaddr_port(word, (struct sockaddr *)&ss, &len) == 0;
}

void config_set_resolver(struct parser *p, int line, const char *key, const char *value,
                         struct mg_strlist *out)
{
    struct mg_strlist list = {0};
    for (const char *s = value + strspn(value, " \t,"); *s; s += strspn(s, " \t,")) {
        size_t n = strcspn(s, " \t,");
        char *word = mg_strndup(s, n);
        s += n;
        if (!valid_nameserver(word) || list.n == RESOLVER_MAX) {
            if (list.n == RESOLVER_MAX)
                conf_error(p, line, "%s: at most %d nameservers", key, RESOLVER_MAX);
            else
                conf_error(p, line, "%s: '%s' is not IP, IP:PORT or [IPv6]:PORT", key, word);
            free(word);
            config_free_strlist(&list);
            return;
        }
        list.v = mg_realloc(list.v, (list.n + 1) * sizeof *list.v);
        list.v[list.n++] = word;
    }
    if (!list.n) {
        conf_error(p, line, "%s: expected nameserver addresses, IP[:PORT] ([IPv6]:PORT)", key);
        return;
    }
    config_free_strlist(out);
    *out = list;
}
