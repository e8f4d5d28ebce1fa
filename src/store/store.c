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

enum store_status store_token_put(struct store *st, const struct token_record *t)
{
    if (!t || !t->provider || !t->principal || !t->scope || !t->sealed)
        return store_set_error(st, "incomplete token record");
    struct token_record stamped = *t;
    if (!stamped.updated_at)
        stamped.updated_at = (int64_t)time(NULL);
    return st->ops->token_put(st, &stamped);
}

enum store_status store_token_get(struct store *st, const char *provider, const char *principal,
                                  const char *scope, struct token_record *out)
{
    memset(out, 0, sizeof *out);
    if (!provider || !principal || !scope)
        return store_set_error(st, "incomplete token key");
    return st->ops->token_get(st, provider, principal, scope, out);
}

enum store_status store_token_delete(struct store *st, const char *provider, const char *principal,
                                     const char *scope)
{
    if (!provider || !principal || !scope)
        return store_set_error(st, "incomplete token key");
    return st->ops->token_delete(st, provider, principal, scope);
}

enum store_status store_token_list(struct store *st,
                                   int (*cb)(const struct token_record *t, void *arg), void *arg)
{
    if (!cb)
        return store_set_error(st, "no callback");
    return st->ops->token_list(st, cb, arg);
}

enum store_status store_begin(struct store *st)
{
    return st->ops->exec(st, "BEGIN IMMEDIATE");
}

enum store_status store_commit(struct store *st)
{
    return st->ops->exec(st, "COMMIT");
}

void store_rollback(struct store *st)
{
    st->ops->exec(st, "ROLLBACK");
}

void token_record_clear(struct token_record *t)
{
    if (!t)
        return;
    free(t->provider);
    free(t->principal);
    free(t->scope);
    free(t->credential);
    if (t->sealed)
        mg_wipe(t->sealed, t->sealed_len);
    free(t->sealed);
    memset(t, 0, sizeof *t);
}

enum store_status store_token_delete_principal(struct store *st, const char *principal)
{
    if (!principal)
        return store_set_error(st, "no principal");
    return st->ops->token_delete_principal(st, principal);
}

enum store_status store_grant_put(struct store *st, const struct grant_record *g)
{
    if (!g || !g->user || !g->provider || (g->state == GRANT_AUTHORIZED && !g->sealed))
        return store_set_error(st, "incomplete authorization record");
    struct grant_record stamped = *g;
    if (!stamped.updated_at)
        stamped.updated_at = (int64_t)time(NULL);
    if (stamped.state == GRANT_NEEDS_AUTHORIZATION) {
        stamped.sealed = NULL;
        stamped.sealed_len = 0;
    }
    return st->ops->grant_put(st, &stamped);
}

enum store_status store_grant_get(struct store *st, const char *user, const char *provider,
                                  struct grant_record *out)
{
    memset(out, 0, sizeof *out);
    if (!user || !provider)
        return store_set_error(st, "incomplete authorization key");
    return st->ops->grant_get(st, user, provider, out);
}

enum store_status store_grant_set_state(struct store *st, const char *user, const char *provider,
                                        enum grant_state state, const char *reason)
{
    if (!user || !provider)
        return store_set_error(st, "incomplete authorization key");
    return st->ops->grant_set_state(st, user, provider, state, reason, (int64_t)time(NULL));
}

enum store_status store_grant_delete(struct store *st, const char *user)
{
    if (!user)
        return store_set_error(st, "no user name");
    return st->ops->grant_delete(st, user);
}

enum store_status store_grant_list(struct store *st,
                                   int (*cb)(const struct grant_record *g, void *arg), void *arg)
{
    if (!cb)
        return store_set_error(st, "no callback");
    return st->ops->grant_list(st, cb, arg);
}

void grant_record_clear(struct grant_record *g)
{
    if (!g)
        return;
    free(g->user);
    free(g->provider);
    free(g->reason);
    if (g->sealed)
        mg_wipe(g->sealed, g->sealed_len);
    free(g->sealed);
    memset(g, 0, sizeof *g);
}

enum store_status store_audit_add(struct store *st, const char *event, const char *user,
                                  const char *provider, const char *detail)
{
    if (!event)
        return store_set_error(st, "no audit event");
    struct audit_record a = {.at = (int64_t)time(NULL),
                             .event = (char *)event,
                             .user = (char *)user,
                             .provider = (char *)provider,
                             .detail = (char *)detail};
    return st->ops->audit_add(st, &a);
}

