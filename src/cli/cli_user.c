/* "mailgate user add|list|passwd|del": local users in the store. The configuration is loaded
 * without secrets: these commands only need state_dir and the provider names. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "account.h"
#include "cli.h"
#include "grant_store.h"
#include "ipc.h"
#include "login_name.h"
#include "password.h"
#include "store.h"
#include "util.h"

#define USER_NAME_MAX 255 /* fits IPC_USER_MAX with its NUL */
#define MAILBOX_MAX 319   /* fits IPC_MAILBOX_MAX with its NUL */

enum option_flag {
    OPT_MAILBOX = 1,
    OPT_PROVIDER = 2,
    OPT_STDIN = 4,
    OPT_JSON = 8,
    OPT_ADDRESS = 16,
    OPT_NO_PASSWORD = 32
};

struct user_args {
    const char *name;
    const char *mailbox;
    const char *provider;
    const char *address;
    bool password_stdin;
    bool no_password; /* add: none yet; the sign-in page makes one */
    bool json;
};

struct user_ctx {
    struct config *cfg;
    struct store *st;
};

/* ---- argument checks ---- */

/* Length of the valid UTF-8 sequence at s, 0 when it is not one (overlongs, surrogates and
 * code points above U+10FFFF included). */
static size_t utf8_sequence_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || s[0] > 0xF4)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return n;
}

