/* SQLite backend of the store: state_dir/mailgate.db (0600, WAL, busy timeout 5 s). The schema is
 * versioned with PRAGMA user_version; each migration is one entry of a table, applied in a
 * transaction together with the version bump. Only prepared statements with bound parameters. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_internal.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 5000

/* Migration N (1-based) brings the schema from version N-1 to N and sets user_version = N
 * itself, so the bump commits atomically with the change. Append only; never edit. */
static const char *const migrations[] = {
    "CREATE TABLE users ("
    " name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
    " mailbox TEXT NOT NULL,"
    " provider TEXT NOT NULL,"
    " password_hash TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "PRAGMA user_version = 1;",
    "CREATE TABLE tokens ("
    " provider TEXT NOT NULL,"
    " principal TEXT NOT NULL,"
    " scope TEXT NOT NULL,"
    " sealed BLOB NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (provider, principal, scope));"
    "PRAGMA user_version = 2;",
    /* 3: delegated authorizations (a sealed refresh token per user and provider; NULL once it
     * needs authorization again) and the audit log. */
    "CREATE TABLE grants ("
    " user TEXT NOT NULL COLLATE NOCASE,"
    " provider TEXT NOT NULL,"
    " sealed BLOB,"
    " state INTEGER NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '',"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (user, provider));"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " event TEXT NOT NULL,"
    " user TEXT COLLATE NOCASE,"
    " provider TEXT,"
    " detail TEXT);"
    "CREATE INDEX audit_by_user ON audit (user, id);"
    "PRAGMA user_version = 3;",
    /* 4: login lockouts (store_sqlite_lockout.c). */
    "CREATE TABLE lockouts ("
    " user TEXT NOT NULL COLLATE NOCASE,"
    " address TEXT NOT NULL,"
    " until INTEGER NOT NULL,"
    " PRIMARY KEY (user, address));"
    "PRAGMA user_version = 4;",
    /* 5: per-user switches (what is off: existing users keep everything on) and mailbox grants
     * (store_sqlite_access.c). */
    "ALTER TABLE users ADD COLUMN switched_off INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE mailbox_grants ("
    " user TEXT NOT NULL COLLATE NOCASE,"
    " mailbox TEXT NOT NULL COLLATE NOCASE,"
    " protocols INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (user, mailbox));"
    "PRAGMA user_version = 5;",
    /* 6: the login audit (store_sqlite_logins.c); pruned by time, read by time and user. */
    "CREATE TABLE login_events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " event TEXT NOT NULL,"
    " session TEXT NOT NULL,"
    " protocol TEXT NOT NULL,"
    " listener TEXT NOT NULL,"
    " client_addr TEXT NOT NULL,"
    " client_port INTEGER NOT NULL,"
    " client_id TEXT NOT NULL,"
    " login TEXT NOT NULL,"
    " user TEXT NOT NULL COLLATE NOCASE,"
    " mailbox TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " duration_ms INTEGER NOT NULL,"
    " bytes_in INTEGER NOT NULL,"
    " bytes_out INTEGER NOT NULL);"
    "CREATE INDEX login_events_by_time ON login_events (at);"
    "CREATE INDEX login_events_by_user ON login_events (user, protocol, at);"
    "PRAGMA user_version = 6;",
    /* 7 (credential fingerprints, audit detail): which credential each cached token was
     * obtained with (token_fingerprint.h), so that a changed client secret is noticed; the
     * AADSTS code of a login refused by the IdP. Renumber freely if another migration lands
     * first: nothing else refers to this number. */
    "ALTER TABLE tokens ADD COLUMN credential TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE login_events ADD COLUMN detail TEXT NOT NULL DEFAULT '';"
    "PRAGMA user_version = 7;",
    /* 8: TLS reports (RFC 8460; store_sqlite_tlsrpt.c): one row per report, unique by
     * report-id so that a report sent or imported twice is stored once; its policies and their
     * failure details go with it (ON DELETE CASCADE). Read by time of receipt. */
    "CREATE TABLE tlsrpt_reports ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " report_id TEXT NOT NULL UNIQUE,"
    " organization TEXT NOT NULL,"
    " contact TEXT NOT NULL,"
    " start_time INTEGER NOT NULL,"
    " end_time INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " source TEXT NOT NULL,"
    " dropped INTEGER NOT NULL);"
    "CREATE INDEX tlsrpt_reports_by_time ON tlsrpt_reports (received_at);"
    "CREATE TABLE tlsrpt_policies ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " report INTEGER NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,"
    " policy_type TEXT NOT NULL,"
    " policy_domain TEXT NOT NULL,"
    " policy_string TEXT NOT NULL,"
    " mx_host TEXT NOT NULL,"
    " successful INTEGER NOT NULL,"
    " failed INTEGER NOT NULL);"
    "CREATE INDEX tlsrpt_policies_by_report ON tlsrpt_policies (report);"
    "CREATE TABLE tlsrpt_failures ("
    " policy INTEGER NOT NULL REFERENCES tlsrpt_policies (id) ON DELETE CASCADE,"
    " result_type TEXT NOT NULL,"
    " sending_mta_ip TEXT NOT NULL,"
    " receiving_mx_hostname TEXT NOT NULL,"
    " receiving_mx_helo TEXT NOT NULL,"
    " receiving_ip TEXT NOT NULL,"
    " additional_information TEXT NOT NULL,"
    " failure_reason_code TEXT NOT NULL,"
    " failed_sessions INTEGER NOT NULL);"
    "CREATE INDEX tlsrpt_failures_by_policy ON tlsrpt_failures (policy);"
    "PRAGMA user_version = 8;",
};

