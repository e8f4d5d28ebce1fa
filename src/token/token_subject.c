/* Whose token a login needs (see token_subject.h). */
#include "token_subject.h"

#include <string.h>

#include "grant_store.h"
#include "util.h"

char *token_subject_for(const struct provider_conf *p, const char *user, const char *mailbox,
                        const char *password, size_t len, struct token_subject *out)
{
    memset(out, 0, sizeof *out);
    switch (p->flow) {
    case MG_FLOW_DELEGATED:
        out->grant = TOKEN_GRANT_REFRESH_TOKEN;
        return grant_store_principal(user);
    case MG_FLOW_SERVICE_ACCOUNT:
        out->grant = TOKEN_GRANT_JWT_BEARER;
        out->subject = mailbox;
        return mg_printf("mailbox:%s", mailbox);
    case MG_FLOW_PASSWORD:
        out->grant = TOKEN_GRANT_PASSWORD;
        out->subject = mailbox;
        out->password = password;
        out->password_len = len;
        return token_password_principal(user, password, len);
    case MG_FLOW_CLIENT_CREDENTIALS:
        break;
    }
    out->grant = TOKEN_GRANT_CLIENT_CREDENTIALS;
    return token_app_principal(p);
}
