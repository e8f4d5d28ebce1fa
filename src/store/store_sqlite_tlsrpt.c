/* TLS reports on the SQLite backend (store_tlsrpt.h; tables of migration 7). A report is
 * written in one transaction; the unique report_id makes a second copy a no-op, whichever
 * path (POST, import) brought it. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_internal.h"
#include "store_tlsrpt.h"
#include "util.h"

#define REPORT_SQL                                                                                 \
    "INSERT INTO tlsrpt_reports (report_id, organization, contact, start_time, end_time,"          \
    " received_at, source, dropped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                       \
    " ON CONFLICT (report_id) DO NOTHING"
#define POLICY_SQL                                                                                 \
    "INSERT INTO tlsrpt_policies (report, policy_type, policy_domain, policy_string, mx_host,"     \
    " successful, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
#define FAILURE_SQL                                                                                \
    "INSERT INTO tlsrpt_failures (policy, result_type, sending_mta_ip, receiving_mx_hostname,"     \
    " receiving_mx_helo, receiving_ip, additional_information, failure_reason_code,"               \
    " failed_sessions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"

/* Binds texts to ?first, ?first+1, ... */
static int bind_texts(sqlite3_stmt *stmt, int first, const char *const *v, size_t n)
{
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = sqlite3_bind_text(stmt, first + (int)i, v[i] ? v[i] : "", -1, SQLITE_TRANSIENT) ==
             SQLITE_OK;
    return ok;
}

/* Runs a prepared INSERT once; returns the new row's id, or 0 on failure. */
static int64_t insert_row(sqlite3 *db, sqlite3_stmt *stmt)
{
    int ok = sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return ok ? sqlite3_last_insert_rowid(db) : 0;
}

static char *joined(char *const *v, size_t n, const char *sep)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + strlen(sep);
    char *s = mg_calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, sep);
        strcat(s, v[i]);
    }
    return s;
}

static int add_failures(sqlite3 *db, sqlite3_stmt *stmt, int64_t policy,
                        const struct tlsrpt_policy *p)
{
    for (size_t i = 0; i < p->n_failures; i++) {
        const struct tlsrpt_failure *f = &p->failures[i];
        const char *texts[] = {f->result_type,        f->sending_mta_ip, f->receiving_mx_hostname,
                               f->receiving_mx_helo,  f->receiving_ip,   f->additional_information,
                               f->failure_reason_code};
        if (sqlite3_bind_int64(stmt, 1, policy) != SQLITE_OK ||
            !bind_texts(stmt, 2, texts, MG_ARRAY_LEN(texts)) ||
            sqlite3_bind_int64(stmt, 9, f->failed_sessions) != SQLITE_OK || !insert_row(db, stmt))
            return 0;
    }
    return 1;
}

