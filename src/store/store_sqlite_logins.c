/* The login audit on the SQLite backend (store_logins.h). The broker writes a batch per tick in
 * one transaction (a login flood costs one fsync per tick, not one per login); reports read
 * with a filter built from fixed SQL pieces and bound values only. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store_internal.h"
#include "util.h"

#define INSERT_SQL                                                                                 \
    "INSERT INTO login_events (at, event, session, protocol, listener, client_addr, client_port,"  \
    " client_id, login, user, mailbox, result, reason, duration_ms, bytes_in, bytes_out, detail)"  \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"

#define SELECT_COLUMNS                                                                             \
    "SELECT id, at, event, session, protocol, listener, client_addr, client_port, client_id,"      \
    " login, user, mailbox, result, reason, duration_ms, bytes_in, bytes_out, detail"              \
    " FROM login_events"

static int bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    return sqlite3_bind_text(stmt, i, s ? s : "", -1, SQLITE_TRANSIENT) == SQLITE_OK;
}

static int bind_event(sqlite3_stmt *stmt, const struct login_event *e)
{
    const char *texts[] = {e->event, e->session, e->protocol, e->listener, e->client_addr};
    const char *more[] = {e->client_id, e->login, e->user, e->mailbox, e->result, e->reason};
    int ok = sqlite3_bind_int64(stmt, 1, e->at) == SQLITE_OK;
    for (size_t i = 0; i < MG_ARRAY_LEN(texts); i++)
        ok = ok && bind_text(stmt, (int)i + 2, texts[i]);
    ok = ok && sqlite3_bind_int64(stmt, 7, e->client_port) == SQLITE_OK;
    for (size_t i = 0; i < MG_ARRAY_LEN(more); i++)
        ok = ok && bind_text(stmt, (int)i + 8, more[i]);
    return ok && sqlite3_bind_int64(stmt, 14, e->duration_ms) == SQLITE_OK &&
           sqlite3_bind_int64(stmt, 15, e->bytes_in) == SQLITE_OK &&
           sqlite3_bind_int64(stmt, 16, e->bytes_out) == SQLITE_OK &&
           bind_text(stmt, 17, e->detail);
}

enum store_status sqlite_login_events_add(struct store *st, const struct login_event *ev, size_t n)
{
    sqlite3 *db = store_sqlite_db(st);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_sqlite_error(st, "storing login events");
    int ok = sqlite3_prepare_v2(db, INSERT_SQL, -1, &stmt, NULL) == SQLITE_OK;
    for (size_t i = 0; ok && i < n; i++) {
        ok = bind_event(stmt, &ev[i]) && sqlite3_step(stmt) == SQLITE_DONE;
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    }
    sqlite3_finalize(stmt);
    if (ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return STORE_OK;
    enum store_status rc = store_sqlite_error(st, "storing login events");
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

enum store_status sqlite_login_events_prune(struct store *st, int64_t before, int64_t *deleted)
{
    sqlite3 *db = store_sqlite_db(st);
    sqlite3_stmt *stmt = NULL;
    int ok = sqlite3_prepare_v2(db, "DELETE FROM login_events WHERE at < ?1", -1, &stmt, NULL) ==
                 SQLITE_OK &&
             sqlite3_bind_int64(stmt, 1, before) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_finalize(stmt);
    if (!ok)
        return store_sqlite_error(st, "pruning login events");
    if (deleted)
        *deleted = sqlite3_changes(db);
    return STORE_OK;
}

static const char *column_text(sqlite3_stmt *stmt, int i)
{
    const unsigned char *t = sqlite3_column_text(stmt, i);
    return t ? (const char *)t : "";
}

static void read_event(sqlite3_stmt *stmt, struct login_event *e)
{
    e->id = sqlite3_column_int64(stmt, 0);
    e->at = sqlite3_column_int64(stmt, 1);
    e->event = column_text(stmt, 2);
    e->session = column_text(stmt, 3);
    e->protocol = column_text(stmt, 4);
    e->listener = column_text(stmt, 5);
    e->client_addr = column_text(stmt, 6);
    e->client_port = sqlite3_column_int64(stmt, 7);
    e->client_id = column_text(stmt, 8);
    e->login = column_text(stmt, 9);
    e->user = column_text(stmt, 10);
    e->mailbox = column_text(stmt, 11);
    e->result = column_text(stmt, 12);
    e->reason = column_text(stmt, 13);
    e->duration_ms = sqlite3_column_int64(stmt, 14);
    e->bytes_in = sqlite3_column_int64(stmt, 15);
    e->bytes_out = sqlite3_column_int64(stmt, 16);
    e->detail = column_text(stmt, 17);
}

/* Every condition is always present and switched off by a NULL parameter, so the SQL is
 * fixed. */
