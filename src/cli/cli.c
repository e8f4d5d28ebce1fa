/* Admin CLI: usage, check-config and what the user commands share. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "login_name.h"
#include "password.h"
#include "store.h"
#include "util.h"

void cli_usage(void)
{
    fputs(
        "usage:\n"
        "  mailgate [-c FILE] serve                  run the gateway in the foreground\n"
        "  mailgate [-c FILE] check-config           validate the configuration and exit\n"
        "  mailgate [-c FILE] user add NAME [--mailbox ADDRESS] [--provider NAME]"
        " [--password-stdin | --no-password]\n"
        "  mailgate [-c FILE] user list [--json]\n"
        "  mailgate [-c FILE] user passwd NAME [--password-stdin]\n"
        "  mailgate [-c FILE] user del NAME\n"
        "  mailgate [-c FILE] user authorize NAME --device-code\n"
        "  mailgate [-c FILE] user authorize NAME --refresh-token-file FILE|-\n"
        "  mailgate [-c FILE] user deauthorize NAME\n"
        "  mailgate [-c FILE] user unlock NAME [--address IP]\n"
        "  mailgate [-c FILE] user set NAME|--all [--imap on|off] [--pop3 on|off]"
        " [--smtp on|off] [--enabled on|off]\n"
        "  mailgate [-c FILE] user show NAME\n"
        "  mailgate [-c FILE] grant add USER MAILBOX [--imap] [--pop3] [--send]\n"
        "  mailgate [-c FILE] grant list [USER] [--json]\n"
        "  mailgate [-c FILE] grant del USER MAILBOX\n"
        "  mailgate [-c FILE] audit [--user NAME] [--limit N]\n"
        "  mailgate [-c FILE] report logins [--since 30d] [--protocol imap|pop3|smtp] [--user U]\n"
        "                     [--result ok|fail] [--format table|json|csv]\n"
        "  mailgate [-c FILE] report usage [--since 30d] [--format table|json|csv]\n"
        "  mailgate [-c FILE] report tlsrpt [--since 30d] [--format table|json|csv]\n"
        "                                            TLS reports per organisation and policy\n"
        "  mailgate [-c FILE] tlsrpt import FILE...   store TLS reports (.json, .json.gz)\n"
        "  mailgate [-c FILE] token get [--provider NAME] [--user NAME] [--password-stdin]"
        " [--raw] [--fresh]\n"
        "                                            show the claims of the (cached) token;"
        " --fresh:\n"
        "                                            ask the IdP, bypassing the cache\n"
        "  mailgate [-c FILE] token test NAME [--protocol imap|pop3|smtp] [--password-stdin]\n"
        "                                            log in upstream with the user's token\n"
        "  mailgate [-c FILE] token flush [--provider NAME] [--user NAME]\n"
        "                                            delete stored access tokens\n"
        "  mailgate [-c FILE] secrets rotate-key      re-encrypt the stored secrets under a new"
        " key\n"
        "  mailgate [-c FILE] dns DOMAIN              the DNS records to publish for a"
        " [domain]\n"
        "  mailgate [-c FILE] check DOMAIN [--resolver IP[:PORT]] [--ca-file FILE]"
        " [--https-port N]\n"
        "                                            check the published records and the"
        " MTA-STS policy\n"
        "  mailgate version\n"
        "\n"
        "The configuration is " MG_DEFAULT_CONFIG " unless -c FILE or $MAILGATE_CONFIG says\n"
        "otherwise. Without --password-stdin, user add and user passwd generate a password\n"
        "and print it once. Exit codes: 0 success, 1 failure, 2 usage error.\n",
        stdout);
}

struct config *cli_load_config(const char *config_path, enum config_secrets secrets)
{
    return config_load_admin(config_path, secrets, stderr);
}

int cli_check_config(const char *config_path)
{
    /* With secrets: check-config must catch what "serve" would trip over, such as an unreadable
     * client_secret_file. */
    struct config *cfg = config_load(config_path, CONFIG_LOAD_SECRETS, stderr);
    if (!cfg)
        return 1;
    printf("%s: configuration OK (%zu %s, %zu %s)\n", config_path, cfg->n_listeners,
           cfg->n_listeners == 1 ? "listener" : "listeners", cfg->n_providers,
           cfg->n_providers == 1 ? "provider" : "providers");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const struct provider_conf *p = &cfg->providers[i];
        printf("  provider %s: type=%s flow=%s sasl=%s token_endpoint=%s\n", p->name,
               mg_provider_type_name(p->type), mg_flow_name(p->flow), mg_sasl_name(p->sasl),
               p->token_endpoint);
        for (enum mg_proto proto = MG_PROTO_IMAP; proto <= MG_PROTO_SMTP; proto++) {
            const struct server_addr *srv = provider_server(p, proto);
            if (srv)
                printf("    %s: %s:%u (%s)\n", mg_proto_name(proto), srv->host, (unsigned)srv->port,
                       mg_tls_mode_name(srv->tls));
            else
                printf("    %s: none (logins refused)\n", mg_proto_name(proto));
        }
    }
    cli_print_changed_credentials(cfg);
    config_free(&cfg);
    return 0;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mailgate: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see 'mailgate help')\n", stderr);
    return 2;
}

