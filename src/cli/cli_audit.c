/* "mailgate audit [--user NAME] [--limit N]": the audit log, newest first, one event a line:
 *   2026-11-25T03:04:05Z refresh_token_revoked user=alice provider=entra detail="..."
 * Fields without a value are left out; the detail is quoted with '"', '\' and control
 * characters escaped (it may hold an IdP's error text). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"
#include "util.h"

#define LIMIT_DIGITS_MAX 9

struct audit_args {
    const char *user;
    int64_t limit; /* 0: all */
};

static int parse_limit(const char *s, int64_t *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > LIMIT_DIGITS_MAX || s[n] != '\0')
        return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

/* argv[0] is "audit". */
static int parse_args(int argc, char **argv, struct audit_args *a)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--user", &missing))) {
            a->user = v;
        } else if ((v = cli_option_value(argc, argv, &i, "--limit", &missing))) {
            if (parse_limit(v, &a->limit) != 0)
                return cli_usage_error("--limit needs a number, not '%s'", v);
        } else if (missing) {
            return cli_usage_error("%s needs a value", argv[i]);
        } else {
            return cli_usage_error("unexpected argument '%s' (audit [--user NAME] [--limit N])",
                                   argv[i]);
        }
    }
    return 0;
}

/* A word that needs no quotes stays as it is; anything else is quoted and escaped. */
static void print_value(const char *s, bool always_quote)
{
    bool plain = !always_quote && *s;
    for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
        plain = *p > 0x20 && *p != 0x7f && *p != '"' && *p != '\\';
    if (plain) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void print_field(const char *name, const char *value, bool always_quote)
{
    if (!value)
        return;
    printf(" %s=", name);
    print_value(value, always_quote);
}

static int print_event(const struct audit_record *e, void *arg)
{
    (void)arg;
    char when[32];
    cli_iso8601_utc(e->at, when, sizeof when);
    printf("%s ", when);
    print_value(e->event, false);
    print_field("user", e->user, false);
    print_field("provider", e->provider, false);
    print_field("detail", e->detail, true);
    putchar('\n');
    return 0;
}

static int list_events(const struct config *cfg, struct store *st, void *arg)
{
    (void)cfg;
    const struct audit_args *a = arg;
    int rc = 0;
    if (store_audit_list(st, a->limit, a->user, print_event, NULL) != STORE_OK) {
        fprintf(stderr, "mailgate: store error: %s\n", store_last_error(st));
        rc = 1;
    }
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

int cli_audit(const char *config_path, int argc, char **argv)
{
    struct audit_args a = {0};
    int rc = parse_args(argc, argv, &a);
    return rc ? rc : cli_run_with_store(config_path, list_events, &a);
}
