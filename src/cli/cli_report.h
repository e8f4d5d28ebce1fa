/* `mailgate report` (cli_report.c: the command and `logins`; cli_report_usage.c: `usage`). */
#ifndef MG_CLI_REPORT_H
#define MG_CLI_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report_format.h"

struct config;
struct store;

struct report_args {
    int64_t since; /* unix seconds */
    enum report_format format;
    const char *protocol, *user, *result; /* logins' filters; NULL: any */
};

int report_parse_args(int argc, char **argv, struct report_args *a, bool filters);
/* The canonical form of a user name under cfg's default_domain; 0 or -1 (too long). */
int login_name_canonical_cli(const char *name, const struct config *cfg, char *out, size_t size);
/* cli_run_with_store callback of `report usage`; arg is a struct report_args. */
int report_usage(const struct config *cfg, struct store *st, void *arg);
/* ... of `report tlsrpt` (cli_tlsrpt.c). */
int report_tlsrpt(const struct config *cfg, struct store *st, void *arg);

#endif
