/* "mailgate token get --provider P [--user NAME] [--raw]": gets a token the way the broker does
 * (same token client, same HTTP code) and shows its claims, so an administrator can check the
 * app registration's permissions without reading a JWT by hand. The token itself is printed
 * only with --raw. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "aadsts.h"
#include "cli.h"
#include "jwt_claims.h"
#include "log.h"
#include "token.h"
#include "util.h"

#define DEADLINE_SLACK_MS 2000 /* beyond the configured token_timeout */

struct token_args {
    const char *provider;
    const char *user;
    bool raw;
};

struct fetch {
    struct event_base *base;
    bool done;
    enum token_status status;
    char *token; /* malloc'd copy; wiped when freed */
    size_t token_len;
    char reason[640];
};

/* argv[0] is "get". */
static int parse_args(int argc, char **argv, struct token_args *a)
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
        else if (strcmp(argv[i], "--raw") == 0)
            a->raw = true;
        else if (argv[i][0] == '-')
            return cli_usage_error("unknown option %s", argv[i]);
        else
            return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    return 0;
}

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

/* ---- getting the token ---- */

static void on_token(const struct token_result *res, void *arg)
{
    struct fetch *f = arg;
    f->done = true;
    f->status = res->status;
    if (res->status == TOKEN_OK) {
        f->token = mg_strndup(res->access_token, res->token_len);
        f->token_len = res->token_len;
    }
    mg_strlcpy(f->reason, res->reason ? res->reason : "", sizeof f->reason);
    event_base_loopbreak(f->base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* One token request through the broker's token client; bounded by token_timeout. */
static void fetch_token(const struct config *cfg, const struct provider_conf *p, struct fetch *f)
{
    f->base = event_base_new();
    struct token_client *tc =
        f->base ? token_client_new(f->base, cfg->gateway.token_timeout_ms) : NULL;
    if (!tc) {
        f->status = TOKEN_TEMPFAIL;
        mg_strlcpy(f->reason, "cannot set up the token client", sizeof f->reason);
        if (f->base)
            event_base_free(f->base);
        return;
    }
    struct token_wait *w = token_get(tc, p, on_token, f);
    if (!f->done) {
        uint64_t ms = cfg->gateway.token_timeout_ms + DEADLINE_SLACK_MS;
        struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};
        struct event *deadline = evtimer_new(f->base, on_deadline, f->base);
        evtimer_add(deadline, &tv);
        event_base_dispatch(f->base);
        event_free(deadline);
    }
    if (!f->done) {
        token_wait_cancel(w);
        f->status = TOKEN_TEMPFAIL;
        snprintf(f->reason, sizeof f->reason, "no answer from the token endpoint within %llu ms",
                 (unsigned long long)cfg->gateway.token_timeout_ms);
    }
    token_client_free(&tc);
    event_base_free(f->base);
    f->base = NULL;
}

/* ---- showing it ---- */

/* Claims are remote text: control bytes never reach the terminal. */
static void print_field(const char *label, const char *value)
{
    printf("%s: ", label);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
    putchar('\n');
}

static void print_string_claim(const json_t *claims, const char *name, const char *label)
{
    const json_t *v = json_object_get(claims, name);
    if (json_is_string(v))
        print_field(label, json_string_value(v));
}

static void print_claims(const struct provider_conf *p, const json_t *claims)
{
    print_field("provider", p->name);
    print_string_claim(claims, "aud", "audience");
    const char *kind = NULL;
    char *perms = jwt_claims_permissions(claims, &kind);
    if (perms)
        print_field(strcmp(kind, "roles") == 0 ? "roles" : "scopes", perms[0] ? perms : "(none)");
    else
        print_field("roles", "(none)");
    free(perms);
    print_string_claim(claims, "appid", "app id");
    if (!json_object_get(claims, "appid"))
        print_string_claim(claims, "azp", "app id"); /* v2.0 access tokens */
    print_string_claim(claims, "app_displayname", "app name");
    print_string_claim(claims, "upn", "user");
    print_string_claim(claims, "tid", "tenant");
    int64_t exp;
    if (jwt_claims_time(claims, "exp", &exp) == 0) {
        char when[96];
        jwt_format_expiry(exp, time(NULL), when, sizeof when);
        print_field("expires", when);
    }
}

static bool exchange_audience(const char *aud)
{
    static const char *const exchange[] = {
        "https://outlook.office.com", "https://outlook.office365.com",
        "https://outlook.office.com/", "https://outlook.office365.com/",
        "00000002-0000-0ff1-ce00-000000000000"};
    for (size_t i = 0; i < MG_ARRAY_LEN(exchange); i++)
        if (strcmp(aud, exchange[i]) == 0)
            return true;
    return false;
}

/* Warnings for what the configured listeners need and the token lacks. Returns how many. */
static int warn_missing(const struct config *cfg, const json_t *claims)
{
    int warnings = 0;
    const json_t *aud = json_object_get(claims, "aud");
    if (json_is_string(aud) && !exchange_audience(json_string_value(aud))) {
        fprintf(stderr,
                "mailgate: warning: the token is not for Exchange Online (audience above): set "
                "scope = https://outlook.office365.com/.default\n");
        warnings++;
    }
    const char *kind = NULL;
    char *perms = jwt_claims_permissions(claims, &kind);
    bool delegated = kind && strcmp(kind, "scp") == 0;
    free(perms);
    bool checked[3] = {false, false, false};
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        enum mg_proto proto = cfg->listeners[i].protocol;
        if ((unsigned)proto >= MG_ARRAY_LEN(checked) || checked[proto])
            continue;
        checked[proto] = true;
        const char *perm = jwt_required_permission(proto, delegated);
        if (jwt_claims_has_permission(claims, perm))
            continue;
        fprintf(stderr,
                "mailgate: warning: missing %s %s (needed by the %s listeners): add it under API "
                "permissions (Office 365 Exchange Online, %s) and grant admin consent\n",
                delegated ? "scope" : "role", perm, mg_proto_name(proto),
                delegated ? "Delegated" : "Application");
        warnings++;
    }
    return warnings;
}

