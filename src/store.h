/* The store: local users now, tokens and audit later. A small interface so that PostgreSQL can
 * join SQLite for multi-node setups; callers never see SQL. */
#ifndef MG_STORE_H
#define MG_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_status { STORE_OK = 0, STORE_NOT_FOUND = 1, STORE_EXISTS = 2, STORE_ERROR = -1 };

struct user_record {
    char *name;
    char *mailbox;
    char *provider;
    char *password_hash; /* Argon2id encoded string ($argon2id$v=19$...) */
    int64_t created_at;  /* unix seconds */
    int64_t updated_at;
};

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

/* Frees the strings of a record (wiping the hash) and zeroes it. */
void user_record_clear(struct user_record *u);

#endif