enum stmt_id {
    STMT_ADD,
    STMT_GET,
    STMT_SET_PASSWORD,
    STMT_DELETE,
    STMT_LIST,
    STMT_TOKEN_PUT,
    STMT_TOKEN_GET,
    STMT_TOKEN_DELETE,
    STMT_TOKEN_LIST,
    STMT_TOKEN_DELETE_PRINCIPAL,
    STMT_GRANT_PUT,
    STMT_GRANT_GET,
    STMT_GRANT_SET_STATE,
    STMT_GRANT_DELETE,
    STMT_GRANT_LIST,
    STMT_AUDIT_ADD,
    STMT_AUDIT_LIST,
    STMT_COUNT
};

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_ADD] = "INSERT INTO users (name, mailbox, provider, password_hash, created_at,"
                 " updated_at, switched_off) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [STMT_GET] = "SELECT name, mailbox, provider, password_hash, created_at, updated_at,"
                 " switched_off FROM users WHERE name = ?1",
    [STMT_SET_PASSWORD] = "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE name = ?1",
    [STMT_DELETE] = "DELETE FROM users WHERE name = ?1",
    [STMT_LIST] = "SELECT name, mailbox, provider, password_hash, created_at, updated_at,"
                  " switched_off FROM users ORDER BY name",
    [STMT_TOKEN_PUT] = "INSERT OR REPLACE INTO tokens (provider, principal, scope, sealed,"
                       " expires_at, updated_at, credential) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [STMT_TOKEN_GET] = "SELECT provider, principal, scope, sealed, expires_at, updated_at,"
                       " credential FROM tokens WHERE provider = ?1 AND principal = ?2"
                       " AND scope = ?3",
    [STMT_TOKEN_DELETE] = "DELETE FROM tokens WHERE provider = ?1 AND principal = ?2"
                          " AND scope = ?3",
    [STMT_TOKEN_LIST] = "SELECT provider, principal, scope, sealed, expires_at, updated_at,"
                        " credential FROM tokens ORDER BY provider, principal, scope",
    [STMT_TOKEN_DELETE_PRINCIPAL] = "DELETE FROM tokens WHERE principal = ?1 COLLATE NOCASE",
    /* One statement: a crash leaves the old or the new refresh token, never none. */
    [STMT_GRANT_PUT] = "INSERT OR REPLACE INTO grants (user, provider, sealed, state, reason,"
                       " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STMT_GRANT_GET] = "SELECT user, provider, sealed, state, reason, updated_at FROM grants"
                       " WHERE user = ?1 AND provider = ?2",
    /* A refresh token that needs authorization again is useless: dropped with the change. */
    [STMT_GRANT_SET_STATE] = "UPDATE grants SET state = ?3, reason = ?4, updated_at = ?5,"
                             " sealed = CASE WHEN ?3 = 1 THEN NULL ELSE sealed END"
                             " WHERE user = ?1 AND provider = ?2",
    [STMT_GRANT_DELETE] = "DELETE FROM grants WHERE user = ?1",
    [STMT_GRANT_LIST] = "SELECT user, provider, sealed, state, reason, updated_at FROM grants"
                        " ORDER BY user, provider",
    [STMT_AUDIT_ADD] = "INSERT INTO audit (at, event, user, provider, detail)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)",
    /* A negative LIMIT is no limit in SQLite. */
    [STMT_AUDIT_LIST] = "SELECT id, at, event, user, provider, detail FROM audit"
                        " WHERE ?1 IS NULL OR user = ?1 ORDER BY id DESC LIMIT ?2",
};

