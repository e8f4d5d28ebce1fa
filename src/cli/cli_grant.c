/* "mailgate grant add USER MAILBOX [--imap] [--pop3] [--send]", "grant list [USER] [--json]",
 * "grant del USER MAILBOX": which other mailboxes a user may open (logging in as
 * USER\MAILBOX, login_name.h), over which protocols; --send is SMTP submission as that
 * mailbox. MAILBOX is an address or a local part in the user's domain. The running gateway
 * reads the grant at every login, so a change applies to the next one. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "login_name.h"
#include "store.h"
#include "util.h"

static const struct {
    const char *option, *word;
    unsigned bit;
} grant_protocols[] = {
    {"--imap", "imap", USER_PROTO_BIT(MG_PROTO_IMAP)},
    {"--pop3", "pop3", USER_PROTO_BIT(MG_PROTO_POP3)},
    {"--send", "send", USER_PROTO_BIT(MG_PROTO_SMTP)},
};

struct grant_args {
    const char *user, *mailbox;
    unsigned protocols; /* 0: all */
    bool json;
};

static unsigned protocol_option(const char *arg)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(grant_protocols); i++) {
        if (strcmp(arg, grant_protocols[i].option) == 0)
            return grant_protocols[i].bit;
    }
    return 0;
}

static void describe_protocols(unsigned protocols, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < MG_ARRAY_LEN(grant_protocols); i++) {
        if (protocols & grant_protocols[i].bit)
            snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "," : "",
                     grant_protocols[i].word);
    }
}

/* argv[0] is the subcommand; positional: how many of USER and MAILBOX it takes (at least
 * min). */
static int parse_args(int argc, char **argv, int min, int max, bool options, struct grant_args *a)
{
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        unsigned bit = options ? protocol_option(argv[i]) : 0;
        if (bit)
            a->protocols |= bit;
        else if (max < 2 && strcmp(argv[i], "--json") == 0)
            a->json = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage_error("unknown option %s", argv[i]);
        else if (positional >= max)
            return cli_usage_error("unexpected argument '%s'", argv[i]);
        else if (positional++ == 0)
            a->user = argv[i];
        else
            a->mailbox = argv[i];
    }
    if (positional < min)
        return cli_usage_error("grant %s needs a USER and a MAILBOX", argv[0]);
    return 0;
}

static int store_error(struct store *st)
{
    fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
    return 1;
}

/* MAILBOX as an address (a local part is in the user's domain). */
static int grant_mailbox(const struct user_record *u, const char *typed, char *out, size_t size)
{
    if (login_name_alias_address(typed, u->name, u->mailbox, out, size) == 0)
        return 0;
    fprintf(stderr,
            "mailgate: invalid mailbox '%s' (an address, or a local part in the domain of %s)\n",
            typed, u->name);
    return 1;
}

static int run_add(const struct config *cfg, struct store *st, void *arg)
{
    const struct grant_args *a = arg;
    struct user_record u;
    if (cli_find_user(cfg, st, a->user, &u) != 0)
        return 1;
    char mailbox[LOGIN_NAME_MAX], words[32];
    int rc = grant_mailbox(&u, a->mailbox, mailbox, sizeof mailbox);
    if (!rc && mg_ascii_casecmp(mailbox, u.mailbox) == 0) {
        fprintf(stderr, "mailgate: %s is the own mailbox of %s: it needs no grant\n", mailbox,
                u.name);
        rc = 1;
    }
    if (!rc) {
        struct mailbox_grant g = {.user = u.name,
                                  .mailbox = mailbox,
                                  .protocols = a->protocols ? a->protocols : USER_PROTOS_ALL};
        describe_protocols(g.protocols, words, sizeof words);
        char *detail = mg_printf("%s %s", mailbox, words);
        enum store_status s = store_mailbox_grant_put(st, &g);
        if (s == STORE_OK)
            s = store_audit_add(st, "grant_added", u.name, NULL, detail);
        free(detail);
        if (s == STORE_OK)
            printf("Granted %s access to %s (%s).\n", u.name, mailbox, words);
        else
            rc = store_error(st);
    }
    user_record_clear(&u);
    return rc;
}