enum store_status store_audit_list(struct store *st, int64_t limit, const char *user_or_null,
                                   int (*cb)(const struct audit_record *a, void *arg), void *arg)
{
    if (!cb)
        return store_set_error(st, "no callback");
    return st->ops->audit_list(st, limit, user_or_null, cb, arg);
}

enum store_status store_lockout_put(struct store *st, const char *user, const char *address,
                                    int64_t until)
{
    return st->ops->lockout_put(st, user, address, until);
}

enum store_status store_lockout_get(struct store *st, const char *user, const char *address)
{
    return st->ops->lockout_get(st, user, address);
}

enum store_status store_lockout_delete(struct store *st, const char *user,
                                       const char *address_or_null, int64_t *deleted)
{
    int64_t ignored;
    return st->ops->lockout_delete(st, user, address_or_null, deleted ? deleted : &ignored);
}

enum store_status store_data_version(struct store *st, int64_t *version)
{
    return st->ops->data_version(st, version);
}

enum store_status store_lockout_list(struct store *st, const char *user, int64_t now,
                                     int (*cb)(const char *address, int64_t until, void *arg),
                                     void *arg)
{
    if (!user || !cb)
        return store_set_error(st, "no user name or callback");
    return st->ops->lockout_list(st, user, now, cb, arg);
}

enum store_status store_user_set_switches(struct store *st, const char *name, unsigned switched_off)
{
    if (!name)
        return store_set_error(st, "no user name");
    return st->ops->user_set_switches(st, name, switched_off, (int64_t)time(NULL));
}

enum store_status store_mailbox_grant_put(struct store *st, const struct mailbox_grant *g)
{
    if (!g || !g->user || !g->mailbox)
        return store_set_error(st, "incomplete mailbox grant");
    struct mailbox_grant stamped = *g;
    if (!stamped.created_at)
        stamped.created_at = (int64_t)time(NULL);
    return st->ops->mailbox_grant_put(st, &stamped);
}

enum store_status store_mailbox_grant_get(struct store *st, const char *user, const char *mailbox,
                                          unsigned *protocols)
{
    *protocols = 0;
    if (!user || !mailbox)
        return store_set_error(st, "no user or mailbox");
    return st->ops->mailbox_grant_get(st, user, mailbox, protocols);
}

enum store_status store_mailbox_grant_delete(struct store *st, const char *user,
                                             const char *mailbox_or_null)
{
    if (!user)
        return store_set_error(st, "no user name");
    return st->ops->mailbox_grant_delete(st, user, mailbox_or_null);
}

enum store_status store_mailbox_grant_list(struct store *st, const char *user_or_null,
                                           int (*cb)(const struct mailbox_grant *g, void *arg),
                                           void *arg)
{
    if (!cb)
        return store_set_error(st, "no callback");
    return st->ops->mailbox_grant_list(st, user_or_null, cb, arg);
}

enum store_status store_login_events_add(struct store *st, const struct login_event *ev, size_t n)
{
    return n == 0 ? STORE_OK : st->ops->login_events_add(st, ev, n);
}

enum store_status store_login_events_prune(struct store *st, int64_t before, int64_t *deleted)
{
    return st->ops->login_events_prune(st, before, deleted);
}

enum store_status store_login_events_list(struct store *st, const struct login_filter *f,
                                          int (*cb)(const struct login_event *e, void *arg),
                                          void *arg)
{
    if (!f || !cb)
        return store_set_error(st, "no filter or callback");
    return st->ops->login_events_list(st, f, cb, arg);
}

enum store_status store_login_usage(struct store *st, int64_t since,
                                    int (*cb)(const struct login_usage *u, void *arg), void *arg)
{
    if (!cb)
        return store_set_error(st, "no callback");
    return st->ops->login_usage(st, since, cb, arg);
}

enum store_status store_tlsrpt_add(struct store *st, const struct tlsrpt_report *r, int64_t now,
                                   const char *source)
{
    if (!r || !r->report_id || !r->report_id[0] || !source)
        return store_set_error(st, "no report, report-id or source");
    return st->ops->tlsrpt_add(st, r, now, source);
}

enum store_status store_tlsrpt_policies(struct store *st, int64_t since,
                                        int (*cb)(const struct tlsrpt_policy_sum *p, void *arg),
                                        void *arg)
{
    if (!cb)
        return store_set_error(st, "no callback");
    return st->ops->tlsrpt_policies(st, since, cb, arg);
}

enum store_status store_tlsrpt_failures(struct store *st, int64_t since,
                                        int (*cb)(const struct tlsrpt_failure_sum *f, void *arg),
                                        void *arg)
{
    if (!cb)
        return store_set_error(st, "no callback");
    return st->ops->tlsrpt_failures(st, since, cb, arg);
}
