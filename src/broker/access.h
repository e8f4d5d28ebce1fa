/* Who may open what, decided by the broker once the password is known to be right (so that a
 * refusal costs a guesser as much as a wrong password and tells nothing more): the user's
 * switches (`mailgate user set`), and for another mailbox than the user's own, a grant
 * (`mailgate grant`) with the protocol. Read from the store at every login: a change applies to
 * the next login of a running gateway, whatever the auth cache remembers. */
#ifndef MG_ACCESS_H
#define MG_ACCESS_H

#include <stddef.h>

#include "proto.h"

struct store;
struct user_record;

enum access_verdict {
    ACCESS_OK,
    ACCESS_USER_DISABLED,     /* user set --enabled off */
    ACCESS_PROTOCOL_DISABLED, /* the user's switch for the protocol is off */
    ACCESS_NOT_GRANTED,       /* another mailbox without a grant for the protocol */
    ACCESS_STORE_ERROR
};

/* alias: "" for the user's own mailbox, else as the client typed it (login_name.h). On
 * ACCESS_OK, mailbox holds the address to open upstream. */
enum access_verdict access_decide(struct store *st, const struct user_record *u, const char *alias,
                                  enum mg_proto proto, char *mailbox, size_t size);

/* The fixed word of the login audit for a refusal ("protocol disabled", ...). */
const char *access_cause(enum access_verdict v);

#endif