static sqlite3_stmt *prepare_list(struct store *st, const struct login_filter *f)
{
    sqlite3_stmt *stmt = NULL;
    const char *sql = SELECT_COLUMNS " WHERE at >= ?1 AND (?2 IS NULL OR protocol = ?2)"
                                     " AND (?3 IS NULL OR user = ?3 OR login = ?3)"
                                     " AND (?4 IS NULL OR result = ?4)"
                                     " AND (?5 IS NULL OR event = ?5) ORDER BY at DESC, id DESC";
    if (sqlite3_prepare_v2(store_sqlite_db(st), sql, -1, &stmt, NULL) != SQLITE_OK)
        return NULL;
    const char *params[] = {f->protocol, f->user, f->result, f->event};
    int ok = sqlite3_bind_int64(stmt, 1, f->since) == SQLITE_OK;
    for (size_t i = 0; i < MG_ARRAY_LEN(params); i++)
        ok = ok && (params[i] ? sqlite3_bind_text(stmt, (int)i + 2, params[i], -1, SQLITE_TRANSIENT)
                              : sqlite3_bind_null(stmt, (int)i + 2)) == SQLITE_OK;
    if (!ok) {
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

enum store_status sqlite_login_events_list(struct store *st, const struct login_filter *f,
                                           int (*cb)(const struct login_event *e, void *arg),
                                           void *arg)
{
    sqlite3_stmt *stmt = prepare_list(st, f);
    if (!stmt)
        return store_sqlite_error(st, "listing login events");
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct login_event e;
        read_event(stmt, &e);
        if (cb(&e, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_error(st, "listing login events");
}

/* The last client is the newest successful login's address and identity. */
#define USAGE_SQL                                                                                  \
    "SELECT user, protocol,"                                                                       \
    " SUM(event = 'login' AND result = 'ok'), SUM(event = 'login' AND result = 'fail'),"           \
    " COALESCE(MAX(CASE WHEN event = 'login' AND result = 'ok' THEN at END), 0),"                  \
    " SUM(bytes_in), SUM(bytes_out),"                                                              \
    " COALESCE((SELECT trim(l.client_addr || ' ' || l.client_id) FROM login_events l"              \
    "   WHERE l.user = e.user AND l.protocol = e.protocol AND l.event = 'login'"                   \
    "   AND l.result = 'ok' AND l.at >= ?1 ORDER BY l.at DESC, l.id DESC LIMIT 1), '')"            \
    " FROM login_events e WHERE at >= ?1 GROUP BY user, protocol ORDER BY user, protocol"

enum store_status sqlite_login_usage(struct store *st, int64_t since,
                                     int (*cb)(const struct login_usage *u, void *arg), void *arg)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_sqlite_db(st), USAGE_SQL, -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 1, since) != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return store_sqlite_error(st, "summing login events");
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct login_usage u = {
            .user = column_text(stmt, 0),
            .protocol = column_text(stmt, 1),
            .logins = sqlite3_column_int64(stmt, 2),
            .failures = sqlite3_column_int64(stmt, 3),
            .last_login = sqlite3_column_int64(stmt, 4),
            .bytes_in = sqlite3_column_int64(stmt, 5),
            .bytes_out = sqlite3_column_int64(stmt, 6),
            .last_client = column_text(stmt, 7),
        };
        if (cb(&u, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_error(st, "summing login events");
}
