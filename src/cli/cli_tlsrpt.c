/* `mailgate tlsrpt import FILE...` and `mailgate report tlsrpt`: TLS reports (RFC 8460) into
 * the store and the summary out of it, per sending organisation and policy, with the failures
 * by result type and receiving MX, what third-party TLS-RPT services sell. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "cli_report.h"
#include "report_format.h"
#include "store.h"
#include "store_tlsrpt.h"
#include "tlsrpt.h"
#include "util.h"

/* ---- import ---- */

struct import_args {
    int argc;
    char **argv;
};

/* One file: gzip or JSON by its first bytes (mailboxes rename attachments). 0 stored or
 * duplicate, 1 refused or failed. */
static int import_file(struct store *st, const char *path)
{
    size_t len;
    char *data = mg_read_file(path, TLSRPT_MAX_JSON, 0, &len);
    if (!data) {
        printf("%s: refused: %s\n", path, errno == EFBIG ? "larger than 10 MiB" : strerror(errno));
        return 1;
    }
    struct tlsrpt_report r;
    char why[256] = "";
    enum tlsrpt_status parsed =
        tlsrpt_parse_body(data, len, tlsrpt_is_gzip(data, len), &r, why, sizeof why);
    free(data);
    int rc = 1;
    if (parsed != TLSRPT_OK) {
        printf("%s: refused: %s\n", path, why);
    } else {
        enum store_status s = store_tlsrpt_add(st, &r, (int64_t)time(NULL), "import");
        if (s == STORE_OK)
            printf("%s: imported report %s from %s\n", path, r.report_id,
                   r.organization[0] ? r.organization : "(no organization-name)");
        else if (s == STORE_EXISTS)
            printf("%s: duplicate: report %s is stored already\n", path, r.report_id);
        else
            printf("%s: failed: store error: %s\n", path, store_last_error(st));
        rc = s == STORE_OK || s == STORE_EXISTS ? 0 : 1;
    }
    tlsrpt_free(&r);
    return rc;
}

static int run_import(const struct config *cfg, struct store *st, void *arg)
{
    MG_UNUSED(cfg);
    const struct import_args *a = arg;
    int rc = 0;
    for (int i = 2; i < a->argc; i++)
        rc |= import_file(st, a->argv[i]);
    return fflush(stdout) == 0 && rc == 0 ? 0 : 1;
}

int cli_tlsrpt(const char *config_path, int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "import") != 0)
        return cli_usage_error("tlsrpt import FILE... (.json or .json.gz)");
    for (int i = 2; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("tlsrpt import: unknown option %s", argv[i]);
    struct import_args a = {argc, argv};
    return cli_run_with_store(config_path, run_import, &a);
}

/* ---- report tlsrpt ---- */

static const char *const columns[] = {"organization", "policy_type", "policy_domain", "reports",
                                      "successful",   "failed",      "failures"};
static const char numeric[] = "sssnnns";
#define FAILURES_COLUMN 6

struct summary {
    struct report_table table;
    json_t *failures; /* per row of the table: an array of {result_type, receiving_mx, sessions} */
};

static int same_policy(const struct report_table *t, size_t row, const char *org, const char *type,
                       const char *domain)
{
    return strcmp(report_cell(t, row, 0), org) == 0 && strcmp(report_cell(t, row, 1), type) == 0 &&
           strcmp(report_cell(t, row, 2), domain) == 0;
}

static int add_policy(const struct tlsrpt_policy_sum *p, void *arg)
{
    struct summary *s = arg;
    char reports[24], ok[24], failed[24];
    snprintf(reports, sizeof reports, "%lld", (long long)p->reports);
    snprintf(ok, sizeof ok, "%lld", (long long)p->successful);
    snprintf(failed, sizeof failed, "%lld", (long long)p->failed);
    const char *cells[] = {
        p->organization, p->policy_type, p->policy_domain, reports, ok, failed, ""};
    report_table_add(&s->table, cells);
    json_array_append_new(s->failures, json_array());
    return 0;
}

/* Failures come in the policies' order: each goes to the row of its policy. */
static int add_failure(const struct tlsrpt_failure_sum *f, void *arg)
{
    struct summary *s = arg;
    for (size_t row = 0; row < s->table.nrows; row++) {
        if (!same_policy(&s->table, row, f->organization, f->policy_type, f->policy_domain))
            continue;
        json_array_append_new(json_array_get(s->failures, row),
                              json_pack("{s:s, s:s, s:I}", "result_type", f->result_type,
                                        "receiving_mx", f->receiving_mx, "sessions",
                                        (json_int_t)f->sessions));
        break;
    }
    return 0;
}

/* The table's failures cell: "certificate-expired mx1.example.com 100; ..." */
static void fill_failure_cells(struct summary *s)
{
    for (size_t row = 0; row < s->table.nrows; row++) {
        json_t *list = json_array_get(s->failures, row), *f;
        size_t i;
        char *text = mg_strdup("");
        json_array_foreach(list, i, f)
        {
            const char *mx = json_string_value(json_object_get(f, "receiving_mx"));
            char *next = mg_printf("%s%s%s %s %lld", text, i ? "; " : "",
                                   json_string_value(json_object_get(f, "result_type")),
                                   mx[0] ? mx : "(no MX)",
                                   (long long)json_integer_value(json_object_get(f, "sessions")));
            free(text);
            text = next;
        }
        char **cell = &s->table.cells[row * s->table.ncols + FAILURES_COLUMN];
        free(*cell);
        *cell = text;
    }
}

/* JSON: {"since": ..., "policies": [{organization, ..., "failures": [...]}]} */
static void print_json(const struct summary *s, int64_t since)
{
    char when[32];
    cli_iso8601_utc(since, when, sizeof when);
    json_t *rows = report_table_json(&s->table), *row;
    size_t i;
    json_array_foreach(rows, i, row)
    {
        json_object_set(row, "failures", json_array_get(s->failures, i));
    }
    json_t *doc = json_pack("{s:s, s:o}", "since", when, "policies", rows);
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(doc);
}

int report_tlsrpt(const struct config *cfg, struct store *st, void *arg)
{
    MG_UNUSED(cfg);
    const struct report_args *a = arg;
    struct summary s = {.failures = json_array()};
    report_table_init(&s.table, columns, MG_ARRAY_LEN(columns), numeric);
    int rc = 0;
    if (store_tlsrpt_policies(st, a->since, add_policy, &s) != STORE_OK ||
        store_tlsrpt_failures(st, a->since, add_failure, &s) != STORE_OK) {
        fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
        rc = 1;
    } else if (a->format == REPORT_JSON) {
        print_json(&s, a->since);
    } else {
        fill_failure_cells(&s);
        report_print(stdout, &s.table, a->format);
        if (a->format == REPORT_TABLE && s.table.nrows == 0)
            printf("(no TLS reports received in the period)\n");
    }
    if (!rc && (fflush(stdout) != 0 || ferror(stdout)))
        rc = 1;
    json_decref(s.failures);
    report_table_free(&s.table);
    return rc;
}