struct sqlite_store {
    struct store base; /* first: a struct store * points here */
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT];
};

static struct sqlite_store *sqlite_of(struct store *st)
{
    return (struct sqlite_store *)st;
}

static enum store_status db_error(struct sqlite_store *s, const char *what)
{
    return store_set_error(&s->base, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* Creates the state directory (0700) when missing; an existing one is left as it is. */
static int ensure_state_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
    return -1;
}

/* Creates the database file 0600 before SQLite does (SQLite would honour the umask), and
 * tightens an existing one. SQLite gives its -wal and -shm files the database file's mode. */
static int ensure_db_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0 && (st.st_mode & 077))
        rc = fchmod(fd, 0600);
    if (rc == 0 && st.st_size == 0) /* new: a CLI run as root creates it for the gateway */
        rc = mg_chown_like_dir(fd, path);
    if (rc != 0)
        snprintf(err, errlen, "cannot set the mode or owner of %s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

static int exec_sql(struct sqlite_store *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
}

static int read_user_version(struct sqlite_store *s, int *version)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Applies the missing migrations. The version is read inside an IMMEDIATE transaction so that
 * two processes opening a fresh database at once (say, "serve" and "user add") cannot both
 * apply the same migration. */
static int migrate(struct sqlite_store *s, char *err, size_t errlen)
{
    const int latest = (int)MG_ARRAY_LEN(migrations);
    for (;;) {
        int version = 0;
        if (exec_sql(s, "BEGIN IMMEDIATE", err, errlen) != 0)
            return -1;
        if (read_user_version(s, &version) != 0) {
            snprintf(err, errlen, "cannot read the schema version: %s", sqlite3_errmsg(s->db));
            break;
        }
        if (version > latest) {
            snprintf(err, errlen,
                     "the database schema (version %d) is newer than this mailgate "
                     "understands (version %d)",
                     version, latest);
            break;
        }
        if (version == latest)
            return exec_sql(s, "COMMIT", err, errlen);
        if (exec_sql(s, migrations[version], err, errlen) != 0 ||
            exec_sql(s, "COMMIT", err, errlen) != 0)
            break;
    }
    char ignored[8];
    exec_sql(s, "ROLLBACK", ignored, sizeof ignored);
    return -1;
}

static int configure_connection(struct sqlite_store *s, char *err, size_t errlen)
{
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    /* secure_delete: a deleted user's or replaced password hash is overwritten on disk. */
    if (exec_sql(s,
                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                 " PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;",
                 err, errlen) != 0)
        return -1;
    return migrate(s, err, errlen);
}

static int prepare_statements(struct sqlite_store *s, char *err, size_t errlen)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "cannot prepare a statement: %s", sqlite3_errmsg(s->db));
            return -1;
        }
    }
    return 0;
}

static void sqlite_close(struct store *st)
{
    struct sqlite_store *s = sqlite_of(st);
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_close_v2(s->db);
    free(s);
}

/* Returns the statement ready for binding. */
static sqlite3_stmt *stmt_begin(struct sqlite_store *s, enum stmt_id id)
{
    sqlite3_stmt *stmt = s->stmt[id];
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

/* Resets the statement (releasing its locks and bound copies) and passes the status through. */
static enum store_status stmt_end(sqlite3_stmt *stmt, enum store_status status)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

static int bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    return sqlite3_bind_text(stmt, index, text, -1, SQLITE_TRANSIENT);
}

