/* libFuzzer target: device_code_parse on arbitrary answers ("status(2 bytes) | body"). Checks
 * that a success has every required field, printable and terminated, and an interval in range;
 * a failure a reason. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device_code.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_visible(const char *s, size_t size, int required)
{
    size_t len = strnlen(s, size);
    if (len == size || (required && len == 0))
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    long status = (data[0] & 1) ? 200 : (long)((data[0] << 8 | data[1]) % 700);
    data += 2, size -= 2;
    char *body = malloc(size ? size : 1); /* exact size: ASan catches reads past it */
    memcpy(body, data, size);
    struct device_authorization d;
    int rc = device_code_parse(status, body, size, &d);
    if (rc == 0) {
        check_visible(d.device_code, sizeof d.device_code, 1);
        check_visible(d.user_code, sizeof d.user_code, 1);
        check_visible(d.verification_uri, sizeof d.verification_uri, 1);
        check_visible(d.verification_uri_complete, sizeof d.verification_uri_complete, 0);
        check_visible(d.message, sizeof d.message, 0);
        if (d.interval < DEVICE_INTERVAL_MIN || d.interval > DEVICE_INTERVAL_MAX ||
            d.expires_in < 1 || d.expires_in > DEVICE_EXPIRES_MAX)
            abort();
    } else if (rc != -1 || d.reason[0] == '\0' || !memchr(d.reason, '\0', sizeof d.reason) ||
               d.status == TOKEN_OK) {
        abort();
    }
    device_authorization_clear(&d);
    free(body);
    return 0;
}
