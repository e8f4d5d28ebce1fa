/* "mailgate report usage": per user (every user of the store) and protocol, whether the
 * protocol is switched on (`mailgate user set`) and how the audit saw it used in the period,
 * then the protocols switched on but without a successful login in the period, each with the
 * command that switches it off: the housekeeping question "who still uses POP3 or IMAP?". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cli.h"
#include "cli_report.h"
#include "config.h"
#include "login_name.h"
#include "store.h"
#include "store_logins.h"
#include "util.h"

static const char *const usage_columns[] = {
    "user",       "protocol", "enabled",   "logins",      "failures",
    "last_login", "bytes_in", "bytes_out", "last_client", "switch_off_command"};
static const char usage_numeric[] = "sssnnsnnss";
#define COMMAND_COLUMN 9

/* The audit's sums, copied out of the store's callback. */
struct usage_rows {
    struct login_usage *rows;
    size_t n;
};

struct usage_ctx {
    const struct config *cfg;
    struct usage_rows sums;
    struct report_table table;
};

int login_name_canonical_cli(const char *name, const struct config *cfg, char *out, size_t size)
{
    return login_name_canonical(name, cfg->gateway.default_domain, out, size);
}

static int keep_sum(const struct login_usage *u, void *arg)
{
    struct usage_rows *s = arg;
    s->rows = mg_realloc(s->rows, (s->n + 1) * sizeof *s->rows);
    s->rows[s->n] = *u;
    s->rows[s->n].user = mg_strdup(u->user);
    s->rows[s->n].protocol = mg_strdup(u->protocol);
    s->rows[s->n].last_client = mg_strdup(u->last_client);
    s->n++;
    return 0;
}

static void free_sums(struct usage_rows *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->rows[i].user);
        free((char *)s->rows[i].protocol);
        free((char *)s->rows[i].last_client);
    }
    free(s->rows);
}

static const struct login_usage *find_sum(const struct usage_rows *s, const char *user,
                                          const char *protocol)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcasecmp(s->rows[i].user, user) == 0 && strcmp(s->rows[i].protocol, protocol) == 0)
            return &s->rows[i];
    return NULL;
}

static void add_usage_row(struct usage_ctx *c, const struct user_record *u, enum mg_proto p)
{
    char canonical[512], logins[24], failures[24], last[32] = "", in[24], out[24], cmd[600] = "";
    if (login_name_canonical_cli(u->name, c->cfg, canonical, sizeof canonical) != 0)
        mg_strlcpy(canonical, u->name, sizeof canonical);
    const char *proto = mg_proto_name(p);
    const struct login_usage zero = {.last_client = ""};
    const struct login_usage *sum = find_sum(&c->sums, canonical, proto);
    if (!sum)
        sum = &zero;
    int enabled = !(u->switched_off & (USER_OFF_LOGIN | USER_PROTO_BIT(p)));
    snprintf(logins, sizeof logins, "%lld", (long long)sum->logins);
    snprintf(failures, sizeof failures, "%lld", (long long)sum->failures);
    if (sum->last_login)
        cli_iso8601_utc(sum->last_login, last, sizeof last);
    snprintf(in, sizeof in, "%lld", (long long)sum->bytes_in);
    snprintf(out, sizeof out, "%lld", (long long)sum->bytes_out);
    if (enabled && sum->logins == 0)
        snprintf(cmd, sizeof cmd, "mailgate user set %s --%s off", u->name, proto);
    const char *cells[] = {u->name, proto, enabled ? "yes" : "no", logins, failures, last,
                           in,      out,   sum->last_client,       cmd};
    report_table_add(&c->table, cells);
}

static int add_user_rows(const struct user_record *u, void *arg)
{
    for (int p = MG_PROTO_IMAP; p <= MG_PROTO_SMTP; p++)
        add_usage_row(arg, u, (enum mg_proto)p);
    return 0;
}

/* The closing list of the table format. */
static void print_unused(const struct report_table *t, int64_t since)
{
    char when[32];
    cli_iso8601_utc(since, when, sizeof when);
    printf("\nEnabled but unused since %s (no successful login); to switch them off:\n", when);
    size_t shown = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        const char *cmd = report_cell(t, r, COMMAND_COLUMN);
        if (*cmd && ++shown)
            printf("  %s\n", cmd);
    }
    if (!shown)
        printf("  (none)\n");
}

/* JSON: {"since": ..., "usage": [...], "unused": [{"user", "protocol", "command"}]} */
static void print_json(const struct report_table *t, int64_t since)
{
    char when[32];
    cli_iso8601_utc(since, when, sizeof when);
    json_t *unused = json_array();
    for (size_t r = 0; r < t->nrows; r++) {
        const char *cmd = report_cell(t, r, COMMAND_COLUMN);
        if (*cmd)
            json_array_append_new(unused,
                                  json_pack("{s:s, s:s, s:s}", "user", report_cell(t, r, 0),
                                            "protocol", report_cell(t, r, 1), "command", cmd));
    }
    json_t *doc = json_pack("{s:s, s:o, s:o}", "since", when, "usage", report_table_json(t),
                            "unused", unused);
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(doc);
}

static int print_usage(struct usage_ctx *c, const struct report_args *a)
{
    if (a->format == REPORT_JSON) {
        print_json(&c->table, a->since);
    } else if (a->format == REPORT_CSV) {
        report_print(stdout, &c->table, REPORT_CSV);
    } else {
        c->table.hide_last = 1; /* the commands follow as a list */
        report_print(stdout, &c->table, REPORT_TABLE);
        print_unused(&c->table, a->since);
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

int report_usage(const struct config *cfg, struct store *st, void *arg)
{
    const struct report_args *a = arg;
    struct usage_ctx c = {.cfg = cfg};
    report_table_init(&c.table, usage_columns, MG_ARRAY_LEN(usage_columns), usage_numeric);
    int rc = 0;
    if (store_login_usage(st, a->since, keep_sum, &c.sums) != STORE_OK ||
        store_user_list(st, add_user_rows, &c) != STORE_OK) {
        fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
        rc = 1;
    } else {
        rc = print_usage(&c, a);
    }
    free_sums(&c.sums);
    report_table_free(&c.table);
    return rc;
}
