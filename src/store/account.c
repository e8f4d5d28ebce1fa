/* Users by any of their names (see account.h). */
#include "account.h"

#include "login_name.h"

enum store_status account_find(struct store *st, const char *name, const char *default_domain,
                               struct user_record *out)
{
    char canonical[LOGIN_NAME_MAX], short_form[LOGIN_NAME_MAX];
    if (login_name_canonical(name, default_domain, canonical, sizeof canonical) != 0)
        return store_user_get(st, name, out); /* too long to be anyone's: NOT_FOUND */
    enum store_status s = store_user_get(st, canonical, out);
    if (s != STORE_NOT_FOUND ||
        login_name_short_form(canonical, default_domain, short_form, sizeof short_form) != 0)
        return s;
    user_record_clear(out);
    return store_user_get(st, short_form, out);
}
