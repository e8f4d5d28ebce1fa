/* The store's backend interface: store.c dispatches every call through a backend's ops table, so
 * that a PostgreSQL backend can join SQLite without callers noticing. Only store*.c include this.
 */
#ifndef MG_STORE_INTERNAL_H
#define MG_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_logins.h"
#include "store_tlsrpt.h"

struct store_ops {
    const char *name; /* "sqlite" */
    void (*close)(struct store *st);
    enum store_status (*user_add)(struct store *st, const struct user_record *u);
    enum store_status (*user_get)(struct store *st, const char *name, struct user_record *out);
    enum store_status (*user_set_password)(struct store *st, const char *name, const char *hash,
                                           int64_t now);
    enum store_status (*user_delete)(struct store *st, const char *name);
    enum store_status (*user_list)(struct store *st,
                                   int (*cb)(const struct user_record *u, void *arg), void *arg);
    enum store_status (*token_put)(struct store *st, const struct token_record *t);
    enum store_status (*token_get)(struct store *st, const char *provider, const char *principal,
                                   const char *scope, struct token_record *out);
    enum store_status (*token_delete)(struct store *st, const char *provider, const char *principal,
                                      const char *scope);
    enum store_status (*token_list)(struct store *st,
                                    int (*cb)(const struct token_record *t, void *arg), void *arg);
    enum store_status (*token_delete_principal)(struct store *st, const char *principal);
    enum store_status (*grant_put)(struct store *st, const struct grant_record *g);
    enum store_status (*grant_get)(struct store *st, const char *user, const char *provider,
                                   struct grant_record *out);
    enum store_status (*grant_set_state)(struct store *st, const char *user, const char *provider,
                                         enum grant_state state, const char *reason, int64_t now);
    enum store_status (*grant_delete)(struct store *st, const char *user);
    enum store_status (*grant_list)(struct store *st,
                                    int (*cb)(const struct grant_record *g, void *arg), void *arg);
    enum store_status (*audit_add)(struct store *st, const struct audit_record *a); /* a->at set */
    enum store_status (*audit_list)(struct store *st, int64_t limit, const char *user,
                                    int (*cb)(const struct audit_record *a, void *arg), void *arg);
    enum store_status (*exec)(struct store *st, const char *what); /* BEGIN/COMMIT/ROLLBACK */
    enum store_status (*lockout_put)(struct store *st, const char *user, const char *address,
                                     int64_t until);
    enum store_status (*lockout_get)(struct store *st, const char *user, const char *address);
    enum store_status (*lockout_delete)(struct store *st, const char *user, const char *address,
                                        int64_t *deleted);
    enum store_status (*data_version)(struct store *st, int64_t *version);
    enum store_status (*lockout_list)(struct store *st, const char *user, int64_t now,
                                      int (*cb)(const char *address, int64_t until, void *arg),
                                      void *arg);
    enum store_status (*user_set_switches)(struct store *st, const char *name,
                                           unsigned switched_off, int64_t now);
    enum store_status (*mailbox_grant_put)(struct store *st, const struct mailbox_grant *g);
    enum store_status (*mailbox_grant_get)(struct store *st, const char *user, const char *mailbox,
                                           unsigned *protocols);
    enum store_status (*mailbox_grant_delete)(struct store *st, const char *user,
                                              const char *mailbox);
    enum store_status (*mailbox_grant_list)(struct store *st, const char *user,
                                            int (*cb)(const struct mailbox_grant *g, void *arg),
                                            void *arg);
    /* store_sqlite_logins.c */
    enum store_status (*login_events_add)(struct store *st, const struct login_event *ev, size_t n);
    enum store_status (*login_events_prune)(struct store *st, int64_t before, int64_t *deleted);
    enum store_status (*login_events_list)(struct store *st, const struct login_filter *f,
                                           int (*cb)(const struct login_event *e, void *arg),
                                           void *arg);
    enum store_status (*login_usage)(struct store *st, int64_t since,
                                     int (*cb)(const struct login_usage *u, void *arg), void *arg);
    /* store_sqlite_tlsrpt.c */
    enum store_status (*tlsrpt_add)(struct store *st, const struct tlsrpt_report *r, int64_t now,
                                    const char *source);
    enum store_status (*tlsrpt_policies)(struct store *st, int64_t since,
                                         int (*cb)(const struct tlsrpt_policy_sum *p, void *arg),
                                         void *arg);
    enum store_status (*tlsrpt_failures)(struct store *st, int64_t since,
                                         int (*cb)(const struct tlsrpt_failure_sum *f, void *arg),
                                         void *arg);
};

