/* "mailgate secrets rotate-key": a new AES-256-GCM key for the secrets at rest. Every sealed row
 * of the store is re-sealed under the new key in one transaction; the key file is replaced
 * atomically (temporary file 0600, fsync, rename) and the old key is kept as KEYFILE.old until
 * the transaction has committed. Token rows that the current key cannot open are deleted (they
 * are cached tokens: the broker requests new ones); refresh tokens (grants) that it cannot open
 * are marked "needs authorization". Run it with the gateway stopped, or restart the
 * gateway afterwards: a running broker keeps the old key in memory. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "grant_store.h"
#include "secretbox.h"
#include "store.h"
#include "token_store.h"
#include "util.h"

struct row {
    struct token_record t; /* malloc'd copies */
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static int collect(const struct token_record *t, void *arg)
{
    struct rows *r = arg;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = mg_realloc(r->v, r->cap * sizeof *r->v);
    }
    struct token_record *c = &r->v[r->n++].t;
    c->provider = mg_strdup(t->provider);
    c->principal = mg_strdup(t->principal);
    c->scope = mg_strdup(t->scope);
    c->sealed = mg_malloc(t->sealed_len ? t->sealed_len : 1);
    memcpy(c->sealed, t->sealed, t->sealed_len);
    c->sealed_len = t->sealed_len;
    c->expires_at = t->expires_at;
    c->updated_at = t->updated_at;
    c->credential = mg_strdup(t->credential);
    return 0;
}

static void rows_free(struct rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        token_record_clear(&r->v[i].t);
    free(r->v);
}

/* The blob re-sealed under the new key (malloc'd, in *out): 1, or 0 when the old key cannot
 * open it, -1 when sealing fails. */
static int reseal_blob(const struct secretbox *old_box, const struct secretbox *new_box,
                       const char *ad, const uint8_t *sealed, size_t sealed_len, uint8_t **out,
                       size_t *out_len)
{
    size_t len = 0;
    char *plain = secretbox_open_blob(old_box, ad, sealed, sealed_len, &len);
    if (!plain)
        return 0;
    *out = secretbox_seal(new_box, ad, plain, len, out_len);
    mg_wipe(plain, len);
    free(plain);
    return *out ? 1 : -1;
}

/* Re-seals every row (inside the caller's transaction). Returns the number of rows re-sealed,
 * or -1 on a store error; *dropped counts the rows deleted because they could not be opened. */
static long reseal(struct store *st, const struct secretbox *old_box,
                   const struct secretbox *new_box, struct rows *rows, long *dropped)
{
    long done = 0;
    for (size_t i = 0; i < rows->n; i++) {
        struct token_record *t = &rows->v[i].t, n = *t;
        char *ad = token_store_context(t->provider, t->principal, t->scope);
        int opened =
            reseal_blob(old_box, new_box, ad, t->sealed, t->sealed_len, &n.sealed, &n.sealed_len);
        free(ad);
        enum store_status rc = opened == 1 ? store_token_put(st, &n)
                               : opened == 0
                                   ? store_token_delete(st, t->provider, t->principal, t->scope)
                                   : STORE_ERROR;
        done += opened == 1;
        *dropped += opened == 0;
        free(opened == 1 ? n.sealed : NULL);
        if (rc != STORE_OK) {
            fprintf(stderr, "mailgate: cannot re-encrypt a stored token: %s\n",
                    store_last_error(st));
            return -1;
        }
    }
    return done;
}

/* ---- grant rows (sealed refresh tokens) ---- */

struct grant_rows {
    struct grant_record *v;
    size_t n, cap;
};

static int collect_grant(const struct grant_record *g, void *arg)
{
    struct grant_rows *r = arg;
    if (!g->sealed)
        return 0; /* needs authorization: nothing sealed */
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = mg_realloc(r->v, r->cap * sizeof *r->v);
    }
    struct grant_record *c = &r->v[r->n++];
    *c = *g;
    c->user = mg_strdup(g->user);
    c->provider = mg_strdup(g->provider);
    c->reason = mg_strdup(g->reason);
    c->sealed = mg_malloc(g->sealed_len ? g->sealed_len : 1);
    memcpy(c->sealed, g->sealed, g->sealed_len);
    return 0;
}

static void grant_rows_free(struct grant_rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        grant_record_clear(&r->v[i]);
    free(r->v);
}

/* Like reseal() for the refresh tokens. One that the current key cannot open is not deleted
 * but marked: the user needs authorization again, and "user list" says so. */
