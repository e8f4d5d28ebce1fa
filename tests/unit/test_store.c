/* Unit tests of the store (SQLite backend, in a temporary directory) and of password.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "password.h"
#include "store.h"
#include "util.h"

struct fixture {
    char dir[64];
    char *state_dir; /* dir/state: does not exist before the test, store_open creates it */
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = mg_calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/mg-test-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->state_dir = mg_printf("%s/state", f->dir);
    char err[256] = "";
    f->st = store_open(f->state_dir, err, sizeof err);
    if (!f->st) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(&f->st);
    char *cmd = mg_printf("rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(cmd);
    free(f->state_dir);
    free(f);
    return rc == 0 ? 0 : -1;
}

static enum store_status add_user(struct store *st, const char *name, const char *mailbox)
{
    struct user_record u = {.name = (char *)name,
                            .mailbox = (char *)mailbox,
                            .provider = "ms",
                            .password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"};
    return store_user_add(st, &u);
}

static void test_add_get(void **state)
{
    struct fixture *f = *state;
    time_t before = time(NULL);
    assert_int_equal(add_user(f->st, "Alice", "alice@contoso.com"), STORE_OK);
    struct user_record u;
    assert_int_equal(store_user_get(f->st, "Alice", &u), STORE_OK);
    assert_string_equal(u.name, "Alice");
    assert_string_equal(u.mailbox, "alice@contoso.com");
    assert_string_equal(u.provider, "ms");
    assert_string_equal(u.password_hash, "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA");
    assert_true(u.created_at >= before && u.created_at <= time(NULL));
    assert_int_equal(u.updated_at, u.created_at);
    user_record_clear(&u);
    assert_null(u.name);
    /* Case-insensitive (ASCII) lookup returns the name as it was added. */
    assert_int_equal(store_user_get(f->st, "aLiCe", &u), STORE_OK);
    assert_string_equal(u.name, "Alice");
    user_record_clear(&u);
    assert_int_equal(store_user_get(f->st, "bob", &u), STORE_NOT_FOUND);
    assert_null(u.name);
}

static void test_duplicate_is_case_insensitive(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(add_user(f->st, "Alice", "a@x"), STORE_OK);
    assert_int_equal(add_user(f->st, "ALICE", "b@x"), STORE_EXISTS);
    assert_int_equal(add_user(f->st, "alice", "c@x"), STORE_EXISTS);
    struct user_record u;
    assert_int_equal(store_user_get(f->st, "alice", &u), STORE_OK);
    assert_string_equal(u.mailbox, "a@x");
    user_record_clear(&u);
    /* Non-ASCII letters are not folded: these are different names. */
    assert_int_equal(add_user(f->st, "\xc3\xa9mile", "e@x"), STORE_OK);
    assert_int_equal(add_user(f->st, "\xc3\x89mile", "E@x"), STORE_OK);
}

struct collected {
    char names[8][32];
    size_t n;
    size_t stop_after; /* 0: never */
};

static int collect(const struct user_record *u, void *arg)
{
    struct collected *c = arg;
    assert_true(c->n < 8);
    mg_strlcpy(c->names[c->n++], u->name, sizeof c->names[0]);
    return c->stop_after && c->n >= c->stop_after;
}

static void test_list_order(void **state)
{
    struct fixture *f = *state;
    struct collected c = {0};
    assert_int_equal(store_user_list(f->st, collect, &c), STORE_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(add_user(f->st, "carol", "c@x"), STORE_OK);
    assert_int_equal(add_user(f->st, "Bob", "b@x"), STORE_OK);
    assert_int_equal(add_user(f->st, "alice", "a@x"), STORE_OK);
    assert_int_equal(add_user(f->st, "Dave", "d@x"), STORE_OK);
    assert_int_equal(store_user_list(f->st, collect, &c), STORE_OK);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.names[0], "alice");
    assert_string_equal(c.names[1], "Bob");
    assert_string_equal(c.names[2], "carol");
    assert_string_equal(c.names[3], "Dave");
    struct collected first_two = {.stop_after = 2};
    assert_int_equal(store_user_list(f->st, collect, &first_two), STORE_OK);
    assert_int_equal(first_two.n, 2);
    /* The statement was reset: a later call sees everything again. */
    struct collected again = {0};
    assert_int_equal(store_user_list(f->st, collect, &again), STORE_OK);
    assert_int_equal(again.n, 4);
}

static void test_passwd_and_delete(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(add_user(f->st, "alice", "a@x"), STORE_OK);
    assert_int_equal(store_user_set_password(f->st, "ALICE", "$argon2id$new"), STORE_OK);
    struct user_record u;
    assert_int_equal(store_user_get(f->st, "alice", &u), STORE_OK);
    assert_string_equal(u.password_hash, "$argon2id$new");
    assert_true(u.updated_at >= u.created_at);
    user_record_clear(&u);
    assert_int_equal(store_user_set_password(f->st, "nobody", "$argon2id$x"), STORE_NOT_FOUND);
    assert_int_equal(store_user_delete(f->st, "nobody"), STORE_NOT_FOUND);
    assert_int_equal(store_user_delete(f->st, "Alice"), STORE_OK);
    assert_int_equal(store_user_get(f->st, "alice", &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_delete(f->st, "alice"), STORE_NOT_FOUND);
}

static void test_reopen_persists_and_modes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(add_user(f->st, "alice", "a@x"), STORE_OK);
    store_close(&f->st);
    assert_null(f->st);
    char err[256];
    f->st = store_open(f->state_dir, err, sizeof err);
    assert_non_null(f->st);
    struct user_record u;
    assert_int_equal(store_user_get(f->st, "alice", &u), STORE_OK);
    assert_string_equal(u.mailbox, "a@x");
    user_record_clear(&u);

    struct stat st;
    assert_int_equal(stat(f->state_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char *db = mg_printf("%s/mailgate.db", f->state_dir);
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A database file someone loosened is tightened again on open. */
    assert_int_equal(chmod(db, 0644), 0);
    store_close(&f->st);
    f->st = store_open(f->state_dir, err, sizeof err);
    assert_non_null(f->st);
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(db);
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    char *file = mg_printf("%s/plainfile", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_null(store_open(file, err, sizeof err));
    assert_non_null(strstr(err, "is not a directory"));
    char *deep = mg_printf("%s/missing/parent", f->dir);
    assert_null(store_open(deep, err, sizeof err));
    assert_non_null(strstr(err, "cannot create"));
    free(deep);
    free(file);
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    store_close(&f->st);
    char *cmd =
        mg_printf("sqlite3 '%s/mailgate.db' 'PRAGMA user_version = 99' 2>/dev/null", f->state_dir);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0)
        skip(); /* no sqlite3 shell */
    char err[256] = "";
    assert_null(store_open(f->state_dir, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
}

/* ---- tokens ---- */

static int count_tokens(const struct token_record *t, void *arg)
{
    (void)t;
    (*(int *)arg)++;
    return 0;
}

static void test_tokens(void **state)
{
    struct fixture *f = *state;
    uint8_t blob[] = {1, 2, 3, 0, 5, 6};
    struct token_record t = {.provider = "ms",
                             .principal = "",
                             .scope = "https://outlook.office365.com/.default",
                             .sealed = blob,
                             .sealed_len = sizeof blob,
                             .expires_at = 2000000000};
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    struct token_record got;
    assert_int_equal(store_token_get(f->st, "ms", "", t.scope, &got), STORE_OK);
    assert_int_equal(got.sealed_len, sizeof blob);
    assert_memory_equal(got.sealed, blob, sizeof blob);
    assert_int_equal(got.expires_at, 2000000000);
    assert_true(got.updated_at > 0);
    assert_string_equal(got.scope, t.scope);
    assert_string_equal(got.credential, ""); /* none given: as for rows from before */
    token_record_clear(&got);
    assert_null(got.sealed);
    /* Replace, now with the credential's fingerprint. */
    blob[0] = 9;
    t.expires_at = 2000000001;
    t.credential = "0123456789abcdef0123456789abcdef";
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    assert_int_equal(store_token_get(f->st, "ms", "", t.scope, &got), STORE_OK);
    assert_int_equal(got.sealed[0], 9);
    assert_int_equal(got.expires_at, 2000000001);
    assert_string_equal(got.credential, t.credential);
    token_record_clear(&got);
    /* Another principal is another row. */
    t.principal = "alice";
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    int n = 0;
    assert_int_equal(store_token_list(f->st, count_tokens, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_token_get(f->st, "ms", "bob", t.scope, &got), STORE_NOT_FOUND);
    assert_int_equal(store_token_delete(f->st, "ms", "alice", t.scope), STORE_OK);
    assert_int_equal(store_token_delete(f->st, "ms", "alice", t.scope), STORE_NOT_FOUND);
    /* A rolled-back transaction leaves no trace; a committed one persists after reopening. */
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_token_delete(f->st, "ms", "", t.scope), STORE_OK);
    store_rollback(f->st);
    assert_int_equal(store_begin(f->st), STORE_OK);
    t.principal = "carol";
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    store_close(&f->st);
    char err[256] = "";
    f->st = store_open(f->state_dir, err, sizeof err);
    assert_non_null(f->st);
    n = 0;
    assert_int_equal(store_token_list(f->st, count_tokens, &n), STORE_OK);
    assert_int_equal(n, 2);
    t.sealed = NULL;
    assert_int_equal(store_token_put(f->st, &t), STORE_ERROR);
}

/* ---- grants and audit ---- */

static int collect_grant_users(const struct grant_record *g, void *arg)
{
    char *out = arg;
    strcat(out, g->user);
    strcat(out, g->state == GRANT_AUTHORIZED ? "+" : "-");
    strcat(out, g->provider);
    strcat(out, " ");
    return 0;
}

static void test_grants(void **state)
{
    struct fixture *f = *state;
    uint8_t blob[] = {7, 0, 7, 7};
    struct grant_record g = {.user = "Alice",
                             .provider = "entra",
                             .sealed = blob,
                             .sealed_len = sizeof blob,
                             .state = GRANT_AUTHORIZED};
    assert_int_equal(store_grant_put(f->st, &g), STORE_OK);
    struct grant_record got;
    /* User names compare without case, as in the users table. */
    assert_int_equal(store_grant_get(f->st, "alice", "entra", &got), STORE_OK);
    assert_int_equal(got.sealed_len, sizeof blob);
    assert_memory_equal(got.sealed, blob, sizeof blob);
    assert_int_equal(got.state, GRANT_AUTHORIZED);
    assert_string_equal(got.reason, "");
    assert_true(got.updated_at > 0);
    grant_record_clear(&got);
    assert_int_equal(store_grant_get(f->st, "alice", "google", &got), STORE_NOT_FOUND);
    /* Replace: still one row, the new token. */
    blob[0] = 8;
    g.user = "alice";
    assert_int_equal(store_grant_put(f->st, &g), STORE_OK);
    char listed[256] = "";
    assert_int_equal(store_grant_list(f->st, collect_grant_users, listed), STORE_OK);
    assert_string_equal(listed, "alice+entra "); /* the new spelling */
    assert_int_equal(store_grant_get(f->st, "ALICE", "entra", &got), STORE_OK);
    assert_int_equal(got.sealed[0], 8);
    grant_record_clear(&got);
    /* Needs authorization: the useless refresh token goes. */
    assert_int_equal(store_grant_set_state(f->st, "alice", "entra", GRANT_NEEDS_AUTHORIZATION,
                                           "invalid_grant: AADSTS50173: revoked"),
                     STORE_OK);
    assert_int_equal(store_grant_get(f->st, "alice", "entra", &got), STORE_OK);
    assert_int_equal(got.state, GRANT_NEEDS_AUTHORIZATION);
    assert_null(got.sealed);
    assert_int_equal(got.sealed_len, 0);
    assert_string_equal(got.reason, "invalid_grant: AADSTS50173: revoked");
    grant_record_clear(&got);
    assert_int_equal(
        store_grant_set_state(f->st, "nobody", "entra", GRANT_NEEDS_AUTHORIZATION, "x"),
        STORE_NOT_FOUND);
    /* An authorized grant without a token is refused. */
    g.sealed = NULL;
    assert_int_equal(store_grant_put(f->st, &g), STORE_ERROR);
    g.sealed = blob;
    g.user = "bob";
    assert_int_equal(store_grant_put(f->st, &g), STORE_OK);
    g.provider = "google";
    assert_int_equal(store_grant_put(f->st, &g), STORE_OK);
    listed[0] = '\0';
    assert_int_equal(store_grant_list(f->st, collect_grant_users, listed), STORE_OK);
    assert_string_equal(listed, "alice-entra bob+entra bob+google ");
    /* Delete: every provider of the user. */
    assert_int_equal(store_grant_delete(f->st, "BOB"), STORE_OK);
    assert_int_equal(store_grant_delete(f->st, "bob"), STORE_NOT_FOUND);
    listed[0] = '\0';
    assert_int_equal(store_grant_list(f->st, collect_grant_users, listed), STORE_OK);
    assert_string_equal(listed, "alice-entra ");
}

static void test_token_delete_principal(void **state)
{
    struct fixture *f = *state;
    uint8_t blob[] = {1};
    struct token_record t = {.provider = "ms",
                             .principal = "user:alice",
                             .scope = "a",
                             .sealed = blob,
                             .sealed_len = 1,
                             .expires_at = 1};
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    t.scope = "b";
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    t.provider = "google";
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    t.principal = "user:alicex";
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    t.principal = "";
    assert_int_equal(store_token_put(f->st, &t), STORE_OK);
    assert_int_equal(store_token_delete_principal(f->st, "user:Alice"), STORE_OK);
    int n = 0;
    assert_int_equal(store_token_list(f->st, count_tokens, &n), STORE_OK);
    assert_int_equal(n, 2); /* user:alicex and the app-only one stay */
    assert_int_equal(store_token_delete_principal(f->st, "user:alice"), STORE_NOT_FOUND);
}

struct audit_seen {
    char text[512];
    int64_t last_id;
    int n;
};

static int collect_audit(const struct audit_record *a, void *arg)
{
    struct audit_seen *seen = arg;
    if (seen->n++ > 0)
        assert_true(a->id < seen->last_id); /* newest first */
    seen->last_id = a->id;
    assert_true(a->at > 0);
    char line[128];
    snprintf(line, sizeof line, "%s/%s/%s/%s;", a->event, a->user ? a->user : "-",
             a->provider ? a->provider : "-", a->detail ? a->detail : "-");
    strcat(seen->text, line);
    return 0;
}

static void test_audit(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_audit_add(f->st, "authorized", "alice", "entra", "device code"),
                     STORE_OK);
    assert_int_equal(store_audit_add(f->st, "authorized", "bob", "entra", NULL), STORE_OK);
    assert_int_equal(store_audit_add(f->st, "refresh_token_revoked", "Alice", "entra", "why"),
                     STORE_OK);
    assert_int_equal(store_audit_add(f->st, "key_rotated", NULL, NULL, NULL), STORE_OK);
    assert_int_equal(store_audit_add(f->st, NULL, "x", NULL, NULL), STORE_ERROR);
    struct audit_seen seen = {0};
    assert_int_equal(store_audit_list(f->st, 0, NULL, collect_audit, &seen), STORE_OK);
    assert_string_equal(seen.text, "key_rotated/-/-/-;refresh_token_revoked/Alice/entra/why;"
                                   "authorized/bob/entra/-;authorized/alice/entra/device code;");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(store_audit_list(f->st, 2, NULL, collect_audit, &seen), STORE_OK);
    assert_string_equal(seen.text, "key_rotated/-/-/-;refresh_token_revoked/Alice/entra/why;");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(store_audit_list(f->st, -1, "ALICE", collect_audit, &seen), STORE_OK);
    assert_string_equal(
        seen.text, "refresh_token_revoked/Alice/entra/why;authorized/alice/entra/device code;");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(store_audit_list(f->st, 1, "alice", collect_audit, &seen), STORE_OK);
    assert_int_equal(seen.n, 1);
}

/* A database written by the previous release (schema version 2, built here with its SQL) is
 * migrated on open: its users and tokens stay, grants and audit work. */
static void test_migration_from_version_2(void **state)
{
    struct fixture *f = *state;
    store_close(&f->st);
    char *old_dir = mg_printf("%s/old", f->dir);
    assert_int_equal(mkdir(old_dir, 0700), 0);
    char *cmd = mg_printf(
        "sqlite3 '%s/mailgate.db' \"CREATE TABLE users (name TEXT NOT NULL PRIMARY KEY COLLATE "
        "NOCASE, mailbox TEXT NOT NULL, provider TEXT NOT NULL, password_hash TEXT NOT NULL, "
        "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL); PRAGMA user_version = 1; "
        "CREATE TABLE tokens (provider TEXT NOT NULL, principal TEXT NOT NULL, scope TEXT NOT "
        "NULL, sealed BLOB NOT NULL, expires_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
        "PRIMARY KEY (provider, principal, scope)); PRAGMA user_version = 2; "
        "INSERT INTO users VALUES ('olduser', 'old@example.test', 'ms', '\\$argon2id\\$x', 1, 2); "
        "INSERT INTO tokens VALUES ('ms', '', 's', x'0102', 3, 4);\"",
        old_dir);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0) {
        free(old_dir);
        skip(); /* no sqlite3 shell */
    }
    char err[256] = "";
    f->st = store_open(old_dir, err, sizeof err);
    free(old_dir);
    assert_non_null(f->st);
    struct user_record u;
    assert_int_equal(store_user_get(f->st, "OLDUSER", &u), STORE_OK);
    assert_string_equal(u.mailbox, "old@example.test");
    assert_int_equal(u.updated_at, 2);
    user_record_clear(&u);
    int n = 0;
    assert_int_equal(store_token_list(f->st, count_tokens, &n), STORE_OK);
    assert_int_equal(n, 1);
    uint8_t blob[] = {5};
    struct grant_record g = {.user = "olduser", .provider = "ms", .sealed = blob, .sealed_len = 1};
    assert_int_equal(store_grant_put(f->st, &g), STORE_OK);
    assert_int_equal(store_audit_add(f->st, "authorized", "olduser", "ms", NULL), STORE_OK);
    struct audit_seen seen = {0};
    assert_int_equal(store_audit_list(f->st, 0, NULL, collect_audit, &seen), STORE_OK);
    assert_int_equal(seen.n, 1);
}

/* ---- passwords ---- */

static void test_password_hash_verify(void **state)
{
    (void)state;
    char hash[PASSWORD_HASH_MAX], hash2[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("correct horse", 13, hash, sizeof hash), 0);
    assert_int_equal(strncmp(hash, "$argon2id$v=19$m=65536,t=3,p=1$", 31), 0);
    assert_int_equal(password_verify(hash, "correct horse", 13), 1);
    assert_int_equal(password_verify(hash, "correct horsE", 13), 0);
    assert_int_equal(password_verify(hash, "correct hors", 12), 0);
    assert_int_equal(password_verify(hash, "", 0), 0);
    /* Same password, new salt: a different string that verifies too. */
    assert_int_equal(password_hash("correct horse", 13, hash2, sizeof hash2), 0);
    assert_string_not_equal(hash, hash2);
    assert_int_equal(password_verify(hash2, "correct horse", 13), 1);
    /* Embedded NUL bytes count. */
    assert_int_equal(password_hash("a\0b", 3, hash, sizeof hash), 0);
    assert_int_equal(password_verify(hash, "a\0b", 3), 1);
    assert_int_equal(password_verify(hash, "a", 1), 0);
    /* Too small an output buffer fails cleanly. */
    assert_int_equal(password_hash("x", 1, hash, 20), -1);
}

static void test_password_verify_garbage(void **state)
{
    (void)state;
    static const char *const garbage[] = {
        "", "plaintext", "$argon2i$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
        "$argon2id$v=19$m=65536,t=3,p=1$", "$argon2id$v=19$m=65536,t=3,p=1$!!!$!!!",
        /* absurd cost parameters are refused before any memory is allocated */
        "$argon2id$v=19$m=4194304,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2id$v=19$m=65536,t=100000,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        assert_int_equal(password_verify(garbage[i], "pw", 2), -1);
    assert_int_equal(password_verify(NULL, "pw", 2), -1);
}

static void test_password_generate(void **state)
{
    (void)state;
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";
    char a[64], b[64];
    int seen[256] = {0};
    for (int round = 0; round < 200; round++) {
        password_generate(a, sizeof a);
        password_generate(b, sizeof b);
        assert_int_equal(strlen(a), 24);
        assert_int_equal(strspn(a, alphabet), 24);
        assert_string_not_equal(a, b);
        for (const char *p = a; *p; p++)
            seen[(unsigned char)*p]++;
    }
    /* 4800 draws over 55 symbols: every symbol shows up (each misses with p < 1e-36). */
    for (const char *p = alphabet; *p; p++)
        assert_true(seen[(unsigned char)*p] > 0);
    char small[5];
    password_generate(small, sizeof small);
    assert_int_equal(strlen(small), 4);
}

/* Lockouts: written by the broker, deleted by `user unlock` in another process; the broker's
 * connection sees the change as a new data_version. */
static void test_lockouts_and_data_version(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct store *cli = store_open(f->state_dir, err, sizeof err);
    assert_non_null(cli);
    int64_t v0, v1, v2, deleted = -1;
    assert_int_equal(store_lockout_put(f->st, "bob", "10.0.0.1", 4000000000), STORE_OK);
    assert_int_equal(store_lockout_put(f->st, "bob", "10.0.0.2", 4000000000), STORE_OK);
    assert_int_equal(store_lockout_get(cli, "BOB", "10.0.0.1"), STORE_OK);
    assert_int_equal(store_lockout_get(cli, "bob", "10.0.0.3"), STORE_NOT_FOUND);
    assert_int_equal(store_data_version(f->st, &v0), STORE_OK);
    assert_int_equal(store_data_version(f->st, &v1), STORE_OK);
    assert_true(v0 == v1); /* nothing changed */
    assert_int_equal(store_lockout_delete(cli, "Bob", "10.0.0.1", &deleted), STORE_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(store_data_version(f->st, &v2), STORE_OK);
    assert_true(v2 != v1); /* another connection committed */
    assert_int_equal(store_lockout_get(f->st, "bob", "10.0.0.1"), STORE_NOT_FOUND);
    assert_int_equal(store_lockout_delete(cli, "bob", NULL, &deleted), STORE_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(store_lockout_get(f->st, "bob", "10.0.0.2"), STORE_NOT_FOUND);
    store_close(&cli);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_is_case_insensitive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passwd_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_persists_and_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_delete_principal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_version_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockouts_and_data_version, setup, teardown),
        cmocka_unit_test(test_password_hash_verify),
        cmocka_unit_test(test_password_verify_garbage),
        cmocka_unit_test(test_password_generate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
