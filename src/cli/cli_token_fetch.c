/* The token half of "mailgate token get" and "mailgate token test" (see cli_token.h). */
#include "cli_token.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "aadsts.h"
#include "cli.h"
#include "log.h"
#include "secretbox.h"
#include "token_store.h"
#include "token_subject.h"
#include "util.h"

#define DEADLINE_SLACK_MS 2000 /* beyond the configured token_timeout */

/* ---- context ---- */

static const struct provider_conf *choose_provider(const struct config *cfg, const char *wanted)
{
    if (wanted) {
        const struct provider_conf *p = config_provider(cfg, wanted);
        if (!p)
            fprintf(stderr, "mailgate: unknown provider '%s'\n", wanted);
        return p;
    }
    if (cfg->n_providers == 1)
        return &cfg->providers[0];
    fprintf(stderr, "mailgate: %zu providers are configured; choose one with --provider:",
            cfg->n_providers);
    for (size_t i = 0; i < cfg->n_providers; i++)
        fprintf(stderr, " %s", cfg->providers[i].name);
    fputc('\n', stderr);
    return NULL;
}

/* The named user and its provider (which --provider, when given, must name). */
static int find_user(struct cli_token_ctx *c, const struct cli_token_opts *o)
{
    if (cli_find_user(c->cfg, c->st, o->user, &c->user) != 0)
        return 1;
    c->p = config_provider(c->cfg, c->user.provider);
    if (!c->p) {
        fprintf(stderr, "mailgate: the provider '%s' of user %s is not configured\n",
                c->user.provider, c->user.name);
        return 1;
    }
    if (o->provider && strcmp(o->provider, c->p->name) != 0)
        return cli_usage_error("user %s belongs to provider %s, not %s", c->user.name, c->p->name,
                               o->provider);
    return 0;
}

static int find_provider(struct cli_token_ctx *c, const struct cli_token_opts *o)
{
    c->p = choose_provider(c->cfg, o->provider);
    if (!c->p)
        return 1;
    if (c->p->flow != MG_FLOW_CLIENT_CREDENTIALS)
        return cli_usage_error("provider %s uses flow = %s: its tokens are per user; name one "
                               "with --user NAME",
                               c->p->name, mg_flow_name(c->p->flow));
    return 0;
}

int cli_token_open(const char *config_path, const struct cli_token_opts *o, struct cli_token_ctx *c)
{
    memset(c, 0, sizeof *c);
    c->cfg = cli_load_config(config_path, CONFIG_LOAD_SECRETS);
    if (!c->cfg)
        return 1;
    log_init("cli", MG_LOG_ERROR); /* outcomes are reported by the commands, not as log lines */
    c->st = cli_open_store(c->cfg);
    if (!c->st)
        return 1;
    char err[512] = "";
    c->box = secretbox_open(c->cfg->gateway.secret_key_file, err, sizeof err);
    if (!c->box) {
        fprintf(stderr, "mailgate: %s\n", err);
        return 1;
    }
    int rc = o->user ? find_user(c, o) : find_provider(c, o);
    if (rc != 0 || c->p->flow != MG_FLOW_PASSWORD)
        return rc;
    if (!o->password_stdin)
        return cli_usage_error("provider %s uses flow = password, which needs --password-stdin "
                               "(the user's password at the provider)",
                               c->p->name);
    return cli_read_password_stdin(c->password, sizeof c->password, &c->password_len) == 0 ? 0 : 1;
}

void cli_token_close(struct cli_token_ctx *c)
{
    mg_wipe(c->password, sizeof c->password);
    user_record_clear(&c->user);
    secretbox_free(&c->box);
    store_close(&c->st);
    config_free(&c->cfg);
}

/* ---- one request on a private loop ---- */

struct fetch {
    struct event_base *base;
    bool done;
    struct cli_token *t;
};

