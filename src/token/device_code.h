/* The OAuth 2.0 device authorization grant (RFC 8628), pure parts: the request bodies and the
 * device authorization answer. Polling answers are ordinary token endpoint answers
 * (token_parse_response in token.h); their "error" says authorization_pending, slow_down,
 * authorization_declined, access_denied, expired_token or bad_verification_code. */
#ifndef MG_DEVICE_CODE_H
#define MG_DEVICE_CODE_H

#include <stddef.h>
#include <stdint.h>

#include "token.h"

struct provider_conf;

#define DEVICE_GRANT_TYPE "urn:ietf:params:oauth:grant-type:device_code"
#define DEVICE_INTERVAL_DEFAULT 5 /* seconds, RFC 8628 3.2 */
#define DEVICE_INTERVAL_MIN 1
#define DEVICE_INTERVAL_MAX 60
#define DEVICE_EXPIRES_MAX 3600 /* longer lifetimes are clamped: nobody waits longer */

/* Strings are bounded and printable (the codes and the URI visible ASCII; the message any
 * UTF-8 text without control characters), so they can be shown on a terminal as they are. */
struct device_authorization {
    char
        device_code[1024]; /* a credential until it is used: wipe it (device_authorization_clear) */
    char user_code[64];
    char verification_uri[512];          /* Google calls it verification_url */
    char verification_uri_complete[640]; /* "" when absent */
    char message[1024];                  /* "" when absent */
    int64_t expires_in;                  /* seconds */
    int64_t interval;                    /* seconds, DEVICE_INTERVAL_MIN..DEVICE_INTERVAL_MAX */
    enum token_status status;            /* of a failure: TEMPFAIL (5xx, garbage) or PERMFAIL */
    char error[64];                      /* OAuth "error" of a failure */
    char reason[512];                    /* a failure, human readable */
};

/* client_id, scope (+ client_secret when the provider has one). malloc'd; wipe and free. */
char *device_code_request_body(const struct provider_conf *p);
/* grant_type=urn:ietf:params:oauth:grant-type:device_code, client_id, device_code
 * (+ client_secret). Google wants the same body. malloc'd; wipe and free. */
char *device_code_poll_body(const struct provider_conf *p, const char *device_code);
/* Interprets the device authorization endpoint's answer. 0 with out filled, or -1 with
 * out->status, out->error and out->reason saying why (an OAuth error is read by
 * token_parse_response). */
int device_code_parse(long status, const char *body, size_t len, struct device_authorization *out);
void device_authorization_clear(struct device_authorization *d); /* wipes the device code */

#endif