static const char *column_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t ? (const char *)t : "";
}

/* A row of STMT_GET / STMT_LIST as a record pointing into SQLite's memory (valid until the
 * next step or reset). */
static void row_view(sqlite3_stmt *stmt, struct user_record *u)
{
    u->name = (char *)column_text(stmt, 0);
    u->mailbox = (char *)column_text(stmt, 1);
    u->provider = (char *)column_text(stmt, 2);
    u->password_hash = (char *)column_text(stmt, 3);
    u->created_at = sqlite3_column_int64(stmt, 4);
    u->updated_at = sqlite3_column_int64(stmt, 5);
    u->switched_off = (unsigned)sqlite3_column_int(stmt, 6);
}

static enum store_status sqlite_user_add(struct store *st, const struct user_record *u)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_ADD);
    if (bind_text(stmt, 1, u->name) || bind_text(stmt, 2, u->mailbox) ||
        bind_text(stmt, 3, u->provider) || bind_text(stmt, 4, u->password_hash) ||
        sqlite3_bind_int64(stmt, 5, u->created_at) || sqlite3_bind_int64(stmt, 6, u->updated_at) ||
        sqlite3_bind_int(stmt, 7, (int)u->switched_off))
        return stmt_end(stmt, db_error(s, "adding a user"));
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return stmt_end(stmt, STORE_OK);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return stmt_end(stmt, STORE_EXISTS);
    return stmt_end(stmt, db_error(s, "adding a user"));
}

static enum store_status sqlite_user_get(struct store *st, const char *name,
                                         struct user_record *out)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_GET);
    if (bind_text(stmt, 1, name))
        return stmt_end(stmt, db_error(s, "looking up a user"));
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return stmt_end(stmt, STORE_NOT_FOUND);
    if (rc != SQLITE_ROW)
        return stmt_end(stmt, db_error(s, "looking up a user"));
    struct user_record view;
    row_view(stmt, &view);
    out->name = mg_strdup(view.name);
    out->mailbox = mg_strdup(view.mailbox);
    out->provider = mg_strdup(view.provider);
    out->password_hash = mg_strdup(view.password_hash);
    out->created_at = view.created_at;
    out->updated_at = view.updated_at;
    out->switched_off = view.switched_off;
    return stmt_end(stmt, STORE_OK);
}

/* Runs a one-row UPDATE/DELETE that has been bound; NOT_FOUND when no row matched. */
static enum store_status step_change(struct sqlite_store *s, sqlite3_stmt *stmt, const char *what)
{
    if (sqlite3_step(stmt) != SQLITE_DONE)
        return stmt_end(stmt, db_error(s, what));
    return stmt_end(stmt, sqlite3_changes(s->db) > 0 ? STORE_OK : STORE_NOT_FOUND);
}

static enum store_status sqlite_user_set_password(struct store *st, const char *name,
                                                  const char *hash, int64_t now)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_SET_PASSWORD);
    if (bind_text(stmt, 1, name) || bind_text(stmt, 2, hash) || sqlite3_bind_int64(stmt, 3, now))
        return stmt_end(stmt, db_error(s, "changing a password"));
    return step_change(s, stmt, "changing a password");
}

static enum store_status sqlite_user_delete(struct store *st, const char *name)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_DELETE);
    if (bind_text(stmt, 1, name))
        return stmt_end(stmt, db_error(s, "deleting a user"));
    return step_change(s, stmt, "deleting a user");
}

static enum store_status
sqlite_user_list(struct store *st, int (*cb)(const struct user_record *u, void *arg), void *arg)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_LIST);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct user_record view;
        row_view(stmt, &view);
        if (cb(&view, arg) != 0)
            return stmt_end(stmt, STORE_OK);
    }
    if (rc != SQLITE_DONE)
        return stmt_end(stmt, db_error(s, "listing users"));
    return stmt_end(stmt, STORE_OK);
}

static int bind_token_key(sqlite3_stmt *stmt, const char *provider, const char *principal,
                          const char *scope)
{
    return bind_text(stmt, 1, provider) || bind_text(stmt, 2, principal) ||
           bind_text(stmt, 3, scope);
}

