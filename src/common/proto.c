/* Names of the protocol and TLS-mode enums, for config files, IPC and logs. */
#include "proto.h"

#include <string.h>

static const char *const proto_names[] = {"imap", "pop3", "smtp", "http"};
static const char *const tls_names[] = {"implicit", "starttls", "none"};

const char *mg_proto_name(enum mg_proto p)
{
    return (unsigned)p < 4 ? proto_names[p] : "unknown";
}

int mg_proto_parse(const char *s, enum mg_proto *out)
{
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(s, proto_names[i]) == 0) {
            *out = (enum mg_proto)i;
            return 0;
        }
    }
    return -1;
}

const char *mg_tls_mode_name(enum mg_tls_mode m)
{
    return (unsigned)m < 3 ? tls_names[m] : "unknown";
}

int mg_tls_mode_parse(const char *s, enum mg_tls_mode *out)
{
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(s, tls_names[i]) == 0) {
            *out = (enum mg_tls_mode)i;
            return 0;
        }
    }
    return -1;
}
