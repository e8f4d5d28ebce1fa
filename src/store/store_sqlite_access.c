/* Who may open what, on the SQLite backend: the users' switches and the mailbox_grants table.
 * Admin commands write these and the broker reads a grant once per login that names another
 * mailbox, so statements are prepared per call (as in store_sqlite_lockout.c). */
#include <sqlite3.h>

#include "store_internal.h"

/* Steps a bound UPDATE/DELETE; NOT_FOUND when it changed no row. */
static enum store_status step_change(struct store *st, sqlite3_stmt *stmt, const char *what)
{
    int ok = stmt && sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_finalize(stmt);
    if (!ok)
        return store_sqlite_error(st, what);
    return sqlite3_changes(store_sqlite_db(st)) > 0 ? STORE_OK : STORE_NOT_FOUND;
}

enum store_status sqlite_user_set_switches(struct store *st, const char *name,
                                           unsigned switched_off, int64_t now)
{
    sqlite3_stmt *stmt = sqlite_prepare_bound(
        st, "UPDATE users SET switched_off = ?2, updated_at = ?3 WHERE name = ?1", name, NULL);
    if (stmt && (sqlite3_bind_int(stmt, 2, (int)switched_off) != SQLITE_OK ||
                 sqlite3_bind_int64(stmt, 3, now) != SQLITE_OK)) {
        sqlite3_finalize(stmt);
        stmt = NULL;
    }
    return step_change(st, stmt, "changing a user's switches");
}

enum store_status sqlite_mailbox_grant_put(struct store *st, const struct mailbox_grant *g)
{
    /* An existing grant keeps its creation time; only its protocols change. */
    sqlite3_stmt *stmt = sqlite_prepare_bound(
        st,
        "INSERT INTO mailbox_grants (user, mailbox, protocols, created_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (user, mailbox) DO UPDATE SET protocols = excluded.protocols",
        g->user, g->mailbox);
    int ok = stmt && sqlite3_bind_int(stmt, 3, (int)g->protocols) == SQLITE_OK &&
             sqlite3_bind_int64(stmt, 4, g->created_at) == SQLITE_OK &&
             sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_finalize(stmt);
    return ok ? STORE_OK : store_sqlite_error(st, "storing a mailbox grant");
}

enum store_status sqlite_mailbox_grant_get(struct store *st, const char *user, const char *mailbox,
                                           unsigned *protocols)
{
    sqlite3_stmt *stmt = sqlite_prepare_bound(
        st, "SELECT protocols FROM mailbox_grants WHERE user = ?1 AND mailbox = ?2", user, mailbox);
    int rc = stmt ? sqlite3_step(stmt) : SQLITE_ERROR;
    if (rc == SQLITE_ROW)
        *protocols = (unsigned)sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND
                             : store_sqlite_error(st, "looking up a mailbox grant");
}

enum store_status sqlite_mailbox_grant_delete(struct store *st, const char *user,
                                              const char *mailbox)
{
    sqlite3_stmt *stmt =
        mailbox
            ? sqlite_prepare_bound(
                  st, "DELETE FROM mailbox_grants WHERE user = ?1 AND mailbox = ?2", user, mailbox)
            : sqlite_prepare_bound(st, "DELETE FROM mailbox_grants WHERE user = ?1", user, NULL);
    return step_change(st, stmt, "deleting mailbox grants");
}

enum store_status sqlite_mailbox_grant_list(struct store *st, const char *user,
                                            int (*cb)(const struct mailbox_grant *g, void *arg),
                                            void *arg)
{
    sqlite3_stmt *stmt = NULL;
    const char *sql = "SELECT user, mailbox, protocols, created_at FROM mailbox_grants"
                      " WHERE ?1 IS NULL OR user = ?1 ORDER BY user, mailbox";
    if (sqlite3_prepare_v2(store_sqlite_db(st), sql, -1, &stmt, NULL) != SQLITE_OK ||
        (user && sqlite3_bind_text(stmt, 1, user, -1, SQLITE_TRANSIENT) != SQLITE_OK)) {
        sqlite3_finalize(stmt);
        return store_sqlite_error(st, "listing mailbox grants");
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct mailbox_grant g = {.user = (char *)sqlite3_column_text(stmt, 0),
                                  .mailbox = (char *)sqlite3_column_text(stmt, 1),
                                  .protocols = (unsigned)sqlite3_column_int(stmt, 2),
                                  .created_at = sqlite3_column_int64(stmt, 3)};
        if (cb(&g, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_error(st, "listing mailbox grants");
}