static enum store_status sqlite_token_put(struct store *st, const struct token_record *t)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_TOKEN_PUT);
    if (bind_token_key(stmt, t->provider, t->principal, t->scope) ||
        sqlite3_bind_blob64(stmt, 4, t->sealed, t->sealed_len, SQLITE_TRANSIENT) ||
        sqlite3_bind_int64(stmt, 5, t->expires_at) || sqlite3_bind_int64(stmt, 6, t->updated_at) ||
        bind_text(stmt, 7, t->credential ? t->credential : ""))
        return stmt_end(stmt, db_error(s, "storing a token"));
    if (sqlite3_step(stmt) != SQLITE_DONE)
        return stmt_end(stmt, db_error(s, "storing a token"));
    return stmt_end(stmt, STORE_OK);
}

/* A token row as a record pointing into SQLite's memory. */
static void token_row_view(sqlite3_stmt *stmt, struct token_record *t)
{
    t->provider = (char *)column_text(stmt, 0);
    t->principal = (char *)column_text(stmt, 1);
    t->scope = (char *)column_text(stmt, 2);
    t->sealed = (uint8_t *)sqlite3_column_blob(stmt, 3);
    t->sealed_len = (size_t)sqlite3_column_bytes(stmt, 3);
    t->expires_at = sqlite3_column_int64(stmt, 4);
    t->updated_at = sqlite3_column_int64(stmt, 5);
    t->credential = (char *)column_text(stmt, 6);
}

static enum store_status sqlite_token_get(struct store *st, const char *provider,
                                          const char *principal, const char *scope,
                                          struct token_record *out)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_TOKEN_GET);
    if (bind_token_key(stmt, provider, principal, scope))
        return stmt_end(stmt, db_error(s, "looking up a token"));
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return stmt_end(stmt, STORE_NOT_FOUND);
    if (rc != SQLITE_ROW)
        return stmt_end(stmt, db_error(s, "looking up a token"));
    struct token_record view;
    token_row_view(stmt, &view);
    out->provider = mg_strdup(view.provider);
    out->principal = mg_strdup(view.principal);
    out->scope = mg_strdup(view.scope);
    out->sealed = mg_malloc(view.sealed_len ? view.sealed_len : 1);
    if (view.sealed_len)
        memcpy(out->sealed, view.sealed, view.sealed_len);
    out->sealed_len = view.sealed_len;
    out->expires_at = view.expires_at;
    out->updated_at = view.updated_at;
    out->credential = mg_strdup(view.credential);
    return stmt_end(stmt, STORE_OK);
}

static enum store_status sqlite_token_delete(struct store *st, const char *provider,
                                             const char *principal, const char *scope)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_TOKEN_DELETE);
    if (bind_token_key(stmt, provider, principal, scope))
        return stmt_end(stmt, db_error(s, "deleting a token"));
    return step_change(s, stmt, "deleting a token");
}

static enum store_status
sqlite_token_list(struct store *st, int (*cb)(const struct token_record *t, void *arg), void *arg)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_TOKEN_LIST);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct token_record view;
        token_row_view(stmt, &view);
        if (cb(&view, arg) != 0)
            return stmt_end(stmt, STORE_OK);
    }
    if (rc != SQLITE_DONE)
        return stmt_end(stmt, db_error(s, "listing tokens"));
    return stmt_end(stmt, STORE_OK);
}

static enum store_status sqlite_token_delete_principal(struct store *st, const char *principal)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_TOKEN_DELETE_PRINCIPAL);
    if (bind_text(stmt, 1, principal))
        return stmt_end(stmt, db_error(s, "deleting tokens"));
    return step_change(s, stmt, "deleting tokens");
}

/* ---- grants ---- */

/* A grant row as a record pointing into SQLite's memory (sealed NULL when there is none). */
static void grant_row_view(sqlite3_stmt *stmt, struct grant_record *g)
{
    g->user = (char *)column_text(stmt, 0);
    g->provider = (char *)column_text(stmt, 1);
    g->sealed = (uint8_t *)sqlite3_column_blob(stmt, 2);
    g->sealed_len = g->sealed ? (size_t)sqlite3_column_bytes(stmt, 2) : 0;
    g->state = sqlite3_column_int(stmt, 3) == GRANT_AUTHORIZED ? GRANT_AUTHORIZED
                                                               : GRANT_NEEDS_AUTHORIZATION;
    g->reason = (char *)column_text(stmt, 4);
    g->updated_at = sqlite3_column_int64(stmt, 5);
}

