/* application/x-www-form-urlencoded bodies for token endpoints (RFC 6749 appendix B). */
#ifndef MG_FORM_H
#define MG_FORM_H

#include <stddef.h>

struct form_field {
    const char *name, *value; /* a NULL value is sent as empty */
    size_t value_len;         /* 0: value is NUL-terminated; else its length (a password may
                                 contain any byte) */
};

/* name=value&... with every byte outside RFC 3986's unreserved set percent-encoded ('+', '&',
 * '=', space, UTF-8). Measures first, then writes straight into the result, so no temporary
 * copy of a secret value is left behind. Returns a malloc'd string; callers that put a secret
 * in it wipe and free it (mg_free_secret). */
char *form_encode(const struct form_field *fields, size_t n);

#endif
