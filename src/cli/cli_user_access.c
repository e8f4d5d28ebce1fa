/* "mailgate user set NAME|--all [--imap on|off] [--pop3 on|off] [--smtp on|off]
 * [--enabled on|off]" and "mailgate user show NAME": a user's switches (like Exchange's
 * Set-CASMailbox), its grants and its running lockouts. The running gateway reads switches at
 * every login, so a change applies to the next one. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "login_name.h"
#include "store.h"
#include "util.h"

/* --imap, --pop3, --smtp and --enabled, each a bit of user_record.switched_off. */
static const struct {
    const char *option;
    unsigned bit;
} switch_options[] = {
    {"--imap", USER_PROTO_BIT(MG_PROTO_IMAP)},
    {"--pop3", USER_PROTO_BIT(MG_PROTO_POP3)},
    {"--smtp", USER_PROTO_BIT(MG_PROTO_SMTP)},
    {"--enabled", USER_OFF_LOGIN},
};

struct set_args {
    const char *name; /* NULL with --all */
    bool all;
    unsigned turn_on, turn_off; /* bits to clear and to set in switched_off */
};

static int parse_switch_option(int argc, char **argv, int *i, struct set_args *a, bool *matched)
{
    for (size_t k = 0; k < MG_ARRAY_LEN(switch_options); k++) {
        bool missing = false;
        const char *v = cli_option_value(argc, argv, i, switch_options[k].option, &missing);
        if (missing)
            return cli_usage_error("%s needs on or off", switch_options[k].option);
        if (!v)
            continue;
        *matched = true;
        int on = cli_parse_switch(v);
        if (on < 0)
            return cli_usage_error("%s needs on or off, not '%s'", switch_options[k].option, v);
        unsigned bit = switch_options[k].bit;
        a->turn_on = on ? a->turn_on | bit : a->turn_on & ~bit;
        a->turn_off = on ? a->turn_off & ~bit : a->turn_off | bit;
        return 0;
    }
    return 0;
}

/* argv[0] is "set". */
static int parse_set_args(int argc, char **argv, struct set_args *a)
{
    for (int i = 1; i < argc; i++) {
        bool matched = false;
        int rc = parse_switch_option(argc, argv, &i, a, &matched);
        if (rc)
            return rc;
        if (matched)
            continue;
        if (strcmp(argv[i], "--all") == 0)
            a->all = true;
        else if ((rc = cli_take_name(argv[i], &a->name)) != 0)
            return rc;
    }
    if (!a->all == !a->name)
        return cli_usage_error("user set needs a user NAME or --all (not both)");
    if (!a->turn_on && !a->turn_off)
        return cli_usage_error(
            "user set needs at least one of --imap, --pop3, --smtp, --enabled (on or off)");
    return 0;
}

static void describe_switches(unsigned off, char *out, size_t size)
{
    snprintf(out, size, "enabled %s, imap %s, pop3 %s, smtp %s",
             off & USER_OFF_LOGIN ? "off" : "on",
             off & USER_PROTO_BIT(MG_PROTO_IMAP) ? "off" : "on",
             off & USER_PROTO_BIT(MG_PROTO_POP3) ? "off" : "on",
             off & USER_PROTO_BIT(MG_PROTO_SMTP) ? "off" : "on");
}

static enum store_status set_one(struct store *st, const struct user_record *u,
                                 const struct set_args *a)
{
    unsigned off = (u->switched_off & ~a->turn_on) | a->turn_off;
    enum store_status s = store_user_set_switches(st, u->name, off);
    char now[96];
    describe_switches(off, now, sizeof now);
    if (s == STORE_OK)
        s = store_audit_add(st, "switches_changed", u->name, NULL, now);
    if (s == STORE_OK)
        printf("%s: %s\n", u->name, now);
    return s;
}

struct bulk {
    struct store *st;
    const struct set_args *a;
    enum store_status status;
};

