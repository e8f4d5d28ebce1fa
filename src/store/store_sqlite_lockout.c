/* The lockouts table of the SQLite backend. These calls are rare (a lockout starts, an admin
 * lifts one, the broker rechecks after another process wrote), so the statements are prepared
 * per call instead of kept with the backend's persistent ones. */
#include <sqlite3.h>

#include "store_internal.h"

sqlite3_stmt *sqlite_prepare_bound(struct store *st, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_sqlite_db(st), sql, -1, &stmt, NULL) != SQLITE_OK)
        return NULL;
    if (sqlite3_bind_text(stmt, 1, a, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        (b && sqlite3_bind_text(stmt, 2, b, -1, SQLITE_TRANSIENT) != SQLITE_OK)) {
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

enum store_status sqlite_lockout_put(struct store *st, const char *user, const char *address,
                                     int64_t until)
{
    sqlite3_stmt *stmt = sqlite_prepare_bound(
        st, "INSERT OR REPLACE INTO lockouts (user, address, until) VALUES (?1, ?2, ?3)", user,
        address);
    int ok = stmt && sqlite3_bind_int64(stmt, 3, until) == SQLITE_OK &&
             sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_finalize(stmt);
    return ok ? STORE_OK : store_sqlite_error(st, "recording a lockout");
}

enum store_status sqlite_lockout_get(struct store *st, const char *user, const char *address)
{
    sqlite3_stmt *stmt = sqlite_prepare_bound(
        st, "SELECT 1 FROM lockouts WHERE user = ?1 AND address = ?2", user, address);
    int rc = stmt ? sqlite3_step(stmt) : SQLITE_ERROR;
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_error(st, "looking up a lockout");
}

enum store_status sqlite_lockout_delete(struct store *st, const char *user, const char *address,
                                        int64_t *deleted)
{
    sqlite3_stmt *stmt =
        address ? sqlite_prepare_bound(st, "DELETE FROM lockouts WHERE user = ?1 AND address = ?2",
                                       user, address)
                : sqlite_prepare_bound(st, "DELETE FROM lockouts WHERE user = ?1", user, NULL);
    int ok = stmt && sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_finalize(stmt);
    *deleted = ok ? sqlite3_changes64(store_sqlite_db(st)) : 0;
    return ok ? STORE_OK : store_sqlite_error(st, "deleting lockouts");
}

enum store_status sqlite_data_version(struct store *st, int64_t *version)
{
    sqlite3_stmt *stmt = NULL;
    int ok = sqlite3_prepare_v2(store_sqlite_db(st), "PRAGMA data_version", -1, &stmt, NULL) ==
                 SQLITE_OK &&
             sqlite3_step(stmt) == SQLITE_ROW;
    *version = ok ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return ok ? STORE_OK : store_sqlite_error(st, "reading the data version");
}

enum store_status sqlite_lockout_list(struct store *st, const char *user, int64_t now,
                                      int (*cb)(const char *address, int64_t until, void *arg),
                                      void *arg)
{
    sqlite3_stmt *stmt = sqlite_prepare_bound(
        st, "SELECT address, until FROM lockouts WHERE user = ?1 AND until > ?2 ORDER BY address",
        user, NULL);
    int rc = stmt && sqlite3_bind_int64(stmt, 2, now) == SQLITE_OK ? SQLITE_ROW : SQLITE_ERROR;
    while (rc == SQLITE_ROW && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *address = (const char *)sqlite3_column_text(stmt, 0);
        if (cb(address ? address : "", sqlite3_column_int64(stmt, 1), arg) != 0)
            rc = SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_error(st, "listing lockouts");
}