#define STORE_ERROR_MAX 512

/* Every backend's handle starts with this (backends embed it as their first member). */
struct store {
    const struct store_ops *ops;
    char last_error[STORE_ERROR_MAX];
};

/* Records a message for store_last_error(); returns STORE_ERROR for convenient tail calls. */
enum store_status store_set_error(struct store *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct store *store_sqlite_open(const char *state_dir, char *err, size_t errlen);

/* store_sqlite_lockout.c: the lockout table on the SQLite backend's connection. */
struct sqlite3;
struct sqlite3 *store_sqlite_db(struct store *st);
/* store_set_error() with "what: " and the connection's last SQLite message. */
enum store_status store_sqlite_error(struct store *st, const char *what);
/* For the rare statements prepared per call: sql prepared, a bound to ?1 and b (unless NULL) to
 * ?2; NULL on failure (store_sqlite_db's errmsg says why). */
struct sqlite3_stmt *sqlite_prepare_bound(struct store *st, const char *sql, const char *a,
                                          const char *b);
enum store_status sqlite_lockout_put(struct store *st, const char *user, const char *address,
                                     int64_t until);
enum store_status sqlite_lockout_get(struct store *st, const char *user, const char *address);
enum store_status sqlite_lockout_delete(struct store *st, const char *user, const char *address,
                                        int64_t *deleted);
enum store_status sqlite_data_version(struct store *st, int64_t *version);
enum store_status sqlite_lockout_list(struct store *st, const char *user, int64_t now,
                                      int (*cb)(const char *address, int64_t until, void *arg),
                                      void *arg);

/* store_sqlite_access.c: user switches and mailbox grants. */
enum store_status sqlite_user_set_switches(struct store *st, const char *name,
                                           unsigned switched_off, int64_t now);
enum store_status sqlite_mailbox_grant_put(struct store *st, const struct mailbox_grant *g);
enum store_status sqlite_mailbox_grant_get(struct store *st, const char *user, const char *mailbox,
                                           unsigned *protocols);
enum store_status sqlite_mailbox_grant_delete(struct store *st, const char *user,
                                              const char *mailbox);
enum store_status sqlite_mailbox_grant_list(struct store *st, const char *user,
                                            int (*cb)(const struct mailbox_grant *g, void *arg),
                                            void *arg);

/* store_sqlite_logins.c: the login audit. */
enum store_status sqlite_login_events_add(struct store *st, const struct login_event *ev, size_t n);
enum store_status sqlite_login_events_prune(struct store *st, int64_t before, int64_t *deleted);
enum store_status sqlite_login_events_list(struct store *st, const struct login_filter *f,
                                           int (*cb)(const struct login_event *e, void *arg),
                                           void *arg);
enum store_status sqlite_login_usage(struct store *st, int64_t since,
                                     int (*cb)(const struct login_usage *u, void *arg), void *arg);

/* store_sqlite_tlsrpt.c: TLS reports. */
enum store_status sqlite_tlsrpt_add(struct store *st, const struct tlsrpt_report *r, int64_t now,
                                    const char *source);
enum store_status sqlite_tlsrpt_policies(struct store *st, int64_t since,
                                         int (*cb)(const struct tlsrpt_policy_sum *p, void *arg),
                                         void *arg);
enum store_status sqlite_tlsrpt_failures(struct store *st, int64_t since,
                                         int (*cb)(const struct tlsrpt_failure_sum *f, void *arg),
                                         void *arg);

#endif
