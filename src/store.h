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

/* Frees the strings of a record (wiping the hash) and zeroes it. */
void user_record_clear(struct user_record *u);

#endif
