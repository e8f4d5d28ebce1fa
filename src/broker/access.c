/* The broker's access decision (see access.h). */
#include "access.h"

#include <string.h>

#include "log.h"
#include "login_name.h"
#include "store.h"
#include "util.h"

static enum access_verdict other_mailbox(struct store *st, const struct user_record *u,
                                         const char *address, enum mg_proto proto)
{
    unsigned granted = 0;
    enum store_status s = store_mailbox_grant_get(st, u->name, address, &granted);
    if (s == STORE_ERROR) {
        log_error("user store: %s", store_last_error(st));
        return ACCESS_STORE_ERROR;
    }
    return s == STORE_OK && (granted & USER_PROTO_BIT(proto)) ? ACCESS_OK : ACCESS_NOT_GRANTED;
}

enum access_verdict access_decide(struct store *st, const struct user_record *u, const char *alias,
                                  enum mg_proto proto, char *mailbox, size_t size)
{
    /* The user's own rules first: they hold for every mailbox it opens. */
    if (u->switched_off & USER_OFF_LOGIN)
        return ACCESS_USER_DISABLED;
    if (u->switched_off & USER_PROTO_BIT(proto))
        return ACCESS_PROTOCOL_DISABLED;
    if (!alias[0]) {
        mg_strlcpy(mailbox, u->mailbox, size);
        return ACCESS_OK;
    }
    if (login_name_alias_address(alias, u->name, u->mailbox, mailbox, size) != 0)
        return ACCESS_NOT_GRANTED;
    if (mg_ascii_casecmp(mailbox, u->mailbox) == 0)
        return ACCESS_OK; /* its own mailbox by another name */
    return other_mailbox(st, u, mailbox, proto);
}

const char *access_cause(enum access_verdict v)
{
    switch (v) {
    case ACCESS_OK:
        return "ok";
    case ACCESS_USER_DISABLED:
        return "user disabled";
    case ACCESS_PROTOCOL_DISABLED:
        return "protocol disabled";
    case ACCESS_NOT_GRANTED:
        return "mailbox not granted";
    case ACCESS_STORE_ERROR:
        break;
    }
    return "internal error";
}
