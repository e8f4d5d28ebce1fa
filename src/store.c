/* The store's public API: argument checks and dispatch to the backend (only SQLite for now). */
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"
#include "util.h"

enum store_status store_set_error(struct store *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->last_error, sizeof st->last_error, fmt, ap);
    va_end(ap);
    return STORE_ERROR;
}

struct store *store_open(const char *state_dir, char *err, size_t errlen)
{
    if (!state_dir || !*state_dir) {
        snprintf(err, errlen, "no state directory configured");
        return NULL;
    }
    return store_sqlite_open(state_dir, err, errlen);
}

void store_close(struct store **st)
{
    if (!st || !*st)
        return;
    (*st)->ops->close(*st);
    *st = NULL;
}

static int record_complete(const struct user_record *u)
{
    return u && u->name && u->mailbox && u->provider && u->password_hash;
}

enum store_status store_user_add(struct store *st, const struct user_record *u)
{
    if (!record_complete(u))
        return store_set_error(st, "incomplete user record");
    struct user_record stamped = *u;
    int64_t now = (int64_t)time(NULL);
    if (!stamped.created_at)
        stamped.created_at = now;
    if (!stamped.updated_at)
        stamped.updated_at = stamped.created_at;
    return st->ops->user_add(st, &stamped);
}

enum store_status store_user_get(struct store *st, const char *name, struct user_record *out)
{
    memset(out, 0, sizeof *out);
    if (!name)
        return store_set_error(st, "no user name");
    return st->ops->user_get(st, name, out);
}

enum store_status store_user_set_password(struct store *st, const char *name, const char *hash)
{
    if (!name || !hash)
        return store_set_error(st, "no user name or password hash");
    return st->ops->user_set_password(st, name, hash, (int64_t)time(NULL));
}

enum store_status store_user_delete(struct store *st, const char *name)
{
    if (!name)
        return store_set_error(st, "no user name");
    return st->ops->user_delete(st, name);
}

enum store_status store_user_list(struct store *st,
                                  int (*cb)(const struct user_record *u, void *arg), void *arg)
{
    if (!cb)
        return store_set_error(st, "no callback");
    return st->ops->user_list(st, cb, arg);
}

const char *store_last_error(struct store *st)
{
    return st ? st->last_error : "no store";
}

void user_record_clear(struct user_record *u)
{
    if (!u)
        return;
    free(u->name);
    free(u->mailbox);
    free(u->provider);
    mg_free_secret(&u->password_hash);
    memset(u, 0, sizeof *u);
}
