/* libFuzzer target: the sign-in page's Cookie header parser (src/http/cookie.c). The first byte
 * picks the size of the output buffer; a value found must fit it, come from the header and
 * have lost only enclosing quotes and trailing blanks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cookie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t out_size = data[0] % 64;
    /* A NUL-terminated copy of exactly the header, so ASan sees any read past its end. */
    char *header = malloc(size);
    memcpy(header, data + 1, size - 1);
    header[size - 1] = '\0';
    char *out = malloc(out_size ? out_size : 1);
    if (http_cookie_value(header, "mailgate_signin", out, out_size) == 0) {
        size_t len = strlen(out);
        if (len >= out_size || !strstr(header, "mailgate_signin=") || (len && !strstr(header, out)))
            abort();
    }
    free(out);
    free(header);
    return 0;
}