static void on_token(const struct token_result *res, void *arg)
{
    struct fetch *f = arg;
    f->done = true;
    f->t->status = res->status;
    if (res->status == TOKEN_OK) {
        f->t->token = mg_strndup(res->access_token, res->token_len);
        f->t->len = res->token_len;
    }
    mg_strlcpy(f->t->reason, res->reason ? res->reason : "", sizeof f->t->reason);
    event_base_loopbreak(f->base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void wait_for(struct fetch *f, uint64_t timeout_ms)
{
    uint64_t ms = timeout_ms + DEADLINE_SLACK_MS;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};
    struct event *deadline = evtimer_new(f->base, on_deadline, f->base);
    evtimer_add(deadline, &tv);
    event_base_dispatch(f->base);
    event_free(deadline);
}

/* Asks the token client (with the store attached) and waits at most token_timeout. */
static void request(struct cli_token_ctx *c, const struct token_subject *subj, struct cli_token *t,
                    bool fresh)
{
    uint64_t timeout_ms = c->cfg->gateway.token_timeout_ms;
    struct fetch f = {.base = event_base_new(), .t = t};
    struct token_client *tc = f.base ? token_client_new(f.base, timeout_ms) : NULL;
    if (!tc) {
        t->status = TOKEN_TEMPFAIL;
        mg_strlcpy(t->reason, "cannot set up the token client", sizeof t->reason);
        if (f.base)
            event_base_free(f.base);
        return;
    }
    struct token_store *ts = fresh ? token_store_attach_unseeded(tc, c->st, c->box)
                                   : token_store_attach(tc, c->cfg, c->st, c->box);
    struct token_wait *w = token_get_for(tc, c->p, subj, on_token, &f);
    /* A fresh client has no backoff: an answer before token_get_for returns is the cache's. */
    t->cached = f.done && t->status == TOKEN_OK;
    if (!f.done)
        wait_for(&f, timeout_ms);
    if (!f.done) {
        token_wait_cancel(w);
        t->status = TOKEN_TEMPFAIL;
        snprintf(t->reason, sizeof t->reason, "no answer from the token endpoint within %llu ms",
                 (unsigned long long)timeout_ms);
    }
    token_store_detach(&ts);
    token_client_free(&tc);
    event_base_free(f.base);
}

/* The expiry of the stored row, if the token is stored (password tokens never are). */
static int64_t stored_expiry(struct cli_token_ctx *c, const char *principal)
{
    struct token_record rec = {0};
    int64_t at = 0;
    if (store_token_get(c->st, c->p->name, principal, c->p->scope ? c->p->scope : "", &rec) ==
        STORE_OK)
        at = rec.expires_at;
    token_record_clear(&rec);
    return at;
}

void cli_token_fetch(struct cli_token_ctx *c, struct cli_token *t, bool fresh)
{
    memset(t, 0, sizeof *t);
    struct token_subject subj;
    char *principal =
        token_subject_for(c->p, c->user.name, c->user.mailbox, c->password, c->password_len, &subj);
    subj.principal = principal;
    mg_strlcpy(t->principal, principal, sizeof t->principal);
    request(c, &subj, t, fresh);
    if (t->status == TOKEN_OK)
        t->expires_at = stored_expiry(c, principal);
    free(principal);
}

void cli_token_clear(struct cli_token *t)
{
    if (t->token) {
        mg_wipe(t->token, t->len);
        free(t->token);
    }
    t->token = NULL;
    t->len = 0;
}

/* ---- explaining a failure ---- */

void cli_token_explain_failure(const struct cli_token_ctx *c, const struct cli_token *t, FILE *out,
                               const char *prefix)
{
    const char *name = c->user.name;
    if (t->status == TOKEN_NEEDS_AUTH) {
        fprintf(out, "%sno token for user %s at provider %s: %s\n", prefix, name, c->p->name,
                t->reason);
        fprintf(out,
                "%suser %s needs authorization: run mailgate user authorize %s --device-code\n",
                prefix, name, name);
        return;
    }
    if (t->status == TOKEN_DENIED)
        fprintf(out, "%sprovider %s refused user %s: %s\n", prefix, c->p->name, name, t->reason);
    else
        fprintf(out, "%sno token from provider %s: %s\n", prefix, c->p->name, t->reason);
    const char *hint = aadsts_hint_for_text(t->reason);
    if (hint && !strstr(t->reason, hint))
        fprintf(out, "%sfix: %s\n", prefix, hint);
    if (t->status == TOKEN_TEMPFAIL)
        fprintf(out, "%sthis looks temporary: try again later\n", prefix);
}

void cli_print_field(FILE *out, const char *label, const char *value)
{
    fprintf(out, "%s: ", label);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
    fputc('\n', out);
}