static enum store_status sqlite_grant_put(struct store *st, const struct grant_record *g)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_GRANT_PUT);
    int bad = bind_text(stmt, 1, g->user) || bind_text(stmt, 2, g->provider) ||
              (g->sealed ? sqlite3_bind_blob64(stmt, 3, g->sealed, g->sealed_len, SQLITE_TRANSIENT)
                         : sqlite3_bind_null(stmt, 3)) ||
              sqlite3_bind_int(stmt, 4, (int)g->state) ||
              bind_text(stmt, 5, g->reason ? g->reason : "") ||
              sqlite3_bind_int64(stmt, 6, g->updated_at);
    if (bad || sqlite3_step(stmt) != SQLITE_DONE)
        return stmt_end(stmt, db_error(s, "storing an authorization"));
    return stmt_end(stmt, STORE_OK);
}

static enum store_status sqlite_grant_get(struct store *st, const char *user, const char *provider,
                                          struct grant_record *out)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_GRANT_GET);
    if (bind_text(stmt, 1, user) || bind_text(stmt, 2, provider))
        return stmt_end(stmt, db_error(s, "looking up an authorization"));
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return stmt_end(stmt, STORE_NOT_FOUND);
    if (rc != SQLITE_ROW)
        return stmt_end(stmt, db_error(s, "looking up an authorization"));
    struct grant_record view;
    grant_row_view(stmt, &view);
    *out = view;
    out->user = mg_strdup(view.user);
    out->provider = mg_strdup(view.provider);
    out->reason = mg_strdup(view.reason);
    if (view.sealed) {
        out->sealed = mg_malloc(view.sealed_len ? view.sealed_len : 1);
        memcpy(out->sealed, view.sealed, view.sealed_len);
    }
    return stmt_end(stmt, STORE_OK);
}

static enum store_status sqlite_grant_set_state(struct store *st, const char *user,
                                                const char *provider, enum grant_state state,
                                                const char *reason, int64_t now)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_GRANT_SET_STATE);
    if (bind_text(stmt, 1, user) || bind_text(stmt, 2, provider) ||
        sqlite3_bind_int(stmt, 3, (int)state) || bind_text(stmt, 4, reason ? reason : "") ||
        sqlite3_bind_int64(stmt, 5, now))
        return stmt_end(stmt, db_error(s, "changing an authorization"));
    return step_change(s, stmt, "changing an authorization");
}

static enum store_status sqlite_grant_delete(struct store *st, const char *user)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_GRANT_DELETE);
    if (bind_text(stmt, 1, user))
        return stmt_end(stmt, db_error(s, "deleting authorizations"));
    return step_change(s, stmt, "deleting authorizations");
}

static enum store_status
sqlite_grant_list(struct store *st, int (*cb)(const struct grant_record *g, void *arg), void *arg)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_GRANT_LIST);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct grant_record view;
        grant_row_view(stmt, &view);
        if (cb(&view, arg) != 0)
            return stmt_end(stmt, STORE_OK);
    }
    if (rc != SQLITE_DONE)
        return stmt_end(stmt, db_error(s, "listing authorizations"));
    return stmt_end(stmt, STORE_OK);
}

/* ---- audit ---- */

static int bind_text_or_null(sqlite3_stmt *stmt, int index, const char *text)
{
    return text ? bind_text(stmt, index, text) : sqlite3_bind_null(stmt, index);
}

static char *column_text_or_null(sqlite3_stmt *stmt, int col)
{
    return (char *)sqlite3_column_text(stmt, col);
}

static enum store_status sqlite_audit_add(struct store *st, const struct audit_record *a)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_AUDIT_ADD);
    int bad = sqlite3_bind_int64(stmt, 1, a->at) || bind_text(stmt, 2, a->event) ||
              bind_text_or_null(stmt, 3, a->user) || bind_text_or_null(stmt, 4, a->provider) ||
              bind_text_or_null(stmt, 5, a->detail);
    if (bad || sqlite3_step(stmt) != SQLITE_DONE)
        return stmt_end(stmt, db_error(s, "adding an audit event"));
    return stmt_end(stmt, STORE_OK);
}