static int run_del(const struct config *cfg, struct store *st, void *arg)
{
    const struct grant_args *a = arg;
    struct user_record u;
    if (cli_find_user(cfg, st, a->user, &u) != 0)
        return 1;
    char mailbox[LOGIN_NAME_MAX];
    int rc = grant_mailbox(&u, a->mailbox, mailbox, sizeof mailbox);
    enum store_status s = rc ? STORE_OK : store_mailbox_grant_delete(st, u.name, mailbox);
    if (!rc && s == STORE_OK)
        s = store_audit_add(st, "grant_deleted", u.name, NULL, mailbox);
    if (!rc && s == STORE_OK) {
        printf("Deleted the grant of %s to %s.\n", u.name, mailbox);
    } else if (!rc && s == STORE_NOT_FOUND) {
        fprintf(stderr, "mailgate: %s has no grant to %s\n", u.name, mailbox);
        rc = 1;
    } else if (!rc) {
        rc = store_error(st);
    }
    user_record_clear(&u);
    return rc;
}

/* ---- list ---- */

struct listing {
    json_t *rows; /* with --json */
};

static int list_one(const struct mailbox_grant *g, void *arg)
{
    struct listing *l = arg;
    char created[24];
    cli_iso8601_utc(g->created_at, created, sizeof created);
    if (!l->rows) {
        char words[32];
        describe_protocols(g->protocols, words, sizeof words);
        printf("%-32s  %-32s  %-14s  %s\n", g->user, g->mailbox, words, created);
        return 0;
    }
    json_t *protocols = json_array();
    for (size_t i = 0; i < MG_ARRAY_LEN(grant_protocols); i++) {
        if (g->protocols & grant_protocols[i].bit)
            json_array_append_new(protocols, json_string(grant_protocols[i].word));
    }
    json_t *row = json_pack("{s:s, s:s, s:o, s:s}", "user", g->user, "mailbox", g->mailbox,
                            "protocols", protocols, "created_at", created);
    return !row || json_array_append_new(l->rows, row) != 0;
}

static int run_list(const struct config *cfg, struct store *st, void *arg)
{
    const struct grant_args *a = arg;
    struct user_record u = {0};
    if (a->user && cli_find_user(cfg, st, a->user, &u) != 0)
        return 1;
    struct listing l = {.rows = a->json ? json_array() : NULL};
    if (!a->json)
        printf("%-32s  %-32s  %-14s  %s\n", "USER", "MAILBOX", "PROTOCOLS", "CREATED");
    int rc = 0;
    if (store_mailbox_grant_list(st, a->user ? u.name : NULL, list_one, &l) != STORE_OK)
        rc = store_error(st);
    if (!rc && l.rows) {
        rc = json_dumpf(l.rows, stdout, JSON_INDENT(2)) == 0 ? 0 : 1;
        putchar('\n');
    }
    json_decref(l.rows);
    user_record_clear(&u);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

int cli_grant(const char *config_path, int argc, char **argv)
{
    struct grant_args a = {0};
    const char *sub = argc >= 2 ? argv[1] : "";
    int rc;
    if (strcmp(sub, "add") == 0) {
        rc = parse_args(argc - 1, argv + 1, 2, 2, true, &a);
        return rc ? rc : cli_run_with_store(config_path, run_add, &a);
    }
    if (strcmp(sub, "del") == 0) {
        rc = parse_args(argc - 1, argv + 1, 2, 2, false, &a);
        return rc ? rc : cli_run_with_store(config_path, run_del, &a);
    }
    if (strcmp(sub, "list") == 0) {
        rc = parse_args(argc - 1, argv + 1, 0, 1, false, &a);
        return rc ? rc : cli_run_with_store(config_path, run_list, &a);
    }
    return cli_usage_error("grant needs a command: add, list or del");
}