/* store_user_list holds its statement open: the changes run on the same connection, which
 * SQLite allows (an UPDATE of rows already visited). */
static int set_each(const struct user_record *u, void *arg)
{
    struct bulk *b = arg;
    b->status = set_one(b->st, u, b->a);
    return b->status != STORE_OK;
}

static int run_set(const struct config *cfg, struct store *st, void *arg)
{
    const struct set_args *a = arg;
    if (!a->all) {
        struct user_record u;
        if (cli_find_user(cfg, st, a->name, &u) != 0)
            return 1;
        enum store_status s = set_one(st, &u, a);
        user_record_clear(&u);
        if (s == STORE_OK)
            return 0;
        fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
        return 1;
    }
    struct bulk b = {.st = st, .a = a, .status = store_begin(st)};
    if (b.status == STORE_OK)
        b.status = store_user_list(st, set_each, &b);
    if (b.status == STORE_OK)
        b.status = store_commit(st);
    if (b.status == STORE_OK)
        return 0;
    fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
    store_rollback(st);
    return 1;
}

int cli_user_set(const char *config_path, int argc, char **argv)
{
    struct set_args a = {0};
    int rc = parse_set_args(argc, argv, &a);
    return rc ? rc : cli_run_with_store(config_path, run_set, &a);
}

/* ---- show ---- */

static const char *on_off(unsigned off, unsigned bit)
{
    return off & bit ? "off" : "on";
}

static int print_grant(const struct mailbox_grant *g, void *arg)
{
    int *count = arg;
    (*count)++;
    printf("  %s (%s%s%s)\n", g->mailbox,
           g->protocols & USER_PROTO_BIT(MG_PROTO_IMAP) ? "imap " : "",
           g->protocols & USER_PROTO_BIT(MG_PROTO_POP3) ? "pop3 " : "",
           g->protocols & USER_PROTO_BIT(MG_PROTO_SMTP) ? "send" : "");
    return 0;
}

static int print_lockout(const char *address, int64_t until, void *arg)
{
    int *count = arg;
    (*count)++;
    char when[32];
    cli_iso8601_utc(until, when, sizeof when);
    printf("  from %s until %s\n", address, when);
    return 0;
}

static int show_lists(struct store *st, const struct user_record *u, const char *lockout_key)
{
    int grants = 0, lockouts = 0;
    printf("grants:\n");
    enum store_status s = store_mailbox_grant_list(st, u->name, print_grant, &grants);
    if (s == STORE_OK && grants == 0)
        printf("  none\n");
    printf("lockouts:\n");
    if (s == STORE_OK)
        s = store_lockout_list(st, lockout_key, (int64_t)time(NULL), print_lockout, &lockouts);
    if (s == STORE_OK && lockouts == 0)
        printf("  none\n");
    if (s == STORE_OK)
        return 0;
    fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
    return 1;
}

static int run_show(const struct config *cfg, struct store *st, void *arg)
{
    const char *name = arg;
    struct user_record u;
    if (cli_find_user(cfg, st, name, &u) != 0)
        return 1;
    unsigned off = u.switched_off;
    printf("user: %s\nmailbox: %s\nprovider: %s\n", u.name, u.mailbox, u.provider);
    printf("enabled: %s\nimap: %s\npop3: %s\nsmtp: %s\n", on_off(off, USER_OFF_LOGIN),
           on_off(off, USER_PROTO_BIT(MG_PROTO_IMAP)), on_off(off, USER_PROTO_BIT(MG_PROTO_POP3)),
           on_off(off, USER_PROTO_BIT(MG_PROTO_SMTP)));
    char key[LOGIN_NAME_MAX];
    int rc = cli_lockout_key(cfg, u.name, key, sizeof key) != 0 ? 1 : show_lists(st, &u, key);
    user_record_clear(&u);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

int cli_user_show(const char *config_path, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_error("user show needs exactly one user NAME");
    return cli_run_with_store(config_path, run_show, argv[1]);
}
