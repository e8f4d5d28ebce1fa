/* Form encoding for token requests (see form.h). */
#include "form.h"

#include <string.h>

#include "util.h"

/* RFC 3986 unreserved characters stay, everything else becomes %XX (so '+', '&', '=', space
 * and UTF-8 bytes are all encoded; no '+' for space, which servers read either way). */
static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Writes name=encoded(value) at dst (when dst is not NULL); returns the length either way. */
static size_t put_form_field(char *dst, const struct form_field *f)
{
    const char *name = f->name;
    const unsigned char *value = (const unsigned char *)(f->value ? f->value : "");
    size_t len = f->value && f->value_len ? f->value_len : strlen((const char *)value);
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(name);
    if (dst)
        memcpy(dst, name, n), dst[n] = '=';
    n++;
    for (const unsigned char *p = value; p < value + len; p++) {
        if (is_unreserved(*p)) {
            if (dst)
                dst[n] = (char)*p;
            n++;
        } else {
            if (dst)
                dst[n] = '%', dst[n + 1] = hex[*p >> 4], dst[n + 2] = hex[*p & 15];
            n += 3;
        }
    }
    return n;
}

char *form_encode(const struct form_field *fields, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (i ? 1 : 0) + put_form_field(NULL, &fields[i]);
    char *body = mg_malloc(total + 1), *o = body;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = '&';
        o += put_form_field(o, &fields[i]);
    }
    *o = '\0';
    return body;
}
