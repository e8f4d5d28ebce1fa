/* Users by any of their names: with [gateway] default_domain, "alice" and "alice@contoso.com"
 * are the same user, whichever form the store holds (users added before default_domain was set
 * keep their short names). Used by the broker for logins and by every CLI command that takes a
 * user NAME, so both find the same row. */
#ifndef MG_ACCOUNT_H
#define MG_ACCOUNT_H

#include "store.h"

/* Looks the user up by its canonical name (login_name_canonical), then by its short form in
 * default_domain. default_domain may be NULL. */
enum store_status account_find(struct store *st, const char *name, const char *default_domain,
                               struct user_record *out);

#endif