/* Printable, no spaces, valid UTF-8 (the JSON listing and the logs rely on it). */
static bool printable_word(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p <= 0x20 || *p == 0x7f)
            return false;
        size_t n = utf8_sequence_len(p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

static bool valid_user_name(const char *name)
{
    size_t len = strlen(name);
    return len >= 1 && len <= USER_NAME_MAX && printable_word(name);
}

static bool valid_mailbox(const char *mailbox)
{
    const char *at = strchr(mailbox, '@');
    size_t len = strlen(mailbox);
    return len <= MAILBOX_MAX && at && at != mailbox && at[1] && !strchr(at + 1, '@') &&
           printable_word(mailbox);
}

/* argv[0] is the subcommand. Returns 0 or the usage-error exit code. */
static int parse_args(int argc, char **argv, unsigned allowed, int positional, struct user_args *a)
{
    int seen_positional = 0;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((allowed & OPT_MAILBOX) &&
            (v = cli_option_value(argc, argv, &i, "--mailbox", &missing)))
            a->mailbox = v;
        else if ((allowed & OPT_PROVIDER) &&
                 (v = cli_option_value(argc, argv, &i, "--provider", &missing)))
            a->provider = v;
        else if ((allowed & OPT_ADDRESS) &&
                 (v = cli_option_value(argc, argv, &i, "--address", &missing)))
            a->address = v;
        else if (missing)
            return cli_usage_error("%s needs a value", argv[i]);
        else if ((allowed & OPT_STDIN) && strcmp(argv[i], "--password-stdin") == 0)
            a->password_stdin = true;
        else if ((allowed & OPT_NO_PASSWORD) && strcmp(argv[i], "--no-password") == 0)
            a->no_password = true;
        else if ((allowed & OPT_JSON) && strcmp(argv[i], "--json") == 0)
            a->json = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage_error("unknown option %s", argv[i]);
        else if (seen_positional++ < positional)
            a->name = argv[i];
        else
            return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    if (seen_positional < positional)
        return cli_usage_error("user %s needs a user NAME", argv[0]);
    return 0;
}

/* ---- passwords ---- */

/* The new password's hash, from stdin or generated (then shown in `generated`). */
static int new_password_hash(bool from_stdin, char *hash, size_t hashlen, char *generated,
                             size_t genlen)
{
    char pw[PASSWORD_MAX + 2];
    size_t len = 0;
    generated[0] = '\0';
    if (from_stdin) {
        if (cli_read_password_stdin(pw, sizeof pw, &len) != 0)
            return -1;
    } else {
        password_generate(generated, genlen);
        len = mg_strlcpy(pw, generated, sizeof pw);
    }
    int rc = password_hash(pw, len, hash, hashlen);
    mg_wipe(pw, sizeof pw);
    if (rc != 0)
        fprintf(stderr, "mailgate: cannot hash the password\n");
    return rc;
}

static void show_generated_password(const char *name, char *generated)
{
    if (!generated[0])
        return;
    printf("Password for %s: %s\n", name, generated);
    printf("This password is shown only once; it is stored only as a hash.\n");
    fflush(stdout);
}

/* ---- context ---- */

static int open_ctx(const char *config_path, struct user_ctx *c)
{
    c->cfg = cli_load_config(config_path, CONFIG_SKIP_SECRETS);
    if (!c->cfg)
        return 1;
    c->st = cli_open_store(c->cfg);
    if (!c->st) {
        config_free(&c->cfg);
        return 1;
    }
    return 0;
}

static void close_ctx(struct user_ctx *c)
{
    store_close(&c->st);
    config_free(&c->cfg);
}

static int store_failure(struct user_ctx *c)
{
    fprintf(stderr, "mailgate: store error: %s\n", store_last_error(c->st));
    return 1;
}

static int no_such_user(const char *name)
{
    fprintf(stderr, "mailgate: no such user '%s'\n", name);
    return 1;
}

/* ---- add ---- */

/* With flow = password the client's password is the user's password at the IdP: mailgate
 * stores no hash of its own (an empty one, which never verifies). */
static bool idp_checks_password(const struct config *cfg, const char *provider)
{
    const struct provider_conf *p = config_provider(cfg, provider);
    return p && p->flow == MG_FLOW_PASSWORD;
}

static int choose_provider(const struct config *cfg, const char *wanted, const char **out)
{
    if (wanted) {
        if (!config_provider(cfg, wanted)) {
            fprintf(stderr, "mailgate: unknown provider '%s'\n", wanted);
            return 1;
        }
        *out = wanted;
        return 0;
    }
    if (cfg->n_providers != 1) {
        fprintf(stderr, "mailgate: %zu providers are configured; choose one with --provider:",
                cfg->n_providers);
        for (size_t i = 0; i < cfg->n_providers; i++)
            fprintf(stderr, " %s", cfg->providers[i].name);
        fputc('\n', stderr);
        return 2;
    }
    *out = cfg->providers[0].name;
    return 0;
}

/* [defaults]: the switches a new user starts with. */
static unsigned default_switched_off(const struct defaults_conf *d)
{
    return (d->imap ? 0 : USER_PROTO_BIT(MG_PROTO_IMAP)) |
           (d->pop3 ? 0 : USER_PROTO_BIT(MG_PROTO_POP3)) |
           (d->smtp ? 0 : USER_PROTO_BIT(MG_PROTO_SMTP));
}

static int add_in_store(struct user_ctx *c, const struct user_args *a, const char *provider)
{
    struct user_record existing;
    enum store_status s = account_find(c->st, a->name, c->cfg->gateway.default_domain, &existing);
    if (s == STORE_OK) {
        fprintf(stderr, "mailgate: user '%s' already exists\n", existing.name);
        user_record_clear(&existing);
        return 1;
    }
    if (s != STORE_NOT_FOUND)
        return store_failure(c);
    char hash[PASSWORD_HASH_MAX] = "", generated[32] = "";
    bool idp_checks = idp_checks_password(c->cfg, provider);
    if (idp_checks && a->password_stdin)
        fprintf(stderr, "mailgate: --password-stdin ignored: provider %s checks the password\n",
                provider);
    if (a->no_password && a->password_stdin)
        return cli_usage_error("--no-password and --password-stdin exclude each other");
    if (!idp_checks && !a->no_password &&
        new_password_hash(a->password_stdin, hash, sizeof hash, generated, sizeof generated))
        return 1;
    struct user_record u = {.name = (char *)a->name,
                            .mailbox = (char *)a->mailbox,
                            .provider = (char *)provider,
                            .password_hash = hash,
                            .switched_off = default_switched_off(&c->cfg->defaults)};
    s = store_user_add(c->st, &u);
    mg_wipe(hash, sizeof hash);
    int rc = 0;
    if (s == STORE_EXISTS) {
        fprintf(stderr, "mailgate: user '%s' already exists\n", a->name);
        rc = 1;
    } else if (s != STORE_OK) {
        rc = store_failure(c);
    } else {
        printf("Added user %s (mailbox %s, provider %s; imap %s, pop3 %s, smtp %s).\n", a->name,
               a->mailbox, provider, c->cfg->defaults.imap ? "on" : "off",
               c->cfg->defaults.pop3 ? "on" : "off", c->cfg->defaults.smtp ? "on" : "off");
        show_generated_password(a->name, generated);
        if (a->no_password && !idp_checks)
            printf("No password yet: the user gets one, shown once, when it connects its mailbox "
                   "on the sign-in page (or from user passwd).\n");
        if (idp_checks)
            printf("Provider %s checks the password at each login (flow = password): no local "
                   "password is stored.\n",
                   provider);
    }
    mg_wipe(generated, sizeof generated);
    return rc;
}

/* A name a client can log in with: a short name or a UPN (no separator), not a reserved one;
 * with default_domain a short name becomes name@default_domain. 0 or the usage-error code. */
static int new_user_name(const struct config *cfg, const char *typed, char *out, size_t size)
{
    struct login_name n;
    if (!valid_user_name(typed) || login_name_parse(typed, cfg->gateway.default_domain, &n) != 0 ||
        (n.form != LOGIN_SHORT && n.form != LOGIN_UPN))
        return cli_usage_error("invalid user name '%s' (a short name or user@domain: 1-255 bytes "
                               "of UTF-8, no spaces, control characters, '\\' or '/')",
                               typed);
    if (login_name_reserved(n.user))
        return cli_usage_error("'%s' is a reserved name: anonymous and guest never log in", typed);
    mg_strlcpy(out, n.user, size);
    return 0;
}

static int add_checked(struct user_ctx *c, struct user_args *a)
{
    char name[LOGIN_NAME_MAX];
    int rc = new_user_name(c->cfg, a->name, name, sizeof name);
    if (rc)
        return rc;
    a->name = name;
    if (!a->mailbox && !valid_mailbox(a->name))
        return cli_usage_error("the mailbox defaults to the user name, but '%s' is not an address: "
                               "add --mailbox ADDRESS",
                               a->name);
    if (!a->mailbox)
        a->mailbox = a->name;
    if (!valid_mailbox(a->mailbox))
        return cli_usage_error(
            "invalid mailbox '%s' (an address with one '@', at most 319 bytes, no "
            "spaces or control characters)",
            a->mailbox);
    const char *provider = NULL;
    rc = choose_provider(c->cfg, a->provider, &provider);
    return rc ? rc : add_in_store(c, a, provider);
}

static int user_add(const char *config_path, struct user_args *a)
{
    struct user_ctx c = {0};
    int rc = open_ctx(config_path, &c);
    if (rc)
        return rc;
    rc = add_checked(&c, a);
    close_ctx(&c);
    return rc;
}

/* ---- passwd, del ---- */

static int user_passwd(const char *config_path, struct user_args *a)
{
    struct user_ctx c = {0};
    int rc = open_ctx(config_path, &c);
    if (rc)
        return rc;
    struct user_record u;
    if (cli_find_user(c.cfg, c.st, a->name, &u) != 0) {
        close_ctx(&c);
        return 1;
    }
    enum store_status s;
    char hash[PASSWORD_HASH_MAX], generated[32] = "";
    if (idp_checks_password(c.cfg, u.provider)) {
        fprintf(stderr,
                "mailgate: user %s signs in with its password at provider %s (flow = password): "
                "mailgate stores no password for it\n",
                u.name, u.provider);
        rc = 1;
    } else if (new_password_hash(a->password_stdin, hash, sizeof hash, generated,
                                 sizeof generated)) {
        rc = 1;
    } else {
        s = store_user_set_password(c.st, u.name, hash);
        if (s == STORE_OK) {
            printf("Changed the password of %s.\n", u.name);
            show_generated_password(u.name, generated);
        } else {
            rc = s == STORE_NOT_FOUND ? no_such_user(a->name) : store_failure(&c);
        }
    }
    mg_wipe(hash, sizeof hash);
    mg_wipe(generated, sizeof generated);
    user_record_clear(&u);
    close_ctx(&c);
    return rc;
}

static int user_del(const char *config_path, struct user_args *a)
{
    struct user_ctx c = {0};
    int rc = open_ctx(config_path, &c);
    if (rc)
        return rc;
    struct user_record u;
    if (cli_find_user(c.cfg, c.st, a->name, &u) != 0) {
        close_ctx(&c);
        return 1;
    }
    /* The user's refresh tokens, cached tokens and mailbox grants go with it, in the same
     * transaction. */
    enum store_status s = store_begin(c.st);
    if (s == STORE_OK)
        s = store_user_delete(c.st, u.name);
    if (s == STORE_OK && (grant_store_forget(c.st, u.name) == STORE_ERROR ||
                          store_mailbox_grant_delete(c.st, u.name, NULL) == STORE_ERROR))
        s = STORE_ERROR;
    if (s == STORE_OK)
        s = store_audit_add(c.st, "deleted", u.name, NULL, NULL);
    if (s == STORE_OK)
        s = store_commit(c.st);
    user_record_clear(&u);
    if (s == STORE_OK) {
        printf("Deleted user %s.\n", a->name);
    } else {
        rc = s == STORE_NOT_FOUND ? no_such_user(a->name) : store_failure(&c);
        store_rollback(c.st);
    }
    close_ctx(&c);
    return rc;
}

/* ---- unlock ---- */

/* Deletes the user's lockout rows; the running broker notices the change (PRAGMA data_version,
 * lockout.c) at the next attempt of a pair it holds locked and lets it in. */
static int user_unlock(const char *config_path, struct user_args *a)
{
    struct user_ctx c = {0};
    int rc = open_ctx(config_path, &c);
    if (rc)
        return rc;
    char host[IPC_ADDR_MAX], key[LOGIN_NAME_MAX];
    if (a->address)
        mg_addr_host(a->address, host, sizeof host);
    if (cli_lockout_key(c.cfg, a->name, key, sizeof key) != 0) {
        close_ctx(&c);
        return 1;
    }
    int64_t lifted = 0;
    enum store_status s = store_lockout_delete(c.st, key, a->address ? host : NULL, &lifted);
    if (s == STORE_OK && lifted > 0)
        s = store_audit_add(c.st, "unlocked", key, NULL, a->address ? host : NULL);
    if (s != STORE_OK)
        rc = store_failure(&c);
    else if (lifted == 0)
        printf("No lockout of %s%s%s.\n", a->name, a->address ? " from " : "",
               a->address ? host : "");
    else
        printf("Lifted %lld lockout(s) of %s.\n", (long long)lifted, a->name);
    close_ctx(&c);
    return rc;
}

/* ---- list ---- */

struct listed_user {
    char *name, *mailbox, *provider;
    char created[24], updated[24];
    const char *auth; /* how the gateway gets the user's tokens, and whether it can */
};

struct user_list {
    struct listed_user *users;
    size_t n;
    const struct config *cfg;
    struct store *st;
};

static const char *auth_state(const struct user_list *list, const struct user_record *u)
{
    const struct provider_conf *p = config_provider(list->cfg, u->provider);
    if (!p)
        return "unknown provider";
    if (p->flow == MG_FLOW_PASSWORD)
        return "password";
    if (p->flow != MG_FLOW_DELEGATED)
        return "app-only";
    struct grant_record g;
    enum store_status s = store_grant_get(list->st, u->name, p->name, &g);
    const char *state = s == STORE_ERROR              ? "unknown (store error)"
                        : s == STORE_NOT_FOUND        ? "not authorized"
                        : g.state == GRANT_AUTHORIZED ? "authorized"
                                                      : "needs authorization";
    grant_record_clear(&g);
    return state;
}

static int collect_user(const struct user_record *u, void *arg)
{
    struct user_list *list = arg;
    list->users = mg_realloc(list->users, (list->n + 1) * sizeof *list->users);
    struct listed_user *l = &list->users[list->n++];
    l->name = mg_strdup(u->name);
    l->mailbox = mg_strdup(u->mailbox);
    l->provider = mg_strdup(u->provider);
    cli_iso8601_utc(u->created_at, l->created, sizeof l->created);
    cli_iso8601_utc(u->updated_at, l->updated, sizeof l->updated);
    l->auth = auth_state(list, u);
    return 0;
}

static int print_json(const struct user_list *list)
{
    json_t *array = json_array();
    for (size_t i = 0; i < list->n; i++) {
        const struct listed_user *u = &list->users[i];
        json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", u->name, "mailbox",
                                u->mailbox, "provider", u->provider, "created_at", u->created,
                                "updated_at", u->updated, "auth", u->auth);
        if (!obj || json_array_append_new(array, obj) != 0) {
            fprintf(stderr, "mailgate: user '%s' cannot be shown as JSON (not UTF-8?)\n", u->name);
            json_decref(array);
            return 1;
        }
    }
    int rc = json_dumpf(array, stdout, JSON_INDENT(2)) == 0 ? 0 : 1;
    putchar('\n');
    json_decref(array);
    return rc;
}