static long reseal_grants(struct store *st, const struct secretbox *old_box,
                          const struct secretbox *new_box, struct grant_rows *rows, long *dropped)
{
    long done = 0;
    for (size_t i = 0; i < rows->n; i++) {
        struct grant_record *g = &rows->v[i], n = *g;
        char *ad = grant_store_context(g->provider, g->user);
        int opened =
            reseal_blob(old_box, new_box, ad, g->sealed, g->sealed_len, &n.sealed, &n.sealed_len);
        free(ad);
        enum store_status rc =
            opened == 1 ? store_grant_put(st, &n)
            : opened == 0
                ? store_grant_set_state(st, g->user, g->provider, GRANT_NEEDS_AUTHORIZATION,
                                        "the refresh token could not be decrypted at "
                                        "key rotation")
                : STORE_ERROR;
        done += opened == 1;
        *dropped += opened == 0;
        free(opened == 1 ? n.sealed : NULL);
        if (rc != STORE_OK) {
            fprintf(stderr, "mailgate: cannot re-encrypt a refresh token: %s\n",
                    store_last_error(st));
            return -1;
        }
    }
    return done;
}

/* Every sealed row, tokens and refresh tokens, inside the caller's transaction. Returns the
 * number re-sealed or -1; *dropped_tokens, *dropped_grants count the undecryptable ones. */
static long reseal_all(struct store *st, const struct secretbox *old_box,
                       const struct secretbox *new_box, long *dropped_tokens, long *dropped_grants)
{
    struct rows rows = {0};
    struct grant_rows grants = {0};
    long done = -1, grants_done = -1;
    if (store_token_list(st, collect, &rows) == STORE_OK &&
        store_grant_list(st, collect_grant, &grants) == STORE_OK) {
        done = reseal(st, old_box, new_box, &rows, dropped_tokens);
        if (done >= 0)
            grants_done = reseal_grants(st, old_box, new_box, &grants, dropped_grants);
    } else {
        fprintf(stderr, "mailgate: %s\n", store_last_error(st));
    }
    rows_free(&rows);
    grant_rows_free(&grants);
    return done < 0 || grants_done < 0 ? -1 : done + grants_done;
}

static int rotate(const struct config *cfg, struct store *st)
{
    const char *key_file = cfg->gateway.secret_key_file;
    char err[512] = "";
    struct secretbox *old_box = secretbox_open(key_file, err, sizeof err);
    if (!old_box) {
        fprintf(stderr, "mailgate: %s\n", err);
        return 1;
    }
    uint8_t old_key[SECRETBOX_KEY_LEN], new_key[SECRETBOX_KEY_LEN];
    char *read_back = NULL;
    size_t old_len = 0;
    read_back = mg_read_file(key_file, SECRETBOX_KEY_LEN, 0, &old_len);
    int code = 1;
    struct secretbox *new_box = NULL;
    char *old_path = mg_printf("%s.old", key_file);
    if (!read_back || old_len != SECRETBOX_KEY_LEN) {
        fprintf(stderr, "mailgate: cannot read %s: %s\n", key_file, strerror(errno));
        goto out;
    }
    memcpy(old_key, read_back, SECRETBOX_KEY_LEN);
    mg_random_bytes(new_key, sizeof new_key);
    new_box = secretbox_from_key(new_key);
    if (secretbox_write_key_file(old_path, old_key, err, sizeof err) != 0) {
        fprintf(stderr, "mailgate: cannot keep the old key: %s\n", err);
        goto out;
    }
    if (store_begin(st) != STORE_OK) {
        fprintf(stderr, "mailgate: %s\n", store_last_error(st));
        goto out;
    }
    long dropped = 0, dropped_grants = 0;
    long done = reseal_all(st, old_box, new_box, &dropped, &dropped_grants);
    if (done < 0) {
        store_rollback(st);
        goto out;
    }
    if (secretbox_write_key_file(key_file, new_key, err, sizeof err) != 0) {
        fprintf(stderr, "mailgate: %s\n", err);
        store_rollback(st);
        goto out;
    }
    if (store_commit(st) != STORE_OK) {
        fprintf(stderr, "mailgate: cannot commit: %s; restoring the old key\n",
                store_last_error(st));
        store_rollback(st);
        if (rename(old_path, key_file) != 0)
            fprintf(stderr, "mailgate: cannot restore %s from %s: %s\n", key_file, old_path,
                    strerror(errno));
        goto out;
    }
    unlink(old_path);
    printf("new key in %s; %ld stored secret(s) re-encrypted", key_file, done);
    if (dropped)
        printf(", %ld undecryptable cached token(s) dropped", dropped);
    if (dropped_grants)
        printf(", %ld undecryptable refresh token(s) dropped (those users need authorization "
               "again)",
               dropped_grants);
    printf("\na running gateway takes up the new key at its next use of the store\n");
    code = 0;
out:
    if (read_back) {
        mg_wipe(read_back, old_len);
        free(read_back);
    }
    mg_wipe(old_key, sizeof old_key);
    mg_wipe(new_key, sizeof new_key);
    secretbox_free(&old_box);
    secretbox_free(&new_box);
    free(old_path);
    return code;
}

int cli_secrets(const char *config_path, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "rotate-key") != 0)
        return cli_usage_error("usage: mailgate secrets rotate-key");
    struct config *cfg = cli_load_config(config_path, CONFIG_SKIP_SECRETS);
    if (!cfg)
        return 1;
    struct store *st = cli_open_store(cfg);
    int code = st ? rotate(cfg, st) : 1;
    store_close(&st);
    config_free(&cfg);
    return code;
}
