/* Cookie header parsing (cookie.h). */
#include "cookie.h"

#include <string.h>

static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Copies the len bytes at v into out, less a pair of enclosing double quotes. */
static int copy_value(const char *v, size_t len, char *out, size_t size)
{
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
        v++, len -= 2;
    if (len >= size)
        return -1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

int http_cookie_value(const char *header, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    if (size)
        out[0] = '\0';
    if (!header || !size || !name_len)
        return -1;
    for (const char *p = header; *p;) {
        p = skip_spaces(p);
        const char *end = strchr(p, ';');
        size_t pair_len = end ? (size_t)(end - p) : strlen(p);
        if (pair_len > name_len && memcmp(p, name, name_len) == 0 && p[name_len] == '=')
            return copy_value(p + name_len + 1, pair_len - name_len - 1, out, size);
        if (!end)
            break;
        p = end + 1;
    }
    return -1;
}
