/* Outlook's POX Autodiscover request (MS-OXDSCLI 2.2.4.1): the address the client asks about
 * and the response schema it accepts, read with expat. Nothing in the body is trusted: no
 * DOCTYPE (so no entity of any kind), bounded depth and text. */
#ifndef MG_AUTODISCOVER_REQUEST_H
#define MG_AUTODISCOVER_REQUEST_H

#include <stddef.h>

#define AUTODISCOVER_EMAIL_MAX 320 /* 64 + '@' + 255 */
#define AUTODISCOVER_SCHEMA_MAX 256

/* The response schema mailgate answers with (the one Outlook desktop asks for). */
#define AUTODISCOVER_OUTLOOK_SCHEMA                                                                \
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

enum autodiscover_parse {
    AUTODISCOVER_OK = 0,
    AUTODISCOVER_BAD_XML,     /* not well-formed, a DOCTYPE, too deep or too long */
    AUTODISCOVER_NOT_REQUEST, /* well-formed, but no Autodiscover/Request/EMailAddress */
    AUTODISCOVER_OTHER_SCHEMA /* asks for a schema other than AUTODISCOVER_OUTLOOK_SCHEMA */
};

struct autodiscover_request {
    char email[AUTODISCOVER_EMAIL_MAX + 1];
    char schema[AUTODISCOVER_SCHEMA_MAX + 1]; /* "" when the request names none */
};

enum autodiscover_parse autodiscover_request_parse(const char *body, size_t len,
                                                   struct autodiscover_request *out);

#endif
