/* check-config's word on the cached tokens: for each provider whose credential (client secret,
 * certificate, service account key) changed since a cached token was obtained, one line that
 * says so and how to test the new credential. The gateway itself no longer serves such a token
 * (token.c, token_store.c), so a wrong new secret shows at the next login; this says it
 * before. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "token_fingerprint.h"
#include "util.h"

struct stale {
    const struct provider_conf *p;
    char current[TOKEN_FINGERPRINT_SIZE];
    size_t count;   /* cached tokens obtained with another credential */
    int64_t latest; /* when the newest of them was obtained */
};

/* Rows of another scope are never served, and rows from before fingerprints were kept ("")
 * cannot tell. */
static int note_row(const struct token_record *t, void *arg)
{
    struct stale *s = arg;
    const char *scope = s->p->scope ? s->p->scope : "";
    if (strcmp(t->provider, s->p->name) != 0 || strcmp(t->scope, scope) != 0 || !t->credential[0] ||
        strcmp(t->credential, s->current) == 0)
        return 0;
    s->count++;
    if (t->updated_at > s->latest)
        s->latest = t->updated_at;
    return 0;
}

static void print_stale(const struct stale *s)
{
    const struct provider_conf *p = s->p;
    char at[32];
    cli_iso8601_utc(s->latest, at, sizeof at);
    printf("  provider %s: the %s changed since ", p->name, token_credential_kind(p));
    if (s->count == 1)
        printf("the cached token was obtained at %s", at);
    else
        printf("%zu cached tokens were obtained (the latest at %s)", s->count, at);
    if (p->flow == MG_FLOW_CLIENT_CREDENTIALS)
        printf("; run `mailgate token get --fresh --provider %s` to test the new one\n", p->name);
    else
        printf("; run `mailgate token get --fresh --user NAME` with one of its users to test the "
               "new one\n");
}

static int store_exists(const char *state_dir)
{
    char *path = mg_printf("%s/mailgate.db", state_dir);
    struct stat st;
    int exists = stat(path, &st) == 0;
    free(path);
    return exists;
}

void cli_print_changed_credentials(const struct config *cfg)
{
    if (!store_exists(cfg->gateway.state_dir))
        return; /* nothing cached yet, and check-config creates no store */
    char err[512] = "";
    struct store *st = store_open(cfg->gateway.state_dir, err, sizeof err);
    if (!st) {
        printf("  cached tokens: not checked (%s)\n", err);
        return;
    }
    for (size_t i = 0; i < cfg->n_providers; i++) {
        struct stale s = {.p = &cfg->providers[i]};
        token_fingerprint(s.p, s.current);
        if (store_token_list(st, note_row, &s) != STORE_OK)
            printf("  cached tokens: not checked (%s)\n", store_last_error(st));
        else if (s.count)
            print_stale(&s);
    }
    store_close(&st);
}
