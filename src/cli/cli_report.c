/* "mailgate report logins|usage": the login audit (store_logins.h) for the administrator.
 *   report logins [--since 30d] [--protocol imap|pop3|smtp] [--user U] [--result ok|fail]
 *                 [--format table|json|csv]
 *   report usage  [--since 30d] [--format table|json|csv]
 * usage answers "who still uses POP3 or IMAP, and can we switch it off?": per user and
 * protocol, whether it is switched on and how it was used, and which protocols are on but had
 * no successful login in the period, with the command that switches each off. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_report.h"
#include "config.h"
#include "report_format.h"
#include "store.h"
#include "store_logins.h"
#include "util.h"

#define DEFAULT_SINCE_MS (30ull * 24 * 3600 * 1000)

static const char *const login_columns[] = {
    "time",      "event",       "protocol", "listener",  "client_addr", "client_port",
    "client_id", "login",       "user",     "mailbox",   "result",      "reason",
    "detail",    "duration_ms", "bytes_in", "bytes_out", "session"};
/* one letter per column above: n = a number in JSON */
static const char login_numeric[] = "sssssnsssssssnnns";

static int parse_since(const char *v, int64_t *since)
{
    uint64_t ms;
    if (mg_parse_duration_ms(v, &ms) != 0 || ms > 3650ull * 24 * 3600 * 1000)
        return cli_usage_error("--since needs a duration such as 30d, 12h or 90m, not '%s'", v);
    *since = (int64_t)time(NULL) - (int64_t)(ms / 1000);
    return 0;
}

static int parse_word(const char *opt, const char *v, const char *const *words, const char **out)
{
    for (size_t i = 0; words[i]; i++) {
        if (strcmp(v, words[i]) == 0) {
            *out = words[i];
            return 0;
        }
    }
    return cli_usage_error("%s: unknown value '%s'", opt, v);
}

static const char *const protocols[] = {"imap", "pop3", "smtp", NULL};
static const char *const results[] = {"ok", "fail", NULL};

/* Parses the options both reports share and the filters of `logins` (filters NULL: refused). */
int report_parse_args(int argc, char **argv, struct report_args *a, bool filters)
{
    a->since = (int64_t)time(NULL) - (int64_t)(DEFAULT_SINCE_MS / 1000);
    a->format = REPORT_TABLE;
    for (int i = 2; i < argc; i++) {
        bool missing = false;
        const char *v;
        int rc = 0;
        if ((v = cli_option_value(argc, argv, &i, "--since", &missing)))
            rc = parse_since(v, &a->since);
        else if ((v = cli_option_value(argc, argv, &i, "--format", &missing)))
            rc = report_format_parse(v, &a->format) == 0
                     ? 0
                     : cli_usage_error("--format: table, json or csv, not '%s'", v);
        else if (filters && (v = cli_option_value(argc, argv, &i, "--protocol", &missing)))
            rc = parse_word("--protocol", v, protocols, &a->protocol);
        else if (filters && (v = cli_option_value(argc, argv, &i, "--user", &missing)))
            a->user = v;
        else if (filters && (v = cli_option_value(argc, argv, &i, "--result", &missing)))
            rc = parse_word("--result", v, results, &a->result);
        else if (missing)
            rc = cli_usage_error("%s needs a value", argv[i]);
        else
            rc = cli_usage_error("unexpected argument '%s' (see mailgate help)", argv[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int add_login_row(const struct login_event *e, void *arg)
{
    char when[32], port[24], dur[24], in[24], out[24];
    cli_iso8601_utc(e->at, when, sizeof when);
    snprintf(port, sizeof port, "%lld", (long long)e->client_port);
    snprintf(dur, sizeof dur, "%lld", (long long)e->duration_ms);
    snprintf(in, sizeof in, "%lld", (long long)e->bytes_in);
    snprintf(out, sizeof out, "%lld", (long long)e->bytes_out);
    const char *cells[] = {when,      e->event,     e->protocol, e->listener, e->client_addr,
                           port,      e->client_id, e->login,    e->user,     e->mailbox,
                           e->result, e->reason,    e->detail,   dur,         in,
                           out,       e->session};
    report_table_add(arg, cells);
    return 0;
}

static int report_logins(const struct config *cfg, struct store *st, void *arg)
{
    const struct report_args *a = arg;
    char user[512];
    struct login_filter f = {.since = a->since, .protocol = a->protocol, .result = a->result};
    if (a->user) {
        /* the canonical name: "alice" finds alice@DOMAIN's rows too */
        if (login_name_canonical_cli(a->user, cfg, user, sizeof user) != 0)
            return cli_usage_error("--user: name too long");
        f.user = user;
    }
    struct report_table t;
    report_table_init(&t, login_columns, MG_ARRAY_LEN(login_columns), login_numeric);
    int rc = 0;
    if (store_login_events_list(st, &f, add_login_row, &t) != STORE_OK) {
        fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
        rc = 1;
    } else if (report_print(stdout, &t, a->format) != 0 || fflush(stdout) != 0) {
        rc = 1;
    }
    report_table_free(&t);
    return rc;
}

int cli_report(const char *config_path, int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    struct report_args a = {0};
    if (strcmp(what, "logins") == 0) {
        int rc = report_parse_args(argc, argv, &a, true);
        return rc ? rc : cli_run_with_store(config_path, report_logins, &a);
    }
    if (strcmp(what, "usage") == 0) {
        int rc = report_parse_args(argc, argv, &a, false);
        return rc ? rc : cli_run_with_store(config_path, report_usage, &a);
    }
    if (strcmp(what, "tlsrpt") == 0) {
        int rc = report_parse_args(argc, argv, &a, false);
        return rc ? rc : cli_run_with_store(config_path, report_tlsrpt, &a);
    }
    return cli_usage_error(
        "report logins|usage|tlsrpt [--since 30d] [--format table|json|csv] ...");
}
