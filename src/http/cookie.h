/* One cookie's value from a request's Cookie header (RFC 6265 5.4: "a=b; c=d"). Pure: the
 * header is the browser's, so anything may be in it. */
#ifndef MG_COOKIE_H
#define MG_COOKIE_H

#include <stddef.h>

/* Copies the value of the first cookie called name (compared exactly) into out. 0, or -1 when
 * there is none, or its value does not fit size (then out is ""). Values in double quotes
 * lose them (RFC 6265 4.1.1). */
int http_cookie_value(const char *header, const char *name, char *out, size_t size);

#endif