static enum store_status sqlite_audit_list(struct store *st, int64_t limit, const char *user,
                                           int (*cb)(const struct audit_record *a, void *arg),
                                           void *arg)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = stmt_begin(s, STMT_AUDIT_LIST);
    if (bind_text_or_null(stmt, 1, user) || sqlite3_bind_int64(stmt, 2, limit > 0 ? limit : -1))
        return stmt_end(stmt, db_error(s, "listing audit events"));
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct audit_record view = {.id = sqlite3_column_int64(stmt, 0),
                                    .at = sqlite3_column_int64(stmt, 1),
                                    .event = (char *)column_text(stmt, 2),
                                    .user = column_text_or_null(stmt, 3),
                                    .provider = column_text_or_null(stmt, 4),
                                    .detail = column_text_or_null(stmt, 5)};
        if (cb(&view, arg) != 0)
            return stmt_end(stmt, STORE_OK);
    }
    if (rc != SQLITE_DONE)
        return stmt_end(stmt, db_error(s, "listing audit events"));
    return stmt_end(stmt, STORE_OK);
}

static enum store_status sqlite_exec(struct store *st, const char *what)
{
    struct sqlite_store *s = sqlite_of(st);
    if (sqlite3_exec(s->db, what, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(s, what);
    return STORE_OK;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .user_add = sqlite_user_add,
    .user_get = sqlite_user_get,
    .user_set_password = sqlite_user_set_password,
    .user_delete = sqlite_user_delete,
    .user_list = sqlite_user_list,
    .token_put = sqlite_token_put,
    .token_get = sqlite_token_get,
    .token_delete = sqlite_token_delete,
    .token_list = sqlite_token_list,
    .token_delete_principal = sqlite_token_delete_principal,
    .grant_put = sqlite_grant_put,
    .grant_get = sqlite_grant_get,
    .grant_set_state = sqlite_grant_set_state,
    .grant_delete = sqlite_grant_delete,
    .grant_list = sqlite_grant_list,
    .audit_add = sqlite_audit_add,
    .audit_list = sqlite_audit_list,
    .exec = sqlite_exec,
    .lockout_put = sqlite_lockout_put,
    .lockout_get = sqlite_lockout_get,
    .lockout_delete = sqlite_lockout_delete,
    .data_version = sqlite_data_version,
    .lockout_list = sqlite_lockout_list,
    .user_set_switches = sqlite_user_set_switches,
    .mailbox_grant_put = sqlite_mailbox_grant_put,
    .mailbox_grant_get = sqlite_mailbox_grant_get,
    .mailbox_grant_delete = sqlite_mailbox_grant_delete,
    .mailbox_grant_list = sqlite_mailbox_grant_list,
    .login_events_add = sqlite_login_events_add,
    .login_events_prune = sqlite_login_events_prune,
    .login_events_list = sqlite_login_events_list,
    .login_usage = sqlite_login_usage,
    .tlsrpt_add = sqlite_tlsrpt_add,
    .tlsrpt_policies = sqlite_tlsrpt_policies,
    .tlsrpt_failures = sqlite_tlsrpt_failures,
};

struct sqlite3 *store_sqlite_db(struct store *st)
{
    return sqlite_of(st)->db;
}

enum store_status store_sqlite_error(struct store *st, const char *what)
{
    return store_set_error(st, "%s: %s", what, sqlite3_errmsg(store_sqlite_db(st)));
}

struct store *store_sqlite_open(const char *state_dir, char *err, size_t errlen)
{
    if (ensure_state_dir(state_dir, err, errlen) != 0)
        return NULL;
    char *path = mg_printf("%s/mailgate.db", state_dir);
    if (ensure_db_file(path, err, errlen) != 0) {
        free(path);
        return NULL;
    }
    struct sqlite_store *s = mg_calloc(1, sizeof *s);
    s->base.ops = &sqlite_ops;
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    } else if (configure_connection(s, err, errlen) == 0 &&
               prepare_statements(s, err, errlen) == 0) {
        free(path);
        return &s->base;
    }
    free(path);
    sqlite_close(&s->base);
    return NULL;
}