static int column_width(const struct user_list *list, size_t offset, const char *header)
{
    size_t w = strlen(header);
    for (size_t i = 0; i < list->n; i++) {
        const char *s = *(char *const *)((const char *)&list->users[i] + offset);
        w = strlen(s) > w ? strlen(s) : w;
    }
    return (int)w;
}

static void print_table(const struct user_list *list)
{
    int wn = column_width(list, offsetof(struct listed_user, name), "NAME");
    int wm = column_width(list, offsetof(struct listed_user, mailbox), "MAILBOX");
    int wp = column_width(list, offsetof(struct listed_user, provider), "PROVIDER");
    printf("%-*s  %-*s  %-*s  %-20s  %-20s  %s\n", wn, "NAME", wm, "MAILBOX", wp, "PROVIDER",
           "CREATED", "UPDATED", "AUTH");
    for (size_t i = 0; i < list->n; i++) {
        const struct listed_user *u = &list->users[i];
        printf("%-*s  %-*s  %-*s  %-20s  %-20s  %s\n", wn, u->name, wm, u->mailbox, wp, u->provider,
               u->created, u->updated, u->auth);
    }
}

static int user_list(const char *config_path, struct user_args *a)
{
    struct user_ctx c = {0};
    int rc = open_ctx(config_path, &c);
    if (rc)
        return rc;
    struct user_list list = {.cfg = c.cfg, .st = c.st};
    if (store_user_list(c.st, collect_user, &list) != STORE_OK)
        rc = store_failure(&c);
    else if (a->json)
        rc = print_json(&list);
    else
        print_table(&list);
    for (size_t i = 0; i < list.n; i++) {
        free(list.users[i].name);
        free(list.users[i].mailbox);
        free(list.users[i].provider);
    }
    free(list.users);
    close_ctx(&c);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    int (*run)(const char *config_path, struct user_args *a);
    unsigned options;
    int positional; /* NAME or not */
} user_commands[] = {
    {"add", user_add, OPT_MAILBOX | OPT_PROVIDER | OPT_STDIN | OPT_NO_PASSWORD, 1},
    {"list", user_list, OPT_JSON, 0},
    {"passwd", user_passwd, OPT_STDIN, 1},
    {"del", user_del, 0, 1},
    {"unlock", user_unlock, OPT_ADDRESS, 1},
};

int cli_user(const char *config_path, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(
            "user needs a command: add, list, show, set, passwd, del, unlock, authorize or "
            "deauthorize");
    if (strcmp(argv[1], "authorize") == 0)
        return cli_user_authorize(config_path, argc - 1, argv + 1);
    if (strcmp(argv[1], "deauthorize") == 0)
        return cli_user_deauthorize(config_path, argc - 1, argv + 1);
    if (strcmp(argv[1], "set") == 0)
        return cli_user_set(config_path, argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return cli_user_show(config_path, argc - 1, argv + 1);
    for (size_t i = 0; i < MG_ARRAY_LEN(user_commands); i++) {
        if (strcmp(argv[1], user_commands[i].name) != 0)
            continue;
        struct user_args a = {0};
        int rc = parse_args(argc - 1, argv + 1, user_commands[i].options,
                            user_commands[i].positional, &a);
        return rc ? rc : user_commands[i].run(config_path, &a);
    }
    return cli_usage_error(
        "unknown user command '%s' (add, list, show, set, passwd, del, unlock, authorize, "
        "deauthorize)",
        argv[1]);
}
