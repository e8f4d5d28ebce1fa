/* libFuzzer target: token_parse_response on arbitrary answers. The input is split as
 * "status(2 bytes) | retry-after header up to the first NUL | body"; checks that the result is
 * consistent: status in range, reason and error terminated, a token only with TOKEN_OK. The body
 * also goes through aadsts_find, and is read as a JWT by jwt_claims (what `token get` shows). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aadsts.h"
#include "jwt_claims.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* Mostly realistic statuses, some odd ones. */
    long status = (long)((data[0] << 8 | data[1]) % 700);
    data += 2, size -= 2;
    const uint8_t *nul = memchr(data, '\0', size);
    char *header = NULL;
    if (nul) {
        size_t hlen = (size_t)(nul - data);
        header = malloc(hlen + 1);
        memcpy(header, data, hlen + 1);
        data = nul + 1;
        size -= hlen + 1;
    }
    /* An exact-size copy so that ASan catches any read past the body. */
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);

    struct token_response r;
    token_parse_response(status, body, size, header, &r);
    if ((unsigned)r.status > TOKEN_PERMFAIL)
        abort();
    if (!memchr(r.reason, '\0', sizeof r.reason) || !memchr(r.error, '\0', sizeof r.error))
        abort();
    if (r.reason[0] == '\0')
        abort();
    if (r.status == TOKEN_OK) {
        if (status != 200 || !r.access_token || r.token_len == 0 || r.token_len >= IPC_TOKEN_MAX ||
            strlen(r.access_token) != r.token_len || r.expires_in <= 0 ||
            (r.token_len > 2 && strstr(r.reason, r.access_token)))
            abort();
    } else if (r.access_token) {
        abort();
    }
    if (r.retry_after < -1)
        abort();
    token_response_clear(&r);
    /* The AADSTS code finder on the same bytes: bounded by size, no NUL needed. */
    long code = aadsts_find(body, size);
    if (code < 0 || code > 999999999 || (code && !memmem(body, size, "AADSTS", 6)))
        abort();
    (void)aadsts_hint(code);
    json_t *claims = jwt_claims_decode(body, size);
    if (claims) {
        const char *kind = NULL;
        free(jwt_claims_permissions(claims, &kind));
        (void)jwt_claims_has_permission(claims, "IMAP.AccessAsApp");
        int64_t exp;
        char when[96];
        if (jwt_claims_time(claims, "exp", &exp) == 0)
            jwt_format_expiry(exp, 1795575836, when, sizeof when);
        json_decref(claims);
    }
    free(body);
    free(header);
    return 0;
}
