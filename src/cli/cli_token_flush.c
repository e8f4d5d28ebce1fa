/* "mailgate token flush [--provider P] [--user NAME]": deletes stored access tokens (the
 * store's tokens table), all of them, one provider's, or the one a user's logins use (its
 * principal by the provider's flow, as the broker computes it: token_subject.h). Nothing is
 * asked of the IdP; refresh tokens (grants) stay.
 *
 * A running gateway follows: its broker notices that another process changed the store
 * (store_data_version) before it serves the next login, and drops every cached token whose
 * row has gone, so that login gets a new token. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_token.h"
#include "log.h"
#include "store.h"
#include "token_subject.h"
#include "util.h"

struct flush_args {
    const char *provider; /* NULL: every provider */
    const char *user;     /* NULL: every principal */
};

/* The rows to delete: collected first, deleted after the listing. */
struct flush_rows {
    const char *provider, *principal; /* filters; NULL matches all */
    struct token_record *rows;
    size_t n, cap;
};

/* argv[0] is "flush". */
static int parse_flush_args(int argc, char **argv, struct flush_args *a)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--provider", &missing)))
            a->provider = v;
        else if ((v = cli_option_value(argc, argv, &i, "--user", &missing)))
            a->user = v;
        else if (missing)
            return cli_usage_error("%s needs a value", argv[i]);
        else
            return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    return 0;
}

static int collect_row(const struct token_record *t, void *arg)
{
    struct flush_rows *f = arg;
    if ((f->provider && strcmp(t->provider, f->provider) != 0) ||
        (f->principal && strcmp(t->principal, f->principal) != 0))
        return 0;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->rows = mg_realloc(f->rows, f->cap * sizeof *f->rows);
    }
    f->rows[f->n++] = (struct token_record){.provider = mg_strdup(t->provider),
                                            .principal = mg_strdup(t->principal),
                                            .scope = mg_strdup(t->scope)};
    return 0;
}

static void forget_rows(struct flush_rows *f)
{
    for (size_t i = 0; i < f->n; i++)
        token_record_clear(&f->rows[i]);
    free(f->rows);
    f->rows = NULL;
    f->n = 0;
}

/* Deletes the collected rows in one transaction (and lets go of them). */
static int delete_rows(struct store *st, struct flush_rows *f)
{
    int begun = store_begin(st) == STORE_OK, ok = begun;
    for (size_t i = 0; ok && i < f->n; i++)
        ok = store_token_delete(st, f->rows[i].provider, f->rows[i].principal, f->rows[i].scope) !=
             STORE_ERROR;
    if (ok)
        ok = store_commit(st) == STORE_OK;
    else if (begun)
        store_rollback(st);
    if (!ok)
        fprintf(stderr, "mailgate: cannot delete the stored tokens: %s\n", store_last_error(st));
    forget_rows(f);
    return ok ? 0 : -1;
}

/* The principal of the user's tokens at their provider (or --provider) into *principal
 * (malloc'd; NULL when the provider's flow stores no tokens: flow = password). 0, or 1 after a
 * message (unknown user or provider). */
static int user_principal(const struct config *cfg, struct store *st, const struct flush_args *a,
                          char **principal, const char **provider)
{
    struct user_record u;
    *principal = NULL;
    if (cli_find_user(cfg, st, a->user, &u) != 0)
        return 1;
    const char *name = a->provider ? a->provider : u.provider;
    const struct provider_conf *p = config_provider(cfg, name);
    int rc = 0;
    if (!p) {
        fprintf(stderr, "mailgate: provider %s is not configured\n", name);
        rc = 1;
    } else if (p->flow == MG_FLOW_PASSWORD) {
        printf("provider %s uses flow = password: its tokens are never stored\n", p->name);
    } else {
        struct token_subject subj;
        *principal = token_subject_for(p, u.name, u.mailbox, NULL, 0, &subj);
        *provider = p->name;
        if (subj.grant == TOKEN_GRANT_CLIENT_CREDENTIALS)
            printf("user %s logs in with the app's token (%s), shared by every user of provider "
                   "%s\n",
                   u.name, *principal, p->name);
    }
    user_record_clear(&u);
    return rc;
}

static void report(size_t n, const char *provider, const char *principal)
{
    printf("deleted %zu stored token(s)", n);
    if (provider)
        printf(" of provider %s", provider);
    if (principal)
        printf(" of %s", principal);
    printf("\na running gateway drops its cached copies before its next login and asks the "
           "IdP for new tokens\n");
}

static int flush_tokens(const struct config *cfg, struct store *st, void *arg)
{
    const struct flush_args *a = arg;
    struct flush_rows f = {.provider = a->provider};
    char *principal = NULL;
    if (a->user) {
        if (user_principal(cfg, st, a, &principal, &f.provider) != 0)
            return 1;
        if (!principal) {
            report(0, f.provider, NULL);
            return 0;
        }
        f.principal = principal;
    }
    int listed = store_token_list(st, collect_row, &f) == STORE_OK;
    if (!listed)
        fprintf(stderr, "mailgate: cannot read the stored tokens: %s\n", store_last_error(st));
    size_t n = f.n;
    int deleted = listed && delete_rows(st, &f) == 0;
    if (!listed)
        forget_rows(&f);
    if (deleted)
        report(n, f.provider, principal);
    free(principal);
    return deleted ? 0 : 1;
}

int cli_token_flush(const char *config_path, int argc, char **argv)
{
    struct flush_args a = {0};
    int rc = parse_flush_args(argc, argv, &a);
    return rc ? rc : cli_run_with_store(config_path, flush_tokens, &a);
}
