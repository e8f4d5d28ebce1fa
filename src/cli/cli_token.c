/* "mailgate token get [--provider P] [--user NAME] [--password-stdin] [--raw]": gets a token the
 * way the broker does (same token client, same HTTP code, the same stored tokens and refresh
 * tokens) and shows its claims, so an administrator can check the app registration's
 * permissions without reading a JWT by hand. The token itself is printed only with --raw.
 * "mailgate token test NAME" is in cli_token_test.c. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "cli_token.h"
#include "jwt_claims.h"
#include "util.h"

struct token_args {
    struct cli_token_opts opts;
    bool raw;
};

/* argv[0] is "get". */
static int parse_args(int argc, char **argv, struct token_args *a)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--provider", &missing)))
            a->opts.provider = v;
        else if ((v = cli_option_value(argc, argv, &i, "--user", &missing)))
            a->opts.user = v;
        else if (missing)
            return cli_usage_error("%s needs a value", argv[i]);
        else if (strcmp(argv[i], "--raw") == 0)
            a->raw = true;
        else if (strcmp(argv[i], "--fresh") == 0)
            a->opts.fresh = true;
        else if (strcmp(argv[i], "--password-stdin") == 0)
            a->opts.password_stdin = true;
        else if (argv[i][0] == '-')
            return cli_usage_error("unknown option %s", argv[i]);
        else
            return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    return 0;
}

/* ---- showing it ---- */

static void print_field(const char *label, const char *value)
{
    cli_print_field(stdout, label, value);
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

/* provider, the user and mailbox when one is named, the claims or the size of an opaque token,
 * and where the token came from. */
static void show_token(const struct cli_token_ctx *c, const struct cli_token *t,
                       const json_t *claims)
{
    if (claims) {
        print_claims(c->p, claims);
    } else {
        print_field("provider", c->p->name);
        printf("token: %zu bytes (opaque)\n", t->len);
        if (t->expires_at > 0) {
            char when[96];
            jwt_format_expiry(t->expires_at, time(NULL), when, sizeof when);
            print_field("expires", when);
        }
    }
    if (c->user.name) {
        print_field("mailgate user", c->user.name);
        print_field("mailbox", c->user.mailbox);
    }
    printf("source: %s\n", t->cached ? "cached" : "token endpoint");
}

static int token_get_command(const char *config_path, const struct token_args *a)
{
    struct cli_token_ctx c;
    int rc = cli_token_open(config_path, &a->opts, &c);
    if (rc != 0) {
        cli_token_close(&c);
        return rc;
    }
    struct cli_token t;
    cli_token_fetch(&c, &t, a->opts.fresh);
    rc = 1;
    if (t.status == TOKEN_OK && t.token) {
        rc = 0;
        json_t *claims = jwt_claims_decode(t.token, t.len);
        if (a->raw) {
            fwrite(t.token, 1, t.len, stdout);
            putchar('\n');
        } else {
            show_token(&c, &t, claims);
        }
        if (claims)
            warn_missing(c.cfg, claims);
        json_decref(claims);
    } else {
        cli_token_explain_failure(&c, &t, stderr, "mailgate: ");
    }
    cli_token_clear(&t);
    cli_token_close(&c);
    return rc;
}

int cli_token(const char *config_path, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return cli_token_test(config_path, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "flush") == 0)
        return cli_token_flush(config_path, argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "get") != 0)
        return cli_usage_error("%s", argc < 2 ? "token needs a subcommand: get, test or flush"
                                              : "unknown token subcommand (get, test or flush)");
    struct token_args a = {0};
    int rc = parse_args(argc - 1, argv + 1, &a);
    return rc ? rc : token_get_command(config_path, &a);
}
