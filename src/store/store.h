/* The store: local users, cached tokens, delegated authorizations and the audit log. A small
 * interface so that PostgreSQL can join SQLite for multi-node setups; callers never see SQL. */
#ifndef MG_STORE_H
#define MG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum store_status { STORE_OK = 0, STORE_NOT_FOUND = 1, STORE_EXISTS = 2, STORE_ERROR = -1 };

struct user_record {
    char *name;
    char *mailbox;
    char *provider;
    char *password_hash; /* Argon2id encoded string ($argon2id$v=19$...) */
    int64_t created_at;  /* unix seconds */
    int64_t updated_at;
    /* What `mailgate user set` switched off (USER_OFF_*). Kept as the switches that are off so
     * that 0, and every user from before the switches existed, has everything on; new users
     * get [defaults] from the CLI. */
    unsigned switched_off;
};

/* A protocol's bit in user_record.switched_off and mailbox_grant.protocols. */
#define USER_PROTO_BIT(proto) (1u << (unsigned)(proto))
#define USER_OFF_LOGIN (1u << 3) /* --enabled off: no login at all */
#define USER_PROTOS_ALL                                                                            \
    (USER_PROTO_BIT(MG_PROTO_IMAP) | USER_PROTO_BIT(MG_PROTO_POP3) | USER_PROTO_BIT(MG_PROTO_SMTP))

struct store;

/* Opens (and creates, with schema migrations) state_dir/mailgate.db. The directory is created
 * 0700 if missing. On error returns NULL and writes a message to err. */
struct store *store_open(const char *state_dir, char *err, size_t errlen);
void store_close(struct store **st);

enum store_status store_user_add(struct store *st, const struct user_record *u);
enum store_status store_user_get(struct store *st, const char *name, struct user_record *out);
enum store_status store_user_set_password(struct store *st, const char *name, const char *hash);
enum store_status store_user_delete(struct store *st, const char *name);
/* Calls cb for every user ordered by name; stops early when cb returns non-zero. */
enum store_status store_user_list(struct store *st,
                                  int (*cb)(const struct user_record *u, void *arg), void *arg);
const char *store_last_error(struct store *st);

/* Cached tokens, keyed by (provider, principal, scope). The value is an opaque sealed blob
 * (secretbox.h): the store never sees a plaintext token. */
struct token_record {
    char *provider;
    char *principal; /* "" for app-only tokens */
    char *scope;
    uint8_t *sealed;
    size_t sealed_len;
    int64_t expires_at; /* unix seconds */
    int64_t updated_at;
    /* The fingerprint of the credential the token was obtained with (token_fingerprint.h);
     * "" (or NULL when putting) for rows from before the store kept it. */
    char *credential;
};

/* Inserts or replaces the row. */
enum store_status store_token_put(struct store *st, const struct token_record *t);
/* Fills out (malloc'd copies; free with token_record_clear). */
enum store_status store_token_get(struct store *st, const char *provider, const char *principal,
                                  const char *scope, struct token_record *out);
enum store_status store_token_delete(struct store *st, const char *provider, const char *principal,
                                     const char *scope);
/* Calls cb for every token row (the record points into the store's memory, valid during the
 * callback only); stops early when cb returns non-zero. */
enum store_status store_token_list(struct store *st,
                                   int (*cb)(const struct token_record *t, void *arg), void *arg);
/* Transactions, for re-sealing every row at once (secrets rotate-key). */
enum store_status store_begin(struct store *st);
enum store_status store_commit(struct store *st);
void store_rollback(struct store *st);

void token_record_clear(struct token_record *t);
/* Every cached token of a principal ("user:NAME", compared without case), at every provider
 * and scope. NOT_FOUND when there was none. */
enum store_status store_token_delete_principal(struct store *st, const char *principal);

enum grant_state { GRANT_AUTHORIZED = 0, GRANT_NEEDS_AUTHORIZATION = 1 };

/* A user's delegated authorization at a provider: the refresh token, sealed (secretbox.h) with
 * associated data "refresh:PROVIDER:NAME" (NAME lower case, grant_store.h). The browser flow
 * (auth code + PKCE, a later issue) stores here too. One row per (user, provider); user names
 * compare without case, as in the users table. */
struct grant_record {
    char *user;
    char *provider;
    uint8_t *sealed; /* NULL when there is no refresh token (needs authorization) */
    size_t sealed_len;
    enum grant_state state;
    char *reason; /* why it needs authorization ("" when authorized) */
    int64_t updated_at;
};

