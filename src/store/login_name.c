/* Login names (see login_name.h). */
#include "login_name.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

#define MAX_PARTS 3 /* domain\user\alias */

static bool is_separator(char c)
{
    return c == '\\' || c == '/';
}

/* A component of a name: not empty, no separator, no space or control byte (the logs and the
 * store rely on it). */
static bool valid_part(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || is_separator((char)c))
            return false;
    }
    return true;
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == c;
    return n;
}

/* A local part or an address with exactly one '@' and something on both sides. */
static bool valid_address_or_local(const char *s, size_t len)
{
    if (!valid_part(s, len))
        return false;
    const char *at = memchr(s, '@', len);
    if (!at)
        return true;
    return at != s && at != s + len - 1 && count_char(s, len, '@') == 1;
}

static bool is_upn(const char *s, size_t len)
{
    return memchr(s, '@', len) && valid_address_or_local(s, len);
}

static bool has_domain(const char *d)
{
    return d && *d;
}

int login_name_canonical(const char *name, const char *default_domain, char *out, size_t size)
{
    int n = strchr(name, '@') || !has_domain(default_domain)
                ? snprintf(out, size, "%s", name)
                : snprintf(out, size, "%s@%s", name, default_domain);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

int login_name_short_form(const char *name, const char *default_domain, char *out, size_t size)
{
    const char *at = strrchr(name, '@');
    if (!at || !has_domain(default_domain) || mg_ascii_casecmp(at + 1, default_domain) != 0)
        return -1;
    size_t len = (size_t)(at - name);
    if (len == 0 || len >= size)
        return -1;
    memcpy(out, name, len);
    out[len] = '\0';
    return 0;
}

/* "contoso\alice": the domain is a DNS name, or a NetBIOS-style one that stands for
 * default_domain when it equals default_domain's first label. */
static int domain_user(const char *domain, size_t dlen, const char *user, size_t ulen,
                       const char *default_domain, char *out, size_t size)
{
    if (memchr(domain, '@', dlen) || memchr(user, '@', ulen))
        return -1;
    int n;
    const char *dot = has_domain(default_domain) ? strchr(default_domain, '.') : NULL;
    size_t label = dot ? (size_t)(dot - default_domain) : 0;
    if (!memchr(domain, '.', dlen) && label == dlen &&
        mg_ascii_ncasecmp(domain, default_domain, dlen) == 0)
        n = snprintf(out, size, "%.*s@%s", (int)ulen, user, default_domain);
    else
        n = snprintf(out, size, "%.*s@%.*s", (int)ulen, user, (int)dlen, domain);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

struct parts {
    const char *start[MAX_PARTS];
    size_t len[MAX_PARTS];
    size_t n;
};

/* Splits at the separators; -1 when there are more than MAX_PARTS parts or one is invalid. */
static int split(const char *input, struct parts *p)
{
    p->n = 0;
    const char *s = input;
    for (;;) {
        size_t len = 0;
        while (s[len] && !is_separator(s[len]))
            len++;
        if (p->n == MAX_PARTS || !valid_part(s, len))
            return -1;
        p->start[p->n] = s;
        p->len[p->n++] = len;
        if (!s[len])
            return 0;
        s += len + 1;
    }
}

static int copy_part(const struct parts *p, size_t i, char *out, size_t size)
{
    if (p->len[i] >= size)
        return -1;
    memcpy(out, p->start[i], p->len[i]);
    out[p->len[i]] = '\0';
    return 0;
}

/* The row of the table: by the number of parts (separators + 1) and of '@' in the first part.
 * -1 for the shapes that are none of them. */
static int classify(const struct parts *p, size_t ats, enum login_form *form)
{
    static const struct {
        size_t parts, ats;
        enum login_form form;
    } rows[] = {
        {1, 0, LOGIN_SHORT},
        {1, 1, LOGIN_UPN},
        {2, 0, LOGIN_DOMAIN_USER},
        {2, 1, LOGIN_UPN_ALIAS},
        {3, 0, LOGIN_DOMAIN_USER_ALIAS},
    };
    for (size_t i = 0; i < MG_ARRAY_LEN(rows); i++) {
        if (rows[i].parts == p->n && rows[i].ats == ats) {
            *form = rows[i].form;
            return 0;
        }
    }
    return -1;
}

static int parse_parts(const struct parts *p, const char *default_domain, struct login_name *out)
{
    size_t ats = count_char(p->start[0], p->len[0], '@');
    if (classify(p, ats, &out->form) != 0 || (ats == 1 && !is_upn(p->start[0], p->len[0])))
        return -1;
    int has_alias = out->form == LOGIN_UPN_ALIAS || out->form == LOGIN_DOMAIN_USER_ALIAS;
    size_t last = p->n - 1;
    if (has_alias && (!valid_address_or_local(p->start[last], p->len[last]) ||
                      copy_part(p, last, out->alias, sizeof out->alias) != 0))
        return -1;
    switch (out->form) {
    case LOGIN_SHORT: {
        char first[LOGIN_NAME_MAX];
        if (copy_part(p, 0, first, sizeof first) != 0)
            return -1;
        return login_name_canonical(first, default_domain, out->user, sizeof out->user);
    }
    case LOGIN_UPN:
    case LOGIN_UPN_ALIAS:
        return copy_part(p, 0, out->user, sizeof out->user);
    case LOGIN_DOMAIN_USER:
    case LOGIN_DOMAIN_USER_ALIAS:
        break;
    }
    return domain_user(p->start[0], p->len[0], p->start[1], p->len[1], default_domain, out->user,
                       sizeof out->user);
}

int login_name_parse(const char *input, const char *default_domain, struct login_name *out)
{
    memset(out, 0, sizeof *out);
    struct parts p;
    if (strlen(input) >= LOGIN_NAME_MAX || split(input, &p) != 0 ||
        parse_parts(&p, default_domain, out) != 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

bool login_name_reserved(const char *name)
{
    static const char *const reserved[] = {"anonymous", "guest"};
    const char *at = strchr(name, '@');
    size_t local = at ? (size_t)(at - name) : strlen(name);
    for (size_t i = 0; i < MG_ARRAY_LEN(reserved); i++) {
        if (local == strlen(reserved[i]) && mg_ascii_ncasecmp(name, reserved[i], local) == 0)
            return true;
    }
    return false;
}

int login_name_alias_address(const char *alias, const char *user, const char *own_mailbox,
                             char *out, size_t size)
{
    size_t len = strlen(alias);
    if (!valid_address_or_local(alias, len))
        return -1;
    int n;
    if (strchr(alias, '@')) {
        n = snprintf(out, size, "%s", alias);
    } else {
        const char *at = strrchr(user, '@');
        if (!at)
            at = strrchr(own_mailbox, '@');
        if (!at || !at[1])
            return -1;
        n = snprintf(out, size, "%s@%s", alias, at + 1);
    }
    return n >= 0 && (size_t)n < size ? 0 : -1;
}