static int add_policies(sqlite3 *db, int64_t report, const struct tlsrpt_report *r)
{
    sqlite3_stmt *pol = NULL, *fail = NULL;
    int ok = sqlite3_prepare_v2(db, POLICY_SQL, -1, &pol, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(db, FAILURE_SQL, -1, &fail, NULL) == SQLITE_OK;
    for (size_t i = 0; ok && i < r->n_policies; i++) {
        const struct tlsrpt_policy *p = &r->policies[i];
        char *lines = joined(p->policy_string, p->n_policy_string, "\n");
        char *mx = joined(p->mx_host, p->n_mx_host, " ");
        const char *texts[] = {p->policy_type, p->policy_domain, lines, mx};
        ok = sqlite3_bind_int64(pol, 1, report) == SQLITE_OK &&
             bind_texts(pol, 2, texts, MG_ARRAY_LEN(texts)) &&
             sqlite3_bind_int64(pol, 6, p->successful) == SQLITE_OK &&
             sqlite3_bind_int64(pol, 7, p->failed) == SQLITE_OK;
        int64_t id = ok ? insert_row(db, pol) : 0;
        ok = id && add_failures(db, fail, id, p);
        free(lines);
        free(mx);
    }
    sqlite3_finalize(pol);
    sqlite3_finalize(fail);
    return ok;
}

/* 1: stored, 0: a duplicate, -1: error. */
static int add_report(sqlite3 *db, const struct tlsrpt_report *r, int64_t now, const char *source)
{
    sqlite3_stmt *stmt = NULL;
    const char *texts[] = {r->report_id, r->organization, r->contact};
    int ok = sqlite3_prepare_v2(db, REPORT_SQL, -1, &stmt, NULL) == SQLITE_OK &&
             bind_texts(stmt, 1, texts, MG_ARRAY_LEN(texts)) &&
             sqlite3_bind_int64(stmt, 4, r->start) == SQLITE_OK &&
             sqlite3_bind_int64(stmt, 5, r->end) == SQLITE_OK &&
             sqlite3_bind_int64(stmt, 6, now) == SQLITE_OK && bind_texts(stmt, 7, &source, 1) &&
             sqlite3_bind_int64(stmt, 8, r->dropped) == SQLITE_OK &&
             sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_finalize(stmt);
    if (!ok)
        return -1;
    if (sqlite3_changes(db) == 0)
        return 0;
    return add_policies(db, sqlite3_last_insert_rowid(db), r) ? 1 : -1;
}

enum store_status sqlite_tlsrpt_add(struct store *st, const struct tlsrpt_report *r, int64_t now,
                                    const char *source)
{
    sqlite3 *db = store_sqlite_db(st);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_sqlite_error(st, "storing a TLS report");
    int rc = add_report(db, r, now, source);
    if (rc == 1 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return STORE_OK;
    enum store_status status =
        rc == 0 ? STORE_EXISTS : store_sqlite_error(st, "storing a TLS report");
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return status;
}

/* ---- summaries ---- */

#define GROUP_KEY "r.organization, p.policy_type, p.policy_domain"
#define FROM_REPORTS " FROM tlsrpt_reports r JOIN tlsrpt_policies p ON p.report = r.id"
#define RECENT " WHERE r.received_at >= ?1"

static const char *text_at(sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t ? (const char *)t : "";
}

/* Runs sql with ?1 = since and hands each row to row(stmt, visit) until it returns non-zero. */
static enum store_status each_row(struct store *st, const char *sql, int64_t since,
                                  int (*row)(sqlite3_stmt *stmt, void *visit), void *visit)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_sqlite_db(st), sql, -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 1, since) != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return store_sqlite_error(st, "reading TLS reports");
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && row(stmt, visit) == 0)
        ;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sqlite_error(st, "reading TLS reports");
    return STORE_OK;
}

struct policy_visit {
    int (*cb)(const struct tlsrpt_policy_sum *p, void *arg);
    void *arg;
};

struct failure_visit {
    int (*cb)(const struct tlsrpt_failure_sum *f, void *arg);
    void *arg;
};

static int policy_row(sqlite3_stmt *stmt, void *visit)
{
    struct policy_visit *v = visit;
    struct tlsrpt_policy_sum p = {text_at(stmt, 0),
                                  text_at(stmt, 1),
                                  text_at(stmt, 2),
                                  sqlite3_column_int64(stmt, 3),
                                  sqlite3_column_int64(stmt, 4),
                                  sqlite3_column_int64(stmt, 5)};
    return v->cb(&p, v->arg);
}

static int failure_row(sqlite3_stmt *stmt, void *visit)
{
    struct failure_visit *v = visit;
    struct tlsrpt_failure_sum f = {text_at(stmt, 0), text_at(stmt, 1),
                                   text_at(stmt, 2), text_at(stmt, 3),
                                   text_at(stmt, 4), sqlite3_column_int64(stmt, 5)};
    return v->cb(&f, v->arg);
}

enum store_status sqlite_tlsrpt_policies(struct store *st, int64_t since,
                                         int (*cb)(const struct tlsrpt_policy_sum *p, void *arg),
                                         void *arg)
{
    struct policy_visit v = {cb, arg};
    return each_row(st,
                    "SELECT " GROUP_KEY
                    ", COUNT(DISTINCT r.id), SUM(p.successful), SUM(p.failed)" FROM_REPORTS RECENT
                    " GROUP BY " GROUP_KEY " ORDER BY " GROUP_KEY,
                    since, policy_row, &v);
}

enum store_status sqlite_tlsrpt_failures(struct store *st, int64_t since,
                                         int (*cb)(const struct tlsrpt_failure_sum *f, void *arg),
                                         void *arg)
{
    struct failure_visit v = {cb, arg};
    return each_row(st,
                    "SELECT " GROUP_KEY ", f.result_type, f.receiving_mx_hostname,"
                    " SUM(f.failed_sessions)" FROM_REPORTS
                    " JOIN tlsrpt_failures f ON f.policy = p.id" RECENT " GROUP BY " GROUP_KEY
                    ", f.result_type, f.receiving_mx_hostname ORDER BY " GROUP_KEY
                    ", 6 DESC, f.result_type, f.receiving_mx_hostname",
                    since, failure_row, &v);
}