/* Inserts or replaces the row in one statement: a crash leaves the old or the new refresh
 * token, never none. updated_at 0 means now. */
enum store_status store_grant_put(struct store *st, const struct grant_record *g);
/* Fills out (malloc'd copies; free with grant_record_clear). */
enum store_status store_grant_get(struct store *st, const char *user, const char *provider,
                                  struct grant_record *out);
/* GRANT_NEEDS_AUTHORIZATION also deletes the sealed refresh token (it is useless). NOT_FOUND
 * when the user has no grant at the provider. */
enum store_status store_grant_set_state(struct store *st, const char *user, const char *provider,
                                        enum grant_state state, const char *reason);
/* Every provider's grant of the user; NOT_FOUND when there was none. */
enum store_status store_grant_delete(struct store *st, const char *user);
/* Ordered by user and provider; the record is valid during the callback only; stops early when
 * cb returns non-zero. */
enum store_status store_grant_list(struct store *st,
                                   int (*cb)(const struct grant_record *g, void *arg), void *arg);
void grant_record_clear(struct grant_record *g); /* wipes the sealed blob */

/* The audit log: who was authorized, deauthorized, revoked, when. */
struct audit_record {
    int64_t id, at;                         /* at: unix seconds */
    char *event, *user, *provider, *detail; /* user, provider, detail may be NULL */
};

enum store_status store_audit_add(struct store *st, const char *event, const char *user,
                                  const char *provider, const char *detail);
/* Newest first; limit <= 0: all; user_or_null filters by user (without case). The record is
 * valid during the callback only; stops early when cb returns non-zero. */
enum store_status store_audit_list(struct store *st, int64_t limit, const char *user_or_null,
                                   int (*cb)(const struct audit_record *a, void *arg), void *arg);

/* Login lockouts (the broker's throttle.c decides them; `mailgate user unlock` lifts them): one
 * row per (user, client address without port), until = unix seconds. The broker notices a
 * change by another process (the CLI) through store_data_version(). */
enum store_status store_lockout_put(struct store *st, const char *user, const char *address,
                                    int64_t until);
/* STORE_OK when the row exists, STORE_NOT_FOUND when not. */
enum store_status store_lockout_get(struct store *st, const char *user, const char *address);
/* Deletes the user's rows (only address's when not NULL); *deleted = how many. */
enum store_status store_lockout_delete(struct store *st, const char *user,
                                       const char *address_or_null, int64_t *deleted);
/* A number that changes whenever another connection commits a change to the database. */
enum store_status store_data_version(struct store *st, int64_t *version);

/* Replaces the user's switches; NOT_FOUND when there is no such user. */
enum store_status store_user_set_switches(struct store *st, const char *name,
                                          unsigned switched_off);

/* Mailbox grants (`mailgate grant`): user may open mailbox (an address) over the protocols in
 * the mask (USER_PROTO_BIT: imap, pop3, smtp = sending as it). One row per (user, mailbox),
 * both compared without case. Not to be confused with grant_record: those are delegated
 * authorizations at an IdP. */
struct mailbox_grant {
    char *user;
    char *mailbox;
    unsigned protocols;
    int64_t created_at; /* 0 in put: now */
};

/* Inserts the grant, or replaces the protocols of an existing one. */
enum store_status store_mailbox_grant_put(struct store *st, const struct mailbox_grant *g);
/* *protocols of the grant; NOT_FOUND when there is none. */
enum store_status store_mailbox_grant_get(struct store *st, const char *user, const char *mailbox,
                                          unsigned *protocols);
/* The grant of mailbox, or with mailbox NULL every grant of user; NOT_FOUND when none. */
enum store_status store_mailbox_grant_delete(struct store *st, const char *user,
                                             const char *mailbox_or_null);
/* Ordered by user and mailbox, only user's with user_or_null; the record is valid during the
 * callback only; stops early when cb returns non-zero. */
enum store_status store_mailbox_grant_list(struct store *st, const char *user_or_null,
                                           int (*cb)(const struct mailbox_grant *g, void *arg),
                                           void *arg);

/* The user's lockouts still running at now (unix seconds), by address. */
enum store_status store_lockout_list(struct store *st, const char *user, int64_t now,
                                     int (*cb)(const char *address, int64_t until, void *arg),
                                     void *arg);

/* Frees the strings of a record (wiping the hash) and zeroes it. */
void user_record_clear(struct user_record *u);

#endif