const char *cli_option_value(int argc, char **argv, int *i, const char *opt, bool *missing)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

void cli_iso8601_utc(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        mg_strlcpy(buf, "?", size);
}

struct store *cli_open_store(const struct config *cfg)
{
    char err[512] = "";
    struct store *st = store_open(cfg->gateway.state_dir, err, sizeof err);
    if (!st)
        fprintf(stderr, "mailgate: cannot open the store in %s: %s\n", cfg->gateway.state_dir, err);
    return st;
}

int cli_run_with_store(const char *config_path,
                       int (*run)(const struct config *cfg, struct store *st, void *arg), void *arg)
{
    struct config *cfg = cli_load_config(config_path, CONFIG_SKIP_SECRETS);
    if (!cfg)
        return 1;
    struct store *st = cli_open_store(cfg);
    int rc = st ? run(cfg, st, arg) : 1;
    store_close(&st);
    config_free(&cfg);
    return rc;
}

/* See cli.h. Unbuffered, so no copy of the password stays in a stdio buffer. */
int cli_read_password_stdin(char *pw, size_t size, size_t *len)
{
    setvbuf(stdin, NULL, _IONBF, 0);
    size_t n = 0;
    int c;
    const char *problem = NULL;
    while ((c = getchar()) != EOF && c != '\n') {
        if (c == '\0')
            problem = "the password contains a NUL byte";
        else if (n + 1 >= size)
            problem = "the password is too long";
        else
            pw[n++] = (char)c;
        if (problem)
            break;
    }
    if (!problem && n && pw[n - 1] == '\r')
        n--;
    pw[n] = '\0';
    if (!problem && n > PASSWORD_MAX)
        problem = "the password is too long";
    if (!problem && ferror(stdin))
        problem = "cannot read the password from standard input";
    if (!problem && n == 0)
        problem = "empty password on standard input";
    if (problem) {
        mg_wipe(pw, size);
        fprintf(stderr, "mailgate: %s\n", problem);
        return -1;
    }
    *len = n;
    return 0;
}

int cli_find_user(const struct config *cfg, struct store *st, const char *name,
                  struct user_record *out)
{
    enum store_status s = account_find(st, name, cfg->gateway.default_domain, out);
    if (s == STORE_OK)
        return 0;
    if (s == STORE_NOT_FOUND)
        fprintf(stderr, "mailgate: no such user '%s'\n", name);
    else
        fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
    return 1;
}

int cli_parse_switch(const char *value)
{
    if (strcmp(value, "on") == 0)
        return 1;
    return strcmp(value, "off") == 0 ? 0 : -1;
}

int cli_lockout_key(const struct config *cfg, const char *name, char *out, size_t size)
{
    if (login_name_canonical(name, cfg->gateway.default_domain, out, size) == 0)
        return 0;
    fprintf(stderr, "mailgate: the name '%s' is too long\n", name);
    return -1;
}

int cli_take_name(const char *arg, const char **name)
{
    if (arg[0] == '-' && arg[1] != '\0')
        return cli_usage_error("unknown option %s", arg);
    if (*name)
        return cli_usage_error("unexpected argument '%s'", arg);
    *name = arg;
    return 0;
}