static void explain_failure(const struct provider_conf *p, const struct fetch *f)
{
    fprintf(stderr, "mailgate: no token from provider %s: %s\n", p->name, f->reason);
    const char *hint = aadsts_hint_for_text(f->reason);
    if (hint && !strstr(f->reason, hint))
        fprintf(stderr, "mailgate: fix: %s\n", hint);
    if (f->status == TOKEN_TEMPFAIL)
        fputs("mailgate: this looks temporary: try again later\n", stderr);
}

static int token_get_command(const char *config_path, const struct token_args *a)
{
    if (a->user) {
        fputs("mailgate: delegated tokens are not supported yet: with client credentials the "
              "token is per provider (omit --user)\n",
              stderr);
        return 1;
    }
    struct config *cfg = cli_load_config(config_path, CONFIG_LOAD_SECRETS);
    if (!cfg)
        return 1;
    const struct provider_conf *p = choose_provider(cfg, a->provider);
    if (!p) {
        config_free(&cfg);
        return 1;
    }
    log_init("cli", MG_LOG_ERROR); /* the outcome is reported below, not as log lines */
    struct fetch f = {0};
    fetch_token(cfg, p, &f);
    int rc = 1;
    if (f.status == TOKEN_OK && f.token) {
        rc = 0;
        json_t *claims = jwt_claims_decode(f.token, f.token_len);
        if (a->raw) {
            fwrite(f.token, 1, f.token_len, stdout);
            putchar('\n');
        } else if (claims) {
            print_claims(p, claims);
        } else {
            print_field("provider", p->name);
            printf("token: %zu bytes, not a JWT: no claims to show\n", f.token_len);
        }
        if (claims)
            warn_missing(cfg, claims);
        json_decref(claims);
        mg_wipe(f.token, f.token_len);
        free(f.token);
    } else {
        explain_failure(p, &f);
    }
    config_free(&cfg);
    return rc;
}

int cli_token(const char *config_path, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "get") != 0)
        return cli_usage_error("%s", argc < 2 ? "token needs a subcommand: get"
                                              : "unknown token subcommand (only 'get' exists)");
    struct token_args a = {0};
    int rc = parse_args(argc - 1, argv + 1, &a);
    return rc ? rc : token_get_command(config_path, &a);
}
